/* test_crypto.c - keys, signatures (checked with OpenSSL directly), CSRs,
 * chains and certificate fields against a fixed chain made with the openssl
 * CLI (below, with the known answers it printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/crypto.h"
#include "common/b64url.h"
#include "sigcheck.h"
#include "tap.h"

/* The fixture chain, made with `openssl ca` (3.0.19):
 *   root  RSA 2048, "O=hacme tests, CN=Hacme Test Root X1", serial 01
 *   int   P-384, "CN=Hacme Test Intermediate E1", serial 0ABC, SKI set to
 *         69:88:5B:...:C8:D4 (the key id of RFC 9773's example), signed by
 *         root (sha256WithRSAEncryption), 2025-02-01 .. 2035-02-01
 *   leaf  P-256, "CN=a.example", serial 87654321, signed by int
 *         (ecdsa-with-SHA384), 2026-01-02T03:04:05Z .. 2026-04-02T03:04:05Z,
 *         SAN DNS:a.example, DNS:www.a.example, IP:192.0.2.7, IP:2001:db8::7
 * Known answers from the CLI: `date -u -d ... +%s` for the dates,
 * `openssl x509 -outform DER | sha256sum` for the leaf's DER, the key ids
 * of `openssl x509 -ext authorityKeyIdentifier` through base64 | tr. The
 * leaf's ARI id is RFC 9773 section 4.1's own example. */
static const char root_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIDIzCCAgugAwIBAgIBATANBgkqhkiG9w0BAQsFADAzMRQwEgYDVQQKDAtoYWNt\n"
	"ZSB0ZXN0czEbMBkGA1UEAwwSSGFjbWUgVGVzdCBSb290IFgxMB4XDTI1MDEwMTAw\n"
	"MDAwMFoXDTQ1MDEwMTAwMDAwMFowMzEUMBIGA1UECgwLaGFjbWUgdGVzdHMxGzAZ\n"
	"BgNVBAMMEkhhY21lIFRlc3QgUm9vdCBYMTCCASIwDQYJKoZIhvcNAQEBBQADggEP\n"
	"ADCCAQoCggEBAKzOvFOHpqCJPrq0/bVTFGJlrdtcY0AXY2es7NsYflnwVVMuhrSI\n"
	"bHsMtLo52qyO24QajIqFTAU3zTjuFQFD9rRyRQywFrHyQTNmHJMKKzzS7oK4xS2b\n"
	"RnTjhdnV+pSYso1AkiUuuhuoXSKawp1WwCyOONrBpXlKfYj2hdsw1jhoXw3gTOoD\n"
	"+MSWuCP+ZdXm66GOvFhQN/pCJz+yLeo/oZFehY4+9WkBZtUgzWl0Ikz2cl35X4GO\n"
	"gA88zCZysebiW0p2uMP2rVKVNEGQ+dnbUefoNjcZrbnO5PkHr0MmbBRUsesT3HSC\n"
	"hjAw9jWFP1T8pKajM6mrGPgHoI2Jm+VWxR8CAwEAAaNCMEAwDwYDVR0TAQH/BAUw\n"
	"AwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFIoNbkNMBbCIY/dlAOGCZLxN\n"
	"R/WLMA0GCSqGSIb3DQEBCwUAA4IBAQBolqNkTG9cRnpscVKlbJ4FFJ0Vb/rKmkvs\n"
	"rR+drncqN26ods8wanmzyJdTIbkqdYprLMkqoItzVswa02T4dl58QRip4FVynkSm\n"
	"9D2QfQmZzjDQN3/PeO1xP9J0h1yznNG45tyNBybviDkuvA6DO/X+O8cgNWbfBj5T\n"
	"8cnEwSfIqeYlcqftq0VWfxngEuH1BO8IkmHmap/L3tNCLJlEHv2fKM1ihCN5nlJn\n"
	"uYWlYpeVVHM/rWMsl/0jzsHQBMOMDAPBidWRp8QnuDYihZwgMk9m07MY/Ea+PUxn\n"
	"bZmmCoXnt8liPL5BNHwemp7Sr0pWIIPqMQU38WKevFBWJ54wKxK+\n"
	"-----END CERTIFICATE-----\n";

