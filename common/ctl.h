/* ctl.h - framing of the agent's control protocol: LF-terminated lines of at
 * most CTL_LINE_MAX bytes (a CR before the LF is dropped), words separated by
 * spaces. Pure: views into the caller's buffer, no allocation, no I/O. */
#ifndef HACME_CTL_H
#define HACME_CTL_H

#include <stddef.h>
#include <stdint.h>

#define CTL_LINE_MAX 1024	/* bytes, including the LF */
#define CTL_WORDS_MAX 8

enum ctl_status {
	CTL_OK = 0,
	CTL_NEED_MORE,		/* no LF yet and fewer than CTL_LINE_MAX bytes */
	CTL_TOO_LONG,		/* CTL_LINE_MAX bytes without an LF */
};

struct ctl_word {
	const char *p;
	size_t n;
};

/* Finds the first line in p[0..n). On CTL_OK, *linelen is its length without
 * the CR LF and *consumed the bytes to drop, LF included. */
enum ctl_status ctl_line(const uint8_t *p, size_t n, size_t *linelen, size_t *consumed);

/* Splits a line into words at runs of spaces and tabs. Returns how many were
 * found; stores at most maxw, and returns maxw + 1 when there are more. */
size_t ctl_split(const char *line, size_t n, struct ctl_word *w, size_t maxw);

/* Word equals the NUL-terminated s. */
int ctl_word_is(const struct ctl_word *w, const char *s);

#endif
