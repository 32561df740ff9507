/* fuzz_proto_directory.c - directory and account documents. */
#include <stdint.h>
#include <string.h>

#include "acme/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_directory d;
	struct proto_account a;
	char why[PROTO_WHY_MAX];

	if (proto_directory_parse(&d, (const char *)data, size, why,
	    sizeof(why)) == 0) {
		/* The required URLs are there once the parse succeeds. */
		if (d.new_nonce == NULL || d.new_account == NULL ||
		    d.new_order == NULL || d.revoke_cert == NULL ||
		    d.key_change == NULL)
			__builtin_trap();
		for (size_t i = 0; i < d.nprofiles; i++)
			if (!proto_directory_has_profile(&d, d.profiles[i]))
				__builtin_trap();
	} else if (memchr(why, '\0', sizeof(why)) == NULL)
		__builtin_trap();
	proto_directory_free(&d);
	if (proto_account_parse(&a, (const char *)data, size, why,
	    sizeof(why)) == 0 && a.status > PROTO_ACCOUNT_REVOKED)
		__builtin_trap();
	proto_account_free(&a);
	return 0;
}
