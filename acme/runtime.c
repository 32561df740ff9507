/* runtime.c - HAProxy runtime-API client on libev.
 *
 * A request is a command (one connection each) or a turn request. Commands
 * wait in `queue` until a connection slot is free, run in `running`, and
 * wait in `done` for a zero-delay timer to deliver them, so that no
 * callback runs inside the call that started it. Turn requests wait in
 * `turns`; the head polls flock(LOCK_NB) on a timer (a blocking flock
 * would stall the loop) and is delivered through `done` once granted. */
#include "acme/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "common/addr.h"
#include "common/buf.h"
#include "common/log.h"

#define RT_TIMEOUT 10.0
#define RT_LOCK_TIMEOUT 60.0
#define RT_BUFSIZE_TTL 30.0
#define RT_MAX_CONNS 4
#define RT_RETRY_MIN 0.001	/* first retry of a "currently locked" write */
#define RT_RETRY_MAX 0.25
#define RT_POLL_MIN 0.002	/* first flock poll */
#define RT_POLL_MAX 0.1
#define RT_HOLD_MAX 1.0		/* seconds the flock passes between our holders */
#define RT_LOCKED "Operations on certificates are currently locked!"
#define RT_QUIT "quit\n"

enum rt_kind {
	RT_CMD = 0,
	RT_TURN,
};

enum rt_where {
	RT_NOWHERE = 0,
	RT_QUEUE,
	RT_RUNNING,
	RT_DONE,
	RT_TURNS,
};

enum rt_state {
	RT_IDLE = 0,
	RT_CONNECTING,
	RT_SENDING,
	RT_READING,
	RT_RETRY,		/* waiting to send again (busy, or backlog full) */
};

struct rt_req {
	TAILQ_ENTRY(rt_req) entry;
	struct runtime *rt;
	enum rt_kind kind;
	enum rt_where where;
	enum rt_state state;
	void *arg;
	runtime_cb *cb;
	void (*turn_cb)(void *, const char *);
	bool internal;			/* the bufsize probe: never delivered */
	bool payload;
	bool failed;
	char *req;			/* bytes to send */
	size_t reqlen, sent;
	size_t checklen;		/* what counts against tune.bufsize */
	char *stop;			/* stop line, or NULL */
	int fd;
	ev_io io;
	ev_timer timer;
	ev_tstamp deadline;		/* 0: not started */
	double backoff;
	struct buf in;
	char err[RUNTIME_ERR_MAX];
};

TAILQ_HEAD(rt_list, rt_req);

struct runtime {
	struct ev_loop *loop;
	struct addr addr;
	double timeout, lock_timeout, bufsize_ttl;
	unsigned max_conns, nrunning;
	char *lock_path;
	int lock_fd;
	size_t bufsize;
	ev_tstamp bufsize_at;		/* 0: never learned */
	struct rt_req *probe;
	void *holder;			/* arg holding the write turn */
	bool flocked;			/* a continuous hold of ours (the flock, if any) */
	uint64_t epoch;			/* counts continuous holds */
	ev_tstamp hold_since;
	double poll;
	struct rt_list queue, running, done, turns;
	ev_timer kick;
	ev_timer turn_timer;
	int dispatching;
	bool free_pending;
};

static void rt_pump(struct runtime *);
static void rt_turn_pump(struct runtime *);
static void rt_start(struct rt_req *);

/* ---- lists and delivery ------------------------------------------------ */

static struct rt_list *
rt_list_of(struct runtime *rt, enum rt_where w)
{
	switch (w) {
	case RT_QUEUE: return &rt->queue;
	case RT_RUNNING: return &rt->running;
	case RT_DONE: return &rt->done;
	case RT_TURNS: return &rt->turns;
	case RT_NOWHERE: break;
	}
	return NULL;
}

static void
rt_move(struct rt_req *r, enum rt_where to)
{
	struct runtime *rt = r->rt;
	struct rt_list *l;

	if ((l = rt_list_of(rt, r->where)) != NULL)
		TAILQ_REMOVE(l, r, entry);
	if (r->where == RT_RUNNING)
		rt->nrunning--;
	r->where = to;
	if ((l = rt_list_of(rt, to)) != NULL)
		TAILQ_INSERT_TAIL(l, r, entry);
	if (to == RT_RUNNING)
		rt->nrunning++;
}

