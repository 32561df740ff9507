/* session.c - one SPOP connection, sans I/O (see session.h). */
#include "spoa/session.h"

#include <string.h>

#define SPOP_DISCON_MSG_MAX	200	/* keeps an AGENT-DISCONNECT under 256 bytes */

/* The ACK being written in place at the end of the session's out buffer. */
struct spop_ack {
	uint8_t *p;	/* next action goes here */
	uint8_t *end;	/* 4 + negotiated max-frame-size past the frame start */
	unsigned actions;	/* added so far */
	uint32_t frame_max;	/* the negotiated max-frame-size */
};

unsigned
spop_ack_actions(const struct spop_ack *ack)
{
	return ack->actions;
}

uint32_t
spop_ack_frame_max(const struct spop_ack *ack)
{
	return ack->frame_max;
}

int
spop_ack_set_var(struct spop_ack *ack, uint8_t scope, const char *name,
    size_t name_len, const struct spop_data *val)
{
	size_t n;

	n = spop_set_var_put(ack->p, (size_t)(ack->end - ack->p), scope,
	    (const uint8_t *)name, name_len, val);
	if (n == 0)
		return -1;
	ack->p += n;
	ack->actions++;
	return 0;
}

int
spop_ack_set_var_str(struct spop_ack *ack, uint8_t scope, const char *name,
    size_t name_len, const uint8_t *val, size_t val_len)
{
	struct spop_data d;

	d.type = SPOP_T_STRING;
	d.s.p = val;
	d.s.len = val_len;
	return spop_ack_set_var(ack, scope, name, name_len, &d);
}

void
spop_session_init(struct spop_session *s, uint32_t max_frame,
    spop_message_fn on_message, void *ctx, struct spop_session_stats *stats)
{
	memset(s, 0, sizeof(*s));
	s->state = SPOP_ST_HELLO;
	s->max_frame = max_frame < SPOP_MIN_FRAME ? SPOP_MIN_FRAME : max_frame;
	s->on_message = on_message;
	s->ctx = ctx;
	s->stats = stats;
}

void
spop_session_disconnect(struct spop_session *s, uint32_t status,
    const char *message, struct buf *out)
{
	size_t mlen, cap, n;

	if (s->state == SPOP_ST_CLOSING)
		return;
	s->state = SPOP_ST_CLOSING;
	s->disconnect_status = status;
	if (status != 0 && s->stats != NULL)
		s->stats->protocol_errors++;
	if (message == NULL)
		message = "";
	mlen = strnlen(message, SPOP_DISCON_MSG_MAX);
	cap = SPOP_FRAME_HDR_MAX + 32 + mlen;
	/* Without room the connection is closed without a goodbye. */
	if (buf_reserve(out, cap) < 0)
		return;
	n = spop_agent_disconnect_put(out->p + out->len, cap, status, message,
	    mlen);
	out->len += n;
}

static void
session_fail(struct spop_session *s, enum spop_status st, struct buf *out)
{
	spop_session_disconnect(s, (uint32_t)st, spop_status_str(st), out);
}

/* True when the comma-separated "Major.Minor" list holds a 2.x: announcing
 * a major version means all of its earlier minors (SPOE.txt 3.2.4). */
static bool
session_versions_ok(const uint8_t *s, size_t len)
{
	const uint8_t *p = s, *end = s + len, *a, *b;

	while (p < end) {
		a = p;
		while (p < end && *p != ',')
			p++;
		b = p++;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b - a < 3 || a[0] != '2' || a[1] != '.')
			continue;
		for (a += 2; a < b && *a >= '0' && *a <= '9'; a++)
			;
		if (a == b)
			return true;
	}
	return false;
}

/* out has room for 4 + max_frame bytes. */
static enum spop_status
session_hello(struct spop_session *s, const struct spop_frame *f,
    struct buf *out)
{
	const uint8_t *p = f->payload, *end = p + f->payload_len, *name;
	size_t nlen, n;
	struct spop_data v;
	bool has_vsn = false, vsn_ok = false, has_mfs = false;
	bool pipelining = false, healthcheck = false;
	uint64_t mfs = 0;

