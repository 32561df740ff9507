/* test_session.c - the sans-I/O SPOP session against frames captured from the
 * real HAProxy, plus every malformed case, pipelining, split input,
 * back-pressure and reads that end at a PROT_NONE guard page. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/buf.h"
#include "spoa/session.h"
#include "spoa/spop.h"
#include "tap.h"

/*
 * Golden frames, captured on loopback from HAProxy 2.6.12-1+deb12u4
 * (/usr/sbin/haproxy, Debian 12) by tests/unit/capture/spop_capture.py: a
 * python agent answering AGENT-HELLO (pipelining, 16380) and an ACK, with
 *     global   nbthread 1
 *     frontend fe_http  (mode http, bind 127.0.0.1:<port>)
 *         filter spoe engine acme config spoe.conf
 *     backend be_agent  (mode tcp)
 *         option spop-check
 *         server a1 127.0.0.1:<agent port> check inter 1s
 *   spoe.conf:
 *     spoe-agent acme-agent: messages acme-challenge, option var-prefix acme,
 *         timeout hello 2s, timeout idle 1s, timeout processing 500ms
 *     spoe-message acme-challenge
 *         args path=path host=req.fhdr(host) src=src
 *         event on-frontend-http-request if { path_beg /.well-known/acme-challenge/ }
 * and `curl -H 'Host: example.com' http://127.0.0.1:<port>/.well-known/acme-challenge/sometoken`.
 * HAProxy served the ACK's variable back to curl ("sometoken.thumb"), so
 * golden_ack below is a reply HAProxy 2.6.12 accepted. The DISCONNECT is
 * what HAProxy sent when `timeout idle` (status 2) expired.
 */
static const uint8_t golden_hello[] = {  /* 133 bytes; engine-id is a per-thread UUID */
	0x00, 0x00, 0x00, 0x81, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x12,
	0x73, 0x75, 0x70, 0x70, 0x6f, 0x72, 0x74, 0x65, 0x64, 0x2d, 0x76, 0x65,
	0x72, 0x73, 0x69, 0x6f, 0x6e, 0x73, 0x08, 0x03, 0x32, 0x2e, 0x30, 0x0e,
	0x6d, 0x61, 0x78, 0x2d, 0x66, 0x72, 0x61, 0x6d, 0x65, 0x2d, 0x73, 0x69,
	0x7a, 0x65, 0x03, 0xfc, 0xf0, 0x06, 0x0c, 0x63, 0x61, 0x70, 0x61, 0x62,
	0x69, 0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x08, 0x10, 0x70, 0x69, 0x70,
	0x65, 0x6c, 0x69, 0x6e, 0x69, 0x6e, 0x67, 0x2c, 0x61, 0x73, 0x79, 0x6e,
	0x63, 0x09, 0x65, 0x6e, 0x67, 0x69, 0x6e, 0x65, 0x2d, 0x69, 0x64, 0x08,
	0x24, 0x37, 0x32, 0x31, 0x64, 0x37, 0x65, 0x38, 0x66, 0x2d, 0x62, 0x65,
	0x33, 0x37, 0x2d, 0x34, 0x37, 0x65, 0x34, 0x2d, 0x61, 0x32, 0x39, 0x66,
	0x2d, 0x66, 0x38, 0x38, 0x37, 0x34, 0x31, 0x66, 0x34, 0x34, 0x35, 0x65,
	0x61,
};
static const uint8_t golden_hello_check[] = {  /* 82 bytes: option spop-check */
	0x00, 0x00, 0x00, 0x4e, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x12,
	0x73, 0x75, 0x70, 0x70, 0x6f, 0x72, 0x74, 0x65, 0x64, 0x2d, 0x76, 0x65,
	0x72, 0x73, 0x69, 0x6f, 0x6e, 0x73, 0x08, 0x03, 0x32, 0x2e, 0x30, 0x0e,
	0x6d, 0x61, 0x78, 0x2d, 0x66, 0x72, 0x61, 0x6d, 0x65, 0x2d, 0x73, 0x69,
	0x7a, 0x65, 0x03, 0xfc, 0xf0, 0x06, 0x0c, 0x63, 0x61, 0x70, 0x61, 0x62,
	0x69, 0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x08, 0x00, 0x0b, 0x68, 0x65,
	0x61, 0x6c, 0x74, 0x68, 0x63, 0x68, 0x65, 0x63, 0x6b, 0x11,
};
static const uint8_t golden_notify[] = {  /* 98 bytes: stream-id 0, frame-id 1 */
	0x00, 0x00, 0x00, 0x5e, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x0e,
	0x61, 0x63, 0x6d, 0x65, 0x2d, 0x63, 0x68, 0x61, 0x6c, 0x6c, 0x65, 0x6e,
	0x67, 0x65, 0x03, 0x04, 0x70, 0x61, 0x74, 0x68, 0x08, 0x25, 0x2f, 0x2e,
	0x77, 0x65, 0x6c, 0x6c, 0x2d, 0x6b, 0x6e, 0x6f, 0x77, 0x6e, 0x2f, 0x61,
	0x63, 0x6d, 0x65, 0x2d, 0x63, 0x68, 0x61, 0x6c, 0x6c, 0x65, 0x6e, 0x67,
	0x65, 0x2f, 0x73, 0x6f, 0x6d, 0x65, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x04,
	0x68, 0x6f, 0x73, 0x74, 0x08, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,
	0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x03, 0x73, 0x72, 0x63, 0x06, 0x7f, 0x00,
	0x00, 0x01,
};
static const uint8_t golden_disconnect[] = {  /* 53 bytes: status 2, idle timeout */
	0x00, 0x00, 0x00, 0x31, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x0b,
	0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x2d, 0x63, 0x6f, 0x64, 0x65, 0x03,
	0x02, 0x07, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x08, 0x12, 0x61,
	0x20, 0x74, 0x69, 0x6d, 0x65, 0x6f, 0x75, 0x74, 0x20, 0x6f, 0x63, 0x63,
	0x75, 0x72, 0x72, 0x65, 0x64,
};
/* The capture agent's ACK to golden_notify, which HAProxy applied. */
static const uint8_t golden_ack[] = {
	0x00, 0x00, 0x00, 0x23, 0x67, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
	0x01, 0x03, 0x02, 0x07, 'k', 'e', 'y', 'a', 'u', 't', 'h',
	0x08, 0x0f, 's', 'o', 'm', 'e', 't', 'o', 'k', 'e', 'n', '.',
	't', 'h', 'u', 'm', 'b',
};
/* SPOP-NOTES §4, the AGENT-HELLO the capture agent sent to the normal HELLO. */
static const uint8_t agent_hello_pipelining[] =
    "\x00\x00\x00\x40\x65\x00\x00\x00\x01\x00\x00"
    "\x07" "version" "\x08\x03" "2.0"
    "\x0e" "max-frame-size" "\x03\xfc\xf0\x06"
    "\x0c" "capabilities" "\x08\x0a" "pipelining";