static const char int_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIICojCCAYqgAwIBAgICCrwwDQYJKoZIhvcNAQELBQAwMzEUMBIGA1UECgwLaGFj\n"
	"bWUgdGVzdHMxGzAZBgNVBAMMEkhhY21lIFRlc3QgUm9vdCBYMTAeFw0yNTAyMDEw\n"
	"MDAwMDBaFw0zNTAyMDEwMDAwMDBaMDsxFDASBgNVBAoMC2hhY21lIHRlc3RzMSMw\n"
	"IQYDVQQDDBpIYWNtZSBUZXN0IEludGVybWVkaWF0ZSBFMTB2MBAGByqGSM49AgEG\n"
	"BSuBBAAiA2IABPoWU24hgNIpccknCa1087DHoE7OLg3LqAeufhVz9xzLAFpOWC90\n"
	"3E7Viyo7YIkE4Y6Vfsi6lpDbsW/PkOYB8Gp4Doa12dID4VtdsIj5ydANWZgkuDuv\n"
	"yV4IKtyl0vDK3aNmMGQwEgYDVR0TAQH/BAgwBgEB/wIBADAOBgNVHQ8BAf8EBAMC\n"
	"AYYwHQYDVR0OBBYEFGmIW2uHRkBB4bN7hHugrizeAcjUMB8GA1UdIwQYMBaAFIoN\n"
	"bkNMBbCIY/dlAOGCZLxNR/WLMA0GCSqGSIb3DQEBCwUAA4IBAQBUja57SyMZArlQ\n"
	"hzzxS0wgd7tIYaoLCIzV5BIUOB0RFZ8YL0guT+KF/TFbMTgXJlFvDj2YBiJJanbU\n"
	"7UVFP7TkeJYUYP6NqNNVK/flXmY2mAo1vg7EXjm+lEy4fzIaCONPk4kjnPNOE1K8\n"
	"Myneh+VOR3Z6LGFsowgen8Y1u7gJa3VQuANnEJqIvkEN9+Q0CpdaaDPyPpBoTVKA\n"
	"VfhePhaOpjkjLtWIv8GTm84R3ohOl3C4dcb/kjFDDXxUiavRVoFX5ZW+fo069tHb\n"
	"2JTWeZ1xDqCICJF4UehoOm949blkPxnpsf3fVbG6l5hQHw4+F3zJUlXir4xNX4wI\n"
	"qv3V5Cl1\n"
	"-----END CERTIFICATE-----\n";

static const char leaf_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIICFjCCAZygAwIBAgIFAIdlQyEwCgYIKoZIzj0EAwMwOzEUMBIGA1UECgwLaGFj\n"
	"bWUgdGVzdHMxIzAhBgNVBAMMGkhhY21lIFRlc3QgSW50ZXJtZWRpYXRlIEUxMB4X\n"
	"DTI2MDEwMjAzMDQwNVoXDTI2MDQwMjAzMDQwNVowFDESMBAGA1UEAwwJYS5leGFt\n"
	"cGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErg6Cx76eqCXl0dY9D1cTyu84\n"
	"MHKNx3+MFNyiHmfsk5NL2SIU1w9nVtPTH4qUyHFJQ47K0FqnZTPeslNMfJPb/6OB\n"
	"szCBsDAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggr\n"
	"BgEFBQcDATAdBgNVHQ4EFgQUpI4nmATZ6OBB42RWoGZeifFHwGYwHwYDVR0jBBgw\n"
	"FoAUaYhba4dGQEHhs3uEe6CuLN4ByNQwOwYDVR0RBDQwMoIJYS5leGFtcGxlgg13\n"
	"d3cuYS5leGFtcGxlhwTAAAIHhxAgAQ24AAAAAAAAAAAAAAAHMAoGCCqGSM49BAMD\n"
	"A2gAMGUCMQC7sXAEob4Ipn3jbmk23uTmVTLT0JHkq/1gNbnTZdx0Qce1ZZGh+ARE\n"
	"J/NmBe/0AFMCMDcSOaUQT6cFHpBNgYZfWjqYlcpaa05/s2yplV/RuKJk/b1ZRZ1u\n"
	"aqKkf9GsnQG4Cw==\n"
	"-----END CERTIFICATE-----\n";

/* leaf.pem's key (a test key, public in this file). */
static const char leaf_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgU3HlPRsysYjghJTo\n"
	"M9rdUL2IHmlN8xzp0KIp7fH2B9uhRANCAASuDoLHvp6oJeXR1j0PVxPK7zgwco3H\n"
	"f4wU3KIeZ+yTk0vZIhTXD2dW09MfipTIcUlDjsrQWqdlM96yU0x8k9v/\n"
	"-----END PRIVATE KEY-----\n";

#define LEAF_NOT_BEFORE 1767323045	/* 2026-01-02T03:04:05Z */
#define LEAF_NOT_AFTER 1775099045	/* 2026-04-02T03:04:05Z */
#define INT_NOT_BEFORE 1738368000	/* 2025-02-01T00:00:00Z */
#define INT_NOT_AFTER 2053900800	/* 2035-02-01T00:00:00Z */
#define LEAF_DER_SHA256 \
	"120218f63ad4d43c555d32b04022b49504768e484cc23ad9f87f89881fef2799"

static char *
cat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

/* s with every "\n" turned into "\r\n". */
static char *
crlf(const char *s)
{
	char *out = malloc(2 * strlen(s) + 1), *o = out;

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			*o++ = '\r';
		*o++ = *s;
	}
	*o = '\0';
	return out;
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* pk as PEM: PKCS#8, or the traditional form. */
static char *
pem_of(EVP_PKEY *pk, int traditional)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *out = NULL;
	long n;

	if ((traditional ? PEM_write_bio_PrivateKey_traditional(bio, pk, NULL, NULL,
	    0, NULL, NULL) : PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL,
	    NULL)) && (n = BIO_get_mem_data(bio, &p)) > 0) {
		out = malloc((size_t)n + 1);
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(bio);
	return out;
}

