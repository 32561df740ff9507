/* main.c - hacme-spoa: the libev shell around the SPOP sessions
 * (spoa/session.h), the pending-token table (spoa/tokens.h) and the control
 * protocol (spoa/control.h). One thread, one loop, non-blocking sockets;
 * everything a peer sends goes through the pure modules. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/buf.h"
#include "common/ctl.h"
#include "common/log.h"
#include "common/token.h"
#include "spoa/control.h"
#include "spoa/session.h"
#include "spoa/spop.h"
#include "spoa/tokens.h"

#ifndef HACME_VERSION
#define HACME_VERSION "unknown"
#endif

#define SPOA_BACKLOG		1024
#define SPOA_IDLE_DEFAULT	600.0	/* s; HAProxy's own `timeout idle` comes first */
#define SPOA_HELLO_DEFAULT	10.0	/* s; HAProxy's `timeout hello` is 2 s in ours */
#define SPOA_MAX_CONNS_DEFAULT	1000	/* HAProxy opens at most the server's maxconn (64) */
#define SPOA_FD_RESERVE		(SPOA_CTL_MAX_CONNS + 64)	/* fds kept for all but SPOP */
#define SPOA_BUFMEM_DEFAULT	32	/* MiB of SPOP buffers, all connections */
#define SPOA_ACCEPT_PAUSE	0.1	/* s without accepting after EMFILE */
#define SPOA_STOP_GRACE		1.0	/* s to write the AGENT-DISCONNECTs */
#define SPOA_CTL_MAX_CONNS	256
#define SPOA_CTL_IDLE_DEFAULT	120.0	/* s; hacme's worker PINGs every 30 s */
#define SPOA_LOG_TICK		1.0	/* s between checks for suppressed-lines summaries */
#define SPOA_KERNEL_TICK	1.0	/* s between reads of blocked connections' kernel queues */
#define SPOA_CTL_IN_MAX		(4 * CTL_LINE_MAX)
#define SPOA_CTL_OUT_HIGH	(64 * 1024)
#define SPOA_LIST_LINE_MAX	(TOKEN_MAX + KEYAUTH_MAX + TOKENS_HOST_MAX + 16)
#define SPOA_CHALLENGE_PREFIX	"/.well-known/acme-challenge/"

/* Intrusive doubly-linked lists of connections, most recently active
 * first: the tail is what goes when a cap is reached. */
#define SPOA_LIST_INSERT(head, tail, x) do {			\
	(x)->prev = NULL;					\
	(x)->next = (head);					\
	if ((head) != NULL)					\
		(head)->prev = (x);				\
	else							\
		(tail) = (x);					\
	(head) = (x);						\
} while (0)
#define SPOA_LIST_REMOVE(head, tail, x) do {			\
	if ((x)->prev != NULL)					\
		(x)->prev->next = (x)->next;			\
	else							\
		(head) = (x)->next;				\
	if ((x)->next != NULL)					\
		(x)->next->prev = (x)->prev;			\
	else							\
		(tail) = (x)->prev;				\
} while (0)
#define SPOA_LIST_TOUCH(head, tail, x) do {			\
	if ((head) != (x)) {					\
		SPOA_LIST_REMOVE(head, tail, x);		\
		SPOA_LIST_INSERT(head, tail, x);		\
	}							\
} while (0)

/* Lines a peer can cause at will are rate-limited per cause. */
static struct log_limit spoa_lim_fit = LOG_LIMIT_INIT("challenge answers that did not fit the ACK");
static struct log_limit spoa_lim_accept = LOG_LIMIT_INIT("accept errors");
static struct log_limit spoa_lim_nomem = LOG_LIMIT_INIT("out of memory for a connection");
static struct log_limit spoa_lim_cap = LOG_LIMIT_INIT("SPOP connections closed at --max-connections");
static struct log_limit spoa_lim_budget = LOG_LIMIT_INIT("SPOP connections closed over --max-buffer-memory");
static struct log_limit spoa_lim_deadline = LOG_LIMIT_INIT("SPOP connections closed at a deadline");
static struct log_limit spoa_lim_ctl = LOG_LIMIT_INIT("control connections closed");
static struct log_limit spoa_lim_extra = LOG_LIMIT_INIT("challenge lines of extra messages in one NOTIFY");
static struct log_limit spoa_lim_io = LOG_LIMIT_INIT("SPOP read errors");

struct spoa;

/* One SPOP connection from HAProxy. */
struct spoa_conn {
	ev_io io;
	/* The HELLO deadline, then the idle one; only a whole frame restarts
	 * it, so a peer trickling bytes cannot hold the connection open. */
	ev_timer deadline;
	int fd;
	int events;		/* what io watches now */
	bool ready;		/* HELLO done: the deadline is the idle one */
	bool proven;		/* a NOTIFY answered: on agent->conns, else on fresh */
	struct spoa *agent;
	struct spoa_conn *prev, *next;
	uint64_t seq;		/* accept order: newer is larger */
	size_t held;		/* in.cap + out.cap (+ the kernel's queues while
				 * blocked), counted in agent->held */
	struct buf in, out;
	struct spop_session sess;
};

/* One control connection (the worker, or an operator with socat). */
struct spoa_ctl {
	ev_io io;
	ev_timer idle;		/* restarted by whole lines only */
	int fd;
	int events;
	bool closing;		/* no more requests: write, then close */
	bool eof;		/* the peer sent all it will send */
	struct spoa *agent;
	struct spoa_ctl *prev, *next;
	struct buf in, out;
};

