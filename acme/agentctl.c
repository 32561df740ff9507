/* agentctl.c - control-socket client for the agents, on libev.
 *
 * Each agent has a queue of requests: those already written (awaiting their
 * reply, oldest first), then those waiting for the connection. One timer per
 * agent serves the state it is in: reconnect backoff (DOWN), connect
 * deadline (CONNECTING), the oldest reply's deadline (UP). A request made
 * for several agents is an op; it completes when its last agent answered,
 * and completed ops are delivered from a zero-delay timer so that no
 * callback runs inside the call that started it. */
#include "acme/agentctl.h"
#include "acme/tokjournal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "common/addr.h"
#include "common/buf.h"
#include "common/ctl.h"
#include "common/log.h"
#include "common/token.h"

#define ACTL_TIMEOUT 5.0
#define ACTL_BACKOFF_MIN 0.2
#define ACTL_BACKOFF_MAX 30.0
#define ACTL_PING_INTERVAL 30.0
#define ACTL_MAX_TOKENS 100000
#define ACTL_QUEUE_MAX 4096		/* requests waiting on one agent, besides re-ADDs */
#define ACTL_OUT_MAX (1u << 20)		/* bytes written ahead; the rest waits */
#define ACTL_DATA_MAX (64u << 20)	/* bytes of one LIST/STATS reply */
#define ACTL_ERR_MAX 2048		/* bytes of an op's error text */
#define ACTL_REASON_MAX 160

enum actl_state {
	ACTL_DOWN = 0,
	ACTL_CONNECTING,
	ACTL_UP,
};

enum actl_kind {
	ACTL_ADD = 0,
	ACTL_DEL,
	ACTL_PING,
	ACTL_LIST,
	ACTL_STATS,
};

struct actl_op {
	LIST_ENTRY(actl_op) all;
	TAILQ_ENTRY(actl_op) done;
	enum actl_kind kind;
	int pending;			/* agents yet to answer */
	bool failed;
	bool cut;			/* err is full: later failures dropped */
	struct buf err;			/* "agent X: why; agent Y: why" */
	struct buf data;		/* LIST/STATS lines, each NUL-terminated */
	size_t nlines;
	void (*cb)(void *, const char *);
	void (*kv_cb)(void *, const char *, const struct agentctl_kv *, size_t);
	void (*list_cb)(void *, const char *, const struct agentctl_entry *, size_t);
	void *arg;
};

struct actl_req {
	TAILQ_ENTRY(actl_req) entry;
	enum actl_kind kind;
	struct actl_op *op;		/* NULL: the set's own (PING, re-ADD) */
	bool sent;
	bool hello;			/* the PING that opens a connection */
	ev_tstamp deadline;
	size_t len;
	char line[CTL_LINE_MAX];
};

struct agentctl_agent {
	TAILQ_ENTRY(agentctl_agent) entry;
	struct agentctl *set;
	struct addr addr;
	enum actl_state state;
	bool up;			/* answered the PING of this connection */
	bool failed;			/* down since the last success: quieter logs */
	int fd;
	ev_io io;
	ev_timer timer;
	TAILQ_HEAD(, actl_req) queue;
	size_t nqueue;
	struct buf out;
	struct buf in;
	double backoff;
};

struct actl_pub {
	TAILQ_ENTRY(actl_pub) entry;
	ev_tstamp expires;
	char token[TOKEN_MAX + 1];
	char keyauth[KEYAUTH_MAX + 1];
	char host[AGENTCTL_HOST_MAX + 1];
};

struct agentctl {
	struct ev_loop *loop;
	double timeout, backoff_min, backoff_max, ping_interval;
	size_t max_tokens;
	TAILQ_HEAD(, agentctl_agent) agents;
	size_t nagents;
	TAILQ_HEAD(, actl_pub) pubs;
	size_t npubs;
	LIST_HEAD(, actl_op) ops;
	TAILQ_HEAD(, actl_op) done;
	ev_timer kick;
	ev_timer ping;
	int dispatching;
	bool free_pending;
	struct tokjournal *journal;	/* borrowed, or NULL */
};

