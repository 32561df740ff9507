/* token.c - token and key-authorization checks. */
#include "common/token.h"

#include <string.h>

#include "common/b64url.h"

bool
token_valid(const char *p, size_t n)
{
	return n >= 1 && n <= TOKEN_MAX && b64url_alphabet(p, n);
}

bool
keyauth_valid(const char *tok, size_t toklen, const char *ka, size_t kalen)
{
	size_t tplen;

	if (!token_valid(tok, toklen) || kalen < toklen + 2)
		return false;
	if (memcmp(ka, tok, toklen) != 0 || ka[toklen] != '.')
		return false;
	tplen = kalen - toklen - 1;
	return tplen <= THUMBPRINT_MAX && b64url_alphabet(ka + toklen + 1, tplen);
}
