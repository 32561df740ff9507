/* fuzz_spop_session.c - a session fed arbitrary bytes. The first byte picks
 * where the rest is split in two reads, as a shell would deliver them; the
 * handler answers with set-vars from the arguments. The split session must
 * write exactly what a session fed everything at once writes, and what it
 * writes must be whole frames within the negotiated size, ending in an
 * AGENT-DISCONNECT when it closes on an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "spoa/session.h"
#include "spoa/spop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
handler(void *ctx, const struct spop_message *msg, struct spop_ack *ack)
{
	unsigned *calls = ctx;

	(*calls)++;
	if (msg->nargs > SPOP_MAX_ARGS)
		__builtin_trap();
	(void)spop_ack_set_var_str(ack, SPOP_SCOPE_TXN, (const char *)msg->name,
	    msg->name_len, (const uint8_t *)"", 0);
	for (unsigned i = 0; i < msg->nargs; i++) {
		const struct spop_arg *a = &msg->args[i];

		if (a->val.type == SPOP_T_STRING || a->val.type == SPOP_T_BINARY)
			(void)spop_ack_set_var_str(ack, SPOP_SCOPE_TXN,
			    (const char *)a->name, a->name_len, a->val.s.p,
			    a->val.s.len);
		else
			(void)spop_ack_set_var(ack, SPOP_SCOPE_REQ,
			    (const char *)a->name, a->name_len, &a->val);
	}
}

struct run {
	struct spop_session s;
	struct spop_session_stats st;
	struct buf out;
	unsigned calls;
	size_t used;
};

static void
run_init(struct run *r, uint32_t max_frame)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->out, 1 << 24);
	spop_session_init(&r->s, max_frame, handler, &r->calls, &r->st);
}

static void
check_out(const struct run *r)
{
	struct spop_frame f;
	size_t off = 0;
	uint64_t acks = 0;
	uint8_t last = 0;

	/* The negotiated size only shrinks, so every frame fits the last. */
	while (off < r->out.len) {
		if (spop_frame_get(r->out.p + off, r->out.len - off,
		    r->s.max_frame, &f) != SPOP_OK || f.flags != SPOP_FL_FIN)
			__builtin_trap();
		if (f.type == SPOP_FRM_ACK)
			acks++;
		else if (f.type != SPOP_FRM_AGENT_HELLO &&
		    f.type != SPOP_FRM_AGENT_DISCON)
			__builtin_trap();
		last = f.type;
		off += 4 + (size_t)f.len;
	}
	if (acks != r->st.notifies)
		__builtin_trap();
	if (spop_session_closing(&r->s) && !r->s.healthcheck &&
	    last != SPOP_FRM_AGENT_DISCON)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, split;
	struct buf in;
	size_t cut, n, u;
	uint32_t max_frame;

	if (size < 1)
		return 0;
	/* Low bits: where to split; bit 7: a small max_frame of ours. */
	max_frame = (data[0] & 0x80) ? 300 : SPOP_DEFAULT_FRAME;
	data++;
	size--;
	cut = size ? (size_t)(data[-1] & 0x7f) * size / 127 : 0;

	run_init(&whole, max_frame);
	whole.used = spop_session_feed(&whole.s, data, size, &whole.out);
	if (whole.used > size)
		__builtin_trap();
	check_out(&whole);

	run_init(&split, max_frame);
	buf_init(&in, size + 1);
	buf_append(&in, data, cut);
	u = spop_session_feed(&split.s, in.p, in.len, &split.out);
	split.used = u;
	buf_consume(&in, u);
	buf_append(&in, data + cut, size - cut);
	n = in.len;
	u = spop_session_feed(&split.s, in.p, n, &split.out);
	split.used += u;
	check_out(&split);

	if (split.used != whole.used || split.out.len != whole.out.len ||
	    (whole.out.len && memcmp(split.out.p, whole.out.p, whole.out.len) != 0) ||
	    split.s.state != whole.s.state || split.calls != whole.calls ||
	    split.s.disconnect_status != whole.s.disconnect_status)
		__builtin_trap();

	buf_fini(&in);
	buf_fini(&whole.out);
	buf_fini(&split.out);
	return 0;
}
