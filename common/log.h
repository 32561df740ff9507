/* log.h - one line per event to stderr, buffered, never blocking for long.
 *
 * Lines are collected in a buffer and written when it fills, when a line at
 * level error or warning is logged, or when the event loop calls log_flush()
 * (both shells flush from an ev_prepare watcher, so a line waits at most one
 * loop iteration). This keeps a per-request info line cheap on the hot path.
 */
#ifndef HACME_LOG_H
#define HACME_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARNING,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

extern enum log_level log_threshold;

void log_init(const char *progname, enum log_level level);
/* "error", "warning", "notice", "info", "debug" (also "err", "warn"). */
bool log_parse_level(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap);
/* A line whose message is already formatted (no printf on the hot path);
 * msg[0..len) must be printable (see log_escape); cut when too long. */
void log_write(enum log_level lvl, const char *msg, size_t len);
void log_flush(void);

#define log_enabled(lvl) ((lvl) <= log_threshold)
#define log_err(...)    log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)   do { if (log_enabled(LOG_LVL_WARNING)) log_msg(LOG_LVL_WARNING, __VA_ARGS__); } while (0)
#define log_notice(...) do { if (log_enabled(LOG_LVL_NOTICE)) log_msg(LOG_LVL_NOTICE, __VA_ARGS__); } while (0)
#define log_info(...)   do { if (log_enabled(LOG_LVL_INFO)) log_msg(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...)  do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* Rate limit per cause, for lines a peer can trigger at will: at most
 * LOG_LIMIT_BURST lines of one cause per LOG_LIMIT_WINDOW_MS; the rest are
 * counted, and when the window has passed (at the next line of that cause,
 * or at log_limit_tick() from the loop) one line says
 * "N similar messages suppressed: <cause>". One static struct per cause:
 *   static struct log_limit lim = LOG_LIMIT_INIT("answer does not fit");
 *   log_warn_rl(&lim, "...", ...);                                       */
#define LOG_LIMIT_BURST		10
#define LOG_LIMIT_WINDOW_MS	10000

struct log_limit {
	const char *cause;		/* names the cause in the summary */
	enum log_level lvl;		/* of the lines, for the summary */
	uint64_t window_end_ms;		/* 0: no window open */
	unsigned passed;		/* lines logged in this window */
	uint64_t suppressed;		/* lines dropped in this window */
	bool queued;			/* on the list log_limit_tick() walks */
	struct log_limit *next;
};
#define LOG_LIMIT_INIT(cause_) { .cause = (cause_) }

/* True when a line of this cause may be logged now (at now_ms, monotonic);
 * false when it is counted as suppressed. Logs the summary of a window
 * that has passed first. */
bool log_limit_pass_at(struct log_limit *l, enum log_level lvl, uint64_t now_ms);
bool log_limit_pass(struct log_limit *l, enum log_level lvl);
/* Summaries of windows that have passed; true while some cause still has
 * lines suppressed (call again later: the shells run it from a timer). */
bool log_limit_tick_at(uint64_t now_ms);
bool log_limit_tick(void);

#define log_rl(lim, lvl, ...) do { if (log_enabled(lvl) && log_limit_pass((lim), (lvl))) log_msg((lvl), __VA_ARGS__); } while (0)
#define log_warn_rl(lim, ...)   log_rl(lim, LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice_rl(lim, ...) log_rl(lim, LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info_rl(lim, ...)   log_rl(lim, LOG_LVL_INFO, __VA_ARGS__)
#define log_debug_rl(lim, ...)  log_rl(lim, LOG_LVL_DEBUG, __VA_ARGS__)

/* Escapes untrusted bytes (from a peer or a server) for a log line:
 * printable ASCII is kept, anything else becomes \xNN; cut with "..." when
 * dst is too small. Always NUL-terminates (dstlen >= 4). Returns dst. */
char *log_escape(char *dst, size_t dstlen, const void *src, size_t len);

#endif
