/* acme.c - the RFC 8555 client on the worker's libev loop.
 *
 * One function sends every signed request (acme_post -> req_send): nonce
 * from the pool or HEAD newNonce, JWS, POST, Replay-Nonce kept, badNonce
 * retried at once, a transport failure retried twice, accountDoesNotExist
 * sent again once per order after registering the same key again. An
 * order is a small state machine driven by the completions of those
 * requests and of its challenge solvers (acme/solver.h: http-01 on the
 * agents, DNS); every answer it presented is cleaned up before its
 * callback runs. */
#include "acme/acme.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <ev.h>

#include "acme/checks.h"
#include "acme/crypto.h"
#include "acme/http.h"
#include "acme/jws.h"
#include "acme/proto.h"
#include "acme/solver.h"
#include "common/b64url.h"
#include "common/log.h"
#include "common/token.h"

#define NETERR_RETRIES 2
#define NETERR_DELAY 1.0		/* seconds before a transport retry */
#define POLL_FIRST 0.05		/* seconds, doubling: a fast CA is not kept waiting */
#define POLL_MAX_DEFAULT 10.0
#define ORDER_TIMEOUT_DEFAULT 600.0
#define PEM_CHAIN_ACCEPT "Accept: application/pem-certificate-chain"

/* ---- requests ---- */

/* A finished response, as the request's callback sees it. */
struct acme_resp {
	const char *neterr;		/* transport failure, else NULL */
	long status;
	const char *body;
	size_t len;
	const char *location;
	long retry_after;		/* seconds, -1 when absent */
	const char *const *links;	/* Link header values */
	size_t nlinks;
	struct proto_problem *prob;	/* status >= 400 or problem+json, else NULL */
	const char *lost;		/* the account could not be registered again: why */
	const char *url;
};

struct acme_req {
	struct acme *a;
	struct acme_req *next, **pprev;
	char *url;
	char *payload;			/* NULL: POST-as-GET */
	bool jwk;			/* sign with jwk, not kid */
	bool get;			/* unsigned GET (the directory) */
	struct crypto_key *key;		/* signer */
	bool accept_pem;
	unsigned bad, neterrs;
	const char *failed;		/* deliver this failure from the loop */
	/* accountDoesNotExist: the owner's once-flag for registering the key
	 * again (an order's), NULL when the request cannot be repeated */
	bool *rereg;
	bool rereg_wait;		/* parked until the account is registered again */
	unsigned kid_gen;		/* the account's kid_gen when signed */
	const char *owner;		/* for messages, borrowed: the order's label */
	char *lost;			/* the registration failed: deliver this */
	struct http_call *call;
	ev_timer delay;			/* retry after a transport failure */
	void (*cb)(void *arg, const struct acme_resp *r);
	void *arg;
};

struct acme {
	struct ev_loop *loop;
	struct http_client *http;
	char *ca_name, *dir_url;
	char **contact;
	size_t ncontact;
	char *eab_kid, *eab_hmac;
	struct crypto_key *key;
	char *kid;
	bool only_existing;
	char thumb[JWS_THUMBPRINT_LEN + 1];
	struct proto_directory dir;
	bool have_dir;
	char *nonces[ACME_NONCE_POOL];
	size_t nnonces;
	unsigned long nonce_fetched, nonce_bad;
	struct acme_req *reqs;
	struct acme_order *orders;
	void (*start_cb)(void *, const char *);
	void *start_arg;
	bool rereg_busy;		/* newAccount again after accountDoesNotExist */
	unsigned kid_gen;		/* counts the registrations again */
	void (*account_cb)(void *, const char *);
	void *account_arg;
};

static void req_send(struct acme_req *r);
static bool req_account_lost(struct acme_req *r);

static void
req_free(struct acme_req *r)
{
	if (r == NULL)
		return;
	if (r->call != NULL)
		http_cancel(r->call);
	ev_timer_stop(r->a->loop, &r->delay);
	if (r->pprev != NULL) {
		*r->pprev = r->next;
		if (r->next != NULL)
			r->next->pprev = r->pprev;
	}
	free(r->url);
	free(r->payload);
	free(r->lost);
	free(r);
}

static void
nonce_push(struct acme *a, const char *n)
{
	if (n == NULL || *n == '\0' || strlen(n) > 256 || !b64url_alphabet(n, strlen(n)))
		return;
	if (a->nnonces == ACME_NONCE_POOL) {	/* drop the oldest */
		free(a->nonces[0]);
		memmove(a->nonces, a->nonces + 1, (ACME_NONCE_POOL - 1) * sizeof *a->nonces);
		a->nnonces--;
	}
	char *c = strdup(n);
	if (c != NULL)
		a->nonces[a->nnonces++] = c;
}

static char *
nonce_pop(struct acme *a)
{
	return a->nnonces == 0 ? NULL : a->nonces[--a->nnonces];
}

/* Delivers r to its callback and frees it; the callback may free a. */
static void
req_deliver(struct acme_req *r, const struct acme_resp *resp)
{
	if (r->pprev != NULL) {
		*r->pprev = r->next;
		if (r->next != NULL)
			r->next->pprev = r->pprev;
		r->pprev = NULL;
	}
	ev_timer_stop(r->a->loop, &r->delay);
	r->cb(r->arg, resp);
	free(r->url);
	free(r->payload);
	free(r->lost);
	free(r);
}

static void
req_fail(struct acme_req *r, const char *why)
{
	struct acme_resp resp = { .neterr = why, .retry_after = -1, .body = "", .url = r->url };
	req_deliver(r, &resp);
}

static void
req_delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct acme_req *r = w->data;

	if (r->lost != NULL) {
		struct acme_resp resp = { .lost = r->lost, .retry_after = -1, .body = "",
		    .url = r->url };
		req_deliver(r, &resp);
	} else if (r->failed != NULL) {
		req_fail(r, r->failed);
	} else {
		req_send(r);
	}
}

static bool
is_problem(const struct http_resp *hr)
{
	return hr->content_type != NULL &&
	    strncasecmp(hr->content_type, "application/problem+json", 24) == 0;
}

static void
req_done(void *arg, const struct http_resp *hr)
{
	struct acme_req *r = arg;
	struct acme *a = r->a;
	struct proto_problem prob = { 0 };
	struct acme_resp resp = { .retry_after = -1, .url = r->url };

	r->call = NULL;
	nonce_push(a, hr->replay_nonce);
	if (hr->result != 0) {
		if (r->neterrs++ < NETERR_RETRIES) {
			log_info("%s: %s, retrying in %.0f s", r->url, hr->error, NETERR_DELAY);
			ev_timer_set(&r->delay, NETERR_DELAY, 0.);
			ev_timer_start(a->loop, &r->delay);
			return;
		}
		resp.neterr = hr->error;
		resp.body = "";
		req_deliver(r, &resp);
		return;
	}
	resp.status = hr->status;
	resp.body = (const char *)hr->body;
	resp.len = hr->body_len;
	resp.location = hr->location;
	resp.links = hr->links;
	resp.nlinks = hr->nlinks;
	if (hr->retry_after != NULL) {
		long secs;
		if (proto_retry_after_parse(hr->retry_after, strlen(hr->retry_after),
		    time(NULL), &secs) == 0)
			resp.retry_after = secs;
	}
	if (hr->status >= 400 || is_problem(hr)) {
		if (proto_problem_parse(&prob, resp.body, resp.len, NULL, 0) < 0) {
			proto_problem_free(&prob);
			memset(&prob, 0, sizeof prob);
		}
		if (prob.status == 0)
			prob.status = (int)hr->status;
		resp.prob = &prob;
		if (prob.kind == PROTO_ERR_BAD_NONCE && r->bad < ACME_BADNONCE_RETRIES &&
		    !r->get) {
			r->bad++;
			a->nonce_bad++;
			log_debug("%s: badNonce, retrying with the fresh nonce", r->url);
			proto_problem_free(&prob);
			req_send(r);
			return;
		}
		if (prob.kind == PROTO_ERR_ACCOUNT_DOES_NOT_EXIST && req_account_lost(r)) {
			proto_problem_free(&prob);
			return;
		}
	}
	req_deliver(r, &resp);
	proto_problem_free(&prob);
}

static void
req_nonce_done(void *arg, const struct http_resp *hr)
{
	struct acme_req *r = arg;
	char why[ACME_ERR_MAX];

	r->call = NULL;
	if (hr->replay_nonce != NULL && hr->result == 0) {
		r->a->nonce_fetched++;
		nonce_push(r->a, hr->replay_nonce);
		if (r->a->nnonces > 0) {
			req_send(r);
			return;
		}
	}
	if (hr->result != 0 && r->neterrs++ < NETERR_RETRIES) {
		ev_timer_set(&r->delay, NETERR_DELAY, 0.);
		ev_timer_start(r->a->loop, &r->delay);
		return;
	}
	if (hr->result != 0)
		snprintf(why, sizeof why, "newNonce %s: %s", hr->url, hr->error);
	else
		snprintf(why, sizeof why, "newNonce %s: HTTP %ld without a usable Replay-Nonce",
		    hr->url, hr->status);
	req_fail(r, why);
}

/* A failure found while sending: delivered from the loop, never from
 * inside the call that started the request. */
static void
req_fail_later(struct acme_req *r, const char *why)
{
	r->failed = why;
	ev_timer_set(&r->delay, 0., 0.);
	ev_timer_start(r->a->loop, &r->delay);
}

