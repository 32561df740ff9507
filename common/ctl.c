/* ctl.c - control line framing. */
#include "common/ctl.h"

#include <string.h>

enum ctl_status
ctl_line(const uint8_t *p, size_t n, size_t *linelen, size_t *consumed)
{
	size_t scan = n < CTL_LINE_MAX ? n : CTL_LINE_MAX;
	const uint8_t *lf = memchr(p, '\n', scan);
	size_t len;

	if (lf == NULL)
		return n >= CTL_LINE_MAX ? CTL_TOO_LONG : CTL_NEED_MORE;
	len = (size_t)(lf - p);
	*consumed = len + 1;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	*linelen = len;
	return CTL_OK;
}

size_t
ctl_split(const char *line, size_t n, struct ctl_word *w, size_t maxw)
{
	size_t count = 0, i = 0;

	while (i < n) {
		size_t start;
		while (i < n && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && line[i] != ' ' && line[i] != '\t')
			i++;
		if (count == maxw)
			return maxw + 1;
		w[count].p = line + start;
		w[count].n = i - start;
		count++;
	}
	return count;
}

int
ctl_word_is(const struct ctl_word *w, const char *s)
{
	size_t n = strlen(s);

	return w->n == n && memcmp(w->p, s, n) == 0;
}
