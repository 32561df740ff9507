/* crypto.c - keys, signatures, CSRs and certificates through OpenSSL 3's
 * EVP interface (no deprecated RSA_ / EC_KEY_ calls). See crypto.h.
 * Every function that fails clears OpenSSL's error queue, so one failure
 * never shows up as the reason of a later one. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/crypto.h"
#include "common/b64url.h"
#include "common/errbuf.h"

#define WHY_MAX 160		/* a reason that an outer message wraps */
#define CSR_NAMES_MAX 1000	/* SANs in one CSR (Let's Encrypt takes 100) */
#define DNS_NAME_MAX 253
#define EC_SIG_DER_MAX 160	/* DER ECDSA signature of P-384: at most 104 */

struct crypto_key {
	EVP_PKEY *pkey;
	enum keytype type;
	bool priv;		/* false: public only (crypto_key_from_public) */
};

/* Copies n bytes of untrusted text into dst (dstlen > 0): control bytes
 * become '?', a UTF-8 sequence is never cut in the middle. */
static void
text_copy(char *dst, size_t dstlen, const unsigned char *src, size_t n)
{
	size_t i;

	if (n > dstlen - 1) {
		n = dstlen - 1;
		while (n > 0 && (src[n] & 0xc0) == 0x80)
			n--;	/* src[n] would start the cut-off part */
	}
	for (i = 0; i < n; i++)
		dst[i] = src[i] < 0x20 || src[i] == 0x7f ? '?' : (char)src[i];
	dst[i] = '\0';
}

char *
crypto_b64url(const void *data, size_t len)
{
	char *s;

	if (len > (SIZE_MAX - 1) / 2 || (s = malloc(B64URL_ENCLEN(len) + 1)) == NULL)
		return NULL;
	b64url_encode(s, data, len);
	return s;
}

void
crypto_wipe(void *p, size_t len)
{
	if (p != NULL)
		OPENSSL_cleanse(p, len);
}

void
crypto_wipe_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

/* ---- keys ---- */

/* Which of our types pk is; KEYTYPE_NONE with a reason otherwise. */
static enum keytype
pkey_type(const EVP_PKEY *pk, char *why, size_t whylen)
{
	char group[64];
	size_t glen = 0;
	int bits;

	if (pk == NULL) {
		errbuf_set(why, whylen, "no public key");
		return KEYTYPE_NONE;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
		    group, sizeof(group), &glen)) {
			errbuf_set(why, whylen, "an EC key without a named curve "
			    "(only P-256 and P-384)");
			return KEYTYPE_NONE;
		}
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			return KEYTYPE_EC_P256;
		if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			return KEYTYPE_EC_P384;
		errbuf_set(why, whylen, "an EC key on curve %s (only P-256 and P-384)",
		    group);
		return KEYTYPE_NONE;
	}
	if (EVP_PKEY_is_a(pk, "RSA")) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits == 2048)
			return KEYTYPE_RSA2048;
		if (bits == 3072)
			return KEYTYPE_RSA3072;
		if (bits == 4096)
			return KEYTYPE_RSA4096;
		errbuf_set(why, whylen, "an RSA key of %d bits (only 2048, 3072 or "
		    "4096)", bits);
		return KEYTYPE_NONE;
	}
	errbuf_set(why, whylen, "a key of type %s (only ECDSA P-256/P-384 and "
	    "RSA 2048/3072/4096)", EVP_PKEY_get0_type_name(pk) ?
	    EVP_PKEY_get0_type_name(pk) : "unknown");
	return KEYTYPE_NONE;
}

static struct crypto_key *
key_wrap(EVP_PKEY *pk, enum keytype t, bool priv)
{
	struct crypto_key *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	k->pkey = pk;
	k->type = t;
	k->priv = priv;
	return k;
}

struct crypto_key *
crypto_key_generate(enum keytype t, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;

	switch (t) {
	case KEYTYPE_EC_P256:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case KEYTYPE_EC_P384:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case KEYTYPE_RSA2048:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case KEYTYPE_RSA3072:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	case KEYTYPE_RSA4096:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
		break;
	case KEYTYPE_NONE:
		errbuf_set(err, errlen, "no key type to generate");
		return NULL;
	}
	if (pk == NULL) {
		errbuf_set(err, errlen, "cannot generate a %s key", keytype_name(t));
		ERR_clear_error();
		return NULL;
	}
	return key_wrap(pk, t, true);
}

