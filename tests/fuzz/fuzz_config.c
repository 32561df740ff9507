/* fuzz_config.c - config_parse on arbitrary bytes. Either a config whose
 * invariants hold (every cert has a ca, 1..100 valid domains, one or two
 * keys), or an error that names the file, fits CONFIG_ERR_MAX uncut and
 * leaves the config empty. */
#include <stdint.h>
#include <string.h>

#include "acme/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_cert(const struct config_cert *ce)
{
	char why[128];

	if (ce->ca == NULL || ce->ndomains == 0 || ce->ndomains > CONFIG_DOMAINS_MAX ||
	    ce->nkeys < 1 || ce->nkeys > CONFIG_KEYS_MAX || ce->name == NULL)
		__builtin_trap();
	for (size_t i = 0; i < ce->ndomains; i++)
		if (!config_name_valid(ce->domains[i], why, sizeof(why)))
			__builtin_trap();
	if (ce->nkeys == 2 && (keytype_is_rsa(ce->keys[0]) || !keytype_is_rsa(ce->keys[1])))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[CONFIG_ERR_MAX];
	size_t n;

	memset(err, 0, sizeof(err));
	if (config_parse(&c, "fuzz.cfg", (const char *)data, size, err, sizeof(err)) < 0) {
		n = strlen(err);
		if (n == 0 || n >= sizeof(err) - 1 || strncmp(err, "fuzz.cfg:", 9) != 0)
			__builtin_trap();
		if (c.ncas != 0 || c.ncerts != 0 || c.file != NULL)
			__builtin_trap();
		config_free(&c);
		return 0;
	}
	if (c.ncas == 0 || c.concurrency < 1 || c.concurrency > 10000 ||
	    c.preflight_port < 1 || c.preflight_port > 65535)
		__builtin_trap();
	for (size_t i = 0; i < c.ncas; i++)
		if (c.cas[i].directory == NULL ||
		    (c.cas[i].eab_kid == NULL) != (c.cas[i].eab_hmac_key == NULL))
			__builtin_trap();
	for (size_t i = 0; i < c.ncerts; i++)
		check_cert(&c.certs[i]);
	if (config_cert_for_name(&c, "fuzz.example", err, sizeof(err)) == NULL &&
	    c.ncas == 1 && config_find_cert(&c, "fuzz.example") == NULL)
		__builtin_trap();
	config_free(&c);
	return 0;
}