static int
same_public(const struct crypto_key *a, const struct crypto_key *b)
{
	char *a1, *b1, *a2, *b2;
	const char *c1, *c2;
	int same;

	if (crypto_key_public(a, &a1, &b1, &c1) < 0)
		return 0;
	if (crypto_key_public(b, &a2, &b2, &c2) < 0) {
		free(a1);
		free(b1);
		return 0;
	}
	same = strcmp(a1, a2) == 0 && strcmp(b1, b2) == 0 &&
	    ((c1 == NULL && c2 == NULL) || (c1 && c2 && strcmp(c1, c2) == 0));
	free(a1);
	free(b1);
	free(a2);
	free(b2);
	return same;
}

/* ---- keys ---- */

static const struct {
	enum keytype t;
	const char *alg;
	size_t siglen;
	const char *trad;	/* traditional PEM label */
} kinds[] = {
	{ KEYTYPE_EC_P256, "ES256", 64, "EC PRIVATE KEY" },
	{ KEYTYPE_EC_P384, "ES384", 96, "EC PRIVATE KEY" },
	{ KEYTYPE_RSA2048, "RS256", 256, "RSA PRIVATE KEY" },
	{ KEYTYPE_RSA3072, "RS256", 384, "RSA PRIVATE KEY" },
	{ KEYTYPE_RSA4096, "RS256", 512, "RSA PRIVATE KEY" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static struct crypto_key *keys[NKINDS];

static void
test_key_kind(size_t i)
{
	const char *name = keytype_name(kinds[i].t);
	char err[CRYPTO_ERR_MAX] = "", *pem, *trad, *a, *b;
	const char *crv;
	struct crypto_key *k, *k2;
	EVP_PKEY *pk;
	uint8_t sig[CRYPTO_SIG_MAX];
	size_t len = 0, siglen = 0;
	static const char msg[] = "eyJhbGciOiJFUzI1NiJ9.e30";

	k = keys[i] = crypto_key_generate(kinds[i].t, err, sizeof(err));
	if (!ok(k != NULL, "%s: generated (%s)", name, err))
		return;
	is_int(crypto_key_type(k), kinds[i].t, "%s: type", name);
	is_str(crypto_key_alg(k), kinds[i].alg, "%s: alg", name);

	pem = crypto_key_pem(k, &len);
	ok(pem != NULL && len == strlen(pem) &&
	    strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0,
	    "%s: PKCS#8 PEM", name);
	k2 = crypto_key_from_pem(pem, len, err, sizeof(err));
	ok(k2 != NULL && crypto_key_type(k2) == kinds[i].t && same_public(k, k2),
	    "%s: PEM round trip (%s)", name, k2 ? "" : err);
	crypto_key_free(k2);
	crypto_wipe_free(pem, len);

	/* The traditional form OpenSSL 1.x and other tools write. */
	pk = sig_pkey(k);
	trad = pk ? pem_of(pk, 1) : NULL;
	ok(trad != NULL && strstr(trad, kinds[i].trad) != NULL,
	    "%s: traditional PEM made", name);
	k2 = trad ? crypto_key_from_pem(trad, strlen(trad), err, sizeof(err)) : NULL;
	ok(k2 != NULL && crypto_key_type(k2) == kinds[i].t && same_public(k, k2),
	    "%s: traditional PEM accepted", name);
	crypto_key_free(k2);
	free(trad);

	/* JWK parameters: fixed-width coordinates, n without leading zeros. */
	if (crypto_key_public(k, &a, &b, &crv) == 0) {
		if (keytype_is_rsa(kinds[i].t)) {
			is_int(strlen(a), B64URL_ENCLEN(kinds[i].siglen), "%s: n is %zu bytes",
			    name, kinds[i].siglen);
			is_str(b, "AQAB", "%s: e", name);
			ok(crv == NULL, "%s: no crv", name);
		} else {
			is_int(strlen(a), B64URL_ENCLEN(kinds[i].siglen / 2), "%s: x width", name);
			is_int(strlen(b), B64URL_ENCLEN(kinds[i].siglen / 2), "%s: y width", name);
			is_str(crv, kinds[i].t == KEYTYPE_EC_P256 ? "P-256" : "P-384",
			    "%s: crv", name);
		}
		/* The public key alone, back from its JWK parameters. */
		k2 = crypto_key_from_public(a, b, crv, err, sizeof(err));
		ok(k2 != NULL && crypto_key_type(k2) == kinds[i].t && same_public(k, k2),
		    "%s: public key from its JWK parameters (%s)", name, k2 ? "" : err);
		ok(k2 != NULL && crypto_sign(k2, msg, 3, sig, &siglen, err,
		    sizeof(err)) < 0 && crypto_key_pem(k2, NULL) == NULL,
		    "%s: a public-only key neither signs nor writes PEM", name);
		crypto_key_free(k2);
		free(a);
		free(b);
	} else {
		ok(0, "%s: public parameters", name);
	}

	/* Signatures, checked with OpenSSL. */
	ok(crypto_sign(k, msg, sizeof(msg) - 1, sig, &siglen, err, sizeof(err)) == 0,
	    "%s: signs", name);
	is_int(siglen, kinds[i].siglen, "%s: signature length", name);
	ok(pk && sig_verify(pk, kinds[i].alg, msg, sizeof(msg) - 1, sig, siglen),
	    "%s: signature verifies with OpenSSL", name);
	ok(pk && !sig_verify(pk, kinds[i].alg, msg, sizeof(msg) - 2, sig, siglen),
	    "%s: and not over other data", name);
	if (kinds[i].t == KEYTYPE_EC_P384)
		ok(pk && !sig_verify(pk, "ES256", msg, sizeof(msg) - 1, sig, siglen),
		    "%s: the digest is SHA-384, not SHA-256", name);
	EVP_PKEY_free(pk);
}

/* Short r or s (a leading zero byte, 1 in 128 signatures) must be padded:
 * sign many times, every signature 64 bytes and valid. */
static void
test_ecdsa_padding(void)
{
	struct crypto_key *k = keys[0];
	EVP_PKEY *pk = sig_pkey(k);
	uint8_t sig[CRYPTO_SIG_MAX];
	size_t siglen;
	int bad = 0, padded = 0;
	char data[32];

	for (int i = 0; i < 600 && k && pk; i++) {
		int n = snprintf(data, sizeof(data), "message %d", i);

		if (crypto_sign(k, data, (size_t)n, sig, &siglen, NULL, 0) < 0 ||
		    siglen != 64 || !sig_verify(pk, "ES256", data, (size_t)n, sig, 64))
			bad++;
		if (sig[0] == 0 || sig[32] == 0)
			padded++;
	}
	is_int(bad, 0, "ES256: 600 signatures, all 64 bytes and valid (%d with "
	    "a zero-padded r or s)", padded);
	EVP_PKEY_free(pk);
}

static void
refuse_pkey(EVP_PKEY *pk, const char *what, const char *why_has)
{
	char err[CRYPTO_ERR_MAX] = "", *pem = pk ? pem_of(pk, 0) : NULL;
	struct crypto_key *k;

	k = pem ? crypto_key_from_pem(pem, strlen(pem), err, sizeof(err)) : NULL;
	ok(pem != NULL && k == NULL && strstr(err, why_has) != NULL,
	    "refused: %s (%s)", what, err);
	crypto_key_free(k);
	free(pem);
	EVP_PKEY_free(pk);
}

static void
refuse_text(const char *pem, size_t len, const char *what, const char *why_has)
{
	char err[CRYPTO_ERR_MAX] = "";
	struct crypto_key *k = crypto_key_from_pem(pem, len, err, sizeof(err));

	ok(k == NULL && strstr(err, why_has) != NULL, "refused: %s (%s)", what, err);
	crypto_key_free(k);
}

static void
test_key_refusals(void)
{
	EVP_PKEY *pk;
	BIO *bio;
	char *p, *big;
	long n;

	refuse_pkey(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), "Ed25519", "ED25519");
	refuse_pkey(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"), "P-521",
	    "secp521r1 (only P-256 and P-384)");
	refuse_pkey(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"), "secp256k1",
	    "secp256k1");
	refuse_pkey(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), "RSA 1024",
	    "RSA key of 1024 bits");
	refuse_pkey(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2560), "RSA 2560",
	    "RSA key of 2560 bits");

	/* Encrypted: refused without asking for a passphrase. */
	pk = sig_pkey(keys[0]);
	bio = BIO_new(BIO_s_mem());
	if (pk && PEM_write_bio_PKCS8PrivateKey(bio, pk, EVP_aes_128_cbc(), "pw", 2,
	    NULL, NULL) && (n = BIO_get_mem_data(bio, &p)) > 0)
		refuse_text(p, (size_t)n, "an encrypted PKCS#8 key", "encrypted");
	else
		ok(0, "encrypted key made");
	BIO_free(bio);
	/* A public key is not a private key. */
	bio = BIO_new(BIO_s_mem());
	if (pk && PEM_write_bio_PUBKEY(bio, pk) && (n = BIO_get_mem_data(bio, &p)) > 0)
		refuse_text(p, (size_t)n, "a public key", "not a PEM private key");
	else
		ok(0, "public key PEM made");
	BIO_free(bio);
	EVP_PKEY_free(pk);

	refuse_text(leaf_pem, strlen(leaf_pem), "a certificate", "not a PEM private key");
	refuse_text("hello", 5, "text", "not a PEM private key");
	refuse_text("", 0, "nothing", "empty");
	refuse_text(leaf_key, strlen(leaf_key) - 40, "a cut key", "not a PEM private key");
	big = calloc(1, CRYPTO_PEM_MAX + 2);
	memcpy(big, leaf_key, strlen(leaf_key));
	refuse_text(big, CRYPTO_PEM_MAX + 1, "a key of more than CRYPTO_PEM_MAX bytes",
	    "too large");
	free(big);
}

