/* seal.h - private keys kept in a shared store are sealed: AES-256-GCM
 * with a key from store-key-file, so whoever runs Redis cannot read them.
 *
 * store-key-file: one key per line, 64 hex digits (`openssl rand -hex 32`),
 * '#' comments and blank lines ignored, at most SEAL_KEYS_MAX keys. The
 * FIRST key seals; every key listed unseals. Rotation: put a new key first
 * on every node (the old one after it) and restart or SIGHUP; blobs sealed
 * with an old key are sealed again with the new one when a node reads them
 * (backend_redis.c); once `hacme status --nodes` shows every node on the new
 * key id, drop the old line.
 *
 * A blob is "hs1.<key id>.<base64url(nonce 12 | ciphertext | tag 16)>"; the
 * key id is the first 8 hex digits of SHA-256(key); aad (the Redis key name)
 * is authenticated too, so a blob moved to another name does not unseal. */
#ifndef HACME_SEAL_H
#define HACME_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEAL_KEYS_MAX 4
#define SEAL_ERR_MAX 256

struct seal_keys {
	uint8_t key[SEAL_KEYS_MAX][32];
	char id[SEAL_KEYS_MAX][9];
	size_t n;
};

/* 0, or -1 with err naming the file and the fix. The file must not be
 * readable by others (mode & 077 == 0). */
int seal_keys_load(struct seal_keys *k, const char *path, char *err, size_t errlen);
/* From text (tests). */
int seal_keys_parse(struct seal_keys *k, const char *text, size_t len, char *err,
    size_t errlen);
void seal_keys_wipe(struct seal_keys *k);

/* The blob (malloc'd string), or NULL on no memory. */
char *seal(const struct seal_keys *k, const void *pt, size_t len, const char *aad);
/* *pt malloc'd (NUL-terminated; wipe and free), *old true when a key other
 * than the first one opened it. -1 with err: not a blob, an unknown key id
 * (names it), or it does not authenticate. */
int unseal(const struct seal_keys *k, const char *blob, const char *aad, char **pt,
    size_t *len, bool *old, char *err, size_t errlen);

#endif
