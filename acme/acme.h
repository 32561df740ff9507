/* acme.h - the RFC 8555 client: one CA (directory, account, nonces) and the
 * orders that run against it, all on one libev loop through acme/http.h.
 *
 * Every request to the CA goes through one function (acme.c: acme_post)
 * that takes a nonce from the pool (HEAD newNonce when the pool is empty),
 * signs, keeps the Replay-Nonce of every response, and retries a badNonce
 * at once with the fresh nonce. Callers see a finished response or a
 * problem.
 *
 * Usage:
 *	struct acme *a = acme_new(loop, http, &opts, err, sizeof err);
 *	acme_start(a, started, arg);		directory + account
 *	acme_order(a, &req, done, arg);		any number at once
 * Callbacks run from the loop, never from inside the call that started
 * them. */
#ifndef HACME_ACME_H
#define HACME_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "acme/keytype.h"

struct ev_loop;
struct http_client;
struct solver;
struct crypto_key;
struct proto_directory;
struct checks;
struct config;
struct acme;
struct acme_order;

#define ACME_ERR_MAX 1024	/* an error line of this size is never cut */
#define ACME_NONCE_POOL 32	/* nonces kept for later requests */
#define ACME_BADNONCE_RETRIES 10

struct acme_opts {
	const char *ca_name;		/* for messages: "ca letsencrypt" */
	const char *directory;		/* the directory URL */
	const char *const *contact;	/* "mailto:..." */
	size_t ncontact;
	const char *eab_kid, *eab_hmac_key;	/* External Account Binding, or NULL */
	struct crypto_key *account_key;	/* borrowed: lives as long as the client */
	const char *account_url;	/* known kid (stored), or NULL: find or create */
	bool only_existing;		/* find the account, never create it */
};

/* NULL with err on a bad option or no memory. */
struct acme *acme_new(struct ev_loop *loop, struct http_client *http,
    const struct acme_opts *opts, char *err, size_t errlen);
/* Cancels every order and request in flight without calling their
 * callbacks. NULL is a no-op. */
void acme_free(struct acme *a);

/* Fetches the directory, then finds or creates the account (newAccount
 * with jwk; with a known account URL, nothing is sent for the account).
 * cb gets err NULL on success. */
void acme_start(struct acme *a, void (*cb)(void *arg, const char *err), void *arg);

const struct proto_directory *acme_directory(const struct acme *a);	/* after start */
const char *acme_account_url(const struct acme *a);	/* after start */
/* "token.thumbprint" key authorization, malloc'd. */
char *acme_keyauth(const struct acme *a, const char *token);
const char *acme_thumbprint(const struct acme *a);
/* Nonces: how many came from HEAD newNonce, how many badNonce retries. */
void acme_nonce_stats(const struct acme *a, unsigned long *fetched, unsigned long *bad);

/* cb runs when the client registered its key again because the CA had
 * forgotten the account (accountDoesNotExist on any request an order or a
 * revocation signs with the account; once per order, the failed request
 * then sent again): url is the new account URL, to be stored. */
void acme_on_account(struct acme *a, void (*cb)(void *arg, const char *url), void *arg);

/* POST-as-GET of the account: status, contact, orders URL, as one JSON
 * text (the CA's document, cb's json lives until it returns). */
void acme_account_fetch(struct acme *a,
    void (*cb)(void *arg, const char *err, const char *json), void *arg);

/* ---- orders ---- */