static void actl_down(struct agentctl_agent *, const char *);
static void actl_flush(struct agentctl_agent *);
static void actl_connect(struct agentctl_agent *);

/* ---- ops -------------------------------------------------------------- */

static struct actl_op *
actl_op_new(struct agentctl *set, enum actl_kind kind, void *arg)
{
	struct actl_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->kind = kind;
	op->arg = arg;
	buf_init(&op->err, ACTL_ERR_MAX);
	buf_init(&op->data, ACTL_DATA_MAX);
	LIST_INSERT_HEAD(&set->ops, op, all);
	return op;
}

static void
actl_op_free(struct actl_op *op)
{
	LIST_REMOVE(op, all);
	buf_fini(&op->err);
	buf_fini(&op->data);
	free(op);
}

static void
actl_op_finish(struct agentctl *set, struct actl_op *op)
{
	TAILQ_INSERT_TAIL(&set->done, op, done);
	if (!ev_is_active(&set->kick)) {
		ev_timer_set(&set->kick, 0., 0.);
		ev_timer_start(set->loop, &set->kick);
	}
}

static void
actl_op_fail(struct actl_op *op, const char *who, const char *why)
{
	char line[ACTL_REASON_MAX + sizeof(((struct addr *)0)->text) + 16];
	size_t n;

	op->failed = true;
	snprintf(line, sizeof(line), "%sagent %s: %s", op->err.len ? "; " : "", who, why);
	n = strlen(line);
	/* Keep 5 bytes for " ..." and the NUL the delivery adds. */
	if (op->err.len + n + 5 > ACTL_ERR_MAX) {
		if (!op->cut)
			(void)buf_append(&op->err, " ...", 4);
		op->cut = true;
		return;
	}
	(void)buf_append(&op->err, line, n);
}

/* One agent is done with op: why NULL on success. */
static void
actl_op_agent_done(struct agentctl *set, struct actl_op *op, const char *who, const char *why)
{
	if (why != NULL)
		actl_op_fail(op, who, why);
	if (--op->pending == 0)
		actl_op_finish(set, op);
}

static void
actl_deliver_kv(struct actl_op *op, const char *err)
{
	struct agentctl_kv *kv = NULL;
	size_t n = 0;
	char *p = (char *)op->data.p;

	if (err == NULL && op->nlines > 0) {
		if ((kv = calloc(op->nlines, sizeof(*kv))) == NULL)
			err = "no memory";
		for (size_t i = 0; kv != NULL && i < op->nlines; i++) {
			size_t len = strlen(p);
			char *sp = strchr(p, ' ');
			kv[n].key = p;
			kv[n].value = "";
			if (sp != NULL) {
				*sp = '\0';
				kv[n].value = sp + 1;
			}
			n++;
			p += len + 1;
		}
	}
	op->kv_cb(op->arg, err, err ? NULL : kv, err ? 0 : n);
	free(kv);
}

static void
actl_deliver_list(struct actl_op *op, const char *err)
{
	struct agentctl_entry *e = NULL;
	struct ctl_word w[5];
	size_t n = 0;
	char *p = (char *)op->data.p;

	if (err == NULL && op->nlines > 0) {
		if ((e = calloc(op->nlines, sizeof(*e))) == NULL)
			err = "no memory";
		for (size_t i = 0; e != NULL && i < op->nlines; i++) {
			size_t len = strlen(p), nw = ctl_split(p, len, w, 4);
			if (nw >= 3 && nw <= 4) {
				for (size_t k = 0; k < nw; k++)
					((char *)w[k].p)[w[k].n] = '\0';
				e[n].token = w[0].p;
				e[n].keyauth = w[1].p;
				e[n].seconds_left = strtol(w[2].p, NULL, 10);
				e[n].host = nw == 4 ? w[3].p : NULL;
				n++;
			}
			p += len + 1;
		}
	}
	op->list_cb(op->arg, err, err ? NULL : e, err ? 0 : n);
	free(e);
}

