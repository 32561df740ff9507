/* dns_provider.h - who writes a dns-01 TXT record (DESIGN.md `dns NAME`
 * `provider`): RFC 2136 UPDATE signed with TSIG (dns_rfc2136.c), or a
 * program with lego's exec contract (dns_exec.c). The dns-01 solver
 * (solver_dns.c) finds the zone and checks propagation; a provider only
 * adds or deletes one record, and checks beforehand that it may.
 *
 * Calls follow solver.h: 0 and one callback later (unless cancelled),
 * 1 done now, -1 failed now with err. Errors name the fix. */
#ifndef HACME_DNS_PROVIDER_H
#define HACME_DNS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "acme/dnsq.h"
#include "acme/solver.h"

struct ev_loop;
struct config_dns;
struct dns_provider;

/* One record and where it lives. Borrowed for the call. */
struct dns_rec {
	const char *zone;			/* "example.com" */
	const struct dnsq_server *primary;	/* where UPDATEs go */
	const char *fqdn;			/* "_acme-challenge.example.com" */
	const char *value;
	unsigned ttl;
};

struct dns_provider_ops {
	/* pre-flight: may this provider change rec->zone? (rec->fqdn NULL) */
	int (*check)(struct dns_provider *p, const struct dns_rec *rec, solver_cb *cb,
	    void *arg, char *err, size_t errlen);
	/* add (or delete exactly) the TXT record; cb may be NULL on delete */
	int (*set)(struct dns_provider *p, bool add, const struct dns_rec *rec,
	    solver_cb *cb, void *arg, char *err, size_t errlen);
	void (*cancel)(struct dns_provider *p, void *arg);
	void (*free)(struct dns_provider *p);
};

struct dns_provider {
	const struct dns_provider_ops *ops;
	bool needs_primary;		/* UPDATEs: the zone's primary must be found */
};

/* The provider of a dns section; NULL with err (a TSIG secret that cannot
 * be read, no memory). */
struct dns_provider *dns_provider_new(struct ev_loop *loop, const struct config_dns *cfg,
    char *err, size_t errlen);
struct dns_provider *dns_rfc2136_new(struct ev_loop *loop, const struct config_dns *cfg,
    char *err, size_t errlen);
struct dns_provider *dns_exec_new(struct ev_loop *loop, const struct config_dns *cfg,
    char *err, size_t errlen);
void dns_provider_free(struct dns_provider *p);

#endif
