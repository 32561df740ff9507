/* solver_http.c - http-01 (RFC 8555 section 8.3): the key authorization on
 * every agent (acme/agentctl.h), answered by HAProxy through hacme-spoa.
 *
 * prepare is the self-check: a random probe token is published, fetched
 * from http://NAME:PORT/.well-known/acme-challenge/PROBE as the CA would,
 * and withdrawn; its failure says what to fix before the CA is asked.
 * Every operation is a record (struct hop) that outlives a cancel until
 * the agents' answers it waits for came back. */
#include "acme/solver.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <ev.h>

#include "acme/agentctl.h"
#include "acme/crypto.h"
#include "acme/http.h"
#include "common/b64url.h"
#include "common/log.h"

#define TOKEN_TTL_DEFAULT 3600
#define PROBE_TTL 120
#define PROBE_TIMEOUT_MS 5000
#define PROBE_503_TRIES 10
#define PROBE_503_DELAY 0.5		/* seconds between tries after a 503 */

struct solver_http {
	struct solver s;		/* first */
	struct ev_loop *loop;
	struct agentctl *agents;
	struct http_client *http;	/* for the probes, made at the first one */
	unsigned ttl;
	int port;
	char *connect;
	struct hop *hops;
};

/* One operation in flight. */
struct hop {
	struct solver_http *h;
	struct hop *next, **pprev;
	solver_cb *cb;			/* NULL: cancelled, nobody waits */
	void *arg;
	unsigned agent_cbs;		/* agentctl callbacks to come */
	const char *what;		/* for an agent's error: "could not publish the token" */
	/* pre-flight */
	char *name, *probe, *probe_ka;
	bool probe_published;
	struct http_call *call;
	ev_timer retry;			/* HAProxy still reconnecting to the agent */
	unsigned tries;
	char err[SOLVER_ERR_MAX];
};

static void
ignore_cb(void *arg, const char *err)
{
	(void)arg;
	(void)err;
}

static struct hop *
hop_new(struct solver_http *h, solver_cb *cb, void *arg)
{
	struct hop *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->h = h;
	p->cb = cb;
	p->arg = arg;
	p->next = h->hops;
	if (h->hops != NULL)
		h->hops->pprev = &p->next;
	h->hops = p;
	p->pprev = &h->hops;
	ev_timer_init(&p->retry, NULL, 0., 0.);
	return p;
}

static void
hop_free(struct hop *p)
{
	if (p->pprev != NULL) {
		*p->pprev = p->next;
		if (p->next != NULL)
			p->next->pprev = p->pprev;
	}
	if (p->call != NULL)
		http_cancel(p->call);
	ev_timer_stop(p->h->loop, &p->retry);
	free(p->name);
	free(p->probe);
	free(p->probe_ka);
	free(p);
}

/* Calls back with the record's error (or none) and frees it. */
static void
hop_done(struct hop *p)
{
	solver_cb *cb = p->cb;
	void *arg = p->arg;
	char err[SOLVER_ERR_MAX];

	snprintf(err, sizeof err, "%s", p->err);
	hop_free(p);
	if (cb != NULL)
		cb(arg, err[0] != '\0' ? err : NULL);
}

/* Every agentctl callback of a record starts here: false when the record
 * was cancelled (and freed when nothing more is to come). */
static bool
hop_enter(struct hop *p)
{
	p->agent_cbs--;
	if (p->cb == NULL) {
		if (p->agent_cbs == 0)
			hop_free(p);
		return false;
	}
	return true;
}

/* -- present, cleanup -- */

static void
agent_done(void *arg, const char *err)
{
	struct hop *p = arg;

	if (!hop_enter(p))
		return;
	if (err != NULL)
		snprintf(p->err, sizeof p->err, "%s: %s", p->what, err);
	hop_done(p);
}

static int
agent_op(struct solver_http *h, bool add, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	const char *what = add ? "could not publish the token" : "could not withdraw the token";
	struct hop *p = NULL;
	int rc;

	if (cb != NULL && (p = hop_new(h, cb, arg)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", what);
		return -1;
	}
	if (add)
		rc = agentctl_publish(h->agents, c->token, c->keyauth, h->ttl, c->name,
		    p != NULL ? agent_done : ignore_cb, p);
	else
		rc = agentctl_unpublish(h->agents, c->token, p != NULL ? agent_done : ignore_cb, p);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", what, strerror(errno));
		if (p != NULL)
			hop_free(p);
		return -1;
	}
	if (p == NULL)
		return 1;
	p->what = what;
	p->agent_cbs = 1;
	return 0;
}

