/* log.c - buffered stderr logger. */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LVL_NOTICE;

static const char *log_prog = "hacme";
static char log_buf[64 * 1024];
static size_t log_len;
static time_t log_stamp_sec = -1;
static char log_stamp[32];

static const char *const log_names[] = {
	"error", "warning", "notice", "info", "debug",
};

void
log_init(const char *progname, enum log_level level)
{
	log_prog = progname;
	log_threshold = level;
}

bool
log_parse_level(const char *s, enum log_level *out)
{
	static const struct { const char *name; enum log_level lvl; } alias[] = {
		{ "error", LOG_LVL_ERROR }, { "err", LOG_LVL_ERROR },
		{ "warning", LOG_LVL_WARNING }, { "warn", LOG_LVL_WARNING },
		{ "notice", LOG_LVL_NOTICE }, { "info", LOG_LVL_INFO },
		{ "debug", LOG_LVL_DEBUG },
	};

	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++) {
		if (strcmp(s, alias[i].name) == 0) {
			*out = alias[i].lvl;
			return true;
		}
	}
	return false;
}

void
log_flush(void)
{
	size_t off = 0;

	while (off < log_len) {
		ssize_t n = write(STDERR_FILENO, log_buf + off, log_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* stderr is gone or full: drop rather than block */
		off += (size_t)n;
	}
	log_len = 0;
}

void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	struct timespec ts;
	char *p;
	size_t room;
	int n;

	if (!log_enabled(lvl))
		return;
	if (sizeof(log_buf) - log_len < 2048)
		log_flush();
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != log_stamp_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		strftime(log_stamp, sizeof(log_stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		log_stamp_sec = ts.tv_sec;
	}
	p = log_buf + log_len;
	room = sizeof(log_buf) - log_len - 1;	/* keep one byte for '\n' */
	n = snprintf(p, room, "%s.%03ldZ %s %s: ", log_stamp,
	    ts.tv_nsec / 1000000, log_prog, log_names[lvl]);
	if (n < 0 || (size_t)n >= room)
		return;
	log_len += (size_t)n;
	room -= (size_t)n;
	n = vsnprintf(log_buf + log_len, room, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= room)
		n = (int)room - 1;	/* cut: the line still ends here */
	log_len += (size_t)n;
	log_buf[log_len++] = '\n';
	if (lvl <= LOG_LVL_WARNING)
		log_flush();
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

char *
log_escape(char *dst, size_t dstlen, const void *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
		if (o + need + 4 > dstlen) {	/* room for "..." and NUL */
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}
