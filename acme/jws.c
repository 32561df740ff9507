/* jws.c - JWS (flattened JSON), JWK, RFC 7638 thumbprints, EAB and key
 * change, built with cJSON; signatures come from crypto.h. See jws.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "acme/crypto.h"
#include "acme/jws.h"
#include "common/b64url.h"

#define EAB_KEY_MAX 512		/* characters of an EAB HMAC key */

static void
err_set(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

/* The public JWK of k as an object, members in RFC 7638 order. */
static cJSON *
jwk_object(const struct crypto_key *k)
{
	cJSON *o = NULL;
	char *a = NULL, *b = NULL;
	const char *crv;
	bool ok;

	if (crypto_key_public(k, &a, &b, &crv) < 0 || (o = cJSON_CreateObject()) == NULL)
		goto out;
	if (crv != NULL)
		ok = cJSON_AddStringToObject(o, "crv", crv) &&
		    cJSON_AddStringToObject(o, "kty", "EC") &&
		    cJSON_AddStringToObject(o, "x", a) &&
		    cJSON_AddStringToObject(o, "y", b);
	else
		ok = cJSON_AddStringToObject(o, "e", b) &&
		    cJSON_AddStringToObject(o, "kty", "RSA") &&
		    cJSON_AddStringToObject(o, "n", a);
	if (!ok) {
		cJSON_Delete(o);
		o = NULL;
	}
out:
	free(a);
	free(b);
	return o;
}

char *
jws_jwk_json(const struct crypto_key *k)
{
	cJSON *o = jwk_object(k);
	char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return s;
}

int
jws_thumbprint(const struct crypto_key *k, char out[JWS_THUMBPRINT_LEN + 1])
{
	char *jwk = jws_jwk_json(k);
	uint8_t md[32];

	if (jwk == NULL)
		return -1;
	crypto_sha256(jwk, strlen(jwk), md);
	free(jwk);
	b64url_encode(out, md, sizeof(md));
	return 0;
}

char *
jws_keyauth(const char *token, const char *thumbprint)
{
	size_t tl, pl;
	char *s;

	if (token == NULL || thumbprint == NULL)
		return NULL;
	tl = strlen(token);
	pl = strlen(thumbprint);
	if (tl == 0 || pl == 0 || !b64url_alphabet(token, tl) ||
	    !b64url_alphabet(thumbprint, pl) || (s = malloc(tl + pl + 2)) == NULL)
		return NULL;
	memcpy(s, token, tl);
	s[tl] = '.';
	memcpy(s + tl + 1, thumbprint, pl + 1);
	return s;
}

/* "<base64url(protected)>.<base64url(payload)>", malloc'd: the JWS
 * signing input (RFC 7515 section 5.1). */
static char *
signing_input(const cJSON *prot, const char *payload, size_t *len)
{
	char *ps, *p64 = NULL, *l64 = NULL, *in = NULL;
	size_t pl, ll;

	if ((ps = cJSON_PrintUnformatted(prot)) == NULL)
		return NULL;
	if ((p64 = crypto_b64url(ps, strlen(ps))) == NULL ||
	    (l64 = crypto_b64url(payload, strlen(payload))) == NULL)
		goto out;
	pl = strlen(p64);
	ll = strlen(l64);
	if ((in = malloc(pl + ll + 2)) == NULL)
		goto out;
	memcpy(in, p64, pl);
	in[pl] = '.';
	memcpy(in + pl + 1, l64, ll + 1);
	*len = pl + 1 + ll;
out:
	free(ps);
	free(p64);
	free(l64);
	return in;
}

/* {"protected","payload","signature"} from a signing input and its
 * signature. */
static cJSON *
jws_object(char *input, const uint8_t *sig, size_t siglen)
{
	cJSON *o = NULL;
	char *dot = strchr(input, '.');
	char *s64 = crypto_b64url(sig, siglen);

	if (dot == NULL || s64 == NULL || (o = cJSON_CreateObject()) == NULL)
		goto out;
	*dot = '\0';
	if (!cJSON_AddStringToObject(o, "protected", input) ||
	    !cJSON_AddStringToObject(o, "payload", dot + 1) ||
	    !cJSON_AddStringToObject(o, "signature", s64)) {
		cJSON_Delete(o);
		o = NULL;
	}
	*dot = '.';
out:
	free(s64);
	return o;
}

char *
jws_sign(const struct crypto_key *k, const char *kid, const char *nonce,
    const char *url, const char *payload, size_t *len)
{
	cJSON *prot = NULL, *jwk, *o = NULL;
	char *input = NULL, *out = NULL;
	const char *alg = crypto_key_alg(k);
	uint8_t sig[CRYPTO_SIG_MAX];
	size_t inlen = 0, siglen = 0;

	if (alg == NULL || url == NULL || (prot = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddStringToObject(prot, "alg", alg))
		goto out;
	if (kid != NULL) {
		if (!cJSON_AddStringToObject(prot, "kid", kid))
			goto out;
	} else if ((jwk = jwk_object(k)) == NULL ||
	    !cJSON_AddItemToObject(prot, "jwk", jwk)) {
		cJSON_Delete(jwk);
		goto out;
	}
	if ((nonce != NULL && !cJSON_AddStringToObject(prot, "nonce", nonce)) ||
	    !cJSON_AddStringToObject(prot, "url", url))
		goto out;
	if ((input = signing_input(prot, payload != NULL ? payload : "", &inlen)) == NULL ||
	    crypto_sign(k, input, inlen, sig, &siglen, NULL, 0) < 0 ||
	    (o = jws_object(input, sig, siglen)) == NULL ||
	    (out = cJSON_PrintUnformatted(o)) == NULL)
		goto out;
	if (len != NULL)
		*len = strlen(out);
out:
	cJSON_Delete(prot);
	cJSON_Delete(o);
	free(input);
	return out;
}

/* Decodes an EAB HMAC key: base64url, also with '=' padding or the
 * standard alphabet's '+' and '/'. The length, or -1. */
static long
eab_key_decode(const char *s, uint8_t *key, size_t cap)
{
	char norm[EAB_KEY_MAX];
	size_t n = strlen(s);
	long r;

	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n == 0 || n > sizeof(norm) || strlen(s) - n > 2)
		return -1;
	for (size_t i = 0; i < n; i++)
		norm[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
	r = b64url_decode(key, cap, norm, n);
	crypto_wipe(norm, sizeof(norm));
	return r;
}

cJSON *
jws_eab(const struct crypto_key *account, const char *eab_kid,
    const char *hmac_key_b64url, const char *url, char *err, size_t errlen)
{
	cJSON *prot = NULL, *o = NULL;
	char *jwk = NULL, *input = NULL;
	uint8_t key[EAB_KEY_MAX], mac[32];
	size_t inlen = 0;
	long keylen = -1;

	if (eab_kid == NULL || eab_kid[0] == '\0' || url == NULL) {
		err_set(err, errlen, "eab-kid: missing");
		goto out;
	}
	if (hmac_key_b64url == NULL || hmac_key_b64url[0] == '\0') {
		err_set(err, errlen, "eab-hmac-key: empty");
		goto out;
	}
	if ((keylen = eab_key_decode(hmac_key_b64url, key, sizeof(key))) <= 0) {
		err_set(err, errlen, "eab-hmac-key: not base64url");
		goto out;
	}
	if ((jwk = jws_jwk_json(account)) == NULL) {
		err_set(err, errlen, "EAB: no public key for the account");
		goto out;
	}
	if ((prot = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddStringToObject(prot, "alg", "HS256") ||
	    !cJSON_AddStringToObject(prot, "kid", eab_kid) ||
	    !cJSON_AddStringToObject(prot, "url", url) ||
	    (input = signing_input(prot, jwk, &inlen)) == NULL ||
	    crypto_hmac_sha256(key, (size_t)keylen, input, inlen, mac) < 0 ||
	    (o = jws_object(input, mac, sizeof(mac))) == NULL)
		err_set(err, errlen, "EAB: cannot build the binding");
out:
	crypto_wipe(key, sizeof(key));
	cJSON_Delete(prot);
	free(jwk);
	free(input);
	return o;
}

char *
jws_key_change(const struct crypto_key *newk, const struct crypto_key *oldk,
    const char *account_url, const char *url)
{
	cJSON *payload = NULL, *old;
	char *ps = NULL, *out = NULL;

	if (account_url == NULL || (payload = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddStringToObject(payload, "account", account_url))
		goto out;
	if ((old = jwk_object(oldk)) == NULL ||
	    !cJSON_AddItemToObject(payload, "oldKey", old)) {
		cJSON_Delete(old);
		goto out;
	}
	if ((ps = cJSON_PrintUnformatted(payload)) != NULL)
		out = jws_sign(newk, NULL, NULL, url, ps, NULL);
out:
	cJSON_Delete(payload);
	free(ps);
	return out;
}