struct acme_order_req {
	const char *label;		/* for messages: the cert section name */
	const char *where;		/* "FILE:LINE" of the cert section, or NULL */
	const char *const *names;	/* identifiers, config order */
	size_t nnames;
	enum keytype key;		/* a new key of this type... */
	struct crypto_key *reuse_key;	/* ...or this one (borrowed), when not NULL */
	const char *profile;		/* NULL: none */
	const char *replaces;		/* ARI certificate id, or NULL */
	const char *preferred_chain;	/* issuer CN of the chain's top, or NULL */
	/* who answers the challenges (acme/solver.h), borrowed: solvers[i]
	 * for names[i] when solvers is not NULL and it is set, else solver */
	struct solver *solver;
	struct solver *const *solvers;
	bool preflight;			/* ask the solvers' pre-flight first */
	/* before newOrder: could the result be stored and served (checks.h)? */
	struct checks *checks;		/* NULL: not checked */
	const struct config *checks_cfg;	/* what checks_run gets */
	double poll_max;		/* longest poll interval, seconds; 0: 10 */
	double timeout;			/* give up after this, seconds; 0: 600 */
};

/* The outcome. Strings live until the callback returns: copy what you
 * keep. On failure err is one line naming the fix; kind says where. */
enum acme_fail {
	ACME_OK = 0,
	ACME_FAIL_PREFLIGHT,	/* stopped before the CA validated anything */
	ACME_FAIL_AGENT,	/* could not present an answer (publish a token) */
	ACME_FAIL_VALIDATION,	/* the CA could not validate a name */
	ACME_FAIL_CA,		/* any other CA error (problem document) */
	ACME_FAIL_NETWORK,	/* the CA did not answer */
	ACME_FAIL_LOCAL,	/* key, CSR, chain checks, no memory */
	ACME_FAIL_SETUP,	/* refused by the checks before newOrder: nothing sent */
};

struct acme_order_result {
	enum acme_fail fail;
	const char *err;		/* NULL on success */
	long retry_after;		/* seconds the CA asked to wait, or -1 */
	const char *key_pem;		/* PKCS#8; wipe copies you make */
	size_t key_len;
	const char *chain_pem;		/* leaf first, normalized */
	size_t chain_len;
	const char *order_url, *cert_url;
	unsigned authz_total, authz_reused;	/* authorizations, already valid */
	unsigned published;		/* answers presented (probes not counted) */
};

/* Starts an order; NULL with err on a bad request (then no callback). The
 * handle lives until the callback returns. Every answer presented for it
 * (probes too) is cleaned up before the callback runs, whatever the
 * outcome. */
struct acme_order *acme_order(struct acme *a, const struct acme_order_req *req,
    void (*cb)(void *arg, const struct acme_order_result *r), void *arg,
    char *err, size_t errlen);
/* The order's callback gets arg from now on (its owner moved). */
void acme_order_set_arg(struct acme_order *o, void *arg);
/* Stops an order: its answers are cleaned up (without waiting), its
 * callback not called. */
void acme_order_cancel(struct acme_order *o);

/* ---- ARI (RFC 9773) ---- */

/* GET <renewalInfo>/<ari_id>: cb gets err NULL and the suggested window,
 * and the Retry-After in seconds (-1 when absent). err when the CA has no
 * renewalInfo ("no ARI"), or the request or document failed. */
void acme_renewal_info(struct acme *a, const char *ari_id,
    void (*cb)(void *arg, const char *err, time_t start, time_t end, long retry_after),
    void *arg);

/* Drops every renewalInfo request in flight whose callback argument is
 * arg, without calling it. */
void acme_renewal_info_cancel(struct acme *a, void *arg);

/* ---- revocation and account changes (RFC 8555 sections 7.6, 7.3.5-6) ---- */

/* Revokes the certificate (PEM, leaf first) with reason (< 0: none),
 * signed by the account, or by cert_key (jwk) when not NULL. */
void acme_revoke(struct acme *a, const char *cert_pem, size_t len, int reason,
    struct crypto_key *cert_key, void (*cb)(void *arg, const char *err), void *arg);
/* keyChange to newk (borrowed; becomes the client's key on success). */
void acme_key_change(struct acme *a, struct crypto_key *newk,
    void (*cb)(void *arg, const char *err), void *arg);
void acme_deactivate(struct acme *a, void (*cb)(void *arg, const char *err), void *arg);

#endif
