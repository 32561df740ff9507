/* dns_rfc2136.c - TXT records through DNS UPDATE (RFC 2136) signed with
 * TSIG (RFC 8945), sent to the zone's primary on the loop (acme/dnsq.h).
 * The secret is read once from tsig-secret-file and only handed to ldns. */
#include "acme/dns_provider.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/dnsmsg.h"
#include "common/atomicfile.h"
#include "common/log.h"

#define UPDATE_TIMEOUT 10.0	/* seconds for one UPDATE exchange */
#define SECRET_FILE_MAX 4096

struct rfc2136 {
	struct dns_provider p;		/* first */
	struct ev_loop *loop;
	char *key_name, *algorithm, *secret;	/* secret: NULL when unsigned */
	struct op *ops;
};

struct op {
	struct rfc2136 *r;
	struct op *next, **pprev;
	struct dnsq *q;
	struct dnsmsg_out out;
	bool check, add;
	char zone[DNSMSG_NAME_MAX], fqdn[DNSMSG_NAME_MAX], server[DNSQ_ADDR_MAX];
	solver_cb *cb;
	void *arg;
};

static void
op_free(struct op *o)
{
	if (o->pprev != NULL) {
		*o->pprev = o->next;
		if (o->next != NULL)
			o->next->pprev = o->pprev;
	}
	dnsq_cancel(o->q);
	dnsmsg_out_free(&o->out);
	free(o);
}

/* What the server's answer means, as one line naming the fix. */
static void
explain(const struct op *o, const struct dnsmsg_reply *rep, char *err, size_t len)
{
	const struct rfc2136 *r = o->r;
	char who[DNSMSG_NAME_MAX + 64];
	const char *what = o->check ? "may not update" : o->add ? "did not add the record to" :
	    "did not delete the record from";

	if (r->secret != NULL)
		snprintf(who, sizeof who, "TSIG key %s (%s)", r->key_name, r->algorithm);
	else
		snprintf(who, sizeof who, "no TSIG key");
	if (rep->rcode == 9 || rep->tsig_error != 0) {	/* NOTAUTH */
		snprintf(err, len, "DNS UPDATE to %s: %s%s%s: %s %s zone %s: check "
		    "tsig-secret-file and tsig-algorithm against the server's key, and that "
		    "it serves the zone", o->server, dnsmsg_rcode_name(rep->rcode),
		    rep->tsig_error != 0 ? ", TSIG " : "",
		    rep->tsig_error != 0 ? dnsmsg_rcode_name(rep->tsig_error) : "", who, what,
		    o->zone);
	} else if (rep->rcode == 5) {	/* REFUSED */
		snprintf(err, len, "DNS UPDATE to %s: REFUSED: %s %s zone %s: allow this key "
		    "to update the zone on the server (its update ACL), or check `zone`",
		    o->server, who, what, o->zone);
	} else if (rep->rcode == 10) {	/* NOTZONE */
		snprintf(err, len, "DNS UPDATE to %s: NOTZONE: %s is not a zone of that "
		    "server: set `zone` or `server` in the dns section", o->server, o->zone);
	} else {
		snprintf(err, len, "DNS UPDATE to %s of zone %s with %s: %s", o->server, o->zone,
		    who, dnsmsg_rcode_name(rep->rcode));
	}
}

static void
replied(void *arg, const char *qerr, const uint8_t *wire, size_t len)
{
	struct op *o = arg;
	struct dnsmsg_reply *rep = NULL;
	char err[SOLVER_ERR_MAX] = "", why[DNSMSG_ERR_MAX];
	solver_cb *cb = o->cb;
	void *cbarg = o->arg;

	o->q = NULL;
	if (qerr != NULL) {
		snprintf(err, sizeof err, "DNS UPDATE to %s: %s: check `server` (or the zone's "
		    "SOA primary) and that it takes updates", o->server, qerr);
	} else if ((rep = malloc(sizeof *rep)) == NULL) {
		snprintf(err, sizeof err, "out of memory");
	} else if (dnsmsg_parse(wire, len, rep, why, sizeof why) < 0 && rep->rcode == 0) {
		snprintf(err, sizeof err, "DNS UPDATE to %s: %s", o->server, why);
	} else if (rep->id != o->out.id) {
		snprintf(err, sizeof err, "DNS UPDATE to %s: a reply to another message",
		    o->server);
	} else if (rep->rcode != 0 || rep->tsig_error != 0) {
		explain(o, rep, err, sizeof err);
	} else if (o->r->secret != NULL) {
		struct dnsmsg_tsig key = { o->r->key_name, o->r->algorithm, o->r->secret };
		dnsmsg_verify(wire, len, &o->out, &key, rep);
		if (!rep->signed_ok)
			snprintf(err, sizeof err, "DNS UPDATE to %s: the reply's TSIG signature "
			    "does not verify with key %s: check that `server` is the zone's "
			    "primary", o->server, o->r->key_name);
	}
	free(rep);
	if (err[0] == '\0')
		log_info("dns: %s %s%s at %s", o->check ? "update of" : o->add ? "added TXT" :
		    "deleted TXT", o->check ? o->zone : o->fqdn, o->check ? " authorized" : "",
		    o->server);
	op_free(o);
	if (cb != NULL)
		cb(cbarg, err[0] != '\0' ? err : NULL);
	else if (err[0] != '\0')
		log_warn("%s", err);
}

