/* session.h - one SPOP connection, sans I/O: the shell feeds the bytes it
 * read, the session appends the bytes to write to `out`, and says when the
 * connection must be closed. It negotiates HELLO (also the spop-check health
 * check HELLO), answers every NOTIFY with an ACK on this connection (in the
 * order received; pipelining allows any order), answers HAPROXY-DISCONNECT
 * with AGENT-DISCONNECT, and on any protocol error queues an
 * AGENT-DISCONNECT with the right status code and asks to close.
 *
 * The application sees each message of a NOTIFY through on_message and adds
 * actions to the ACK with spop_ack_set_var_str(). Everything the handler
 * gets is a view into the shell's input buffer, valid only during the call.
 */
#ifndef HACME_SPOA_SESSION_H
#define HACME_SPOA_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "spoa/spop.h"

#define SPOP_MAX_ARGS 16	/* args kept per message; more are skipped */

struct spop_arg {
	const uint8_t *name;	/* may be empty (unnamed arg) */
	size_t name_len;
	struct spop_data val;	/* see spop.h */
};

struct spop_message {
	const uint8_t *name;
	size_t name_len;
	unsigned index;		/* 0 for the first message of its NOTIFY */
	unsigned nargs;
	struct spop_arg args[SPOP_MAX_ARGS];
};

struct spop_ack;	/* an ACK being built; only the session creates one */

/* Appends a set-var action with a STRING value. 0, or -1 when it would not
 * fit in the negotiated frame size (the ACK is then sent without it). */
int spop_ack_set_var_str(struct spop_ack *ack, uint8_t scope,
    const char *name, size_t name_len, const uint8_t *val, size_t val_len);
/* The same with any typed value (a NULL value makes HAProxy unset it). */
int spop_ack_set_var(struct spop_ack *ack, uint8_t scope,
    const char *name, size_t name_len, const struct spop_data *val);

/* Actions already in the ACK, and the negotiated frame size it must fit:
 * what a handler names when spop_ack_set_var*() fails. */
unsigned spop_ack_actions(const struct spop_ack *ack);
uint32_t spop_ack_frame_max(const struct spop_ack *ack);

typedef void (*spop_message_fn)(void *ctx, const struct spop_message *msg,
    struct spop_ack *ack);

struct spop_session_stats {
	uint64_t notifies;		/* NOTIFY frames answered */
	uint64_t protocol_errors;	/* connections ended by our AGENT-DISCONNECT(status != 0) */
};

enum spop_state {
	SPOP_ST_HELLO = 0,	/* waiting for HAPROXY-HELLO */
	SPOP_ST_READY,		/* exchanging NOTIFY/ACK */
	SPOP_ST_CLOSING,	/* output queued, then close */
};

struct spop_session {
	enum spop_state state;
	uint32_t max_frame;	/* ours before HELLO, negotiated after */
	bool healthcheck;	/* the HELLO was a spop-check */
	uint32_t disconnect_status;	/* status we sent, when CLOSING */
	spop_message_fn on_message;
	void *ctx;
	struct spop_session_stats *stats;	/* shared counters, may be NULL */
	bool pipelining;	/* negotiated in the HELLO */
	uint32_t peer_status;	/* status-code of a HAPROXY-DISCONNECT */
};

/* max_frame: the most we accept (256..16380 for 2.6 defaults; HAProxy's
 * value is taken when smaller). */
void spop_session_init(struct spop_session *s, uint32_t max_frame,
    spop_message_fn on_message, void *ctx, struct spop_session_stats *stats);

/* Consumes whole frames from in[0..n), appending replies to out. Returns the
 * number of bytes consumed (a partial frame is left for the next call).
 * Never fails: errors become an AGENT-DISCONNECT in out and state CLOSING,
 * after which nothing more is consumed (the bad frame is not counted).
 * Each frame first reserves 4 + max_frame bytes in out and writes its reply
 * there in place. Back-pressure: when out already holds bytes and cannot
 * take that much more (out->max), feed stops before the frame and returns;
 * write out, then call feed again with the rest even if nothing new was
 * read. Give out a max of at least 2 * (4 + max_frame). */
size_t spop_session_feed(struct spop_session *s, const uint8_t *in, size_t n,
    struct buf *out);

/* The shell closes the connection once out is written. */
static inline bool
spop_session_closing(const struct spop_session *s)
{
	return s->state == SPOP_ST_CLOSING;
}

/* For shutdown: queues AGENT-DISCONNECT(status, message) and enters
 * CLOSING; a no-op once CLOSING. A status other than 0 counts as a
 * protocol error. message may be NULL; it is cut to 200 bytes. */
void spop_session_disconnect(struct spop_session *s, uint32_t status,
    const char *message, struct buf *out);

#endif
