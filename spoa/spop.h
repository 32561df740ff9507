/* spop.h - the SPOP codec (HAProxy's Stream Processing Offload Protocol 2.0):
 * varints, typed data, KV lists, frame headers, NOTIFY message lists, and the
 * encoders for the agent's frames. Pure: no I/O, no allocation. Decoders
 * return views into the caller's buffer, valid as long as that buffer is.
 * Every decoder takes a cursor (*pp) and the end of the bytes it may read;
 * it never reads at or past `end`, and advances *pp only on SPOP_OK.
 * See shared/reference/SPOP-NOTES.md for the wire format.
 */
#ifndef HACME_SPOA_SPOP_H
#define HACME_SPOA_SPOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decoder results. The errors are SPOP status codes, ready for an
 * AGENT-DISCONNECT; SPOP_OK is also status 0 ("normal"). */
enum spop_status {
	SPOP_NEED_MORE = -1,		/* not an error: the frame is incomplete */
	SPOP_OK = 0,
	SPOP_E_IO = 1,
	SPOP_E_TIMEOUT = 2,
	SPOP_E_TOO_BIG = 3,
	SPOP_E_INVALID = 4,
	SPOP_E_NO_VSN = 5,
	SPOP_E_NO_FRAME_SIZE = 6,
	SPOP_E_NO_CAP = 7,
	SPOP_E_BAD_VSN = 8,
	SPOP_E_BAD_FRAME_SIZE = 9,
	SPOP_E_FRAG_NOT_SUPPORTED = 10,
	SPOP_E_INTERLACED_FRAMES = 11,
	SPOP_E_FRAMEID_NOTFOUND = 12,
	SPOP_E_RES = 13,
	SPOP_E_UNKNOWN = 99,
};

/* HAProxy's reason text for a status code ("unknown" for others). */
const char *spop_status_str(int status);

/* Frame types. */
#define SPOP_FRM_UNSET		0	/* a continuation fragment (2.6 only) */
#define SPOP_FRM_HAPROXY_HELLO	1
#define SPOP_FRM_HAPROXY_DISCON	2
#define SPOP_FRM_NOTIFY		3
#define SPOP_FRM_AGENT_HELLO	101
#define SPOP_FRM_AGENT_DISCON	102
#define SPOP_FRM_ACK		103

/* Frame flags (a 32-bit big-endian word on the wire). */
#define SPOP_FL_FIN		0x00000001u
#define SPOP_FL_ABORT		0x00000002u

/* Variable scopes of set-var / unset-var. */
#define SPOP_SCOPE_PROC		0
#define SPOP_SCOPE_SESS		1
#define SPOP_SCOPE_TXN		2
#define SPOP_SCOPE_REQ		3
#define SPOP_SCOPE_RES		4

/* ACK actions. */
#define SPOP_ACT_SET_VAR	1
#define SPOP_ACT_UNSET_VAR	2

#define SPOP_VARINT_MAX		10	/* bytes of the longest varint (2^64 - 1) */
#define SPOP_MIN_FRAME		256	/* smallest max-frame-size allowed */
#define SPOP_DEFAULT_FRAME	16380	/* HAProxy's default: tune.bufsize - 4 */
#define SPOP_FRAME_HDR_MAX	(4 + 1 + 4 + 2 * SPOP_VARINT_MAX)

enum spop_type {
	SPOP_T_NULL = 0,
	SPOP_T_BOOL,
	SPOP_T_INT32,
	SPOP_T_UINT32,
	SPOP_T_INT64,
	SPOP_T_UINT64,
	SPOP_T_IPV4,
	SPOP_T_IPV6,
	SPOP_T_STRING,
	SPOP_T_BINARY,
};

#define SPOP_DATA_FL_TRUE	0x10	/* a BOOL's value, in the type byte */

/* A typed value. INT32/INT64 fill i, UINT32/UINT64 fill u, IPV4 fills
 * ip[0..4), IPV6 ip[0..16), STRING/BINARY fill s (a view into the frame). */
struct spop_data {
	enum spop_type type;
	union {
		bool b;
		int64_t i;
		uint64_t u;
		uint8_t ip[16];
		struct {
			const uint8_t *p;
			size_t len;
		} s;
	};
};