/* Never asks for a passphrase: an encrypted key is refused, not prompted
 * for on a terminal hacme may not have. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

struct crypto_key *
crypto_key_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	struct crypto_key *k = NULL;
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIO *bio = NULL;
	char why[WHY_MAX];
	enum keytype t;

	if (pem == NULL || len == 0 || len > CRYPTO_PEM_MAX) {
		errbuf_set(err, errlen, "not a PEM private key (%s)",
		    len > CRYPTO_PEM_MAX ? "too large" : "empty");
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (pk == NULL) {
		errbuf_set(err, errlen, "not a PEM private key (or an encrypted "
		    "one: hacme takes unencrypted PKCS#8 or EC/RSA keys)");
		goto out;
	}
	if ((t = pkey_type(pk, why, sizeof(why))) == KEYTYPE_NONE) {
		errbuf_set(err, errlen, "unsupported private key: %s", why);
		goto out;
	}
	/* Cheap checks: a private part in range, and for EC that it matches
	 * the public point (RSA's pairwise check tests primes: too slow). */
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_private_check(ctx) != 1 ||
	    (!keytype_is_rsa(t) && EVP_PKEY_pairwise_check(ctx) != 1)) {
		errbuf_set(err, errlen, "not a valid %s private key", keytype_name(t));
		goto out;
	}
	k = key_wrap(pk, t, true);
	pk = NULL;
	if (k == NULL)
		errbuf_set(err, errlen, "out of memory");
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	ERR_clear_error();
	return k;
}

char *
crypto_key_pem(const struct crypto_key *k, size_t *len)
{
	BIO *bio = NULL;
	BUF_MEM *bm = NULL;
	char *out = NULL;

	if (k == NULL || !k->priv)
		goto out;
	/* Secure memory BIO: its buffers are wiped when freed. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL))
		goto out;
	BIO_get_mem_ptr(bio, &bm);
	if (bm == NULL || (out = malloc(bm->length + 1)) == NULL)
		goto out;
	memcpy(out, bm->data, bm->length);
	out[bm->length] = '\0';
	if (len != NULL)
		*len = bm->length;
out:
	BIO_free(bio);
	ERR_clear_error();
	return out;
}

enum keytype
crypto_key_type(const struct crypto_key *k)
{
	return k != NULL ? k->type : KEYTYPE_NONE;
}

void
crypto_key_free(struct crypto_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *
crypto_key_alg(const struct crypto_key *k)
{
	switch (crypto_key_type(k)) {
	case KEYTYPE_EC_P256:
		return "ES256";
	case KEYTYPE_EC_P384:
		return "ES384";
	case KEYTYPE_RSA2048:
	case KEYTYPE_RSA3072:
	case KEYTYPE_RSA4096:
		return "RS256";
	case KEYTYPE_NONE:
		break;
	}
	return NULL;
}

/* r||s of a DER ECDSA signature, each padded to half bytes. */
static int
ecdsa_der_to_raw(const uint8_t *der, size_t derlen, size_t half, uint8_t *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *es;
	const BIGNUM *r, *s;
	int rc = -1;

	if ((es = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL)
		return -1;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, out, (int)half) == (int)half &&
	    BN_bn2binpad(s, out + half, (int)half) == (int)half)
		rc = 0;
	ECDSA_SIG_free(es);
	return rc;
}

int
crypto_sign(const struct crypto_key *k, const void *data, size_t len,
    uint8_t *sig, size_t *siglen, char *err, size_t errlen)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t der[EC_SIG_DER_MAX];
	size_t n = 0, half;
	bool ec;
	int rc = -1;

	if (k == NULL || k->type == KEYTYPE_NONE || !k->priv) {
		errbuf_set(err, errlen, "cannot sign: no private key");
		goto out;
	}
	ec = !keytype_is_rsa(k->type);
	half = k->type == KEYTYPE_EC_P384 ? 48 : 32;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, k->type == KEYTYPE_EC_P384 ?
	    EVP_sha384() : EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, data, len) != 1) {
		errbuf_set(err, errlen, "cannot sign with the %s key",
		    keytype_name(k->type));
		goto out;
	}
	if (n > (ec ? sizeof(der) : CRYPTO_SIG_MAX)) {
		errbuf_set(err, errlen, "signature of %zu bytes is too large", n);
		goto out;
	}
	if (EVP_DigestSign(ctx, ec ? der : sig, &n, data, len) != 1) {
		errbuf_set(err, errlen, "cannot sign with the %s key",
		    keytype_name(k->type));
		goto out;
	}
	if (ec) {
		if (ecdsa_der_to_raw(der, n, half, sig) < 0) {
			errbuf_set(err, errlen, "cannot convert the ECDSA signature");
			goto out;
		}
		n = 2 * half;
	}
	*siglen = n;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	if (rc < 0)
		ERR_clear_error();
	return rc;
}

