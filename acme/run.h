/* run.h - `hacme run`, the daemon (see run.c). */
#ifndef HACME_RUN_H
#define HACME_RUN_H

struct config;

/* Runs until SIGTERM/SIGINT. Takes cfg over (it is left empty: the caller
 * may still config_free it); SIGHUP re-reads cfgpath. Returns the exit
 * code. */
int run_main(struct config *cfg, const char *cfgpath);

#endif