/* ... and to the health check: no capability. */
static const uint8_t agent_hello_check[] =
    "\x00\x00\x00\x36\x65\x00\x00\x00\x01\x00\x00"
    "\x07" "version" "\x08\x03" "2.0"
    "\x0e" "max-frame-size" "\x03\xfc\xf0\x06"
    "\x0c" "capabilities" "\x08\x00";

#define OUT_MAX (1u << 20)

/* --- a handler like the agent's: answer token.thumb for acme-challenge --- */

enum hmode { H_KEYAUTH, H_FILL, H_NONE };

struct hctx {
	enum hmode mode;
	int calls;
	int fill_ok;		/* H_FILL: set-vars that fit */
	int fill_fail;
	unsigned fill_actions;	/* H_FILL: spop_ack_actions() at the end */
	uint32_t fill_frame_max;	/* and spop_ack_frame_max() */
	struct spop_message last;	/* views: only valid during the feed */
	unsigned last_nargs;
	char path[128];
	char host[64];
	uint8_t src[4];
	enum spop_type src_type;
};

static const struct spop_arg *
find_arg(const struct spop_message *m, const char *name)
{
	for (unsigned i = 0; i < m->nargs; i++)
		if (spop_str_eq(m->args[i].name, m->args[i].name_len, name))
			return &m->args[i];
	return NULL;
}

static void
copy_str(char *dst, size_t cap, const struct spop_arg *a)
{
	size_t n = 0;

	if (a != NULL && a->val.type == SPOP_T_STRING)
		n = a->val.s.len < cap - 1 ? a->val.s.len : cap - 1;
	if (n)
		memcpy(dst, a->val.s.p, n);
	dst[n] = '\0';
}

static void
handler(void *ctx, const struct spop_message *msg, struct spop_ack *ack)
{
	struct hctx *h = ctx;
	const struct spop_arg *a;
	char val[256];
	const char *tok;

	h->calls++;
	h->last_nargs = msg->nargs;
	h->last = *msg;
	if (h->mode == H_NONE)
		return;
	if (h->mode == H_FILL) {
		uint8_t big[100], small[10];

		memset(big, 'x', sizeof(big));
		memset(small, 'y', sizeof(small));
		while (spop_ack_set_var_str(ack, SPOP_SCOPE_TXN, "keyauth", 7, big,
		    sizeof(big)) == 0)
			h->fill_ok++;
		h->fill_fail++;
		if (spop_ack_set_var_str(ack, SPOP_SCOPE_TXN, "keyauth", 7, small,
		    sizeof(small)) == 0)
			h->fill_ok++;
		else
			h->fill_fail++;
		h->fill_actions = spop_ack_actions(ack);
		h->fill_frame_max = spop_ack_frame_max(ack);
		return;
	}
	if (!spop_str_eq(msg->name, msg->name_len, "acme-challenge"))
		return;
	copy_str(h->path, sizeof(h->path), find_arg(msg, "path"));
	copy_str(h->host, sizeof(h->host), find_arg(msg, "host"));
	if ((a = find_arg(msg, "src")) != NULL) {
		h->src_type = a->val.type;
		memcpy(h->src, a->val.ip, 4);
	}
	if ((tok = strrchr(h->path, '/')) == NULL)
		return;
	snprintf(val, sizeof(val), "%s.thumb", tok + 1);
	spop_ack_set_var_str(ack, SPOP_SCOPE_TXN, "keyauth", 7,
	    (const uint8_t *)val, strlen(val));
}

/* --- helpers --------------------------------------------------------- */

struct fx {
	struct spop_session s;
	struct spop_session_stats st;
	struct hctx h;
	struct buf out;
};

static void
fx_init(struct fx *f, uint32_t max_frame, size_t out_max)
{
	memset(f, 0, sizeof(*f));
	buf_init(&f->out, out_max);
	spop_session_init(&f->s, max_frame, handler, &f->h, &f->st);
}

static size_t
fx_feed(struct fx *f, const void *p, size_t n)
{
	return spop_session_feed(&f->s, p, n, &f->out);
}

/* A hand-built frame; flags as given (FIN is not implied). */
static size_t
mkframe(uint8_t *buf, uint8_t type, uint32_t flags, uint64_t sid,
    uint64_t fid, const void *payload, size_t plen)
{
	size_t n = spop_frame_begin(buf, 64, type, sid, fid);

	buf[5] = (uint8_t)(flags >> 24);
	buf[6] = (uint8_t)(flags >> 16);
	buf[7] = (uint8_t)(flags >> 8);
	buf[8] = (uint8_t)flags;
	if (plen)
		memcpy(buf + n, payload, plen);
	spop_frame_end(buf, n + plen);
	return n + plen;
}