/* base64url of a big number: fixed width when width > 0, else minimal. */
static char *
bn_b64url(const EVP_PKEY *pk, const char *param, int width)
{
	BIGNUM *bn = NULL;
	uint8_t buf[CRYPTO_SIG_MAX + 1];
	char *s = NULL;
	int n;

	if (!EVP_PKEY_get_bn_param(pk, param, &bn))
		goto out;
	if (width > 0)
		n = BN_bn2binpad(bn, buf, width);
	else
		n = BN_num_bytes(bn) <= (int)sizeof(buf) ? BN_bn2bin(bn, buf) : -1;
	if (n > 0)
		s = crypto_b64url(buf, (size_t)n);
out:
	BN_free(bn);
	return s;
}

int
crypto_key_public(const struct crypto_key *k, char **a, char **b, const char **crv)
{
	int width;

	*a = *b = NULL;
	*crv = NULL;
	if (k == NULL || k->type == KEYTYPE_NONE)
		return -1;
	if (keytype_is_rsa(k->type)) {
		*a = bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		*b = bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
	} else {
		width = k->type == KEYTYPE_EC_P384 ? 48 : 32;
		*crv = k->type == KEYTYPE_EC_P384 ? "P-384" : "P-256";
		*a = bn_b64url(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, width);
		*b = bn_b64url(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, width);
	}
	if (*a == NULL || *b == NULL) {
		free(*a);
		free(*b);
		*a = *b = NULL;
		*crv = NULL;
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* Decodes base64url s into buf; the length or -1. */
static long
b64url_param(const char *s, uint8_t *buf, size_t cap)
{
	if (s == NULL)
		return -1;
	return b64url_decode(buf, cap, s, strlen(s));
}

struct crypto_key *
crypto_key_from_public(const char *a, const char *b, const char *crv,
    char *err, size_t errlen)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *n = NULL, *e = NULL;
	struct crypto_key *k = NULL;
	uint8_t abuf[CRYPTO_SIG_MAX + 1], bbuf[CRYPTO_SIG_MAX + 1];
	uint8_t point[1 + 2 * 48];
	long alen, blen;
	size_t width = 0;
	char why[WHY_MAX];
	enum keytype t;

	alen = b64url_param(a, abuf, sizeof(abuf));
	blen = b64url_param(b, bbuf, sizeof(bbuf));
	if (alen <= 0 || blen <= 0) {
		errbuf_set(err, errlen, "public key: parameters are not base64url");
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto oom;
	if (crv == NULL) {
		if ((n = BN_bin2bn(abuf, (int)alen, NULL)) == NULL ||
		    (e = BN_bin2bn(bbuf, (int)blen, NULL)) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto oom;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else {
		if (strcmp(crv, "P-256") == 0)
			width = 32;
		else if (strcmp(crv, "P-384") == 0)
			width = 48;
		if (width == 0 || (size_t)alen != width || (size_t)blen != width) {
			errbuf_set(err, errlen, "public key: not a P-256 or P-384 point");
			goto out;
		}
		point[0] = 0x04;	/* uncompressed */
		memcpy(point + 1, abuf, width);
		memcpy(point + 1 + width, bbuf, width);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		    crv, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
		    point, 1 + 2 * width))
			goto oom;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	}
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL || ctx == NULL)
		goto oom;
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		errbuf_set(err, errlen, "public key: invalid parameters");
		goto out;
	}
	if ((t = pkey_type(pk, why, sizeof(why))) == KEYTYPE_NONE) {
		errbuf_set(err, errlen, "unsupported public key: %s", why);
		goto out;
	}
	if ((k = key_wrap(pk, t, false)) == NULL)
		errbuf_set(err, errlen, "out of memory");
	pk = NULL;
	goto out;
oom:
	errbuf_set(err, errlen, "out of memory");
out:
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	ERR_clear_error();
	return k;
}

/* ---- digests, MAC, random ---- */

void
crypto_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32);	/* only without memory; never a match */
}

int
crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
    uint8_t out[32])
{
	size_t n = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, data, len,
	    out, 32, &n) == NULL || n != 32) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int