static void
req_send(struct acme_req *r)
{
	struct acme *a = r->a;
	struct http_req hreq = { 0 };
	const char *hdrs[1];
	char *body = NULL, *nonce = NULL;
	size_t len = 0;

	if (r->get) {
		hreq.method = HTTP_GET;
		hreq.url = r->url;
		hreq.cb = req_done;
		hreq.arg = r;
		goto submit;
	}
	if ((nonce = nonce_pop(a)) == NULL) {
		if (!a->have_dir) {
			req_fail_later(r, "no directory yet");
			return;
		}
		hreq.method = HTTP_HEAD;
		hreq.url = a->dir.new_nonce;
		hreq.cb = req_nonce_done;
		hreq.arg = r;
		goto submit;
	}
	r->kid_gen = a->kid_gen;
	body = jws_sign(r->key, r->jwk ? NULL : a->kid, nonce, r->url, r->payload, &len);
	free(nonce);
	if (body == NULL) {
		req_fail_later(r, "could not sign the request (JWS)");
		return;
	}
	hreq.method = HTTP_POST;
	hreq.url = r->url;
	hreq.body = body;
	hreq.body_len = len;
	hreq.content_type = "application/jose+json";
	if (r->accept_pem) {
		hdrs[0] = PEM_CHAIN_ACCEPT;
		hreq.headers = hdrs;
		hreq.nheaders = 1;
	}
	hreq.cb = req_done;
	hreq.arg = r;
submit:
	r->call = http_submit(a->http, &hreq);
	free(body);
	if (r->call == NULL)
		req_fail_later(r, "could not start the request");
}

/* Signed POST (payload NULL: POST-as-GET) or, with get, a plain GET. The
 * request is registered with a so that acme_free cancels it. */
static struct acme_req *
acme_post(struct acme *a, const char *url, const char *payload, unsigned flags,
    struct crypto_key *key, void (*cb)(void *, const struct acme_resp *), void *arg)
{
	struct acme_req *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->a = a;
	r->url = strdup(url);
	r->payload = payload != NULL ? strdup(payload) : NULL;
	if (r->url == NULL || (payload != NULL && r->payload == NULL)) {
		free(r->url);
		free(r->payload);
		free(r);
		return NULL;
	}
	r->jwk = (flags & 1) != 0;
	r->get = (flags & 2) != 0;
	r->accept_pem = (flags & 4) != 0;
	r->key = key != NULL ? key : a->key;
	r->cb = cb;
	r->arg = arg;
	ev_timer_init(&r->delay, req_delay_cb, 0., 0.);
	r->delay.data = r;
	r->next = a->reqs;
	if (a->reqs != NULL)
		a->reqs->pprev = &r->next;
	a->reqs = r;
	r->pprev = &a->reqs;
	req_send(r);
	return r;
}

#define POST_JWK 1u
#define POST_GET 2u
#define POST_PEM 4u

/* One line for a failed response: the problem explained, else the status. */
static void
resp_explain(const struct acme_resp *r, const char *what, const char *ident,
    const struct proto_explain_ctx *ctx, char *out, size_t outlen)
{
	char line[ACME_ERR_MAX], esc[160];

	if (r->neterr != NULL) {
		snprintf(out, outlen, "%s: %s: %s", what, r->url, r->neterr);
		return;
	}
	if (r->lost != NULL) {
		snprintf(out, outlen, "%s: %s", what, r->lost);
		return;
	}
	if (r->prob != NULL && (r->prob->type != NULL || r->prob->detail != NULL)) {
		struct proto_explain_ctx c = { 0 };
		if (ctx != NULL)
			c = *ctx;
		if (c.retry_after <= 0)
			c.retry_after = r->retry_after;
		proto_problem_explain(r->prob, ident, &c, line, sizeof line);
		snprintf(out, outlen, "%s: %s", what, line);
		return;
	}
	log_escape(esc, sizeof esc, r->body, r->len > 120 ? 120 : r->len);
	snprintf(out, outlen, "%s: %s: unexpected HTTP %ld%s%s", what, r->url, r->status,
	    *esc != '\0' ? ": " : "", esc);
}

/* ---- client ---- */

static char *
xstrdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

struct acme *
acme_new(struct ev_loop *loop, struct http_client *http, const struct acme_opts *opts,
    char *err, size_t errlen)
{
	struct acme *a;

	if (opts->directory == NULL || opts->account_key == NULL) {
		snprintf(err, errlen, "acme: a directory URL and an account key are required");
		return NULL;
	}
	if ((opts->eab_kid == NULL) != (opts->eab_hmac_key == NULL)) {
		snprintf(err, errlen, "acme: eab-kid and eab-hmac-key go together");
		return NULL;
	}
	if ((a = calloc(1, sizeof *a)) == NULL)
		goto nomem;
	a->loop = loop;
	a->http = http;
	a->key = opts->account_key;
	a->only_existing = opts->only_existing;
	a->ca_name = strdup(opts->ca_name != NULL ? opts->ca_name : "ca");
	a->dir_url = strdup(opts->directory);
	a->eab_kid = xstrdup(opts->eab_kid);
	a->eab_hmac = xstrdup(opts->eab_hmac_key);
	a->kid = xstrdup(opts->account_url);
	if (a->ca_name == NULL || a->dir_url == NULL ||
	    (opts->eab_kid != NULL && (a->eab_kid == NULL || a->eab_hmac == NULL)) ||
	    (opts->account_url != NULL && a->kid == NULL))
		goto nomem;
	if (opts->ncontact > 0) {
		if ((a->contact = calloc(opts->ncontact, sizeof *a->contact)) == NULL)
			goto nomem;
		for (; a->ncontact < opts->ncontact; a->ncontact++)
			if ((a->contact[a->ncontact] = strdup(opts->contact[a->ncontact])) == NULL)
				goto nomem;
	}
	if (jws_thumbprint(a->key, a->thumb) < 0) {
		snprintf(err, errlen, "acme: cannot compute the account key's thumbprint");
		acme_free(a);
		return NULL;
	}
	return a;
nomem:
	snprintf(err, errlen, "acme: out of memory");
	acme_free(a);
	return NULL;
}

void
acme_free(struct acme *a)
{
	if (a == NULL)
		return;
	while (a->orders != NULL)
		acme_order_cancel(a->orders);
	while (a->reqs != NULL)
		req_free(a->reqs);
	for (size_t i = 0; i < a->nnonces; i++)
		free(a->nonces[i]);
	for (size_t i = 0; i < a->ncontact; i++)
		free(a->contact[i]);
	free(a->contact);
	proto_directory_free(&a->dir);
	free(a->ca_name);
	free(a->dir_url);
	free(a->eab_kid);
	free(a->eab_hmac);
	free(a->kid);
	free(a);
}

const struct proto_directory *
acme_directory(const struct acme *a)
{
	return a->have_dir ? &a->dir : NULL;
}

const char *
acme_account_url(const struct acme *a)
{
	return a->kid;
}

const char *
acme_thumbprint(const struct acme *a)
{
	return a->thumb;
}

char *
acme_keyauth(const struct acme *a, const char *token)
{
	return jws_keyauth(token, a->thumb);
}

void
acme_nonce_stats(const struct acme *a, unsigned long *fetched, unsigned long *bad)
{
	*fetched = a->nonce_fetched;
	*bad = a->nonce_bad;
}

static void
start_finish(struct acme *a, const char *err)
{
	void (*cb)(void *, const char *) = a->start_cb;

	a->start_cb = NULL;
	if (cb != NULL)
		cb(a->start_arg, err);
}

static void
account_done(void *arg, const struct acme_resp *r)
{
	struct acme *a = arg;
	char err[ACME_ERR_MAX], what[300];

	snprintf(what, sizeof what, "%s: account", a->ca_name);
	if (r->neterr != NULL || (r->status != 200 && r->status != 201)) {
		if (r->prob != NULL && r->prob->kind == PROTO_ERR_ACCOUNT_DOES_NOT_EXIST &&
		    a->only_existing)
			snprintf(err, sizeof err, "%s: the CA has no account for this key "
			    "(create one with `hacme issue` or `hacme account show`)", what);
		else if (r->prob != NULL &&
		    r->prob->kind == PROTO_ERR_EXTERNAL_ACCOUNT_REQUIRED && a->eab_kid == NULL)
			snprintf(err, sizeof err, "%s: the CA requires External Account "
			    "Binding: set eab-kid and eab-hmac-key in `%s`", what, a->ca_name);
		else
			resp_explain(r, what, NULL, NULL, err, sizeof err);
		start_finish(a, err);
		return;
	}
	if (r->location == NULL || strncmp(r->location, "http", 4) != 0) {
		snprintf(err, sizeof err, "%s: the CA's reply has no account URL (Location)", what);
		start_finish(a, err);
		return;
	}
	free(a->kid);
	if ((a->kid = strdup(r->location)) == NULL) {
		start_finish(a, "out of memory");
		return;
	}
	log_info("%s: %s account %s", a->ca_name, r->status == 201 ? "created" : "found",
	    a->kid);
	start_finish(a, NULL);
}

/* The newAccount payload (with EAB when configured), or NULL with err. */
static char *
account_payload(struct acme *a, bool only_existing, char *err, size_t errlen)
{
	char eerr[ACME_ERR_MAX];
	cJSON *eab = NULL;
	char *payload;

	if (a->eab_kid != NULL) {
		eab = jws_eab(a->key, a->eab_kid, a->eab_hmac, a->dir.new_account, eerr, sizeof eerr);
		if (eab == NULL) {
			snprintf(err, errlen, "%s: %s", a->ca_name, eerr);
			return NULL;
		}
	}
	payload = proto_new_account_json((const char *const *)a->contact, a->ncontact,
	    true, only_existing, eab);
	cJSON_Delete(eab);
	if (payload == NULL)
		snprintf(err, errlen, "out of memory");
	return payload;
}

