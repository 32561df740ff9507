/* test_spop.c - the SPOP codec: varint vectors (SPOP-NOTES §2, HAProxy's
 * algorithm), typed data, KV and message decoding, frame headers, the agent
 * frame encoders against the byte examples of SPOP-NOTES §4 and §10. Golden
 * frames captured from HAProxy are in test_session.c. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "spoa/spop.h"
#include "tap.h"

struct vec {
	uint64_t v;
	size_t n;
	uint8_t b[SPOP_VARINT_MAX];
};

/* SPOP-NOTES §2, plus the edges of each length. */
static const struct vec vecs[] = {
	{ 0, 1, { 0x00 } },
	{ 1, 1, { 0x01 } },
	{ 239, 1, { 0xef } },
	{ 240, 2, { 0xf0, 0x00 } },
	{ 256, 2, { 0xf0, 0x01 } },
	{ 300, 2, { 0xfc, 0x03 } },
	{ 2287, 2, { 0xff, 0x7f } },
	{ 2288, 3, { 0xf0, 0x80, 0x00 } },
	{ 16380, 3, { 0xfc, 0xf0, 0x06 } },
	{ 65535, 3, { 0xff, 0xf0, 0x1e } },
	{ 264432, 4, { 0xf0, 0x80, 0x80, 0x00 } },
	{ 4294967295u, 5, { 0xff, 0xf0, 0xfe, 0xfe, 0x7e } },
	{ UINT64_MAX, 10, { 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e } },
};

static void
test_varint_vectors(void)
{
	uint8_t buf[SPOP_VARINT_MAX + 1];
	const uint8_t *p;
	uint64_t v;
	size_t n;

	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		const struct vec *t = &vecs[i];

		memset(buf, 0xaa, sizeof(buf));
		n = spop_varint_put(buf, t->v);
		is_mem(buf, n, t->b, t->n, "varint %llu encodes as HAProxy does",
		    (unsigned long long)t->v);
		is_int(buf[n], 0xaa, "varint %llu writes nothing past its end",
		    (unsigned long long)t->v);
		is_int(spop_varint_len(t->v), t->n, "varint_len(%llu)",
		    (unsigned long long)t->v);
		p = t->b;
		v = 12345;
		is_int(spop_varint_get(&p, t->b + t->n, &v), SPOP_OK,
		    "varint %llu decodes", (unsigned long long)t->v);
		ok(v == t->v && p == t->b + t->n,
		    "varint %llu decodes to itself, consuming %zu bytes",
		    (unsigned long long)t->v, t->n);
		/* Every truncation runs past the end. */
		int bad = 0;
		for (size_t k = 0; k < t->n; k++) {
			p = t->b;
			if (spop_varint_get(&p, t->b + k, &v) != SPOP_E_INVALID ||
			    p != t->b)
				bad++;
		}
		is_int(bad, 0, "every truncation of varint %llu is rejected",
		    (unsigned long long)t->v);
	}
}

static void
test_varint_limits(void)
{
	/* 11 bytes: longer than any 64-bit value needs. */
	static const uint8_t eleven[] = { 0xf0, 0x80, 0x80, 0x80, 0x80, 0x80,
	    0x80, 0x80, 0x80, 0x80, 0x00 };
	/* 10 bytes whose sum passes 2^64. */
	static const uint8_t over1[] = { 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe,
	    0xfe, 0xfe, 0xfe, 0x0f };
	static const uint8_t over2[] = { 0xf0, 0x80, 0x80, 0x80, 0x80, 0x80,
	    0x80, 0x80, 0x80, 0x10 };
	static const uint8_t cont10[] = { 0xf0, 0x80, 0x80, 0x80, 0x80, 0x80,
	    0x80, 0x80, 0x80, 0x80 };
	/* Redundant but in range: accepted, as HAProxy does. */
	static const uint8_t ten_ok[] = { 0xf0, 0x80, 0x80, 0x80, 0x80, 0x80,
	    0x80, 0x80, 0x80, 0x00 };
	const uint8_t *p;
	uint64_t v;

	p = eleven;
	is_int(spop_varint_get(&p, eleven + sizeof(eleven), &v), SPOP_E_INVALID,
	    "an 11-byte varint is rejected");
	p = over1;
	is_int(spop_varint_get(&p, over1 + sizeof(over1), &v), SPOP_E_INVALID,
	    "a varint just above 2^64-1 is rejected");
	p = over2;
	is_int(spop_varint_get(&p, over2 + sizeof(over2), &v), SPOP_E_INVALID,
	    "a varint with 16 << 60 in its last byte is rejected");
	p = cont10;
	is_int(spop_varint_get(&p, cont10 + sizeof(cont10), &v), SPOP_E_INVALID,
	    "a 10th byte with the continuation bit is rejected");
	p = ten_ok;
	is_int(spop_varint_get(&p, ten_ok + sizeof(ten_ok), &v), SPOP_OK,
	    "a redundant 10-byte varint in range decodes");
	is_int(v, 0xf0 + (0x80ull << 4) + (0x80ull << 11) + (0x80ull << 18) +
	    (0x80ull << 25) + (0x80ull << 32) + (0x80ull << 39) + (0x80ull << 46) +
	    (0x80ull << 53), "and its bytes are added, not or-ed");
	p = ten_ok;
	is_int(spop_varint_get(&p, ten_ok, &v), SPOP_E_INVALID,
	    "an empty range holds no varint");
}

