/* notify.h - `notify-command` (global): tell someone what happened.
 *
 * Events: issued, renewed, failed, expiring (a certificate within 1/6 of
 * its lifetime of expiry that hacme could not renew), revoked, removed.
 * The command is split into words like a shell would (single and double
 * quotes, backslash) but run without one (write `/bin/sh -c '...'` to ask
 * for one), with stdin from /dev/null, in its own process group, for at
 * most NOTIFY_TIMEOUT seconds (HACME_NOTIFY_TIMEOUT in the environment
 * changes it: 1..3600) (then SIGTERM, 3 s later SIGKILL), never waited
 * for by the caller: a small supervisor process waits and logs a failure.
 * Environment: HACME_EVENT, HACME_NAME, HACME_DOMAINS (space-separated),
 * HACME_SERIAL, HACME_NOT_AFTER (RFC 3339), HACME_ERROR; empty when
 * unknown. */
#ifndef HACME_NOTIFY_H
#define HACME_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "acme/config.h"

#define NOTIFY_TIMEOUT 60

struct notify_event {
	const char *event;	/* "issued", ... */
	const char *name;	/* certificate (section) name, "name/rsa" for a variant */
	const char *const *domains;
	size_t ndomains;
	const char *serial;
	time_t not_after;	/* 0: unknown */
	const char *error;
};

/* Splits cmd into argv (heap; free with notify_argv_free). NULL with *why
 * on an unbalanced quote or an empty command. */
char **notify_split(const char *cmd, const char **why);
void notify_argv_free(char **argv);

/* Runs cfg's notify-command for ev (nothing when none is set). 0, or -1
 * when it could not be started (logged). */
int notify(const struct config *cfg, const struct notify_event *ev);

/* `expiring` once per certificate and serial in this process: true when
 * (name, serial) was not announced yet (and marks it). */
bool notify_expiring_first(const char *name, const char *serial);

#endif
