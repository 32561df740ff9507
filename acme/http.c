/* http.c - libcurl's multi socket interface on a libev loop.
 *
 * curl tells us which sockets to watch (http_sock_cb) and when to call it
 * back (http_timer_cb); libev tells curl when a socket is ready
 * (http_io_cb) or the timer fired (http_tick). Finished transfers are
 * collected after each curl_multi_socket_action, so completion callbacks run
 * from the loop only, never from curl's own callbacks or from http_submit. */
#include "acme/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <ev.h>

#include "common/buf.h"
#include "common/log.h"

#ifndef HACME_VERSION
#define HACME_VERSION "0"
#endif

#define HTTP_URL_MAX 8192
#define HTTP_CONNECT_TIMEOUT_MS 10000L
#define HTTP_TIMEOUT_MS 30000L
#define HTTP_NOFF ((size_t)-1)

enum http_hdr {
	HTTP_HDR_NONCE = 0,
	HTTP_HDR_LOCATION,
	HTTP_HDR_CTYPE,
	HTTP_HDR_RETRY,
	HTTP_HDR_COUNT
};

static const char *const http_hdr_names[HTTP_HDR_COUNT] = {
	"Replay-Nonce", "Location", "Content-Type", "Retry-After",
};

struct http_sock {
	TAILQ_ENTRY(http_sock) entry;
	struct http_client *c;
	ev_io io;
};

struct http_call {
	TAILQ_ENTRY(http_call) entry;
	struct http_client *c;
	CURL *easy;
	struct curl_slist *hdrs;
	struct curl_slist *connect_to;
	char *url;
	struct buf body;
	struct buf hdr;			/* captured values, each NUL-terminated */
	size_t off[HTTP_HDR_COUNT];	/* into hdr, HTTP_NOFF when absent */
	size_t link_off[HTTP_LINKS_MAX];
	size_t nlinks;
	size_t max_body;
	bool body_over;
	char errbuf[CURL_ERROR_SIZE];
	void (*cb)(void *, const struct http_resp *);
	void *arg;
};

struct http_client {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
	TAILQ_HEAD(, http_call) calls;
	TAILQ_HEAD(, http_sock) socks;
	size_t ncalls;
	char *ca_bundle;
	char *user_agent;
	size_t max_body;
	long connect_timeout_ms;
	long timeout_ms;
	bool verbose;
	int dispatching;
	bool free_pending;
};

static bool http_curl_ready;

static void http_client_destroy(struct http_client *);

const char *
http_method_name(enum http_method m)
{
	switch (m) {
	case HTTP_GET:
		return "GET";
	case HTTP_HEAD:
		return "HEAD";
	case HTTP_POST:
		return "POST";
	}
	return "?";
}

