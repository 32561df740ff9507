/* crypto.h - all of OpenSSL that hacme uses, behind one interface (keys,
 * signatures, CSRs, certificate parsing). Nothing else includes OpenSSL.
 *
 * Functions that can fail return 0 / a pointer, or -1 / NULL with a one-line
 * reason in err (when err is not NULL), e.g. "key.pem: not a PEM private
 * key". No function ever logs or returns private key material except
 * crypto_key_pem. */
#ifndef HACME_CRYPTO_H
#define HACME_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "acme/keytype.h"

struct crypto_key;		/* a private key (EVP_PKEY) */

#define CRYPTO_ERR_MAX 256	/* an err buffer of this size is never cut */
#define CRYPTO_SIG_MAX 512	/* bytes of any signature (RSA 4096) */
#define CRYPTO_SERIAL_MAX 41	/* hex chars of a 20-byte serial + NUL */
#define CRYPTO_CHAIN_MAX 8	/* certificates in a chain */
#define CRYPTO_PEM_MAX (256 * 1024)	/* bytes of a PEM chain we accept */

/* A new key. NULL on failure. */
struct crypto_key *crypto_key_generate(enum keytype t, char *err, size_t errlen);
/* A private key from PEM (PKCS#8, or traditional EC/RSA); only the types of
 * keytype.h are accepted (P-256, P-384, RSA of exactly 2048, 3072 or 4096
 * bits); an encrypted key is refused, never prompted for. NULL on failure. */
struct crypto_key *crypto_key_from_pem(const char *pem, size_t len, char *err, size_t errlen);
/* PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), malloc'd, NUL-terminated;
 * *len without the NUL. The caller wipes (OPENSSL_cleanse-like: use
 * crypto_wipe_free) and frees it. NULL on failure. */
char *crypto_key_pem(const struct crypto_key *k, size_t *len);
enum keytype crypto_key_type(const struct crypto_key *k);
void crypto_key_free(struct crypto_key *k);
/* Overwrites len bytes with zeros, then free(). NULL is a no-op. */
void crypto_wipe_free(void *p, size_t len);
/* Overwrites len bytes with zeros (not optimized away). */
void crypto_wipe(void *p, size_t len);

/* JWS algorithm for the key: "ES256", "ES384" or "RS256". */
const char *crypto_key_alg(const struct crypto_key *k);
/* Signs data as JWS wants it for the key's algorithm: ECDSA as the fixed
 * size r||s (64 or 96 bytes, RFC 7518 section 3.4), RSA PKCS#1 v1.5 with
 * SHA-256. sig holds CRYPTO_SIG_MAX bytes; *siglen is set. */
int crypto_sign(const struct crypto_key *k, const void *data, size_t len,
    uint8_t *sig, size_t *siglen, char *err, size_t errlen);
/* Public key parameters for a JWK, base64url without padding, malloc'd:
 * EC: *a = x, *b = y, *crv = "P-256"/"P-384" (static); RSA: *a = n, *b = e,
 * *crv = NULL. Fixed-size coordinates (32/48 bytes), n and e without
 * leading zero bytes (RFC 7518 section 6). */
int crypto_key_public(const struct crypto_key *k, char **a, char **b, const char **crv);
/* The inverse: a public-only key from JWK parameters (base64url; crv NULL
 * for RSA), of one of the types of keytype.h. It cannot sign, nor be
 * written as PEM. For thumbprints of keys hacme does not hold (tests: the
 * RFC 7638 example). NULL on failure. */
struct crypto_key *crypto_key_from_public(const char *a, const char *b, const char *crv,
    char *err, size_t errlen);
/* base64url (no padding) of len bytes, malloc'd, NUL-terminated. */
char *crypto_b64url(const void *data, size_t len);

void crypto_sha256(const void *data, size_t len, uint8_t out[32]);
/* HMAC-SHA256 (for EAB, HS256). */
int crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
    uint8_t out[32]);
/* Cryptographically secure random bytes. 0 or -1. */
int crypto_random(void *buf, size_t len);