static void
actl_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agentctl *set = w->data;
	struct actl_op *op;
	const char *err;

	set->dispatching++;
	while (!set->free_pending && (op = TAILQ_FIRST(&set->done)) != NULL) {
		TAILQ_REMOVE(&set->done, op, done);
		err = NULL;
		if (op->failed && buf_append(&op->err, "", 1) == 0)
			err = (const char *)op->err.p;
		else if (op->failed)
			err = "failed";	/* no memory for the text */
		if (op->kv_cb != NULL)
			actl_deliver_kv(op, err);
		else if (op->list_cb != NULL)
			actl_deliver_list(op, err);
		else if (op->cb != NULL)
			op->cb(op->arg, err);
		actl_op_free(op);
	}
	set->dispatching--;
	if (set->dispatching == 0 && set->free_pending)
		agentctl_free(set);
}

/* ---- remembered tokens ------------------------------------------------ */

static void
actl_prune(struct agentctl *set)
{
	struct actl_pub *p, *next;
	ev_tstamp now = ev_now(set->loop);

	for (p = TAILQ_FIRST(&set->pubs); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->expires <= now) {
			TAILQ_REMOVE(&set->pubs, p, entry);
			set->npubs--;
			free(p);
		}
	}
}

static struct actl_pub *
actl_pub_find(struct agentctl *set, const char *token)
{
	struct actl_pub *p;

	TAILQ_FOREACH(p, &set->pubs, entry)
		if (strcmp(p->token, token) == 0)
			return p;
	return NULL;
}

size_t
agentctl_published(struct agentctl *set)
{
	actl_prune(set);
	return set->npubs;
}

static int
actl_add_line(char *line, size_t len, const char *token, const char *keyauth,
    unsigned ttl, const char *host)
{
	int n = snprintf(line, len, "ADD %s %s %u%s%s\n", token, keyauth, ttl,
	    host[0] ? " " : "", host);

	return n > 0 && (size_t)n < len ? n : -1;
}

/* ---- one agent's queue ------------------------------------------------ */