static void
test_varint_roundtrip(void)
{
	uint8_t buf[SPOP_VARINT_MAX];
	const uint8_t *p;
	uint64_t x = 0x9e3779b97f4a7c15ull, v;
	int bad = 0, count = 0;

	for (int shift = 0; shift < 64; shift++) {
		uint64_t base = 1ull << shift;
		uint64_t cand[] = { base - 1, base, base + 1, base + 239, base * 3 };

		for (size_t k = 0; k < sizeof(cand) / sizeof(cand[0]); k++) {
			size_t n = spop_varint_put(buf, cand[k]);

			p = buf;
			if (n != spop_varint_len(cand[k]) || n > SPOP_VARINT_MAX ||
			    spop_varint_get(&p, buf + n, &v) != SPOP_OK ||
			    v != cand[k] || p != buf + n)
				bad++;
			count++;
		}
	}
	for (int i = 0; i < 100000; i++) {
		size_t n;

		/* xorshift64*, then a random width so short values appear. */
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		v = (x * 0x2545f4914f6cdd1dull) >> (x % 64);
		n = spop_varint_put(buf, v);
		uint64_t back;
		p = buf;
		if (n != spop_varint_len(v) ||
		    spop_varint_get(&p, buf + n, &back) != SPOP_OK || back != v)
			bad++;
		count++;
	}
	is_int(bad, 0, "%d varints round-trip (encode, length, decode)", count);
}

