/* spop_loadgen.c - a load generator that speaks SPOP to hacme-spoa the way
 * HAProxy 2.6 does: the same HAPROXY-HELLO (version 2.0, max-frame-size
 * 16380, capabilities "pipelining,async", an engine-id), then NOTIFY frames
 * with one `acme-challenge` message (path STRING, host STRING, src IPV4),
 * many in flight on each connection. It publishes its tokens through the
 * agent's control socket first, checks every ACK (a published token must
 * come back as exactly `set-var txn keyauth <key authorization>`, an
 * unpublished one as an empty ACK) and prints NOTIFY->ACK per second over a
 * fixed measuring window after a warm-up.
 *
 *   spop_loadgen --agent 127.0.0.1:12345 --control unix@/tmp/agent.ctl \
 *       [--conns 4] [--window 256] [--duration 5] [--warmup 1] \
 *       [--tokens 1000] [--misses 100] [--host www.example.com]
 *
 * The last line is machine-readable: `RESULT key=value ...`. Exit status 0
 * only when every ACK was right and no connection failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/b64url.h"
#include "spoa/spop.h"

#define LG_MAX_FRAME	16380		/* what HAProxy 2.6 announces by default */
#define LG_NOTIFY_MAX	512		/* bytes of one NOTIFY frame, at most */
#define LG_IN_MAX	(256 * 1024)
#define LG_TOKEN_LEN	B64URL_ENCLEN(32)	/* 43, as ACME CAs make them */
#define LG_CTL_BATCH	500		/* control lines per write */
#define LG_TTL		3600
#define LG_PREFIX	"/.well-known/acme-challenge/"

struct lg_token {
	char tok[LG_TOKEN_LEN + 1];
	char ka[2 * LG_TOKEN_LEN + 2];	/* <token>.<thumbprint> */
	uint8_t notify[LG_NOTIFY_MAX];	/* the NOTIFY payload for this token */
	size_t notify_len;
	uint8_t ack[LG_NOTIFY_MAX];	/* the ACK payload it must get back */
	size_t ack_len;
};

/* One in-flight NOTIFY, found again by its stream-id. */
struct lg_slot {
	uint64_t sid;
	uint32_t tok;
	bool used;
};

struct lg_conn {
	int fd;
	uint64_t next_sid;
	size_t inflight;
	size_t next_tok;
	struct lg_slot *ring;		/* window * 2 slots, a power of two */
	size_t ring_mask;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint8_t *in;
	size_t in_len;
	bool want_out;
};

struct lg {
	struct lg_token *toks;
	size_t ntok;		/* published: [0, npub) */
	size_t npub;
	size_t window;
	uint64_t acks, hits_ok, misses_ok, bad, sent;
	bool failed;
	unsigned bad_shown;
};

static double
lg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- encoding ---------------------------------------------------------- */

static size_t
lg_put_str(uint8_t *p, const void *s, size_t n)
{
	size_t k = spop_varint_put(p, n);

	memcpy(p + k, s, n);
	return k + n;
}

/* One acme-challenge message exactly as HAProxy 2.6 encodes it for
 * `args path=path host=req.fhdr(host) src=src`. */
static size_t
lg_notify_payload(uint8_t *p, const char *tok, const char *host,
    const uint8_t src[4])
{
	char path[sizeof(LG_PREFIX) + LG_TOKEN_LEN];
	size_t n = 0;
	int plen;

	plen = snprintf(path, sizeof(path), "%s%s", LG_PREFIX, tok);
	n += lg_put_str(p + n, "acme-challenge", 14);
	p[n++] = 3;
	n += lg_put_str(p + n, "path", 4);
	p[n++] = SPOP_T_STRING;
	n += lg_put_str(p + n, path, (size_t)plen);
	n += lg_put_str(p + n, "host", 4);
	p[n++] = SPOP_T_STRING;
	n += lg_put_str(p + n, host, strlen(host));
	n += lg_put_str(p + n, "src", 3);
	p[n++] = SPOP_T_IPV4;
	memcpy(p + n, src, 4);
	return n + 4;
}

