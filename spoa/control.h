/* control.h - the agent's control protocol (DESIGN.md): LF-terminated lines
 * (common/ctl.h framing), upper-case verbs, replies in order:
 *   ADD <token> <key-authorization> <ttl-seconds> [<host>]  -> OK
 *   DEL <token>                                             -> OK
 *   LIST   -> "<token> <key-authorization> <seconds-left> [<host>]"... END
 *   STATS  -> "<key> <value>"... END
 *   PING   -> PONG
 *   anything else -> ERR <reason>
 * Pure: bytes in, reply bytes appended to a struct buf, no I/O; the caller
 * passes the monotonic time in milliseconds.
 */
#ifndef HACME_SPOA_CONTROL_H
#define HACME_SPOA_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "spoa/session.h"
#include "spoa/tokens.h"

#define CONTROL_TTL_MAX 86400	/* seconds */

/* Counters STATS reports; the shell keeps them up to date. */
struct control_stats {
	uint64_t connections_total;	/* SPOP connections accepted */
	uint64_t connections_active;
	uint64_t hits;			/* challenge answered */
	uint64_t misses;		/* valid token, not pending (or other host) */
	uint64_t invalid;		/* path or token malformed */
	struct spop_session_stats spop;	/* notifies, protocol_errors */
	uint64_t closed_cap;		/* closed at --max-connections */
	uint64_t closed_hello;		/* no HELLO in time */
	uint64_t closed_idle;		/* no whole frame in time */
	uint64_t closed_budget;		/* closed over --max-buffer-memory */
	uint64_t buffer_bytes;		/* SPOP buffers held now */
};

enum control_rc {
	CONTROL_OK = 0,
	CONTROL_CLOSE,		/* reply queued; close once it is written */
};

/* Answers one line (without its LF; a CR at the end is ignored too),
 * appending the reply lines to out. -1 when out cannot take the reply
 * (then an "ERR reply too large" fits, or nothing was appended). */
int control_line(struct tokens *t, const struct control_stats *st,
    uint64_t now_ms, const char *line, size_t n, struct buf *out);

/* Answers every whole line of in[0..n), stopping early when out already
 * holds more than out_high bytes (back-pressure: write out, then call again
 * with the rest). *consumed is set to the bytes used. A line of
 * CTL_LINE_MAX bytes without an LF gets "ERR line too long" and
 * CONTROL_CLOSE. */
enum control_rc control_feed(struct tokens *t, const struct control_stats *st,
    uint64_t now_ms, const uint8_t *in, size_t n, struct buf *out,
    size_t out_high, size_t *consumed);

#endif
