/* sigcheck.h - checks of hacme's signatures with OpenSSL directly (not
 * through crypto.c), for test_crypto and test_jws. Header-only. */
#ifndef HACME_SIGCHECK_H
#define HACME_SIGCHECK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "acme/crypto.h"
#include "common/b64url.h"

/* k as an OpenSSL key, read back from its PEM. */
static inline EVP_PKEY *
sig_pkey(const struct crypto_key *k)
{
	size_t len = 0;
	char *pem = crypto_key_pem(k, &len);
	BIO *bio = pem ? BIO_new_mem_buf(pem, (int)len) : NULL;
	EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	crypto_wipe_free(pem, len);
	return pk;
}

/* 1 when sig is a valid JWS signature (alg ES256, ES384 or RS256) of data
 * under pk; ECDSA signatures are fixed-size r||s. */
static inline int
sig_verify(EVP_PKEY *pk, const char *alg, const void *data, size_t len,
    const uint8_t *sig, size_t siglen)
{
	const EVP_MD *md = strcmp(alg, "ES384") == 0 ? EVP_sha384() : EVP_sha256();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	const uint8_t *s = sig;
	size_t slen = siglen;
	int rc = 0;

	if (alg[0] == 'E') {
		size_t half = strcmp(alg, "ES384") == 0 ? 48 : 32;
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r, *ss;
		int n;

		if (siglen != 2 * half || es == NULL) {
			ECDSA_SIG_free(es);
			goto out;
		}
		r = BN_bin2bn(sig, (int)half, NULL);
		ss = BN_bin2bn(sig + half, (int)half, NULL);
		ECDSA_SIG_set0(es, r, ss);
		n = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (n <= 0)
			goto out;
		s = der;
		slen = (size_t)n;
	}
	rc = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) == 1 &&
	    EVP_DigestVerify(ctx, s, slen, data, len) == 1;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* base64url s decoded into a malloc'd NUL-terminated buffer; NULL when it
 * is not base64url. */
static inline uint8_t *
sig_b64d(const char *s, size_t *n)
{
	size_t len = strlen(s);
	uint8_t *out = malloc(len + 1);
	long r = out ? b64url_decode(out, len, s, len) : -1;

	if (r < 0) {
		free(out);
		return NULL;
	}
	out[r] = '\0';
	if (n != NULL)
		*n = (size_t)r;
	return out;
}

#endif