/* Printable ASCII without CR/LF: nothing that could split a request line. */
static bool
http_clean(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++) {
		if (n >= max || (unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	}
	return true;
}

static void
http_call_free(struct http_call *call)
{
	if (call == NULL)
		return;
	if (call->easy != NULL)
		curl_easy_cleanup(call->easy);
	curl_slist_free_all(call->hdrs);
	curl_slist_free_all(call->connect_to);
	buf_fini(&call->body);
	buf_fini(&call->hdr);
	free(call->url);
	free(call);
}

static size_t
http_write_cb(char *p, size_t size, size_t nmemb, void *userp)
{
	struct http_call *call = userp;
	size_t n = size * nmemb;

	if (n > call->max_body - call->body.len) {
		call->body_over = true;
		return 0;	/* CURLE_WRITE_ERROR aborts the transfer */
	}
	if (buf_append(&call->body, p, n) < 0)
		return 0;
	return n;
}

static void
http_hdr_reset(struct http_call *call)
{
	call->hdr.len = 0;
	for (int i = 0; i < HTTP_HDR_COUNT; i++)
		call->off[i] = HTTP_NOFF;
	call->nlinks = 0;
}

/* Stores value in call->hdr; its offset, or HTTP_NOFF when it does not fit. */
static size_t
http_hdr_keep(struct http_call *call, const char *v, size_t n)
{
	size_t off = call->hdr.len;

	if (n > HTTP_HDR_VALUE_MAX || buf_reserve(&call->hdr, n + 1) < 0)
		return HTTP_NOFF;
	memcpy(call->hdr.p + off, v, n);
	call->hdr.p[off + n] = '\0';
	call->hdr.len += n + 1;
	return off;
}

static size_t
http_header_cb(char *p, size_t size, size_t nmemb, void *userp)
{
	struct http_call *call = userp;
	size_t n = size * nmemb, nlen, vlen;
	const char *colon, *v;

	/* A new status line starts a new header block (1xx, proxy CONNECT). */
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		http_hdr_reset(call);
		return n;
	}
	colon = memchr(p, ':', n);
	if (colon == NULL)
		return n;
	nlen = (size_t)(colon - p);
	v = colon + 1;
	vlen = n - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
	    v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (nlen == 4 && strncasecmp(p, "Link", 4) == 0) {
		size_t off;
		if (call->nlinks == HTTP_LINKS_MAX)
			return n;
		if ((off = http_hdr_keep(call, v, vlen)) != HTTP_NOFF)
			call->link_off[call->nlinks++] = off;
		return n;
	}
	for (int i = 0; i < HTTP_HDR_COUNT; i++) {
		if (call->off[i] == HTTP_NOFF && strlen(http_hdr_names[i]) == nlen &&
		    strncasecmp(p, http_hdr_names[i], nlen) == 0) {
			call->off[i] = http_hdr_keep(call, v, vlen);
			break;
		}
	}
	return n;
}

static int
http_debug_cb(CURL *e, curl_infotype type, char *p, size_t n, void *userp)
{
	char esc[512];

	/* Bodies (JWS payloads, certificates) are never logged; only curl's
	 * own text and the header lines. */
	if (type != CURLINFO_TEXT && type != CURLINFO_HEADER_IN &&
	    type != CURLINFO_HEADER_OUT)
		return 0;
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	log_debug("http: %s %s", type == CURLINFO_TEXT ? "*" :
	    type == CURLINFO_HEADER_IN ? "<" : ">", log_escape(esc, sizeof(esc), p, n));
	return 0;
}

static void
http_error_text(struct http_call *call, CURLcode res, char *out, size_t outlen)
{
	char detail[160];	/* leaves room for the prefix in HTTP_ERR_MAX */
	long oserr = 0;

	log_escape(detail, sizeof(detail), call->errbuf, strlen(call->errbuf));
	switch (res) {
	case CURLE_OK:
		out[0] = '\0';
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(out, outlen, "could not resolve host");
		break;
	case CURLE_COULDNT_CONNECT:
		(void)curl_easy_getinfo(call->easy, CURLINFO_OS_ERRNO, &oserr);
		if (oserr == ECONNREFUSED)
			snprintf(out, outlen, "connection refused");
		else if (oserr != 0)
			snprintf(out, outlen, "could not connect: %s", strerror((int)oserr));
		else
			snprintf(out, outlen, "could not connect: %s", detail);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(out, outlen, "timeout");
		break;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (call->body_over || res == CURLE_FILESIZE_EXCEEDED)
			snprintf(out, outlen, "response body over %zu bytes", call->max_body);
		else
			snprintf(out, outlen, "cannot store the response: no memory");
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(out, outlen, "TLS: certificate verification failed: %s", detail);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(out, outlen, "TLS: cannot read the CA bundle: %s", detail);
		break;
	default:
		snprintf(out, outlen, "%s%s%s", curl_easy_strerror(res),
		    detail[0] ? ": " : "", detail);
		break;
	}
}