/* ---- CSR ---- */

/* The SANs of req as "DNS:x" / "IP:y" words joined by ' '. */
static void
csr_sans(X509_REQ *req, char *out, size_t outlen)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name,
	    NULL, NULL) : NULL;
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char *v = NULL;

		if (g->type == GEN_DNS)
			v = OPENSSL_strndup((const char *)g->d.dNSName->data,
			    (size_t)g->d.dNSName->length);
		else if (g->type == GEN_IPADD)
			v = OPENSSL_buf2hexstr(g->d.iPAddress->data, g->d.iPAddress->length);
		o += (size_t)snprintf(out + o, outlen - o, "%s%s:%s", o ? " " : "",
		    g->type == GEN_DNS ? "DNS" : g->type == GEN_IPADD ? "IP" : "?",
		    v ? v : "");
		OPENSSL_free(v);
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

/* The CSR for names by k, decoded; checks signature and key. */
static X509_REQ *
csr_check(const struct crypto_key *k, const char *const *names, size_t n,
    const char *what)
{
	char err[CRYPTO_ERR_MAX] = "";
	char *b64 = crypto_csr_b64url(k, names, n, err, sizeof(err));
	uint8_t *der;
	const unsigned char *p;
	size_t len = 0;
	X509_REQ *req = NULL;
	EVP_PKEY *pk = sig_pkey(k);

	if (!ok(b64 != NULL, "%s: CSR made (%s)", what, err))
		goto out;
	ok(b64url_alphabet(b64, strlen(b64)), "%s: base64url", what);
	der = sig_b64d(b64, &len);
	p = der;
	req = der ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
	ok(req != NULL && p == der + len, "%s: DER parses as a PKCS#10 request", what);
	if (req != NULL) {
		ok(X509_REQ_verify(req, pk) == 1, "%s: signature verifies", what);
		ok(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), pk) == 1, "%s: the key's "
		    "public key", what);
		is_int(X509_REQ_get_signature_nid(req), keytype_is_rsa(crypto_key_type(k)) ?
		    NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256,
		    "%s: signed with SHA-256", what);
		is_int(X509_REQ_get_version(req), 0, "%s: version 1", what);
		/* A changed byte in the signature: no longer valid. */
		der[len - 3] ^= 0x01;
		p = der;
		X509_REQ *bad = d2i_X509_REQ(NULL, &p, (long)len);
		ok(bad == NULL || X509_REQ_verify(bad, pk) != 1,
		    "%s: a changed signature does not verify", what);
		X509_REQ_free(bad);
	}
	free(der);
