/* fuzz_proto_account.c - account documents (newAccount, account POST). */
#include <stdint.h>
#include <string.h>

#include "acme/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_account a;
	char why[PROTO_WHY_MAX] = "";

	if (proto_account_parse(&a, (const char *)data, size, why,
	    sizeof(why)) == 0) {
		for (size_t i = 0; i < a.ncontact; i++)
			if (a.contact[i] == NULL)
				__builtin_trap();
		if (a.orders != NULL && strlen(a.orders) > PROTO_MAX_URL)
			__builtin_trap();
	} else if (memchr(why, '\n', strnlen(why, sizeof(why))) != NULL) {
		__builtin_trap();	/* errors stay one line */
	}
	proto_account_free(&a);
	return 0;
}