static size_t
lg_frame_put(uint8_t *p, uint8_t type, uint64_t sid, uint64_t fid,
    const uint8_t *payload, size_t len)
{
	size_t n;

	n = spop_frame_begin(p, LG_NOTIFY_MAX + 32, type, sid, fid);
	memcpy(p + n, payload, len);
	spop_frame_end(p, n + len);
	return n + len;
}

/* HAPROXY-HELLO as HAProxy 2.6.12 sends it (tests/unit/test_session.c). */
static size_t
lg_hello(uint8_t *p)
{
	uint8_t pl[256];
	size_t n = 0;

	n += lg_put_str(pl + n, "supported-versions", 18);
	pl[n++] = SPOP_T_STRING;
	n += lg_put_str(pl + n, "2.0", 3);
	n += lg_put_str(pl + n, "max-frame-size", 14);
	pl[n++] = SPOP_T_UINT32;
	n += spop_varint_put(pl + n, LG_MAX_FRAME);
	n += lg_put_str(pl + n, "capabilities", 12);
	pl[n++] = SPOP_T_STRING;
	n += lg_put_str(pl + n, "pipelining,async", 16);
	n += lg_put_str(pl + n, "engine-id", 9);
	pl[n++] = SPOP_T_STRING;
	n += lg_put_str(pl + n, "721d7e8f-be37-47e4-a29f-f88741f445ea", 36);
	return lg_frame_put(p, SPOP_FRM_HAPROXY_HELLO, 0, 0, pl, n);
}

static int
lg_tokens_make(struct lg *g, const char *host)
{
	uint8_t rnd[32], src[4] = { 10, 0, 0, 0 };
	char thumb[LG_TOKEN_LEN + 1];
	struct spop_data d;

	/* One account, one thumbprint: every key authorization ends with it. */
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -1;
	b64url_encode(thumb, rnd, sizeof(rnd));
	for (size_t i = 0; i < g->ntok; i++) {
		struct lg_token *t = &g->toks[i];

		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -1;
		b64url_encode(t->tok, rnd, sizeof(rnd));
		src[1] = (uint8_t)(i >> 16);
		src[2] = (uint8_t)(i >> 8);
		src[3] = (uint8_t)i;
		t->notify_len = lg_notify_payload(t->notify, t->tok, host, src);
		snprintf(t->ka, sizeof(t->ka), "%s.%s", t->tok, thumb);
		d.type = SPOP_T_STRING;
		d.s.p = (const uint8_t *)t->ka;
		d.s.len = strlen(t->ka);
		t->ack_len = i < g->npub ? spop_set_var_put(t->ack,
		    sizeof(t->ack), SPOP_SCOPE_TXN, (const uint8_t *)"keyauth", 7,
		    &d) : 0;
	}
	return 0;
}

/* --- the control socket ------------------------------------------------ */

static int
lg_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Reads reply lines until `want` of them ended with a terminal line (OK,
 * END, PONG or ERR...). Lines other than OK/END/PONG are errors unless
 * keep_lines is set (STATS: key value lines, printed into text). */
static int
lg_ctl_read(int fd, size_t want, char *text, size_t textcap)
{
	char buf[8192];
	size_t len = 0, got = 0, tlen = 0;

	while (got < want) {
		char *nl;
		ssize_t k = read(fd, buf + len, sizeof(buf) - len - 1);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		len += (size_t)k;
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			size_t l = (size_t)(nl - buf) + 1;

			*nl = '\0';
			if (strncmp(buf, "ERR", 3) == 0) {
				fprintf(stderr, "spop_loadgen: control: %s\n", buf);
				return -1;
			}
			if (strcmp(buf, "OK") == 0 || strcmp(buf, "END") == 0 ||
			    strcmp(buf, "PONG") == 0)
				got++;
			else if (text != NULL && tlen + l < textcap)
				tlen += (size_t)snprintf(text + tlen, textcap - tlen,
				    "%s\n", buf);
			memmove(buf, buf + l, len - l);
			len -= l;
		}
		if (len == sizeof(buf) - 1)
			return -1;
	}
	return 0;
}

