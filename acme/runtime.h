/* runtime.h - a client for HAProxy's runtime API (the stats socket, or the
 * master CLI), on the worker's libev loop.
 *
 * One command per connection, as HAProxy's non-interactive mode wants
 * (shared/reference/RUNTIME-API-CERTS.md section 3): connect, send
 * "cmd\n" or "cmd <<\n<payload>\n\n", read the reply until HAProxy closes.
 * On the master CLI (master@unix@PATH) the command goes to the current
 * worker as "@1 cmd", followed by "quit" (the master keeps a connection
 * open otherwise). Several commands may be in flight at once on separate
 * connections (opts.max_conns).
 *
 * Payload size: HAProxy reads the whole request into one buffer of
 * tune.bufsize bytes; in 2.6 a larger request gets no reply at all. Before
 * the first payload command (and again after bufsize_ttl seconds) the
 * client learns the size from `show pools` ("Pool buffer (N bytes)") and
 * refuses a command that cannot fit, with an error that names tune.bufsize.
 * When the size cannot be learned, a payload command that gets no reply
 * is reported the same way.
 *
 * Writers: HAProxy 2.6 has ONE certificate transaction shared by every
 * client. runtime_lock grants a "write turn" per HAProxy: callers in this
 * process queue FIFO, and the turn also holds flock(LOCK_EX) on
 * <lock_dir>/runtime-<hash of the address>.lock, so a second hacme on the
 * host waits too. Write commands answered "Operations on certificates are
 * currently locked!" are retried with backoff within their timeout.
 *
 * Callbacks run from the loop only, never inside the call that started the
 * request. Errors are one line naming the HAProxy:
 *   "HAProxy unix@/run/haproxy/admin.sock: connect: No such file or directory"
 *   "HAProxy 127.0.0.1:9999: no reply within 10 s"
 * Text from HAProxy is escaped before it goes into an error. */
#ifndef HACME_RUNTIME_H
#define HACME_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ev_loop;
struct runtime;

#define RUNTIME_ERR_MAX 512		/* an err buffer of this size is never cut */
#define RUNTIME_REPLY_MAX (16u << 20)	/* bytes of a reply we read */
#define RUNTIME_CMD_MAX 4096		/* bytes of a command line (without payload) */
#define RUNTIME_PAYLOAD_MAX (1u << 20)	/* bytes of a payload */

struct runtime_opts {
	double timeout;		/* seconds for one command (connect, reply, retries); 0: 10 */
	double lock_timeout;	/* seconds to wait for the write turn; 0: 60 */
	double bufsize_ttl;	/* seconds a learned tune.bufsize is trusted; 0: 30 */
	unsigned max_conns;	/* commands in flight at once; 0: 4 */
	const char *lock_dir;	/* dir of the flock file; NULL: no cross-process lock */
};

/* address: common/addr.h syntax (resolved here, blocking: call at start-up).
 * NULL with err on a bad address, or when the lock file cannot be opened. */
struct runtime *runtime_new(struct ev_loop *loop, const char *address,
    const struct runtime_opts *opts, char *err, size_t errlen);

/* Closes every connection; callbacks still pending are NOT called; the
 * write turn and its flock are released. NULL is a no-op. May be called
 * from a callback. */
void runtime_free(struct runtime *rt);

/* The address as configured, for messages. */
const char *runtime_name(const struct runtime *rt);

/* The reply is HAProxy's text up to EOF, without the empty line that ends
 * it; it lives until cb returns. err is set (reply NULL) when there is no
 * reply: connect failure, timeout, HAProxy closed without answering, a
 * request too large for tune.bufsize. An error HAProxy writes (e.g. "Can't
 * commit ...!") is a reply: callers judge it. */
typedef void runtime_cb(void *arg, const char *err, const char *reply, size_t len);

/* Sends cmd (one line, no LF, at most RUNTIME_CMD_MAX bytes) and, when
 * payload is not NULL, the payload (LFs allowed, no empty line, no NUL;
 * CRs and a trailing LF are dropped). cmd may chain commands with ';' as
 * HAProxy's non-interactive mode runs them (a payload goes to the last);
 * on the master CLI each gets its "@1 ". The reply then holds every
 * command's output, each ended by an empty line. 0, or -1 with errno
 * without a callback: EINVAL (bad cmd or payload), ENOMEM. */
int runtime_cmd(struct runtime *rt, const char *cmd, const char *payload, size_t len,
    runtime_cb *cb, void *arg);

/* Like runtime_cmd, but stops reading (and closes) as soon as the reply
 * holds the line stop_line: the head of a long output. The reply then
 * ends before that line. Not for `show ssl cert`: HAProxy holds its
 * certificate lock until the dump ends, and writers meanwhile are told
 * "currently locked". */
int runtime_cmd_head(struct runtime *rt, const char *cmd, const char *stop_line,
    runtime_cb *cb, void *arg);

/* Asks for the write turn. cb(arg, NULL) when arg holds it; cb(arg, err)
 * when it could not be had within lock_timeout. Only one turn per arg.
 * 0, or -1 with errno (ENOMEM, EBUSY: arg already holds or waits). */
int runtime_lock(struct runtime *rt, void (*cb)(void *arg, const char *err), void *arg);
/* Gives the turn back (no-op when arg does not hold it). When another
 * caller of this process waits, the turn passes to it with the flock kept
 * (for at most a second in a row, then the flock is let go once). */
void runtime_unlock(struct runtime *rt, void *arg);
/* Counts continuous holds: equal values at two moments of holding the
 * turn mean no other process could have held it in between. */
uint64_t runtime_turn_epoch(const struct runtime *rt);

/* Forgets every request of arg: queued commands and turn requests are
 * dropped, commands in flight are disconnected, a held turn is released.
 * No callback of arg runs afterwards. */
void runtime_cancel(struct runtime *rt, void *arg);

/* tune.bufsize as last learned, 0 when unknown. */
size_t runtime_bufsize(const struct runtime *rt);

/* ---- replies (pure) ------------------------------------------------- */

/* "Pool buffer (16384 bytes)" in `show pools`: the size, 0 when absent. */
size_t runtime_parse_bufsize(const char *reply, size_t len);

/* The pending transaction in a `show ssl cert` listing ("# transaction"
 * then "*<name>"): copies the name (without '*') into name and returns
 * true; false when there is none (or it does not fit namelen). */
bool runtime_parse_transaction(const char *reply, size_t len, char *name, size_t namelen);

#define RUNTIME_SERIAL_MAX 130	/* hex chars of a serial HAProxy shows + NUL */

/* `show ssl cert [*]<name>`. */
struct runtime_cert {
	bool found;			/* false: "Can't display ..." */
	char status[16];		/* "Empty", "Unused", "Used" */
	char serial[RUNTIME_SERIAL_MAX];	/* upper-case hex, leading zeros dropped */
	time_t not_after;		/* 0 when absent or unparsable */
};
/* Parses the reply; returns false (c->found false) when it is not a
 * certificate description. */
bool runtime_parse_cert(const char *reply, size_t len, struct runtime_cert *c);

/* "Nov  3 23:29:40 2026 GMT" (OpenSSL's ASN1_TIME_print) -> UTC time_t;
 * -1 when it does not parse. */
time_t runtime_parse_time(const char *s, size_t len);

/* True when the reply's last line is line (e.g. "Success!"). */
bool runtime_reply_ends(const char *reply, size_t len, const char *line);
/* True when some line of the reply is line; *at (may be NULL) is where it
 * starts. */
bool runtime_reply_has(const char *reply, size_t len, const char *line, size_t *at);

#endif