/* The transfer is out of the multi handle: tell the owner, then free it. */
static void
http_call_finish(struct http_call *call, CURLcode res)
{
	struct http_client *c = call->c;
	struct http_resp resp;
	char err[HTTP_ERR_MAX];
	const char *hv[HTTP_HDR_COUNT];
	double secs = 0;

	memset(&resp, 0, sizeof(resp));
	http_error_text(call, res, err, sizeof(err));
	resp.result = (int)res;
	resp.error = err;
	(void)curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &resp.status);
	(void)curl_easy_getinfo(call->easy, CURLINFO_NUM_CONNECTS, &resp.new_connections);
	(void)curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME, &secs);
	resp.seconds = secs;
	/* buf max is max_body + 1, so the NUL always fits. */
	if (buf_reserve(&call->body, 1) == 0 && call->body.p != NULL) {
		call->body.p[call->body.len] = '\0';
		resp.body = call->body.p;
		resp.body_len = call->body.len;
	} else
		resp.body = (const uint8_t *)"";
	for (int i = 0; i < HTTP_HDR_COUNT; i++)
		hv[i] = call->off[i] == HTTP_NOFF ? NULL : (const char *)call->hdr.p + call->off[i];
	resp.replay_nonce = hv[HTTP_HDR_NONCE];
	resp.location = hv[HTTP_HDR_LOCATION];
	resp.content_type = hv[HTTP_HDR_CTYPE];
	resp.retry_after = hv[HTTP_HDR_RETRY];
	for (size_t i = 0; i < call->nlinks; i++)
		resp.links[i] = (const char *)call->hdr.p + call->link_off[i];
	resp.nlinks = call->nlinks;
	resp.url = call->url;
	if (res != CURLE_OK)
		log_debug("http: %s: %s", call->url, err);

	TAILQ_REMOVE(&c->calls, call, entry);
	c->ncalls--;
	call->cb(call->arg, &resp);
	http_call_free(call);
}

static void
http_collect(struct http_client *c)
{
	CURLMsg *msg;
	int left;

	c->dispatching++;
	while (!c->free_pending && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct http_call *call = NULL;
		CURLcode res;

		if (msg->msg != CURLMSG_DONE)
			continue;
		res = msg->data.result;	/* msg dies with remove_handle */
		(void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
		curl_multi_remove_handle(c->multi, msg->easy_handle);
		http_call_finish(call, res);
	}
	c->dispatching--;
	if (c->dispatching == 0 && c->free_pending)
		http_client_destroy(c);
}

static void
http_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_sock *hs = w->data;
	struct http_client *c = hs->c;
	int action = 0, running;

	if (revents & EV_READ)
		action |= CURL_CSELECT_IN;
	if (revents & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	if (revents & EV_ERROR)
		action |= CURL_CSELECT_ERR;
	/* hs may be freed inside (CURL_POLL_REMOVE): do not touch it after. */
	(void)curl_multi_socket_action(c->multi, w->fd, action, &running);
	http_collect(c);
}

static void
http_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_client *c = w->data;
	int running;

	(void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_collect(c);
}

static int
http_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct http_sock *hs = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL) {
			ev_io_stop(c->loop, &hs->io);
			TAILQ_REMOVE(&c->socks, hs, entry);
			free(hs);
		}
		return 0;
	}
	if (hs == NULL) {
		if ((hs = calloc(1, sizeof(*hs))) == NULL) {
			log_err("http: no memory for a socket watcher");
			return -1;
		}
		hs->c = c;
		ev_io_init(&hs->io, http_io_cb, s, 0);
		hs->io.data = hs;
		TAILQ_INSERT_TAIL(&c->socks, hs, entry);
		(void)curl_multi_assign(c->multi, s, hs);
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	ev_io_stop(c->loop, &hs->io);
	ev_io_set(&hs->io, s, events);
	if (events)
		ev_io_start(c->loop, &hs->io);
	return 0;
}

