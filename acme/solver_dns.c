/* solver_dns.c - dns-01 (RFC 8555 section 8.4): the TXT record
 * _acme-challenge.<name> = base64url(SHA-256(key authorization)), written
 * by a provider (acme/dns_provider.h), and served by every authoritative
 * server of the zone before the CA is asked.
 *
 * For each authorization a job runs, on the loop, one DNS query at a time:
 *   CNAME    _acme-challenge.<name> followed (at most 8 hops): the target
 *   SOA      walked up the target's labels: the zone and its primary
 *            (`zone` and `server` skip what they give)
 *   NS       the zone's servers and their addresses
 * then, for prepare, the provider's check (an empty signed UPDATE); for
 * present, the record is written to the journal, added, and each NS is
 * asked directly (no recursion) until all serve it, with backoff, until
 * propagation-timeout.
 *
 * The journal (<state-dir>/dns-<section>.records, one record a line) lists
 * what was added and not yet deleted: the next start deletes what a crash
 * left. Queries go to `server` when set, else to resolv.conf's servers. */
#include "acme/solver.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ev.h>

#include "acme/config.h"
#include "acme/dns_provider.h"
#include "acme/dnsmsg.h"
#include "acme/dnsq.h"
#include "common/atomicfile.h"
#include "common/log.h"

#define RESOLVERS_MAX 3
#define NS_MAX 8
#define CNAME_HOPS 8
#define QUERY_TIMEOUT 5.0	/* seconds for one exchange */
#define PROP_FIRST 0.2		/* seconds between propagation rounds, doubling */
#define PROP_MAX 5.0
#define JOURNAL_MAX (1024 * 1024)

enum job_kind { J_PREPARE, J_PRESENT, J_CLEANUP };

struct rec {			/* a record added and not yet deleted */
	struct rec *next;
	char name[DNSMSG_NAME_MAX];	/* _acme-challenge.<name>: what cleanup asks for */
	char target[DNSMSG_NAME_MAX];	/* after CNAMEs: what was added */
	char zone[DNSMSG_NAME_MAX];
	char primary[DNSQ_ADDR_MAX];	/* "-" when the provider needs none */
	char value[DNSMSG_TXT_MAX];
	bool deleting;
};

struct solver_dns {
	struct solver s;		/* first */
	struct ev_loop *loop;
	char *section, *zone, *journal;
	struct dns_provider *prov;
	struct dnsq_server res[RESOLVERS_MAX];
	size_t nres;
	bool have_server;		/* res[0] is `server`: also the primary */
	unsigned ttl;
	double prop_timeout;
	struct rec *recs;
	struct job *jobs;
};

struct job {
	struct solver_dns *d;
	struct job *next, **pprev;
	enum job_kind kind;
	solver_cb *cb;			/* NULL: cancelled (or nobody waits) */
	void *arg;
	struct rec *rec;		/* cleanup: what to delete */
	char name[DNSMSG_NAME_MAX];	/* the identifier */
	char fqdn[DNSMSG_NAME_MAX], target[DNSMSG_NAME_MAX], walk[DNSMSG_NAME_MAX];
	char zone[DNSMSG_NAME_MAX], mname[DNSMSG_NAME_MAX];
	char value[64];
	unsigned hops;
	struct dnsq_server primary;
	bool have_primary;
	struct dnsq_server ns[NS_MAX];
	char nsname[NS_MAX][DNSMSG_NAME_MAX];
	bool served[NS_MAX];
	size_t nns;
	char pend[NS_MAX][DNSMSG_NAME_MAX];	/* NS names without an address yet */
	size_t npend, pend_i, prop_i;
	/* the query in flight */
	struct dnsq *q;
	struct dnsmsg_out out;
	struct dnsmsg_reply *rep;
	const struct dnsq_server *srv;	/* NULL: the resolvers */
	size_t res_i;
	char qname[DNSMSG_NAME_MAX];
	enum dnsmsg_type qtype;
	void (*k)(struct job *j, const char *err);
	bool provider_busy;
	ev_timer timer;
	double delay, deadline;
};