static void
rt_disconnect(struct rt_req *r)
{
	struct ev_loop *loop = r->rt->loop;

	ev_io_stop(loop, &r->io);
	ev_timer_stop(loop, &r->timer);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->state = RT_IDLE;
}

static void
rt_req_free(struct rt_req *r)
{
	if (r == NULL)
		return;
	rt_disconnect(r);
	rt_move(r, RT_NOWHERE);
	if (r->rt->probe == r)
		r->rt->probe = NULL;
	buf_fini(&r->in);
	free(r->req);
	free(r->stop);
	free(r);
}

static void
rt_kick(struct runtime *rt)
{
	if (!ev_is_active(&rt->kick)) {
		ev_timer_set(&rt->kick, 0., 0.);
		ev_timer_start(rt->loop, &rt->kick);
	}
}

static void __attribute__((format(printf, 2, 3)))
rt_fail(struct rt_req *r, const char *fmt, ...)
{
	char why[RUNTIME_ERR_MAX - 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(r->err, sizeof(r->err), "HAProxy %s: %s", r->rt->addr.text, why);
	r->failed = true;
}

static void rt_bufsize_learned(struct runtime *, struct rt_req *);

/* A command is over (r->failed or the reply in r->in): hand it on. */
static void
rt_finish(struct rt_req *r)
{
	struct runtime *rt = r->rt;

	rt_disconnect(r);
	if (r->internal) {
		rt_bufsize_learned(rt, r);
		rt_req_free(r);
	} else {
		rt_move(r, RT_DONE);
		rt_kick(rt);
	}
	rt_pump(rt);
}

static void
rt_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct runtime *rt = w->data;
	struct rt_req *r;
	size_t len;

	rt->dispatching++;
	while (!rt->free_pending && (r = TAILQ_FIRST(&rt->done)) != NULL) {
		rt_move(r, RT_NOWHERE);
		if (r->kind == RT_TURN) {
			r->turn_cb(r->arg, r->failed ? r->err : NULL);
		} else if (r->failed) {
			r->cb(r->arg, r->err, NULL, 0);
		} else {
			/* Without the empty line (or lines) that end a reply. */
			len = r->in.len;
			while (len > 0 && r->in.p[len - 1] == '\n')
				len--;
			if (buf_reserve(&r->in, 1) < 0) {
				rt_fail(r, "no memory");
				r->cb(r->arg, r->err, NULL, 0);
			} else {
				r->in.p[len] = '\0';
				r->cb(r->arg, NULL, (const char *)r->in.p, len);
			}
		}
		rt_req_free(r);
	}
	rt->dispatching--;
	if (rt->dispatching == 0 && rt->free_pending)
		runtime_free(rt);
}

/* ---- one command ------------------------------------------------------- */

static bool
rt_bufsize_stale(const struct runtime *rt)
{
	return rt->bufsize_at == 0 || ev_now(rt->loop) - rt->bufsize_at > rt->bufsize_ttl;
}

static void
rt_bufsize_learned(struct runtime *rt, struct rt_req *r)
{
	size_t n = r->failed ? 0 : runtime_parse_bufsize((const char *)r->in.p, r->in.len);

	if (n == 0 && rt->bufsize_at == 0)
		log_info("HAProxy %s: tune.bufsize unknown (no 'Pool buffer' in show pools)",
		    rt->addr.text);
	if (n != 0 && n != rt->bufsize)
		log_debug("HAProxy %s: tune.bufsize %zu", rt->addr.text, n);
	rt->bufsize = n;
	rt->bufsize_at = ev_now(rt->loop);
}

/* Why a payload command may have gone unanswered. */
static void
rt_fail_size(struct rt_req *r, const char *what)
{
	if (r->rt->bufsize > 0)
		rt_fail(r, "%s to a %zu-byte command", what, r->checklen);
	else
		rt_fail(r, "%s to a %zu-byte command: it may not fit HAProxy's buffer; "
		    "raise tune.bufsize in haproxy.cfg's global section (default 16384)",
		    what, r->checklen);
}