static void
account_register(struct acme *a)
{
	char err[ACME_ERR_MAX];
	char *payload;

	if ((payload = account_payload(a, a->only_existing, err, sizeof err)) == NULL) {
		start_finish(a, err);
		return;
	}
	if (a->dir.terms_of_service != NULL && !a->only_existing)
		log_info("%s: agreeing to the terms of service %s", a->ca_name,
		    a->dir.terms_of_service);
	if (acme_post(a, a->dir.new_account, payload, POST_JWK, NULL, account_done, a) == NULL) {
		free(payload);
		start_finish(a, "out of memory");
		return;
	}
	free(payload);
}

/* ---- the CA forgot the account: register the same key again ---- */

/* Every request parked for the registration goes on: signed again with the
 * new kid, or (err) failed from the loop. */
static void
rereg_finish(struct acme *a, const char *err)
{
	for (struct acme_req *r = a->reqs; r != NULL; r = r->next) {
		if (!r->rereg_wait)
			continue;
		r->rereg_wait = false;
		if (err == NULL) {
			req_send(r);
			continue;
		}
		free(r->lost);
		r->lost = strdup(err);
		req_fail_later(r, "out of memory");
	}
}

static void
rereg_done(void *arg, const struct acme_resp *r)
{
	struct acme *a = arg;
	char err[ACME_ERR_MAX], what[300];
	char *kid;

	a->rereg_busy = false;
	snprintf(what, sizeof what, "%s: registering the account again", a->ca_name);
	if (r->neterr != NULL || (r->status != 200 && r->status != 201)) {
		resp_explain(r, what, NULL, NULL, err, sizeof err);
	} else if (r->location == NULL || strncmp(r->location, "http", 4) != 0) {
		snprintf(err, sizeof err, "%s: the CA's reply has no account URL (Location)", what);
	} else if ((kid = strdup(r->location)) == NULL) {
		snprintf(err, sizeof err, "%s: out of memory", what);
	} else {
		free(a->kid);
		a->kid = kid;
		a->kid_gen++;
		log_notice("%s: registered again with the same key: account %s", a->ca_name,
		    a->kid);
		if (a->account_cb != NULL)
			a->account_cb(a->account_arg, a->kid);
		rereg_finish(a, NULL);
		return;
	}
	rereg_finish(a, err);
}

/* r was refused with accountDoesNotExist. Signed before the account was
 * registered again: sent again. Else parked until one newAccount with the
 * same key (shared by every request that waits), once per owner: false
 * when r is to be delivered as it is. */
static bool
req_account_lost(struct acme_req *r)
{
	struct acme *a = r->a;
	char err[ACME_ERR_MAX];
	char *payload;

	if (r->jwk || r->get || r->rereg == NULL)
		return false;
	if (r->kid_gen != a->kid_gen) {
		req_send(r);
		return true;
	}
	if (*r->rereg)
		return false;
	*r->rereg = true;
	r->rereg_wait = true;
	if (a->rereg_busy)
		return true;
	log_notice("%s: the CA does not know account %s any more (accountDoesNotExist): "
	    "registering the same key again, then repeating %s%s%s", a->ca_name,
	    a->kid != NULL ? a->kid : "?", r->owner != NULL ? r->owner : "",
	    r->owner != NULL ? ": " : "", r->url);
	if ((payload = account_payload(a, false, err, sizeof err)) == NULL) {
		rereg_finish(a, err);
		return true;
	}
	a->rereg_busy = true;
	if (acme_post(a, a->dir.new_account, payload, POST_JWK, NULL, rereg_done, a) == NULL) {
		a->rereg_busy = false;
		snprintf(err, sizeof err, "%s: registering the account again: out of memory",
		    a->ca_name);
		rereg_finish(a, err);
	}
	free(payload);
	return true;
}

static void
directory_done(void *arg, const struct acme_resp *r)
{
	struct acme *a = arg;
	char err[ACME_ERR_MAX], why[PROTO_WHY_MAX], what[300];

	snprintf(what, sizeof what, "%s: directory", a->ca_name);
	if (r->neterr != NULL || r->status != 200) {
		resp_explain(r, what, NULL, NULL, err, sizeof err);
		start_finish(a, err);
		return;
	}
	proto_directory_free(&a->dir);
	if (proto_directory_parse(&a->dir, r->body, r->len, why, sizeof why) < 0) {
		snprintf(err, sizeof err, "%s %s: %s", what, a->dir_url, why);
		start_finish(a, err);
		return;
	}
	a->have_dir = true;
	if (a->dir.external_account_required && a->eab_kid == NULL && a->kid == NULL) {
		snprintf(err, sizeof err, "%s: the CA requires External Account Binding: "
		    "set eab-kid and eab-hmac-key in `%s`", a->ca_name, a->ca_name);
		start_finish(a, err);
		return;
	}
	if (a->kid != NULL) {
		start_finish(a, NULL);
		return;
	}
	account_register(a);
}

void
acme_start(struct acme *a, void (*cb)(void *arg, const char *err), void *arg)
{
	a->start_cb = cb;
	a->start_arg = arg;
	if (acme_post(a, a->dir_url, NULL, POST_GET, NULL, directory_done, a) == NULL)
		log_err("%s: out of memory", a->ca_name);
}

/* ---- simple account operations ---- */

struct simple {
	struct acme *a;
	void (*cb)(void *, const char *);
	void (*json_cb)(void *, const char *, const char *);
	void *arg;
	const char *what;
	struct crypto_key *newk;
	/* accountDoesNotExist: register the key again and repeat, once; not for
	 * requests that name the old account (its URL, keyChange's inner JWS) */
	bool repeatable, reregistered;
};

static struct simple *
simple_new(struct acme *a, const char *what, void (*cb)(void *, const char *),
    void *arg)
{
	struct simple *s = calloc(1, sizeof *s);

	if (s != NULL) {
		s->a = a;
		s->cb = cb;
		s->arg = arg;
		s->what = what;
	}
	return s;
}

static void
simple_done(void *arg, const struct acme_resp *r)
{
	struct simple *s = arg;
	char err[ACME_ERR_MAX], what[300];

	snprintf(what, sizeof what, "%s: %s", s->a->ca_name, s->what);
	if (r->neterr != NULL || r->status < 200 || r->status > 299) {
		resp_explain(r, what, NULL, NULL, err, sizeof err);
		if (s->json_cb != NULL)
			s->json_cb(s->arg, err, NULL);
		else
			s->cb(s->arg, err);
	} else {
		if (s->newk != NULL)
			s->a->key = s->newk, jws_thumbprint(s->newk, s->a->thumb);
		if (s->json_cb != NULL)
			s->json_cb(s->arg, NULL, r->body);
		else
			s->cb(s->arg, NULL);
	}
	free(s);
}

static void
simple_post(struct acme *a, struct simple *s, const char *url, const char *payload,
    unsigned flags, struct crypto_key *key)
{
	struct acme_resp resp = { .url = url != NULL ? url : "(none)", .retry_after = -1,
	    .body = "" };
	struct acme_req *r;

	if (s == NULL)
		return;
	if (url == NULL || a->kid == NULL) {
		resp.neterr = "the CA or account does not offer this";
		/* still from the loop: the caller started us from a callback or before run */
		simple_done(s, &resp);
		return;
	}
	if ((r = acme_post(a, url, payload, flags, key, simple_done, s)) == NULL) {
		resp.neterr = "out of memory";
		simple_done(s, &resp);
		return;
	}
	if (s->repeatable)
		r->rereg = &s->reregistered;
}

void
acme_account_fetch(struct acme *a, void (*cb)(void *, const char *, const char *), void *arg)
{
	struct simple *s = simple_new(a, "account", NULL, arg);

	if (s == NULL) {
		cb(arg, "out of memory", NULL);
		return;
	}
	s->json_cb = cb;
	simple_post(a, s, a->kid, NULL, 0, NULL);
}

struct ari {
	struct acme *a;
	void (*cb)(void *, const char *, time_t, time_t, long);
	void *arg;
};

static void
ari_done(void *arg, const struct acme_resp *r)
{
	struct ari *x = arg;
	struct proto_renewal_info ri = { 0 };
	char err[ACME_ERR_MAX], why[PROTO_WHY_MAX];

	if (r->neterr != NULL || r->status != 200) {
		resp_explain(r, "renewalInfo", NULL, NULL, err, sizeof err);
		x->cb(x->arg, err, 0, 0, r->retry_after);
	} else if (proto_renewal_info_parse(&ri, r->body, r->len, why, sizeof why) < 0) {
		snprintf(err, sizeof err, "renewalInfo %s: %s", r->url, why);
		x->cb(x->arg, err, 0, 0, r->retry_after);
	} else {
		x->cb(x->arg, NULL, ri.start, ri.end, r->retry_after);
	}
	proto_renewal_info_free(&ri);
	free(x);
}

void
acme_renewal_info_cancel(struct acme *a, void *arg)
{
	struct acme_req *r, *next;

	for (r = a->reqs; r != NULL; r = next) {
		next = r->next;
		if (r->cb == ari_done && ((struct ari *)r->arg)->arg == arg) {
			free(r->arg);
			req_free(r);
		}
	}
}

