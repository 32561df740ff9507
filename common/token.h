/* token.h - checks on ACME http-01 tokens and key authorizations.
 * Both are public values; these checks keep anything else (paths, control
 * characters, oversized input) out of the token table and the logs. */
#ifndef HACME_TOKEN_H
#define HACME_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_MAX 128		/* characters */
#define THUMBPRINT_MAX 86	/* base64url of a SHA-512 digest */
#define KEYAUTH_MAX (TOKEN_MAX + 1 + THUMBPRINT_MAX)

/* base64url alphabet, 1..TOKEN_MAX characters. */
bool token_valid(const char *p, size_t n);

/* "<token>.<thumbprint>": the given token, a dot, then 1..THUMBPRINT_MAX
 * base64url characters. */
bool keyauth_valid(const char *tok, size_t toklen, const char *ka, size_t kalen);

#endif