static struct actl_req *
actl_req_new(enum actl_kind kind, struct actl_op *op, const char *line, size_t len)
{
	struct actl_req *r;

	if (len > CTL_LINE_MAX || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->kind = kind;
	r->op = op;
	memcpy(r->line, line, len);
	r->len = len;
	return r;
}

static void
actl_req_done(struct agentctl_agent *a, struct actl_req *r, const char *why)
{
	char esc[ACTL_REASON_MAX];

	TAILQ_REMOVE(&a->queue, r, entry);
	a->nqueue--;
	if (r->op != NULL)
		actl_op_agent_done(a->set, r->op, a->addr.text, why);
	else if (why != NULL && r->kind == ACTL_ADD && a->state == ACTL_UP)
		log_warn("agent %s: re-adding a token: %s", a->addr.text,
		    log_escape(esc, sizeof(esc), why, strlen(why)));
	free(r);
}

/* Appends a request to the queue; false when it could not (op is told). */
static bool
actl_queue(struct agentctl_agent *a, enum actl_kind kind, struct actl_op *op,
    const char *line, size_t len)
{
	struct actl_req *r;

	size_t max = a->set->max_tokens + ACTL_QUEUE_MAX;

	if (a->nqueue >= max || (r = actl_req_new(kind, op, line, len)) == NULL) {
		if (op != NULL)
			actl_op_agent_done(a->set, op, a->addr.text,
			    a->nqueue >= max ? "too many requests waiting" : "no memory");
		return false;
	}
	TAILQ_INSERT_TAIL(&a->queue, r, entry);
	a->nqueue++;
	return true;
}

/* Queues a request and sends it, connecting first when there is no
 * connection (on demand: a request does not wait for the backoff). */
static void
actl_enqueue(struct agentctl_agent *a, enum actl_kind kind, struct actl_op *op,
    const char *line, size_t len)
{
	if (!actl_queue(a, kind, op, line, len))
		return;
	if (a->state == ACTL_DOWN)
		actl_connect(a);
	else if (a->state == ACTL_UP)
		actl_flush(a);
}

static void
actl_arm(struct agentctl_agent *a)
{
	struct actl_req *head = TAILQ_FIRST(&a->queue);
	ev_tstamp now = ev_now(a->set->loop);

	ev_timer_stop(a->set->loop, &a->timer);
	if (a->state != ACTL_UP || head == NULL || !head->sent)
		return;
	ev_timer_set(&a->timer, head->deadline > now ? head->deadline - now : 0., 0.);
	ev_timer_start(a->set->loop, &a->timer);
}

static void
actl_io_events(struct agentctl_agent *a, int events)
{
	if (a->io.events == events && ev_is_active(&a->io))
		return;
	ev_io_stop(a->set->loop, &a->io);
	ev_io_set(&a->io, a->fd, events);
	ev_io_start(a->set->loop, &a->io);
}

/* Writes what is queued; the agent may be DOWN when this returns. */
static void
actl_flush(struct agentctl_agent *a)
{
	struct actl_req *r;
	ev_tstamp now = ev_now(a->set->loop);
	bool arm = TAILQ_EMPTY(&a->queue) || !TAILQ_FIRST(&a->queue)->sent;
	char why[ACTL_REASON_MAX];
	ssize_t n;

	TAILQ_FOREACH(r, &a->queue, entry) {
		if (r->sent)
			continue;
		if (buf_append(&a->out, r->line, r->len) < 0)
			break;	/* out is full: the rest goes when it drains */
		r->sent = true;
		r->deadline = now + a->set->timeout;
	}
	while (a->out.len > 0) {
		n = send(a->fd, a->out.p, a->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n < 0) {
			snprintf(why, sizeof(why), "write: %s", strerror(errno));
			actl_down(a, why);
			return;
		}
		buf_consume(&a->out, (size_t)n);
	}
	actl_io_events(a, EV_READ | (a->out.len > 0 ? EV_WRITE : 0));
	if (arm)
		actl_arm(a);
}

/* Re-ADDs every remembered token with the TTL it has left. */
static void
actl_replay(struct agentctl_agent *a)
{
	struct agentctl *set = a->set;
	struct actl_pub *p;
	char line[CTL_LINE_MAX];
	ev_tstamp now = ev_now(set->loop);
	size_t count = 0;
	int n;

	actl_prune(set);
	TAILQ_FOREACH(p, &set->pubs, entry) {
		unsigned left = (unsigned)(p->expires - now + 0.999);	/* rounded up */
		if ((n = actl_add_line(line, sizeof(line), p->token, p->keyauth,
		    left ? left : 1, p->host)) < 0)
			continue;
		if (actl_queue(a, ACTL_ADD, NULL, line, (size_t)n))
			count++;
	}
	actl_flush(a);	/* one write for them all */
	if (a->state != ACTL_UP)
		return;
	if (a->failed)
		log_notice("agent %s: up again, %zu pending token%s re-added",
		    a->addr.text, count, count == 1 ? "" : "s");
	else
		log_info("agent %s: connected, %zu pending token%s added", a->addr.text,
		    count, count == 1 ? "" : "s");
}

/* Handles one reply line; the agent may be DOWN when this returns. */
static void
actl_reply(struct agentctl_agent *a, char *line, size_t len)
{
	struct actl_req *r = TAILQ_FIRST(&a->queue);
	struct ctl_word w[3];
	char esc[ACTL_REASON_MAX];
	bool err = len >= 3 && memcmp(line, "ERR", 3) == 0 && (len == 3 || line[3] == ' ');

	if (r == NULL || !r->sent) {
		actl_down(a, "protocol error: a reply nobody asked for");
		return;
	}
	switch (r->kind) {
	case ACTL_ADD:
	case ACTL_DEL:
	case ACTL_PING:
		if (err) {
			actl_req_done(a, r, log_escape(esc, sizeof(esc), line, len));
			if (r->kind == ACTL_PING)
				actl_down(a, "PING refused");
			break;
		}
		if ((r->kind == ACTL_PING && (len != 4 || memcmp(line, "PONG", 4) != 0)) ||
		    (r->kind != ACTL_PING && (len != 2 || memcmp(line, "OK", 2) != 0))) {
			char why[ACTL_REASON_MAX + 32];
			snprintf(why, sizeof(why), "protocol error: unexpected reply '%s'",
			    log_escape(esc, sizeof(esc), line, len));
			actl_down(a, why);
			break;
		}
		if (r->hello) {
			a->up = true;
			a->backoff = 0;
			actl_req_done(a, r, NULL);
			actl_replay(a);
			if (a->state == ACTL_UP)
				a->failed = false;
			break;
		}
		actl_req_done(a, r, NULL);
		break;
	case ACTL_LIST:
	case ACTL_STATS:
		if (len == 3 && memcmp(line, "END", 3) == 0) {
			actl_req_done(a, r, NULL);
			break;
		}
		/* A LIST line of a token named "ERR" is still a LIST line. */
		if (err && r->op->nlines == 0 && !(r->kind == ACTL_LIST &&
		    ctl_split(line, len, w, 2) == 2 && keyauth_valid(w[0].p, w[0].n, w[1].p, w[1].n))) {
			actl_req_done(a, r, log_escape(esc, sizeof(esc), line, len));
			break;
		}
		if (buf_append(&r->op->data, line, len) < 0 ||
		    buf_append(&r->op->data, "", 1) < 0) {
			actl_down(a, "reply too large");
			break;
		}
		r->op->nlines++;
		break;
	}
	if (a->state == ACTL_UP)
		actl_arm(a);
}

static void
actl_read(struct agentctl_agent *a)
{
	char why[ACTL_REASON_MAX];
	size_t linelen, used;
	ssize_t n;

	for (;;) {
		if (buf_reserve(&a->in, CTL_LINE_MAX) < 0) {
			actl_down(a, "no memory");
			return;
		}
		n = recv(a->fd, a->in.p + a->in.len, a->in.cap - a->in.len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			if (n == 0)
				snprintf(why, sizeof(why), "connection closed by the agent");
			else
				snprintf(why, sizeof(why), "read: %s", strerror(errno));
			actl_down(a, why);
			return;
		}
		a->in.len += (size_t)n;
		for (;;) {
			enum ctl_status st = ctl_line(a->in.p, a->in.len, &linelen, &used);
			if (st == CTL_NEED_MORE)
				break;
			if (st == CTL_TOO_LONG) {
				actl_down(a, "protocol error: reply line too long");
				return;
			}
			actl_reply(a, (char *)a->in.p, linelen);
			if (a->state != ACTL_UP)
				return;	/* in was cleared */
			buf_consume(&a->in, used);
		}
	}
}

static void
actl_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct agentctl_agent *a = w->data;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	char why[ACTL_REASON_MAX];

	if (a->state == ACTL_CONNECTING) {
		if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr != 0) {
			snprintf(why, sizeof(why), "connect: %s", strerror(soerr));
			actl_down(a, why);
			return;
		}
		a->state = ACTL_UP;	/* connected; up for good after PONG */
		actl_flush(a);
		return;
	}
	if (revents & EV_READ) {
		actl_read(a);
		if (a->state != ACTL_UP)
			return;
	}
	if (revents & EV_WRITE)
		actl_flush(a);
}

