/* fuzz_proto_authz.c - authorization and challenge documents. */
#include <stdint.h>
#include <string.h>

#include "acme/proto.h"
#include "common/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_authz a;
	struct proto_challenge c;
	char why[PROTO_WHY_MAX];

	if (proto_authz_parse(&a, (const char *)data, size, why,
	    sizeof(why)) == 0) {
		const struct proto_challenge *h;

		if (a.identifier.value == NULL)
			__builtin_trap();
		/* A token that reaches the agents is always base64url. */
		for (size_t i = 0; i < a.nchallenges; i++)
			if (a.challenges[i].token != NULL &&
			    !token_valid(a.challenges[i].token,
			    strlen(a.challenges[i].token)))
				__builtin_trap();
		h = proto_authz_challenge(&a, "http-01");
		if (h != NULL && h->token == NULL)
			__builtin_trap();
	}
	proto_authz_free(&a);
	if (proto_challenge_parse(&c, (const char *)data, size, why,
	    sizeof(why)) == 0 && (c.type == NULL || c.url == NULL))
		__builtin_trap();
	proto_challenge_free(&c);
	return 0;
}
