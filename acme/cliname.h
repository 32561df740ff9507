/* cliname.h - names issued from the command line, kept like a certbot
 * lineage: `hacme issue NAME` for a NAME no cert section names records it
 * in <state-dir>/cli-names; every verb (and `hacme run`, also after SIGHUP)
 * then sees it as a one-name certificate of the config (config_adopt), so
 * `hacme run` renews it until `hacme remove NAME` forgets it. */
#ifndef HACME_CLINAME_H
#define HACME_CLINAME_H

#include "acme/config.h"

int cliname_add(const char *state_dir, const char *name);	/* 0 or -1, errno */
int cliname_remove(const char *state_dir, const char *name);	/* 0 or -1, errno */
bool cliname_has(const char *state_dir, const char *name);

/* Adopts every recorded name into cfg (one that now has a cert section is
 * left to the section). Problems are logged; never fails. */
void cliname_adopt_all(struct config *cfg);

#endif