static void
actl_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agentctl_agent *a = w->data;
	char why[64];

	switch (a->state) {
	case ACTL_DOWN:
		actl_connect(a);
		break;
	case ACTL_CONNECTING:
		snprintf(why, sizeof(why), "connect: no answer within %g s", a->set->timeout);
		actl_down(a, why);
		break;
	case ACTL_UP:
		snprintf(why, sizeof(why), "no reply within %g s", a->set->timeout);
		actl_down(a, why);
		break;
	}
}

static void
actl_connect(struct agentctl_agent *a)
{
	struct agentctl *set = a->set;
	struct actl_req *hello;
	char why[ACTL_REASON_MAX];

	ev_timer_stop(set->loop, &a->timer);
	if ((hello = actl_req_new(ACTL_PING, NULL, "PING\n", 5)) == NULL) {
		actl_down(a, "no memory");
		return;
	}
	hello->hello = true;
	TAILQ_INSERT_HEAD(&a->queue, hello, entry);
	a->nqueue++;
	a->up = false;
	if ((a->fd = addr_connect(&a->addr, true)) < 0) {
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		actl_down(a, why);
		return;
	}
	a->state = ACTL_CONNECTING;
	ev_io_set(&a->io, a->fd, EV_WRITE);
	ev_io_start(set->loop, &a->io);
	ev_timer_set(&a->timer, set->timeout, 0.);
	ev_timer_start(set->loop, &a->timer);
}