static size_t
put_str(uint8_t *p, const char *s)
{
	size_t n = spop_varint_put(p, strlen(s));

	memcpy(p + n, s, strlen(s));
	return n + strlen(s);
}

/* A HAPROXY-HELLO; NULL or -1 leaves an item out. */
static size_t
mkhello(uint8_t *buf, const char *versions, int64_t mfs, const char *caps,
    bool hc)
{
	uint8_t pl[512];
	size_t n = 0;

	if (versions != NULL) {
		n += put_str(pl + n, "supported-versions");
		pl[n++] = SPOP_T_STRING;
		n += put_str(pl + n, versions);
	}
	if (mfs >= 0) {
		n += put_str(pl + n, "max-frame-size");
		pl[n++] = SPOP_T_UINT32;
		n += spop_varint_put(pl + n, (uint64_t)mfs);
	}
	if (caps != NULL) {
		n += put_str(pl + n, "capabilities");
		pl[n++] = SPOP_T_STRING;
		n += put_str(pl + n, caps);
	}
	if (hc) {
		n += put_str(pl + n, "healthcheck");
		pl[n++] = SPOP_T_BOOL | SPOP_DATA_FL_TRUE;
	}
	return mkframe(buf, SPOP_FRM_HAPROXY_HELLO, SPOP_FL_FIN, 0, 0, pl, n);
}

/* A NOTIFY with one acme-challenge message for /.well-known/acme-challenge/<tok>. */
static size_t
mknotify(uint8_t *buf, uint64_t sid, uint64_t fid, const char *tok)
{
	uint8_t pl[512];
	char path[256];
	size_t n = 0;

	snprintf(path, sizeof(path), "/.well-known/acme-challenge/%s", tok);
	n += put_str(pl + n, "acme-challenge");
	pl[n++] = 2;
	n += put_str(pl + n, "path");
	pl[n++] = SPOP_T_STRING;
	n += put_str(pl + n, path);
	n += put_str(pl + n, "host");
	pl[n++] = SPOP_T_STRING;
	n += put_str(pl + n, "example.com");
	return mkframe(buf, SPOP_FRM_NOTIFY, SPOP_FL_FIN, sid, fid, pl, n);
}

/* The status-code of the AGENT-DISCONNECT that ends out, or -1. */
static long
out_disconnect_status(const struct buf *out)
{
	struct spop_frame f, last;
	size_t off = 0;
	bool any = false;
	const uint8_t *p, *end, *name;
	size_t nlen;
	struct spop_data v;
	long status = -1;

	while (off < out->len &&
	    spop_frame_get(out->p + off, out->len - off, UINT32_MAX, &f) == SPOP_OK) {
		last = f;
		any = true;
		off += 4 + f.len;
	}
	if (!any || off != out->len || last.type != SPOP_FRM_AGENT_DISCON ||
	    last.flags != SPOP_FL_FIN || last.stream_id != 0 || last.frame_id != 0)
		return -1;
	p = last.payload;
	end = p + last.payload_len;
	while (p < end) {
		if (spop_kv_get(&p, end, &name, &nlen, &v) != SPOP_OK)
			return -1;
		if (spop_str_eq(name, nlen, "status-code") && v.type == SPOP_T_UINT32)
			status = (long)v.u;
	}
	return status;
}

static void
test_golden_hello(void)
{
	struct fx f;

	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	is_int(fx_feed(&f, golden_hello, sizeof(golden_hello)), sizeof(golden_hello),
	    "golden HELLO: consumed");
	is_mem(f.out.p, f.out.len, agent_hello_pipelining, sizeof(agent_hello_pipelining) - 1,
	    "golden HELLO: AGENT-HELLO version 2.0, 16380, pipelining (not async)");
	is_int(f.s.state, SPOP_ST_READY, "golden HELLO: READY");
	ok(f.s.pipelining && !f.s.healthcheck, "golden HELLO: pipelining, not a check");
	is_int(f.s.max_frame, 16380, "golden HELLO: max_frame 16380");
	buf_fini(&f.out);

	/* A smaller max of ours wins. */
	fx_init(&f, 4096, OUT_MAX);
	fx_feed(&f, golden_hello, sizeof(golden_hello));
	is_int(f.s.max_frame, 4096, "ours 4096 vs HAProxy 16380: 4096");
	struct spop_frame fr;
	const uint8_t *p, *end, *name;
	size_t nlen;
	struct spop_data v;
	uint64_t mfs = 0;
	if (spop_frame_get(f.out.p, f.out.len, UINT32_MAX, &fr) == SPOP_OK) {
		p = fr.payload;
		end = p + fr.payload_len;
		while (p < end && spop_kv_get(&p, end, &name, &nlen, &v) == SPOP_OK)
			if (spop_str_eq(name, nlen, "max-frame-size"))
				mfs = v.u;
	}
	is_int(mfs, 4096, "the AGENT-HELLO announces 4096");
	buf_fini(&f.out);

	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	is_int(fx_feed(&f, golden_hello_check, sizeof(golden_hello_check)),
	    sizeof(golden_hello_check), "golden spop-check HELLO: consumed");
	is_mem(f.out.p, f.out.len, agent_hello_check, sizeof(agent_hello_check) - 1,
	    "spop-check: AGENT-HELLO with empty capabilities");
	ok(spop_session_closing(&f.s) && f.s.healthcheck, "spop-check: then CLOSING");
	is_int(f.st.protocol_errors, 0, "spop-check: no protocol error");
	is_int(fx_feed(&f, golden_notify, sizeof(golden_notify)), 0,
	    "spop-check: nothing consumed after CLOSING");
	buf_fini(&f.out);

	fx_init(&f, 100, OUT_MAX);
	is_int(f.s.max_frame, SPOP_MIN_FRAME, "init clamps max_frame to 256");
	buf_fini(&f.out);
}