static bool
rt_retry(struct rt_req *r)
{
	ev_tstamp now = ev_now(r->rt->loop);

	r->backoff = r->backoff == 0 ? RT_RETRY_MIN : r->backoff * 2;
	if (r->backoff > RT_RETRY_MAX)
		r->backoff = RT_RETRY_MAX;
	if (now + r->backoff >= r->deadline)
		return false;
	log_debug("HAProxy %s: busy, again in %g s", r->rt->addr.text, r->backoff);
	rt_disconnect(r);
	r->state = RT_RETRY;
	r->in.len = 0;
	r->sent = 0;
	ev_timer_set(&r->timer, r->backoff, 0.);
	ev_timer_start(r->rt->loop, &r->timer);
	return true;
}

/* The reply is complete (EOF): decide. */
static void
rt_eof(struct rt_req *r)
{
	const char *p = (const char *)r->in.p;

	if (r->in.len == 0) {
		if (r->payload)
			rt_fail_size(r, "closed the connection without a reply");
		else
			rt_fail(r, "closed the connection without a reply");
	} else if (runtime_reply_has(p, r->in.len, RT_LOCKED, NULL) && rt_retry(r)) {
		return;	/* another client's write holds the lock: try again (the
			 * whole chain: a command refused so did nothing) */
	}
	rt_finish(r);
}

static void
rt_read(struct rt_req *r)
{
	size_t at;
	ssize_t n;

	for (;;) {
		if (buf_reserve(&r->in, 16384) < 0) {
			rt_fail(r, "reply larger than %u bytes", RUNTIME_REPLY_MAX);
			rt_finish(r);
			return;
		}
		n = recv(r->fd, r->in.p + r->in.len, r->in.cap - r->in.len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n < 0) {
			rt_fail(r, "read: %s", strerror(errno));
			rt_finish(r);
			return;
		}
		if (n == 0) {
			rt_eof(r);
			return;
		}
		r->in.len += (size_t)n;
		/* the stop line counts once its LF came */
		if (r->stop != NULL && runtime_reply_has((const char *)r->in.p, r->in.len, r->stop,
		    &at) && at + strlen(r->stop) < r->in.len) {
			r->in.len = at;
			rt_finish(r);
			return;
		}
	}
}

static void
rt_send(struct rt_req *r)
{
	ssize_t n;

	while (r->sent < r->reqlen) {
		n = send(r->fd, r->req + r->sent, r->reqlen - r->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n < 0) {
			/* HAProxy may answer and close before reading it all. */
			if (errno == EPIPE || errno == ECONNRESET) {
				r->state = RT_READING;
				ev_io_stop(r->rt->loop, &r->io);
				ev_io_set(&r->io, r->fd, EV_READ);
				ev_io_start(r->rt->loop, &r->io);
				return;
			}
			rt_fail(r, "write: %s", strerror(errno));
			rt_finish(r);
			return;
		}
		r->sent += (size_t)n;
	}
	r->state = RT_READING;
	ev_io_stop(r->rt->loop, &r->io);
	ev_io_set(&r->io, r->fd, EV_READ);
	ev_io_start(r->rt->loop, &r->io);
}

static void
rt_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rt_req *r = w->data;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	switch (r->state) {
	case RT_CONNECTING:
		if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr != 0) {
			rt_fail(r, "connect: %s", strerror(soerr));
			rt_finish(r);
			return;
		}
		r->state = RT_SENDING;
		rt_send(r);
		break;
	case RT_SENDING:
		rt_send(r);
		break;
	case RT_READING:
		rt_read(r);
		break;
	case RT_IDLE:
	case RT_RETRY:
		break;
	}
}

static void
rt_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rt_req *r = w->data;
	struct runtime *rt = r->rt;

	if (r->state == RT_RETRY) {
		rt_start(r);
		return;
	}
	if (r->state == RT_CONNECTING)
		rt_fail(r, "connect: no answer within %g s", rt->timeout);
	else if (r->payload)
		rt_fail_size(r, "no reply within the timeout");
	else
		rt_fail(r, "no reply within %g s", rt->timeout);
	rt_finish(r);
}