static void
test_data(void)
{
	static const uint8_t in[] = {
		0x00,					/* NULL */
		0x11,					/* BOOL true */
		0x01,					/* BOOL false */
		0x02, 0x05,				/* INT32 5 */
		0x04, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e, /* INT64 -1 */
		0x03, 0xff, 0xf0, 0xfe, 0xfe, 0x7e,	/* UINT32 2^32-1 */
		0x05, 0xfc, 0xf0, 0x06,			/* UINT64 16380 */
		0x06, 127, 0, 0, 1,			/* IPV4 */
		0x07, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* IPV6 */
		0x08, 0x03, 'a', 'b', 'c',		/* STRING */
		0x09, 0x00,				/* BINARY, empty */
		0x08, 0x00,				/* STRING, empty */
	};
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 1 };
	const uint8_t *p = in, *end = in + sizeof(in);
	struct spop_data d[12];
	int n = 0;

	while (p < end && n < 12)
		if (spop_data_get(&p, end, &d[n++]) != SPOP_OK)
			break;
	is_int(n, 12, "twelve typed values decode");
	ok(p == end, "and consume the whole input");
	is_int(d[0].type, SPOP_T_NULL, "NULL");
	ok(d[1].type == SPOP_T_BOOL && d[1].b, "BOOL true is 0x11");
	ok(d[2].type == SPOP_T_BOOL && !d[2].b, "BOOL false is 0x01");
	ok(d[3].type == SPOP_T_INT32 && d[3].i == 5, "INT32 5");
	ok(d[4].type == SPOP_T_INT64 && d[4].i == -1, "INT64 -1 (two's complement, 10 bytes)");
	ok(d[5].type == SPOP_T_UINT32 && d[5].u == 4294967295u, "UINT32 max");
	ok(d[6].type == SPOP_T_UINT64 && d[6].u == 16380, "UINT64 16380");
	ok(d[7].type == SPOP_T_IPV4 && memcmp(d[7].ip, "\x7f\0\0\x01", 4) == 0, "IPV4 127.0.0.1");
	ok(d[8].type == SPOP_T_IPV6 && memcmp(d[8].ip, v6, 16) == 0, "IPV6 2001:db8::1");
	ok(d[9].type == SPOP_T_STRING && d[9].s.len == 3 &&
	    d[9].s.p == in + sizeof(in) - 7 && memcmp(d[9].s.p, "abc", 3) == 0,
	    "STRING is a view into the input");
	ok(d[10].type == SPOP_T_BINARY && d[10].s.len == 0, "empty BINARY");
	ok(d[11].type == SPOP_T_STRING && d[11].s.len == 0, "empty STRING is the byte 00");

	/* Re-encoding gives the same bytes back. */
	uint8_t out[sizeof(in)];
	size_t off = 0, w;
	for (int i = 0; i < n; i++) {
		w = spop_data_put(out + off, sizeof(out) - off, &d[i]);
		if (w == 0)
			break;
		off += w;
	}
	is_mem(out, off, in, sizeof(in), "spop_data_put re-encodes all twelve values");

	/* Every strict prefix that cuts a value is rejected, never over-read. */
	int bad = 0;
	p = in;
	for (int i = 0; i < n; i++) {
		const uint8_t *start = p, *q;
		struct spop_data x;

		if (spop_data_skip(&p, end) != SPOP_OK) {
			bad++;
			break;
		}
		for (const uint8_t *cut = start; cut < p; cut++) {
			q = start;
			if (spop_data_get(&q, cut, &x) != SPOP_E_INVALID || q != start)
				bad++;
		}
	}
	is_int(bad, 0, "every cut inside a typed value is SPOP_E_INVALID and leaves the cursor");

	for (uint8_t t = 10; t < 16; t++) {
		uint8_t b[4] = { t, 0, 0, 0 };
		struct spop_data x;

		p = b;
		is_int(spop_data_get(&p, b + 4, &x), SPOP_E_INVALID, "type %u is unknown", t);
	}
	static const uint8_t longstr[] = { 0x08, 0x05, 'a', 'b' };
	p = longstr;
	struct spop_data x;
	is_int(spop_data_get(&p, longstr + sizeof(longstr), &x), SPOP_E_INVALID,
	    "a STRING longer than what is left is rejected");
	static const uint8_t hugestr[] = { 0x08, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe,
	    0xfe, 0xfe, 0xfe, 0x0e, 'x' };
	p = hugestr;
	is_int(spop_data_get(&p, hugestr + sizeof(hugestr), &x), SPOP_E_INVALID,
	    "a STRING of length 2^64-1 is rejected (no pointer overflow)");
	is_int(spop_data_put(out, 1, &d[9]), 0, "spop_data_put: 0 when it does not fit");
}

static void
test_kv_msg(void)
{
	/* SPOP-NOTES §10 NOTIFY payload, one message with two args. */
	static const uint8_t msgs[] =
	    "\x04" "acme" "\x02"
	    "\x04" "path" "\x08\x1f" "/.well-known/acme-challenge/tok"
	    "\x04" "host" "\x08\x0b" "example.com"
	    "\x00" "\x01" "\x00" "\x11";	/* message "" with one unnamed BOOL */
	const uint8_t *p = msgs, *end = msgs + sizeof(msgs) - 1, *name;
	size_t nlen;
	unsigned nargs;
	struct spop_data v;

	is_int(spop_msg_get(&p, end, &name, &nlen, &nargs), SPOP_OK, "message head");
	ok(spop_str_eq(name, nlen, "acme") && nargs == 2, "message acme, 2 args");
	is_int(spop_kv_get(&p, end, &name, &nlen, &v), SPOP_OK, "arg 1");
	ok(spop_str_eq(name, nlen, "path") && v.type == SPOP_T_STRING &&
	    spop_str_eq(v.s.p, v.s.len, "/.well-known/acme-challenge/tok"), "path arg");
	is_int(spop_kv_get(&p, end, &name, &nlen, &v), SPOP_OK, "arg 2");
	ok(spop_str_eq(name, nlen, "host") && spop_str_eq(v.s.p, v.s.len, "example.com"),
	    "host arg");
	is_int(spop_msg_get(&p, end, &name, &nlen, &nargs), SPOP_OK, "second message head");
	ok(nlen == 0 && nargs == 1, "empty name, one arg");
	is_int(spop_kv_get(&p, end, &name, &nlen, &v), SPOP_OK, "unnamed arg");
	ok(nlen == 0 && v.type == SPOP_T_BOOL && v.b, "unnamed BOOL true");
	ok(p == end, "the list is consumed exactly");

	/* A name with no nargs byte after it. */
	static const uint8_t nonargs[] = { 0x02, 'a', 'b' };
	p = nonargs;
	is_int(spop_msg_get(&p, nonargs + 3, &name, &nlen, &nargs), SPOP_E_INVALID,
	    "a message head without its nargs byte is rejected");
	static const uint8_t kvnoval[] = { 0x02, 'a', 'b' };
	p = kvnoval;
	is_int(spop_kv_get(&p, kvnoval + 3, &name, &nlen, &v), SPOP_E_INVALID,
	    "a KV item without its value is rejected");
	ok(p == kvnoval, "and the cursor stays put");
}

