/* solver_persist.c - dns-persist-01 (draft-ietf-acme-dns-persist): one TXT
 * record at _validation-persist.<name>, published once by the user,
 * "<issuer-domain-name>; accounturi=<account URL>[; policy=wildcard]",
 * authorizes every later order of this account at this CA. Nothing to
 * present or clean up; prepare checks that the record is there (through
 * the dns section's `server`, else resolv.conf) and, when it is not, says
 * the exact record to publish. */
#include "acme/solver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/config.h"
#include "acme/dnsmsg.h"
#include "acme/dnsq.h"
#include "common/log.h"

#define RESOLVERS_MAX 3
#define QUERY_TIMEOUT 5.0


struct solver_persist {
	struct solver s;		/* first */
	struct ev_loop *loop;
	struct dnsq_server res[RESOLVERS_MAX];
	size_t nres;
	solver_persist_record_cb *on_record;
	void *on_record_arg;
	struct pjob *jobs;
};

struct pjob {
	struct solver_persist *p;
	struct pjob *next, **pprev;
	struct dnsq *q;
	struct dnsmsg_out out;
	size_t res_i;
	char fqdn[DNSMSG_NAME_MAX];
	char record[DNSMSG_TXT_MAX];	/* the value to publish (first issuer) */
	char **issuers;
	size_t nissuers;
	char *account;
	bool wildcard;
	solver_cb *cb;
	void *arg;
};

static void
pjob_free(struct pjob *j)
{
	if (j->pprev != NULL) {
		*j->pprev = j->next;
		if (j->next != NULL)
			j->next->pprev = j->pprev;
	}
	dnsq_cancel(j->q);
	dnsmsg_out_free(&j->out);
	for (size_t i = 0; i < j->nissuers; i++)
		free(j->issuers[i]);
	free(j->issuers);
	free(j->account);
	free(j);
}

static int psend(struct pjob *j);

static void
preplied(void *arg, const char *qerr, const uint8_t *wire, size_t len)
{
	struct pjob *j = arg;
	struct dnsmsg_reply *r = NULL;
	char err[SOLVER_ERR_MAX] = "", why[DNSMSG_ERR_MAX];
	solver_cb *cb = j->cb;
	void *cbarg = j->arg;
	bool found = false;

	j->q = NULL;
	dnsmsg_out_free(&j->out);
	if (qerr != NULL && j->res_i + 1 < j->p->nres) {
		j->res_i++;
		if (psend(j) == 0)
			return;
	}
	if (qerr != NULL) {
		snprintf(err, sizeof err, "DNS query %s TXT to %s: %s: check `server` (or "
		    "resolv.conf)", j->fqdn, j->p->res[j->res_i].text, qerr);
	} else if ((r = malloc(sizeof *r)) == NULL) {
		snprintf(err, sizeof err, "out of memory");
	} else if (dnsmsg_parse(wire, len, r, why, sizeof why) < 0) {
		snprintf(err, sizeof err, "DNS query %s TXT: %s", j->fqdn, why);
	} else {
		for (size_t i = 0; i < r->ntxt && !found; i++)
			for (size_t k = 0; k < j->nissuers && !found; k++)
				found = dnsmsg_persist_matches(r->txt[i], j->issuers[k], j->account,
				    j->wildcard);
		if (!found)
			snprintf(err, sizeof err, "dns-persist-01: no TXT record at %s authorizes "
			    "this account%s: publish %s. IN TXT \"%s\" (`hacme dns-persist CERT` "
			    "prints it)", j->fqdn, j->wildcard ? " for wildcards" : "", j->fqdn,
			    j->record);
		else
			log_info("dns-persist-01: %s authorizes the account", j->fqdn);
	}
	free(r);
	pjob_free(j);
	if (cb != NULL)
		cb(cbarg, err[0] != '\0' ? err : NULL);
}

static int
psend(struct pjob *j)
{
	char err[SOLVER_ERR_MAX];

	if (dnsmsg_query(&j->out, j->fqdn, DNSMSG_TXT, true, err, sizeof err) == 0)
		j->q = dnsq_send(j->p->loop, &j->p->res[j->res_i], j->out.wire, j->out.len,
		    j->out.id, QUERY_TIMEOUT, preplied, j);
	return j->q != NULL ? 0 : -1;
}

static int
p_prepare(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	struct solver_persist *p = (struct solver_persist *)s;
	struct pjob *j;

	if (c->nissuers == 0) {
		snprintf(err, errlen, "dns-persist-01: the CA's challenge names no "
		    "issuer-domain-names");
		return -1;
	}
	if ((j = calloc(1, sizeof *j)) == NULL ||
	    (j->issuers = calloc(c->nissuers, sizeof *j->issuers)) == NULL ||
	    (j->account = strdup(c->account_url)) == NULL) {
		if (j != NULL)
			pjob_free(j);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	j->p = p;
	for (size_t i = 0; i < c->nissuers; i++)
		if ((j->issuers[j->nissuers++] = strdup(c->issuers[i])) == NULL) {
			pjob_free(j);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	j->wildcard = c->wildcard;
	j->cb = cb;
	j->arg = arg;
	if (dnsmsg_persist_name(c->name, j->fqdn, sizeof j->fqdn) < 0 ||
	    dnsmsg_persist_value(c->issuers[0], c->account_url, c->wildcard, j->record,
	    sizeof j->record) < 0) {
		pjob_free(j);
		snprintf(err, errlen, "dns-persist-01: the record for %s is too long", c->name);
		return -1;
	}
	if (p->on_record != NULL) {
		p->on_record(p->on_record_arg, c, j->fqdn, j->record);
		pjob_free(j);
		snprintf(err, errlen, "record printed");
		return -1;
	}
	if (psend(j) < 0) {
		snprintf(err, errlen, "dns-persist-01: cannot send a DNS query: %s",
		    strerror(errno));
		pjob_free(j);
		return -1;
	}
	j->next = p->jobs;
	if (p->jobs != NULL)
		p->jobs->pprev = &j->next;
	p->jobs = j;
	j->pprev = &p->jobs;
	return 0;
}

static void
p_cancel(struct solver *s, void *arg)
{
	struct solver_persist *p = (struct solver_persist *)s;
	struct pjob *j, *next;

	for (j = p->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->arg == arg)
			pjob_free(j);
	}
}

static void
p_free(struct solver *s)
{
	struct solver_persist *p = (struct solver_persist *)s;

	while (p->jobs != NULL)
		pjob_free(p->jobs);
	free(p);
}

static const struct solver_ops persist_ops = {
	.type = "dns-persist-01",
	.needs_token = false,
	.prepare = p_prepare,
	.cancel = p_cancel,
	.free = p_free,
};

struct solver *
solver_persist_new(struct ev_loop *loop, const struct config_dns *cfg,
    solver_persist_record_cb *on_record, void *arg, char *err, size_t errlen)
{
	struct solver_persist *p = calloc(1, sizeof *p);

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->s.ops = &persist_ops;
	p->loop = loop;
	p->on_record = on_record;
	p->on_record_arg = arg;
	if (solver_dns_resolvers(cfg, p->res, RESOLVERS_MAX, &p->nres, err, errlen) < 0) {
		free(p);
		return NULL;
	}
	return &p->s;
}
