/* fuzz_proto_link.c - Link headers: the first line is the rel, every other
 * line one header value. Every URL returned is absolute, bounded and free of
 * spaces and control bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *hdrs[16];
	char *copy, *p, *rel, **urls = NULL;
	size_t n = 0;
	int got;

	if (size > 65536 || (copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	rel = copy;
	p = strchr(copy, '\n');
	while (p != NULL && n < 16) {
		*p++ = '\0';
		hdrs[n++] = p;
		p = strchr(p, '\n');
	}
	if (p != NULL)
		*p = '\0';
	got = proto_link_find(hdrs, n, rel, "https://ca.example/acme/cert/1",
	    &urls);
	if (got > PROTO_MAX_LINKS || (got > 0 && urls == NULL))
		__builtin_trap();
	for (int i = 0; i < got; i++) {
		size_t len = strlen(urls[i]);

		if (len == 0 || len > PROTO_MAX_URL || strchr(urls[i], ' ') ||
		    strchr(urls[i], ':') == NULL)
			__builtin_trap();
		for (size_t k = 0; k < len; k++)
			if ((unsigned char)urls[i][k] <= 0x20 ||
			    (unsigned char)urls[i][k] >= 0x7f)
				__builtin_trap();
	}
	proto_strv_free(urls, got > 0 ? (size_t)got : 0);
	free(copy);
	return 0;
}