struct spoa {
	struct ev_loop *loop;
	struct tokens *tokens;
	struct control_stats stats;
	uint32_t max_frame;
	double idle_timeout, hello_timeout, ctl_idle_timeout;
	size_t ctl_out_max;
	size_t max_conns;	/* SPOP connections at most */
	size_t nconns;
	size_t bufmem_max;	/* bytes of SPOP buffers, all connections */
	size_t held;		/* bytes of SPOP buffers now */
	uint64_t seq;
	ev_io spop_lio, ctl_lio;
	ev_timer spop_pause, ctl_pause;
	ev_signal sigterm, sigint;
	ev_prepare flush;
	ev_timer stop_timer;
	ev_timer log_tick;	/* summaries of suppressed lines */
	ev_timer kernel_tick;	/* the kernel's queues of blocked connections */
	/* SPOP connections that answered a NOTIFY (HAProxy's), and the others
	 * (before their first NOTIFY: health checks, floods): at the cap the
	 * least recently active of the others goes first. */
	struct spoa_conn *conns, *conns_tail;
	struct spoa_conn *fresh, *fresh_tail;
	uint8_t scratch[2 * (4 + (1 << 20))];	/* >= any conn's in.max */	/* one read; what a frame leaves goes to c->in */
	struct spoa_ctl *ctls, *ctls_tail;
	size_t nctls;
	bool stopping;
	struct addr listen_addr, ctl_addr;
};

/* TTLs are whole seconds: the coarse clock (a few ms resolution) is plenty
 * and costs a quarter of the precise one, once per challenge request. */
static uint64_t
spoa_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sets what an io watcher waits for, restarting it only on a change. */
static void
spoa_io_want(struct ev_loop *loop, ev_io *io, int *cur, int fd, int want)
{
	if (want == *cur)
		return;
	ev_io_stop(loop, io);
	ev_io_set(io, fd, want);
	if (want)
		ev_io_start(loop, io);
	*cur = want;
}

/* Reads at most room bytes into p (room 0: nothing). 1 with *n set, 0
 * nothing now, -1 EOF or error (errno 0 on EOF). */