/* Drops the connection, fails every queued request with why, and schedules
 * the next attempt. */
static void
actl_down(struct agentctl_agent *a, const char *why)
{
	struct agentctl *set = a->set;
	struct actl_req *r;
	char esc[ACTL_REASON_MAX];

	ev_io_stop(set->loop, &a->io);
	ev_timer_stop(set->loop, &a->timer);
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	a->state = ACTL_DOWN;
	a->in.len = 0;
	a->out.len = 0;
	if (!a->failed)
		log_warn("agent %s: %s", a->addr.text, log_escape(esc, sizeof(esc), why, strlen(why)));
	else
		log_debug("agent %s: %s", a->addr.text, log_escape(esc, sizeof(esc), why, strlen(why)));
	a->failed = true;
	a->up = false;
	while ((r = TAILQ_FIRST(&a->queue)) != NULL)
		actl_req_done(a, r, why);
	a->backoff = a->backoff == 0 ? set->backoff_min : a->backoff * 2;
	if (a->backoff > set->backoff_max)
		a->backoff = set->backoff_max;
	ev_timer_set(&a->timer, a->backoff, 0.);
	ev_timer_start(set->loop, &a->timer);
}

static void
actl_ping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agentctl *set = w->data;
	struct agentctl_agent *a;

	TAILQ_FOREACH(a, &set->agents, entry)
		if (a->state == ACTL_UP && a->up && TAILQ_EMPTY(&a->queue))
			actl_enqueue(a, ACTL_PING, NULL, "PING\n", 5);
}

/* ---- the set ---------------------------------------------------------- */

struct agentctl *
agentctl_new(struct ev_loop *loop, const struct agentctl_opts *opts)
{
	struct agentctl *set;
	struct agentctl_opts none;

	if (opts == NULL) {
		memset(&none, 0, sizeof(none));
		opts = &none;
	}
	if ((set = calloc(1, sizeof(*set))) == NULL)
		return NULL;
	set->loop = loop;
	set->timeout = opts->timeout > 0 ? opts->timeout : ACTL_TIMEOUT;
	set->backoff_min = opts->backoff_min > 0 ? opts->backoff_min : ACTL_BACKOFF_MIN;
	set->backoff_max = opts->backoff_max > 0 ? opts->backoff_max : ACTL_BACKOFF_MAX;
	if (set->backoff_max < set->backoff_min)
		set->backoff_max = set->backoff_min;
	set->ping_interval = opts->ping_interval == 0 ? ACTL_PING_INTERVAL : opts->ping_interval;
	set->max_tokens = opts->max_tokens ? opts->max_tokens : ACTL_MAX_TOKENS;
	TAILQ_INIT(&set->agents);
	TAILQ_INIT(&set->pubs);
	LIST_INIT(&set->ops);
	TAILQ_INIT(&set->done);
	ev_timer_init(&set->kick, actl_kick_cb, 0., 0.);
	set->kick.data = set;
	ev_timer_init(&set->ping, actl_ping_cb, set->ping_interval, set->ping_interval);
	set->ping.data = set;
	if (set->ping_interval > 0)
		ev_timer_start(loop, &set->ping);
	return set;
}

