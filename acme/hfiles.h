/* hfiles.h - the files hacme writes for HAProxy, and which of them are its
 * own.
 *
 * `crt-list` names a crt-list file or a directory bound with `crt DIR`
 * (HAProxy >= 2.2 takes `add ssl crt-list DIR DIR/name.pem`). The cert dir
 * is `cert-dir`, else that directory, else <state-dir>/haproxy.
 *
 * hacme never replaces a file it did not create: every PEM it creates in
 * the cert dir is recorded in <state-dir>/haproxy-files (one path a line),
 * and a file found at a path it would write is replaced only when it is
 * recorded there (or holds exactly what hacme would write). */
#ifndef HACME_HFILES_H
#define HACME_HFILES_H

#include <stdbool.h>
#include <stddef.h>

#include "acme/config.h"

/* The crt-list as HAProxy names it (a directory without its trailing
 * slashes), heap; *is_dir when it is a directory. NULL when none is set
 * (or no memory: errno). */
char *hfiles_list(const struct config *cfg, bool *is_dir);

/* The cert dir (heap; NULL when out of memory). */
char *hfiles_cert_dir(const struct config *cfg);

/* Whether a and b name the same directory (trailing slashes ignored). */
bool hfiles_same_dir(const char *a, const char *b);

/* Whether path was created by hacme (recorded in state_dir). */
bool hfiles_owned(const char *state_dir, const char *path);

/* Records path as created by hacme (idempotent). 0, or -1 with errno. */
int hfiles_own(const char *state_dir, const char *path);

/* Whether the file a certificate would be deployed to (cert dir,
 * name[.variant].pem) is someone else's: present, not recorded, and not
 * what hacme stored for it. Then err says so and how to fix it (checked
 * before ordering, so a refused file costs no order). */
bool hfiles_foreign(const struct config *cfg, const char *name, const char *variant,
    char *err, size_t errlen);

/* Forgets path (after hacme removed it). 0, or -1 with errno. */
int hfiles_disown(const char *state_dir, const char *path);

#endif