static int
spoa_read_into(int fd, uint8_t *p, size_t room, size_t *n)
{
	ssize_t r;

	*n = 0;
	if (room == 0)
		return 0;
	for (;;) {
		r = read(fd, p, room);
		if (r > 0) {
			*n = (size_t)r;
			return 1;
		}
		if (r == 0) {
			errno = 0;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -1;
	}
}

/* Reads once into b. 1 data, 0 nothing now (EAGAIN or b full), -1 EOF or
 * error (errno 0 on EOF). */
static int
spoa_read(int fd, struct buf *b, size_t chunk)
{
	size_t room = b->max - b->len, n;
	int rc;

	if (room > chunk)
		room = chunk;
	if (room == 0 || buf_reserve(b, room) < 0)
		return 0;
	if ((rc = spoa_read_into(fd, b->p + b->len, room, &n)) == 1)
		b->len += n;
	return rc;
}

/* Writes as much of b as the socket takes. 0, or -1 on a dead peer. */
static int
spoa_write(int fd, struct buf *b)
{
	ssize_t n;

	while (b->len > 0) {
		n = send(fd, b->p, b->len, MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(b, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	return 0;
}

/* Idle connections keep no buffers: RSS stays flat with many of them. */
static void
spoa_buf_trim(struct buf *b)
{
	if (b->len == 0 && b->p != NULL)
		buf_fini(b);
}

/* --- the challenge handler --------------------------------------------- */

/* glibc's inet_ntop() formats IPv4 with sprintf: too slow for a line per
 * request. dst holds at least INET_ADDRSTRLEN bytes. */
static const char *
spoa_ipv4_str(const uint8_t ip[4], char *dst)
{
	char *p = dst;

	for (int i = 0; i < 4; i++) {
		unsigned v = ip[i];

		if (i > 0)
			*p++ = '.';
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
	}
	*p = '\0';
	return dst;
}

static const char *
spoa_src_str(const struct spop_data *src, char *dst, size_t len)
{
	if (src == NULL)
		return "-";
	switch (src->type) {
	case SPOP_T_IPV4:
		return len >= INET_ADDRSTRLEN ? spoa_ipv4_str(src->ip, dst) : "-";
	case SPOP_T_IPV6:
		return inet_ntop(AF_INET6, src->ip, dst, (socklen_t)len) ? dst : "-";
	case SPOP_T_STRING:
		return log_escape(dst, len, src->s.p, src->s.len);
	default:
		return "-";
	}
}

/* The per-request log line, assembled without printf. */
struct spoa_line {
	char p[512];
	size_t n;
};

static void
spoa_line_add(struct spoa_line *l, const char *s)
{
	size_t k = strnlen(s, sizeof(l->p) - l->n);

	memcpy(l->p + l->n, s, k);
	l->n += k;
}

static bool
spoa_is_str(const struct spop_data *d)
{
	return d != NULL && (d->type == SPOP_T_STRING || d->type == SPOP_T_BINARY);
}

/* Why an answer found no room in its ACK, named for the one who can fix
 * it: a NOTIFY that packs many messages fills the ACK with earlier answers
 * (HAProxy never does that); an answer alone too large for the negotiated
 * frame needs a larger frame on both sides. */
static void
spoa_no_fit(struct spoa *a, const struct spop_message *msg,
    const struct spop_ack *ack, size_t kalen)
{
	unsigned done = spop_ack_actions(ack);
	uint32_t fmax = spop_ack_frame_max(ack);

	if (done > 0)
		log_warn_rl(&spoa_lim_fit, "challenge not answered: the ACK of a "
		    "NOTIFY is full (%u answers of its earlier messages fill the "
		    "%" PRIu32 "-byte frame; this was message %u): the peer packs "
		    "many messages into one NOTIFY, which HAProxy never does",
		    done, fmax, msg->index + 1);
	else if (fmax < a->max_frame)
		log_warn_rl(&spoa_lim_fit, "challenge not answered: a %zu-byte key "
		    "authorization does not fit the %" PRIu32 "-byte frame HAProxy "
		    "negotiated (ours is %" PRIu32 "): raise HAProxy's tune.bufsize",
		    kalen, fmax, a->max_frame);
	else
		log_warn_rl(&spoa_lim_fit, "challenge not answered: a %zu-byte key "
		    "authorization does not fit the %" PRIu32 "-byte frame: raise "
		    "--max-frame-size (and HAProxy's tune.bufsize)", kalen, fmax);
}

static void
spoa_on_message(void *ctx, const struct spop_message *msg, struct spop_ack *ack)
{
	struct spoa *a = ctx;
	const struct spop_data *path = NULL, *host = NULL, *src = NULL;
	const size_t plen = sizeof(SPOA_CHALLENGE_PREFIX) - 1;
	const char *tok = NULL, *ka, *reqhost = NULL, *verdict;
	size_t toklen = 0, kalen, reqhost_len = 0;
	char srcbuf[INET6_ADDRSTRLEN + 64], hostbuf[128], tokbuf[64];
	struct spoa_line line;
	enum tokens_match m;

	if (!spop_str_eq(msg->name, msg->name_len, "acme-challenge"))
		return;
	for (unsigned i = 0; i < msg->nargs; i++) {
		const struct spop_arg *arg = &msg->args[i];

		if (spop_str_eq(arg->name, arg->name_len, "path"))
			path = &arg->val;
		else if (spop_str_eq(arg->name, arg->name_len, "host"))
			host = &arg->val;
		else if (spop_str_eq(arg->name, arg->name_len, "src"))
			src = &arg->val;
	}
	if (spoa_is_str(host)) {
		reqhost = (const char *)host->s.p;
		reqhost_len = host->s.len;
	}
	if (spoa_is_str(path) && path->s.len > plen &&
	    memcmp(path->s.p, SPOA_CHALLENGE_PREFIX, plen) == 0) {
		tok = (const char *)path->s.p + plen;
		toklen = path->s.len - plen;
	}
	/* base64url has no '/': a valid token is exactly the last segment. */
	if (tok == NULL || !token_valid(tok, toklen)) {
		a->stats.invalid++;
		verdict = "invalid";
	} else if ((m = tokens_lookup(a->tokens, tok, toklen, reqhost,
	    reqhost_len, spoa_now_ms(), &ka, &kalen)) == TOKENS_HIT) {
		if (spop_ack_set_var_str(ack, SPOP_SCOPE_TXN, "keyauth", 7,
		    (const uint8_t *)ka, kalen) < 0) {
			spoa_no_fit(a, msg, ack, kalen);
			a->stats.misses++;
			verdict = "miss (no room in the ACK)";
		} else {
			a->stats.hits++;
			verdict = "hit";
		}
	} else {
		a->stats.misses++;
		verdict = m == TOKENS_WRONG_HOST ? "miss (other host)" : "miss";
	}
	if (!log_enabled(LOG_LVL_INFO))
		return;
	/* HAProxy sends one message per request: more in one NOTIFY come
	 * from a peer that is not HAProxy, and are not each worth a line. */
	if (msg->index > 0 && !log_limit_pass(&spoa_lim_extra, LOG_LVL_INFO))
		return;
	if (tok != NULL)
		log_escape(tokbuf, sizeof(tokbuf), tok, toklen < 8 ? toklen : 8);
	else if (spoa_is_str(path))
		log_escape(tokbuf, sizeof(tokbuf), path->s.p, path->s.len < 8 ? path->s.len : 8);
	else
		strcpy(tokbuf, "-");
	/* challenge src=%s host=%s token=%s %s */
	line.n = 0;
	spoa_line_add(&line, "challenge src=");
	spoa_line_add(&line, spoa_src_str(src, srcbuf, sizeof(srcbuf)));
	spoa_line_add(&line, " host=");
	spoa_line_add(&line, reqhost ? log_escape(hostbuf, sizeof(hostbuf),
	    reqhost, reqhost_len) : "-");
	spoa_line_add(&line, " token=");
	spoa_line_add(&line, tokbuf);
	spoa_line_add(&line, " ");
	spoa_line_add(&line, verdict);
	log_write(LOG_LVL_INFO, line.p, line.n);
}

/* --- SPOP connections -------------------------------------------------- */

static void
spoa_conn_free(struct spoa_conn *c)
{
	struct spoa *a = c->agent;

	ev_io_stop(a->loop, &c->io);
	ev_timer_stop(a->loop, &c->deadline);
	close(c->fd);
	buf_fini(&c->in);
	buf_fini(&c->out);
	a->held -= c->held;
	if (c->proven)
		SPOA_LIST_REMOVE(a->conns, a->conns_tail, c);
	else
		SPOA_LIST_REMOVE(a->fresh, a->fresh_tail, c);
	a->nconns--;
	a->stats.connections_active--;
	free(c);
	if (a->stopping && a->conns == NULL && a->fresh == NULL)
		ev_break(a->loop, EVBREAK_ALL);
}

/* Feeds what was read to the session and writes its replies, until it
 * needs more bytes or the socket is full. -1: close the connection now.
 * *frames: whether any whole frame was taken. p[0..n) was just read into
 * the agent's scratch buffer: with nothing kept from before, whole frames
 * are taken from there and only a partial frame (or what back-pressure
 * left) is copied, so a peer trickling bytes holds a few of them, not a
 * frame-sized buffer. */
static int
spoa_conn_pump(struct spoa_conn *c, const uint8_t *p, size_t n, bool *frames)
{
	size_t used, had_out;

	*frames = false;
	if (n > 0 && c->in.len == 0 && !spop_session_closing(&c->sess)) {
		used = spop_session_feed(&c->sess, p, n, &c->out);
		if (used > 0)
			*frames = true;
		p += used;
		n -= used;
	}
	if (n > 0 && buf_append(&c->in, p, n) < 0)
		return -1;	/* cannot happen: reads stop at in.max */
	for (;;) {
		had_out = c->out.len;
		used = spop_session_feed(&c->sess, c->in.p, c->in.len, &c->out);
		buf_consume(&c->in, used);
		if (used > 0)
			*frames = true;
		if (spoa_write(c->fd, &c->out) < 0)
			return -1;
		if (spop_session_closing(&c->sess))
			return c->out.len == 0 ? -1 : 0;
		if (c->out.len > 0 || c->in.len == 0)
			break;
		/* Nothing used with nothing queued: only part of a frame. */
		if (used == 0 && had_out == 0)
			break;
	}
	return 0;
}

/* The peer does not read its ACKs, or c stopped reading. */
static bool
spoa_conn_blocked(const struct spoa_conn *c)
{
	return c->out.len > 0 || c->in.len >= c->in.max;
}

/* What the kernel holds for c: counted only while c is blocked, when it can
 * be a whole socket buffer; otherwise it drains at once and reading it
 * would cost two syscalls per event for nothing. */
static size_t
spoa_kernel_queued(const struct spoa_conn *c)
{
	int in = 0, out = 0;

	if (!spoa_conn_blocked(c))
		return 0;
	if (ioctl(c->fd, SIOCINQ, &in) < 0 || in < 0)
		in = 0;
	if (ioctl(c->fd, SIOCOUTQ, &out) < 0 || out < 0)
		out = 0;
	return (size_t)in + (size_t)out;
}

/* c's bytes in agent->held: its buffers, and the kernel's queues while it
 * is blocked. True when it is blocked. */
static bool
spoa_conn_count(struct spoa_conn *c)
{
	struct spoa *a = c->agent;
	size_t k = spoa_kernel_queued(c);

	a->held -= c->held;
	c->held = c->in.cap + c->out.cap + k;
	a->held += c->held;
	return spoa_conn_blocked(c);
}

static void
spoa_conn_update(struct spoa_conn *c)
{
	struct spoa *a = c->agent;
	int want = 0;

	if (!spop_session_closing(&c->sess) && c->in.len < c->in.max)
		want |= EV_READ;
	if (c->out.len > 0)
		want |= EV_WRITE;
	spoa_buf_trim(&c->in);
	spoa_buf_trim(&c->out);
	if (spoa_conn_count(c) && !ev_is_active(&a->kernel_tick))
		ev_timer_again(a->loop, &a->kernel_tick);
	spoa_io_want(a->loop, &c->io, &c->events, c->fd, want);
}

/* Over the buffer budget: closes the greediest connections (the newest of
 * equals) until a quarter of the budget is free again. A peer that sends
 * without reading holds the most; HAProxy's connections hold almost nothing
 * between two events. The control socket is never touched. */
static void
spoa_budget(struct spoa *a)
{
	struct spoa_conn *c, *victim;
	size_t low = a->bufmem_max / 4 * 3;
	unsigned closed = 0;

	if (a->held <= a->bufmem_max || a->stopping)
		return;
	while (a->held > low) {
		victim = NULL;
		for (int l = 0; l < 2; l++)
			for (c = l ? a->fresh : a->conns; c != NULL; c = c->next)
				if (victim == NULL || c->held > victim->held ||
				    (c->held == victim->held && c->seq > victim->seq))
					victim = c;
		if (victim == NULL || victim->held == 0)
			break;
		spoa_conn_free(victim);
		closed++;
		a->stats.closed_budget++;
	}
	log_warn_rl(&spoa_lim_budget, "SPOP buffers over --max-buffer-memory "
	    "(%zu MiB): closed the %u greediest connection%s (peers that send "
	    "without reading)", a->bufmem_max >> 20, closed, closed == 1 ? "" : "s");
}

/* A blocked connection has no event while the kernel queues more for it:
 * its count is read again every SPOA_KERNEL_TICK seconds while there are
 * blocked connections, and the budget applied. */
static void
spoa_kernel_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct spoa *a = w->data;
	bool blocked = false;

	for (int l = 0; l < 2; l++)
		for (struct spoa_conn *c = l ? a->fresh : a->conns; c != NULL; c = c->next)
			if (spoa_conn_blocked(c))
				blocked |= spoa_conn_count(c);
	if (!blocked)
		ev_timer_stop(loop, w);
	spoa_budget(a);
}

static void
spoa_conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spoa_conn *c = w->data;
	struct spoa *a = c->agent;
	bool frames;
	int rc;

	size_t n = 0;
	bool was_ready = c->ready;

	if (revents & EV_READ) {
		rc = spoa_read_into(c->fd, a->scratch, c->in.max - c->in.len, &n);
		if (rc < 0) {
			if (errno != 0 && errno != ECONNRESET)
				log_debug_rl(&spoa_lim_io, "spop connection: read: %s",
				    strerror(errno));
			spoa_conn_free(c);
			return;
		}
	}
	if (spoa_conn_pump(c, a->scratch, n, &frames) < 0) {
		spoa_conn_free(c);
		return;
	}
	if (frames) {
		if (!c->ready && c->sess.state == SPOP_ST_READY) {
			c->ready = true;
			c->deadline.repeat = a->idle_timeout;
		}
		ev_timer_again(loop, &c->deadline);
		if (c->proven) {
			SPOA_LIST_TOUCH(a->conns, a->conns_tail, c);
		} else if (was_ready) {
			SPOA_LIST_REMOVE(a->fresh, a->fresh_tail, c);
			SPOA_LIST_INSERT(a->conns, a->conns_tail, c);
			c->proven = true;
		} else {
			SPOA_LIST_TOUCH(a->fresh, a->fresh_tail, c);
		}
	}
	spoa_conn_update(c);
	spoa_budget(a);		/* may free c */
}

static void
spoa_conn_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct spoa_conn *c = w->data;
	struct spoa *a = c->agent;

	if (c->ready) {
		a->stats.closed_idle++;
		log_debug_rl(&spoa_lim_deadline, "spop connection: no whole frame "
		    "for %.0fs (--idle-timeout): closing", a->idle_timeout);
	} else {
		a->stats.closed_hello++;
		log_info_rl(&spoa_lim_deadline, "spop connection: no HELLO within "
		    "%.0fs (--hello-timeout): closing", a->hello_timeout);
	}
	spoa_conn_free(c);
}

static void
spoa_conn_new(struct spoa *a, int fd)
{
	struct spoa_conn *c;
	int one = 1, sockbuf = 4 * (4 + (int)a->max_frame);

	/* At the cap, the least recently active connection makes room: an
	 * idle one of HAProxy's costs it a reconnect, a flood cannot lock
	 * HAProxy out. */
	if (a->nconns >= a->max_conns) {
		log_notice_rl(&spoa_lim_cap, "spop: %zu connections open "
		    "(--max-connections): closing the least recently active one",
		    a->nconns);
		a->stats.closed_cap++;
		spoa_conn_free(a->fresh_tail != NULL ? a->fresh_tail : a->conns_tail);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn_rl(&spoa_lim_nomem, "spop connection: out of memory");
		close(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The kernel's send buffer, fixed at four frames (it doubles that for
	 * its bookkeeping): left to autotuning, a peer that does not read its
	 * ACKs makes the kernel hold 4 MiB per connection. HAProxy reads as it
	 * goes: four frames suffice. The receive side stays autotuned (fixed,
	 * it cost 40 % of the NOTIFYs per second over 16 pipelining
	 * connections); what it holds of a blocked connection is counted in
	 * the budget (spoa_kernel_queued). */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof(sockbuf));
	c->fd = fd;
	c->agent = a;
	c->seq = ++a->seq;
	/* Two frames in, room for the session's back-pressure rule out. */
	buf_init(&c->in, 2 * (4 + (size_t)a->max_frame));
	buf_init(&c->out, 4 * (4 + (size_t)a->max_frame));
	spop_session_init(&c->sess, a->max_frame, spoa_on_message, a,
	    &a->stats.spop);
	ev_io_init(&c->io, spoa_conn_cb, fd, 0);
	c->io.data = c;
	ev_init(&c->deadline, spoa_conn_deadline_cb);
	c->deadline.repeat = a->hello_timeout;
	c->deadline.data = c;
	ev_timer_again(a->loop, &c->deadline);
	SPOA_LIST_INSERT(a->fresh, a->fresh_tail, c);
	a->nconns++;
	a->stats.connections_total++;
	a->stats.connections_active++;
	spoa_conn_update(c);
}

/* --- control connections ----------------------------------------------- */

static void
spoa_ctl_free(struct spoa_ctl *k)
{
	struct spoa *a = k->agent;

	ev_io_stop(a->loop, &k->io);
	ev_timer_stop(a->loop, &k->idle);
	close(k->fd);
	buf_fini(&k->in);
	buf_fini(&k->out);
	SPOA_LIST_REMOVE(a->ctls, a->ctls_tail, k);
	a->nctls--;
	free(k);
}

/* True when in holds a whole line (or a too-long one) to answer. */
static bool
spoa_ctl_has_line(const struct spoa_ctl *k)
{
	return k->in.len >= CTL_LINE_MAX ||
	    (k->in.len > 0 && memchr(k->in.p, '\n', k->in.len) != NULL);
}

/* Answers the whole lines read so far and writes. -1: close now.
 * *lines: whether any whole line was answered. */
static int
spoa_ctl_pump(struct spoa_ctl *k, bool *lines)
{
	struct spoa *a = k->agent;
	size_t used;

	*lines = false;
	for (;;) {
		if (!k->closing && spoa_ctl_has_line(k)) {
			a->stats.buffer_bytes = a->held;
			if (control_feed(a->tokens, &a->stats, spoa_now_ms(),
			    k->in.p, k->in.len, &k->out, SPOA_CTL_OUT_HIGH,
			    &used) == CONTROL_CLOSE)
				k->closing = true;
			buf_consume(&k->in, used);
			if (used > 0)
				*lines = true;
		}
		if (spoa_write(k->fd, &k->out) < 0)
			return -1;
		if (k->out.len > 0)
			return 0;
		if (k->closing)
			return -1;
		/* Out drained: go on only if back-pressure left whole lines. */
		if (!spoa_ctl_has_line(k))
			return k->eof ? -1 : 0;
	}
}

static void
spoa_ctl_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spoa_ctl *k = w->data;
	struct spoa *a = k->agent;
	bool lines;
	int want = 0;

	if ((revents & EV_READ) && spoa_read(k->fd, &k->in, SPOA_CTL_IN_MAX) < 0) {
		if (errno != 0) {
			spoa_ctl_free(k);
			return;
		}
		/* Half-closed (`... | socat`): still answer every line sent. */
		k->eof = true;
	}
	if (spoa_ctl_pump(k, &lines) < 0) {
		spoa_ctl_free(k);
		return;
	}
	/* Only whole requests, or a reader taking a long reply, count as
	 * activity: trickled bytes do not hold a slot. */
	if (lines || (revents & EV_WRITE)) {
		ev_timer_again(loop, &k->idle);
		SPOA_LIST_TOUCH(a->ctls, a->ctls_tail, k);
	}
	if (!k->closing && !k->eof && k->in.len < k->in.max &&
	    k->out.len <= SPOA_CTL_OUT_HIGH)
		want |= EV_READ;
	if (k->out.len > 0)
		want |= EV_WRITE;
	spoa_buf_trim(&k->in);
	spoa_buf_trim(&k->out);
	spoa_io_want(loop, &k->io, &k->events, k->fd, want);
}

