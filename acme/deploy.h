/* deploy.h - put a certificate into every configured HAProxy, without a
 * reload, and on disk so that a reload or restart keeps serving it
 * (DESIGN.md "On disk"; shared/reference/RUNTIME-API-CERTS.md).
 *
 * For a certificate NAME with variants (NULL: ECDSA or the only one; "rsa":
 * the RSA half of a dual certificate), HAProxy sees the files
 *   <cert-dir>/<NAME>.pem   <cert-dir>/<NAME>.rsa.pem
 * and one crt-list line per file (the path alone: HAProxy takes the names
 * from the certificate). The crt-list's first line is a fallback that hacme
 * never touches; hacme's lines follow it in the order they were added.
 *
 * deploy_cert, per call:
 *  1. validates each variant (key matches the leaf, the chain chains, the
 *     leaf has a DNS name), then writes the PEM (key + chain, no blank line,
 *     0600) and the crt-list line, durably, before HAProxy is told; an
 *     existing line stays where it is. The crt-list is edited under
 *     flock(<state-dir>/crt-list.lock). Checks and temp files are done
 *     while the loop is idle; up to 32 operations are made durable at once
 *     (one syncfs, one crt-list edit).
 *  2. per runtime-api, in parallel, each holding that HAProxy's write turn
 *     (runtime.h): `show ssl cert` must list no foreign transaction (a
 *     stale one on a file of cert-dir, left by a crashed hacme, is
 *     aborted); the listing is the one chained to the previous holder's
 *     last request when the turn passed within this process with the flock
 *     kept. Per variant: `new ssl cert F;set ssl cert F <<` for a file the
 *     crt-list did not have (else `set` alone; HAProxy's "not referenced"
 *     turns it into new + set), the set reply must name F (HAProxy < 3.1
 *     merges a set into another file's pending transaction: that one is
 *     aborted and reported); `show ssl cert *F` must show our serial and
 *     notAfter, else `abort ssl cert F`; `commit ssl cert F;[add ssl
 *     crt-list L F;]show ssl cert F` must succeed and show our serial, in
 *     use. A HAProxy that fails after a change gets its previous state back
 *     (previous PEM set + committed, or the new store deleted) before the
 *     turn is given back: all variants or none.
 *  3. when every HAProxy took it: a TLS handshake with SNI (the first DNS
 *     name of the certificate, and only that variant's signature
 *     algorithms) against each tls-check address must get our serial.
 *     These checks wait until the pushes of this deploy are over (at most
 *     10 s), 8 operations at a time. Otherwise every HAProxy gets its
 *     previous certificate back (or the new name removed) and the files are
 *     restored. No tls-check: a warning.
 *  4. when a HAProxy could not take it and reload-command is set, the
 *     command runs once (/bin/sh -c, output kept for the error, killed
 *     after reload_timeout); with no runtime-api it is the only way. The
 *     failed HAProxy processes are asked again, then the TLS check decides.
 *  5. when no HAProxy has the new certificate in the end, the previous
 *     files and crt-list line are restored: disk and memory agree.
 *
 * deploy_check: per HAProxy and variant, `show ssl cert F` (no write turn);
 * a HAProxy whose certificate is missing or has another serial (restarted
 * with old files, or never reached) gets the push of deploy_cert. The files
 * on disk are rewritten when they differ from the stored certificate.
 *
 * deploy_remove: removes the crt-list lines, then per HAProxy (write turn)
 * `del ssl crt-list` + `del ssl cert` for each file it knows, then the
 * files.
 *
 * One operation per NAME at a time (EBUSY otherwise); any number of names
 * at once. Callbacks run from the loop only, never inside the call. */
#ifndef HACME_DEPLOY_H
#define HACME_DEPLOY_H

#include <stdbool.h>
#include <stddef.h>

#include "acme/crypto.h"

struct ev_loop;
struct config;
struct store_cert;
struct deploy;

#define DEPLOY_ERR_MAX 1024	/* bytes of one result's error */
#define DEPLOY_VARIANTS_MAX 2
#define DEPLOY_RELOAD "reload-command"	/* runtime_api of a reload-command result */

struct deploy_opts {
	double timeout;		/* seconds per runtime-API command; 0: 10 */
	double lock_timeout;	/* seconds to wait for a HAProxy's write turn; 0: 60 */
	double tls_timeout;	/* seconds per TLS check; 0: 5 */
	double reload_timeout;	/* seconds for reload-command; 0: 60 */
	double reload_settle;	/* seconds the TLS check retries after a reload; 0: 10 */
};

/* One HAProxy (or the reload-command) and one variant. */
struct deploy_result {
	const char *runtime_api;	/* address as configured, or DEPLOY_RELOAD */
	const char *variant;		/* NULL or "rsa" */
	const char *file;		/* the HAProxy-side path */
	char serial[CRYPTO_SERIAL_MAX];	/* what it serves now, as far as known; "" none */
	bool ok;			/* serves ours (deploy/check), or no longer
					 * knows the file (remove) */
	bool pushed;			/* a runtime change was made (false: deploy_check
					 * found it served already) */
	const char *error;		/* NULL when ok: one line naming the HAProxy */
};

struct deploy_report {
	const char *name;
	const struct deploy_result *results;	/* nruntime x nvariants (+ reload) */
	size_t n;
	bool ok;			/* every result ok */
	const char *error;		/* NULL, or the first failure (one line) */
	const char *warning;		/* NULL, or e.g. "no tls-check configured: ..." */
	bool restored;			/* the files were put back as they were */
};

/* The report lives until cb returns. */
typedef void deploy_cb(void *arg, const struct deploy_report *r);

/* Parses cfg's runtime-api and tls-check addresses (blocking name
 * resolution: at start-up), opens the lock files in state-dir, creates
 * cert-dir when missing. cfg is borrowed and must outlive d. NULL with
 * err. opts may be NULL. */
struct deploy *deploy_new(struct ev_loop *loop, const struct config *cfg,
    const struct deploy_opts *opts, char *err, size_t errlen);

/* Stops everything (no callback runs afterwards; HAProxy transactions in
 * flight are left to the next run to abort as stale). NULL is a no-op; may
 * be called from a callback. */
void deploy_free(struct deploy *d);

/* variants[i] (key_pem and chain_pem are used) with variant_names[i] (NULL
 * or "rsa"), n 1..2, copied. 0, or -1 with errno and err (EINVAL: a bad
 * name or variant; EBUSY: NAME is being deployed; ENOMEM). A certificate
 * that does not check out (key of another certificate, broken chain) or
 * files that cannot be written are reported through cb; nothing is left
 * written then. The checks and file writes of many calls are batched on
 * the loop. */
int deploy_cert(struct deploy *d, const char *name, const struct store_cert *const variants[],
    const char *const variant_names[], size_t n, deploy_cb *cb, void *arg,
    char *err, size_t errlen);

/* As deploy_cert, but pushes only to a HAProxy that does not serve these
 * serials already (result .pushed says which did). */
int deploy_check(struct deploy *d, const char *name, const struct store_cert *const variants[],
    const char *const variant_names[], size_t n, deploy_cb *cb, void *arg,
    char *err, size_t errlen);

/* Removes NAME (every variant) from every HAProxy, the crt-list and
 * cert-dir. As deploy_cert. */
int deploy_remove(struct deploy *d, const char *name, deploy_cb *cb, void *arg,
    char *err, size_t errlen);

/* Operations in progress. */
size_t deploy_pending(const struct deploy *d);

#endif
