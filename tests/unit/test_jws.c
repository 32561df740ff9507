/* test_jws.c - JWK and thumbprints (RFC 7638 known answers), JWS shape and
 * signatures (checked with OpenSSL directly), EAB (checked with OpenSSL's
 * HMAC), key change nesting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "acme/crypto.h"
#include "acme/jws.h"
#include "sigcheck.h"
#include "tap.h"

/* RFC 7638 section 3.1: the RSA key of RFC 7517 Appendix A.1. */
static const char rfc7638_n[] =
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aP"
	"FFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl9"
	"3lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
	"ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3"
	"XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

/* A P-256 test key (test_crypto's leaf key); its JWK and thumbprint were
 * computed with openssl pkey -pubout, base64 | tr and openssl dgst. */
static const char ec_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgU3HlPRsysYjghJTo\n"
	"M9rdUL2IHmlN8xzp0KIp7fH2B9uhRANCAASuDoLHvp6oJeXR1j0PVxPK7zgwco3H\n"
	"f4wU3KIeZ+yTk0vZIhTXD2dW09MfipTIcUlDjsrQWqdlM96yU0x8k9v/\n"
	"-----END PRIVATE KEY-----\n";
static const char ec_jwk[] =
	"{\"crv\":\"P-256\",\"kty\":\"EC\","
	"\"x\":\"rg6Cx76eqCXl0dY9D1cTyu84MHKNx3-MFNyiHmfsk5M\","
	"\"y\":\"S9kiFNcPZ1bT0x-KlMhxSUOOytBap2Uz3rJTTHyT2_8\"}";
static const char ec_thumbprint[] = "Ne4DbAyvBORt3HFLVcTWtwraoyMud6Cjx7fmli0MWlI";

static void
test_thumbprints(struct crypto_key *eck)
{
	char err[CRYPTO_ERR_MAX] = "", tp[JWS_THUMBPRINT_LEN + 1], *jwk, *ka;
	char expect[600];
	struct crypto_key *k;

	k = crypto_key_from_public(rfc7638_n, "AQAB", NULL, err, sizeof(err));
	if (ok(k != NULL, "RFC 7638 key from n and e (%s)", err)) {
		jwk = jws_jwk_json(k);
		snprintf(expect, sizeof(expect), "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}",
		    rfc7638_n);
		is_str(jwk, expect, "RFC 7638: canonical JWK (e, kty, n; no white space)");
		free(jwk);
		ok(jws_thumbprint(k, tp) == 0, "RFC 7638: thumbprint computed");
		is_str(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		    "RFC 7638 section 3.1: thumbprint");
	}
	crypto_key_free(k);

	jwk = jws_jwk_json(eck);
	is_str(jwk, ec_jwk, "P-256: canonical JWK (crv, kty, x, y)");
	free(jwk);
	ok(jws_thumbprint(eck, tp) == 0 && strlen(tp) == JWS_THUMBPRINT_LEN,
	    "P-256: thumbprint of 43 characters");
	is_str(tp, ec_thumbprint, "P-256: thumbprint as computed with the openssl CLI");

	ka = jws_keyauth("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", tp);
	is_str(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
	    "Ne4DbAyvBORt3HFLVcTWtwraoyMud6Cjx7fmli0MWlI", "key authorization");
	free(ka);
	ok(jws_keyauth("a.b", tp) == NULL, "key authorization: a token with '.' refused");
	ok(jws_keyauth("", tp) == NULL, "key authorization: an empty token refused");
	ok(jws_keyauth("tok", "x y") == NULL, "key authorization: a bad thumbprint refused");
}

/* The members of a flattened JWS, checked for shape; the protected header
 * and payload decoded (malloc'd). 0 when the shape is right. */