static void
spoa_ctl_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct spoa_ctl *k = w->data;

	log_info_rl(&spoa_lim_ctl, "control: a client sent no whole request for "
	    "%.0fs (--control-idle-timeout): closing", k->agent->ctl_idle_timeout);
	spoa_ctl_free(k);
}

static void
spoa_ctl_new(struct spoa *a, int fd)
{
	struct spoa_ctl *k;

	/* Full: the longest idle client goes, so idle local clients cannot
	 * lock hacme out of its agent. */
	if (a->nctls >= SPOA_CTL_MAX_CONNS && a->ctls_tail != NULL) {
		log_notice_rl(&spoa_lim_ctl, "control: %zu clients connected: "
		    "closing the longest idle one", a->nctls);
		spoa_ctl_free(a->ctls_tail);
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		log_warn_rl(&spoa_lim_nomem, "control: out of memory for a connection");
		close(fd);
		return;
	}
	k->fd = fd;
	k->agent = a;
	buf_init(&k->in, SPOA_CTL_IN_MAX);
	buf_init(&k->out, a->ctl_out_max);
	ev_io_init(&k->io, spoa_ctl_cb, fd, 0);
	k->io.data = k;
	ev_init(&k->idle, spoa_ctl_idle_cb);
	k->idle.repeat = a->ctl_idle_timeout;
	k->idle.data = k;
	ev_timer_again(a->loop, &k->idle);
	SPOA_LIST_INSERT(a->ctls, a->ctls_tail, k);
	a->nctls++;
	spoa_io_want(a->loop, &k->io, &k->events, fd, EV_READ);
}

