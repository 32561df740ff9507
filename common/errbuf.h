/* errbuf.h - an error message formatted into the caller's buffer: the
 * (char *err, size_t errlen) pair that fallible functions take. */
#ifndef HACME_ERRBUF_H
#define HACME_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* snprintf into err[errlen], cut to fit; nothing when err is NULL or
 * errlen is 0 (the caller does not want the message). */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void errbuf_vset(char *err, size_t errlen, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#endif