static int
jws_parts(const char *json, const char *what, char **prot, char **payload,
    uint8_t **sig, size_t *siglen, char **input)
{
	cJSON *o = cJSON_Parse(json), *m;
	const char *names[3] = { "protected", "payload", "signature" };
	int i = 0, rc = -1;
	size_t pl, ll;

	*prot = *payload = *input = NULL;
	*sig = NULL;
	if (!ok(o != NULL && cJSON_IsObject(o), "%s: a JSON object", what))
		goto out;
	cJSON_ArrayForEach(m, o) {
		if (i >= 3 || strcmp(m->string, names[i]) != 0 || !cJSON_IsString(m))
			break;
		i++;
	}
	if (!ok(i == 3 && cJSON_GetArraySize(o) == 3,
	    "%s: exactly protected, payload, signature (strings)", what))
		goto out;
	*prot = (char *)sig_b64d(cJSON_GetArrayItem(o, 0)->valuestring, NULL);
	*payload = (char *)sig_b64d(cJSON_GetArrayItem(o, 1)->valuestring, NULL);
	*sig = sig_b64d(cJSON_GetArrayItem(o, 2)->valuestring, siglen);
	if (!ok(*prot && *payload && *sig, "%s: members are base64url", what))
		goto out;
	pl = strlen(cJSON_GetArrayItem(o, 0)->valuestring);
	ll = strlen(cJSON_GetArrayItem(o, 1)->valuestring);
	*input = malloc(pl + ll + 2);
	sprintf(*input, "%s.%s", cJSON_GetArrayItem(o, 0)->valuestring,
	    cJSON_GetArrayItem(o, 1)->valuestring);
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

static void
parts_free(char *prot, char *payload, uint8_t *sig, char *input)
{
	free(prot);
	free(payload);
	free(sig);
	free(input);
}

/* jws_sign with k; every member and the signature checked. */
static void
check_sign(struct crypto_key *k, const char *kid, const char *nonce,
    const char *payload, const char *what)
{
	EVP_PKEY *pk = sig_pkey(k);
	const char *alg = crypto_key_alg(k);
	const char *url = "https://ca.example/acme/new-order";
	char *out, *prot, *pay, *input, *jwk = jws_jwk_json(k), expect[2048];
	uint8_t *sig;
	size_t len = 0, siglen = 0, o;

	out = jws_sign(k, kid, nonce, url, payload, &len);
	if (!ok(out != NULL && len == strlen(out), "%s: signed, length set", what))
		goto out;
	if (jws_parts(out, what, &prot, &pay, &sig, &siglen, &input) < 0)
		goto out;
	o = (size_t)snprintf(expect, sizeof(expect), "{\"alg\":\"%s\",", alg);
	if (kid != NULL)
		o += (size_t)snprintf(expect + o, sizeof(expect) - o, "\"kid\":\"%s\"", kid);
	else
		o += (size_t)snprintf(expect + o, sizeof(expect) - o, "\"jwk\":%s", jwk);
	if (nonce != NULL)
		o += (size_t)snprintf(expect + o, sizeof(expect) - o, ",\"nonce\":\"%s\"",
		    nonce);
	snprintf(expect + o, sizeof(expect) - o, ",\"url\":\"%s\"}", url);
	is_str(prot, expect, "%s: protected header: alg, %s%s, url in order", what,
	    kid ? "kid" : "jwk", nonce ? ", nonce" : "");
	is_str(pay, payload ? payload : "", "%s: payload%s", what,
	    payload ? "" : " \"\" (POST-as-GET)");
	ok(sig_verify(pk, alg, input, strlen(input), sig, siglen),
	    "%s: %s signature over protected.payload verifies", what, alg);
	input[strlen(input) - 1] ^= 1;
	ok(!sig_verify(pk, alg, input, strlen(input), sig, siglen),
	    "%s: and not over a changed input", what);
	parts_free(prot, pay, sig, input);
out:
	free(out);
	free(jwk);
	EVP_PKEY_free(pk);
}

static void
test_sign(struct crypto_key *es256, struct crypto_key *es384, struct crypto_key *rs256)
{
	const char *payload = "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}]}";
	const char *kid = "https://ca.example/acme/acct/1";
	char *out, *prot, *pay, *input;
	uint8_t *sig;
	size_t siglen;
	cJSON *h;

	check_sign(es256, NULL, "nonce-1_a", payload, "ES256 jwk");
	check_sign(es256, kid, "nonce-2", payload, "ES256 kid");
	check_sign(es256, kid, "nonce-3", NULL, "ES256 POST-as-GET");
	check_sign(es384, kid, "nonce-4", payload, "ES384 kid");
	check_sign(es384, NULL, "nonce-5", NULL, "ES384 jwk POST-as-GET");
	check_sign(rs256, NULL, "nonce-6", payload, "RS256 jwk");
	check_sign(rs256, kid, "nonce-7", NULL, "RS256 POST-as-GET");
	check_sign(es256, NULL, NULL, payload, "ES256 no nonce");

	ok(jws_sign(es256, kid, "n", NULL, payload, NULL) == NULL, "no url: NULL");
	/* Strings from the server are escaped by cJSON, never spliced. */
	out = jws_sign(es256, "https://ca/acct/\"1\"\\", "n\"", "https://ca/x", "", NULL);
	if (out != NULL && jws_parts(out, "escaped kid", &prot, &pay, &sig, &siglen,
	    &input) == 0) {
		h = cJSON_Parse(prot);
		ok(h && strcmp(cJSON_GetObjectItem(h, "kid")->valuestring,
		    "https://ca/acct/\"1\"\\") == 0 &&
		    strcmp(cJSON_GetObjectItem(h, "nonce")->valuestring, "n\"") == 0,
		    "quotes in kid and nonce survive as JSON strings");
		cJSON_Delete(h);
		parts_free(prot, pay, sig, input);
	} else {
		ok(0, "escaped kid signed");
	}
	free(out);
}

static void
test_eab(struct crypto_key *acct)
{
	/* 32 bytes whose standard base64 has '+', '/' and '=' padding. */
	static const uint8_t key[32] = { 0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff, 1, 2, 3,
		4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
		24, 25, 26 };
	char std[64], url_safe[64], err[CRYPTO_ERR_MAX] = "", *prot, *pay, *input, *s;
	char *jwk = jws_jwk_json(acct), *first_sig = NULL;
	uint8_t mac[32], *sig;
	unsigned int maclen = 0;
	size_t siglen, i;
	cJSON *o;

	EVP_EncodeBlock((unsigned char *)std, key, sizeof(key));
	ok(strchr(std, '+') && strchr(std, '/') && strchr(std, '='),
	    "EAB key in standard base64 with padding: %s", std);
	b64url_encode(url_safe, key, sizeof(key));

	for (i = 0; i < 2; i++) {
		const char *k64 = i == 0 ? std : url_safe;
		char what[64];

		snprintf(what, sizeof(what), "EAB %s (%s key)", crypto_key_alg(acct),
		    i == 0 ? "standard base64" : "base64url");

		o = jws_eab(acct, "kid-1", k64, "https://ca.example/acme/new-account", err,
		    sizeof(err));
		if (!ok(o != NULL, "%s: built (%s)", what, err))
			continue;
		s = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (jws_parts(s, what, &prot, &pay, &sig, &siglen, &input) == 0) {
			is_str(prot, "{\"alg\":\"HS256\",\"kid\":\"kid-1\","
			    "\"url\":\"https://ca.example/acme/new-account\"}",
			    "%s: protected header", what);
			is_str(pay, jwk, "%s: payload is the account JWK", what);
			HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)input,
			    strlen(input), mac, &maclen);
			is_mem(sig, siglen, mac, maclen, "%s: HMAC-SHA256 as OpenSSL's HMAC()",
			    what);
			if (i == 0)
				first_sig = strdup(input);
			else
				ok(first_sig && strcmp(first_sig, input) == 0,
				    "both key spellings: the same binding");
			parts_free(prot, pay, sig, input);
		}
		free(s);
	}
	free(first_sig);

	o = jws_eab(acct, "kid-1", "not base64!", "https://ca/x", err, sizeof(err));
	ok(o == NULL, "EAB: a bad key refused");
	is_str(err, "eab-hmac-key: not base64url", "EAB: the reason");
	o = jws_eab(acct, "kid-1", "", "https://ca/x", err, sizeof(err));
	ok(o == NULL && strcmp(err, "eab-hmac-key: empty") == 0,
	    "EAB: an empty key refused (%s)", err);
	o = jws_eab(acct, "kid-1", "QUJD===", "https://ca/x", err, sizeof(err));
	ok(o == NULL, "EAB: three '=' refused (%s)", err);
	o = jws_eab(acct, "", std, "https://ca/x", err, sizeof(err));
	ok(o == NULL, "EAB: an empty kid refused (%s)", err);
	free(jwk);
}

