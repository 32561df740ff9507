/* fuzz_proto_time.c - RFC 3339 timestamps and Retry-After values. A parsed
 * timestamp prints back to one that parses to the same time. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "acme/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	time_t t, t2;
	long secs;
	struct tm tm;
	char back[64];

	if (proto_rfc3339_parse(s, size, &t) == 0) {
		if (gmtime_r(&t, &tm) == NULL)
			__builtin_trap();
		/* %04d: strftime's %Y prints year 985 in three digits. */
		snprintf(back, sizeof(back), "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		/* Offsets can move a year-0000 or 9999 time out of range. */
		if (tm.tm_year >= -1900 && tm.tm_year <= 9999 - 1900 &&
		    (proto_rfc3339_parse(back, strlen(back), &t2) < 0 || t2 != t))
			__builtin_trap();
	}
	if (proto_retry_after_parse(s, size, 1795580670, &secs) == 0 &&
	    (secs < 0 || secs > 365L * 86400))
		__builtin_trap();
	return 0;
}