out:
	EVP_PKEY_free(pk);
	free(b64);
	return req;
}

static void
subject_text(X509_REQ *req, char *out, size_t outlen)
{
	X509_NAME_oneline(X509_REQ_get_subject_name(req), out, (int)outlen);
}

static void
test_csr(void)
{
	static const char *const names[] = { "a.example", "www.a.example", "192.0.2.1",
		"2001:db8::1", "*.b.example" };
	static const char *const ip_first[] = { "2001:db8::2", "c.example" };
	char long_name[80], err[CRYPTO_ERR_MAX], sans[512], subj[256];
	const char *const long_first[] = { long_name, "d.example" };
	X509_REQ *req;
	char *b64;

	for (size_t i = 0; i < 3; i += 2) {	/* P-256 and RSA 2048 */
		const char *what = keytype_name(kinds[i].t);

		req = csr_check(keys[i], names, 5, what);
		if (req == NULL)
			continue;
		csr_sans(req, sans, sizeof(sans));
		is_str(sans, "DNS:a.example DNS:www.a.example IP:C0:00:02:01 "
		    "IP:20:01:0D:B8:00:00:00:00:00:00:00:00:00:00:00:01 DNS:*.b.example",
		    "%s: SANs in order, IPv4 and IPv6 as IP entries", what);
		subject_text(req, subj, sizeof(subj));
		is_str(subj, "/CN=a.example", "%s: subject CN = names[0]", what);
		X509_REQ_free(req);
	}

	memset(long_name, 'x', 61);
	memcpy(long_name + 61, ".com", 5);	/* 65 characters */
	if ((req = csr_check(keys[0], long_first, 2, "long names[0]")) != NULL) {
		subject_text(req, subj, sizeof(subj));
		is_str(subj, "", "a names[0] of 65 characters: empty subject");
		csr_sans(req, sans, sizeof(sans));
		ok(strncmp(sans, "DNS:xxxx", 8) == 0 && strstr(sans, " DNS:d.example"),
		    "... and it is a SAN");
		X509_REQ_free(req);
	}
	long_name[60] = '\0';
	memcpy(long_name + 60, ".com", 5);	/* 64 characters */
	if ((req = csr_check(keys[0], long_first, 2, "64-char names[0]")) != NULL) {
		subject_text(req, subj, sizeof(subj));
		ok(strlen(subj) == 4 + 64, "a names[0] of 64 characters is the CN");
		X509_REQ_free(req);
	}
	if ((req = csr_check(keys[0], ip_first, 2, "IP first")) != NULL) {
		subject_text(req, subj, sizeof(subj));
		is_str(subj, "", "an IP address as names[0]: no CN");
		X509_REQ_free(req);
	}

	b64 = crypto_csr_b64url(keys[0], names, 0, err, sizeof(err));
	ok(b64 == NULL && strstr(err, "0 names"), "CSR: no names refused (%s)", err);
	{
		static const char *const bad[] = { "a.example", "bad name" };
		static const char *const zone[] = { "fe80::1%eth0" };

		b64 = crypto_csr_b64url(keys[0], bad, 2, err, sizeof(err));
		ok(b64 == NULL && strstr(err, "\"bad name\""), "CSR: a name with a "
		    "space refused (%s)", err);
		b64 = crypto_csr_b64url(keys[0], zone, 1, err, sizeof(err));
		ok(b64 == NULL && strstr(err, "not a DNS name"), "CSR: an IPv6 with "
		    "a zone refused (%s)", err);
	}
}