static void
test_key_change(struct crypto_key *oldk, struct crypto_key *newk)
{
	const char *acct = "https://ca.example/acme/acct/7";
	const char *url = "https://ca.example/acme/key-change";
	char *inner, *outer, *prot, *pay, *input, *jwk_new = jws_jwk_json(newk);
	char *jwk_old = jws_jwk_json(oldk), expect[2048];
	char *oprot, *opay, *oinput;
	uint8_t *sig, *osig;
	size_t siglen, osiglen;
	EVP_PKEY *pnew = sig_pkey(newk), *pold = sig_pkey(oldk);

	inner = jws_key_change(newk, oldk, acct, url);
	if (inner == NULL || jws_parts(inner, "key change inner", &prot, &pay, &sig,
	    &siglen, &input) < 0) {
		ok(0, "key change: inner JWS built");
		goto out;
	}
	snprintf(expect, sizeof(expect), "{\"alg\":\"%s\",\"jwk\":%s,\"url\":\"%s\"}",
	    crypto_key_alg(newk), jwk_new, url);
	is_str(prot, expect, "key change inner: alg, jwk of the new key, url; no nonce");
	snprintf(expect, sizeof(expect), "{\"account\":\"%s\",\"oldKey\":%s}", acct, jwk_old);
	is_str(pay, expect, "key change inner: payload account + oldKey");
	ok(sig_verify(pnew, crypto_key_alg(newk), input, strlen(input), sig, siglen),
	    "key change inner: signed by the new key");
	ok(!sig_verify(pold, crypto_key_alg(oldk), input, strlen(input), sig, siglen),
	    "key change inner: not by the old key");

	outer = jws_sign(oldk, acct, "nonce-kc", url, inner, NULL);
	if (outer != NULL && jws_parts(outer, "key change outer", &oprot, &opay, &osig,
	    &osiglen, &oinput) == 0) {
		is_str(opay, inner, "key change outer: payload is the inner JWS");
		ok(sig_verify(pold, crypto_key_alg(oldk), oinput, strlen(oinput), osig,
		    osiglen), "key change outer: signed by the old key");
		parts_free(oprot, opay, osig, oinput);
	} else {
		ok(0, "key change outer built");
	}
	free(outer);
	parts_free(prot, pay, sig, input);
out:
	free(inner);
	free(jwk_new);
	free(jwk_old);
	EVP_PKEY_free(pnew);
	EVP_PKEY_free(pold);
}

int
main(void)
{
	char err[CRYPTO_ERR_MAX] = "";
	struct crypto_key *es256 = crypto_key_from_pem(ec_key, strlen(ec_key), err,
	    sizeof(err));
	struct crypto_key *es384 = crypto_key_generate(KEYTYPE_EC_P384, err, sizeof(err));
	struct crypto_key *rs256 = crypto_key_generate(KEYTYPE_RSA2048, err, sizeof(err));

	if (!ok(es256 && es384 && rs256, "keys (%s)", err))
		return tap_done();
	test_thumbprints(es256);
	test_sign(es256, es384, rs256);
	test_eab(es256);
	test_eab(rs256);
	test_key_change(es256, rs256);
	test_key_change(rs256, es384);
	crypto_key_free(es256);
	crypto_key_free(es384);
	crypto_key_free(rs256);
	return tap_done();
}