static void
test_frame_get(void)
{
	/* SPOP-NOTES §10 ACK example. */
	static const uint8_t ack[] = "\x00\x00\x00\x1a\x67\x00\x00\x00\x01\x05\x01"
	    "\x01\x03\x02\x04" "body" "\x08\x09" "tok.thumb";
	struct spop_frame f;
	size_t n = sizeof(ack) - 1;

	is_int(spop_frame_get(ack, n, 16380, &f), SPOP_OK, "ACK example decodes");
	ok(f.len == 0x1a && f.type == SPOP_FRM_ACK && f.flags == SPOP_FL_FIN &&
	    f.stream_id == 5 && f.frame_id == 1, "its header: len 26, ACK, FIN, sid 5, fid 1");
	ok(f.payload == ack + 11 && f.payload_len == n - 11, "payload is a view after the ids");
	int bad = 0;
	for (size_t k = 0; k < n; k++)
		if (spop_frame_get(ack, k, 16380, &f) != SPOP_NEED_MORE)
			bad++;
	is_int(bad, 0, "every truncation is SPOP_NEED_MORE");
	is_int(spop_frame_get(ack, n, 25, &f), SPOP_E_TOO_BIG, "LEN above max_frame: status 3");
	is_int(spop_frame_get(ack, 4, 25, &f), SPOP_E_TOO_BIG,
	    "too big is known from the 4 length bytes alone");
	is_int(spop_frame_get(ack, n, 26, &f), SPOP_OK, "LEN == max_frame is fine");

	static const uint8_t tiny[] = { 0, 0, 0, 4, 3, 0, 0, 0 };
	is_int(spop_frame_get(tiny, sizeof(tiny), 16380, &f), SPOP_E_INVALID,
	    "a frame too short for type and flags is invalid");
	static const uint8_t noids[] = { 0, 0, 0, 6, 3, 0, 0, 0, 1, 0 };
	is_int(spop_frame_get(noids, sizeof(noids), 16380, &f), SPOP_E_INVALID,
	    "a frame without its frame-id is invalid");
	static const uint8_t badsid[] = { 0, 0, 0, 7, 3, 0, 0, 0, 1, 0xf0, 0x80 };
	is_int(spop_frame_get(badsid, sizeof(badsid), 16380, &f), SPOP_E_INVALID,
	    "a stream-id varint running to the frame's end is invalid");
	static const uint8_t bigids[] = { 0, 0, 0, 21, 3, 0, 0, 0, 1,
	    0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e,
	    0xff, 0xf0, 0xfe, 0xfe, 0x7e, 0x00 };
	is_int(spop_frame_get(bigids, sizeof(bigids), 16380, &f), SPOP_OK,
	    "a 10-byte stream-id and 5-byte frame-id decode");
	ok(f.stream_id == UINT64_MAX && f.frame_id == 4294967295u && f.payload_len == 1,
	    "to 2^64-1 and 2^32-1");
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff };
	is_int(spop_frame_get(huge, 4, UINT32_MAX, &f), SPOP_NEED_MORE,
	    "LEN 2^32-1 under an unlimited max waits without overflow");
}

static void
test_lists(void)
{
	const uint8_t *s;

#define LH(str, lit) spop_list_has((const uint8_t *)(str), strlen(str), (lit))
	ok(LH("pipelining,async", "pipelining"), "pipelining in 'pipelining,async'");
	ok(LH("pipelining,async", "async"), "async in 'pipelining,async'");
	ok(LH(" async , pipelining ", "pipelining"), "spaces around items are ignored");
	ok(!LH("pipeliningx,async", "pipelining"), "no prefix match");
	ok(!LH("", "pipelining"), "empty list");
	ok(!LH(",", "pipelining"), "list of empties");
	ok(LH("2.0", "2.0"), "version list '2.0'");
	ok(LH("1.0,2.0", "2.0"), "version list '1.0,2.0'");
	ok(!LH("2.00", "2.0"), "'2.00' is not '2.0'");
#undef LH
	s = (const uint8_t *)"abc";
	ok(spop_str_eq(s, 3, "abc") && !spop_str_eq(s, 2, "abc") && !spop_str_eq(s, 3, "abd"),
	    "spop_str_eq compares length and bytes");
}