/* Connects and sends; r is in `running`. Failures are finished here. */
static void
rt_start(struct rt_req *r)
{
	struct runtime *rt = r->rt;
	ev_tstamp now = ev_now(rt->loop);

	if (r->deadline == 0)
		r->deadline = now + rt->timeout;
	if (r->payload && rt->bufsize > 0 && r->checklen > rt->bufsize - 1) {
		rt_fail(r, "the command is %zu bytes, HAProxy's buffer holds %zu: raise "
		    "tune.bufsize in haproxy.cfg's global section (e.g. tune.bufsize %zu), "
		    "or use a smaller key or shorter chain", r->checklen, rt->bufsize - 1,
		    (r->checklen + 1 + 4095) / 4096 * 4096 < 16384 ? (size_t)16384 :
		    (r->checklen + 1 + 4095) / 4096 * 4096);
		rt_finish(r);
		return;
	}
	r->sent = 0;
	r->in.len = 0;
	if ((r->fd = addr_connect(&rt->addr, true)) < 0) {
		/* A unix listener's backlog is full: like a busy reply. */
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && rt_retry(r))
			return;
		rt_fail(r, "connect: %s", strerror(errno));
		rt_finish(r);
		return;
	}
	r->state = RT_CONNECTING;
	ev_io_set(&r->io, r->fd, EV_WRITE);
	ev_io_start(rt->loop, &r->io);
	ev_timer_set(&r->timer, r->deadline > now ? r->deadline - now : 0., 0.);
	ev_timer_start(rt->loop, &r->timer);
}

static struct rt_req *
rt_req_new(struct runtime *rt, enum rt_kind kind, void *arg)
{
	struct rt_req *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->rt = rt;
	r->kind = kind;
	r->arg = arg;
	r->fd = -1;
	buf_init(&r->in, RUNTIME_REPLY_MAX);
	ev_io_init(&r->io, rt_io_cb, -1, 0);
	r->io.data = r;
	ev_timer_init(&r->timer, rt_timer_cb, 0., 0.);
	r->timer.data = r;
	return r;
}

/* Starts what the free connection slots allow. A payload command waits
 * for the bufsize probe when the size is stale. */
static void
rt_pump(struct runtime *rt)
{
	struct rt_req *r;

	if (rt->free_pending)
		return;
	while ((r = TAILQ_FIRST(&rt->queue)) != NULL && rt->nrunning < rt->max_conns) {
		if (r->payload && rt_bufsize_stale(rt)) {
			if (rt->probe != NULL)
				return;	/* its end pumps again */
			if ((rt->probe = rt_req_new(rt, RT_CMD, NULL)) == NULL ||
			    (rt->probe->req = strdup(rt->addr.master ?
			    "@1 show pools\n" RT_QUIT : "show pools\n")) == NULL) {
				rt_req_free(rt->probe);
				rt->bufsize_at = ev_now(rt->loop);	/* go on without it */
				continue;
			}
			rt->probe->internal = true;
			rt->probe->reqlen = strlen(rt->probe->req);
			rt_move(rt->probe, RT_RUNNING);
			rt_start(rt->probe);
			return;
		}
		rt_move(r, RT_RUNNING);
		rt_start(r);
	}
}

/* Builds the request: [@1 ]cmd[;[@1 ]cmd...][ <<\npayload\n]\n[quit\n]. */
static int
rt_build(struct rt_req *r, const char *cmd, const char *payload, size_t plen)
{
	const char *prefix = r->rt->addr.master ? "@1 " : "";
	const char *suffix = r->rt->addr.master ? RT_QUIT : "";
	size_t clen = strlen(cmd), n = 0, max, nprefix = 1;
	char *p;

	for (size_t i = 0; i < clen; i++)
		nprefix += cmd[i] == ';';
	max = nprefix * strlen(prefix) + clen + 5 + (payload ? plen + 2 : 0) +
	    strlen(suffix) + 1;
	if ((p = malloc(max)) == NULL)
		return -1;
	n += (size_t)sprintf(p, "%s", prefix);
	for (size_t i = 0; i < clen; i++) {
		p[n++] = cmd[i];
		if (cmd[i] == ';')
			n += (size_t)sprintf(p + n, "%s", prefix);
	}
	if (payload != NULL) {
		memcpy(p + n, " <<\n", 4);
		n += 4;
		for (size_t i = 0; i < plen; i++)
			if (payload[i] != '\r')
				p[n++] = payload[i];
		while (p[n - 1] == '\n')
			n--;	/* the payload has content: stops there */
		p[n++] = '\n';
	}
	p[n++] = '\n';
	n += (size_t)sprintf(p + n, "%s", suffix);
	r->req = p;
	r->reqlen = n;
	r->checklen = n - nprefix * strlen(prefix) - strlen(suffix);
	return 0;
}

