/* log.c - buffered stderr logger. */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LVL_NOTICE;

static const char *log_prog = "hacme";
static char log_buf[64 * 1024];
static size_t log_len;
static bool log_journal;	/* stderr is systemd's journal stream */
static time_t log_stamp_sec = -1;
static char log_stamp[32];

static const char *const log_names[] = {
	"error", "warning", "notice", "info", "debug",
};

/* systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected
 * stderr to; a redirected stderr no longer matches it. */
static bool
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *progname, enum log_level level)
{
	log_prog = progname;
	log_threshold = level;
	log_journal = stderr_is_journal();
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

/* Starts a line in log_buf: ["<N>"]"<stamp>.<ms>Z <prog> <level>: ", built by
 * hand (snprintf was a third of the agent's time at level info). Returns
 * the room left for the message, keeping one byte for the '\n'; 0 when the
 * header does not fit (nothing is then added). */
static size_t
log_begin(enum log_level lvl)
{
	struct timespec ts;
	const char *name = log_names[lvl];
	size_t slen, plen, nlen, need;
	char *p;
	long ms;

	if (sizeof(log_buf) - log_len < 2048)
		log_flush();
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != log_stamp_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		strftime(log_stamp, sizeof(log_stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		log_stamp_sec = ts.tv_sec;
	}
	slen = strlen(log_stamp);
	plen = strnlen(log_prog, 64);
	nlen = strlen(name);
	need = (log_journal ? 3 : 0) + slen + 6 + plen + 1 + nlen + 2;
	if (need + 2 > sizeof(log_buf) - log_len)
		return 0;
	p = log_buf + log_len;
	if (log_journal) {	/* syslog priority: journalctl -p works */
		*p++ = '<';
		*p++ = (char)('3' + lvl);
		*p++ = '>';
	}
	memcpy(p, log_stamp, slen);
	p += slen;
	ms = ts.tv_nsec / 1000000;
	*p++ = '.';
	*p++ = (char)('0' + ms / 100);
	*p++ = (char)('0' + ms / 10 % 10);
	*p++ = (char)('0' + ms % 10);
	*p++ = 'Z';
	*p++ = ' ';
	memcpy(p, log_prog, plen);
	p += plen;
	*p++ = ' ';
	memcpy(p, name, nlen);
	p += nlen;
	*p++ = ':';
	*p++ = ' ';
	log_len += need;
	return sizeof(log_buf) - log_len - 1;
}

/* Ends the line started by log_begin() after n message bytes. */
static void
log_end(enum log_level lvl, size_t n)
{
	log_len += n;
	log_buf[log_len++] = '\n';
	if (lvl <= LOG_LVL_WARNING)
		log_flush();
}

void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	size_t room;
	int n;

	if (!log_enabled(lvl) || (room = log_begin(lvl)) == 0)
		return;
	n = vsnprintf(log_buf + log_len, room + 1, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > room)
		n = (int)room;	/* cut: the line still ends here */
	log_end(lvl, (size_t)n);
}

void
log_write(enum log_level lvl, const char *msg, size_t len)
{
	size_t room;

	if (!log_enabled(lvl) || (room = log_begin(lvl)) == 0)
		return;
	if (len > room)
		len = room;
	memcpy(log_buf + log_len, msg, len);
	log_end(lvl, len);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

/* Causes with lines suppressed, for log_limit_tick(). */
static struct log_limit *log_limit_queue;

static uint64_t
log_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
log_limit_summary(struct log_limit *l)
{
	if (l->suppressed > 0)
		log_msg(l->lvl, "%llu similar messages suppressed: %s",
		    (unsigned long long)l->suppressed, l->cause);
	l->suppressed = 0;
	l->passed = 0;
	l->window_end_ms = 0;
}

bool
log_limit_pass_at(struct log_limit *l, enum log_level lvl, uint64_t now_ms)
{
	if (l->window_end_ms != 0 && now_ms >= l->window_end_ms)
		log_limit_summary(l);
	if (l->window_end_ms == 0)
		l->window_end_ms = now_ms + LOG_LIMIT_WINDOW_MS;
	l->lvl = lvl;
	if (l->passed < LOG_LIMIT_BURST) {
		l->passed++;
		return true;
	}
	if (l->suppressed++ == 0 && !l->queued) {
		l->queued = true;
		l->next = log_limit_queue;
		log_limit_queue = l;
	}
	return false;
}

bool
log_limit_pass(struct log_limit *l, enum log_level lvl)
{
	return log_limit_pass_at(l, lvl, log_mono_ms());
}

bool
log_limit_tick_at(uint64_t now_ms)
{
	struct log_limit **pp = &log_limit_queue, *l;

	while ((l = *pp) != NULL) {
		if (l->suppressed > 0 && now_ms >= l->window_end_ms)
			log_limit_summary(l);
		if (l->suppressed == 0) {
			l->queued = false;
			*pp = l->next;
			l->next = NULL;
		} else {
			pp = &l->next;
		}
	}
	return log_limit_queue != NULL;
}

bool
log_limit_tick(void)
{
	return log_limit_queue != NULL && log_limit_tick_at(log_mono_ms());
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