crypto_random(void *buf, size_t len)
{
	if (len > INT_MAX || RAND_bytes(buf, (int)len) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* ---- CSR ---- */

/* 4 or 16 bytes of an IPv4 or IPv6 literal into ip; 0 when s is none. */
static int
ip_literal(const char *s, uint8_t ip[16])
{
	if (inet_pton(AF_INET, s, ip) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, ip) == 1)
		return 16;
	return 0;
}

static bool
dns_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
		    c == '*'))
			return false;
	}
	return true;
}

/* One SAN entry: an IP address for an IP literal, else a DNS name. */
static GENERAL_NAME *
san_entry(const char *name, char *err, size_t errlen)
{
	GENERAL_NAME *g = NULL;
	ASN1_STRING *v = NULL;
	uint8_t ip[16];
	int iplen = ip_literal(name, ip);

	if (iplen == 0 && !dns_name_ok(name)) {
		errbuf_set(err, errlen, "CSR: \"%.64s\" is not a DNS name or an IP "
		    "address", name);
		return NULL;
	}
	if ((g = GENERAL_NAME_new()) == NULL ||
	    (v = iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new()) == NULL ||
	    !(iplen ? ASN1_STRING_set(v, ip, iplen) : ASN1_STRING_set(v, name, -1))) {
		errbuf_set(err, errlen, "out of memory");
		ASN1_STRING_free(v);
		GENERAL_NAME_free(g);
		return NULL;
	}
	GENERAL_NAME_set0_value(g, iplen ? GEN_IPADD : GEN_DNS, v);
	return g;
}

char *
crypto_csr_b64url(const struct crypto_key *k, const char *const *names, size_t n,
    char *err, size_t errlen)
{
	X509_REQ *req = NULL;
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *g;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	unsigned char *der = NULL;
	char *out = NULL;
	uint8_t ip[16];
	int derlen;

	if (k == NULL || !k->priv) {
		errbuf_set(err, errlen, "CSR: no private key");
		goto out;
	}
	if (names == NULL || n == 0 || n > CSR_NAMES_MAX) {
		errbuf_set(err, errlen, "CSR: %zu names (1 to %d)", n, CSR_NAMES_MAX);
		goto out;
	}
	if ((gens = sk_GENERAL_NAME_new_null()) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (names[i] == NULL) {
			errbuf_set(err, errlen, "CSR: name %zu missing", i + 1);
			goto out;
		}
		if ((g = san_entry(names[i], err, errlen)) == NULL)
			goto out;
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			errbuf_set(err, errlen, "out of memory");
			goto out;
		}
	}
	if ((req = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(req, X509_REQ_VERSION_1)) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	/* CN only for a DNS name: CAs want a CN that is one of the DNS SANs. */
	if (strlen(names[0]) <= 64 && ip_literal(names[0], ip) == 0 &&
	    !X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req),
	    NID_commonName, MBSTRING_ASC, (const unsigned char *)names[0], -1, -1, 0)) {
		errbuf_set(err, errlen, "CSR: cannot set the CN");
		goto out;
	}
	if (!X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, 0) ||
	    !X509_REQ_add_extensions(req, exts) ||
	    !X509_REQ_set_pubkey(req, k->pkey)) {
		errbuf_set(err, errlen, "CSR: cannot add the names");
		goto out;
	}
	if (X509_REQ_sign(req, k->pkey, EVP_sha256()) <= 0) {
		errbuf_set(err, errlen, "CSR: cannot sign with the %s key",
		    keytype_name(k->type));
		goto out;
	}
	if ((derlen = i2d_X509_REQ(req, &der)) <= 0 ||
	    (out = crypto_b64url(der, (size_t)derlen)) == NULL)
		errbuf_set(err, errlen, "CSR: cannot encode");
out:
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	ERR_clear_error();
	return out;
}

/* ---- certificates ---- */

/* The DER of one certificate, as the PEM block carried it. */
struct der_cert {
	X509 *x;
	unsigned char *der;
	long len;
};

static void
der_cert_fini(struct der_cert *d)
{
	X509_free(d->x);
	OPENSSL_free(d->der);
	memset(d, 0, sizeof(*d));
}

/* The next PEM block of bio that is a certificate. only_certs: another
 * block is an error; else it is skipped. 1 with *d set, 0 at the end of
 * the text, -1 with why. Text outside blocks is ignored. */
