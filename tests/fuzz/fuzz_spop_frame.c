/* fuzz_spop_frame.c - the SPOP frame and payload decoders. The input is a
 * stream of frames; each payload is walked as a NOTIFY message list or a KV
 * list. Every decoded value must re-encode to something that decodes to the
 * same value, and every view must lie inside the input. */
#include <stdint.h>
#include <string.h>

#include "spoa/spop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *in_lo, *in_hi;

static void
check_view(const uint8_t *p, size_t n)
{
	if (n && (p < in_lo || p > in_hi || n > (size_t)(in_hi - p)))
		__builtin_trap();
}

static void
check_data(const struct spop_data *d)
{
	uint8_t buf[32];
	struct spop_data back;
	const uint8_t *p = buf;
	size_t n;

	if (d->type == SPOP_T_STRING || d->type == SPOP_T_BINARY) {
		check_view(d->s.p, d->s.len);
		if (d->s.len > 16)
			return;	/* checked for bounds; too long for buf */
	}
	n = spop_data_put(buf, sizeof(buf), d);
	if (n == 0 || spop_data_get(&p, buf + n, &back) != SPOP_OK ||
	    p != buf + n || back.type != d->type)
		__builtin_trap();
	switch (d->type) {
	case SPOP_T_BOOL:
		if (back.b != d->b)
			__builtin_trap();
		break;
	case SPOP_T_INT32: case SPOP_T_INT64:
	case SPOP_T_UINT32: case SPOP_T_UINT64:
		if (back.u != d->u)
			__builtin_trap();
		break;
	case SPOP_T_IPV4: case SPOP_T_IPV6:
		if (memcmp(back.ip, d->ip, d->type == SPOP_T_IPV4 ? 4 : 16) != 0)
			__builtin_trap();
		break;
	case SPOP_T_STRING: case SPOP_T_BINARY:
		if (back.s.len != d->s.len ||
		    (d->s.len && memcmp(back.s.p, d->s.p, d->s.len) != 0))
			__builtin_trap();
		break;
	default:
		break;
	}
}

static void
walk_kv(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *name;
	size_t nlen;
	struct spop_data v;

	while (p < end) {
		if (spop_kv_get(&p, end, &name, &nlen, &v) != SPOP_OK)
			return;
		check_view(name, nlen);
		check_data(&v);
		if (spop_str_eq(name, nlen, "capabilities") && v.type == SPOP_T_STRING)
			(void)spop_list_has(v.s.p, v.s.len, "pipelining");
	}
	if (p != end)
		__builtin_trap();
}

static void
walk_messages(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *name;
	size_t nlen;
	unsigned nargs;
	struct spop_data v;

	while (p < end) {
		if (spop_msg_get(&p, end, &name, &nlen, &nargs) != SPOP_OK)
			return;
		check_view(name, nlen);
		for (unsigned i = 0; i < nargs; i++) {
			if (spop_kv_get(&p, end, &name, &nlen, &v) != SPOP_OK)
				return;
			check_view(name, nlen);
			check_data(&v);
		}
	}
}

static void
check_varints(const uint8_t *p, const uint8_t *end)
{
	uint8_t buf[SPOP_VARINT_MAX];
	const uint8_t *q, *start;
	uint64_t v, back;
	size_t n;

	while (p < end) {
		start = p;
		if (spop_varint_get(&p, end, &v) != SPOP_OK) {
			if (p != start)
				__builtin_trap();
			p++;
			continue;
		}
		n = spop_varint_put(buf, v);
		q = buf;
		/* HAProxy accepts redundant encodings; ours is never longer. */
		if (n > (size_t)(p - start) || n != spop_varint_len(v) ||
		    spop_varint_get(&q, buf + n, &back) != SPOP_OK || back != v)
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spop_frame f;
	size_t off = 0;

	in_lo = data;
	in_hi = data + size;
	check_varints(data, data + size);
	while (off < size) {
		enum spop_status rc = spop_frame_get(data + off, size - off,
		    SPOP_DEFAULT_FRAME, &f);

		if (rc != SPOP_OK)
			break;
		check_view(f.payload, f.payload_len);
		if (f.payload + f.payload_len != data + off + 4 + f.len)
			__builtin_trap();
		if (f.type == SPOP_FRM_NOTIFY)
			walk_messages(f.payload, f.payload + f.payload_len);
		else
			walk_kv(f.payload, f.payload + f.payload_len);
		off += 4 + (size_t)f.len;
	}
	return 0;
}