void
agentctl_free(struct agentctl *set)
{
	struct agentctl_agent *a;
	struct actl_req *r;
	struct actl_pub *p;
	struct actl_op *op;

	if (set == NULL)
		return;
	if (set->dispatching > 0) {
		set->free_pending = true;	/* actl_kick_cb finishes it */
		return;
	}
	while ((a = TAILQ_FIRST(&set->agents)) != NULL) {
		TAILQ_REMOVE(&set->agents, a, entry);
		ev_io_stop(set->loop, &a->io);
		ev_timer_stop(set->loop, &a->timer);
		if (a->fd >= 0)
			close(a->fd);
		while ((r = TAILQ_FIRST(&a->queue)) != NULL) {
			TAILQ_REMOVE(&a->queue, r, entry);
			free(r);
		}
		buf_fini(&a->in);
		buf_fini(&a->out);
		free(a);
	}
	while ((p = TAILQ_FIRST(&set->pubs)) != NULL) {
		TAILQ_REMOVE(&set->pubs, p, entry);
		free(p);
	}
	while ((op = LIST_FIRST(&set->ops)) != NULL)
		actl_op_free(op);
	ev_timer_stop(set->loop, &set->kick);
	ev_timer_stop(set->loop, &set->ping);
	free(set);
}

struct agentctl_agent *
agentctl_add(struct agentctl *set, const struct addr *addr)
{
	struct agentctl_agent *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->set = set;
	a->addr = *addr;
	a->fd = -1;
	TAILQ_INIT(&a->queue);
	buf_init(&a->in, 4 * CTL_LINE_MAX);
	buf_init(&a->out, ACTL_OUT_MAX);
	ev_io_init(&a->io, actl_io_cb, -1, 0);
	a->io.data = a;
	ev_timer_init(&a->timer, actl_timer_cb, 0., 0.);
	a->timer.data = a;
	TAILQ_INSERT_TAIL(&set->agents, a, entry);
	set->nagents++;
	actl_connect(a);
	return a;
}

const char *
agentctl_agent_name(const struct agentctl_agent *a)
{
	return a->addr.text;
}

bool
agentctl_agent_up(const struct agentctl_agent *a)
{
	return a->state == ACTL_UP && a->up;
}

/* Sends line to every agent as one op. */
static int
actl_broadcast(struct agentctl *set, enum actl_kind kind, const char *line, size_t len,
    void (*cb)(void *, const char *), void *arg)
{
	struct agentctl_agent *a, *next;
	struct actl_op *op;

	if ((op = actl_op_new(set, kind, arg)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	op->cb = cb;
	if (set->nagents == 0) {
		op->failed = true;
		(void)buf_append(&op->err, "no agent configured", 19);
		actl_op_finish(set, op);
		return 0;
	}
	op->pending = (int)set->nagents;
	for (a = TAILQ_FIRST(&set->agents); a != NULL; a = next) {
		next = TAILQ_NEXT(a, entry);
		actl_enqueue(a, kind, op, line, len);
	}
	return 0;
}

static bool
actl_host_valid(const char *h)
{
	size_t n = strlen(h);

	if (n > AGENTCTL_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
		    c == ':' || c == '[' || c == ']'))
			return false;
	}
	return true;
}