static int
pem_next_cert(BIO *bio, bool only_certs, struct der_cert *d, char *why, size_t whylen)
{
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	const unsigned char *p;
	long len = 0;
	unsigned long e;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	for (;;) {
		ERR_clear_error();
		if (!PEM_read_bio(bio, &name, &header, &data, &len)) {
			e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				rc = 0;
			else
				errbuf_set(why, whylen, "a malformed PEM block");
			goto out;
		}
		if (strcmp(name, "CERTIFICATE") == 0)
			break;
		if (only_certs) {
			char safe[40];

			text_copy(safe, sizeof(safe), (const unsigned char *)name,
			    strlen(name));
			errbuf_set(why, whylen, "a \"%s\" PEM block, not a CERTIFICATE",
			    safe);
			goto out;
		}
		OPENSSL_cleanse(data, (size_t)len);	/* maybe a key */
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
	}
	if (header[0] != '\0') {
		errbuf_set(why, whylen, "a CERTIFICATE block with PEM headers");
		goto out;
	}
	p = data;
	if ((d->x = d2i_X509(NULL, &p, len)) == NULL || p != data + len) {
		errbuf_set(why, whylen, "not an X.509 certificate");
		X509_free(d->x);
		d->x = NULL;
		goto out;
	}
	d->der = data;
	d->len = len;
	data = NULL;
	rc = 1;
out:
	if (data != NULL)
		OPENSSL_cleanse(data, (size_t)len);	/* maybe a key */
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	return rc;
}

/* The first certificate of pem. 0 or -1 with err. */
static int
first_cert(const char *pem, size_t len, struct der_cert *d, char *err, size_t errlen)
{
	char why[WHY_MAX];
	BIO *bio;
	int r;

	memset(d, 0, sizeof(*d));
	if (pem == NULL || len == 0 || len > CRYPTO_PEM_MAX) {
		errbuf_set(err, errlen, "no PEM certificate (%s)",
		    len > CRYPTO_PEM_MAX ? "too large" : "empty");
		return -1;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		return -1;
	}
	r = pem_next_cert(bio, false, d, why, sizeof(why));
	BIO_free(bio);
	if (r == 0)
		errbuf_set(err, errlen, "no PEM certificate");
	else if (r < 0)
		errbuf_set(err, errlen, "certificate: %s", why);
	return r == 1 ? 0 : -1;
}

/* The CN of nm (the last one if several); without one, the whole DN in
 * one line when dn, else "". */
static void
name_text(const X509_NAME *nm, bool dn, char *dst, size_t dstlen)
{
	const X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	int i = -1, last = -1, n;
	BIO *bio;
	char *p;
	long blen;

	dst[0] = '\0';
	while ((i = X509_NAME_get_index_by_NID(nm, NID_commonName, i)) >= 0)
		last = i;
	if (last >= 0 && (e = X509_NAME_get_entry(nm, last)) != NULL &&
	    (n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) >= 0) {
		text_copy(dst, dstlen, utf8, (size_t)n);
		OPENSSL_free(utf8);
		return;
	}
	if (!dn || (bio = BIO_new(BIO_s_mem())) == NULL)
		return;
	if (X509_NAME_print_ex(bio, nm, 0, XN_FLAG_RFC2253) >= 0 &&
	    (blen = BIO_get_mem_data(bio, &p)) > 0)
		text_copy(dst, dstlen, (const unsigned char *)p, (size_t)blen);
	BIO_free(bio);
}

/* x as PEM from the DER the CA sent, "\n"-terminated, malloc'd. */
static char *
der_to_pem(const struct der_cert *d)
{
	BIO *bio;
	char *p, *out = NULL;
	long n;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio(bio, "CERTIFICATE", "", d->der, d->len) > 0 &&
	    (n = BIO_get_mem_data(bio, &p)) > 0 &&
	    (out = malloc((size_t)n + 1)) != NULL) {
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(bio);
	return out;
}