/* ---- chains ---- */

static void
chain_ok(const char *text, size_t n, const char *top, const char *what)
{
	struct crypto_chain c;
	char err[CRYPTO_ERR_MAX] = "", *joined;
	const char *want[3] = { leaf_pem, int_pem, root_pem };
	size_t len = 0;
	int same = 1;

	if (!ok(crypto_chain_parse(&c, text, strlen(text), err, sizeof(err)) == 0,
	    "chain %s: parsed (%s)", what, err))
		return;
	is_int(c.n, n, "chain %s: %zu certificates", what, n);
	for (size_t i = 0; i < c.n && i < 3; i++)
		same &= strcmp(c.pem[i], want[i]) == 0;
	ok(same, "chain %s: each block as the CA's DER in clean PEM", what);
	is_str(c.issuer_cn_top, top, "chain %s: issuer_cn_top", what);
	joined = crypto_chain_join(&c, &len);
	{
		char *expect = cat3(leaf_pem, n > 1 ? int_pem : "", n > 2 ? root_pem : "");

		is_str(joined, expect, "chain %s: joined, no blank line", what);
		is_int(len, strlen(expect), "chain %s: joined length", what);
		free(expect);
	}
	free(joined);
	crypto_chain_free(&c);
}

static void
chain_refused(const char *text, size_t len, const char *why_has, const char *what)
{
	struct crypto_chain c;
	char err[CRYPTO_ERR_MAX] = "";
	int rc = crypto_chain_parse(&c, text, len, err, sizeof(err));

	ok(rc < 0 && strstr(err, why_has) != NULL && c.n == 0 &&
	    c.issuer_cn_top == NULL, "chain %s: refused (%s)", what, err);
	crypto_chain_free(&c);
}

static void
test_chain(void)
{
	char *s, *t, *u, *bad;
	char nine[9 * sizeof(leaf_pem)];

	s = cat3(leaf_pem, int_pem, root_pem);
	chain_ok(s, 3, "Hacme Test Root X1", "leaf+int+root");
	t = crlf(s);
	chain_ok(t, 3, "Hacme Test Root X1", "with CRLF");
	free(t);
	free(s);
	s = cat3(leaf_pem, int_pem, "");
	chain_ok(s, 2, "Hacme Test Root X1", "leaf+int");
	free(s);
	chain_ok(leaf_pem, 1, "Hacme Test Intermediate E1", "leaf alone");

	/* Blank lines and text around the blocks. */
	t = cat3("\n\n", leaf_pem, "\n\n");
	u = cat3("Subject: a.example\n", t, "   \n\r\n");
	free(t);
	t = cat3(u, int_pem, "\nissuer: Hacme\n");
	s = crlf(t);
	chain_ok(s, 2, "Hacme Test Root X1", "blank lines, CRLF and text between");
	free(s);
	free(t);
	free(u);

	s = cat3(int_pem, leaf_pem, "");
	chain_refused(s, strlen(s), "wrong order", "int before leaf");
	free(s);
	s = cat3(leaf_pem, root_pem, "");
	chain_refused(s, strlen(s), "certificate 2 is not the issuer of certificate 1",
	    "leaf+root, no intermediate");
	free(s);
	s = cat3(leaf_pem, int_pem, leaf_key);
	chain_refused(s, strlen(s), "block 3: a \"PRIVATE KEY\" PEM block",
	    "a key after the certificates");
	ok(strstr(s, "MIGHAgEAMBMGByqGSM49") != NULL, "(the key was there)");
	free(s);
	chain_refused("", 0, "empty", "nothing");
	chain_refused("no PEM here\n", 12, "no certificate", "text only");
	chain_refused(leaf_pem, strlen(leaf_pem) - 40, "block 1: a malformed PEM block",
	    "a cut block");
	nine[0] = '\0';
	for (int i = 0; i < 9; i++)
		strcat(nine, leaf_pem);
	chain_refused(nine, strlen(nine), "more than 8", "nine certificates");

	/* A changed byte of the leaf's signature (its last base64 line): the
	 * block still parses, the chain does not verify. */
	bad = strdup(leaf_pem);
	t = strstr(bad, "aqKkf9GsnQG4Cw==");
	if (ok(t != NULL, "leaf signature line found")) {
		t[0] = 'b';
		s = cat3(bad, int_pem, "");
		chain_refused(s, strlen(s), "signature of certificate 1 does not verify",
		    "a forged leaf signature");
		free(s);
		chain_ok(leaf_pem, 1, "Hacme Test Intermediate E1", "(unchanged leaf)");
	}
	free(bad);
	/* Base64 that is not a certificate. */
	chain_refused("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
	    63, "not an X.509 certificate", "hello in a CERTIFICATE block");
}

/* ---- certificate fields ---- */