void
acme_renewal_info(struct acme *a, const char *ari_id,
    void (*cb)(void *, const char *, time_t, time_t, long), void *arg)
{
	struct ari *x;
	char *url;
	size_t n;

	if (!a->have_dir || a->dir.renewal_info == NULL || ari_id == NULL || *ari_id == '\0' ||
	    !b64url_alphabet(ari_id, strcspn(ari_id, ".")) ) {
		cb(arg, "no ARI", 0, 0, -1);
		return;
	}
	n = strlen(a->dir.renewal_info) + strlen(ari_id) + 2;
	if ((x = calloc(1, sizeof *x)) == NULL || (url = malloc(n)) == NULL) {
		free(x);
		cb(arg, "out of memory", 0, 0, -1);
		return;
	}
	/* RFC 9773 section 4.1: the path of renewalInfo, a slash, the id */
	snprintf(url, n, "%s%s%s", a->dir.renewal_info,
	    a->dir.renewal_info[strlen(a->dir.renewal_info) - 1] == '/' ? "" : "/", ari_id);
	x->a = a;
	x->cb = cb;
	x->arg = arg;
	if (acme_post(a, url, NULL, POST_GET, NULL, ari_done, x) == NULL) {
		free(x);
		cb(arg, "out of memory", 0, 0, -1);
	}
	free(url);
}

void
acme_revoke(struct acme *a, const char *cert_pem, size_t len, int reason,
    struct crypto_key *cert_key, void (*cb)(void *, const char *), void *arg)
{
	char err[CRYPTO_ERR_MAX];
	char *der, *payload;
	struct simple *s;

	if ((der = crypto_cert_der_b64url(cert_pem, len, err, sizeof err)) == NULL) {
		cb(arg, err);
		return;
	}
	payload = proto_revoke_json(der, reason);
	free(der);
	if (payload == NULL || (s = simple_new(a, "revokeCert", cb, arg)) == NULL) {
		free(payload);
		cb(arg, "out of memory");
		return;
	}
	s->repeatable = true;
	simple_post(a, s, a->dir.revoke_cert, payload, cert_key != NULL ? POST_JWK : 0,
	    cert_key);
	free(payload);
}

void
acme_key_change(struct acme *a, struct crypto_key *newk, void (*cb)(void *, const char *),
    void *arg)
{
	struct simple *s;
	char *inner;

	if (a->dir.key_change == NULL || a->kid == NULL) {
		cb(arg, "the CA offers no keyChange, or no account yet");
		return;
	}
	inner = jws_key_change(newk, a->key, a->kid, a->dir.key_change);
	if (inner == NULL || (s = simple_new(a, "keyChange", cb, arg)) == NULL) {
		free(inner);
		cb(arg, "could not build the keyChange request");
		return;
	}
	s->newk = newk;
	simple_post(a, s, a->dir.key_change, inner, 0, NULL);
	free(inner);
}

void
acme_deactivate(struct acme *a, void (*cb)(void *, const char *), void *arg)
{
	char *payload = proto_deactivate_json();
	struct simple *s;

	if (payload == NULL || (s = simple_new(a, "account deactivation", cb, arg)) == NULL) {
		free(payload);
		cb(arg, "out of memory");
		return;
	}
	simple_post(a, s, a->kid, payload, 0, NULL);
	free(payload);
}

/* ---- orders ---- */

enum order_phase {
	PH_NEW = 0,
	PH_AUTHZ,		/* fetching authorizations */
	PH_PREFLIGHT,
	PH_PUBLISH,
	PH_VALIDATE,		/* challenges answered, polling authorizations */
	PH_READY,		/* polling the order until ready */
	PH_FINALIZE,		/* finalize sent / polling until valid */
	PH_DOWNLOAD,
	PH_ALTERNATE,
	PH_CLEANUP,		/* the solvers clean up */
	PH_DONE,
};

struct authz {
	struct acme_order *o;
	char *url, *name;
	bool wildcard;
	struct solver *solver;		/* borrowed, from the request */
	long name_index;		/* 1 + index in o->names, 0: not known yet */
	char *token, *keyauth, *chall_url;
	char **issuers;			/* dns-persist-01's issuer-domain-names */
	size_t nissuers;
	bool pending;			/* needs validation */
	bool presented;			/* present was called: cleanup is due */
	bool busy;			/* a prepare or present callback to come */
	bool responded;
	bool valid;
	struct acme_req *req;
	ev_timer poll;
	double interval;
	char prep_err[ACME_ERR_MAX];	/* what the pre-flight found */
};

/* A pre-flight that runs before newOrder (solver_ops.prepare_before_order). */
struct early {
	struct acme_order *o;
	size_t i;			/* the name */
	bool busy;
	char err[ACME_ERR_MAX];
};

struct acme_order {
	struct acme *a;
	struct acme_order *next, **pprev;
	enum order_phase phase;
	char *label;
	char **names;
	size_t nnames;
	enum keytype keytype;
	struct crypto_key *reuse_key;
	char *profile, *replaces, *preferred_chain;
	struct solver **solvers;	/* borrowed, one per name */
	struct checks *checks;		/* borrowed: before newOrder */
	const struct config *checks_cfg;
	bool checked;
	struct early *early;		/* per name, while the early pre-flight runs */
	unsigned early_left;
	bool early_done;
	bool preflight;
	double poll_max, timeout;

	char *url, *finalize, *cert_url;
	struct authz *az;
	size_t naz;
	unsigned outstanding;		/* sub-operations in flight */
	unsigned cleanups;		/* solver cleanup callbacks to come */
	bool hold;			/* cleanup: still being started */
	unsigned authz_reused, published;
	struct acme_req *req;		/* order-level request in flight */
	ev_timer poll, deadline;
	double interval;
	struct crypto_key *key;		/* the certificate's key */
	char *key_pem;
	size_t key_len;
	char *chain;
	size_t chain_len;
	char **alts;
	size_t nalts, alt_i;

	enum acme_fail fail;
	char err[ACME_ERR_MAX];
	long retry_after;
	long last_retry_after;		/* of the last poll, for messages */
	bool reregistered;		/* accountDoesNotExist handled once */
	void (*cb)(void *, const struct acme_order_result *);
	void *arg;
};

static void order_next(struct acme_order *o);
static void order_cleanup(struct acme_order *o);
static void authz_poll_cb(struct ev_loop *loop, ev_timer *w, int revents);

static const char *
order_name(const struct acme_order *o)
{
	return o->label;
}

/* Records the first failure and starts the cleanup. */
static void
order_failf(struct acme_order *o, enum acme_fail kind, const char *fmt, ...)
{
	va_list ap;

	if (o->fail == ACME_OK) {
		o->fail = kind;
		va_start(ap, fmt);
		vsnprintf(o->err, sizeof o->err, fmt, ap);
		va_end(ap);
	}
	order_cleanup(o);
}

/* A request of o's, signed with the account: sent again once when the CA
 * forgot the account and the key is registered again. */
static struct acme_req *
order_post(struct acme_order *o, const char *url, const char *payload, unsigned flags,
    void (*cb)(void *, const struct acme_resp *), void *arg)
{
	struct acme_req *r = acme_post(o->a, url, payload, flags, NULL, cb, arg);

	if (r != NULL) {
		r->rereg = &o->reregistered;
		r->owner = o->label;
	}
	return r;
}

static void
authz_stop(struct authz *z)
{
	struct acme *a = z->o->a;

	ev_timer_stop(a->loop, &z->poll);
	if (z->req != NULL) {
		req_free(z->req);
		z->req = NULL;
	}
	if (z->busy) {
		solver_cancel(z->solver, z);
		z->busy = false;
	}
}

static void
early_stop(struct acme_order *o)
{
	for (size_t i = 0; o->early != NULL && i < o->nnames; i++)
		if (o->early[i].busy) {
			solver_cancel(o->solvers[i], &o->early[i]);
			o->early[i].busy = false;
		}
}

/* Unlinks o and stops its timers and requests: after this, o no longer
 * touches the client. */
static void
order_stop(struct acme_order *o)
{
	if (o->pprev != NULL) {
		*o->pprev = o->next;
		if (o->next != NULL)
			o->next->pprev = o->pprev;
		o->pprev = NULL;
	}
	ev_timer_stop(o->a->loop, &o->poll);
	ev_timer_stop(o->a->loop, &o->deadline);
	checks_cancel(o->checks, o);
	if (o->req != NULL) {
		req_free(o->req);
		o->req = NULL;
	}
	for (size_t i = 0; i < o->naz; i++)
		authz_stop(&o->az[i]);
	early_stop(o);
}

/* Frees o's memory; order_stop must have run. */
static void
order_free(struct acme_order *o)
{
	for (size_t i = 0; i < o->naz; i++) {
		struct authz *z = &o->az[i];
		free(z->url);
		free(z->name);
		free(z->token);
		free(z->keyauth);
		free(z->chall_url);
		proto_strv_free(z->issuers, z->nissuers);
	}
	free(o->az);
	for (size_t i = 0; i < o->nnames; i++)
		free(o->names[i]);
	free(o->names);
	free(o->solvers);
	free(o->early);
	proto_strv_free(o->alts, o->nalts);
	free(o->label);
	free(o->profile);
	free(o->replaces);
	free(o->preferred_chain);
	free(o->url);
	free(o->finalize);
	free(o->cert_url);
	crypto_key_free(o->key);
	if (o->key_pem != NULL)
		crypto_wipe_free(o->key_pem, o->key_len);
	free(o->chain);
	free(o);
}