static void job_next_ns_addr(struct job *j);
static void job_located(struct job *j);
static void prop_round(struct job *j);

/* ---- journal ---- */

static void
journal_write(struct solver_dns *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (d->journal == NULL || (f = open_memstream(&buf, &len)) == NULL)
		return;
	for (struct rec *r = d->recs; r != NULL; r = r->next)
		fprintf(f, "%s %s %s %s %s\n", r->name, r->target, r->zone, r->primary, r->value);
	fclose(f);
	if (atomic_write(d->journal, buf, len, 0600) < 0)
		log_warn("dns %s: %s: %s (records added now are not cleaned after a crash)",
		    d->section, d->journal, strerror(errno));
	free(buf);
}

static void
rec_unlink(struct solver_dns *d, struct rec *r)
{
	for (struct rec **pp = &d->recs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	free(r);
	journal_write(d);
}

/* ---- jobs ---- */

static struct job *
job_new(struct solver_dns *d, enum job_kind kind, solver_cb *cb, void *arg)
{
	struct job *j = calloc(1, sizeof *j);

	if (j == NULL || (j->rep = malloc(sizeof *j->rep)) == NULL) {
		free(j);
		return NULL;
	}
	j->d = d;
	j->kind = kind;
	j->cb = cb;
	j->arg = arg;
	ev_init(&j->timer, NULL);
	j->timer.data = j;
	j->next = d->jobs;
	if (d->jobs != NULL)
		d->jobs->pprev = &j->next;
	d->jobs = j;
	j->pprev = &d->jobs;
	return j;
}

static void
job_free(struct job *j)
{
	if (j->pprev != NULL) {
		*j->pprev = j->next;
		if (j->next != NULL)
			j->next->pprev = j->pprev;
	}
	dnsq_cancel(j->q);
	dnsmsg_out_free(&j->out);
	ev_timer_stop(j->d->loop, &j->timer);
	free(j->rep);
	free(j);
}

static void
job_done(struct job *j, const char *err)
{
	solver_cb *cb = j->cb;
	void *arg = j->arg;
	char e[SOLVER_ERR_MAX];

	snprintf(e, sizeof e, "%s", err != NULL ? err : "");
	job_free(j);
	if (cb != NULL)
		cb(arg, err != NULL ? e : NULL);
	else if (err != NULL)
		log_warn("dns: %s", e);
}

/* -- one query -- */

static void query_send(struct job *j);

static void
query_replied(void *arg, const char *qerr, const uint8_t *wire, size_t len)
{
	struct job *j = arg;
	const struct dnsq_server *srv = j->srv != NULL ? j->srv : &j->d->res[j->res_i];
	char err[SOLVER_ERR_MAX], why[DNSMSG_ERR_MAX];

	j->q = NULL;
	dnsmsg_out_free(&j->out);
	if (qerr != NULL && j->srv == NULL && j->res_i + 1 < j->d->nres) {
		j->res_i++;	/* the next resolver */
		query_send(j);
		return;
	}
	if (qerr != NULL) {
		snprintf(err, sizeof err, "DNS query %s %s to %s: %s: check `server` in dns %s "
		    "(or resolv.conf)", j->qname, j->qtype == DNSMSG_TXT ? "TXT" :
		    j->qtype == DNSMSG_SOA ? "SOA" : j->qtype == DNSMSG_NS ? "NS" : "A", srv->text,
		    qerr, j->d->section);
		j->k(j, err);
		return;
	}
	if (dnsmsg_parse(wire, len, j->rep, why, sizeof why) < 0) {
		snprintf(err, sizeof err, "DNS query %s to %s: %s", j->qname, srv->text, why);
		j->k(j, err);
		return;
	}
	j->k(j, NULL);
}

static void
query_send(struct job *j)
{
	const struct dnsq_server *srv = j->srv != NULL ? j->srv : &j->d->res[j->res_i];
	char err[SOLVER_ERR_MAX];

	if (dnsmsg_query(&j->out, j->qname, j->qtype, j->srv == NULL, err, sizeof err) < 0) {
		j->k(j, err);
		return;
	}
	j->q = dnsq_send(j->d->loop, srv, j->out.wire, j->out.len, j->out.id, QUERY_TIMEOUT,
	    query_replied, j);
	if (j->q == NULL) {
		snprintf(err, sizeof err, "DNS query to %s: %s", srv->text, strerror(errno));
		j->k(j, err);
	}
}

/* Asks srv (NULL: the resolvers, recursion desired) for name/type; k runs
 * with j->rep filled, or an error. */
static void
query(struct job *j, const char *name, enum dnsmsg_type type, const struct dnsq_server *srv,
    void (*k)(struct job *, const char *))
{
	snprintf(j->qname, sizeof j->qname, "%s", name);
	j->qtype = type;
	j->srv = srv;
	j->res_i = 0;
	j->k = k;
	query_send(j);
}

/* -- locate: CNAME, zone, primary, NS -- */

static bool
name_under(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (z == 0)
		return false;
	return strcasecmp(name, zone) == 0 ||
	    (n > z && name[n - z - 1] == '.' && strcasecmp(name + n - z, zone) == 0);
}

static void
got_ns_addr(struct job *j, const char *err)
{
	struct dnsmsg_reply *r = j->rep;
	const char *want = j->pend[j->pend_i];

	if (err != NULL) {
		log_warn("dns %s: %s", j->d->section, err);
	} else {
		for (size_t i = 0; i < r->naddr && j->nns < NS_MAX; i++) {
			if (dnsq_server_parse(&j->ns[j->nns], r->addr[i], 53) < 0)
				continue;
			memcpy(j->nsname[j->nns++], want, strlen(want) + 1);
		}
	}
	j->pend_i++;
	job_next_ns_addr(j);
}

static void
job_next_ns_addr(struct job *j)
{
	char err[SOLVER_ERR_MAX];

	if (j->pend_i < j->npend) {
		query(j, j->pend[j->pend_i], DNSMSG_A, NULL, got_ns_addr);
		return;
	}
	if (j->nns == 0) {
		snprintf(err, sizeof err, "zone %s: no address for any of its NS servers: "
		    "check its NS records and their A records", j->zone);
		job_done(j, err);
		return;
	}
	job_located(j);
}

static void
got_ns(struct job *j, const char *err)
{
	struct dnsmsg_reply *r = j->rep;
	char e[SOLVER_ERR_MAX];

	if (err != NULL) {
		job_done(j, err);
		return;
	}
	if (r->nns == 0) {
		snprintf(e, sizeof e, "zone %s: no NS records (%s): check `zone` in dns %s",
		    j->zone, dnsmsg_rcode_name(r->rcode), j->d->section);
		job_done(j, e);
		return;
	}
	for (size_t i = 0; i < r->nns && i < NS_MAX; i++) {
		bool found = false;
		for (size_t a = 0; a < r->naddr && j->nns < NS_MAX; a++)
			if (strcmp(r->addr_owner[a], r->ns[i]) == 0 &&
			    dnsq_server_parse(&j->ns[j->nns], r->addr[a], 53) == 0) {
				snprintf(j->nsname[j->nns++], DNSMSG_NAME_MAX, "%s", r->ns[i]);
				found = true;
			}
		if (!found)
			snprintf(j->pend[j->npend++], DNSMSG_NAME_MAX, "%s", r->ns[i]);
	}
	job_next_ns_addr(j);
}

static void
find_ns(struct job *j)
{
	query(j, j->zone, DNSMSG_NS, NULL, got_ns);
}

static void
got_soa(struct job *j, const char *err)
{
	struct dnsmsg_reply *r = j->rep;
	char e[SOLVER_ERR_MAX];
	const char *dot;

	if (err == NULL && r->soa_zone[0] != '\0' && name_under(j->target, r->soa_zone) &&
	    (r->rcode == 0 || r->rcode == 3)) {
		snprintf(j->zone, sizeof j->zone, "%s", r->soa_zone);
		snprintf(j->mname, sizeof j->mname, "%s", r->soa_mname);
		find_ns(j);
		return;
	}
	/* up one label; REFUSED or nothing above a name is no answer yet */
	if ((dot = strchr(j->walk, '.')) == NULL || strchr(dot + 1, '.') == NULL) {
		snprintf(e, sizeof e, "no zone found for %s by SOA queries%s%s: set `zone` in "
		    "dns %s", j->target, err != NULL ? " (" : "", err != NULL ? err : "",
		    j->d->section);
		if (err != NULL)
			strncat(e, ")", sizeof e - strlen(e) - 1);
		job_done(j, e);
		return;
	}
	memmove(j->walk, dot + 1, strlen(dot + 1) + 1);
	query(j, j->walk, DNSMSG_SOA, NULL, got_soa);
}

static void
got_cname(struct job *j, const char *err)
{
	struct dnsmsg_reply *r = j->rep;

	if (err != NULL) {
		job_done(j, err);
		return;
	}
	if (r->cname[0] != '\0' && strcmp(r->cname, j->target) != 0 && j->hops < CNAME_HOPS) {
		j->hops++;
		log_info("dns: %s is a CNAME to %s", j->target, r->cname);
		snprintf(j->target, sizeof j->target, "%s", r->cname);
		query(j, j->target, DNSMSG_TXT, NULL, got_cname);
		return;
	}
	if (j->d->zone != NULL && name_under(j->target, j->d->zone)) {
		snprintf(j->zone, sizeof j->zone, "%s", j->d->zone);
		find_ns(j);
		return;
	}
	snprintf(j->walk, sizeof j->walk, "%s", j->target);
	query(j, j->walk, DNSMSG_SOA, NULL, got_soa);
}

static void
got_mname(struct job *j, const char *err)
{
	char e[SOLVER_ERR_MAX];

	for (size_t i = 0; err == NULL && i < j->rep->naddr; i++)
		if (dnsq_server_parse(&j->primary, j->rep->addr[i], 53) == 0) {
			j->have_primary = true;
			job_located(j);
			return;
		}
	snprintf(e, sizeof e, "zone %s: no address for its primary %s (SOA MNAME)%s%s: set "
	    "`server` in dns %s", j->zone, j->mname, err != NULL ? ": " : "",
	    err != NULL ? err : "", j->d->section);
	job_done(j, e);
}

/* -- after locate -- */

static void
provider_done(void *arg, const char *err)
{
	struct job *j = arg;

	j->provider_busy = false;
	if (j->kind == J_CLEANUP) {
		if (err == NULL)
			rec_unlink(j->d, j->rec);
		else
			j->rec->deleting = false;	/* kept: the next start tries again */
		job_done(j, err);
		return;
	}
	if (j->cb == NULL) {	/* cancelled while the provider ran */
		job_free(j);
		return;
	}
	if (err != NULL || j->kind == J_PREPARE) {
		job_done(j, err);
		return;
	}
	/* added: now every authoritative server must serve it */
	j->delay = PROP_FIRST;
	j->deadline = ev_now(j->d->loop) + j->d->prop_timeout;
	j->prop_i = 0;
	prop_round(j);
}

static void
prop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct job *j = w->data;

	j->prop_i = 0;
	prop_round(j);
}

