/* seal.c - see seal.h. */
#include "acme/seal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "acme/crypto.h"
#include "common/atomicfile.h"
#include "common/b64url.h"

#define SEAL_PREFIX "hs1."
#define NONCE_LEN 12
#define TAG_LEN 16
#define SEAL_BLOB_MAX (1024 * 1024)

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
seal_keys_parse(struct seal_keys *k, const char *text, size_t len, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	int line = 0;

	memset(k, 0, sizeof *k);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl != NULL ? nl : end;
		line++;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		const char *q = e;
		while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r'))
			q--;
		if (p < q && *p != '#') {
			if (q - p != 64) {
				snprintf(err, errlen, "line %d: a key is 64 hex digits "
				    "(make one with `openssl rand -hex 32`)", line);
				goto bad;
			}
			if (k->n == SEAL_KEYS_MAX) {
				snprintf(err, errlen, "line %d: more than %d keys", line, SEAL_KEYS_MAX);
				goto bad;
			}
			for (int i = 0; i < 32; i++) {
				int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
				if (hi < 0 || lo < 0) {
					snprintf(err, errlen, "line %d: not hex digits (make a key "
					    "with `openssl rand -hex 32`)", line);
					goto bad;
				}
				k->key[k->n][i] = (uint8_t)(hi << 4 | lo);
			}
			uint8_t h[32];
			crypto_sha256(k->key[k->n], 32, h);
			snprintf(k->id[k->n], sizeof k->id[k->n], "%02x%02x%02x%02x", h[0], h[1],
			    h[2], h[3]);
			k->n++;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (k->n == 0) {
		snprintf(err, errlen, "no key (put one line of `openssl rand -hex 32` in it)");
		goto bad;
	}
	return 0;
bad:
	seal_keys_wipe(k);
	return -1;
}

int
seal_keys_load(struct seal_keys *k, const char *path, char *err, size_t errlen)
{
	char *text = NULL, why[SEAL_ERR_MAX];
	size_t len = 0;
	struct stat sb;
	int rc;

	memset(k, 0, sizeof *k);
	if (stat(path, &sb) < 0 || file_read(path, 64 * 1024, &text, &len) < 0) {
		snprintf(err, errlen, "store-key-file %s: %s", path, strerror(errno));
		return -1;
	}
	if ((sb.st_mode & 077) != 0) {
		crypto_wipe_free(text, len);
		snprintf(err, errlen, "store-key-file %s: readable by others (mode %03o): "
		    "chmod 600 it", path, (unsigned)(sb.st_mode & 0777));
		return -1;
	}
	rc = seal_keys_parse(k, text, len, why, sizeof why);
	crypto_wipe_free(text, len);
	if (rc < 0)
		snprintf(err, errlen, "store-key-file %s: %s", path, why);
	return rc;
}

void
seal_keys_wipe(struct seal_keys *k)
{
	crypto_wipe(k, sizeof *k);
}

/* enc: 1 seal, 0 open. out gets len bytes; tag in/out. */
static int
gcm(int enc, const uint8_t key[32], const uint8_t nonce[NONCE_LEN], const char *aad,
    const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[TAG_LEN])
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n, ok = 0;

	if (x == NULL || len > INT32_MAX)
		goto out;
	if (EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(x, NULL, NULL, key, nonce, enc) != 1 ||
	    EVP_CipherUpdate(x, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
	    (len > 0 && EVP_CipherUpdate(x, out, &n, in, (int)len) != 1))
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(x, out + len, &n) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		goto out;
	ok = 1;
out:
	EVP_CIPHER_CTX_free(x);
	return ok ? 0 : -1;
}

char *
seal(const struct seal_keys *k, const void *pt, size_t len, const char *aad)
{
	size_t rawlen = NONCE_LEN + len + TAG_LEN;
	uint8_t *raw = malloc(rawlen + 16);
	char *blob = NULL;
	size_t pl = strlen(SEAL_PREFIX) + 9;

	if (raw == NULL || k->n == 0 || crypto_random(raw, NONCE_LEN) < 0 ||
	    gcm(1, k->key[0], raw, aad, pt, len, raw + NONCE_LEN, raw + NONCE_LEN + len) < 0)
		goto out;
	if ((blob = malloc(pl + B64URL_ENCLEN(rawlen) + 1)) == NULL)
		goto out;
	snprintf(blob, pl + 1, SEAL_PREFIX "%s.", k->id[0]);
	b64url_encode(blob + pl, raw, rawlen);
out:
	free(raw);
	return blob;
}

int
unseal(const struct seal_keys *k, const char *blob, const char *aad, char **pt, size_t *len,
    bool *old, char *err, size_t errlen)
{
	size_t pl = strlen(SEAL_PREFIX), bl = strlen(blob);
	uint8_t *raw = NULL;
	long n;
	size_t i;

	*pt = NULL;
	if (bl > SEAL_BLOB_MAX || bl < pl + 9 || memcmp(blob, SEAL_PREFIX, pl) != 0 ||
	    blob[pl + 8] != '.') {
		snprintf(err, errlen, "%s: not a sealed key (hs1.ID.DATA)", aad);
		return -1;
	}
	for (i = 0; i < k->n; i++)
		if (memcmp(k->id[i], blob + pl, 8) == 0)
			break;
	if (i == k->n) {
		snprintf(err, errlen, "%s: sealed with key id %.8s, which store-key-file "
		    "does not hold (add that key to it)", aad, blob + pl);
		return -1;
	}
	if ((raw = malloc(bl)) == NULL)
		goto nomem;
	n = b64url_decode(raw, bl, blob + pl + 9, bl - pl - 9);
	if (n < NONCE_LEN + TAG_LEN) {
		snprintf(err, errlen, "%s: sealed key damaged", aad);
		free(raw);
		return -1;
	}
	*len = (size_t)n - NONCE_LEN - TAG_LEN;
	if ((*pt = malloc(*len + 1)) == NULL)
		goto nomem;
	if (gcm(0, k->key[i], raw, aad, raw + NONCE_LEN, *len, (uint8_t *)*pt,
	    raw + NONCE_LEN + *len) < 0) {
		crypto_wipe_free(*pt, *len + 1);
		*pt = NULL;
		free(raw);
		snprintf(err, errlen, "%s: sealed key does not authenticate with key id %s "
		    "(damaged, or moved from another name)", aad, k->id[i]);
		return -1;
	}
	(*pt)[*len] = '\0';
	*old = i > 0;
	free(raw);
	return 0;
nomem:
	free(raw);
	snprintf(err, errlen, "out of memory");
	return -1;
}
