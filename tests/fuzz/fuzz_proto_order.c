/* fuzz_proto_order.c - order documents. */
#include <stdint.h>
#include <string.h>

#include "acme/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_order o;
	char why[PROTO_WHY_MAX], line[512];

	if (proto_order_parse(&o, (const char *)data, size, why,
	    sizeof(why)) == 0) {
		if (o.nidentifiers == 0 || o.finalize == NULL ||
		    o.identifiers[0].value == NULL ||
		    strlen(o.finalize) > PROTO_MAX_URL ||
		    (o.status == PROTO_ORDER_VALID && o.certificate == NULL))
			__builtin_trap();
		if (o.error != NULL)
			proto_problem_explain(o.error, o.identifiers[0].value,
			    NULL, line, sizeof(line));
	}
	proto_order_free(&o);
	return 0;
}