static int
http_present(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return agent_op((struct solver_http *)s, true, c, cb, arg, err, errlen);
}

static int
http_cleanup(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return agent_op((struct solver_http *)s, false, c, cb, arg, err, errlen);
}

/* -- pre-flight -- */

static void
probe_withdrawn(void *arg, const char *err)
{
	struct hop *p = arg;

	if (err != NULL)
		log_warn("%s: withdrawing the pre-flight probe: %s", p->name, err);
	if (hop_enter(p))
		hop_done(p);
}

static void
probe_finish(struct hop *p)
{
	if (p->probe_published) {
		p->probe_published = false;
		if (agentctl_unpublish(p->h->agents, p->probe, probe_withdrawn, p) == 0) {
			p->agent_cbs++;
			return;
		}
	}
	hop_done(p);
}

static void
probe_fetched(void *arg, const struct http_resp *hr)
{
	struct hop *p = arg;
	int port = p->h->port;
	char esc[200], fix[400];

	p->call = NULL;
	snprintf(fix, sizeof fix, "check that port %d of %s reaches this HAProxy and its "
	    "challenge rules, or set `preflight off` for names behind a CDN or another proxy",
	    port, p->name);
	if (hr->result == CURLE_COULDNT_RESOLVE_HOST) {
		snprintf(p->err, sizeof p->err, "pre-flight: name does not resolve: check its "
		    "DNS A/AAAA records");
	} else if (hr->result == CURLE_COULDNT_CONNECT ||
	    (hr->result == CURLE_OPERATION_TIMEDOUT && hr->status == 0)) {
		snprintf(p->err, sizeof p->err, "pre-flight: nothing listens on %s:%d (%s): %s",
		    p->name, port, hr->error, fix);
	} else if (hr->result != 0) {
		snprintf(p->err, sizeof p->err, "pre-flight: http://%s:%d/: %s: %s", p->name,
		    port, hr->error, fix);
	} else if (hr->status == 503 && p->tries < PROBE_503_TRIES) {
		/* HAProxy answers 503 while it reconnects to an agent that has
		 * just (re)started: its health check needs a moment */
		p->tries++;
		ev_timer_set(&p->retry, PROBE_503_DELAY, 0.);
		ev_timer_start(p->h->loop, &p->retry);
		return;
	} else if (hr->status == 503) {
		log_escape(esc, sizeof esc, hr->body, hr->body_len > 60 ? 60 : hr->body_len);
		snprintf(p->err, sizeof p->err, "pre-flight: answer is not ours (HTTP 503, "
		    "\"%s\", for %.0f s): HAProxy cannot reach the hacme agent: check that its "
		    "agent backend (be_acme_agent) points to hacme-spoa's --listen address", esc,
		    PROBE_503_TRIES * PROBE_503_DELAY);
	} else if (hr->status != 200 || hr->body_len != strlen(p->probe_ka) ||
	    memcmp(hr->body, p->probe_ka, hr->body_len) != 0) {
		log_escape(esc, sizeof esc, hr->body, hr->body_len > 60 ? 60 : hr->body_len);
		snprintf(p->err, sizeof p->err, "pre-flight: answer is not ours (HTTP %ld, "
		    "\"%s\"): %s", hr->status, esc, fix);
	} else {
		log_debug("pre-flight of %s passed", p->name);
	}
	probe_finish(p);
}

static void
probe_fetch(struct hop *p)
{
	struct solver_http *h = p->h;
	struct http_req hr = { .method = HTTP_GET, .cb = probe_fetched, .arg = p,
	    .timeout_ms = PROBE_TIMEOUT_MS };
	char url[600], connect_to[600];

	snprintf(url, sizeof url, "http://%s:%d/.well-known/acme-challenge/%s", p->name,
	    h->port, p->probe);
	hr.url = url;
	if (h->connect != NULL) {
		snprintf(connect_to, sizeof connect_to, "%s:%d:%s", p->name, h->port, h->connect);
		hr.connect_to = connect_to;
	}
	if (h->http == NULL) {
		struct http_opts ho = { .connect_timeout_ms = PROBE_TIMEOUT_MS };
		h->http = http_client_new(h->loop, &ho);
	}
	if (h->http == NULL || (p->call = http_submit(h->http, &hr)) == NULL) {
		snprintf(p->err, sizeof p->err, "pre-flight: could not start the request");
		probe_finish(p);
	}
}