static void
got_prop(struct job *j, const char *err)
{
	struct dnsmsg_reply *r = j->rep;

	if (err == NULL)
		for (size_t i = 0; i < r->ntxt; i++)
			if (strcmp(r->txt[i], j->value) == 0)
				j->served[j->prop_i] = true;
	j->prop_i++;
	prop_round(j);
}

static void
prop_round(struct job *j)
{
	char missing[SOLVER_ERR_MAX / 2] = "", err[SOLVER_ERR_MAX];
	size_t len = 0;

	while (j->prop_i < j->nns && j->served[j->prop_i])
		j->prop_i++;
	if (j->prop_i < j->nns) {
		query(j, j->target, DNSMSG_TXT, &j->ns[j->prop_i], got_prop);
		return;
	}
	for (size_t i = 0; i < j->nns; i++)
		if (!j->served[i] && len < sizeof missing - 2)
			len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%s (%s)",
			    len > 0 ? ", " : "", j->nsname[i], j->ns[i].text);
	if (len == 0) {
		log_info("dns: %s TXT served by all %zu servers of %s", j->target, j->nns, j->zone);
		job_done(j, NULL);
		return;
	}
	if (ev_now(j->d->loop) >= j->deadline) {
		snprintf(err, sizeof err, "the TXT record %s is not served by %s after %.0f s: "
		    "check that the zone's secondaries get its updates (NOTIFY, zone transfers), "
		    "or raise propagation-timeout", j->target, missing, j->d->prop_timeout);
		job_done(j, err);
		return;
	}
	ev_timer_stop(j->d->loop, &j->timer);
	ev_set_cb(&j->timer, prop_timer_cb);
	ev_timer_set(&j->timer, j->delay, 0.);
	ev_timer_start(j->d->loop, &j->timer);
	j->delay = j->delay * 2 > PROP_MAX ? PROP_MAX : j->delay * 2;
}

