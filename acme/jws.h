/* jws.h - JSON Web Signatures as ACME uses them (RFC 8555 section 6.2,
 * RFC 7515 flattened JSON serialization), JWK and RFC 7638 thumbprints.
 * JSON is built with cJSON only. Returned strings are malloc'd (free()). */
#ifndef HACME_JWS_H
#define HACME_JWS_H

#include <stddef.h>

struct crypto_key;
struct cJSON;

#define JWS_THUMBPRINT_LEN 43	/* base64url of SHA-256, no padding */

/* The public JWK of k with exactly the required members in lexicographic
 * order and no white space (RFC 7638 section 3): {"crv","kty","x","y"} or
 * {"e","kty","n"}. NULL on failure. */
char *jws_jwk_json(const struct crypto_key *k);
/* RFC 7638 thumbprint: base64url(SHA-256(jwk_json)), into out
 * (JWS_THUMBPRINT_LEN + 1 bytes). 0 or -1. */
int jws_thumbprint(const struct crypto_key *k, char out[JWS_THUMBPRINT_LEN + 1]);
/* "<token>.<thumbprint>" (RFC 8555 section 8.1), malloc'd. */
char *jws_keyauth(const char *token, const char *thumbprint);

/* A request body: {"protected","payload","signature"} with protected
 * {"alg", "kid" (when kid is not NULL) or "jwk", "nonce" (when not NULL),
 * "url"}. payload NULL means POST-as-GET (payload ""). *len is set when
 * len is not NULL. NULL on failure. */
char *jws_sign(const struct crypto_key *k, const char *kid, const char *nonce,
    const char *url, const char *payload, size_t *len);

/* The externalAccountBinding object for newAccount (RFC 8555 section
 * 7.3.4): protected {"alg":"HS256","kid":eab_kid,"url":url}, payload the
 * account key's JWK, signed with HMAC-SHA256 under the base64url-decoded
 * hmac_key_b64url (padding '=' and standard base64 '+' '/' accepted, as
 * some CAs hand them out). The caller frees it with cJSON_Delete. NULL with
 * a reason in err (e.g. "eab-hmac-key: not base64url"). */
struct cJSON *jws_eab(const struct crypto_key *account, const char *eab_kid,
    const char *hmac_key_b64url, const char *url, char *err, size_t errlen);

/* The inner JWS of a keyChange request (RFC 8555 section 7.3.5): signed by
 * newk, protected {"alg","jwk": newk,"url"} (no nonce), payload
 * {"account": account_url, "oldKey": JWK of oldk}. The result is the
 * payload of the outer JWS (signed by oldk with kid). */
char *jws_key_change(const struct crypto_key *newk, const struct crypto_key *oldk,
    const char *account_url, const char *url);

#endif