static void
test_encoders(void)
{
	/* SPOP-NOTES §4: AGENT-HELLO with pipelining and 16380. */
	static const uint8_t hello[] = "\x00\x00\x00\x40\x65\x00\x00\x00\x01\x00\x00"
	    "\x07" "version" "\x08\x03" "2.0"
	    "\x0e" "max-frame-size" "\x03\xfc\xf0\x06"
	    "\x0c" "capabilities" "\x08\x0a" "pipelining";
	static const uint8_t discon[] = "\x00\x00\x00\x31\x66\x00\x00\x00\x01\x00\x00"
	    "\x0b" "status-code" "\x03\x02"
	    "\x07" "message" "\x08\x12" "a timeout occurred";
	static const uint8_t setvar[] = "\x01\x03\x02\x04" "body" "\x08\x09" "tok.thumb";
	uint8_t buf[512];
	size_t n, need;
	int bad;

	n = spop_agent_hello_put(buf, sizeof(buf), 16380, "pipelining");
	is_mem(buf, n, hello, sizeof(hello) - 1, "AGENT-HELLO matches SPOP-NOTES §4 byte for byte");
	need = n;
	bad = 0;
	for (size_t cap = 0; cap < need; cap++)
		if (spop_agent_hello_put(buf, cap, 16380, "pipelining") != 0)
			bad++;
	is_int(bad, 0, "AGENT-HELLO: 0 for every cap below its %zu bytes", need);

	n = spop_agent_disconnect_put(buf, sizeof(buf), 2, "a timeout occurred", 18);
	is_mem(buf, n, discon, sizeof(discon) - 1,
	    "AGENT-DISCONNECT(2) is HAProxy's captured DISCONNECT with type 102");
	need = n;
	bad = 0;
	for (size_t cap = 0; cap < need; cap++)
		if (spop_agent_disconnect_put(buf, cap, 2, "a timeout occurred", 18) != 0)
			bad++;
	is_int(bad, 0, "AGENT-DISCONNECT: 0 for every cap below its size");

	struct spop_data v = { .type = SPOP_T_STRING };
	v.s.p = (const uint8_t *)"tok.thumb";
	v.s.len = 9;
	n = spop_set_var_put(buf, sizeof(buf), SPOP_SCOPE_TXN, (const uint8_t *)"body", 4, &v);
	is_mem(buf, n, setvar, sizeof(setvar) - 1, "set-var matches SPOP-NOTES §10");
	is_int(spop_set_var_put(buf, n - 1, SPOP_SCOPE_TXN, (const uint8_t *)"body", 4, &v), 0,
	    "set-var: 0 when one byte short");

	n = spop_frame_begin(buf, sizeof(buf), SPOP_FRM_ACK, 5, 1);
	is_mem(buf, n, "\x00\x00\x00\x00\x67\x00\x00\x00\x01\x05\x01", 11,
	    "frame_begin writes type, FIN and the ids");
	memcpy(buf + n, setvar, sizeof(setvar) - 1);
	spop_frame_end(buf, n + sizeof(setvar) - 1);
	is_mem(buf, 4, "\x00\x00\x00\x1a", 4, "frame_end sets LEN (SPOP-NOTES §10 ACK)");
	is_int(spop_frame_begin(buf, 10, SPOP_FRM_ACK, 5, 1), 0, "frame_begin: 0 when short");

	is_int(SPOP_SCOPE_PROC, 0, "scope proc 0");
	is_int(SPOP_SCOPE_TXN, 2, "scope txn 2");
	is_int(SPOP_SCOPE_RES, 4, "scope res 4");
	is_str(spop_status_str(SPOP_E_TOO_BIG), "frame is too big", "status 3 text");
	is_str(spop_status_str(SPOP_E_UNKNOWN), "an unknown error occurred", "status 99 text");
	is_str(spop_status_str(42), "unknown", "unassigned status text");
}

int
main(void)
{
	test_varint_vectors();
	test_varint_limits();
	test_varint_roundtrip();
	test_data();
	test_kv_msg();
	test_frame_get();
	test_lists();
	test_encoders();
	return tap_done();
}
