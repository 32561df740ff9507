/* metrics.c - Prometheus text metrics over HTTP/1.x on libev.
 *
 * A connection reads one request head (READ), answers it in one go from a
 * small head and the rendered body (WRITE), then shuts its side down and
 * drops what the client still sends until it closes (LINGER). One timer
 * per connection is its deadline, set at accept and never pushed back. */
#include "acme/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <netinet/in.h>

#include <ev.h>

#include "common/addr.h"
#include "common/buf.h"
#include "common/log.h"

#define M_TIMEOUT 5.0
#define M_MAX_REQUEST 8192
#define M_MAX_BODY (64u << 20)
#define M_MAX_CLIENTS 256
#define M_BACKLOG 128
#define M_ACCEPT_PAUSE 0.1	/* s without accepting after EMFILE */
#define M_LINGER 1.0		/* s at most to drain a client after the answer */
#define M_DRAIN_MAX (1u << 20)	/* bytes drained at most before closing */
#define M_PATH "/metrics"

enum mc_state { MC_READ = 0, MC_WRITE, MC_LINGER };

struct mconn {
	LIST_ENTRY(mconn) link;
	struct metrics *m;
	int fd;
	enum mc_state state;
	ev_io io;
	int events;
	ev_timer timer;
	struct buf in;
	char head[256];
	size_t headlen;
	struct buf body;
	size_t bodylen;		/* bytes of body to send: 0 for HEAD */
	size_t sent;		/* of headlen + bodylen */
	size_t drained;
};

struct metrics {
	struct ev_loop *loop;
	struct metrics_opts o;
	metrics_render_cb *render;
	void *arg;
	struct addr addr;
	ev_io lio;
	ev_timer pause;		/* accepts paused after EMFILE */
	LIST_HEAD(, mconn) conns;
	unsigned nconns;	/* reading or writing: at most max_clients */
	unsigned nlinger;	/* answered, draining: at most max_clients too */
};

/* ---- the request ------------------------------------------------------ */

static bool
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The request line p[0..len) (no LF, no CR): 200 / 404 / 405 / 400 / 505. */
static int
judge_line(const char *p, size_t len, bool *head)
{
	const char *end = p + len, *m = p, *t, *v, *q;
	size_t mlen, tlen, plen;

	while (p < end && is_tchar((unsigned char)*p))
		p++;
	mlen = (size_t)(p - m);
	if (mlen == 0 || p == end || *p != ' ')
		return 400;
	t = ++p;
	while (p < end && (unsigned char)*p > ' ' && *p != 0x7f)
		p++;
	tlen = (size_t)(p - t);
	if (tlen == 0 || p == end || *p != ' ')
		return 400;
	v = ++p;
	if ((size_t)(end - v) != 8 || memcmp(v, "HTTP/", 5) != 0 ||
	    v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1')
		return 505;
	for (q = t; q < t + tlen && *q != '?' && *q != '#'; q++)
		;
	plen = (size_t)(q - t);
	if (plen != sizeof(M_PATH) - 1 || memcmp(t, M_PATH, plen) != 0)
		return 404;
	if (mlen == 3 && memcmp(m, "GET", 3) == 0)
		return 200;
	if (mlen == 4 && memcmp(m, "HEAD", 4) == 0) {
		*head = true;
		return 200;
	}
	return 405;
}

int
metrics_http_judge(const char *p, size_t len, size_t max, bool *head)
{
	const char *end = p + len, *line, *nl;
	size_t n;
	int st = 0;

	*head = false;
	line = p;
	/* RFC 9112 section 2.2: empty lines before the request line are ignored */
	while (line < end && (*line == '\n' || (*line == '\r' && line + 1 < end &&
	    line[1] == '\n')))
		line += *line == '\n' ? 1 : 2;
	/* not even the start of a method (a TLS hello): no need to wait */
	for (const char *q = line; q < end && *q != ' '; q++)
		if (!is_tchar((unsigned char)*q))
			return 400;
	for (;;) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			return len >= max ? 431 : 0;
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (st == 0) {
			st = judge_line(line, n, head);
			if (st == 400 || st == 505)
				return st;
		} else if (n == 0) {
			break;
		} else if (memchr(line, ':', n) == NULL || line[0] == ' ' || line[0] == '\t') {
			return 400;	/* not a field, or obsolete line folding */
		}
		line = nl + 1;
	}
	/* a head that ends within max bytes is judged even when more follows */
	return (size_t)(line - p) > max ? 431 : st;
}