static void
test_golden_notify(void)
{
	struct fx f;
	uint8_t both[sizeof(golden_hello) + sizeof(golden_notify)];

	memcpy(both, golden_hello, sizeof(golden_hello));
	memcpy(both + sizeof(golden_hello), golden_notify, sizeof(golden_notify));
	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	is_int(fx_feed(&f, both, sizeof(both)), sizeof(both), "HELLO+NOTIFY in one read: consumed");
	ok(f.out.len > sizeof(agent_hello_pipelining) - 1, "two replies");
	size_t hl = sizeof(agent_hello_pipelining) - 1;
	is_mem(f.out.p + hl, f.out.len - hl, golden_ack, sizeof(golden_ack),
	    "golden NOTIFY (stream-id 0): the ACK HAProxy 2.6.12 applied, byte for byte");
	is_int(f.h.calls, 1, "handler called once");
	is_int(f.h.last_nargs, 3, "three args");
	is_str(f.h.path, "/.well-known/acme-challenge/sometoken", "arg path");
	is_str(f.h.host, "example.com", "arg host");
	ok(f.h.src_type == SPOP_T_IPV4 && memcmp(f.h.src, "\x7f\0\0\x01", 4) == 0,
	    "arg src is IPV4 127.0.0.1");
	is_int(f.st.notifies, 1, "stats: one notify");
	buf_fini(&f.out);

	/* HAPROXY-DISCONNECT(2) -> AGENT-DISCONNECT(0). */
	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	fx_feed(&f, golden_hello, sizeof(golden_hello));
	f.out.len = 0;
	is_int(fx_feed(&f, golden_disconnect, sizeof(golden_disconnect)),
	    sizeof(golden_disconnect), "golden DISCONNECT consumed");
	is_int(out_disconnect_status(&f.out), 0, "answered by AGENT-DISCONNECT status 0");
	ok(spop_session_closing(&f.s) && f.s.peer_status == 2 &&
	    f.s.disconnect_status == 0, "CLOSING, peer status 2 kept");
	is_int(f.st.protocol_errors, 0, "not a protocol error");
	buf_fini(&f.out);
}

/* Every truncation of every golden frame: NEED_MORE, nothing consumed,
 * nothing written, state unchanged. */
static void
test_truncations(void)
{
	struct {
		const char *name;
		const uint8_t *p;
		size_t n;
		bool after_hello;
	} g[] = {
		{ "HELLO", golden_hello, sizeof(golden_hello), false },
		{ "check HELLO", golden_hello_check, sizeof(golden_hello_check), false },
		{ "NOTIFY", golden_notify, sizeof(golden_notify), true },
		{ "DISCONNECT", golden_disconnect, sizeof(golden_disconnect), true },
	};

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		int bad_codec = 0, bad_session = 0;
		struct spop_frame fr;

		for (size_t k = 0; k < g[i].n; k++) {
			uint8_t *copy = malloc(k ? k : 1);
			struct fx f;

			memcpy(copy, g[i].p, k);
			if (spop_frame_get(copy, k, SPOP_DEFAULT_FRAME, &fr) != SPOP_NEED_MORE)
				bad_codec++;
			fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
			if (g[i].after_hello) {
				fx_feed(&f, golden_hello, sizeof(golden_hello));
				f.out.len = 0;
			}
			enum spop_state before = f.s.state;
			if (fx_feed(&f, copy, k) != 0 || f.out.len != 0 || f.s.state != before)
				bad_session++;
			buf_fini(&f.out);
			free(copy);
		}
		is_int(bad_codec, 0, "%s: all %zu truncations are NEED_MORE", g[i].name, g[i].n);
		is_int(bad_session, 0, "%s: no truncation is consumed or answered", g[i].name);
	}
}

/* Feeding like a shell: keep what was not consumed, append what arrives. */
static void
feed_chunked(struct fx *f, const uint8_t *conv, size_t n, size_t (*next)(size_t))
{
	struct buf in;
	size_t off = 0, c, used;

	buf_init(&in, 1 << 20);
	while (off < n && !spop_session_closing(&f->s)) {
		c = next(off);
		if (c > n - off)
			c = n - off;
		buf_append(&in, conv + off, c);
		off += c;
		used = fx_feed(f, in.p, in.len);
		buf_consume(&in, used);
	}
	buf_fini(&in);
}

static size_t
one(size_t off)
{
	return 1;
}

static size_t
jumpy(size_t off)
{
	return (off * 7 + 3) % 17 + 1;
}

static void
test_split(void)
{
	uint8_t conv[4096];
	size_t n = 0;
	struct fx whole, f1, f2;

	memcpy(conv + n, golden_hello, sizeof(golden_hello));
	n += sizeof(golden_hello);
	memcpy(conv + n, golden_notify, sizeof(golden_notify));
	n += sizeof(golden_notify);
	n += mknotify(conv + n, 3, 2, "tok-3");
	n += mknotify(conv + n, 1ull << 40, 7, "tok-big");
	memcpy(conv + n, golden_disconnect, sizeof(golden_disconnect));
	n += sizeof(golden_disconnect);

	fx_init(&whole, SPOP_DEFAULT_FRAME, OUT_MAX);
	is_int(fx_feed(&whole, conv, n), n, "conversation fed whole: all consumed");
	is_int(out_disconnect_status(&whole.out), 0, "it ends with AGENT-DISCONNECT(0)");
	is_int(whole.st.notifies, 3, "three ACKs");

	fx_init(&f1, SPOP_DEFAULT_FRAME, OUT_MAX);
	feed_chunked(&f1, conv, n, one);
	is_mem(f1.out.p, f1.out.len, whole.out.p, whole.out.len,
	    "byte by byte: the same output as whole");
	is_int(f1.h.calls, 3, "byte by byte: three handler calls");

	fx_init(&f2, SPOP_DEFAULT_FRAME, OUT_MAX);
	feed_chunked(&f2, conv, n, jumpy);
	is_mem(f2.out.p, f2.out.len, whole.out.p, whole.out.len,
	    "in chunks of 1..17 bytes: the same output");
	buf_fini(&whole.out);
	buf_fini(&f1.out);
	buf_fini(&f2.out);
}