static bool
rt_cmd_valid(const char *cmd)
{
	size_t n = strlen(cmd);

	if (n == 0 || n > RUNTIME_CMD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (cmd[i] == '\n' || cmd[i] == '\r')
			return false;
	return true;
}

/* A payload HAProxy reads whole: no NUL, no empty line, something in it. */
static bool
rt_payload_valid(const char *p, size_t len)
{
	size_t i, end = len;
	bool any = false, line_empty = true;

	if (len > RUNTIME_PAYLOAD_MAX)
		return false;
	while (end > 0 && (p[end - 1] == '\n' || p[end - 1] == '\r'))
		end--;
	for (i = 0; i < end; i++) {
		if (p[i] == '\0')
			return false;
		if (p[i] == '\r')
			continue;
		if (p[i] == '\n') {
			if (line_empty)
				return false;
			line_empty = true;
			continue;
		}
		line_empty = false;
		any = true;
	}
	return any;
}

static int
rt_cmd(struct runtime *rt, const char *cmd, const char *payload, size_t len,
    const char *stop, runtime_cb *cb, void *arg)
{
	struct rt_req *r;

	if (rt == NULL || cmd == NULL || cb == NULL || !rt_cmd_valid(cmd) ||
	    (payload != NULL && !rt_payload_valid(payload, len)) ||
	    (stop != NULL && strchr(stop, '\n') != NULL)) {
		errno = EINVAL;
		return -1;
	}
	if ((r = rt_req_new(rt, RT_CMD, arg)) == NULL)
		goto nomem;
	r->cb = cb;
	r->payload = payload != NULL;
	if (rt_build(r, cmd, payload, len) < 0 ||
	    (stop != NULL && (r->stop = strdup(stop)) == NULL)) {
		rt_req_free(r);
		goto nomem;
	}
	rt_move(r, RT_QUEUE);
	rt_pump(rt);
	return 0;
nomem:
	errno = ENOMEM;
	return -1;
}

int
runtime_cmd(struct runtime *rt, const char *cmd, const char *payload, size_t len,
    runtime_cb *cb, void *arg)
{
	return rt_cmd(rt, cmd, payload, len, NULL, cb, arg);
}

int
runtime_cmd_head(struct runtime *rt, const char *cmd, const char *stop_line,
    runtime_cb *cb, void *arg)
{
	if (stop_line == NULL) {
		errno = EINVAL;
		return -1;
	}
	return rt_cmd(rt, cmd, NULL, 0, stop_line, cb, arg);
}

/* ---- the write turn --------------------------------------------------- */

static void
rt_turn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	rt_turn_pump(w->data);
}

static void
rt_turn_pump(struct runtime *rt)
{
	struct rt_req *r;
	ev_tstamp now = ev_now(rt->loop);

	ev_timer_stop(rt->loop, &rt->turn_timer);
	while (rt->holder == NULL && (r = TAILQ_FIRST(&rt->turns)) != NULL) {
		/* The deadline counts from here: queueing in-process is progress. */
		if (r->deadline == 0)
			r->deadline = now + rt->lock_timeout;
		if (rt->flocked || rt->lock_fd < 0 || flock(rt->lock_fd, LOCK_EX | LOCK_NB) == 0) {
			if (!rt->flocked) {
				rt->flocked = true;
				rt->epoch++;
				rt->hold_since = now;
			}
			rt->holder = r->arg;
			rt->poll = 0;
			rt_move(r, RT_DONE);
			rt_kick(rt);
			return;
		}
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rt_fail(r, "flock %s: %s", rt->lock_path, strerror(errno));
		} else if (now >= r->deadline) {
			rt_fail(r, "another process holds %s (waited %g s for it)",
			    rt->lock_path, rt->lock_timeout);
		} else {
			rt->poll = rt->poll == 0 ? RT_POLL_MIN : rt->poll * 2;
			if (rt->poll > RT_POLL_MAX)
				rt->poll = RT_POLL_MAX;
			ev_timer_set(&rt->turn_timer, rt->poll, 0.);
			ev_timer_start(rt->loop, &rt->turn_timer);
			return;
		}
		rt_move(r, RT_DONE);
		rt_kick(rt);
	}
}