static void
job_located(struct job *j)
{
	struct solver_dns *d = j->d;
	struct dns_rec rec = { .zone = j->zone, .primary = &j->primary, .fqdn = j->target,
	    .value = j->value, .ttl = d->ttl };
	char err[SOLVER_ERR_MAX];
	int rc;

	if (d->prov->needs_primary && !j->have_primary) {
		if (d->have_server) {
			j->primary = d->res[0];
			j->have_primary = true;
		} else {
			for (size_t i = 0; i < j->nns && !j->have_primary; i++)
				if (strcmp(j->nsname[i], j->mname) == 0) {
					j->primary = j->ns[i];
					j->have_primary = true;
				}
			if (!j->have_primary) {
				query(j, j->mname, DNSMSG_A, NULL, got_mname);
				return;
			}
		}
	}
	if (j->kind == J_PREPARE) {
		rec.fqdn = NULL;
		rc = d->prov->ops->check(d->prov, &rec, provider_done, j, err, sizeof err);
	} else {
		struct rec *r = calloc(1, sizeof *r);
		if (r == NULL) {
			job_done(j, "out of memory");
			return;
		}
		snprintf(r->name, sizeof r->name, "%s", j->fqdn);
		snprintf(r->target, sizeof r->target, "%s", j->target);
		snprintf(r->zone, sizeof r->zone, "%s", j->zone);
		snprintf(r->primary, sizeof r->primary, "%s", j->have_primary ? j->primary.text :
		    "-");
		snprintf(r->value, sizeof r->value, "%s", j->value);
		r->next = d->recs;
		d->recs = r;
		journal_write(d);	/* before the add: a crash then leaves a line, not a record */
		rc = d->prov->ops->set(d->prov, true, &rec, provider_done, j, err, sizeof err);
	}
	if (rc == 0) {
		j->provider_busy = true;
		return;
	}
	if (rc < 0) {
		job_done(j, err);
		return;
	}
	provider_done(j, NULL);
}