static uint64_t
pipe_sid(unsigned i)
{
	/* 0, small, two-byte and ten-byte ids. */
	return i % 4 == 0 ? i : i % 4 == 1 ? i * 7919ull :
	    i % 4 == 2 ? (1ull << 40) + i : UINT64_MAX - i;
}

static void
test_pipelined(void)
{
	enum { N = 1000 };
	uint8_t *in = malloc((size_t)N * 128 + 256);
	size_t n = 0, off;
	struct fx f;
	struct spop_frame fr;
	int bad = 0, count = 0, vars = 0;

	n += mkhello(in, "2.0", 16380, "pipelining,async", false);
	for (unsigned i = 0; i < N; i++) {
		char tok[32];

		snprintf(tok, sizeof(tok), "t%u", i);
		n += mknotify(in + n, pipe_sid(i), i % 5 + 1, tok);
	}
	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	is_int(fx_feed(&f, in, n), n, "HELLO + %d NOTIFYs in one buffer: all consumed", N);
	off = 0;
	if (spop_frame_get(f.out.p, f.out.len, UINT32_MAX, &fr) == SPOP_OK &&
	    fr.type == SPOP_FRM_AGENT_HELLO)
		off = 4 + fr.len;
	while (off < f.out.len &&
	    spop_frame_get(f.out.p + off, f.out.len - off, UINT32_MAX, &fr) == SPOP_OK) {
		const uint8_t *p = fr.payload, *end = p + fr.payload_len;
		const uint8_t *name;
		size_t nlen;
		struct spop_data v;
		char want[32];

		snprintf(want, sizeof(want), "t%d.thumb", count);
		if (fr.type != SPOP_FRM_ACK || fr.stream_id != pipe_sid((unsigned)count) ||
		    fr.frame_id != (uint64_t)(count % 5 + 1))
			bad++;
		/* set-var: 01 03 scope, then name and value like a KV item */
		if (end - p >= 3 && p[0] == SPOP_ACT_SET_VAR && p[1] == 3 &&
		    p[2] == SPOP_SCOPE_TXN) {
			p += 3;
			if (spop_kv_get(&p, end, &name, &nlen, &v) == SPOP_OK &&
			    spop_str_eq(name, nlen, "keyauth") && v.type == SPOP_T_STRING &&
			    spop_str_eq(v.s.p, v.s.len, want) && p == end)
				vars++;
		}
		count++;
		off += 4 + fr.len;
	}
	is_int(count, N, "%d ACKs", N);
	is_int(bad, 0, "each ACK carries its NOTIFY's stream-id and frame-id, in order");
	is_int(vars, N, "each ACK holds its own set-var txn keyauth");
	ok(off == f.out.len, "and nothing else");
	is_int(f.st.notifies, N, "stats: %d notifies", N);
	buf_fini(&f.out);

	/* Back-pressure: out can hold two max frames only. */
	struct buf acks;
	size_t pos = 0, used;
	int rounds = 0;
	bool partial = false;

	fx_init(&f, 256, 2 * (4 + 256));
	buf_init(&acks, OUT_MAX);
	while (pos < n && rounds < 100000) {
		used = fx_feed(&f, in + pos, n - pos);
		if (used < n - pos && used > 0)
			partial = true;
		pos += used;
		buf_append(&acks, f.out.p, f.out.len);
		buf_consume(&f.out, f.out.len);
		rounds++;
	}
	is_int(pos, n, "back-pressure: everything is consumed in the end");
	ok(partial, "back-pressure: feed stopped early while out was full");
	is_int(f.st.notifies, N, "back-pressure: %d ACKs", N);
	ok(!spop_session_closing(&f.s), "back-pressure is not an error");
	buf_fini(&acks);
	buf_fini(&f.out);

	/* An out that cannot take one max frame: resource error (13). */
	fx_init(&f, 16380, 200);
	fx_feed(&f, in, n);
	is_int(out_disconnect_status(&f.out), SPOP_E_RES, "out max below one frame: status 13");
	buf_fini(&f.out);
	free(in);
}

struct bad_case {
	const char *what;
	bool hello_first;
	uint32_t hello_mfs;	/* HAProxy's max-frame-size in that HELLO */
	uint8_t frame[600];
	size_t n;
	int status;
};

static void
run_bad(struct bad_case *c)
{
	struct fx f;
	uint8_t hb[512];
	size_t hn, used;

	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	if (c->hello_first) {
		hn = mkhello(hb, "2.0", c->hello_mfs, "pipelining", false);
		fx_feed(&f, hb, hn);
		f.out.len = 0;
	}
	used = fx_feed(&f, c->frame, c->n);
	long st = out_disconnect_status(&f.out);
	if (!ok(st == c->status && spop_session_closing(&f.s) &&
	    f.s.disconnect_status == (uint32_t)c->status &&
	    f.st.protocol_errors == 1 && used == 0,
	    "%s: AGENT-DISCONNECT status %d, CLOSING, counted", c->what, c->status))
		printf("#   status %ld, closing %d, errors %llu, used %zu\n", st,
		    spop_session_closing(&f.s), (unsigned long long)f.st.protocol_errors, used);
	is_int(fx_feed(&f, golden_notify, sizeof(golden_notify)), 0,
	    "%s: nothing consumed afterwards", c->what);
	is_int(f.h.calls, 0, "%s: no handler call", c->what);
	buf_fini(&f.out);
}

