/* solver.h - how an order gets its challenges answered (DESIGN.md "Seams
 * for what comes next"). An order (acme.c) knows RFC 8555 only; for each
 * pending authorization it asks the name's solver, in this order:
 *
 *	prepare   pre-flight: could the CA validate this now? (optional: the
 *		  order skips it with `preflight off`)
 *	present   make the answer visible where the CA will look (every
 *		  agent; the TXT record on every authoritative server; every
 *		  cluster node)
 *	cleanup   withdraw it: always, after success or failure, once present
 *		  was called (also when present failed or was cancelled)
 *
 * One solver per challenge type and configuration, shared by every order of
 * a worker. An implementation embeds struct solver as its first member.
 * A wrapper (cluster mode around http-01) holds an inner solver and
 * forwards what it does not change.
 *
 * Calls return 0: cb runs exactly once, later, from the loop (never from
 * inside the call), unless solver_cancel(arg) came first; 1: done now, ok,
 * no callback; -1: failed now, err set, no callback. cb's err is NULL on
 * success, else one line that names the fix, without the name (the order
 * prefixes "label: name: "); it lives until cb returns. */
#ifndef HACME_SOLVER_H
#define HACME_SOLVER_H

#include <stdbool.h>
#include <stddef.h>

#define SOLVER_ERR_MAX 1024

/* One authorization's challenge, as the order sees it. Borrowed: the
 * strings live until the call returns; a solver copies what it keeps. */
struct solver_chall {
	const char *label;	/* the order's label, for messages */
	const char *name;	/* the identifier as the CA names it (no "*.") */
	bool wildcard;		/* the authorization is for "*.<name>" */
	const char *token;	/* the challenge's token, NULL for a type without */
	const char *keyauth;	/* "<token>.<thumbprint>", NULL without a token */
	const char *thumbprint;	/* the account key's JWK thumbprint (RFC 7638) */
	const char *account_url;	/* the account's URL (kid) */
	const char *const *issuers;	/* dns-persist-01: the CA's issuer-domain-names */
	size_t nissuers;
};

typedef void solver_cb(void *arg, const char *err);

struct solver;

struct solver_ops {
	const char *type;	/* the ACME challenge type answered: "http-01" */
	bool needs_token;	/* the CA's challenge must carry a token */
	/* prepare needs no challenge: it runs before newOrder, so a failing
	 * pre-flight leaves no order at the CA (token and keyauth NULL) */
	bool prepare_before_order;
	/* NULL: nothing to check (returns 1) */
	int (*prepare)(struct solver *s, const struct solver_chall *c, solver_cb *cb,
	    void *arg, char *err, size_t errlen);
	int (*present)(struct solver *s, const struct solver_chall *c, solver_cb *cb,
	    void *arg, char *err, size_t errlen);
	/* cb may be NULL: fire and forget (an order that is cancelled) */
	int (*cleanup)(struct solver *s, const struct solver_chall *c, solver_cb *cb,
	    void *arg, char *err, size_t errlen);
	/* Forget every callback still to come for arg; what was started is
	 * still undone as cleanup would (a probe withdrawn, say). */
	void (*cancel)(struct solver *s, void *arg);
	void (*free)(struct solver *s);
};

struct solver {
	const struct solver_ops *ops;
};

static inline const char *
solver_type(const struct solver *s)
{
	return s->ops->type;
}

int solver_prepare(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen);
int solver_present(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen);
int solver_cleanup(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen);
void solver_cancel(struct solver *s, void *arg);
/* NULL is a no-op. Callbacks still to come are not called. */
void solver_free(struct solver *s);

/* ---- http-01 (solver_http.c): tokens on every agent + the self-check ---- */

struct ev_loop;
struct agentctl;

struct solver_http_opts {
	struct agentctl *agents;	/* borrowed: outlives the solver's orders */
	unsigned token_ttl;		/* seconds; 0: 3600 */
	int preflight_port;		/* 0: 80 */
	const char *preflight_connect;	/* "HOST:PORT", or NULL: resolve the name */
};

/* NULL on no memory. */
struct solver *solver_http_new(struct ev_loop *loop, const struct solver_http_opts *opts);

/* ---- dns-01 (solver_dns.c) and dns-persist-01 (solver_persist.c) ---- */

struct config_dns;
struct dnsq_server;

/* dns-01 through cfg's provider; records a crash left in
 * <state_dir>/dns-<name>.records are deleted at once (state_dir NULL: no
 * journal, for hacme check's pre-flight alone). NULL with err (a
 * TSIG secret file that cannot be read, no DNS server known). */
struct solver *solver_dns_new(struct ev_loop *loop, const struct config_dns *cfg,
    const char *state_dir, char *err, size_t errlen);

/* Called by prepare, when set, with the record the user must publish for
 * c; the prepare then fails ("record printed") without any query. */
typedef void solver_persist_record_cb(void *arg, const struct solver_chall *c,
    const char *fqdn, const char *value);
/* dns-persist-01; cfg (may be NULL) gives the DNS server to ask. */
struct solver *solver_persist_new(struct ev_loop *loop, const struct config_dns *cfg,
    solver_persist_record_cb *on_record, void *arg, char *err, size_t errlen);
/* `server` (a host name resolved once, now) or resolv.conf's servers. */
int solver_dns_resolvers(const struct config_dns *cfg, struct dnsq_server *res, size_t max,
    size_t *n, char *err, size_t errlen);

#endif
