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
		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(back, sizeof(back), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			__builtin_trap();
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