/* ---- the solver ---- */

static void
start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct job *j = w->data;

	query(j, j->target, DNSMSG_TXT, NULL, got_cname);
}

static int
start(struct solver_dns *d, enum job_kind kind, const struct solver_chall *c, solver_cb *cb,
    void *arg, char *err, size_t errlen)
{
	struct job *j;

	if (c->keyauth == NULL && kind != J_PREPARE) {
		snprintf(err, errlen, "dns-01: the challenge has no token");
		return -1;
	}
	if ((j = job_new(d, kind, cb, arg)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(j->name, sizeof j->name, "%s", c->name);
	if (dnsmsg_dns01_name(c->name, j->fqdn, sizeof j->fqdn) < 0) {
		job_free(j);
		snprintf(err, errlen, "_acme-challenge.%s is longer than a DNS name", c->name);
		return -1;
	}
	if (c->keyauth != NULL)
		dnsmsg_dns01_value(c->keyauth, j->value);
	snprintf(j->target, sizeof j->target, "%s", j->fqdn);
	/* the first query from the loop: a failure is a callback, never inside this call */
	ev_set_cb(&j->timer, start_cb);
	ev_timer_set(&j->timer, 0., 0.);
	ev_timer_start(d->loop, &j->timer);
	return 0;
}

static int
dns_prepare(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return start((struct solver_dns *)s, J_PREPARE, c, cb, arg, err, errlen);
}

static int
dns_present(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return start((struct solver_dns *)s, J_PRESENT, c, cb, arg, err, errlen);
}

/* Deletes r through the provider; cb may be NULL. */
static int
delete_rec(struct solver_dns *d, struct rec *r, solver_cb *cb, void *arg, char *err,
    size_t errlen)
{
	struct dns_rec dr = { .zone = r->zone, .fqdn = r->target, .value = r->value };
	struct dnsq_server primary;
	struct job *j;
	int rc;

	if (strcmp(r->primary, "-") != 0 && dnsq_server_parse(&primary, r->primary, 53) < 0) {
		snprintf(err, errlen, "journal: bad server '%s'", r->primary);
		return -1;
	}
	dr.primary = &primary;
	if ((j = job_new(d, J_CLEANUP, cb, arg)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	j->rec = r;
	r->deleting = true;
	rc = d->prov->ops->set(d->prov, false, &dr, provider_done, j, err, errlen);
	if (rc == 0) {
		j->provider_busy = true;
		return 0;
	}
	r->deleting = false;
	job_free(j);
	if (rc > 0)
		rec_unlink(d, r);
	return rc;
}

static int
dns_cleanup(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	struct solver_dns *d = (struct solver_dns *)s;
	char fqdn[DNSMSG_NAME_MAX], value[44];

	if (c->keyauth == NULL || dnsmsg_dns01_name(c->name, fqdn, sizeof fqdn) < 0)
		return 1;
	dnsmsg_dns01_value(c->keyauth, value);
	for (struct rec *r = d->recs; r != NULL; r = r->next)
		if (!r->deleting && strcmp(r->name, fqdn) == 0 && strcmp(r->value, value) == 0)
			return delete_rec(d, r, cb, arg, err, errlen);
	return 1;	/* never added */
}

static void
dns_cancel(struct solver *s, void *arg)
{
	struct solver_dns *d = (struct solver_dns *)s;
	struct job *j, *next;

	for (j = d->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->arg != arg || j->cb == NULL)
			continue;
		j->cb = NULL;
		/* a provider call in flight finishes (its record is cleaned up);
		 * lookups and propagation checks just stop */
		if (!j->provider_busy && j->kind != J_CLEANUP)
			job_free(j);
	}
}

static void
dns_free(struct solver *s)
{
	struct solver_dns *d = (struct solver_dns *)s;

	while (d->jobs != NULL)
		job_free(d->jobs);
	dns_provider_free(d->prov);
	while (d->recs != NULL) {
		struct rec *r = d->recs;
		d->recs = r->next;
		free(r);
	}
	free(d->section);
	free(d->zone);
	free(d->journal);
	free(d);
}

static const struct solver_ops dns_ops = {
	.type = "dns-01",
	.needs_token = true,
	.prepare_before_order = true,
	.prepare = dns_prepare,
	.present = dns_present,
	.cleanup = dns_cleanup,
	.cancel = dns_cancel,
	.free = dns_free,
};

/* `server` (a host name resolved once, here) or resolv.conf's servers. */
int
solver_dns_resolvers(const struct config_dns *cfg, struct dnsq_server *res, size_t max,
    size_t *n, char *err, size_t errlen)
{
	*n = 0;
	if (cfg != NULL && cfg->server != NULL) {
		if (dnsq_server_parse(&res[0], cfg->server, 53) == 0) {
			*n = 1;
			return 0;
		}
		/* a host name: resolved at start-up, before the loop runs */
		char host[DNSMSG_NAME_MAX], *colon;
		const char *port = "53";
		struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
		snprintf(host, sizeof host, "%s", cfg->server);
		if ((colon = strrchr(host, ':')) != NULL) {
			*colon = '\0';
			port = colon + 1;
		}
		if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
			snprintf(err, errlen, "dns %s: server %s: the name does not resolve",
			    cfg->name, cfg->server);
			return -1;
		}
		memcpy(&res[0].ss, ai->ai_addr, ai->ai_addrlen);
		res[0].len = ai->ai_addrlen;
		snprintf(res[0].text, sizeof res[0].text, "%s", cfg->server);
		freeaddrinfo(ai);
		*n = 1;
		return 0;
	}
	char *text = NULL;
	size_t len;
	if (file_read("/etc/resolv.conf", 65536, &text, &len) == 0) {
		for (char *line = strtok(text, "\n"); line != NULL && *n < max;
		    line = strtok(NULL, "\n")) {
			char ip[DNSQ_ADDR_MAX];
			if (sscanf(line, " nameserver %63s", ip) == 1 &&
			    dnsq_server_parse(&res[*n], ip, 53) == 0)
				(*n)++;
		}
		free(text);
	}
	if (*n == 0) {
		snprintf(err, errlen, "dns%s%s: no DNS server: set `server` in the dns section or "
		    "a nameserver in /etc/resolv.conf", cfg != NULL ? " " : "",
		    cfg != NULL ? cfg->name : "");
		return -1;
	}
	return 0;
}

/* Reads the journal: every line is a record to delete now. */
static void
journal_replay(struct solver_dns *d)
{
	char *text = NULL;
	size_t len;
	struct rec *old = NULL;

	if (file_read(d->journal, JOURNAL_MAX, &text, &len) < 0)
		return;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		struct rec *r = calloc(1, sizeof *r);
		if (r == NULL)
			break;
		if (sscanf(line, "%255s %255s %255s %63s %511s", r->name, r->target, r->zone,
		    r->primary, r->value) != 5) {
			free(r);
			continue;
		}
		r->next = old;
		old = r;
	}
	free(text);
	while (old != NULL) {
		struct rec *r = old;
		char err[SOLVER_ERR_MAX];
		old = r->next;
		r->next = d->recs;
		d->recs = r;
		log_notice("dns %s: deleting %s TXT %s, left by an earlier run", d->section,
		    r->target, r->value);
		if (delete_rec(d, r, NULL, NULL, err, sizeof err) < 0)
			log_warn("dns %s: %s", d->section, err);
	}
}

struct solver *
solver_dns_new(struct ev_loop *loop, const struct config_dns *cfg, const char *state_dir,
    char *err, size_t errlen)
{
	struct solver_dns *d = calloc(1, sizeof *d);
	size_t n;

	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->s.ops = &dns_ops;
	d->loop = loop;
	d->ttl = cfg->ttl > 0 ? cfg->ttl : 60;
	d->prop_timeout = cfg->propagation_timeout > 0 ? cfg->propagation_timeout : 300;
	n = (state_dir != NULL ? strlen(state_dir) : 0) + strlen(cfg->name) + 16;
	if ((d->section = strdup(cfg->name)) == NULL ||
	    (cfg->zone != NULL && (d->zone = strdup(cfg->zone)) == NULL) ||
	    (state_dir != NULL && (d->journal = malloc(n)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		dns_free(&d->s);
		return NULL;
	}
	if (state_dir != NULL)
		snprintf(d->journal, n, "%s/dns-%s.records", state_dir, cfg->name);
	if (solver_dns_resolvers(cfg, d->res, RESOLVERS_MAX, &d->nres, err, errlen) < 0 ||
	    (d->prov = dns_provider_new(loop, cfg, err, errlen)) == NULL) {
		dns_free(&d->s);
		return NULL;
	}
	d->have_server = cfg->server != NULL;
	if (d->journal != NULL)
		journal_replay(d);
	return &d->s;
}
