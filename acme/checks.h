/* checks.h - before an order: could its certificate be stored and served?
 * (issue 8: never spend an order that cannot be stored and served.)
 *
 * The live checks that decide whether a result could be deployed, run
 * before newOrder (acme.c asks through acme_order_req.checks) and by
 * `hacme check` (skipped with --offline):
 *  - state-dir and cert-dir (default <state-dir>/haproxy) writable (a file
 *    is created and removed: read-only mounts and permissions both show)
 *    with free space (CHECKS_FREE_MIN bytes and a few inodes); cert-dir
 *    and the crt-list's directory hold no character HAProxy commands
 *    cannot carry;
 *  - the crt-list present (a file, or a directory bound with `crt DIR`),
 *    its directory writable (it is replaced by write-temp + rename);
 *  - every runtime-api answers `show cli level` with "admin" (an operator
 *    socket is named as such, with the `level admin` fix), and lists the
 *    crt-list in `show ssl crt-list` (the same path, or the same file or
 *    directory by device and inode);
 *  - the SPOE side, read from HAProxy itself (checks_spoe below).
 * Each failure is one line that names the thing and the fix.
 *
 * Results are shared: a run in flight is joined, a result younger than
 * opts.ttl is reused for the same config (so 80,000 queued orders cost one
 * set of checks). Callbacks run from the loop only, never inside
 * checks_run. */
#ifndef HACME_CHECKS_H
#define HACME_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

struct ev_loop;
struct config;
struct checks;

#define CHECKS_ERR_MAX 1024		/* one finding, never cut below this */
#define CHECKS_FREE_MIN (1u << 20)	/* bytes free in state-dir and cert-dir */

struct checks_opts {
	double timeout;		/* seconds per HAProxy command; 0: 5 */
	double ttl;		/* seconds a result is reused; 0: 10 */
};

enum checks_level { CHECKS_OK, CHECKS_WARN, CHECKS_FAIL };

struct checks_finding {
	enum checks_level level;
	const char *text;	/* one line */
};

/* Lives until the callback returns. */
struct checks_report {
	const char *error;	/* NULL when nothing failed, else the first failure */
	const struct checks_finding *findings;	/* in the order checked */
	size_t n;
};

typedef void checks_cb(void *arg, const struct checks_report *r);

struct checks *checks_new(struct ev_loop *loop, const struct checks_opts *opts);
/* No callback runs afterwards. NULL is a no-op. Not from a callback. */
void checks_free(struct checks *k);

/* Runs the checks against cfg (what they need is copied: cfg is read
 * inside this call only), or joins the run in flight (whatever its
 * config: after a reload that is the newer one), or answers from the last
 * result (same cfg pointer, younger than ttl). 0, or -1 with errno
 * (ENOMEM, EBUSY: arg waits already); no callback then. */
int checks_run(struct checks *k, const struct config *cfg, checks_cb *cb, void *arg);
/* Forgets arg's wait: its callback will not run. */
void checks_cancel(struct checks *k, void *arg);

/* ---- pure helpers (tests) ---- */

/* True when the `show ssl crt-list` reply lists path: the same string, or
 * an entry that stat()s to the same device and inode. */
bool checks_crtlist_listed(const char *reply, size_t len, const char *path);

#endif
