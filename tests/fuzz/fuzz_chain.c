/* fuzz_chain.c - PEM chains, certificates and private keys from arbitrary
 * text: crypto_chain_parse, crypto_cert_info, crypto_cert_der_b64url,
 * crypto_key_from_pem. A parsed chain joins to text that parses to the same
 * chain; a loaded key writes PEM that loads to the same type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_chain(const char *s, size_t size)
{
	struct crypto_chain c, c2;
	struct crypto_cert_info ci;
	char err[CRYPTO_ERR_MAX] = "";
	char *joined, *again;
	size_t len = 0, len2 = 0;

	if (crypto_chain_parse(&c, s, size, err, sizeof(err)) < 0) {
		if (c.n != 0 || c.issuer_cn_top != NULL || err[0] == '\0')
			__builtin_trap();
		return;
	}
	if (c.n == 0 || c.n > CRYPTO_CHAIN_MAX || c.issuer_cn_top == NULL)
		__builtin_trap();
	if ((joined = crypto_chain_join(&c, &len)) == NULL || len != strlen(joined))
		__builtin_trap();
	if (crypto_chain_parse(&c2, joined, len, err, sizeof(err)) < 0 || c2.n != c.n ||
	    strcmp(c2.issuer_cn_top, c.issuer_cn_top) != 0)
		__builtin_trap();
	if ((again = crypto_chain_join(&c2, &len2)) == NULL || len2 != len ||
	    memcmp(again, joined, len) != 0)
		__builtin_trap();
	for (size_t i = 0; i < c.n; i++)
		if (crypto_cert_info(c.pem[i], strlen(c.pem[i]), &ci, err, sizeof(err)) == 0)
			crypto_cert_info_free(&ci);
	free(again);
	free(joined);
	crypto_chain_free(&c2);
	crypto_chain_free(&c);
}

static void
check_info(const char *s, size_t size)
{
	struct crypto_cert_info ci;
	char err[CRYPTO_ERR_MAX] = "";
	char *der;

	if (crypto_cert_info(s, size, &ci, err, sizeof(err)) == 0) {
		if (strlen(ci.serial) == 0 || strlen(ci.serial) >= CRYPTO_SERIAL_MAX ||
		    (ci.nnames > 0 && ci.names == NULL))
			__builtin_trap();
		for (size_t i = 0; i < ci.nnames; i++)
			if (ci.names[i] == NULL)
				__builtin_trap();
		crypto_cert_info_free(&ci);
		/* What cert_info reads, the DER export reads too. */
		if ((der = crypto_cert_der_b64url(s, size, err, sizeof(err))) == NULL)
			__builtin_trap();
		free(der);
	} else if (ci.names != NULL || ci.nnames != 0 || err[0] == '\0') {
		__builtin_trap();
	}
}

static void
check_key(const char *s, size_t size)
{
	struct crypto_key *k, *k2;
	char err[CRYPTO_ERR_MAX] = "";
	char *pem;
	size_t len = 0;

	if ((k = crypto_key_from_pem(s, size, err, sizeof(err))) == NULL) {
		if (err[0] == '\0')
			__builtin_trap();
		return;
	}
	if (crypto_key_alg(k) == NULL || (pem = crypto_key_pem(k, &len)) == NULL)
		__builtin_trap();
	k2 = crypto_key_from_pem(pem, len, err, sizeof(err));
	if (k2 == NULL || crypto_key_type(k2) != crypto_key_type(k))
		__builtin_trap();
	(void)crypto_cert_matches_key(s, size, k);
	crypto_key_free(k2);
	crypto_wipe_free(pem, len);
	crypto_key_free(k);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	if (size > CRYPTO_PEM_MAX)
		return 0;
	check_chain(s, size);
	check_info(s, size);
	check_key(s, size);
	return 0;
}
