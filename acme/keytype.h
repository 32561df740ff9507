/* keytype.h - the key types hacme generates, for accounts and certificates.
 * Pure: the config parser and the crypto module share these names. */
#ifndef HACME_KEYTYPE_H
#define HACME_KEYTYPE_H

#include <stdbool.h>
#include <string.h>

enum keytype {
	KEYTYPE_NONE = 0,
	KEYTYPE_EC_P256,	/* "ecdsa-p256" (default), JWS ES256 */
	KEYTYPE_EC_P384,	/* "ecdsa-p384", JWS ES384 */
	KEYTYPE_RSA2048,	/* "rsa2048", JWS RS256 */
	KEYTYPE_RSA3072,	/* "rsa3072" */
	KEYTYPE_RSA4096,	/* "rsa4096" */
};

static inline const char *keytype_name(enum keytype t)
{
	switch (t) {
	case KEYTYPE_EC_P256: return "ecdsa-p256";
	case KEYTYPE_EC_P384: return "ecdsa-p384";
	case KEYTYPE_RSA2048: return "rsa2048";
	case KEYTYPE_RSA3072: return "rsa3072";
	case KEYTYPE_RSA4096: return "rsa4096";
	case KEYTYPE_NONE: break;
	}
	return "none";
}

/* KEYTYPE_NONE when s names no key type. */
static inline enum keytype keytype_parse(const char *s)
{
	for (int t = KEYTYPE_EC_P256; t <= KEYTYPE_RSA4096; t++)
		if (strcmp(s, keytype_name((enum keytype)t)) == 0)
			return (enum keytype)t;
	return KEYTYPE_NONE;
}

static inline bool keytype_is_rsa(enum keytype t)
{
	return t == KEYTYPE_RSA2048 || t == KEYTYPE_RSA3072 || t == KEYTYPE_RSA4096;
}

#endif