/* --- listeners --------------------------------------------------------- */

static void
spoa_accept(struct spoa *a, ev_io *lio, ev_timer *pause, const char *what,
    void (*on_new)(struct spoa *, int))
{
	enum addr_accept_stop stop;
	int fd;

	while ((fd = addr_accept(lio->fd, &stop)) >= 0)
		on_new(a, fd);
	if (stop == ADDR_ACCEPT_PAUSE) {
		log_warn_rl(&spoa_lim_accept, "%s: accept: %s; pausing accepts "
		    "for %.0f ms", what, strerror(errno), SPOA_ACCEPT_PAUSE * 1000);
		ev_io_stop(a->loop, lio);
		ev_timer_set(pause, SPOA_ACCEPT_PAUSE, 0.);
		ev_timer_start(a->loop, pause);
	} else if (stop == ADDR_ACCEPT_ERROR) {
		log_warn_rl(&spoa_lim_accept, "%s: accept: %s", what, strerror(errno));
	}
}

static void
spoa_spop_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spoa *a = w->data;

	spoa_accept(a, w, &a->spop_pause, "spop", spoa_conn_new);
}

static void
spoa_ctl_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spoa *a = w->data;

	spoa_accept(a, w, &a->ctl_pause, "control", spoa_ctl_new);
}

