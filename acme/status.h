/* status.h - `hacme status [--json]` (DESIGN.md "hacme"): every
 * certificate of the config, each variant (a dual certificate's RSA half
 * is NAME/rsa), then every stored certificate the config no longer names.
 *
 *   NAME KEY NOTAFTER LEFT NEXT REASON DEPLOYED ERROR
 *
 * NOTAFTER and NEXT are RFC 3339 UTC; LEFT is "29d4h", "3h12m", "45m",
 * "59s" or "expired". NEXT is the moment `hacme run` chose (renew_at, from
 * meta.json or <state-dir>/schedule.json when it is for the stored serial),
 * or a later retry after failures (REASON "backoff after failure"); "now"
 * when it has passed. When no moment was chosen yet, NEXT is the renewal
 * rule's own moment without jitter -- the start of an ARI window, else the
 * moment 1/3 (1/2) of the lifetime is left -- shown as "~TIME" (jitter only
 * ever moves it earlier, by at most a day). A certificate not issued yet
 * shows "-" and "not issued"; one whose names or key type differ from its
 * cert section "config changed" (it is ordered again); one the config does
 * not name "not in config" (never renewed). DEPLOYED is "k/n": of the n
 * runtime-api HAProxies, k serve our serial (`show ssl cert <cert-dir>/
 * <NAME>.pem`, or <NAME>.rsa.pem, status Used); "-" without runtime-api. A
 * HAProxy that does not answer counts as not serving. ERROR is the last
 * order's error (or why the stored files cannot be read), "-" when none.
 *
 * --json: an array of objects {name, domains, key, serial, issuer,
 * not_after, next_renewal, renewal_reason, last_error, deployed:
 * [{runtime_api, serial, ok, error}], in_config, next_renewal_estimated};
 * times are RFC 3339 UTC strings; what is unknown is null.
 *
 * The HAProxies are asked in parallel on a loop of status's own, each
 * query with a short timeout; a HAProxy that fails one is not asked again. */
#ifndef HACME_STATUS_H
#define HACME_STATUS_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

struct config;

#define STATUS_TIMEOUT 2.0	/* seconds for one runtime-API query */
#define STATUS_DEADLINE 10.0	/* seconds for all of them */
#define STATUS_LEFT_MAX 32	/* a LEFT buffer of this size is never cut */

/* Writes the table (or the JSON) to out. 0 whatever the certificates'
 * state; 1 when the state dir cannot be opened (the reason is logged). */
int status_main(struct config *cfg, bool json, FILE *out);
/* `status --nodes` (status_nodes.c, cluster mode): each node's heartbeat
 * and what its HAProxy serves. 0, 1 (no store), 2 (store unreachable). */
int status_nodes_main(struct config *cfg, bool json, FILE *out);

/* The same at a given time, asking each HAProxy with timeout seconds per
 * query (tests). */
int status_report(struct config *cfg, bool json, FILE *out, time_t now, double timeout);

/* LEFT for secs seconds left: "29d4h", "3h12m", "45m", "59s"; "expired"
 * for secs <= 0. Returns buf. */
char *status_fmt_left(long long secs, char *buf, size_t len);

#endif