static void
order_deliver(struct acme_order *o)
{
	struct acme_order_result res = { 0 };

	o->phase = PH_DONE;
	res.fail = o->fail;
	res.err = o->fail != ACME_OK ? o->err : NULL;
	res.retry_after = o->retry_after;
	if (o->fail == ACME_OK) {
		res.key_pem = o->key_pem;
		res.key_len = o->key_len;
		res.chain_pem = o->chain;
		res.chain_len = o->chain_len;
	}
	res.order_url = o->url;
	res.cert_url = o->cert_url;
	res.authz_total = (unsigned)o->naz;
	res.authz_reused = o->authz_reused;
	res.published = o->published;
	order_stop(o);		/* first: the callback may free the client */
	o->cb(o->arg, &res);
	order_free(o);
}

static void
cleanup_check(struct acme_order *o)
{
	if (!o->hold && o->cleanups == 0)
		order_deliver(o);
}

/* What the solvers see of z. */
static void
authz_chall(const struct authz *z, struct solver_chall *c)
{
	*c = (struct solver_chall){ .label = order_name(z->o), .name = z->name,
	    .wildcard = z->wildcard, .token = z->token, .keyauth = z->keyauth,
	    .thumbprint = z->o->a->thumb, .account_url = z->o->a->kid,
	    .issuers = (const char *const *)z->issuers, .nissuers = z->nissuers };
}

static void
cleanup_one_done(void *arg, const char *err)
{
	struct authz *z = arg;
	struct acme_order *o = z->o;

	if (err != NULL)
		log_warn("%s: %s: %s", order_name(o), z->name, err);
	o->cleanups--;
	cleanup_check(o);
}

/* Stops everything in flight, has every solver clean up what it presented,
 * then delivers once they answered. */
static void
order_cleanup(struct acme_order *o)
{
	if (o->phase == PH_CLEANUP || o->phase == PH_DONE)
		return;
	o->phase = PH_CLEANUP;
	ev_timer_stop(o->a->loop, &o->poll);
	ev_timer_stop(o->a->loop, &o->deadline);
	if (o->req != NULL) {
		req_free(o->req);
		o->req = NULL;
	}
	early_stop(o);
	for (size_t i = 0; i < o->naz; i++) {
		struct authz *z = &o->az[i];
		struct solver_chall c;
		char err[SOLVER_ERR_MAX];
		authz_stop(z);
		if (!z->presented)
			continue;
		z->presented = false;
		authz_chall(z, &c);
		switch (solver_cleanup(z->solver, &c, cleanup_one_done, z, err, sizeof err)) {
		case 0:
			o->cleanups++;
			break;
		case -1:
			log_warn("%s: %s: %s", order_name(o), z->name, err);
			break;
		}
	}
	/* deliver from the loop, never from inside acme_order's caller */
	o->hold = true;
	ev_timer_set(&o->poll, 0., 0.);
	ev_timer_start(o->a->loop, &o->poll);
}

static void
order_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct acme_order *o = w->data;

	if (o->phase == PH_CLEANUP) {
		o->hold = false;
		cleanup_check(o);
		return;
	}
	order_next(o);
}

static const char *const phases[] = { "the new order", "the authorizations",
    "the pre-flight check", "the challenge answers", "validation", "the order to be ready",
    "the certificate", "the download", "the alternate chains", "cleanup", "" };

/* The CA answered but keeps the order going (processing, Retry-After):
 * at the deadline, or at once when its Retry-After (> 0) would carry the
 * next poll past it. */
static void
order_unfinished(struct acme_order *o, long retry_after)
{
	char after[32] = "", why[160];

	if (retry_after > 0) {
		snprintf(why, sizeof why, "): the CA asks to wait %ld s (Retry-After), past "
		    "order-timeout %.0f s", retry_after, o->timeout);
	} else {
		snprintf(after, sizeof after, " after %.0f s", o->timeout);
		snprintf(why, sizeof why, "%s)", o->last_retry_after > 0 ?
		    ", the CA asks to wait" : "");
	}
	order_failf(o, ACME_FAIL_CA, "%s: the CA has not finished the order%s (waiting for "
	    "%s%s: try again later, or raise order-timeout in global", order_name(o), after,
	    phases[o->phase], why);
}

static void
order_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct acme_order *o = w->data;
	bool ca_busy = ev_is_active(&o->poll);

	for (size_t i = 0; i < o->naz; i++)
		ca_busy |= ev_is_active(&o->az[i].poll);
	if (ca_busy && (o->phase == PH_VALIDATE || o->phase == PH_READY ||
	    o->phase == PH_FINALIZE))
		order_unfinished(o, -1);
	else
		order_failf(o, ACME_FAIL_NETWORK, "%s: timed out after %.0f s waiting for %s",
		    order_name(o), o->timeout, phases[o->phase]);
}

/* Next poll delay: doubling from POLL_FIRST to poll_max; a Retry-After
 * from the CA wins when it is longer. */
static double
poll_delay(double *interval, double max, long retry_after)
{
	double d = *interval <= 0 ? POLL_FIRST : *interval;

	*interval = d * 2 > max ? max : d * 2;
	if (retry_after > 0 && (double)retry_after > d)
		d = (double)retry_after;
	return d;
}

/* Polls with w after the next delay; a Retry-After that would carry it past
 * the deadline fails the order at once instead of sleeping until then. */
static void
order_poll_later(struct acme_order *o, ev_timer *w, double *interval, long retry_after)
{
	double left = ev_timer_remaining(o->a->loop, &o->deadline);
	double d = poll_delay(interval, o->poll_max, retry_after);

	if (retry_after > 0 && (double)retry_after >= left) {
		order_unfinished(o, retry_after);
		return;
	}
	ev_timer_set(w, d, 0.);
	ev_timer_start(o->a->loop, w);
}

static bool
check_ok(struct acme_order *o, const struct acme_resp *r, const char *what, const char *ident,
    enum acme_fail kind)
{
	char line[ACME_ERR_MAX];

	if (r->neterr == NULL && r->status >= 200 && r->status <= 299)
		return true;
	if (r->retry_after > 0)
		o->retry_after = r->retry_after;
	if (r->prob != NULL && r->prob->kind == PROTO_ERR_ACCOUNT_DOES_NOT_EXIST &&
	    o->reregistered) {
		order_failf(o, ACME_FAIL_CA, "%s: %s: the CA forgot account %s again right after "
		    "hacme registered the key again (accountDoesNotExist twice in one order): "
		    "not repeated; try again later, and ask the CA why it drops the account",
		    order_name(o), what, o->a->kid != NULL ? o->a->kid : "?");
		return false;
	}
	resp_explain(r, what, ident, NULL, line, sizeof line);
	order_failf(o, r->neterr != NULL ? ACME_FAIL_NETWORK : kind, "%s: %s", order_name(o), line);
	return false;
}

/* -- order document -- */

static void order_finalize(struct acme_order *o);
static void order_download(struct acme_order *o, const char *url);

/* Index of name in o->names (case ignored; a wildcard authorization is
 * for "*.value"), or -1. */
static long
order_name_index(const struct acme_order *o, const char *value, bool wildcard)
{
	for (size_t i = 0; value != NULL && i < o->nnames; i++) {
		const char *n = o->names[i];
		if (wildcard && strncmp(n, "*.", 2) != 0)
			continue;
		if (strcasecmp(wildcard ? n + 2 : n, value) == 0)
			return (long)i;
	}
	return -1;
}

/* The order's identifiers, when listed, are exactly the names ordered.
 * why gets the first that is not (escaped). */
static bool
order_idents_match(const struct acme_order *o, const struct proto_order *doc, char *why,
    size_t whylen)
{
	if (doc->nidentifiers == 0)
		return true;
	if (doc->nidentifiers != o->nnames) {
		snprintf(why, whylen, "%zu identifiers for %zu names", doc->nidentifiers,
		    o->nnames);
		return false;
	}
	for (size_t i = 0; i < doc->nidentifiers; i++) {
		const char *v = doc->identifiers[i].value;
		if (order_name_index(o, v, false) < 0) {
			char esc[160];
			log_escape(esc, sizeof esc, v != NULL ? v : "", v != NULL ? strlen(v) : 0);
			snprintf(why, whylen, "identifier \"%s\"", esc);
			return false;
		}
	}
	return true;
}

