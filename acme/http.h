/* http.h - every HTTP request hacme makes: libcurl's multi socket interface
 * driven by one libev loop (an ev_io per socket, one ev_timer), in one
 * thread, so hundreds of requests proceed at once.
 *
 * Usage:
 *	struct http_client *c = http_client_new(loop, &opts);
 *	struct http_req r = { .method = HTTP_GET, .url = u, .cb = done, .arg = x };
 *	struct http_call *h = http_submit(c, &r);
 *	... ev_run(loop) ...; done(x, resp) runs once, from the loop.
 *
 * TLS peer and host verification are always on; redirects are never
 * followed (ACME gives the next URL in Location). Connections are kept in
 * the client's pool and reused; HTTP/1.1 or HTTP/2, as curl negotiates. */
#ifndef HACME_HTTP_H
#define HACME_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct http_client;
struct http_call;

#define HTTP_BODY_MAX_DEFAULT (1024 * 1024)	/* bytes */
#define HTTP_LINKS_MAX 16	/* Link header lines kept; more are dropped */
#define HTTP_HDR_VALUE_MAX 4096	/* bytes of one captured header value */
#define HTTP_HEADERS_MAX 32	/* extra request headers */
#define HTTP_ERR_MAX 256	/* bytes of resp->error, NUL included */

struct http_opts {
	const char *ca_bundle;	/* PEM file of trusted roots; NULL: the system's */
	const char *user_agent;	/* NULL: "hacme/<version>" */
	size_t max_body;	/* 0: HTTP_BODY_MAX_DEFAULT; more aborts the transfer */
	long connect_timeout_ms;	/* 0: 10 s */
	long timeout_ms;	/* whole transfer; 0: 30 s */
	bool verbose;		/* curl's debug lines at log level debug */
};

enum http_method {
	HTTP_GET = 0,
	HTTP_HEAD,
	HTTP_POST,
};

/* A finished request. Everything here (strings, body) is owned by the
 * client and lives until the callback returns: copy what you keep. */
struct http_resp {
	int result;		/* CURLcode: 0 when an HTTP response came back */
	const char *error;	/* one line, "" when result == 0: "connection refused",
				 * "could not resolve host", "timeout",
				 * "response body over N bytes", "TLS: ..." */
	long status;		/* HTTP status, 0 when none came */
	const uint8_t *body;	/* NUL-terminated (the NUL is not counted); never NULL */
	size_t body_len;
	/* Captured headers (names matched case-insensitively), NULL when
	 * absent; the value of the first such header, trimmed. A value over
	 * HTTP_HDR_VALUE_MAX bytes is dropped. */
	const char *replay_nonce;
	const char *location;
	const char *content_type;
	const char *retry_after;
	const char *links[HTTP_LINKS_MAX];	/* every Link header value, in order */
	size_t nlinks;
	long new_connections;	/* connections opened for this request (0: reused) */
	double seconds;		/* total time of the transfer */
	const char *url;	/* the request URL */
};

/* One request. http_submit copies everything it needs: the struct and the
 * strings and body it points to may be freed when it returns. */
struct http_req {
	enum http_method method;
	const char *url;
	const void *body;	/* POST payload, may be NULL (then empty) */
	size_t body_len;
	const char *content_type;	/* e.g. "application/jose+json"; NULL: none */
	/* "HOST:PORT:CONNECT-HOST:CONNECT-PORT" (CURLOPT_CONNECT_TO): connect
	 * there instead of resolving HOST; the Host header and SNI stay HOST. */
	const char *connect_to;
	const char *const *headers;	/* extra "Name: value" lines */
	size_t nheaders;		/* at most HTTP_HEADERS_MAX */
	const char *ca_bundle;		/* NULL: the client's */
	long timeout_ms;		/* 0: the client's */
	void (*cb)(void *arg, const struct http_resp *resp);	/* required */
	void *arg;
};

/* NULL on failure (bad options, no memory), with a reason logged. */
struct http_client *http_client_new(struct ev_loop *loop, const struct http_opts *opts);

/* Stops every request in flight WITHOUT calling its callback, closes the
 * pooled connections and frees the client. NULL is a no-op. May be called
 * from a completion callback (the free then happens when it returns). */
void http_client_free(struct http_client *c);

/* Starts a request. The callback runs exactly once, later, from the loop --
 * never from inside http_submit -- unless the call is cancelled or the
 * client freed first. Returns a handle valid until the callback returns, or
 * NULL (errno EINVAL: bad request; ENOMEM; EIO: curl refused it) with the
 * reason logged; then no callback will run. */
struct http_call *http_submit(struct http_client *c, const struct http_req *req);

/* Aborts a request whose callback has not run yet; its callback will not
 * run. Not for a call whose callback is running or has run. */
void http_cancel(struct http_call *call);

/* Requests submitted and not yet finished or cancelled. */
size_t http_inflight(const struct http_client *c);

const char *http_method_name(enum http_method m);

#endif