static void
spoa_pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_io *lio = w->data;

	ev_io_start(loop, lio);
}

/* --- shutdown ---------------------------------------------------------- */

static void
spoa_unlink_unix(const struct addr *ad)
{
	if (addr_is_unix(ad))
		(void)unlink(((const struct sockaddr_un *)&ad->ss)->sun_path);
}

static void
spoa_stop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void
spoa_stop(struct spoa *a, int signum)
{
	struct spoa_conn *c, *cn;

	if (a->stopping)
		return;
	a->stopping = true;
	log_notice("signal %d: stopping", signum);
	ev_io_stop(a->loop, &a->spop_lio);
	ev_io_stop(a->loop, &a->ctl_lio);
	ev_timer_stop(a->loop, &a->spop_pause);
	ev_timer_stop(a->loop, &a->ctl_pause);
	close(a->spop_lio.fd);
	close(a->ctl_lio.fd);
	spoa_unlink_unix(&a->listen_addr);
	spoa_unlink_unix(&a->ctl_addr);
	while (a->ctls != NULL)
		spoa_ctl_free(a->ctls);
	if (a->conns == NULL && a->fresh == NULL) {
		ev_break(a->loop, EVBREAK_ALL);
		return;
	}
	for (int l = 0; l < 2; l++) {
		for (c = l ? a->fresh : a->conns; c != NULL; c = cn) {
			cn = c->next;
			spop_session_disconnect(&c->sess, 0, "agent shutting down",
			    &c->out);
			if (spoa_write(c->fd, &c->out) < 0 || c->out.len == 0)
				spoa_conn_free(c);	/* may break the loop */
			else
				spoa_conn_update(c);
		}
	}
	ev_timer_init(&a->stop_timer, spoa_stop_timer_cb, SPOA_STOP_GRACE, 0.);
	ev_timer_start(a->loop, &a->stop_timer);
}

static void
spoa_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	spoa_stop(w->data, w->signum);
}

static void
spoa_log_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (!log_limit_tick())
		ev_timer_stop(loop, w);
}

/* Before the loop sleeps: lines out, and a timer for the summaries of
 * suppressed lines while there are some (none runs otherwise). */
static void
spoa_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct spoa *a = w->data;

	if (!ev_is_active(&a->log_tick) && log_limit_tick())
		ev_timer_again(loop, &a->log_tick);
	log_flush();
}

/* As many fds as the hard limit allows: 1,100 idle connections must not
 * starve HAProxy's connections or the control socket under the usual soft
 * limit of 1024. The SPOP connection cap stays below what is left. */
static rlim_t
spoa_raise_nofile(void)
{
	struct rlimit rl;
	rlim_t want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = was;
	}
	return rl.rlim_cur == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_cur;
}

/* --- main -------------------------------------------------------------- */