/* ---- connections ------------------------------------------------------ */

static void
io_want(struct mconn *c, int want)
{
	if (want == c->events)
		return;
	ev_io_stop(c->m->loop, &c->io);
	ev_io_set(&c->io, c->fd, want);
	if (want)
		ev_io_start(c->m->loop, &c->io);
	c->events = want;
}

static void
accept_resume(struct metrics *m)
{
	if (m->nconns < m->o.max_clients && !ev_is_active(&m->pause))
		ev_io_start(m->loop, &m->lio);
}

static void
conn_free(struct mconn *c)
{
	struct metrics *m = c->m;

	ev_io_stop(m->loop, &c->io);
	ev_timer_stop(m->loop, &c->timer);
	close(c->fd);
	buf_fini(&c->in);
	buf_fini(&c->body);
	LIST_REMOVE(c, link);
	if (c->state == MC_LINGER)
		m->nlinger--;
	else
		m->nconns--;
	free(c);
	accept_resume(m);
}

static const char *
status_text(int st)
{
	switch (st) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 505: return "HTTP Version Not Supported";
	}
	return "Internal Server Error";
}

/* Fills head and body for status st. */
static void
conn_answer(struct mconn *c, int st, bool head)
{
	struct metrics *m = c->m;
	const char *type = METRICS_CONTENT_TYPE;
	char line[64];

	buf_init(&c->body, m->o.max_body);
	if (st == 200 && m->render(m->arg, &c->body) < 0) {
		log_warn("metrics: rendering failed: %s", strerror(errno));
		buf_fini(&c->body);
		st = 500;
	}
	if (st != 200) {
		int n = snprintf(line, sizeof(line), "%d %s\n", st, status_text(st));
		type = "text/plain; charset=utf-8";
		if (buf_append(&c->body, line, (size_t)n) < 0)
			c->body.len = 0;
	}
	c->headlen = (size_t)snprintf(c->head, sizeof(c->head),
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	    "Connection: close\r\n\r\n", st, status_text(st), type, c->body.len,
	    st == 405 ? "Allow: GET, HEAD\r\n" : "");
	c->bodylen = head ? 0 : c->body.len;
	c->sent = 0;
	c->state = MC_WRITE;
	log_debug("metrics: %d %s", st, status_text(st));
}

/* Sends what the socket takes. 1 all sent, 0 more to send, -1 dead peer. */
static int
conn_send(struct mconn *c)
{
	struct iovec iov[2];
	struct msghdr msg;
	ssize_t n;

	while (c->sent < c->headlen + c->bodylen) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		if (c->sent < c->headlen) {
			iov[0].iov_base = c->head + c->sent;
			iov[0].iov_len = c->headlen - c->sent;
			iov[1].iov_base = c->body.p;
			iov[1].iov_len = c->bodylen;
			msg.msg_iovlen = c->bodylen ? 2 : 1;
		} else {
			iov[0].iov_base = c->body.p + (c->sent - c->headlen);
			iov[0].iov_len = c->headlen + c->bodylen - c->sent;
			msg.msg_iovlen = 1;
		}
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n > 0) {
			c->sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	return 1;
}

/* An answered client no longer takes a client slot: it only drains. */
static void
conn_linger(struct mconn *c)
{
	struct metrics *m = c->m;

	if (m->nlinger >= m->o.max_clients) {
		conn_free(c);
		return;
	}
	buf_fini(&c->body);
	buf_fini(&c->in);
	(void)shutdown(c->fd, SHUT_WR);
	c->state = MC_LINGER;
	m->nconns--;
	m->nlinger++;
	accept_resume(m);
	ev_timer_stop(c->m->loop, &c->timer);
	ev_timer_set(&c->timer, c->m->o.timeout < M_LINGER ? c->m->o.timeout : M_LINGER, 0.);
	ev_timer_start(c->m->loop, &c->timer);
	io_want(c, EV_READ);
}