static void
order_doc(struct acme_order *o, const struct acme_resp *r, bool fresh)
{
	struct proto_order doc = { 0 };
	char why[PROTO_WHY_MAX], line[ACME_ERR_MAX];

	if (proto_order_parse(&doc, r->body, r->len, why, sizeof why) < 0) {
		order_failf(o, ACME_FAIL_CA, "%s: the CA's order is not valid: %s", order_name(o), why);
		goto out;
	}
	if (fresh) {
		if (doc.nauthorizations == 0 && doc.status == PROTO_ORDER_PENDING) {
			order_failf(o, ACME_FAIL_CA, "%s: the CA's order has no authorizations",
			    order_name(o));
			goto out;
		}
		/* one authorization per identifier (RFC 8555 section 7.1.3):
		 * anything else is not followed */
		if (doc.nauthorizations != o->nnames) {
			order_failf(o, ACME_FAIL_CA, "%s: the CA's order lists %zu "
			    "authorizations for %zu names: refused", order_name(o),
			    doc.nauthorizations, o->nnames);
			goto out;
		}
		if (!order_idents_match(o, &doc, line, sizeof line)) {
			order_failf(o, ACME_FAIL_CA, "%s: the CA's order is not for the names "
			    "ordered (%s): refused", order_name(o), line);
			goto out;
		}
		free(o->finalize);
		o->finalize = strdup(doc.finalize);
		if ((o->az = calloc(doc.nauthorizations + 1, sizeof *o->az)) == NULL)
			goto nomem;
		for (size_t i = 0; i < doc.nauthorizations; i++) {
			struct authz *z = &o->az[o->naz];
			z->o = o;
			ev_timer_init(&z->poll, authz_poll_cb, 0., 0.);
			z->poll.data = z;
			if ((z->url = strdup(doc.authorizations[i])) == NULL)
				goto nomem;
			o->naz++;
		}
		if (o->finalize == NULL)
			goto nomem;
	}
	switch (doc.status) {
	case PROTO_ORDER_PENDING:
		if (fresh) {
			o->phase = PH_AUTHZ;
			order_next(o);
		} else {	/* authorizations done but the order lags: poll */
			order_poll_later(o, &o->poll, &o->interval, r->retry_after);
		}
		break;
	case PROTO_ORDER_READY:
		if (o->phase == PH_FINALIZE) {	/* finalize not taken yet */
			order_poll_later(o, &o->poll, &o->interval, r->retry_after);
			break;
		}
		if (fresh)
			o->authz_reused = (unsigned)o->naz;
		order_finalize(o);
		break;
	case PROTO_ORDER_PROCESSING:
		o->phase = PH_FINALIZE;
		order_poll_later(o, &o->poll, &o->interval, r->retry_after);
		break;
	case PROTO_ORDER_VALID:
		if (o->key == NULL) {	/* valid without our finalize: not ours to use */
			order_failf(o, ACME_FAIL_CA, "%s: the CA returned an order that is "
			    "already valid, for a key hacme does not have", order_name(o));
			break;
		}
		if (doc.certificate == NULL) {
			order_failf(o, ACME_FAIL_CA, "%s: the order is valid but has no "
			    "certificate URL", order_name(o));
			break;
		}
		order_download(o, doc.certificate);
		break;
	case PROTO_ORDER_INVALID:
		if (doc.error != NULL) {
			struct proto_explain_ctx ctx = { .retry_after = r->retry_after };
			proto_problem_explain(doc.error, NULL, &ctx, line, sizeof line);
			order_failf(o, ACME_FAIL_CA, "%s: the order is invalid: %s",
			    order_name(o), line);
		} else {
			order_failf(o, ACME_FAIL_CA, "%s: the CA marked the order invalid",
			    order_name(o));
		}
		break;
	}
out:
	proto_order_free(&doc);
	return;
nomem:
	proto_order_free(&doc);
	order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
}

void
acme_on_account(struct acme *a, void (*cb)(void *arg, const char *url), void *arg)
{
	a->account_cb = cb;
	a->account_arg = arg;
}

static void
new_order_done(void *arg, const struct acme_resp *r)
{
	struct acme_order *o = arg;

	o->req = NULL;
	if (!check_ok(o, r, "newOrder", NULL, ACME_FAIL_CA))
		return;
	if (r->location == NULL) {
		order_failf(o, ACME_FAIL_CA, "%s: the CA's new order has no URL (Location)",
		    order_name(o));
		return;
	}
	if ((o->url = strdup(r->location)) == NULL) {
		order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
		return;
	}
	log_info("%s: order %s", order_name(o), o->url);
	order_doc(o, r, true);
}

static void
order_fetch_done(void *arg, const struct acme_resp *r)
{
	struct acme_order *o = arg;

	o->req = NULL;
	if (!check_ok(o, r, "order", NULL, ACME_FAIL_CA))
		return;
	o->last_retry_after = r->retry_after;
	order_doc(o, r, false);
}

/* -- authorizations -- */

static void authz_step_done(struct acme_order *o);
static int strv_dup(char ***dst, const char *const *src, size_t n);


/* "dns-01, http-01": the challenge types of an authorization. */
static void
offered_types(const struct proto_authz *doc, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < doc->nchallenges && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i > 0 ? ", " : "",
		    doc->challenges[i].type != NULL ? doc->challenges[i].type : "?");
	if (n == 0)
		snprintf(out, len, "none");
}

static void
authz_doc(struct authz *z, const struct acme_resp *r)
{
	struct acme_order *o = z->o;
	struct proto_authz doc = { 0 };
	const struct proto_challenge *ch;
	const char *type;
	char why[PROTO_WHY_MAX], line[ACME_ERR_MAX];

	if (proto_authz_parse(&doc, r->body, r->len, why, sizeof why) < 0) {
		order_failf(o, ACME_FAIL_CA, "%s: the CA's authorization is not valid: %s",
		    order_name(o), why);
		goto out;
	}
	if (z->name == NULL) {
		/* each authorization is for one of our names, no name twice */
		long k = order_name_index(o, doc.identifier.value, doc.wildcard);
		bool twice = false;
		for (size_t i = 0; k >= 0 && i < o->naz; i++)
			twice |= &o->az[i] != z && o->az[i].name_index == k + 1;
		if (k < 0 || twice) {
			char esc[160];
			const char *v = doc.identifier.value != NULL ? doc.identifier.value : "";
			log_escape(esc, sizeof esc, v, strlen(v));
			order_failf(o, ACME_FAIL_CA, "%s: the CA's authorization %s is for \"%s\", "
			    "%s: refused", order_name(o), z->url, esc, twice ?
			    "a name another authorization already covers" : "a name not ordered");
			goto out;
		}
		z->name_index = k + 1;
		if ((z->name = strdup(doc.identifier.value)) == NULL) {
			order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
			goto out;
		}
		z->wildcard = doc.wildcard;
		z->solver = o->solvers[k];
	}
	type = solver_type(z->solver);
	ch = proto_authz_challenge(&doc, type);
	switch (doc.status) {
	case PROTO_AUTHZ_VALID:
		if (!z->pending)
			o->authz_reused++;
		z->valid = true;
		authz_step_done(o);
		break;
	case PROTO_AUTHZ_PENDING:
		if (z->responded) {	/* still validating */
			order_poll_later(o, &z->poll, &z->interval, r->retry_after);
			break;
		}
		if (ch == NULL || ch->url == NULL ||
		    (z->solver->ops->needs_token && ch->token == NULL)) {
			offered_types(&doc, why, sizeof why);
			order_failf(o, ACME_FAIL_CA, "%s: %s%s: the CA offers no %s challenge "
			    "(it offers %s): choose one of those with `challenge`", order_name(o),
			    z->wildcard ? "*." : "", z->name, type, why);
			break;
		}
		if (ch->token != NULL && !token_valid(ch->token, strlen(ch->token))) {
			order_failf(o, ACME_FAIL_CA, "%s: %s: the CA's %s token is not "
			    "base64url of 1..%d characters", order_name(o), z->name, type, TOKEN_MAX);
			break;
		}
		z->pending = true;
		if (ch->token != NULL) {
			z->token = strdup(ch->token);
			z->keyauth = acme_keyauth(o->a, ch->token);
		}
		z->chall_url = strdup(ch->url);
		if (ch->nissuer_domain_names > 0 && z->issuers == NULL) {
			z->nissuers = ch->nissuer_domain_names;
			if (strv_dup(&z->issuers, (const char *const *)ch->issuer_domain_names,
			    z->nissuers) < 0) {
				order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
				break;
			}
		}
		if ((ch->token != NULL && (z->token == NULL || z->keyauth == NULL)) ||
		    z->chall_url == NULL) {
			order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
			break;
		}
		/* a challenge already processing (an earlier run) is only polled */
		if (ch->status == PROTO_CHALL_PROCESSING)
			z->responded = true;
		authz_step_done(o);
		break;
	case PROTO_AUTHZ_INVALID:
		if (ch != NULL && ch->error != NULL) {
			struct proto_explain_ctx ctx = { .challenge = type,
			    .token = ch->token, .port = 80, .retry_after = r->retry_after };
			proto_problem_explain(ch->error, z->name, &ctx, line, sizeof line);
		} else {
			snprintf(line, sizeof line, "%s: the CA could not validate this name",
			    z->name);
		}
		order_failf(o, ACME_FAIL_VALIDATION, "%s: %s", order_name(o), line);
		break;
	default:
		order_failf(o, ACME_FAIL_CA, "%s: %s: the authorization is %s", order_name(o),
		    z->name, proto_authz_status_name(doc.status));
		break;
	}
out:
	proto_authz_free(&doc);
}

static void
authz_done(void *arg, const struct acme_resp *r)
{
	struct authz *z = arg;
	struct acme_order *o = z->o;

	z->req = NULL;
	if (!check_ok(o, r, "authorization", z->name, ACME_FAIL_CA))
		return;
	o->last_retry_after = r->retry_after;
	authz_doc(z, r);
}

static void
authz_fetch(struct authz *z)
{
	z->req = order_post(z->o, z->url, NULL, 0, authz_done, z);
	if (z->req == NULL)
		order_failf(z->o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(z->o));
}

static void
authz_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	authz_fetch(w->data);
}

/* One authorization step finished; when all are, the order moves on. */
static void
authz_step_done(struct acme_order *o)
{
	if (o->outstanding > 0 && --o->outstanding > 0)
		return;
	if (o->phase == PH_AUTHZ) {
		bool any = false;
		for (size_t i = 0; i < o->naz; i++)
			any |= o->az[i].pending;
		o->phase = !any ? PH_READY : o->preflight ? PH_PREFLIGHT : PH_PUBLISH;
	} else if (o->phase == PH_VALIDATE) {
		o->phase = PH_READY;
	} else if (o->phase == PH_PREFLIGHT) {
		o->phase = PH_PUBLISH;
	} else if (o->phase == PH_PUBLISH) {
		o->phase = PH_VALIDATE;
	}
	order_next(o);
}

