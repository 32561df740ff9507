/* spop.c - the SPOP codec: varints, typed data, KV lists, frames, actions. */
#include "spoa/spop.h"

#include <string.h>

const char *
spop_status_str(int status)
{
	/* HAProxy's own wording (spoe_frm_err_reasons). */
	switch (status) {
	case SPOP_OK:			return "normal";
	case SPOP_E_IO:			return "I/O error";
	case SPOP_E_TIMEOUT:		return "a timeout occurred";
	case SPOP_E_TOO_BIG:		return "frame is too big";
	case SPOP_E_INVALID:		return "invalid frame received";
	case SPOP_E_NO_VSN:		return "version value not found";
	case SPOP_E_NO_FRAME_SIZE:	return "max-frame-size value not found";
	case SPOP_E_NO_CAP:		return "capabilities value not found";
	case SPOP_E_BAD_VSN:		return "unsupported version";
	case SPOP_E_BAD_FRAME_SIZE:	return "max-frame-size too big or too small";
	case SPOP_E_FRAG_NOT_SUPPORTED:	return "payload fragmentation is not supported";
	case SPOP_E_INTERLACED_FRAMES:	return "invalid interlaced frames";
	case SPOP_E_FRAMEID_NOTFOUND:	return "frame-id not found";
	case SPOP_E_RES:		return "resource allocation error";
	case SPOP_E_UNKNOWN:		return "an unknown error occurred";
	default:			return "unknown";
	}
}

/* --- varint ---------------------------------------------------------- */

size_t
spop_varint_put(uint8_t *p, uint64_t v)
{
	uint8_t *start = p;

	if (v < 240) {
		*p = (uint8_t)v;
		return 1;
	}
	*p++ = (uint8_t)v | 0xF0;
	v = (v - 240) >> 4;
	while (v >= 128) {
		*p++ = (uint8_t)v | 0x80;
		v = (v - 128) >> 7;
	}
	*p++ = (uint8_t)v;
	return (size_t)(p - start);
}

size_t
spop_varint_len(uint64_t v)
{
	size_t n = 1;

	if (v < 240)
		return 1;
	v = (v - 240) >> 4;
	while (v >= 128) {
		n++;
		v = (v - 128) >> 7;
	}
	return n + 1;
}

enum spop_status
spop_varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t x, add;
	unsigned shift = 4, n = 1;
	uint8_t b;

	if (p >= end)
		return SPOP_E_INVALID;
	x = *p++;
	if (x >= 240) {
		/* Later bytes are added, each with a continuation bit. */
		do {
			if (p >= end || n == SPOP_VARINT_MAX)
				return SPOP_E_INVALID;
			b = *p++;
			n++;
			if (shift == 60 && b > 15)
				return SPOP_E_INVALID;
			add = (uint64_t)b << shift;
			if (x + add < x)
				return SPOP_E_INVALID;
			x += add;
			shift += 7;
		} while (b >= 128);
	}
	*pp = p;
	*v = x;
	return SPOP_OK;
}

/* --- decoders -------------------------------------------------------- */

/* Lengths and ids are nearly always one byte: skip the call for those. */
static inline enum spop_status
spop_varint_fast(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	if (*pp < end && **pp < 240) {
		*v = *(*pp)++;
		return SPOP_OK;
	}
	return spop_varint_get(pp, end, v);
}

enum spop_status
spop_str_get(const uint8_t **pp, const uint8_t *end, const uint8_t **s,
    size_t *len)
{
	const uint8_t *p = *pp;
	uint64_t n;

	if (spop_varint_fast(&p, end, &n) != SPOP_OK)
		return SPOP_E_INVALID;
	if (n > (uint64_t)(end - p))
		return SPOP_E_INVALID;
	*s = p;
	*len = (size_t)n;
	*pp = p + n;
	return SPOP_OK;
}

enum spop_status
spop_data_get(const uint8_t **pp, const uint8_t *end, struct spop_data *d)
{
	const uint8_t *p = *pp;
	uint8_t tb;
	uint64_t u;

	if (p >= end)
		return SPOP_E_INVALID;
	tb = *p++;
	switch (tb & 0x0F) {
	case SPOP_T_NULL:
		d->type = SPOP_T_NULL;
		break;
	case SPOP_T_BOOL:
		d->type = SPOP_T_BOOL;
		d->b = (tb & SPOP_DATA_FL_TRUE) != 0;
		break;
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		if (spop_varint_fast(&p, end, &u) != SPOP_OK)
			return SPOP_E_INVALID;
		d->type = (enum spop_type)(tb & 0x0F);
		/* Negative values travel as their two's complement. */
		d->i = (int64_t)u;
		break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		if (spop_varint_fast(&p, end, &u) != SPOP_OK)
			return SPOP_E_INVALID;
		d->type = (enum spop_type)(tb & 0x0F);
		d->u = u;
		break;
	case SPOP_T_IPV4:
		if (4 > end - p)
			return SPOP_E_INVALID;
		d->type = SPOP_T_IPV4;
		memcpy(d->ip, p, 4);
		p += 4;
		break;
	case SPOP_T_IPV6:
		if (16 > end - p)
			return SPOP_E_INVALID;
		d->type = SPOP_T_IPV6;
		memcpy(d->ip, p, 16);
		p += 16;
		break;
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		if (spop_str_get(&p, end, &d->s.p, &d->s.len) != SPOP_OK)
			return SPOP_E_INVALID;
		d->type = (enum spop_type)(tb & 0x0F);
		break;
	default:
		return SPOP_E_INVALID;
	}
	*pp = p;
	return SPOP_OK;
}