static void
spoa_usage(FILE *f)
{
	fprintf(f,
	    "usage: hacme-spoa --listen ADDR --control ADDR [options]\n"
	    "  --listen ADDR           where HAProxy connects (SPOP), e.g. 127.0.0.1:12345\n"
	    "  --control ADDR          control socket, e.g. unix@/run/hacme/agent.sock\n"
	    "  --max-tokens N          pending challenges held at most (default %d)\n"
	    "  --log-level L           error, warning, notice (default), info, debug\n"
	    "  --control-allow-remote  allow a tcp control socket on a non-loopback address\n"
	    "  --control-mode OCTAL    mode of a unix control socket (default 0600)\n"
	    "  --max-frame-size N      largest SPOP frame accepted, %d..%d (default %d)\n"
	    "  --idle-timeout SECONDS  close an SPOP connection idle this long (default %.0f)\n"
	    "                          (idle: no whole frame; trickled bytes do not count)\n"
	    "  --hello-timeout SECONDS close an SPOP connection without HELLO this long (default %.0f)\n"
	    "  --max-connections N     SPOP connections at most; at the cap the least recently\n"
	    "                          active one is closed (default %d, less if fds are short)\n"
	    "  --max-buffer-memory MIB SPOP buffers of all connections (the kernel's queues of\n"
	    "                          blocked ones too) at most; over it the greediest\n"
	    "                          connections are closed (default %d)\n"
	    "  --control-idle-timeout SECONDS  close a control client without a request this\n"
	    "                          long (default %.0f)\n"
	    "  -h, --help, -V, --version\n"
	    "ADDR: unix@PATH, ipv4@HOST:PORT, ipv6@[HOST]:PORT, unix:PATH, tcp:HOST:PORT, HOST:PORT\n",
	    TOKENS_DEFAULT_MAX, SPOP_MIN_FRAME, 1 << 20, SPOP_DEFAULT_FRAME,
	    SPOA_IDLE_DEFAULT, SPOA_HELLO_DEFAULT, SPOA_MAX_CONNS_DEFAULT,
	    SPOA_BUFMEM_DEFAULT, SPOA_CTL_IDLE_DEFAULT);
}

/* arg is echoed escaped: the error stays one line. */
static int
spoa_die(const char *fmt, const char *arg)
{
	char esc[512];

	fprintf(stderr, "hacme-spoa: ");
	fprintf(stderr, fmt, log_escape(esc, sizeof(esc), arg, strlen(arg)));
	fprintf(stderr, "\n");
	return 1;
}

