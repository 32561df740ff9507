/* fuzz_proto_renewalinfo.c - ARI renewalInfo responses. */
#include <stdint.h>

#include "acme/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_renewal_info r;
	char why[PROTO_WHY_MAX];

	if (proto_renewal_info_parse(&r, (const char *)data, size, why,
	    sizeof(why)) == 0 && r.end < r.start)
		__builtin_trap();
	proto_renewal_info_free(&r);
	return 0;
}