enum spop_status
spop_data_skip(const uint8_t **pp, const uint8_t *end)
{
	struct spop_data d;

	return spop_data_get(pp, end, &d);
}

enum spop_status
spop_kv_get(const uint8_t **pp, const uint8_t *end, const uint8_t **name,
    size_t *name_len, struct spop_data *val)
{
	const uint8_t *p = *pp;

	if (spop_str_get(&p, end, name, name_len) != SPOP_OK ||
	    spop_data_get(&p, end, val) != SPOP_OK)
		return SPOP_E_INVALID;
	*pp = p;
	return SPOP_OK;
}

enum spop_status
spop_msg_get(const uint8_t **pp, const uint8_t *end, const uint8_t **name,
    size_t *name_len, unsigned *nargs)
{
	const uint8_t *p = *pp;

	if (spop_str_get(&p, end, name, name_len) != SPOP_OK || p >= end)
		return SPOP_E_INVALID;
	*nargs = *p++;
	*pp = p;
	return SPOP_OK;
}

static uint32_t
spop_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

enum spop_status
spop_frame_get(const uint8_t *in, size_t n, uint32_t max_frame,
    struct spop_frame *f)
{
	const uint8_t *p, *end;
	uint32_t len;

	if (n < 4)
		return SPOP_NEED_MORE;
	len = spop_be32(in);
	/* Judged before the body arrives: it may never fit our buffer. */
	if (len > max_frame)
		return SPOP_E_TOO_BIG;
	if (len > n - 4)
		return SPOP_NEED_MORE;
	p = in + 4;
	end = p + len;
	if (5 > end - p)
		return SPOP_E_INVALID;
	f->len = len;
	f->type = p[0];
	f->flags = spop_be32(p + 1);
	p += 5;
	if (spop_varint_fast(&p, end, &f->stream_id) != SPOP_OK ||
	    spop_varint_fast(&p, end, &f->frame_id) != SPOP_OK)
		return SPOP_E_INVALID;
	f->payload = p;
	f->payload_len = (size_t)(end - p);
	return SPOP_OK;
}

bool
spop_str_eq(const uint8_t *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len == n && (n == 0 || memcmp(s, lit, n) == 0);
}

bool
spop_list_has(const uint8_t *s, size_t len, const char *lit)
{
	const uint8_t *p = s, *end = s + len, *a, *b;

	while (p <= end) {
		a = p;
		while (p < end && *p != ',')
			p++;
		b = p;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (spop_str_eq(a, (size_t)(b - a), lit))
			return true;
		p++;	/* past the comma, or past end to stop */
	}
	return false;
}

/* --- encoders -------------------------------------------------------- */

/* A bounded writer: once something does not fit, every later write is a
 * no-op and the result is 0. */
struct spop_w {
	uint8_t *p, *start, *end;
	bool full;
};

static void
spop_w_bytes(struct spop_w *w, const void *s, size_t n)
{
	if (w->full || n > (size_t)(w->end - w->p)) {
		w->full = true;
		return;
	}
	if (n)
		memcpy(w->p, s, n);
	w->p += n;
}

static void
spop_w_byte(struct spop_w *w, uint8_t b)
{
	spop_w_bytes(w, &b, 1);
}

static void
spop_w_varint(struct spop_w *w, uint64_t v)
{
	uint8_t tmp[SPOP_VARINT_MAX];

	if (!w->full && (size_t)(w->end - w->p) >= SPOP_VARINT_MAX) {
		w->p += spop_varint_put(w->p, v);
		return;
	}
	spop_w_bytes(w, tmp, spop_varint_put(tmp, v));
}

static void
spop_w_str(struct spop_w *w, const void *s, size_t n)
{
	spop_w_varint(w, n);
	spop_w_bytes(w, s, n);
}

