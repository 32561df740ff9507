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

/* Escapes untrusted bytes (from a peer or a server) for a log line:
 * printable ASCII is kept, anything else becomes \xNN; cut with "..." when
 * dst is too small. Always NUL-terminates (dstlen >= 4). Returns dst. */
char *log_escape(char *dst, size_t dstlen, const void *src, size_t len);

#endif