static int
send_update(struct rfc2136 *r, bool check, bool add, const struct dns_rec *rec, solver_cb *cb,
    void *arg, char *err, size_t errlen)
{
	struct dnsmsg_tsig key = { r->key_name, r->algorithm, r->secret };
	struct op *o = calloc(1, sizeof *o);

	if (o == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	o->r = r;
	o->check = check;
	o->add = add;
	o->cb = cb;
	o->arg = arg;
	snprintf(o->zone, sizeof o->zone, "%s", rec->zone);
	snprintf(o->fqdn, sizeof o->fqdn, "%s", rec->fqdn != NULL ? rec->fqdn : "");
	snprintf(o->server, sizeof o->server, "%s", rec->primary->text);
	if (dnsmsg_update(&o->out, rec->zone, check ? NULL : rec->fqdn, rec->value, rec->ttl,
	    add, r->secret != NULL ? &key : NULL, err, errlen) < 0) {
		free(o);
		return -1;
	}
	o->q = dnsq_send(r->loop, rec->primary, o->out.wire, o->out.len, o->out.id,
	    UPDATE_TIMEOUT, replied, o);
	if (o->q == NULL) {
		snprintf(err, errlen, "DNS UPDATE to %s: %s", o->server, strerror(errno));
		dnsmsg_out_free(&o->out);
		free(o);
		return -1;
	}
	o->next = r->ops;
	if (r->ops != NULL)
		r->ops->pprev = &o->next;
	r->ops = o;
	o->pprev = &r->ops;
	return 0;
}

static int
r_check(struct dns_provider *p, const struct dns_rec *rec, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return send_update((struct rfc2136 *)p, true, false, rec, cb, arg, err, errlen);
}

static int
r_set(struct dns_provider *p, bool add, const struct dns_rec *rec, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return send_update((struct rfc2136 *)p, false, add, rec, cb, arg, err, errlen);
}

static void
r_cancel(struct dns_provider *p, void *arg)
{
	struct rfc2136 *r = (struct rfc2136 *)p;

	/* an UPDATE already sent stays sent; only the callback goes */
	for (struct op *o = r->ops; o != NULL; o = o->next)
		if (o->arg == arg && o->cb != NULL)
			o->cb = NULL;
}

static void
r_free(struct dns_provider *p)
{
	struct rfc2136 *r = (struct rfc2136 *)p;

	while (r->ops != NULL)
		op_free(r->ops);
	free(r->key_name);
	free(r->algorithm);
	if (r->secret != NULL) {
		explicit_bzero(r->secret, strlen(r->secret));
		free(r->secret);
	}
	free(r);
}

static const struct dns_provider_ops rfc2136_ops = {
	.check = r_check, .set = r_set, .cancel = r_cancel, .free = r_free,
};

/* The secret: the file's first word (a bare base64 secret), or the value of
 * a `secret:` line (knot's keymgr/keyfile) or `secret "..."` (BIND's). */
static char *
read_secret(const char *path, char *err, size_t errlen)
{
	char *text = NULL, *s, *out = NULL;
	size_t len, n;

	if (file_read(path, SECRET_FILE_MAX, &text, &len) < 0) {
		snprintf(err, errlen, "tsig-secret-file %s: %s", path, errno == EFBIG ?
		    "larger than 4 KiB: it holds one base64 secret" : strerror(errno));
		return NULL;
	}
	s = strstr(text, "secret");
	s = s != NULL ? s + 6 : text;
	while (*s == ':' || *s == '"' || isspace((unsigned char)*s))
		s++;
	for (n = 0; s[n] != '\0' && (isalnum((unsigned char)s[n]) || s[n] == '+' ||
	    s[n] == '/' || s[n] == '='); n++)
		;
	if (n == 0)
		snprintf(err, errlen, "tsig-secret-file %s: no base64 secret in it", path);
	else if ((out = strndup(s, n)) == NULL)
		snprintf(err, errlen, "out of memory");
	explicit_bzero(text, len);
	free(text);
	return out;
}

struct dns_provider *
dns_rfc2136_new(struct ev_loop *loop, const struct config_dns *cfg, char *err, size_t errlen)
{
	struct rfc2136 *r = calloc(1, sizeof *r);

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->p.ops = &rfc2136_ops;
	r->p.needs_primary = true;
	r->loop = loop;
	if (cfg->tsig_key != NULL) {
		r->key_name = strdup(cfg->tsig_key);
		r->algorithm = strdup(cfg->tsig_algorithm != NULL ? cfg->tsig_algorithm :
		    "hmac-sha256");
		if ((r->secret = read_secret(cfg->tsig_secret_file, err, errlen)) == NULL ||
		    r->key_name == NULL || r->algorithm == NULL) {
			r_free(&r->p);
			return NULL;
		}
	}
	return &r->p;
}

struct dns_provider *
dns_provider_new(struct ev_loop *loop, const struct config_dns *cfg, char *err, size_t errlen)
{
	return cfg->provider == DNS_EXEC ? dns_exec_new(loop, cfg, err, errlen) :
	    dns_rfc2136_new(loop, cfg, err, errlen);
}

void
dns_provider_free(struct dns_provider *p)
{
	if (p != NULL)
		p->ops->free(p);
}