static int
http_timer_cb(CURLM *m, long ms, void *userp)
{
	struct http_client *c = userp;

	ev_timer_stop(c->loop, &c->timer);
	/* -1: no timeout wanted. 0: as soon as possible, but from the loop:
	 * calling curl back from here would re-enter it. */
	if (ms >= 0) {
		ev_timer_set(&c->timer, (double)ms / 1000.0, 0.);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

struct http_client *
http_client_new(struct ev_loop *loop, const struct http_opts *opts)
{
	struct http_client *c;
	struct http_opts none;

	if (opts == NULL) {
		memset(&none, 0, sizeof(none));
		opts = &none;
	}
	if (!http_curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_err("http: curl_global_init failed");
			return NULL;
		}
		http_curl_ready = true;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	c->loop = loop;
	TAILQ_INIT(&c->calls);
	TAILQ_INIT(&c->socks);
	ev_timer_init(&c->timer, http_tick, 0., 0.);
	c->timer.data = c;
	c->max_body = opts->max_body ? opts->max_body : HTTP_BODY_MAX_DEFAULT;
	c->connect_timeout_ms = opts->connect_timeout_ms > 0 ?
	    opts->connect_timeout_ms : HTTP_CONNECT_TIMEOUT_MS;
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : HTTP_TIMEOUT_MS;
	c->verbose = opts->verbose;
	if (opts->ca_bundle != NULL && (c->ca_bundle = strdup(opts->ca_bundle)) == NULL)
		goto nomem;
	c->user_agent = strdup(opts->user_agent ? opts->user_agent : "hacme/" HACME_VERSION);
	if (c->user_agent == NULL)
		goto nomem;
	if (!http_clean(c->user_agent, 256)) {
		log_err("http: the user agent must be printable ASCII, at most 256 bytes");
		goto fail;
	}
	if ((c->multi = curl_multi_init()) == NULL)
		goto nomem;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, http_sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
nomem:
	log_err("http: no memory for the client");
fail:
	http_client_destroy(c);
	return NULL;
}

static void
http_client_destroy(struct http_client *c)
{
	struct http_call *call;
	struct http_sock *hs;

	if (c == NULL)
		return;
	while ((call = TAILQ_FIRST(&c->calls)) != NULL) {
		TAILQ_REMOVE(&c->calls, call, entry);
		curl_multi_remove_handle(c->multi, call->easy);
		http_call_free(call);
	}
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);	/* closes the pool: POLL_REMOVEs */
	while ((hs = TAILQ_FIRST(&c->socks)) != NULL) {
		ev_io_stop(c->loop, &hs->io);
		TAILQ_REMOVE(&c->socks, hs, entry);
		free(hs);
	}
	ev_timer_stop(c->loop, &c->timer);
	free(c->ca_bundle);
	free(c->user_agent);
	free(c);
}

void
http_client_free(struct http_client *c)
{
	if (c == NULL)
		return;
	if (c->dispatching > 0) {
		c->free_pending = true;	/* http_collect finishes it */
		return;
	}
	http_client_destroy(c);
}

size_t
http_inflight(const struct http_client *c)
{
	return c->ncalls;
}

static bool
http_url_ok(const char *url)
{
	return url != NULL && (strncasecmp(url, "http://", 7) == 0 ||
	    strncasecmp(url, "https://", 8) == 0) && http_clean(url, HTTP_URL_MAX) &&
	    strchr(url, ' ') == NULL;
}

static int
http_add_header(struct curl_slist **l, const char *name, const char *value)
{
	char line[HTTP_HDR_VALUE_MAX + 64];
	struct curl_slist *n;
	int len;

	if (name != NULL)
		len = snprintf(line, sizeof(line), "%s: %s", name, value);
	else
		len = snprintf(line, sizeof(line), "%s", value);
	if (len < 0 || (size_t)len >= sizeof(line) || !http_clean(line, sizeof(line))) {
		errno = EINVAL;
		return -1;
	}
	if ((n = curl_slist_append(*l, line)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*l = n;
	return 0;
}

static int
http_setup(struct http_client *c, struct http_call *call, const struct http_req *req)
{
	CURL *e = call->easy;
	CURLcode rc = CURLE_OK;
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms;
	const char *ca = req->ca_bundle ? req->ca_bundle : c->ca_bundle;

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_URL, call->url);
	SET(CURLOPT_PRIVATE, (char *)call);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, call->errbuf);
	SET(CURLOPT_WRITEFUNCTION, http_write_cb);
	SET(CURLOPT_WRITEDATA, call);
	SET(CURLOPT_HEADERFUNCTION, http_header_cb);
	SET(CURLOPT_HEADERDATA, call);
	SET(CURLOPT_USERAGENT, c->user_agent);
	SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, timeout);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max_body);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (ca != NULL)
		SET(CURLOPT_CAINFO, ca);
	if (c->verbose) {
		SET(CURLOPT_DEBUGFUNCTION, http_debug_cb);
		SET(CURLOPT_VERBOSE, 1L);
	}
	switch (req->method) {
	case HTTP_GET:
		SET(CURLOPT_HTTPGET, 1L);
		break;
	case HTTP_HEAD:
		SET(CURLOPT_NOBODY, 1L);
		break;
	case HTTP_POST:
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_COPYPOSTFIELDS, req->body ? (const char *)req->body : "");
		break;
	}
	if (call->connect_to != NULL)
		SET(CURLOPT_CONNECT_TO, call->connect_to);
	if (call->hdrs != NULL)
		SET(CURLOPT_HTTPHEADER, call->hdrs);