static void
test_malformed(void)
{
	static struct bad_case c;
	uint8_t pl[600];
	size_t n;

	memset(&c, 0, sizeof(c));
	c = (struct bad_case){ "NOTIFY before HELLO", false, 0, {0}, 0, 4 };
	memcpy(c.frame, golden_notify, sizeof(golden_notify));
	c.n = sizeof(golden_notify);
	run_bad(&c);

	c = (struct bad_case){ "HELLO twice", true, 16380, {0}, 0, 4 };
	memcpy(c.frame, golden_hello, sizeof(golden_hello));
	c.n = sizeof(golden_hello);
	run_bad(&c);

	c = (struct bad_case){ "frame above the negotiated 300", true, 300, {0}, 0, 3 };
	memset(pl, 0, sizeof(pl));
	c.n = mkframe(c.frame, SPOP_FRM_NOTIFY, SPOP_FL_FIN, 1, 1, pl, 300 - 6);
	run_bad(&c);

	c = (struct bad_case){ "frame above our max before HELLO", false, 0, {0}, 0, 3 };
	memcpy(c.frame, "\x00\x00\x3f\xfd\x01", 5);	/* LEN 16381 */
	c.n = 5;
	run_bad(&c);

	c = (struct bad_case){ "NOTIFY without FIN", true, 16380, {0}, 0, 10 };
	memcpy(c.frame, golden_notify, sizeof(golden_notify));
	c.frame[8] = 0;
	c.n = sizeof(golden_notify);
	run_bad(&c);

	c = (struct bad_case){ "HELLO without FIN", false, 0, {0}, 0, 10 };
	memcpy(c.frame, golden_hello, sizeof(golden_hello));
	c.frame[8] = 0;
	c.n = sizeof(golden_hello);
	run_bad(&c);

	c = (struct bad_case){ "a fragment (type 0)", true, 16380, {0}, 0, 10 };
	c.n = mkframe(c.frame, SPOP_FRM_UNSET, SPOP_FL_FIN, 0, 1, "\x00", 1);
	run_bad(&c);

	c = (struct bad_case){ "bad stream-id varint", true, 16380, {0}, 0, 4 };
	memcpy(c.frame, "\x00\x00\x00\x07\x03\x00\x00\x00\x01\xf0\x80", 11);
	c.n = 11;
	run_bad(&c);

	c = (struct bad_case){ "11-byte frame-id", true, 16380, {0}, 0, 4 };
	memcpy(c.frame, "\x00\x00\x00\x11\x03\x00\x00\x00\x01\x00"
	    "\xf0\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 21);
	c.n = 21;
	run_bad(&c);

	c = (struct bad_case){ "NOTIFY with a truncated arg", true, 16380, {0}, 0, 4 };
	memcpy(c.frame, golden_notify, sizeof(golden_notify));
	c.frame[3] -= 1;	/* cut the last byte of src */
	c.n = sizeof(golden_notify) - 1;
	run_bad(&c);

	c = (struct bad_case){ "NOTIFY with an unknown data type", true, 16380, {0}, 0, 4 };
	memcpy(c.frame, golden_notify, sizeof(golden_notify));
	c.frame[sizeof(golden_notify) - 5] = 0x0a;	/* src's type byte */
	c.n = sizeof(golden_notify);
	run_bad(&c);

	c = (struct bad_case){ "NOTIFY with a missing nargs byte", true, 16380, {0}, 0, 4 };
	c.n = mkframe(c.frame, SPOP_FRM_NOTIFY, SPOP_FL_FIN, 1, 1, "\x03" "abc", 4);
	run_bad(&c);

	c = (struct bad_case){ "unknown frame type 42", true, 16380, {0}, 0, 4 };
	c.n = mkframe(c.frame, 42, SPOP_FL_FIN, 0, 0, NULL, 0);
	run_bad(&c);

	c = (struct bad_case){ "an ACK sent to the agent", true, 16380, {0}, 0, 4 };
	c.n = mkframe(c.frame, SPOP_FRM_ACK, SPOP_FL_FIN, 1, 1, NULL, 0);
	run_bad(&c);

	c = (struct bad_case){ "an AGENT-HELLO sent to the agent", false, 0, {0}, 0, 4 };
	c.n = mkframe(c.frame, SPOP_FRM_AGENT_HELLO, SPOP_FL_FIN, 0, 0, NULL, 0);
	run_bad(&c);

	c = (struct bad_case){ "HELLO without supported-versions", false, 0, {0}, 0, 5 };
	c.n = mkhello(c.frame, NULL, 16380, "pipelining", false);
	run_bad(&c);

	c = (struct bad_case){ "HELLO with versions 1.0,3.0", false, 0, {0}, 0, 8 };
	c.n = mkhello(c.frame, "1.0,3.0", 16380, "pipelining", false);
	run_bad(&c);

	c = (struct bad_case){ "HELLO with versions '2', '12.0', '2.x'", false, 0, {0}, 0, 8 };
	c.n = mkhello(c.frame, "2, 12.0,2.x, 2.", 16380, "pipelining", false);
	run_bad(&c);

	c = (struct bad_case){ "HELLO with an empty versions list", false, 0, {0}, 0, 8 };
	c.n = mkhello(c.frame, "", 16380, "pipelining", false);
	run_bad(&c);

	c = (struct bad_case){ "HELLO without max-frame-size", false, 0, {0}, 0, 6 };
	c.n = mkhello(c.frame, "2.0", -1, "pipelining", false);
	run_bad(&c);

	c = (struct bad_case){ "HELLO with max-frame-size 255", false, 0, {0}, 0, 9 };
	c.n = mkhello(c.frame, "2.0", 255, "pipelining", false);
	run_bad(&c);

	c = (struct bad_case){ "HELLO with an INT supported-versions", false, 0, {0}, 0, 4 };
	n = put_str(pl, "supported-versions");
	pl[n++] = SPOP_T_INT32;
	pl[n++] = 2;
	c.n = mkframe(c.frame, SPOP_FRM_HAPROXY_HELLO, SPOP_FL_FIN, 0, 0, pl, n);
	run_bad(&c);

	c = (struct bad_case){ "HELLO with a truncated KV", false, 0, {0}, 0, 4 };
	memcpy(c.frame, golden_hello, sizeof(golden_hello));
	c.frame[3] -= 3;
	c.n = sizeof(golden_hello) - 3;
	run_bad(&c);

	c = (struct bad_case){ "HAPROXY-DISCONNECT with a bad KV", true, 16380, {0}, 0, 4 };
	c.n = mkframe(c.frame, SPOP_FRM_HAPROXY_DISCON, SPOP_FL_FIN, 0, 0, "\x05" "ab", 3);
	run_bad(&c);
}

static void
test_negotiation(void)
{
	struct fx f;
	uint8_t b[512];
	size_t n;

	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	n = mkhello(b, " 2.0 ", 1000, "async", false);
	fx_feed(&f, b, n);
	ok(f.s.state == SPOP_ST_READY && f.s.max_frame == 1000 && !f.s.pipelining,
	    "HAProxy 1000, async only: READY at 1000 without pipelining");
	struct spop_frame fr;
	const uint8_t *p, *end, *name;
	size_t nlen;
	struct spop_data v;
	bool caps_empty = false;
	if (spop_frame_get(f.out.p, f.out.len, UINT32_MAX, &fr) == SPOP_OK) {
		p = fr.payload;
		end = p + fr.payload_len;
		while (p < end && spop_kv_get(&p, end, &name, &nlen, &v) == SPOP_OK)
			if (spop_str_eq(name, nlen, "capabilities"))
				caps_empty = v.type == SPOP_T_STRING && v.s.len == 0;
	}
	ok(caps_empty, "the AGENT-HELLO never announces async");
	buf_fini(&f.out);

	static const char *good_versions[] = { "2.0", "1.0, 2.0", "2.1", " 2.10 ,3.0" };
	for (size_t i = 0; i < sizeof(good_versions) / sizeof(good_versions[0]); i++) {
		fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
		n = mkhello(b, good_versions[i], 16380, "pipelining", false);
		fx_feed(&f, b, n);
		is_int(f.s.state, SPOP_ST_READY, "versions '%s' include 2.0", good_versions[i]);
		buf_fini(&f.out);
	}

	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	n = mkhello(b, "2.0", 256, NULL, false);
	fx_feed(&f, b, n);
	ok(f.s.state == SPOP_ST_READY && f.s.max_frame == 256,
	    "no capabilities and max-frame-size 256: accepted");
	buf_fini(&f.out);

	/* The ACK never exceeds the negotiated 256 bytes. */
	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	n = mkhello(b, "2.0", 256, "pipelining", false);
	n += mknotify(b + n, 0, 1, "x");
	f.h.mode = H_FILL;
	fx_feed(&f, b, n);
	size_t hl = 0;
	if (spop_frame_get(f.out.p, f.out.len, UINT32_MAX, &fr) == SPOP_OK)
		hl = 4 + fr.len;
	is_int(spop_frame_get(f.out.p + hl, f.out.len - hl, 256, &fr), SPOP_OK,
	    "the filled ACK fits max_frame 256");
	is_int(fr.len, 256, "it is exactly 256 bytes (2 x 113 + 23 + header)");
	ok(f.h.fill_ok == 3 && f.h.fill_fail == 1,
	    "two big set-vars fit, the third fails, a small one still fits");
	int actions = 0;
	p = fr.payload;
	end = p + fr.payload_len;
	while (end - p >= 3 && p[0] == SPOP_ACT_SET_VAR && p[1] == 3) {
		p += 3;
		if (spop_kv_get(&p, end, &name, &nlen, &v) != SPOP_OK)
			break;
		actions++;
	}
	ok(actions == 3 && p == end, "the ACK holds exactly the three whole actions");
	ok(f.h.fill_actions == 3 && f.h.fill_frame_max == 256,
	    "the handler sees the actions in its ACK (%u) and the negotiated frame size (%u)",
	    f.h.fill_actions, (unsigned)f.h.fill_frame_max);
	buf_fini(&f.out);

	/* More args than SPOP_MAX_ARGS, then a second message. */
	uint8_t pl[512];
	size_t k = 0;
	k += put_str(pl + k, "many");
	pl[k++] = 20;
	for (int i = 0; i < 20; i++) {
		pl[k++] = 1;
		pl[k++] = (uint8_t)('a' + i);
		pl[k++] = SPOP_T_INT32;
		pl[k++] = (uint8_t)i;
	}
	k += put_str(pl + k, "second");
	pl[k++] = 0;
	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	f.h.mode = H_NONE;
	n = mkhello(b, "2.0", 16380, "pipelining", false);
	n += mkframe(b + n, SPOP_FRM_NOTIFY, SPOP_FL_FIN, 9, 1, pl, k);
	fx_feed(&f, b, n);
	ok(f.h.calls == 2 && f.st.notifies == 1, "20 args: both messages reach the handler");
	ok(spop_str_eq(f.h.last.name, f.h.last.name_len, "second") && f.h.last.nargs == 0,
	    "the message after the skipped args decodes");
	is_int(f.h.last.index, 1, "the second message of the NOTIFY has index 1");
	buf_fini(&f.out);

	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	f.h.mode = H_NONE;
	fx_feed(&f, b, n - k - 11);	/* the HELLO only */
	f.out.len = 0;
	memcpy(pl + k, "\x03" "bad", 4);	/* a third message head without nargs */
	n = mkframe(b, SPOP_FRM_NOTIFY, SPOP_FL_FIN, 9, 1, pl, k + 4);
	fx_feed(&f, b, n);
	ok(f.h.calls == 0 && out_disconnect_status(&f.out) == SPOP_E_INVALID,
	    "a NOTIFY malformed after two good messages: no handler call, status 4");
	buf_fini(&f.out);

	/* Shutdown from the shell. */
	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	fx_feed(&f, golden_hello, sizeof(golden_hello));
	f.out.len = 0;
	spop_session_disconnect(&f.s, 0, "shutting down", &f.out);
	is_int(out_disconnect_status(&f.out), 0, "disconnect(0) writes AGENT-DISCONNECT(0)");
	size_t len1 = f.out.len;
	spop_session_disconnect(&f.s, 4, "again", &f.out);
	ok(f.out.len == len1 && f.st.protocol_errors == 0 && spop_session_closing(&f.s),
	    "a second disconnect is a no-op; status 0 is no error");
	buf_fini(&f.out);

	fx_init(&f, 256, OUT_MAX);
	char longmsg[1000];
	memset(longmsg, 'm', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	spop_session_disconnect(&f.s, 1, longmsg, &f.out);
	ok(spop_frame_get(f.out.p, f.out.len, 256, &fr) == SPOP_OK,
	    "a long disconnect message is cut to fit 256 bytes");
	is_int(f.st.protocol_errors, 1, "disconnect(1) counts a protocol error");
	buf_fini(&f.out);
}

/* A page of bytes followed by a PROT_NONE page: data placed to end at the
 * boundary faults on any read past its end. */
static uint8_t *guard_base;
static long guard_pg;

static const uint8_t *
at_guard(const void *p, size_t n)
{
	uint8_t *dst = guard_base + guard_pg - n;

	memcpy(dst, p, n);
	return dst;
}

static void
test_guard_page(void)
{
	struct fx f;
	struct spop_frame fr;
	const uint8_t *g;

	guard_pg = sysconf(_SC_PAGESIZE);
	guard_base = mmap(NULL, (size_t)guard_pg * 2, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!ok(guard_base != MAP_FAILED &&
	    mprotect(guard_base + guard_pg, (size_t)guard_pg, PROT_NONE) == 0,
	    "guard page set up"))
		return;

	fx_init(&f, SPOP_DEFAULT_FRAME, OUT_MAX);
	g = at_guard(golden_hello, sizeof(golden_hello));
	is_int(fx_feed(&f, g, sizeof(golden_hello)), sizeof(golden_hello),
	    "guard: HELLO ending at the guard page is consumed");
	g = at_guard(golden_notify, sizeof(golden_notify));
	f.out.len = 0;
	is_int(fx_feed(&f, g, sizeof(golden_notify)), sizeof(golden_notify),
	    "guard: NOTIFY ending at the guard page is consumed");
	is_mem(f.out.p, f.out.len, golden_ack, sizeof(golden_ack), "guard: and answered");

	int bad = 0;
	for (size_t k = 0; k < sizeof(golden_notify); k++) {
		g = at_guard(golden_notify, k);
		if (spop_frame_get(g, k, SPOP_DEFAULT_FRAME, &fr) != SPOP_NEED_MORE ||
		    fx_feed(&f, g, k) != 0)
			bad++;
	}
	is_int(bad, 0, "guard: every truncation of NOTIFY at the guard is NEED_MORE");

	/* The last varint of the frame wants a byte past the guard. */
	static const uint8_t runaway[] = "\x00\x00\x00\x07\x03\x00\x00\x00\x01\x01\xff";
	g = at_guard(runaway, sizeof(runaway) - 1);
	is_int(spop_frame_get(g, sizeof(runaway) - 1, 16380, &fr), SPOP_E_INVALID,
	    "guard: a frame-id varint running into the guard is invalid");
	static const uint8_t runstr[] = "\x00\x00\x00\x0b\x03\x00\x00\x00\x01\x01\x01"
	    "\x04" "ab" "\x08";
	g = at_guard(runstr, sizeof(runstr) - 1);
	fx_feed(&f, g, sizeof(runstr) - 1);
	is_int(f.s.disconnect_status, SPOP_E_INVALID,
	    "guard: a NOTIFY whose name runs into the guard is status 4");
	struct spop_data d;
	const uint8_t *p = g = at_guard("\x08\xff\xf0\x0e", 4);
	is_int(spop_data_get(&p, g + 4, &d), SPOP_E_INVALID,
	    "guard: a STRING whose length varint runs into the guard is invalid");
	p = g = at_guard("\x07\x00\x00", 3);
	is_int(spop_data_get(&p, g + 3, &d), SPOP_E_INVALID,
	    "guard: a short IPV6 at the guard is invalid");
	buf_fini(&f.out);
	munmap(guard_base, (size_t)guard_pg * 2);
}

int
main(void)
{
	test_golden_hello();
	test_golden_notify();
	test_truncations();
	test_split();
	test_pipelined();
	test_malformed();
	test_negotiation();
	test_guard_page();
	return tap_done();
}