/* -- pre-flight, present -- */

/* Appends e (when not empty) to the "; "-joined line all. */
static void
errs_add(char *all, size_t cap, size_t *len, const char *e)
{
	if (e[0] != '\0' && *len < cap - 3)
		*len += (size_t)snprintf(all + *len, cap - *len, "%s%s", *len > 0 ? "; " : "", e);
}

/* One early pre-flight finished; when all are, newOrder or the failure. */
static void
early_step(struct acme_order *o)
{
	char all[ACME_ERR_MAX] = "";
	size_t len = 0;

	if (--o->early_left > 0)
		return;
	for (size_t i = 0; i < o->nnames; i++)
		errs_add(all, sizeof all, &len, o->early[i].err);
	if (len > 0) {
		order_failf(o, ACME_FAIL_PREFLIGHT, "%s: %s", order_name(o), all);
		return;
	}
	order_next(o);
}

static void
early_cb(void *arg, const char *err)
{
	struct early *e = arg;

	e->busy = false;
	if (err != NULL)
		snprintf(e->err, sizeof e->err, "%s: %s", e->o->names[e->i], err);
	early_step(e->o);
}

/* Starts the pre-flights that need no order; false when there are none
 * (newOrder goes out at once). */
static bool
early_start(struct acme_order *o)
{
	bool any = false;

	o->early_done = true;
	for (size_t i = 0; o->preflight && i < o->nnames; i++)
		any |= o->solvers[i]->ops->prepare_before_order;
	if (!any)
		return false;
	if ((o->early = calloc(o->nnames, sizeof *o->early)) == NULL) {
		order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
		return true;
	}
	o->early_left = 1;	/* held while they start */
	for (size_t i = 0; i < o->nnames; i++) {
		struct early *e = &o->early[i];
		const char *n = o->names[i];
		bool wild = strncmp(n, "*.", 2) == 0;
		struct solver_chall c = { .label = order_name(o), .name = wild ? n + 2 : n,
		    .wildcard = wild, .thumbprint = o->a->thumb, .account_url = o->a->kid };
		char err[SOLVER_ERR_MAX];
		e->o = o;
		e->i = i;
		if (!o->solvers[i]->ops->prepare_before_order)
			continue;
		switch (solver_prepare(o->solvers[i], &c, early_cb, e, err, sizeof err)) {
		case 0:
			e->busy = true;
			o->early_left++;
			break;
		case -1:
			snprintf(e->err, sizeof e->err, "%s: %s", n, err);
			break;
		}
	}
	early_step(o);
	return true;
}

static void
prepared_cb(void *arg, const char *err)
{
	struct authz *z = arg;

	z->busy = false;
	if (err != NULL)
		snprintf(z->prep_err, sizeof z->prep_err, "%s: %s", z->name, err);
	authz_step_done(z->o);
}

static void
preflight_start(struct authz *z)
{
	struct acme_order *o = z->o;
	struct solver_chall c;
	char err[SOLVER_ERR_MAX];

	if (z->solver->ops->prepare_before_order)
		return;		/* done before newOrder */
	authz_chall(z, &c);
	switch (solver_prepare(z->solver, &c, prepared_cb, z, err, sizeof err)) {
	case 0:
		z->busy = true;
		o->outstanding++;
		break;
	case -1:
		snprintf(z->prep_err, sizeof z->prep_err, "%s: %s", z->name, err);
		break;
	}
}

static void
presented_cb(void *arg, const char *err)
{
	struct authz *z = arg;
	struct acme_order *o = z->o;

	z->busy = false;
	if (err != NULL && o->fail == ACME_OK) {
		o->fail = ACME_FAIL_AGENT;
		snprintf(o->err, sizeof o->err, "%s: %s: %s", order_name(o), z->name, err);
	}
	authz_step_done(o);
}

static void
present_start(struct authz *z)
{
	struct acme_order *o = z->o;
	struct solver_chall c;
	char err[SOLVER_ERR_MAX];

	authz_chall(z, &c);
	z->presented = true;
	o->published++;
	switch (solver_present(z->solver, &c, presented_cb, z, err, sizeof err)) {
	case 0:
		z->busy = true;
		o->outstanding++;
		break;
	case -1:
		if (o->fail == ACME_OK) {
			o->fail = ACME_FAIL_AGENT;
			snprintf(o->err, sizeof o->err, "%s: %s: %s", order_name(o), z->name, err);
		}
		break;
	}
}

/* -- respond, validate -- */

static void
respond_done(void *arg, const struct acme_resp *r)
{
	struct authz *z = arg;
	struct acme_order *o = z->o;

	z->req = NULL;
	if (!check_ok(o, r, "challenge", z->name, ACME_FAIL_CA))
		return;
	z->responded = true;
	order_poll_later(o, &z->poll, &z->interval, r->retry_after);
}

static void
order_finalize_done(void *arg, const struct acme_resp *r)
{
	struct acme_order *o = arg;

	o->req = NULL;
	if (!check_ok(o, r, "finalize", NULL, ACME_FAIL_CA))
		return;
	o->phase = PH_FINALIZE;
	o->interval = 0;
	order_doc(o, r, false);
}

static void
order_finalize(struct acme_order *o)
{
	char err[CRYPTO_ERR_MAX];
	char *csr, *payload;

	o->phase = PH_FINALIZE;
	if (o->key == NULL) {
		if (o->reuse_key != NULL) {
			size_t n;
			char *pem = crypto_key_pem(o->reuse_key, &n);
			o->key = pem != NULL ? crypto_key_from_pem(pem, n, err, sizeof err) : NULL;
			if (pem != NULL)
				crypto_wipe_free(pem, n);
		} else {
			o->key = crypto_key_generate(o->keytype, err, sizeof err);
		}
		if (o->key == NULL) {
			order_failf(o, ACME_FAIL_LOCAL, "%s: certificate key: %s", order_name(o), err);
			return;
		}
		if ((o->key_pem = crypto_key_pem(o->key, &o->key_len)) == NULL) {
			order_failf(o, ACME_FAIL_LOCAL, "%s: certificate key: cannot encode it",
			    order_name(o));
			return;
		}
	}
	csr = crypto_csr_b64url(o->key, (const char *const *)o->names, o->nnames, err, sizeof err);
	if (csr == NULL) {
		order_failf(o, ACME_FAIL_LOCAL, "%s: CSR: %s", order_name(o), err);
		return;
	}
	payload = proto_finalize_json(csr);
	free(csr);
	if (payload == NULL ||
	    (o->req = order_post(o, o->finalize, payload, 0, order_finalize_done, o)) == NULL)
		order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
	free(payload);
}

/* -- certificate -- */

static bool
names_match(const struct acme_order *o, const struct crypto_cert_info *ci)
{
	if (ci->nnames != o->nnames)
		return false;
	for (size_t i = 0; i < o->nnames; i++) {
		bool found = false;
		for (size_t j = 0; j < ci->nnames && !found; j++)
			found = strcasecmp(o->names[i], ci->names[j]) == 0;
		if (!found)
			return false;
	}
	return true;
}

static void download_done(void *arg, const struct acme_resp *r);

static void
order_download(struct acme_order *o, const char *url)
{
	o->phase = PH_DOWNLOAD;
	if (o->cert_url == NULL && (o->cert_url = strdup(url)) == NULL) {
		order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
		return;
	}
	o->req = order_post(o, url, NULL, POST_PEM, download_done, o);
	if (o->req == NULL)
		order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
}

/* The chain in r, checked against our key and names; true when it is the
 * one to keep (o->chain set). */
static bool
take_chain(struct acme_order *o, const struct acme_resp *r, bool *preferred)
{
	struct crypto_chain ch = { 0 };
	struct crypto_cert_info ci = { 0 };
	char err[CRYPTO_ERR_MAX];
	bool ok = false;

	*preferred = false;
	if (crypto_chain_parse(&ch, r->body, r->len, err, sizeof err) < 0) {
		order_failf(o, ACME_FAIL_CA, "%s: the CA's certificate chain: %s", order_name(o), err);
		goto out;
	}
	if (crypto_cert_info(ch.pem[0], strlen(ch.pem[0]), &ci, err, sizeof err) < 0) {
		order_failf(o, ACME_FAIL_CA, "%s: the CA's certificate: %s", order_name(o), err);
		goto out;
	}
	if (!crypto_cert_matches_key(ch.pem[0], strlen(ch.pem[0]), o->key)) {
		order_failf(o, ACME_FAIL_CA, "%s: the CA's certificate is not for our key",
		    order_name(o));
		goto out;
	}
	if (!names_match(o, &ci)) {
		order_failf(o, ACME_FAIL_CA, "%s: the CA's certificate does not name exactly "
		    "the names ordered", order_name(o));
		goto out;
	}
	*preferred = o->preferred_chain == NULL ||
	    (ch.issuer_cn_top != NULL && strcmp(ch.issuer_cn_top, o->preferred_chain) == 0);
	if (o->chain == NULL || *preferred) {
		free(o->chain);
		o->chain = crypto_chain_join(&ch, &o->chain_len);
		if (o->chain == NULL) {
			order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
			goto out;
		}
		log_info("%s: chain to \"%s\"", order_name(o),
		    ch.issuer_cn_top != NULL ? ch.issuer_cn_top : "?");
	}
	ok = true;
out:
	crypto_cert_info_free(&ci);
	crypto_chain_free(&ch);
	return ok;
}

