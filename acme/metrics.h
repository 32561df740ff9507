/* metrics.h - Prometheus text metrics (exposition format 0.0.4) over a tiny
 * HTTP/1.x server on the worker's libev loop (`metrics-listen`).
 *
 * GET (or HEAD) /metrics calls render, which appends the exposition text
 * to a buffer, and answers 200 with it; a query string is ignored. Any
 * other path: 404; another method on /metrics: 405 (Allow: GET, HEAD); a
 * request line that is not HTTP/1.x: 400 (505 for another version); a
 * request head over max_request bytes: 431; render failing: 500. Every
 * answer carries Content-Length and Connection: close: one request per
 * connection, then a lingering close (the rest of the request is read and
 * dropped) so that the answer is not lost to a reset.
 *
 * Never blocks the loop: non-blocking sockets, every connection bounded in
 * bytes (max_request in, max_body out) and in time (timeout from accept to
 * close, not reset by traffic: a client trickling bytes is cut off), at
 * most max_clients at once (further ones wait in the listen backlog).
 * render runs inside the loop: it must be quick (format what is in memory). */
#ifndef HACME_METRICS_H
#define HACME_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct ev_loop;
struct addr;
struct buf;
struct metrics;

#define METRICS_ERR_MAX 256
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_opts {
	double timeout;		/* seconds a connection may live; 0: 5 */
	size_t max_request;	/* bytes of a request head; 0: 8192 */
	size_t max_body;	/* bytes of one exposition; 0: 64 MiB */
	unsigned max_clients;	/* connections at once; 0: 256 */
};

/* Appends the exposition to out (bounded by max_body: a failed append means
 * the text would be too large). 0, or -1: the client gets 500. */
typedef int metrics_render_cb(void *arg, struct buf *out);

/* Listens on addr (tcp or unix; tcp port 0: one is chosen, see
 * metrics_port). opts may be NULL. NULL with err when it cannot listen. */
struct metrics *metrics_new(struct ev_loop *loop, const struct addr *listen,
    const struct metrics_opts *opts, metrics_render_cb *render, void *arg,
    char *err, size_t errlen);
/* Closes the listener and every connection (a unix socket file is
 * removed). NULL is a no-op. Not from inside render. */
void metrics_free(struct metrics *m);
/* The tcp port listened on; 0 for unix. */
unsigned metrics_port(const struct metrics *m);

/* ---- the request (pure) --------------------------------------------- */

/* Judges the request head in p[0..len): 0 when more bytes are needed
 * (the head is not complete and len < max), else the status to answer
 * with: 200 (and *head true for HEAD), 400, 404, 405, 431, 505. Lines end
 * in LF, a CR before it is ignored. A request line that is already wrong
 * is judged before the head is complete. */
int metrics_http_judge(const char *p, size_t len, size_t max, bool *head);

/* ---- the exposition text -------------------------------------------- */

/* [a-zA-Z_:][a-zA-Z0-9_:]* (metric) / [a-zA-Z_][a-zA-Z0-9_]* (label). */
bool metrics_name_valid(const char *name);
bool metrics_label_valid(const char *name);

/* "# HELP name help\n# TYPE name type\n"; help escaped (\\ and \n); type
 * one of counter, gauge, histogram, summary, untyped. 0, or -1 with errno
 * (EINVAL: a bad name or type; ENOBUFS: b is full). */
int metrics_family(struct buf *b, const char *name, const char *type, const char *help);

/* One sample line: name{l1="v1",l2="v2"} value\n. labels: NULL, or name,
 * value pairs ended by NULL; values escaped (\\, \", \n). value: integers
 * of up to 2^53 exactly, else %.17g; NaN, +Inf, -Inf. As metrics_family. */
int metrics_sample(struct buf *b, const char *name, const char *const labels[],
    double value);

#endif
