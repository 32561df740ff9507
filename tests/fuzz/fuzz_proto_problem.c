/* fuzz_proto_problem.c - problem documents and their explanations: the line
 * stays inside its buffer and holds only printable ASCII, whatever the CA
 * sent. */
#include <stdint.h>
#include <string.h>

#include "acme/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_line(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_problem p;
	struct proto_explain_ctx ctx = { .challenge = "http-01",
	    .token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
	    .retry_after = 60 };
	char why[PROTO_WHY_MAX], line[1024], tiny[8];

	if (proto_problem_parse(&p, (const char *)data, size, why,
	    sizeof(why)) == 0) {
		if (p.kind != proto_errtype_of(p.type))
			__builtin_trap();
		proto_problem_explain(&p, "a.example", &ctx, line, sizeof(line));
		check_line(line, sizeof(line));
		proto_problem_explain(&p, NULL, NULL, line, sizeof(line));
		check_line(line, sizeof(line));
		proto_problem_explain(&p, NULL, &ctx, tiny, sizeof(tiny));
		check_line(tiny, sizeof(tiny));
	}
	proto_problem_free(&p);
	return 0;
}