static bool
rt_turn_known(struct runtime *rt, void *arg)
{
	struct rt_req *r;

	if (rt->holder == arg)
		return true;
	TAILQ_FOREACH(r, &rt->turns, entry)
		if (r->arg == arg)
			return true;
	TAILQ_FOREACH(r, &rt->done, entry)
		if (r->kind == RT_TURN && r->arg == arg)
			return true;
	return false;
}

int
runtime_lock(struct runtime *rt, void (*cb)(void *arg, const char *err), void *arg)
{
	struct rt_req *r;

	if (cb == NULL || arg == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (rt_turn_known(rt, arg)) {
		errno = EBUSY;
		return -1;
	}
	if ((r = rt_req_new(rt, RT_TURN, arg)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	r->turn_cb = cb;
	rt_move(r, RT_TURNS);
	rt_turn_pump(rt);
	return 0;
}

void
runtime_unlock(struct runtime *rt, void *arg)
{
	if (rt == NULL || arg == NULL || rt->holder != arg)
		return;
	rt->holder = NULL;
	/* Straight to our next holder while others wait, within limits: a
	 * second hacme gets its chance at least every RT_HOLD_MAX. */
	if (TAILQ_EMPTY(&rt->turns) || ev_now(rt->loop) - rt->hold_since > RT_HOLD_MAX) {
		if (rt->lock_fd >= 0)
			(void)flock(rt->lock_fd, LOCK_UN);
		rt->flocked = false;
	}
	rt_turn_pump(rt);
}

void
runtime_cancel(struct runtime *rt, void *arg)
{
	struct rt_list *lists[] = { &rt->queue, &rt->running, &rt->done, &rt->turns };
	struct rt_req *r, *next;

	if (rt == NULL || arg == NULL)
		return;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		for (r = TAILQ_FIRST(lists[i]); r != NULL; r = next) {
			next = TAILQ_NEXT(r, entry);
			if (r->arg == arg)
				rt_req_free(r);
		}
	}
	runtime_unlock(rt, arg);
	rt_pump(rt);
}

/* ---- the object -------------------------------------------------------- */

static uint64_t
rt_fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

struct runtime *
runtime_new(struct ev_loop *loop, const char *address, const struct runtime_opts *opts,
    char *err, size_t errlen)
{
	struct runtime_opts none;
	struct runtime *rt;
	int n;

	if (opts == NULL) {
		memset(&none, 0, sizeof(none));
		opts = &none;
	}
	if ((rt = calloc(1, sizeof(*rt))) == NULL) {
		snprintf(err, errlen, "no memory");
		return NULL;
	}
	rt->loop = loop;
	rt->lock_fd = -1;
	TAILQ_INIT(&rt->queue);
	TAILQ_INIT(&rt->running);
	TAILQ_INIT(&rt->done);
	TAILQ_INIT(&rt->turns);
	ev_timer_init(&rt->kick, rt_kick_cb, 0., 0.);
	rt->kick.data = rt;
	ev_timer_init(&rt->turn_timer, rt_turn_timer_cb, 0., 0.);
	rt->turn_timer.data = rt;
	rt->timeout = opts->timeout > 0 ? opts->timeout : RT_TIMEOUT;
	rt->lock_timeout = opts->lock_timeout > 0 ? opts->lock_timeout : RT_LOCK_TIMEOUT;
	rt->bufsize_ttl = opts->bufsize_ttl > 0 ? opts->bufsize_ttl : RT_BUFSIZE_TTL;
	rt->max_conns = opts->max_conns > 0 ? opts->max_conns : RT_MAX_CONNS;
	if (addr_parse(&rt->addr, address, err, errlen) < 0)
		goto fail;
	if (opts->lock_dir != NULL) {
		n = asprintf(&rt->lock_path, "%s/runtime-%016llx.lock", opts->lock_dir,
		    (unsigned long long)rt_fnv1a(rt->addr.text));
		if (n < 0) {
			rt->lock_path = NULL;
			snprintf(err, errlen, "no memory");
			goto fail;
		}
		rt->lock_fd = open(rt->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (rt->lock_fd < 0) {
			snprintf(err, errlen, "%s: %s", rt->lock_path, strerror(errno));
			goto fail;
		}
	}
	return rt;
fail:
	runtime_free(rt);
	return NULL;
}

void
runtime_free(struct runtime *rt)
{
	struct rt_list *lists[4];
	struct rt_req *r;

	if (rt == NULL)
		return;
	if (rt->dispatching > 0) {
		rt->free_pending = true;	/* rt_kick_cb finishes it */
		return;
	}
	lists[0] = &rt->queue;
	lists[1] = &rt->running;
	lists[2] = &rt->done;
	lists[3] = &rt->turns;
	for (size_t i = 0; i < 4; i++)
		while ((r = TAILQ_FIRST(lists[i])) != NULL)
			rt_req_free(r);
	if (rt->lock_fd >= 0)
		close(rt->lock_fd);	/* releases the flock */
	ev_timer_stop(rt->loop, &rt->kick);
	ev_timer_stop(rt->loop, &rt->turn_timer);
	free(rt->lock_path);
	free(rt);
}

const char *
runtime_name(const struct runtime *rt)
{
	return rt->addr.text;
}

uint64_t
runtime_turn_epoch(const struct runtime *rt)
{
	return rt->epoch;
}

size_t
runtime_bufsize(const struct runtime *rt)
{
	return rt->bufsize;
}

/* ---- replies ---------------------------------------------------------- */

/* Calls fn on each line of reply (without its LF) until it returns false. */
static void
rt_lines(const char *p, size_t len, bool (*fn)(void *, const char *, size_t), void *ctx)
{
	const char *end = p + len, *nl;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!fn(ctx, p, nl ? (size_t)(nl - p) : (size_t)(end - p)))
			return;
		if (nl == NULL)
			return;
		p = nl + 1;
	}
}

static bool
rt_prefix(const char *line, size_t len, const char *prefix, const char **rest, size_t *restlen)
{
	size_t n = strlen(prefix);

	if (len < n || memcmp(line, prefix, n) != 0)
		return false;
	*rest = line + n;
	*restlen = len - n;
	return true;
}

static bool
rt_bufsize_line(void *ctx, const char *line, size_t len)
{
	size_t *out = ctx, restlen;
	const char *rest;
	size_t n = 0, i = 0;

	while (len > 0 && (*line == ' ' || *line == '-')) {
		line++;
		len--;
	}
	if (!rt_prefix(line, len, "Pool buffer (", &rest, &restlen))
		return true;
	while (i < restlen && i < 10 && rest[i] >= '0' && rest[i] <= '9')
		n = n * 10 + (size_t)(rest[i++] - '0');
	if (i > 0 && i < restlen && rest[i] == ' ')
		*out = n;
	return false;
}

size_t
runtime_parse_bufsize(const char *reply, size_t len)
{
	size_t n = 0;

	rt_lines(reply, len, rt_bufsize_line, &n);
	return n;
}

struct rt_tx_ctx {
	bool in_tx, found;
	char *name;
	size_t namelen;
};

static bool
rt_tx_line(void *ctx, const char *line, size_t len)
{
	struct rt_tx_ctx *c = ctx;

	if (len > 0 && line[0] == '#') {
		c->in_tx = len == 13 && memcmp(line, "# transaction", 13) == 0;
		return true;
	}
	if (c->in_tx && len > 1 && line[0] == '*') {
		if (len - 1 < c->namelen) {
			memcpy(c->name, line + 1, len - 1);
			c->name[len - 1] = '\0';
			c->found = true;
		}
		return false;
	}
	return true;
}

bool
runtime_parse_transaction(const char *reply, size_t len, char *name, size_t namelen)
{
	struct rt_tx_ctx c = { false, false, name, namelen };

	if (namelen > 0)
		name[0] = '\0';
	rt_lines(reply, len, rt_tx_line, &c);
	return c.found;
}

static const char *const rt_months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Reads an unsigned number of 1..maxdigits digits at s[*i]. */
static bool
rt_num(const char *s, size_t len, size_t *i, int maxdigits, int *out)
{
	int n = 0, d = 0;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9' && d < maxdigits) {
		n = n * 10 + (s[*i] - '0');
		(*i)++;
		d++;
	}
	*out = n;
	return d > 0;
}