static void
test_cert_info(void)
{
	struct crypto_cert_info ci;
	char err[CRYPTO_ERR_MAX] = "", *s;

	if (ok(crypto_cert_info(leaf_pem, strlen(leaf_pem), &ci, err, sizeof(err)) == 0,
	    "leaf: info (%s)", err)) {
		is_str(ci.serial, "87654321", "leaf: serial");
		is_int(ci.not_before, LEAF_NOT_BEFORE, "leaf: notBefore");
		is_int(ci.not_after, LEAF_NOT_AFTER, "leaf: notAfter");
		is_str(ci.issuer_cn, "Hacme Test Intermediate E1", "leaf: issuer CN");
		is_str(ci.subject_cn, "a.example", "leaf: subject CN");
		is_int(ci.nnames, 4, "leaf: 4 SANs");
		if (ci.nnames == 4) {
			is_str(ci.names[0], "a.example", "leaf: SAN 1");
			is_str(ci.names[1], "www.a.example", "leaf: SAN 2");
			is_str(ci.names[2], "192.0.2.7", "leaf: SAN 3 (IPv4)");
			is_str(ci.names[3], "2001:db8::7", "leaf: SAN 4 (IPv6)");
		}
		is_str(ci.ari_id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
		    "leaf: ARI id (RFC 9773 section 4.1's example)");
		is_int(ci.key, KEYTYPE_EC_P256, "leaf: key type");
		crypto_cert_info_free(&ci);
	}
	if (ok(crypto_cert_info(int_pem, strlen(int_pem), &ci, err, sizeof(err)) == 0,
	    "intermediate: info (%s)", err)) {
		is_str(ci.serial, "ABC", "intermediate: serial without the leading zero");
		is_int(ci.not_before, INT_NOT_BEFORE, "intermediate: notBefore");
		is_int(ci.not_after, INT_NOT_AFTER, "intermediate: notAfter");
		is_str(ci.issuer_cn, "Hacme Test Root X1", "intermediate: issuer CN");
		is_int(ci.nnames, 0, "intermediate: no SANs");
		is_str(ci.ari_id, "ig1uQ0wFsIhj92UA4YJkvE1H9Ys.Crw", "intermediate: ARI id");
		is_int(ci.key, KEYTYPE_EC_P384, "intermediate: key type");
		crypto_cert_info_free(&ci);
	}
	if (ok(crypto_cert_info(root_pem, strlen(root_pem), &ci, err, sizeof(err)) == 0,
	    "root: info (%s)", err)) {
		is_str(ci.serial, "1", "root: serial");
		is_str(ci.ari_id, "", "root: no AKI, no ARI id");
		is_int(ci.key, KEYTYPE_RSA2048, "root: key type");
		is_str(ci.subject_cn, "Hacme Test Root X1", "root: subject CN");
		crypto_cert_info_free(&ci);
	}
	/* haproxy.pem's layout: the key first, then the certificate. */
	s = cat3(leaf_key, leaf_pem, int_pem);
	ok(crypto_cert_info(s, strlen(s), &ci, err, sizeof(err)) == 0 &&
	    strcmp(ci.serial, "87654321") == 0, "key + leaf + int: the leaf's info");
	crypto_cert_info_free(&ci);
	free(s);
	ok(crypto_cert_info("junk", 4, &ci, err, sizeof(err)) < 0 && ci.names == NULL &&
	    ci.serial[0] == '\0', "junk: refused, info empty (%s)", err);
}

/* A self-signed P-256 certificate whose subject has no CN. */
static char *
no_cn_cert(void)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	X509_NAME *nm = X509_get_subject_name(x);
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *out = NULL;
	long n;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 0);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"No CN Org",
	    -1, -1, 0);
	X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC, (const unsigned char *)"FR",
	    -1, -1, 0);
	X509_set_issuer_name(x, nm);
	X509_set_pubkey(x, pk);
	if (X509_sign(x, pk, EVP_sha256()) > 0 && PEM_write_bio_X509(bio, x) &&
	    (n = BIO_get_mem_data(bio, &p)) > 0) {
		out = malloc((size_t)n + 1);
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(bio);
	X509_free(x);
	EVP_PKEY_free(pk);
	return out;
}