/* A PKCS#10 CSR for names (DNS names, or IP address literals as IP SANs),
 * signed with k (SHA-256), subject empty but for CN = names[0] when it is
 * a DNS name of at most 64 characters (an IP address is never the CN).
 * DER, base64url-encoded, malloc'd. */
char *crypto_csr_b64url(const struct crypto_key *k, const char *const *names, size_t n,
    char *err, size_t errlen);

/* What hacme needs from a certificate. */
struct crypto_cert_info {
	char serial[CRYPTO_SERIAL_MAX];	/* upper-case hex, no leading zeros but "0" */
	time_t not_before, not_after;
	char issuer_cn[256];		/* issuer's CN (else the whole DN, one line) */
	char subject_cn[256];		/* "" when none */
	char **names;			/* DNS and IP SANs, in order, malloc'd */
	size_t nnames;
	/* RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "."
	 * base64url(serial DER content octets); "" when the certificate has no
	 * AKI. */
	char ari_id[256];
	enum keytype key;		/* of the certificate's public key; NONE if other */
};
void crypto_cert_info_free(struct crypto_cert_info *ci);	/* frees names */

/* A parsed PEM chain: leaf first, as the CA sent it. */
struct crypto_chain {
	char *pem[CRYPTO_CHAIN_MAX];	/* each certificate as PEM, one block, ending in "\n" */
	size_t n;
	char *issuer_cn_top;		/* issuer CN of the last certificate: the root it
					 * chains to, for preferred-chain */
};
/* Splits text (certificates, maybe separated by blank lines or CRLF) into
 * blocks; refuses no certificate, more than CRYPTO_CHAIN_MAX, a PEM block
 * other than CERTIFICATE, anything that does not parse as X.509, or a chain
 * whose certificates do not each issue the previous (checked by name and
 * signature). Text outside the blocks is ignored (RFC 7468 section 2). Each
 * c->pem[i] is the DER the CA sent, re-armoured. On failure c is empty
 * (crypto_chain_free on it is harmless). */
int crypto_chain_parse(struct crypto_chain *c, const char *pem, size_t len,
    char *err, size_t errlen);
void crypto_chain_free(struct crypto_chain *c);
/* The chain as one text: every block, "\n"-terminated, no blank line. */
char *crypto_chain_join(const struct crypto_chain *c, size_t *len);

/* Information of one PEM certificate (the first CERTIFICATE block of pem;
 * other blocks before it, e.g. a key, are skipped). On failure ci is
 * empty. */
int crypto_cert_info(const char *pem, size_t len, struct crypto_cert_info *ci,
    char *err, size_t errlen);
/* True when the certificate's public key is k's. */
bool crypto_cert_matches_key(const char *pem, size_t len, const struct crypto_key *k);
/* DER of the first certificate of pem, base64url, malloc'd (revokeCert). */
char *crypto_cert_der_b64url(const char *pem, size_t len, char *err, size_t errlen);

/* TLS probe: which certificate does a server send for a name? A TLS client
 * handshake on a connected non-blocking socket fd (not owned, not closed),
 * with SNI sni, offering only the signature algorithms (and TLS 1.2 suites)
 * of the family of only (KEYTYPE_NONE: any), so that a server with an
 * ECDSA and an RSA certificate for the name must pick that one. The chain
 * is not verified: the caller compares the served leaf's serial. */
struct crypto_tls_probe;
enum crypto_tls_status {
	CRYPTO_TLS_DONE = 0,		/* serial holds the served leaf's serial */
	CRYPTO_TLS_WANT_READ,		/* call again when fd is readable */
	CRYPTO_TLS_WANT_WRITE,		/* ... writable */
	CRYPTO_TLS_ERROR,		/* err says why */
};
struct crypto_tls_probe *crypto_tls_probe_new(int fd, const char *sni, enum keytype only,
    char *err, size_t errlen);
enum crypto_tls_status crypto_tls_probe_step(struct crypto_tls_probe *p,
    char serial[CRYPTO_SERIAL_MAX], char *err, size_t errlen);
void crypto_tls_probe_free(struct crypto_tls_probe *p);	/* NULL is a no-op */

#endif