/* Reads what is there. 1 data, 0 nothing now, -1 EOF or error. */
static int
conn_read(struct mconn *c, char *scratch, size_t len)
{
	ssize_t n;

	for (;;) {
		n = read(c->fd, scratch, len);
		if (n > 0)
			return (int)(n > INT32_MAX ? INT32_MAX : n);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
}

static void
conn_on_read(struct mconn *c)
{
	struct metrics *m = c->m;
	char chunk[4096];
	size_t room;
	bool head;
	int n, st;

	for (;;) {
		room = m->o.max_request - c->in.len;
		if (room > sizeof(chunk))
			room = sizeof(chunk);
		if ((n = conn_read(c, chunk, room)) < 0) {
			conn_free(c);	/* gone before its request was whole */
			return;
		}
		if (n == 0)
			return;
		if (buf_append(&c->in, chunk, (size_t)n) < 0) {
			conn_free(c);
			return;
		}
		st = metrics_http_judge((const char *)c->in.p, c->in.len, m->o.max_request,
		    &head);
		if (st != 0)
			break;
	}
	conn_answer(c, st, head);
	if ((n = conn_send(c)) < 0) {
		conn_free(c);
		return;
	}
	if (n > 0)
		conn_linger(c);
	else
		io_want(c, EV_WRITE);
}

static void
conn_on_drain(struct mconn *c)
{
	char chunk[4096];
	int n;

	while ((n = conn_read(c, chunk, sizeof(chunk))) > 0) {
		c->drained += (size_t)n;
		if (c->drained > M_DRAIN_MAX)
			break;
	}
	if (n != 0)
		conn_free(c);
}

static void
conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mconn *c = w->data;
	int n;

	switch (c->state) {
	case MC_READ:
		conn_on_read(c);
		break;
	case MC_WRITE:
		if ((n = conn_send(c)) < 0)
			conn_free(c);
		else if (n > 0)
			conn_linger(c);
		break;
	case MC_LINGER:
		conn_on_drain(c);
		break;
	}
}

static void
conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mconn *c = w->data;

	if (c->state != MC_LINGER)
		log_debug("metrics: a client took more than %.1f s: closing", c->m->o.timeout);
	conn_free(c);
}

static void
conn_new(struct metrics *m, int fd)
{
	struct mconn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("metrics: out of memory");
		close(fd);
		return;
	}
	c->m = m;
	c->fd = fd;
	buf_init(&c->in, m->o.max_request);
	buf_init(&c->body, m->o.max_body);
	ev_io_init(&c->io, conn_cb, fd, 0);
	c->io.data = c;
	ev_timer_init(&c->timer, conn_timer_cb, m->o.timeout, 0.);
	c->timer.data = c;
	ev_timer_start(m->loop, &c->timer);
	LIST_INSERT_HEAD(&m->conns, c, link);
	m->nconns++;
	io_want(c, EV_READ);
}

/* ---- the listener ----------------------------------------------------- */

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics *m = w->data;
	enum addr_accept_stop stop;
	int fd;

	while (m->nconns < m->o.max_clients) {
		if ((fd = addr_accept(w->fd, &stop)) >= 0) {
			conn_new(m, fd);
			continue;
		}
		if (stop == ADDR_ACCEPT_PAUSE) {
			log_warn("metrics: accept: %s; pausing accepts for %.0f ms",
			    strerror(errno), M_ACCEPT_PAUSE * 1000);
			ev_io_stop(loop, w);
			ev_timer_set(&m->pause, M_ACCEPT_PAUSE, 0.);
			ev_timer_start(loop, &m->pause);
		} else if (stop == ADDR_ACCEPT_ERROR) {
			log_warn("metrics: accept: %s", strerror(errno));
		}
		return;
	}
	ev_io_stop(loop, w);	/* full: accept_resume starts it again */
}

static void
pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	accept_resume(w->data);
}