	while (p < end) {
		if (spop_kv_get(&p, end, &name, &nlen, &v) != SPOP_OK)
			return SPOP_E_INVALID;
		if (spop_str_eq(name, nlen, "supported-versions")) {
			if (v.type != SPOP_T_STRING)
				return SPOP_E_INVALID;
			has_vsn = true;
			vsn_ok = session_versions_ok(v.s.p, v.s.len);
		} else if (spop_str_eq(name, nlen, "max-frame-size")) {
			switch (v.type) {
			case SPOP_T_UINT32:
			case SPOP_T_UINT64:
				mfs = v.u;
				break;
			case SPOP_T_INT32:
			case SPOP_T_INT64:
				mfs = v.i < 0 ? 0 : (uint64_t)v.i;
				break;
			default:
				return SPOP_E_INVALID;
			}
			has_mfs = true;
		} else if (spop_str_eq(name, nlen, "capabilities")) {
			if (v.type != SPOP_T_STRING)
				return SPOP_E_INVALID;
			pipelining = spop_list_has(v.s.p, v.s.len, "pipelining");
		} else if (spop_str_eq(name, nlen, "healthcheck")) {
			if (v.type != SPOP_T_BOOL)
				return SPOP_E_INVALID;
			healthcheck = v.b;
		}
		/* engine-id and unknown keys are ignored. */
	}
	if (!has_vsn)
		return SPOP_E_NO_VSN;
	if (!vsn_ok)
		return SPOP_E_BAD_VSN;
	if (!has_mfs)
		return SPOP_E_NO_FRAME_SIZE;
	if (mfs < SPOP_MIN_FRAME)
		return SPOP_E_BAD_FRAME_SIZE;
	if (mfs < s->max_frame)
		s->max_frame = (uint32_t)mfs;
	s->pipelining = pipelining;
	s->healthcheck = healthcheck;
	/* Never async (2.6 only, per-thread engine-id) nor fragmentation. */
	n = spop_agent_hello_put(out->p + out->len, out->cap - out->len,
	    s->max_frame, pipelining ? "pipelining" : "");
	if (n == 0)
		return SPOP_E_RES;
	out->len += n;
	/* A spop-check only wants the AGENT-HELLO. */
	s->state = healthcheck ? SPOP_ST_CLOSING : SPOP_ST_READY;
	return SPOP_OK;
}

/* Decodes the next message of a NOTIFY; arguments past SPOP_MAX_ARGS are
 * checked and dropped. */
static enum spop_status
session_message(const uint8_t **pp, const uint8_t *end,
    struct spop_message *msg)
{
	struct spop_arg skip, *a;
	unsigned nargs, i;

	if (spop_msg_get(pp, end, &msg->name, &msg->name_len, &nargs) != SPOP_OK)
		return SPOP_E_INVALID;
	msg->nargs = 0;
	for (i = 0; i < nargs; i++) {
		a = msg->nargs < SPOP_MAX_ARGS ? &msg->args[msg->nargs] : &skip;
		if (spop_kv_get(pp, end, &a->name, &a->name_len, &a->val) !=
		    SPOP_OK)
			return SPOP_E_INVALID;
		if (a != &skip)
			msg->nargs++;
	}
	return SPOP_OK;
}

/* out has room for 4 + max_frame bytes: the ACK is written there. */
static enum spop_status
session_notify(struct spop_session *s, const struct spop_frame *f,
    struct buf *out)
{
	const uint8_t *p = f->payload, *end = p + f->payload_len, *q;
	uint8_t *frame = out->p + out->len;
	struct spop_message msg, scratch;
	struct spop_ack ack;
	size_t n;