static void
test_cert_misc(void)
{
	struct crypto_key *k;
	struct crypto_cert_info ci;
	struct crypto_chain c;
	char err[CRYPTO_ERR_MAX] = "", *b64, *s, shahex[65];
	uint8_t *der, md[32];
	size_t len = 0;

	k = crypto_key_from_pem(leaf_key, strlen(leaf_key), err, sizeof(err));
	ok(k != NULL && crypto_key_type(k) == KEYTYPE_EC_P256, "leaf key loads (%s)", err);
	ok(crypto_cert_matches_key(leaf_pem, strlen(leaf_pem), k), "leaf matches its key");
	ok(!crypto_cert_matches_key(int_pem, strlen(int_pem), k),
	    "intermediate does not match the leaf key");
	ok(!crypto_cert_matches_key(leaf_pem, strlen(leaf_pem), keys[0]),
	    "leaf does not match another P-256 key");
	ok(!crypto_cert_matches_key(leaf_pem, strlen(leaf_pem), keys[2]),
	    "leaf does not match an RSA key");
	ok(!crypto_cert_matches_key("junk", 4, k), "junk matches nothing");
	crypto_key_free(k);

	b64 = crypto_cert_der_b64url(leaf_pem, strlen(leaf_pem), err, sizeof(err));
	der = b64 ? sig_b64d(b64, &len) : NULL;
	if (der != NULL) {
		crypto_sha256(der, len, md);
		hex(md, 32, shahex);
		is_str(shahex, LEAF_DER_SHA256, "leaf DER: SHA-256 as openssl x509 "
		    "-outform DER | sha256sum");
	} else {
		ok(0, "leaf DER base64url (%s)", err);
	}
	free(der);
	free(b64);
	b64 = crypto_cert_der_b64url("x", 1, err, sizeof(err));
	ok(b64 == NULL && err[0] != '\0', "DER of junk refused (%s)", err);

	/* Without a CN the issuer is the whole DN. */
	s = no_cn_cert();
	ok(s && crypto_cert_info(s, strlen(s), &ci, err, sizeof(err)) == 0,
	    "no-CN certificate: info (%s)", err);
	is_str(ci.issuer_cn, "C=FR,O=No CN Org", "no-CN issuer: the DN in one line");
	is_str(ci.subject_cn, "", "no-CN subject: \"\"");
	is_str(ci.serial, "0", "serial 0 is \"0\"");
	crypto_cert_info_free(&ci);
	ok(s && crypto_chain_parse(&c, s, strlen(s), err, sizeof(err)) == 0 &&
	    strcmp(c.issuer_cn_top, "C=FR,O=No CN Org") == 0,
	    "no-CN chain: issuer_cn_top is the DN");
	crypto_chain_free(&c);
	free(s);
}

/* ---- digests, MAC, random ---- */

static void
test_primitives(void)
{
	uint8_t md[32], r1[32], r2[32];
	char h[65];
	char *b;

	crypto_sha256("abc", 3, md);
	hex(md, 32, h);
	is_str(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "SHA-256(\"abc\") (FIPS 180-2)");
	ok(crypto_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?",
	    28, md) == 0, "HMAC-SHA256 computes");
	hex(md, 32, h);
	is_str(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	    "HMAC-SHA256 (RFC 4231 test case 2)");
	ok(crypto_random(r1, sizeof(r1)) == 0 && crypto_random(r2, sizeof(r2)) == 0 &&
	    memcmp(r1, r2, sizeof(r1)) != 0, "random: two draws differ");
	b = crypto_b64url("\xfb\xff\xbf", 3);
	is_str(b, "-_-_", "crypto_b64url: the url-safe alphabet");
	free(b);
	crypto_wipe_free(NULL, 0);
	b = strdup("secret");
	crypto_wipe_free(b, 6);
	ok(1, "crypto_wipe_free: NULL and a buffer");
}

static void
test_from_public_refusals(void)
{
	char err[CRYPTO_ERR_MAX] = "";
	struct crypto_key *k;

	k = crypto_key_from_public("AAAA", "AAAA", "P-256", err, sizeof(err));
	ok(k == NULL && strstr(err, "P-256"), "public key: short coordinates refused (%s)",
	    err);
	k = crypto_key_from_public("rg6Cx76eqCXl0dY9D1cTyu84MHKNx3-MFNyiHmfsk5M",
	    "S9kiFNcPZ1bT0x-KlMhxSUOOytBap2Uz3rJTTHyT2_8", "P-521", err, sizeof(err));
	ok(k == NULL, "public key: P-521 refused (%s)", err);
	/* The leaf's x with y + 1: not on the curve. */
	k = crypto_key_from_public("rg6Cx76eqCXl0dY9D1cTyu84MHKNx3-MFNyiHmfsk5M",
	    "S9kiFNcPZ1bT0x-KlMhxSUOOytBap2Uz3rJTTHyT2_9", "P-256", err, sizeof(err));
	ok(k == NULL, "public key: a point off the curve refused (%s)", err);
	k = crypto_key_from_public("rg6Cx76eqCXl0dY9D1cTyu84MHKNx3-MFNyiHmfsk5M",
	    "S9kiFNcPZ1bT0x-KlMhxSUOOytBap2Uz3rJTTHyT2_8", "P-256", err, sizeof(err));
	ok(k != NULL && crypto_key_type(k) == KEYTYPE_EC_P256, "public key: the leaf's "
	    "point (%s)", err);
	crypto_key_free(k);
	k = crypto_key_from_public("AQAB", "AQAB", NULL, err, sizeof(err));
	ok(k == NULL, "public key: a 17-bit RSA modulus refused (%s)", err);
	k = crypto_key_from_public("not base64!", "AQAB", NULL, err, sizeof(err));
	ok(k == NULL && strstr(err, "base64url"), "public key: not base64url (%s)", err);
}

int
main(void)
{
	for (size_t i = 0; i < NKINDS; i++)
		test_key_kind(i);
	test_ecdsa_padding();
	test_key_refusals();
	test_csr();
	test_chain();
	test_cert_info();
	test_cert_misc();
	test_primitives();
	test_from_public_refusals();
	for (size_t i = 0; i < NKINDS; i++)
		crypto_key_free(keys[i]);
	return tap_done();
}