static int
lg_publish(struct lg *g, int fd, const char *host)
{
	char *lines;
	size_t cap = LG_CTL_BATCH * (3 * LG_TOKEN_LEN + 300), len;
	int rc = -1;

	if ((lines = malloc(cap)) == NULL)
		return -1;
	for (size_t i = 0; i < g->npub; i += LG_CTL_BATCH) {
		size_t end = i + LG_CTL_BATCH < g->npub ? i + LG_CTL_BATCH : g->npub;

		len = 0;
		for (size_t j = i; j < end; j++)
			len += (size_t)snprintf(lines + len, cap - len,
			    "ADD %s %s %d %s\n", g->toks[j].tok,
			    g->toks[j].ka, LG_TTL, host);
		if (lg_write_all(fd, lines, len) < 0 ||
		    lg_ctl_read(fd, end - i, NULL, 0) < 0)
			goto out;
	}
	rc = 0;
out:
	free(lines);
	return rc;
}

/* STATS value of key, or -1. */
static long long
lg_stat(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = text; p != NULL && *p; ) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
			return strtoll(p + kl + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

static int
lg_stats(int fd, char *text, size_t cap)
{
	text[0] = '\0';
	if (lg_write_all(fd, "STATS\n", 6) < 0)
		return -1;
	return lg_ctl_read(fd, 1, text, cap);
}

/* --- SPOP connections -------------------------------------------------- */

static int
lg_read_frame(int fd, uint8_t *buf, size_t cap, struct spop_frame *f)
{
	size_t len = 0;
	enum spop_status st;

	for (;;) {
		ssize_t k = read(fd, buf + len, cap - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		len += (size_t)k;
		st = spop_frame_get(buf, len, LG_MAX_FRAME, f);
		if (st == SPOP_OK)
			return 0;
		if (st != SPOP_NEED_MORE || len == cap)
			return -1;
	}
}

/* Connects and does the HELLO; the socket is then non-blocking. */
static int
lg_conn_open(struct lg_conn *c, const struct addr *ad, size_t window)
{
	uint8_t buf[4096];
	struct spop_frame f;
	struct spop_data v;
	const uint8_t *p, *end, *name;
	size_t n, nlen, ring = 1;
	bool pipelining = false, vsn = false;
	int one = 1;

	memset(c, 0, sizeof(*c));
	if ((c->fd = addr_connect(ad, false)) < 0) {
		fprintf(stderr, "spop_loadgen: connect %s: %s\n", ad->text,
		    strerror(errno));
		return -1;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	n = lg_hello(buf);
	if (lg_write_all(c->fd, (const char *)buf, n) < 0 ||
	    lg_read_frame(c->fd, buf, sizeof(buf), &f) < 0 ||
	    f.type != SPOP_FRM_AGENT_HELLO) {
		fprintf(stderr, "spop_loadgen: no AGENT-HELLO from %s\n", ad->text);
		return -1;
	}
	p = f.payload;
	end = p + f.payload_len;
	while (p < end) {
		if (spop_kv_get(&p, end, &name, &nlen, &v) != SPOP_OK)
			return -1;
		if (spop_str_eq(name, nlen, "version") && v.type == SPOP_T_STRING)
			vsn = spop_str_eq(v.s.p, v.s.len, "2.0");
		else if (spop_str_eq(name, nlen, "capabilities") &&
		    v.type == SPOP_T_STRING)
			pipelining = spop_list_has(v.s.p, v.s.len, "pipelining");
	}
	if (!vsn || !pipelining) {
		fprintf(stderr, "spop_loadgen: AGENT-HELLO without version 2.0 "
		    "or pipelining\n");
		return -1;
	}
	while (ring < 2 * window)
		ring <<= 1;
	c->ring = calloc(ring, sizeof(*c->ring));
	c->ring_mask = ring - 1;
	c->out_cap = window * (LG_NOTIFY_MAX + 32);
	c->out = malloc(c->out_cap);
	c->in = malloc(LG_IN_MAX);
	if (c->ring == NULL || c->out == NULL || c->in == NULL)
		return -1;
	c->next_sid = 1;
	if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	return 0;
}

/* Queues NOTIFYs until the window is full. Stream-ids grow like HAProxy's;
 * each stream sends one frame, frame-id 1. */
static void
lg_conn_fill(struct lg *g, struct lg_conn *c)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	while (c->inflight < g->window &&
	    c->out_cap - c->out_len >= LG_NOTIFY_MAX + 32) {
		struct lg_slot *s = &c->ring[c->next_sid & c->ring_mask];
		const struct lg_token *t = &g->toks[c->next_tok];

		if (s->used)
			break;		/* an ACK far behind: wait for it */
		s->used = true;
		s->sid = c->next_sid;
		s->tok = (uint32_t)c->next_tok;
		c->out_len += lg_frame_put(c->out + c->out_len, SPOP_FRM_NOTIFY,
		    c->next_sid, 1, t->notify, t->notify_len);
		c->next_sid++;
		c->inflight++;
		g->sent++;
		if (++c->next_tok == g->ntok)
			c->next_tok = 0;
	}
}

static int
lg_conn_write(struct lg_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t k = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (k <= 0)
			return -1;
		c->out_off += (size_t)k;
	}
	return 0;
}

static void
lg_bad(struct lg *g, const char *why, const struct spop_frame *f)
{
	g->bad++;
	if (g->bad_shown++ < 5)
		fprintf(stderr, "spop_loadgen: bad ACK (%s): type %u stream-id "
		    "%" PRIu64 " frame-id %" PRIu64 " payload %zu bytes\n", why,
		    f->type, f->stream_id, f->frame_id, f->payload_len);
}

static void
lg_check_ack(struct lg *g, struct lg_conn *c, const struct spop_frame *f)
{
	struct lg_slot *s = &c->ring[f->stream_id & c->ring_mask];
	const struct lg_token *t;

	if (f->type != SPOP_FRM_ACK || !(f->flags & SPOP_FL_FIN)) {
		lg_bad(g, "not an ACK with FIN", f);
		g->failed = true;
		return;
	}
	if (!s->used || s->sid != f->stream_id || f->frame_id != 1) {
		lg_bad(g, "no such NOTIFY in flight", f);
		return;
	}
	s->used = false;
	c->inflight--;
	g->acks++;
	t = &g->toks[s->tok];
	if (f->payload_len != t->ack_len ||
	    memcmp(f->payload, t->ack, t->ack_len) != 0)
		lg_bad(g, s->tok < g->npub ? "hit without the key authorization" :
		    "miss with actions", f);
	else if (s->tok < g->npub)
		g->hits_ok++;
	else
		g->misses_ok++;
}

static int
lg_conn_read(struct lg *g, struct lg_conn *c)
{
	struct spop_frame f;
	size_t off = 0;
	enum spop_status st;

	for (;;) {
		ssize_t k = read(c->fd, c->in + c->in_len, LG_IN_MAX - c->in_len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (k <= 0) {
			fprintf(stderr, "spop_loadgen: the agent closed a connection\n");
			return -1;
		}
		c->in_len += (size_t)k;
		break;
	}
	while ((st = spop_frame_get(c->in + off, c->in_len - off, LG_MAX_FRAME,
	    &f)) == SPOP_OK) {
		lg_check_ack(g, c, &f);
		off += 4 + (size_t)f.len;
	}
	if (st != SPOP_NEED_MORE) {
		fprintf(stderr, "spop_loadgen: undecodable frame (status %d)\n", st);
		return -1;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return 0;
}

static int
lg_conn_update(int ep, struct lg_conn *c, size_t idx)
{
	bool want = c->out_off < c->out_len;
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
	    .data.u64 = idx };

	if (want == c->want_out)
		return 0;
	c->want_out = want;
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* --- main -------------------------------------------------------------- */

static void
lg_usage(FILE *f)
{
	fprintf(f,
	    "usage: spop_loadgen --agent ADDR --control ADDR [options]\n"
	    "  --conns N        SPOP connections (default 1)\n"
	    "  --window N       NOTIFYs in flight per connection (default 256)\n"
	    "  --duration S     measuring window in seconds (default 5)\n"
	    "  --warmup S       seconds of load before measuring (default 1)\n"
	    "  --tokens N       tokens published and requested in turn (default 1000)\n"
	    "  --misses N       unpublished tokens mixed in (default tokens/10)\n"
	    "  --host NAME      Host header, also the host tokens are published for\n");
}

static bool
lg_num(const char *s, unsigned long lo, unsigned long hi, unsigned long *v)
{
	char *end;

	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *v >= lo && *v <= hi;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agent", required_argument, NULL, 'a' },
		{ "control", required_argument, NULL, 'C' },
		{ "conns", required_argument, NULL, 'c' },
		{ "window", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "tokens", required_argument, NULL, 'n' },
		{ "misses", required_argument, NULL, 'm' },
		{ "host", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lg g = { 0 };
	struct lg_conn *conns = NULL;
	struct addr agent, ctl;
	const char *agent_s = NULL, *ctl_s = NULL, *host = "www.example.com";
	unsigned long nconns = 1, window = 256, duration = 5, warmup = 1;
	unsigned long ntok = 1000, nmiss = (unsigned long)-1;
	char err[256], stats0[4096], stats1[4096];
	uint64_t acks0 = 0, hits0 = 0, misses0 = 0;
	double t0, t_start = 0, t_end, now;
	bool measuring = false;
	int o, ep = -1, cfd = -1, rc = 1;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		bool ok = true;

		switch (o) {
		case 'a': agent_s = optarg; break;
		case 'C': ctl_s = optarg; break;
		case 'c': ok = lg_num(optarg, 1, 1024, &nconns); break;
		case 'w': ok = lg_num(optarg, 1, 65536, &window); break;
		case 'd': ok = lg_num(optarg, 1, 3600, &duration); break;
		case 'W': ok = lg_num(optarg, 0, 3600, &warmup); break;
		case 'n': ok = lg_num(optarg, 1, 1000000, &ntok); break;
		case 'm': ok = lg_num(optarg, 0, 1000000, &nmiss); break;
		case 'H': host = optarg; break;
		case 'h': lg_usage(stdout); return 0;
		default: lg_usage(stderr); return 2;
		}
		if (!ok) {
			fprintf(stderr, "spop_loadgen: bad value '%s'\n", optarg);
			return 2;
		}
	}
	if (agent_s == NULL || ctl_s == NULL || optind != argc ||
	    strlen(host) > 200) {
		lg_usage(stderr);
		return 2;
	}
	if (addr_parse(&agent, agent_s, err, sizeof(err)) < 0 ||
	    addr_parse(&ctl, ctl_s, err, sizeof(err)) < 0) {
		fprintf(stderr, "spop_loadgen: %s\n", err);
		return 2;
	}
	if (nmiss == (unsigned long)-1)
		nmiss = ntok / 10;
	g.npub = ntok;
	g.ntok = ntok + nmiss;
	g.window = window;
	if ((g.toks = calloc(g.ntok, sizeof(*g.toks))) == NULL ||
	    (conns = calloc(nconns, sizeof(*conns))) == NULL ||
	    lg_tokens_make(&g, host) < 0) {
		fprintf(stderr, "spop_loadgen: out of memory\n");
		goto out;
	}
	if ((cfd = addr_connect(&ctl, false)) < 0) {
		fprintf(stderr, "spop_loadgen: control %s: %s\n", ctl_s, strerror(errno));
		goto out;
	}
	if (lg_publish(&g, cfd, host) < 0) {
		fprintf(stderr, "spop_loadgen: publishing the tokens failed\n");
		goto out;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		goto out;
	for (size_t i = 0; i < nconns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };

		if (lg_conn_open(&conns[i], &agent, window) < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0)
			goto out;
		/* Spread the connections over the token list. */
		conns[i].next_tok = (g.ntok * i) / nconns;
	}
	if (lg_stats(cfd, stats0, sizeof(stats0)) < 0)
		goto out;

	t0 = lg_now();
	t_end = t0 + (double)warmup + (double)duration;
	for (size_t i = 0; i < nconns; i++) {
		lg_conn_fill(&g, &conns[i]);
		if (lg_conn_write(&conns[i]) < 0 ||
		    lg_conn_update(ep, &conns[i], i) < 0)
			goto fail;
	}
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 10);

		if (n < 0 && errno != EINTR)
			goto fail;
		for (int k = 0; k < n; k++) {
			struct lg_conn *c = &conns[evs[k].data.u64];

			if ((evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
			    lg_conn_read(&g, c) < 0)
				goto fail;
			lg_conn_fill(&g, c);
			if (lg_conn_write(c) < 0 ||
			    lg_conn_update(ep, c, evs[k].data.u64) < 0)
				goto fail;
		}
		if (g.failed)
			goto fail;
		now = lg_now();
		if (!measuring && now >= t0 + (double)warmup) {
			measuring = true;
			t_start = now;
			acks0 = g.acks;
			hits0 = g.hits_ok;
			misses0 = g.misses_ok;
		}
		if (now >= t_end)
			break;
	}
	now = lg_now();
	/* The ACKs still in flight are not waited for: close, then read STATS. */
	for (size_t i = 0; i < nconns; i++) {
		close(conns[i].fd);
		conns[i].fd = -1;
	}
	if (lg_stats(cfd, stats1, sizeof(stats1)) < 0)
		goto out;
	{
		double secs = now - t_start;
		uint64_t acks = g.acks - acks0;

		printf("spop_loadgen: %lu connection(s), window %lu, %zu tokens "
		    "(%lu unpublished), host %s\n", nconns, window, g.ntok, nmiss, host);
		printf("  %" PRIu64 " ACKs in %.2f s: %.0f NOTIFY->ACK/s "
		    "(hits ok %" PRIu64 ", misses ok %" PRIu64 ", bad %" PRIu64 ")\n",
		    acks, secs, (double)acks / secs, g.hits_ok - hits0,
		    g.misses_ok - misses0, g.bad);
		printf("  agent STATS: notifies +%lld, hits +%lld, misses +%lld, "
		    "protocol_errors +%lld\n",
		    lg_stat(stats1, "notifies") - lg_stat(stats0, "notifies"),
		    lg_stat(stats1, "hits") - lg_stat(stats0, "hits"),
		    lg_stat(stats1, "misses") - lg_stat(stats0, "misses"),
		    lg_stat(stats1, "protocol_errors") -
		    lg_stat(stats0, "protocol_errors"));
		printf("RESULT conns=%lu window=%lu acks=%" PRIu64 " seconds=%.3f "
		    "rate=%.0f sent=%" PRIu64 " hits_ok=%" PRIu64 " misses_ok=%" PRIu64
		    " bad=%" PRIu64 " agent_notifies=%lld\n", nconns, window, acks,
		    secs, (double)acks / secs, g.sent, g.hits_ok, g.misses_ok, g.bad,
		    lg_stat(stats1, "notifies") - lg_stat(stats0, "notifies"));
	}
	rc = g.bad == 0 && g.acks > 0 ? 0 : 1;
	goto out;
fail:
	fprintf(stderr, "spop_loadgen: load failed after %" PRIu64 " ACKs "
	    "(%" PRIu64 " bad)\n", g.acks, g.bad);
out:
	for (size_t i = 0; conns != NULL && i < nconns; i++) {
		if (conns[i].fd > 0)
			close(conns[i].fd);
		free(conns[i].ring);
		free(conns[i].out);
		free(conns[i].in);
	}
	free(conns);
	free(g.toks);
	if (ep >= 0)
		close(ep);
	if (cfd >= 0)
		close(cfd);
	return rc;
}