struct metrics *
metrics_new(struct ev_loop *loop, const struct addr *listen,
    const struct metrics_opts *opts, metrics_render_cb *render, void *arg,
    char *err, size_t errlen)
{
	struct metrics *m;
	int fd;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	if (opts != NULL)
		m->o = *opts;
	if (m->o.timeout <= 0)
		m->o.timeout = M_TIMEOUT;
	if (m->o.max_request == 0)
		m->o.max_request = M_MAX_REQUEST;
	if (m->o.max_body == 0)
		m->o.max_body = M_MAX_BODY;
	if (m->o.max_clients == 0)
		m->o.max_clients = M_MAX_CLIENTS;
	m->loop = loop;
	m->render = render;
	m->arg = arg;
	m->addr = *listen;
	LIST_INIT(&m->conns);
	if ((fd = addr_listen(listen, M_BACKLOG, 0660)) < 0) {
		snprintf(err, errlen, "metrics-listen %s: %s", listen->text, strerror(errno));
		free(m);
		return NULL;
	}
	ev_io_init(&m->lio, accept_cb, fd, EV_READ);
	m->lio.data = m;
	ev_init(&m->pause, pause_cb);
	m->pause.data = m;
	ev_io_start(loop, &m->lio);
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	while (!LIST_EMPTY(&m->conns))
		conn_free(LIST_FIRST(&m->conns));
	ev_io_stop(m->loop, &m->lio);
	ev_timer_stop(m->loop, &m->pause);
	close(m->lio.fd);
	if (addr_is_unix(&m->addr))
		(void)unlink(((const struct sockaddr_un *)&m->addr.ss)->sun_path);
	free(m);
}

unsigned
metrics_port(const struct metrics *m)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (addr_is_unix(&m->addr) ||
	    getsockname(m->lio.fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* ---- the exposition text ---------------------------------------------- */

static bool
name_valid(const char *s, bool colon)
{
	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || (colon && *s == ':')))
			return false;
	return true;
}

bool
metrics_name_valid(const char *name)
{
	return name_valid(name, true);
}

bool
metrics_label_valid(const char *name)
{
	return name_valid(name, false);
}

static int
put(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

/* s with \\ and \n escaped, and \" too when quote. */
static int
put_escaped(struct buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" :
		    quote && *s == '"' ? "\\\"" : NULL;
		if (esc == NULL)
			continue;
		if (buf_append(b, run, (size_t)(s - run)) < 0 || put(b, esc) < 0)
			return -1;
		run = s + 1;
	}
	return buf_append(b, run, (size_t)(s - run));
}

int
metrics_family(struct buf *b, const char *name, const char *type, const char *help)
{
	static const char *const types[] = { "counter", "gauge", "histogram", "summary",
	    "untyped" };
	size_t len = b->len, i;

	for (i = 0; type != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			break;
	if (!metrics_name_valid(name) || type == NULL || i == sizeof(types) / sizeof(types[0])) {
		errno = EINVAL;
		return -1;
	}
	if ((help != NULL && (put(b, "# HELP ") < 0 || put(b, name) < 0 || put(b, " ") < 0 ||
	    put_escaped(b, help, false) < 0 || put(b, "\n") < 0)) ||
	    put(b, "# TYPE ") < 0 || put(b, name) < 0 || put(b, " ") < 0 ||
	    put(b, type) < 0 || put(b, "\n") < 0) {
		b->len = len;	/* never half a line */
		return -1;
	}
	return 0;
}

static void
fmt_value(char *out, size_t len, double v)
{
	if (isnan(v))
		snprintf(out, len, "NaN");
	else if (isinf(v))
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
	else if (v >= -9007199254740992.0 && v <= 9007199254740992.0 &&
	    v == (double)(int64_t)v)
		snprintf(out, len, "%lld", (long long)v);
	else
		snprintf(out, len, "%.17g", v);
}

int
metrics_sample(struct buf *b, const char *name, const char *const labels[], double value)
{
	size_t len = b->len, i;
	char num[64];

	if (!metrics_name_valid(name))
		goto inval;
	for (i = 0; labels != NULL && labels[i] != NULL; i += 2)
		if (!metrics_label_valid(labels[i]) || labels[i + 1] == NULL)
			goto inval;
	if (put(b, name) < 0)
		goto fail;
	for (i = 0; labels != NULL && labels[i] != NULL; i += 2)
		if (put(b, i == 0 ? "{" : ",") < 0 || put(b, labels[i]) < 0 ||
		    put(b, "=\"") < 0 || put_escaped(b, labels[i + 1], true) < 0 ||
		    put(b, "\"") < 0)
			goto fail;
	fmt_value(num, sizeof(num), value);
	if ((i > 0 && put(b, "}") < 0) || put(b, " ") < 0 || put(b, num) < 0 ||
	    put(b, "\n") < 0)
		goto fail;
	return 0;
inval:
	errno = EINVAL;
	return -1;
fail:
	b->len = len;	/* never half a line */
	return -1;
}