	/* The whole NOTIFY is checked before any handler runs; the usual
	 * single message is decoded only once for that. */
	if (p < end && session_message(&p, end, &msg) != SPOP_OK)
		return SPOP_E_INVALID;
	for (q = p; q < end; )
		if (session_message(&q, end, &scratch) != SPOP_OK)
			return SPOP_E_INVALID;
	n = spop_frame_begin(frame, 4 + (size_t)s->max_frame, SPOP_FRM_ACK,
	    f->stream_id, f->frame_id);
	if (n == 0)
		return SPOP_E_RES;
	ack.p = frame + n;
	ack.end = frame + 4 + s->max_frame;
	ack.actions = 0;
	ack.frame_max = s->max_frame;
	if (f->payload_len > 0 && s->on_message != NULL) {
		msg.index = 0;
		s->on_message(s->ctx, &msg, &ack);
		while (p < end && session_message(&p, end, &msg) == SPOP_OK) {
			msg.index++;
			s->on_message(s->ctx, &msg, &ack);
		}
	}
	n = (size_t)(ack.p - frame);
	spop_frame_end(frame, n);
	out->len += n;
	if (s->stats != NULL)
		s->stats->notifies++;
	return SPOP_OK;
}

static enum spop_status
session_haproxy_disconnect(struct spop_session *s, const struct spop_frame *f,
    struct buf *out)
{
	const uint8_t *p = f->payload, *end = p + f->payload_len, *name;
	size_t nlen;
	struct spop_data v;

	while (p < end) {
		if (spop_kv_get(&p, end, &name, &nlen, &v) != SPOP_OK)
			return SPOP_E_INVALID;
		if (spop_str_eq(name, nlen, "status-code") &&
		    (v.type == SPOP_T_UINT32 || v.type == SPOP_T_UINT64 ||
		    v.type == SPOP_T_INT32 || v.type == SPOP_T_INT64))
			s->peer_status = (uint32_t)v.u;
	}
	spop_session_disconnect(s, 0, spop_status_str(SPOP_OK), out);
	return SPOP_OK;
}

static enum spop_status
session_frame(struct spop_session *s, const struct spop_frame *f,
    struct buf *out)
{
	/* We never announce fragmentation: every frame must be whole. */
	if (f->type == SPOP_FRM_UNSET || !(f->flags & SPOP_FL_FIN))
		return SPOP_E_FRAG_NOT_SUPPORTED;
	switch (f->type) {
	case SPOP_FRM_HAPROXY_HELLO:
		if (s->state != SPOP_ST_HELLO)
			return SPOP_E_INVALID;
		return session_hello(s, f, out);
	case SPOP_FRM_NOTIFY:
		if (s->state != SPOP_ST_READY)
			return SPOP_E_INVALID;
		return session_notify(s, f, out);
	case SPOP_FRM_HAPROXY_DISCON:
		return session_haproxy_disconnect(s, f, out);
	default:
		return SPOP_E_INVALID;
	}
}

size_t
spop_session_feed(struct spop_session *s, const uint8_t *in, size_t n,
    struct buf *out)
{
	struct spop_frame f;
	enum spop_status rc;
	size_t off = 0;

	if (n == 0)
		return 0;
	while (s->state != SPOP_ST_CLOSING) {
		rc = spop_frame_get(in + off, n - off, s->max_frame, &f);
		if (rc == SPOP_NEED_MORE)
			break;
		if (rc != SPOP_OK) {
			session_fail(s, rc, out);
			break;
		}
		/* One reservation per frame; the reply is written in place. */
		if (buf_reserve(out, 4 + (size_t)s->max_frame) < 0) {
			if (out->len > 0)
				break;
			session_fail(s, SPOP_E_RES, out);
			break;
		}
		if ((rc = session_frame(s, &f, out)) != SPOP_OK) {
			session_fail(s, rc, out);
			break;
		}
		off += 4 + (size_t)f.len;
	}
	return off;
}