time_t
runtime_parse_time(const char *s, size_t len)
{
	struct tm tm;
	size_t i = 4;
	int mon = -1, day, h, m, sec, year;

	memset(&tm, 0, sizeof(tm));
	if (len < 4 || s[3] != ' ')
		return -1;
	for (int k = 0; k < 12; k++)
		if (memcmp(s, rt_months[k], 3) == 0)
			mon = k;
	if (mon < 0)
		return -1;
	while (i < len && s[i] == ' ')
		i++;
	if (!rt_num(s, len, &i, 2, &day) || i >= len || s[i++] != ' ' ||
	    !rt_num(s, len, &i, 2, &h) || i >= len || s[i++] != ':' ||
	    !rt_num(s, len, &i, 2, &m) || i >= len || s[i++] != ':' ||
	    !rt_num(s, len, &i, 2, &sec))
		return -1;
	if (i < len && s[i] == '.')	/* fractional seconds */
		while (++i < len && s[i] >= '0' && s[i] <= '9')
			;
	if (i >= len || s[i++] != ' ' || !rt_num(s, len, &i, 4, &year))
		return -1;
	if (len - i != 4 || memcmp(s + i, " GMT", 4) != 0)
		return -1;
	if (day < 1 || day > 31 || h > 23 || m > 59 || sec > 60 || year < 1970)
		return -1;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	return timegm(&tm);
}