/* The same with an arg that is already escaped (addr_parse's reasons). */
static int
spoa_die_escaped(const char *fmt, const char *arg)
{
	fprintf(stderr, "hacme-spoa: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	return 1;
}

static bool
spoa_parse_ulong(const char *s, int base, unsigned long lo, unsigned long hi,
    unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s == '\0' || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int
spoa_listen(struct spoa *a, const struct addr *ad, mode_t mode, ev_io *lio,
    ev_timer *pause, void (*cb)(struct ev_loop *, ev_io *, int))
{
	int fd = addr_listen(ad, SPOA_BACKLOG, mode);

	if (fd < 0)
		return -1;
	ev_io_init(lio, cb, fd, EV_READ);
	lio->data = a;
	ev_io_start(a->loop, lio);
	ev_init(pause, spoa_pause_cb);
	pause->data = lio;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "control", required_argument, NULL, 'c' },
		{ "max-tokens", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "control-allow-remote", no_argument, NULL, 'R' },
		{ "control-mode", required_argument, NULL, 'm' },
		{ "max-frame-size", required_argument, NULL, 'f' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "hello-timeout", required_argument, NULL, 'H' },
		{ "max-connections", required_argument, NULL, 'C' },
		{ "max-buffer-memory", required_argument, NULL, 'M' },
		{ "control-idle-timeout", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct spoa agent;
	struct spoa *a = &agent;
	const char *listen_s = NULL, *ctl_s = NULL;
	enum log_level level = LOG_LVL_NOTICE;
	unsigned long max_tokens = TOKENS_DEFAULT_MAX, v;
	unsigned long ctl_mode = 0600, max_frame = SPOP_DEFAULT_FRAME;
	unsigned long max_conns = 0, bufmem = SPOA_BUFMEM_DEFAULT;
	bool allow_remote = false;
	rlim_t nofile;
	char err[256];
	uint64_t seed;
	int o;

	a->idle_timeout = SPOA_IDLE_DEFAULT;
	a->hello_timeout = SPOA_HELLO_DEFAULT;
	a->ctl_idle_timeout = SPOA_CTL_IDLE_DEFAULT;
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			listen_s = optarg;
			break;
		case 'c':
			ctl_s = optarg;
			break;
		case 't':
			if (!spoa_parse_ulong(optarg, 10, 1, 10000000, &max_tokens))
				return spoa_die("--max-tokens '%s': want 1..10000000", optarg);
			break;
		case 'L':
			if (!log_parse_level(optarg, &level))
				return spoa_die("--log-level '%s': want error, warning, notice, info or debug", optarg);
			break;
		case 'R':
			allow_remote = true;
			break;
		case 'm':
			if (!spoa_parse_ulong(optarg, 8, 0, 0777, &ctl_mode))
				return spoa_die("--control-mode '%s': want an octal mode such as 0600", optarg);
			break;
		case 'f':
			if (!spoa_parse_ulong(optarg, 10, SPOP_MIN_FRAME, 1 << 20, &max_frame))
				return spoa_die("--max-frame-size '%s': want 256..1048576", optarg);
			break;
		case 'i':
			if (!spoa_parse_ulong(optarg, 10, 1, 86400, &v))
				return spoa_die("--idle-timeout '%s': want 1..86400 seconds", optarg);
			a->idle_timeout = (double)v;
			break;
		case 'H':
			if (!spoa_parse_ulong(optarg, 10, 1, 3600, &v))
				return spoa_die("--hello-timeout '%s': want 1..3600 seconds", optarg);
			a->hello_timeout = (double)v;
			break;
		case 'C':
			if (!spoa_parse_ulong(optarg, 10, 1, 1000000, &max_conns))
				return spoa_die("--max-connections '%s': want 1..1000000", optarg);
			break;
		case 'M':
			if (!spoa_parse_ulong(optarg, 10, 1, 65536, &bufmem))
				return spoa_die("--max-buffer-memory '%s': want 1..65536 MiB", optarg);
			break;
		case 'I':
			if (!spoa_parse_ulong(optarg, 10, 1, 86400, &v))
				return spoa_die("--control-idle-timeout '%s': want 1..86400 seconds", optarg);
			a->ctl_idle_timeout = (double)v;
			break;
		case 'h':
			spoa_usage(stdout);
			return 0;
		case 'V':
			printf("hacme-spoa %s\n", HACME_VERSION);
			return 0;
		default:
			spoa_usage(stderr);
			return 1;
		}
	}
	if (optind != argc)
		return spoa_die("unexpected argument '%s' (see --help)", argv[optind]);
	if (listen_s == NULL || ctl_s == NULL)
		return spoa_die("%s", "--listen and --control are required (see --help)");
	log_init("hacme-spoa", level);
	if (addr_parse(&a->listen_addr, listen_s, err, sizeof(err)) < 0)
		return spoa_die_escaped("--listen %s", err);
	if (addr_parse(&a->ctl_addr, ctl_s, err, sizeof(err)) < 0)
		return spoa_die_escaped("--control %s", err);
	if (a->listen_addr.master)
		return spoa_die("--listen '%s': not a master CLI address", listen_s);
	if (a->ctl_addr.master)
		return spoa_die("--control '%s': not a master CLI address", ctl_s);
	if (!addr_is_loopback(&a->ctl_addr)) {
		if (!allow_remote)
			return spoa_die("--control '%s' is not a loopback address: whoever "
			    "reaches the control socket can get certificates issued for "
			    "every name this HAProxy serves; use a unix socket or "
			    "127.0.0.1, or add --control-allow-remote", ctl_s);
		log_warn("WARNING: the control socket %s accepts connections from other "
		    "hosts (--control-allow-remote): anyone who reaches it can get "
		    "certificates issued for every name this HAProxy serves; "
		    "firewall it", ctl_s);
	}

	(void)signal(SIGPIPE, SIG_IGN);
	nofile = spoa_raise_nofile();
	if (max_conns == 0)
		max_conns = SPOA_MAX_CONNS_DEFAULT;
	/* With very few fds, accept() pauses on EMFILE instead (logged). */
	if (nofile < SPOA_FD_RESERVE + 64)
		log_warn("only %llu file descriptors (ulimit -n): SPOP connections "
		    "past that wait in the backlog; give the agent at least %d",
		    (unsigned long long)nofile, SPOA_FD_RESERVE + 64 + 1000);
	else if (max_conns > nofile - SPOA_FD_RESERVE) {
		log_warn("--max-connections %lu: only %llu file descriptors (ulimit -n); "
		    "using %llu", max_conns, (unsigned long long)nofile,
		    (unsigned long long)(nofile - SPOA_FD_RESERVE));
		max_conns = (unsigned long)(nofile - SPOA_FD_RESERVE);
	}
	a->max_conns = max_conns;
	a->bufmem_max = (size_t)bufmem << 20;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	a->max_frame = (uint32_t)max_frame;
	a->ctl_out_max = (size_t)max_tokens * SPOA_LIST_LINE_MAX + 2 * SPOA_CTL_OUT_HIGH;
	if ((a->tokens = tokens_new(max_tokens, seed)) == NULL)
		return spoa_die("%s", "out of memory");
	if ((a->loop = ev_default_loop(EVFLAG_AUTO)) == NULL)
		return spoa_die("%s", "cannot start libev");

	/* The SPOP socket holds nothing secret; HAProxy runs as another user. */
	if (spoa_listen(a, &a->listen_addr, 0666, &a->spop_lio, &a->spop_pause,
	    spoa_spop_accept_cb) < 0) {
		fprintf(stderr, "hacme-spoa: --listen %s: cannot listen: %s\n",
		    listen_s, strerror(errno));
		return 1;
	}
	if (spoa_listen(a, &a->ctl_addr, (mode_t)ctl_mode, &a->ctl_lio,
	    &a->ctl_pause, spoa_ctl_accept_cb) < 0) {
		fprintf(stderr, "hacme-spoa: --control %s: cannot listen: %s\n",
		    ctl_s, strerror(errno));
		spoa_unlink_unix(&a->listen_addr);
		return 1;
	}

	ev_signal_init(&a->sigterm, spoa_signal_cb, SIGTERM);
	a->sigterm.data = a;
	ev_signal_start(a->loop, &a->sigterm);
	ev_signal_init(&a->sigint, spoa_signal_cb, SIGINT);
	a->sigint.data = a;
	ev_signal_start(a->loop, &a->sigint);
	ev_prepare_init(&a->flush, spoa_flush_cb);
	a->flush.data = a;
	ev_prepare_start(a->loop, &a->flush);
	ev_init(&a->log_tick, spoa_log_tick_cb);
	a->log_tick.repeat = SPOA_LOG_TICK;
	ev_init(&a->kernel_tick, spoa_kernel_tick_cb);
	a->kernel_tick.repeat = SPOA_KERNEL_TICK;
	a->kernel_tick.data = a;

	log_notice("hacme-spoa %s ready: SPOP on %s, control on %s, max %lu tokens, "
	    "max %zu SPOP connections, %lu MiB of buffers, %llu fds",
	    HACME_VERSION, listen_s, ctl_s, max_tokens, a->max_conns, bufmem,
	    (unsigned long long)nofile);
	ev_run(a->loop, 0);

	log_notice("stopped");
	log_flush();
	tokens_free(a->tokens);
	return 0;
}