int
agentctl_publish(struct agentctl *set, const char *token, const char *keyauth,
    unsigned ttl, const char *host, void (*cb)(void *arg, const char *err), void *arg)
{
	char line[CTL_LINE_MAX];
	struct actl_pub *p;
	int n;

	if (host == NULL)
		host = "";
	if (token == NULL || keyauth == NULL || cb == NULL ||
	    !token_valid(token, strlen(token)) ||
	    !keyauth_valid(token, strlen(token), keyauth, strlen(keyauth)) ||
	    ttl < 1 || ttl > AGENTCTL_TTL_MAX || !actl_host_valid(host) ||
	    (n = actl_add_line(line, sizeof(line), token, keyauth, ttl, host)) < 0) {
		errno = EINVAL;
		return -1;
	}
	actl_prune(set);
	if ((p = actl_pub_find(set, token)) == NULL) {
		if (set->npubs >= set->max_tokens) {
			errno = ENOSPC;
			return -1;
		}
		if ((p = calloc(1, sizeof(*p))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		TAILQ_INSERT_TAIL(&set->pubs, p, entry);
		set->npubs++;
	}
	/* Lengths were checked by token_valid / keyauth_valid / actl_host_valid. */
	snprintf(p->token, sizeof(p->token), "%s", token);
	snprintf(p->keyauth, sizeof(p->keyauth), "%s", keyauth);
	snprintf(p->host, sizeof(p->host), "%s", host);
	p->expires = ev_now(set->loop) + ttl;
	tokjournal_add(set->journal, token);
	return actl_broadcast(set, ACTL_ADD, line, (size_t)n, cb, arg);
}

/* The journal says token is gone; it is emptied when nothing is
 * published, rewritten when it grew long with tokens long gone. */
static void
actl_journal_del(struct agentctl *set, const char *token)
{
	struct actl_pub *p;

	if (set->journal == NULL)
		return;
	actl_prune(set);
	if (set->npubs == 0) {
		tokjournal_reset(set->journal);
		return;
	}
	tokjournal_del(set->journal, token);
	if (tokjournal_lines(set->journal) > 4 * set->npubs + 4096) {
		tokjournal_reset(set->journal);
		TAILQ_FOREACH(p, &set->pubs, entry)
			tokjournal_add(set->journal, p->token);
	}
}

void
agentctl_journal(struct agentctl *set, struct tokjournal *j)
{
	set->journal = j;
}

int
agentctl_unpublish(struct agentctl *set, const char *token,
    void (*cb)(void *arg, const char *err), void *arg)
{
	char line[CTL_LINE_MAX];
	struct actl_pub *p;
	int n;

	if (token == NULL || cb == NULL || !token_valid(token, strlen(token))) {
		errno = EINVAL;
		return -1;
	}
	if ((p = actl_pub_find(set, token)) != NULL) {
		TAILQ_REMOVE(&set->pubs, p, entry);
		set->npubs--;
		free(p);
	}
	actl_journal_del(set, token);
	n = snprintf(line, sizeof(line), "DEL %s\n", token);
	return actl_broadcast(set, ACTL_DEL, line, (size_t)n, cb, arg);
}

int
agentctl_ping(struct agentctl *set, void (*cb)(void *arg, const char *err), void *arg)
{
	if (cb == NULL) {
		errno = EINVAL;
		return -1;
	}
	return actl_broadcast(set, ACTL_PING, "PING\n", 5, cb, arg);
}

/* A LIST or STATS of one agent. */
static int
actl_query(struct agentctl_agent *a, enum actl_kind kind,
    void (*kv_cb)(void *, const char *, const struct agentctl_kv *, size_t),
    void (*list_cb)(void *, const char *, const struct agentctl_entry *, size_t),
    void *arg)
{
	struct actl_op *op;

	if (kv_cb == NULL && list_cb == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((op = actl_op_new(a->set, kind, arg)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	op->pending = 1;
	op->kv_cb = kv_cb;
	op->list_cb = list_cb;
	if (kind == ACTL_STATS)
		actl_enqueue(a, kind, op, "STATS\n", 6);
	else
		actl_enqueue(a, kind, op, "LIST\n", 5);
	return 0;
}

int
agentctl_stats(struct agentctl_agent *a,
    void (*cb)(void *arg, const char *err, const struct agentctl_kv *kv, size_t n),
    void *arg)
{
	return actl_query(a, ACTL_STATS, cb, NULL, arg);
}

int
agentctl_list(struct agentctl_agent *a,
    void (*cb)(void *arg, const char *err, const struct agentctl_entry *e, size_t n),
    void *arg)
{
	return actl_query(a, ACTL_LIST, NULL, cb, arg);
}
