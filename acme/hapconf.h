/* hapconf.h - what hacme needs to know from a running HAProxy's own
 * configuration files: its stats sockets (to be sure the files are those of
 * the HAProxy hacme talks to) and the SPOE agents its `filter spoe` lines
 * load (set-on-error, timeout processing, use-backend).
 *
 * HAProxy has no runtime command that shows SPOE options, so they are
 * read from the files the process was started with: /proc/PID/cmdline
 * (-f FILE or DIR, and the files after --), relative paths against
 * /proc/PID/cwd, "${VAR}" expanded from /proc/PID/environ and the global
 * section's setenv/presetenv/unsetenv/resetenv, as HAProxy does. The
 * backend addresses are NOT taken from here: checks.c asks HAProxy
 * (`show servers state`), which knows what it resolved.
 *
 * Best effort by design: a file that cannot be read, or a variable that
 * is not known, leaves a note in warn and the rest is still read. */
#ifndef HACME_HAPCONF_H
#define HACME_HAPCONF_H

#include <stdbool.h>
#include <stddef.h>

#define HAPCONF_ERR_MAX 512
#define HAPCONF_MESSAGE "acme-challenge"	/* the message hacme-spoa answers */

struct hapconf_agent {
	char *name;		/* spoe-agent NAME */
	char *file;		/* the SPOE config file */
	int line;		/* of the spoe-agent line */
	bool acme;		/* sends HAPCONF_MESSAGE (directly or through a group) */
	bool set_on_error;	/* option set-on-error VAR */
	bool timeout_processing;
	char *backend;		/* use-backend, or NULL */
};

struct hapconf {
	char **sockets;		/* `stats socket` addresses, expanded; and the
				 * master CLI's -S path (hapconf_read_pid) */
	size_t nsockets;
	size_t nfilters;	/* `filter spoe` lines */
	struct hapconf_agent *agents;	/* of every SPOE filter's scope */
	size_t nagents;
	char warn[HAPCONF_ERR_MAX];	/* first thing not read, or "" */
};

/* Reads the configuration of process pid. 0, or -1 with err (the process
 * or its command line cannot be read). */
int hapconf_read_pid(struct hapconf *h, long pid, char *err, size_t errlen);

/* Reads the files (as -f takes them: a file, or a directory whose *.cfg
 * are read in name order) with the environment env ("K=V", n entries),
 * relative paths against cwd (NULL: as given). */
int hapconf_read(struct hapconf *h, const char *const *files, size_t nfiles,
    const char *const *env, size_t nenv, const char *cwd, char *err, size_t errlen);

void hapconf_free(struct hapconf *h);

/* True when a `stats socket` of h is the unix socket path (same string,
 * or the same file by device and inode). */
bool hapconf_has_socket(const struct hapconf *h, const char *path);

#endif
