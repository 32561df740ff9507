/* fuzz_dnsmsg.c - DNS replies from arbitrary bytes: dnsmsg_parse (ldns's
 * wire parser under it, then the flattening into struct dnsmsg_reply) and
 * dnsmsg_persist_matches over the TXT values it returns. Every string it
 * fills is NUL-terminated within its buffer, counts stay in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
bounded(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnsmsg_reply *r = malloc(sizeof *r);
	char err[DNSMSG_ERR_MAX] = "";

	if (r == NULL)
		return 0;
	if (dnsmsg_parse(data, size, r, err, sizeof err) < 0) {
		if (err[0] == '\0')
			__builtin_trap();
		free(r);
		return 0;
	}
	if (r->nns > DNSMSG_ITEMS_MAX || r->naddr > DNSMSG_ITEMS_MAX ||
	    r->ntxt > DNSMSG_ITEMS_MAX)
		__builtin_trap();
	bounded(r->cname, sizeof r->cname);
	bounded(r->soa_zone, sizeof r->soa_zone);
	bounded(r->soa_mname, sizeof r->soa_mname);
	for (size_t i = 0; i < r->nns; i++)
		bounded(r->ns[i], DNSMSG_NAME_MAX);
	for (size_t i = 0; i < r->naddr; i++) {
		bounded(r->addr[i], sizeof r->addr[i]);
		bounded(r->addr_owner[i], DNSMSG_NAME_MAX);
	}
	for (size_t i = 0; i < r->ntxt; i++) {
		bounded(r->txt[i], DNSMSG_TXT_MAX);
		(void)dnsmsg_persist_matches(r->txt[i], "ca.example", "https://ca.example/a/1",
		    (i & 1) != 0);
	}
	free(r);
	return 0;
}