static void
probe_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	probe_fetch(w->data);
}

static void
probe_published_cb(void *arg, const char *err)
{
	struct hop *p = arg;

	if (!hop_enter(p))
		return;
	if (err != NULL) {
		snprintf(p->err, sizeof p->err, "pre-flight: could not publish the probe "
		    "token: %s", err);
		probe_finish(p);
		return;
	}
	probe_fetch(p);
}

static int
http_prepare(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	struct solver_http *h = (struct solver_http *)s;
	uint8_t rnd[24];
	char tok[B64URL_ENCLEN(sizeof rnd) + 1];
	struct hop *p;
	size_t n;

	if (crypto_random(rnd, sizeof rnd) < 0) {
		snprintf(err, errlen, "pre-flight: no random bytes");
		return -1;
	}
	b64url_encode(tok, rnd, sizeof rnd);
	if ((p = hop_new(h, cb, arg)) == NULL)
		goto nomem;
	ev_timer_init(&p->retry, probe_retry_cb, 0., 0.);
	p->retry.data = p;
	n = strlen(tok) + strlen(c->thumbprint) + 2;
	p->name = strdup(c->name);
	p->probe = strdup(tok);
	if ((p->probe_ka = malloc(n)) != NULL)
		snprintf(p->probe_ka, n, "%s.%s", tok, c->thumbprint);
	if (p->name == NULL || p->probe == NULL || p->probe_ka == NULL)
		goto nomem;
	if (agentctl_publish(h->agents, p->probe, p->probe_ka, PROBE_TTL, c->name,
	    probe_published_cb, p) < 0) {
		snprintf(err, errlen, "pre-flight: could not publish the probe token: %s",
		    strerror(errno));
		hop_free(p);
		return -1;
	}
	p->probe_published = true;
	p->agent_cbs = 1;
	return 0;
nomem:
	if (p != NULL)
		hop_free(p);
	snprintf(err, errlen, "pre-flight: out of memory");
	return -1;
}

/* -- the solver -- */

static void
http_cancel_arg(struct solver *s, void *arg)
{
	struct solver_http *h = (struct solver_http *)s;
	struct hop *p, *next;

	for (p = h->hops; p != NULL; p = next) {
		next = p->next;
		if (p->arg != arg || p->cb == NULL)
			continue;
		p->cb = NULL;
		if (p->call != NULL) {
			http_cancel(p->call);
			p->call = NULL;
		}
		ev_timer_stop(h->loop, &p->retry);
		if (p->probe_published) {
			p->probe_published = false;
			if (agentctl_unpublish(h->agents, p->probe, ignore_cb, NULL) < 0)
				log_warn("%s: could not withdraw a probe", p->name);
		}
		if (p->agent_cbs == 0)
			hop_free(p);
	}
}

static void
http_free(struct solver *s)
{
	struct solver_http *h = (struct solver_http *)s;

	while (h->hops != NULL)
		hop_free(h->hops);
	http_client_free(h->http);
	free(h->connect);
	free(h);
}

static const struct solver_ops http_ops = {
	.type = "http-01",
	.needs_token = true,
	.prepare = http_prepare,
	.present = http_present,
	.cleanup = http_cleanup,
	.cancel = http_cancel_arg,
	.free = http_free,
};

struct solver *
solver_http_new(struct ev_loop *loop, const struct solver_http_opts *opts)
{
	struct solver_http *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	h->s.ops = &http_ops;
	h->loop = loop;
	h->agents = opts->agents;
	h->ttl = opts->token_ttl > 0 && opts->token_ttl <= AGENTCTL_TTL_MAX ? opts->token_ttl :
	    TOKEN_TTL_DEFAULT;
	h->port = opts->preflight_port > 0 ? opts->preflight_port : 80;
	if (opts->preflight_connect != NULL &&
	    (h->connect = strdup(opts->preflight_connect)) == NULL) {
		free(h);
		return NULL;
	}
	return &h->s;
}