#undef SET
	if (rc != CURLE_OK) {
		log_err("http: %s: %s", call->url, curl_easy_strerror(rc));
		errno = rc == CURLE_OUT_OF_MEMORY ? ENOMEM : EINVAL;
		return -1;
	}
	return 0;
}

struct http_call *
http_submit(struct http_client *c, const struct http_req *req)
{
	struct http_call *call = NULL;
	int saved;

	errno = 0;
	if (req->cb == NULL || !http_url_ok(req->url) || req->nheaders > HTTP_HEADERS_MAX ||
	    (req->nheaders > 0 && req->headers == NULL) ||
	    (req->body == NULL && req->body_len > 0) ||
	    (req->method != HTTP_GET && req->method != HTTP_HEAD && req->method != HTTP_POST)) {
		log_err("http: refusing a malformed request");
		errno = EINVAL;
		return NULL;
	}
	if ((call = calloc(1, sizeof(*call))) == NULL)
		goto fail;
	call->c = c;
	call->cb = req->cb;
	call->arg = req->arg;
	call->max_body = c->max_body;
	buf_init(&call->body, c->max_body + 1);
	buf_init(&call->hdr, (HTTP_HDR_COUNT + HTTP_LINKS_MAX) * (HTTP_HDR_VALUE_MAX + 1));
	http_hdr_reset(call);
	if ((call->url = strdup(req->url)) == NULL)
		goto fail;
	if (req->content_type != NULL &&
	    http_add_header(&call->hdrs, "Content-Type", req->content_type) < 0)
		goto fail;
	for (size_t i = 0; i < req->nheaders; i++)
		if (req->headers[i] == NULL ||
		    http_add_header(&call->hdrs, NULL, req->headers[i]) < 0)
			goto fail;
	/* No "Expect: 100-continue" round trip for small ACME bodies. */
	if (req->method == HTTP_POST && http_add_header(&call->hdrs, NULL, "Expect:") < 0)
		goto fail;
	if (req->connect_to != NULL &&
	    http_add_header(&call->connect_to, NULL, req->connect_to) < 0)
		goto fail;
	if ((call->easy = curl_easy_init()) == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	if (http_setup(c, call, req) < 0)
		goto fail;
	if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
		errno = EIO;
		goto fail;
	}
	TAILQ_INSERT_TAIL(&c->calls, call, entry);
	c->ncalls++;
	return call;
fail:
	saved = errno ? errno : ENOMEM;
	log_err("http: cannot start %s %s: %s", http_method_name(req->method),
	    req->url, strerror(saved));
	http_call_free(call);
	errno = saved;
	return NULL;
}

void
http_cancel(struct http_call *call)
{
	struct http_client *c;

	if (call == NULL)
		return;
	c = call->c;
	/* Also drops a completion message still queued for it. */
	curl_multi_remove_handle(c->multi, call->easy);
	TAILQ_REMOVE(&c->calls, call, entry);
	c->ncalls--;
	http_call_free(call);
}