static void
order_success(struct acme_order *o)
{
	order_cleanup(o);
}

static void
alternate_next(struct acme_order *o)
{
	if (o->alt_i >= o->nalts) {
		log_notice("%s: no chain to \"%s\" offered: keeping the default chain",
		    order_name(o), o->preferred_chain);
		order_success(o);
		return;
	}
	o->phase = PH_ALTERNATE;
	o->req = order_post(o, o->alts[o->alt_i++], NULL, POST_PEM, download_done, o);
	if (o->req == NULL)
		order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
}

static void
download_done(void *arg, const struct acme_resp *r)
{
	struct acme_order *o = arg;
	bool preferred;

	o->req = NULL;
	if (!check_ok(o, r, "certificate", NULL, ACME_FAIL_CA))
		return;
	if (!take_chain(o, r, &preferred))
		return;
	if (preferred) {
		order_success(o);
		return;
	}
	if (o->phase == PH_DOWNLOAD) {
		int n = proto_link_find(r->links, r->nlinks, "alternate", r->url, &o->alts);
		o->nalts = n > 0 ? (size_t)n : 0;
	}
	alternate_next(o);
}

/* -- driver -- */

static void
order_checked(void *arg, const struct checks_report *rep)
{
	struct acme_order *o = arg;

	o->checked = true;
	if (rep->error != NULL)
		order_failf(o, ACME_FAIL_SETUP, "%s: not ordered: %s", order_name(o), rep->error);
	else
		order_next(o);
}

static void
order_next(struct acme_order *o)
{
	char *payload;

	if (o->fail != ACME_OK) {
		order_cleanup(o);
		return;
	}
	switch (o->phase) {
	case PH_NEW:
		if (o->checks != NULL && !o->checked) {
			/* never spend an order that could not be stored and served */
			if (checks_run(o->checks, o->checks_cfg, order_checked, o) < 0)
				order_failf(o, ACME_FAIL_LOCAL, "%s: %s", order_name(o),
				    strerror(errno));
			break;
		}
		if (!o->early_done && early_start(o))
			break;
		payload = proto_new_order_json((const char *const *)o->names, o->nnames,
		    o->profile, o->replaces);
		if (payload == NULL ||
		    (o->req = order_post(o, o->a->dir.new_order, payload, 0,
		    new_order_done, o)) == NULL)
			order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
		free(payload);
		break;
	case PH_AUTHZ:
		o->outstanding = (unsigned)o->naz;
		for (size_t i = 0; i < o->naz && o->phase == PH_AUTHZ; i++)
			authz_fetch(&o->az[i]);
		break;
	case PH_PREFLIGHT:
		o->outstanding = 1;
		for (size_t i = 0; i < o->naz; i++)
			if (o->az[i].pending && !o->az[i].responded)
				preflight_start(&o->az[i]);
		authz_step_done(o);	/* release the hold */
		break;
	case PH_PUBLISH: {
		char all[ACME_ERR_MAX] = "";
		size_t len = 0;
		for (size_t i = 0; i < o->naz; i++)
			errs_add(all, sizeof all, &len, o->az[i].prep_err);
		if (len > 0) {
			order_failf(o, ACME_FAIL_PREFLIGHT, "%s: %s", order_name(o), all);
			break;
		}
		o->outstanding = 1;
		for (size_t i = 0; i < o->naz; i++)
			if (o->az[i].pending && !o->az[i].presented)
				present_start(&o->az[i]);
		authz_step_done(o);	/* release the hold */
		break;
	}
	case PH_VALIDATE:
		/* every answer is presented: ask the CA to validate */
		o->outstanding = 0;
		for (size_t i = 0; i < o->naz; i++) {
			struct authz *z = &o->az[i];
			if (!z->pending)
				continue;
			o->outstanding++;
			if (z->responded) {
				authz_fetch(z);
				continue;
			}
			payload = proto_challenge_response_json();
			z->req = payload != NULL ? order_post(o, z->chall_url, payload, 0,
			    respond_done, z) : NULL;
			free(payload);
			if (z->req == NULL) {
				order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
				return;
			}
		}
		if (o->outstanding == 0) {
			o->phase = PH_READY;
			order_next(o);
		}
		break;
	case PH_READY:
	case PH_FINALIZE:
		/* (re)fetch the order: ready -> finalize, processing -> poll */
		o->req = order_post(o, o->url, NULL, 0, order_fetch_done, o);
		if (o->req == NULL)
			order_failf(o, ACME_FAIL_LOCAL, "%s: out of memory", order_name(o));
		break;
	default:
		break;
	}
}

static int
strv_dup(char ***dst, const char *const *src, size_t n)
{
	if ((*dst = calloc(n + 1, sizeof **dst)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (((*dst)[i] = strdup(src[i])) == NULL)
			return -1;
	return 0;
}

struct acme_order *
acme_order(struct acme *a, const struct acme_order_req *req,
    void (*cb)(void *, const struct acme_order_result *), void *arg, char *err, size_t errlen)
{
	struct acme_order *o;

	if (!a->have_dir || a->kid == NULL) {
		snprintf(err, errlen, "%s: no account yet", a->ca_name);
		return NULL;
	}
	if (req->nnames == 0 || (req->solver == NULL && req->solvers == NULL) || cb == NULL) {
		snprintf(err, errlen, "%s: an order needs names and a challenge solver",
		    a->ca_name);
		return NULL;
	}
	if (req->profile != NULL && !proto_directory_has_profile(&a->dir, req->profile)) {
		char offered[512] = "";
		size_t len = 0;
		for (size_t i = 0; i < a->dir.nprofiles && len < sizeof offered; i++)
			len += (size_t)snprintf(offered + len, sizeof offered - len, "%s%s",
			    i > 0 ? ", " : "", a->dir.profiles[i]);
		snprintf(err, errlen, "%s%scert %s: profile '%s': %s does not offer it (%s%s)",
		    req->where != NULL ? req->where : "", req->where != NULL ? ": " : "",
		    req->label != NULL ? req->label : req->names[0], req->profile, a->ca_name,
		    a->dir.nprofiles > 0 ? "it offers: " : "its directory lists no profiles",
		    offered);
		return NULL;
	}
	if ((o = calloc(1, sizeof *o)) == NULL)
		goto nomem;
	o->a = a;
	o->label = strdup(req->label != NULL ? req->label : req->names[0]);
	o->keytype = req->key != KEYTYPE_NONE ? req->key : KEYTYPE_EC_P256;
	o->reuse_key = req->reuse_key;
	o->profile = xstrdup(req->profile);
	o->replaces = xstrdup(req->replaces);
	o->preferred_chain = xstrdup(req->preferred_chain);
	o->preflight = req->preflight;
	o->checks = req->checks;
	o->checks_cfg = req->checks_cfg;
	o->poll_max = req->poll_max > 0 ? req->poll_max : POLL_MAX_DEFAULT;
	o->timeout = req->timeout > 0 ? req->timeout : ORDER_TIMEOUT_DEFAULT;
	o->retry_after = -1;
	o->cb = cb;
	o->arg = arg;
	ev_timer_init(&o->poll, order_poll_cb, 0., 0.);
	o->poll.data = o;
	ev_timer_init(&o->deadline, order_deadline_cb, o->timeout, 0.);
	o->deadline.data = o;
	o->nnames = req->nnames;
	if (o->label == NULL || strv_dup(&o->names, req->names, req->nnames) < 0 ||
	    (req->profile != NULL && o->profile == NULL) ||
	    (req->replaces != NULL && o->replaces == NULL) ||
	    (req->preferred_chain != NULL && o->preferred_chain == NULL) ||
	    (o->solvers = calloc(req->nnames, sizeof *o->solvers)) == NULL)
		goto nomem;
	for (size_t i = 0; i < req->nnames; i++) {
		o->solvers[i] = req->solvers != NULL && req->solvers[i] != NULL ?
		    req->solvers[i] : req->solver;
		if (o->solvers[i] == NULL) {
			snprintf(err, errlen, "%s: no challenge solver for %s", a->ca_name,
			    req->names[i]);
			order_stop(o);
			order_free(o);
			return NULL;
		}
	}
	o->next = a->orders;
	if (a->orders != NULL)
		a->orders->pprev = &o->next;
	a->orders = o;
	o->pprev = &a->orders;
	ev_timer_start(a->loop, &o->deadline);
	/* start from the loop: the callback never runs inside acme_order */
	ev_timer_set(&o->poll, 0., 0.);
	ev_timer_start(a->loop, &o->poll);
	return o;
nomem:
	snprintf(err, errlen, "out of memory");
	if (o != NULL) {
		o->nnames = o->names != NULL ? o->nnames : 0;
		order_stop(o);
		order_free(o);
	}
	return NULL;
}

void
acme_order_set_arg(struct acme_order *o, void *arg)
{
	o->arg = arg;
}

void
acme_order_cancel(struct acme_order *o)
{
	if (o == NULL)
		return;
	order_stop(o);
	/* clean up without waiting for the solvers' answers */
	for (size_t i = 0; i < o->naz; i++) {
		struct authz *z = &o->az[i];
		struct solver_chall c;
		char err[SOLVER_ERR_MAX];
		if (z->solver != NULL)
			solver_cancel(z->solver, z);
		if (!z->presented)
			continue;
		z->presented = false;
		authz_chall(z, &c);
		if (solver_cleanup(z->solver, &c, NULL, NULL, err, sizeof err) < 0)
			log_warn("%s: %s: %s", order_name(o), z->name, err);
	}
	order_free(o);
}