static bool
rt_cert_line(void *ctx, const char *line, size_t len)
{
	struct runtime_cert *c = ctx;
	const char *v;
	size_t vlen, i, o = 0;

	if (rt_prefix(line, len, "Filename: ", &v, &vlen)) {
		c->found = true;
	} else if (rt_prefix(line, len, "Status: ", &v, &vlen)) {
		if (vlen < sizeof(c->status)) {
			memcpy(c->status, v, vlen);
			c->status[vlen] = '\0';
		}
	} else if (rt_prefix(line, len, "Serial: ", &v, &vlen)) {
		for (i = 0; i < vlen && v[i] == '0'; i++)
			;
		for (; i < vlen && o + 1 < sizeof(c->serial); i++) {
			if (!isxdigit((unsigned char)v[i]))
				break;
			c->serial[o++] = (char)toupper((unsigned char)v[i]);
		}
		if (o == 0 && vlen > 0 && v[0] == '0')
			c->serial[o++] = '0';
		c->serial[o] = '\0';
	} else if (rt_prefix(line, len, "notAfter: ", &v, &vlen)) {
		time_t t = runtime_parse_time(v, vlen);
		c->not_after = t < 0 ? 0 : t;
	}
	return true;
}

bool
runtime_parse_cert(const char *reply, size_t len, struct runtime_cert *c)
{
	memset(c, 0, sizeof(*c));
	rt_lines(reply, len, rt_cert_line, c);
	if (!c->found)
		memset(c, 0, sizeof(*c));
	return c->found;
}

bool
runtime_reply_has(const char *reply, size_t len, const char *line, size_t *at)
{
	size_t n = strlen(line);

	for (size_t i = 0; i + n <= len; i++) {
		if ((i == 0 || reply[i - 1] == '\n') && memcmp(reply + i, line, n) == 0 &&
		    (i + n == len || reply[i + n] == '\n')) {
			if (at != NULL)
				*at = i;
			return true;
		}
	}
	return false;
}

bool
runtime_reply_ends(const char *reply, size_t len, const char *line)
{
	size_t n = strlen(line);

	while (len > 0 && (reply[len - 1] == '\n' || reply[len - 1] == '\r'))
		len--;
	return len >= n && memcmp(reply + len - n, line, n) == 0 &&
	    (len == n || reply[len - n - 1] == '\n');
}
