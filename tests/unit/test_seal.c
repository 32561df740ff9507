/* test_seal.c - private keys sealed for a shared store: AES-256-GCM round
 * trip, the key id, rotation (an old key still opens, says so), a wrong
 * name (aad), a damaged blob, an unknown key id, and the key file's
 * format. */
#include <stdlib.h>

#include "acme/seal.h"
#include "tap.h"

#define K1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define K2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

int
main(void)
{
	struct seal_keys a, b, rot;
	char err[SEAL_ERR_MAX], *pt = NULL;
	size_t len = 0;
	bool old = true;
	const char *secret = "-----BEGIN PRIVATE KEY-----\nMIGH...\n-----END PRIVATE KEY-----\n";

	ok(seal_keys_parse(&a, K1 "\n", 65, err, sizeof err) == 0, "one key");
	ok(seal_keys_parse(&b, "# new\n" K2 "\n\n", 72, err, sizeof err) == 0, "a comment, a key");
	ok(seal_keys_parse(&rot, K2 "\n" K1 "\n", 130, err, sizeof err) == 0 && rot.n == 2,
	    "rotation file: new key first, old second");
	ok(strlen(a.id[0]) == 8 && strcmp(a.id[0], b.id[0]) != 0, "key ids differ (%s, %s)",
	    a.id[0], b.id[0]);
	char *blob = seal(&a, secret, strlen(secret), "hacme:cert:x");
	ok(blob != NULL && strncmp(blob, "hs1.", 4) == 0 && strstr(blob, "PRIVATE") == NULL,
	    "sealed: hs1.<id>.<data>, no plaintext");
	ok(unseal(&a, blob, "hacme:cert:x", &pt, &len, &old, err, sizeof err) == 0 &&
	    len == strlen(secret) && memcmp(pt, secret, len) == 0 && !old, "unsealed by its key");
	free(pt);
	pt = NULL;
	ok(unseal(&rot, blob, "hacme:cert:x", &pt, &len, &old, err, sizeof err) == 0 && old &&
	    memcmp(pt, secret, len) == 0, "the old key (second line) still opens it, marked old");
	free(pt);
	pt = NULL;
	char *blob2 = seal(&rot, secret, strlen(secret), "hacme:cert:x");
	ok(blob2 != NULL && strncmp(blob2 + 4, rot.id[0], 8) == 0, "sealing uses the first key");
	ok(unseal(&a, blob2, "hacme:cert:x", &pt, &len, &old, err, sizeof err) < 0 &&
	    strstr(err, "does not hold") != NULL, "a key id the file lacks is named: %s", err);
	ok(unseal(&a, blob, "hacme:cert:y", &pt, &len, &old, err, sizeof err) < 0 &&
	    strstr(err, "does not authenticate") != NULL, "moved to another name: refused");
	blob[strlen(blob) - 3] ^= 1;
	ok(unseal(&a, blob, "hacme:cert:x", &pt, &len, &old, err, sizeof err) < 0, "damaged: refused");
	ok(unseal(&a, "garbage", "k", &pt, &len, &old, err, sizeof err) < 0 &&
	    strstr(err, "not a sealed key") != NULL, "not a blob");
	ok(seal_keys_parse(&a, "abc\n", 4, err, sizeof err) < 0 && strstr(err, "64 hex") != NULL,
	    "short key: %s", err);
	ok(seal_keys_parse(&a, "", 0, err, sizeof err) < 0 && strstr(err, "no key") != NULL,
	    "empty file: %s", err);
	ok(seal_keys_parse(&a, "zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    64, err, sizeof err) < 0 && strstr(err, "hex") != NULL, "not hex: %s", err);
	free(blob);
	free(blob2);
	return tap_done();
}