int
crypto_chain_parse(struct crypto_chain *c, const char *pem, size_t len,
    char *err, size_t errlen)
{
	struct der_cert d[CRYPTO_CHAIN_MAX], next;
	char why[WHY_MAX], top[256];
	EVP_PKEY *pub;
	BIO *bio = NULL;
	size_t n = 0;
	int r, rc = -1;

	memset(c, 0, sizeof(*c));
	memset(d, 0, sizeof(d));
	if (pem == NULL || len == 0 || len > CRYPTO_PEM_MAX) {
		errbuf_set(err, errlen, "certificate chain: %s", len > CRYPTO_PEM_MAX ?
		    "larger than the limit" : "empty");
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	while ((r = pem_next_cert(bio, true, &next, why, sizeof(why))) == 1) {
		if (n == CRYPTO_CHAIN_MAX) {
			der_cert_fini(&next);
			errbuf_set(err, errlen, "certificate chain: more than %d "
			    "certificates", CRYPTO_CHAIN_MAX);
			goto out;
		}
		d[n++] = next;
	}
	if (r < 0) {
		errbuf_set(err, errlen, "certificate chain: block %zu: %s", n + 1, why);
		goto out;
	}
	if (n == 0) {
		errbuf_set(err, errlen, "certificate chain: no certificate");
		goto out;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		if (X509_check_issued(d[i + 1].x, d[i].x) != X509_V_OK) {
			errbuf_set(err, errlen, "certificate chain: certificate %zu "
			    "is not the issuer of certificate %zu (wrong order?)",
			    i + 2, i + 1);
			goto out;
		}
		pub = X509_get0_pubkey(d[i + 1].x);
		if (pub == NULL || X509_verify(d[i].x, pub) != 1) {
			errbuf_set(err, errlen, "certificate chain: the signature of "
			    "certificate %zu does not verify with the key of "
			    "certificate %zu", i + 1, i + 2);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if ((c->pem[i] = der_to_pem(&d[i])) == NULL) {
			errbuf_set(err, errlen, "out of memory");
			goto out;
		}
		c->n = i + 1;
	}
	name_text(X509_get_issuer_name(d[n - 1].x), true, top, sizeof(top));
	if ((c->issuer_cn_top = strdup(top)) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		der_cert_fini(&d[i]);
	BIO_free(bio);
	if (rc < 0)
		crypto_chain_free(c);
	ERR_clear_error();
	return rc;
}

void
crypto_chain_free(struct crypto_chain *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n && i < CRYPTO_CHAIN_MAX; i++)
		free(c->pem[i]);
	free(c->issuer_cn_top);
	memset(c, 0, sizeof(*c));
}

char *
crypto_chain_join(const struct crypto_chain *c, size_t *len)
{
	size_t total = 0, o = 0, l;
	char *out;

	for (size_t i = 0; i < c->n; i++)
		total += strlen(c->pem[i]);
	if ((out = malloc(total + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		l = strlen(c->pem[i]);
		memcpy(out + o, c->pem[i], l);
		o += l;
	}
	out[o] = '\0';
	if (len != NULL)
		*len = o;
	return out;
}

/* Upper-case hex of the serial, no leading zeros ("0" for zero). */
static int
serial_hex(const ASN1_INTEGER *sn, char out[CRYPTO_SERIAL_MAX], char *why,
    size_t whylen)
{
	BIGNUM *bn;
	char *hex = NULL, *p;
	int rc = -1;

	if ((bn = ASN1_INTEGER_to_BN(sn, NULL)) == NULL) {
		errbuf_set(why, whylen, "an invalid serial number");
		return -1;
	}
	if (BN_is_negative(bn) || BN_num_bytes(bn) > 20) {
		errbuf_set(why, whylen, "a serial number that is negative or "
		    "longer than 20 bytes");
		goto out;
	}
	if ((hex = BN_bn2hex(bn)) == NULL) {
		errbuf_set(why, whylen, "out of memory");
		goto out;
	}
	for (p = hex; p[0] == '0' && p[1] != '\0'; p++)
		;
	snprintf(out, CRYPTO_SERIAL_MAX, "%s", p);
	rc = 0;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

/* RFC 9773 section 4.1: base64url(AKI keyIdentifier) "." base64url(the
 * content octets of the serial's DER). "" without an AKI key id. */
static void
ari_id(X509 *x, char out[256])
{
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	unsigned char *der = NULL;
	const unsigned char *p;
	long clen;
	int dlen, tag, xclass;

	out[0] = '\0';
	if (aki == NULL || ASN1_STRING_length(aki) <= 0)
		return;
	if ((dlen = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der)) <= 0)
		return;
	p = der;
	if (!(ASN1_get_object(&p, &clen, &tag, &xclass, dlen) & 0x80) &&
	    tag == V_ASN1_INTEGER && clen > 0 &&
	    B64URL_ENCLEN((size_t)ASN1_STRING_length(aki)) + 1 +
	    B64URL_ENCLEN((size_t)clen) < 256) {
		size_t o = b64url_encode(out, ASN1_STRING_get0_data(aki),
		    (size_t)ASN1_STRING_length(aki));
		out[o++] = '.';
		b64url_encode(out + o, p, (size_t)clen);
	}
	OPENSSL_free(der);
}

/* A malloc'd copy of a DNS SAN: bytes outside printable ASCII become '?'
 * (a name from the certificate is compared and logged, never trusted). */
static char *
ascii_dup(const unsigned char *s, size_t n)
{
	char *out = malloc(n + 1);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = s[i] > 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	out[n] = '\0';
	return out;
}

/* The DNS and IP SANs of x into ci->names. */
static int
cert_sans(X509 *x, struct crypto_cert_info *ci)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	const ASN1_STRING *v;
	char ip[INET6_ADDRSTRLEN];
	char *name;
	int count, type, vlen, rc = -1;

	if (gens == NULL)
		return 0;
	count = sk_GENERAL_NAME_num(gens);
	if (count > 0 && (ci->names = calloc((size_t)count, sizeof(char *))) == NULL)
		goto out;
	for (int i = 0; i < count; i++) {
		v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
		vlen = ASN1_STRING_length(v);
		if (type == GEN_DNS)
			name = ascii_dup(ASN1_STRING_get0_data(v), (size_t)vlen);
		else if (type == GEN_IPADD && (vlen == 4 || vlen == 16) &&
		    inet_ntop(vlen == 4 ? AF_INET : AF_INET6,
		    ASN1_STRING_get0_data(v), ip, sizeof(ip)) != NULL)
			name = strdup(ip);
		else
			continue;	/* other kinds: not names hacme orders */
		if (name == NULL)
			goto out;
		ci->names[ci->nnames++] = name;
	}
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

static int
asn1_time(const ASN1_TIME *at, time_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (at == NULL || !ASN1_TIME_to_tm(at, &tm))
		return -1;
	*out = timegm(&tm);
	return 0;
}

int
crypto_cert_info(const char *pem, size_t len, struct crypto_cert_info *ci,
    char *err, size_t errlen)
{
	struct der_cert d;
	char why[WHY_MAX];
	int rc = -1;

	memset(ci, 0, sizeof(*ci));
	if (first_cert(pem, len, &d, err, errlen) < 0)
		goto out;
	if (serial_hex(X509_get0_serialNumber(d.x), ci->serial, why,
	    sizeof(why)) < 0) {
		errbuf_set(err, errlen, "certificate: %s", why);
		goto out;
	}
	if (asn1_time(X509_get0_notBefore(d.x), &ci->not_before) < 0 ||
	    asn1_time(X509_get0_notAfter(d.x), &ci->not_after) < 0) {
		errbuf_set(err, errlen, "certificate: invalid validity dates");
		goto out;
	}
	name_text(X509_get_issuer_name(d.x), true, ci->issuer_cn,
	    sizeof(ci->issuer_cn));
	name_text(X509_get_subject_name(d.x), false, ci->subject_cn,
	    sizeof(ci->subject_cn));
	if (cert_sans(d.x, ci) < 0) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	ari_id(d.x, ci->ari_id);
	ci->key = pkey_type(X509_get0_pubkey(d.x), NULL, 0);
	rc = 0;
out:
	der_cert_fini(&d);
	if (rc < 0)
		crypto_cert_info_free(ci);
	ERR_clear_error();
	return rc;
}

void
crypto_cert_info_free(struct crypto_cert_info *ci)
{
	if (ci == NULL)
		return;
	for (size_t i = 0; i < ci->nnames; i++)
		free(ci->names[i]);
	free(ci->names);
	ci->names = NULL;
	ci->nnames = 0;
}

bool
crypto_cert_matches_key(const char *pem, size_t len, const struct crypto_key *k)
{
	struct der_cert d;
	EVP_PKEY *pub;
	bool match = false;

	if (k == NULL || first_cert(pem, len, &d, NULL, 0) < 0)
		goto out;
	pub = X509_get0_pubkey(d.x);
	match = pub != NULL && EVP_PKEY_eq(pub, k->pkey) == 1;
	der_cert_fini(&d);
out:
	ERR_clear_error();
	return match;
}

char *
crypto_cert_der_b64url(const char *pem, size_t len, char *err, size_t errlen)
{
	struct der_cert d;
	char *out = NULL;

	if (first_cert(pem, len, &d, err, errlen) < 0)
		goto out;
	if ((out = crypto_b64url(d.der, (size_t)d.len)) == NULL)
		errbuf_set(err, errlen, "out of memory");
	der_cert_fini(&d);
out:
	ERR_clear_error();
	return out;
}

/* ---- TLS probe ---------------------------------------------------------- */

struct crypto_tls_probe {
	SSL *ssl;
};

/* Signature algorithms (TLS 1.2 and 1.3) and TLS 1.2 cipher suites that
 * leave the server one choice of certificate type. */
static const char tls_sigalgs_ec[] = "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512";
static const char tls_sigalgs_rsa[] = "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:"
    "rsa_pss_rsae_sha512:rsa_pkcs1_sha256:rsa_pkcs1_sha384:rsa_pkcs1_sha512";

/* One client context per kind (any, ECDSA, RSA), made once: SSL_CTX_new
 * costs about a millisecond, a probe runs on the event loop. */
static SSL_CTX *tls_ctx[3];

/* OpenSSL's first queued reason, or fallback. */
static void
tls_reason(char *err, size_t errlen, const char *what, const char *fallback)
{
	unsigned long e = ERR_peek_error();
	char buf[WHY_MAX];

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	errbuf_set(err, errlen, "%s: %s", what, e != 0 ? buf : fallback);
}

static SSL_CTX *
tls_client_ctx(enum keytype only)
{
	int kind = only == KEYTYPE_NONE ? 0 : keytype_is_rsa(only) ? 2 : 1;
	SSL_CTX *ctx;

	if (tls_ctx[kind] != NULL)
		return tls_ctx[kind];
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);	/* the caller compares serials */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);	/* a full handshake each time */
	if (kind != 0 && (SSL_CTX_set1_sigalgs_list(ctx, kind == 2 ? tls_sigalgs_rsa :
	    tls_sigalgs_ec) != 1 || SSL_CTX_set_cipher_list(ctx, kind == 2 ? "aRSA" :
	    "aECDSA") != 1)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	tls_ctx[kind] = ctx;
	return ctx;
}

struct crypto_tls_probe *
crypto_tls_probe_new(int fd, const char *sni, enum keytype only, char *err, size_t errlen)
{
	struct crypto_tls_probe *p;
	SSL_CTX *ctx;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	if ((ctx = tls_client_ctx(only)) == NULL || (p->ssl = SSL_new(ctx)) == NULL) {
		tls_reason(err, errlen, "TLS", "cannot make a TLS client");
		goto fail;
	}
	if ((sni != NULL && SSL_set_tlsext_host_name(p->ssl, sni) != 1) ||
	    SSL_set_fd(p->ssl, fd) != 1) {
		tls_reason(err, errlen, "TLS", "cannot set the server name");
		goto fail;
	}
	SSL_set_connect_state(p->ssl);
	ERR_clear_error();
	return p;
fail:
	crypto_tls_probe_free(p);
	ERR_clear_error();
	return NULL;
}

enum crypto_tls_status
crypto_tls_probe_step(struct crypto_tls_probe *p, char serial[CRYPTO_SERIAL_MAX],
    char *err, size_t errlen)
{
	enum crypto_tls_status st = CRYPTO_TLS_ERROR;
	char why[WHY_MAX];
	X509 *x;
	int rc;

	if ((rc = SSL_do_handshake(p->ssl)) != 1) {
		switch (SSL_get_error(p->ssl, rc)) {
		case SSL_ERROR_WANT_READ:
			st = CRYPTO_TLS_WANT_READ;
			break;
		case SSL_ERROR_WANT_WRITE:
			st = CRYPTO_TLS_WANT_WRITE;
			break;
		case SSL_ERROR_SYSCALL:
		case SSL_ERROR_ZERO_RETURN:
			tls_reason(err, errlen, "TLS handshake", "connection closed by the server");
			break;
		default:
			tls_reason(err, errlen, "TLS handshake", "failed");
			break;
		}
		goto out;
	}
	if ((x = SSL_get0_peer_certificate(p->ssl)) == NULL) {
		errbuf_set(err, errlen, "TLS handshake: the server sent no certificate");
		goto out;
	}
	if (serial_hex(X509_get0_serialNumber(x), serial, why, sizeof(why)) < 0) {
		errbuf_set(err, errlen, "served certificate: %s", why);
		goto out;
	}
	st = CRYPTO_TLS_DONE;
out:
	ERR_clear_error();
	return st;
}

void
crypto_tls_probe_free(struct crypto_tls_probe *p)
{
	if (p == NULL)
		return;
	if (p->ssl != NULL && SSL_is_init_finished(p->ssl))
		(void)SSL_shutdown(p->ssl);	/* close_notify, best effort */
	SSL_free(p->ssl);
	free(p);
	ERR_clear_error();
}