/* A decoded frame header. payload is a view into the caller's buffer. */
struct spop_frame {
	uint32_t len;		/* LEN: bytes after the 4 length bytes */
	uint8_t type;
	uint32_t flags;
	uint64_t stream_id;
	uint64_t frame_id;
	const uint8_t *payload;
	size_t payload_len;
};

/* --- varint ---------------------------------------------------------- */

/* Writes v at p, which has room for SPOP_VARINT_MAX bytes; returns the
 * number of bytes written. */
size_t spop_varint_put(uint8_t *p, uint64_t v);
/* Bytes spop_varint_put() would write. */
size_t spop_varint_len(uint64_t v);
/* SPOP_OK, or SPOP_E_INVALID when the varint runs to end, is longer than
 * SPOP_VARINT_MAX bytes or does not fit in 64 bits. */
enum spop_status spop_varint_get(const uint8_t **pp, const uint8_t *end,
    uint64_t *v);

/* --- decoders (all within one complete frame) ------------------------- */

/* A STRING without a type byte: varint length + bytes. */
enum spop_status spop_str_get(const uint8_t **pp, const uint8_t *end,
    const uint8_t **s, size_t *len);
/* TYPED-DATA. An unknown type is SPOP_E_INVALID. */
enum spop_status spop_data_get(const uint8_t **pp, const uint8_t *end,
    struct spop_data *d);
enum spop_status spop_data_skip(const uint8_t **pp, const uint8_t *end);
/* One KV-LIST item or one NOTIFY argument: a name (may be empty) and a
 * typed value. Iterate with `while (p < end) spop_kv_get(&p, end, ...)`. */
enum spop_status spop_kv_get(const uint8_t **pp, const uint8_t *end,
    const uint8_t **name, size_t *name_len, struct spop_data *val);
/* One message head of a NOTIFY's LIST-OF-MESSAGES: its name and its
 * argument count; the nargs arguments follow (read them with spop_kv_get). */
enum spop_status spop_msg_get(const uint8_t **pp, const uint8_t *end,
    const uint8_t **name, size_t *name_len, unsigned *nargs);

/* The frame at in[0..n). SPOP_NEED_MORE until its 4 + LEN bytes are all
 * there; SPOP_E_TOO_BIG as soon as LEN > max_frame; SPOP_E_INVALID when the
 * header does not fit in LEN. The frame occupies 4 + f->len bytes. Type and
 * flags are not judged here. */
enum spop_status spop_frame_get(const uint8_t *in, size_t n,
    uint32_t max_frame, struct spop_frame *f);

/* True when the STRING s[0..len) is the literal lit. */
bool spop_str_eq(const uint8_t *s, size_t len, const char *lit);
/* True when the comma-separated list s[0..len) (spaces around items are
 * ignored) holds the item lit. */
bool spop_list_has(const uint8_t *s, size_t len, const char *lit);

/* --- encoders -------------------------------------------------------- */
/* Each writes at p with room for cap bytes and returns the bytes written,
 * or 0 when they would not fit (nothing useful is then left at p). */

/* A frame header with FIN and a zero LEN, to be set by spop_frame_end(). */
size_t spop_frame_begin(uint8_t *p, size_t cap, uint8_t type,
    uint64_t stream_id, uint64_t frame_id);
/* Sets LEN of the frame starting at frame, now total bytes long. */
void spop_frame_end(uint8_t *frame, size_t total);
/* TYPED-DATA; a BOOL, NULL, integer, address, STRING or BINARY value. */
size_t spop_data_put(uint8_t *p, size_t cap, const struct spop_data *d);
/* A set-var action: 01 03 scope name value. */
size_t spop_set_var_put(uint8_t *p, size_t cap, uint8_t scope,
    const uint8_t *name, size_t name_len, const struct spop_data *val);
/* AGENT-HELLO: version "2.0", max-frame-size, capabilities (may be ""). */
size_t spop_agent_hello_put(uint8_t *p, size_t cap, uint32_t max_frame,
    const char *capabilities);
/* AGENT-DISCONNECT: status-code and message. */
size_t spop_agent_disconnect_put(uint8_t *p, size_t cap, uint32_t status,
    const char *message, size_t message_len);

#endif