static void
spop_w_data(struct spop_w *w, const struct spop_data *d)
{
	switch (d->type) {
	case SPOP_T_NULL:
		spop_w_byte(w, SPOP_T_NULL);
		break;
	case SPOP_T_BOOL:
		spop_w_byte(w, SPOP_T_BOOL | (d->b ? SPOP_DATA_FL_TRUE : 0));
		break;
	case SPOP_T_INT32:
	case SPOP_T_INT64:
		spop_w_byte(w, (uint8_t)d->type);
		spop_w_varint(w, (uint64_t)d->i);
		break;
	case SPOP_T_UINT32:
	case SPOP_T_UINT64:
		spop_w_byte(w, (uint8_t)d->type);
		spop_w_varint(w, d->u);
		break;
	case SPOP_T_IPV4:
		spop_w_byte(w, SPOP_T_IPV4);
		spop_w_bytes(w, d->ip, 4);
		break;
	case SPOP_T_IPV6:
		spop_w_byte(w, SPOP_T_IPV6);
		spop_w_bytes(w, d->ip, 16);
		break;
	case SPOP_T_STRING:
	case SPOP_T_BINARY:
		spop_w_byte(w, (uint8_t)d->type);
		spop_w_str(w, d->s.p, d->s.len);
		break;
	default:
		w->full = true;
		break;
	}
}

static void
spop_w_init(struct spop_w *w, uint8_t *p, size_t cap)
{
	w->p = w->start = p;
	w->end = p + cap;
	w->full = false;
}

static size_t
spop_w_done(const struct spop_w *w)
{
	return w->full ? 0 : (size_t)(w->p - w->start);
}

size_t
spop_frame_begin(uint8_t *p, size_t cap, uint8_t type, uint64_t stream_id,
    uint64_t frame_id)
{
	static const uint8_t fin[4] = { 0, 0, 0, 1 };
	struct spop_w w;

	spop_w_init(&w, p, cap);
	spop_w_bytes(&w, "\0\0\0\0", 4);
	spop_w_byte(&w, type);
	spop_w_bytes(&w, fin, sizeof(fin));
	spop_w_varint(&w, stream_id);
	spop_w_varint(&w, frame_id);
	return spop_w_done(&w);
}

void
spop_frame_end(uint8_t *frame, size_t total)
{
	uint32_t len = (uint32_t)(total - 4);

	frame[0] = (uint8_t)(len >> 24);
	frame[1] = (uint8_t)(len >> 16);
	frame[2] = (uint8_t)(len >> 8);
	frame[3] = (uint8_t)len;
}

size_t
spop_data_put(uint8_t *p, size_t cap, const struct spop_data *d)
{
	struct spop_w w;

	spop_w_init(&w, p, cap);
	spop_w_data(&w, d);
	return spop_w_done(&w);
}

size_t
spop_set_var_put(uint8_t *p, size_t cap, uint8_t scope, const uint8_t *name,
    size_t name_len, const struct spop_data *val)
{
	struct spop_w w;

	spop_w_init(&w, p, cap);
	spop_w_byte(&w, SPOP_ACT_SET_VAR);
	spop_w_byte(&w, 3);
	spop_w_byte(&w, scope);
	spop_w_str(&w, name, name_len);
	spop_w_data(&w, val);
	return spop_w_done(&w);
}

static void
spop_w_kv_str(struct spop_w *w, const char *name, const void *s, size_t n)
{
	spop_w_str(w, name, strlen(name));
	spop_w_byte(w, SPOP_T_STRING);
	spop_w_str(w, s, n);
}

static void
spop_w_kv_u32(struct spop_w *w, const char *name, uint32_t v)
{
	spop_w_str(w, name, strlen(name));
	spop_w_byte(w, SPOP_T_UINT32);
	spop_w_varint(w, v);
}

size_t
spop_agent_hello_put(uint8_t *p, size_t cap, uint32_t max_frame,
    const char *capabilities)
{
	struct spop_w w;
	size_t n;

	spop_w_init(&w, p, cap);
	n = spop_frame_begin(p, cap, SPOP_FRM_AGENT_HELLO, 0, 0);
	if (n == 0)
		return 0;
	w.p += n;
	spop_w_kv_str(&w, "version", "2.0", 3);
	spop_w_kv_u32(&w, "max-frame-size", max_frame);
	spop_w_kv_str(&w, "capabilities", capabilities, strlen(capabilities));
	if ((n = spop_w_done(&w)) != 0)
		spop_frame_end(p, n);
	return n;
}

size_t
spop_agent_disconnect_put(uint8_t *p, size_t cap, uint32_t status,
    const char *message, size_t message_len)
{
	struct spop_w w;
	size_t n;

	spop_w_init(&w, p, cap);
	n = spop_frame_begin(p, cap, SPOP_FRM_AGENT_DISCON, 0, 0);
	if (n == 0)
		return 0;
	w.p += n;
	spop_w_kv_u32(&w, "status-code", status);
	spop_w_kv_str(&w, "message", message, message_len);
	if ((n = spop_w_done(&w)) != 0)
		spop_frame_end(p, n);
	return n;
}
