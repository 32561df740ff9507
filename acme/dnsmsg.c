/* dnsmsg.c - DNS messages on ldns. See dnsmsg.h. */
#include "acme/dnsmsg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "acme/crypto.h"
#include "common/b64url.h"
#include "common/errbuf.h"

#define TSIG_FUDGE 300

/* <label>.<name>, a wildcard's "*." dropped; -1 when longer than len or a DNS name. */
static int
label_name(const char *label, const char *name, char *out, size_t len)
{
	int n;

	if (strncmp(name, "*.", 2) == 0)
		name += 2;
	n = snprintf(out, len, "%s.%s", label, name);
	return n < 0 || (size_t)n >= len || n > 253 ? -1 : 0;
}

int
dnsmsg_dns01_name(const char *name, char *out, size_t len)
{
	return label_name("_acme-challenge", name, out, len);
}

void
dnsmsg_dns01_value(const char *keyauth, char out[44])
{
	uint8_t d[32];

	crypto_sha256(keyauth, strlen(keyauth), d);
	b64url_encode(out, d, sizeof d);
}

int
dnsmsg_persist_name(const char *name, char *out, size_t len)
{
	return label_name("_validation-persist", name, out, len);
}

int
dnsmsg_persist_value(const char *issuer, const char *account_url, bool wildcard, char *out,
    size_t len)
{
	int n = snprintf(out, len, "%s; accounturi=%s%s", issuer, account_url,
	    wildcard ? "; policy=wildcard" : "");

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Trims ASCII white space of [*p, *e). */
static void
trim(const char **p, const char **e)
{
	while (*p < *e && isspace((unsigned char)**p))
		(*p)++;
	while (*e > *p && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

bool
dnsmsg_persist_matches(const char *txt, const char *issuer, const char *account_url,
    bool wildcard)
{
	const char *p = txt, *e = strchr(txt, ';'), *end = txt + strlen(txt);
	bool acct = false, wild = false;

	if (e == NULL)
		e = end;
	trim(&p, &e);
	/* issuer-domain-name, compared without case and a final dot */
	if ((size_t)(e - p) < strlen(issuer) || strncasecmp(p, issuer, strlen(issuer)) != 0 ||
	    !(e - p == (long)strlen(issuer) || (e - p == (long)strlen(issuer) + 1 &&
	    p[strlen(issuer)] == '.')))
		return false;
	while (e < end) {
		const char *q = e + 1, *qe = strchr(q, ';'), *eq;
		if (qe == NULL)
			qe = end;
		e = qe;
		trim(&q, &qe);
		if ((eq = memchr(q, '=', (size_t)(qe - q))) == NULL)
			continue;
		const char *k = q, *ke = eq, *v = eq + 1, *ve = qe;
		trim(&k, &ke);
		trim(&v, &ve);
		if (ke - k == 10 && strncasecmp(k, "accounturi", 10) == 0)
			acct |= (size_t)(ve - v) == strlen(account_url) &&
			    memcmp(v, account_url, (size_t)(ve - v)) == 0;
		else if (ke - k == 6 && strncasecmp(k, "policy", 6) == 0)
			wild |= ve - v == 8 && strncasecmp(v, "wildcard", 8) == 0;
	}
	return acct && (!wildcard || wild);
}

void
dnsmsg_out_free(struct dnsmsg_out *m)
{
	free(m->wire);
	ldns_rdf_deep_free(m->mac);
	memset(m, 0, sizeof *m);
}

static uint16_t
random_id(void)
{
	uint16_t id = 0;

	if (crypto_random(&id, sizeof id) < 0)
		id = (uint16_t)rand();
	return id;
}

/* Encodes pkt (signed with key unless NULL) into m and frees pkt; a NULL pkt
 * is a failed allocation. */
static int
pkt_out(struct dnsmsg_out *m, ldns_pkt *pkt, const struct dnsmsg_tsig *key, char *err,
    size_t errlen)
{
	ldns_status st;
	char alg[32];
	int rc = -1;

	memset(m, 0, sizeof *m);
	if (pkt == NULL) {
		errbuf_set(err, errlen, "%s", "out of memory");
		return -1;
	}
	m->id = random_id();
	ldns_pkt_set_id(pkt, m->id);
	if (key != NULL) {
		snprintf(alg, sizeof alg, "%s.", key->algorithm != NULL ? key->algorithm :
		    "hmac-sha256");
		st = ldns_pkt_tsig_sign(pkt, key->name, key->secret, TSIG_FUDGE, alg, NULL);
		if (st != LDNS_STATUS_OK) {
			/* ldns's text names the problem (bad base64, unknown algorithm) */
			errbuf_set(err, errlen, "TSIG signing: %s (check the tsig-secret-file: one "
			    "base64 secret)", ldns_get_errorstr_by_id(st));
			goto out;
		}
		ldns_rr *t = ldns_pkt_tsig(pkt);
		if (t != NULL && ldns_rr_rd_count(t) > 3)
			m->mac = ldns_rdf_clone(ldns_rr_rdf(t, 3));
	}
	if (ldns_pkt2wire(&m->wire, pkt, &m->len) != LDNS_STATUS_OK) {
		errbuf_set(err, errlen, "%s", "cannot encode the DNS message");
		dnsmsg_out_free(m);
		goto out;
	}
	rc = 0;
out:
	ldns_pkt_free(pkt);
	return rc;
}

int
dnsmsg_query(struct dnsmsg_out *m, const char *name, enum dnsmsg_type type, bool rd,
    char *err, size_t errlen)
{
	ldns_rdf *owner = ldns_dname_new_frm_str(name);
	ldns_pkt *pkt;

	if (owner == NULL) {
		errbuf_set(err, errlen, "'%s' is not a DNS name", name);
		return -1;
	}
	pkt = ldns_pkt_query_new(owner, (ldns_rr_type)type, LDNS_RR_CLASS_IN, rd ? LDNS_RD : 0);
	if (pkt != NULL)
		ldns_pkt_set_edns_udp_size(pkt, DNSMSG_UDP_MAX);
	return pkt_out(m, pkt, NULL, err, errlen);
}

int
dnsmsg_update(struct dnsmsg_out *m, const char *zone, const char *fqdn, const char *value,
    unsigned ttl, bool add, const struct dnsmsg_tsig *key, char *err, size_t errlen)
{
	ldns_rdf *z = ldns_dname_new_frm_str(zone);
	ldns_rr_list *up = ldns_rr_list_new();
	ldns_pkt *pkt;
	int rc = -1;

	if (z == NULL || up == NULL) {
		errbuf_set(err, errlen, "zone '%s' is not a DNS name", zone);
		goto out;
	}
	if (fqdn != NULL) {
		ldns_rr *rr = ldns_rr_new_frm_type(LDNS_RR_TYPE_TXT);
		ldns_rdf *owner = ldns_dname_new_frm_str(fqdn);
		ldns_rdf *txt = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_STR, value);
		if (rr == NULL || owner == NULL || txt == NULL) {
			ldns_rr_free(rr);
			ldns_rdf_deep_free(owner);
			ldns_rdf_deep_free(txt);
			errbuf_set(err, errlen, "cannot make the TXT record of %s", fqdn);
			goto out;
		}
		ldns_rr_set_owner(rr, owner);
		ldns_rr_push_rdf(rr, txt);
		/* delete one RR: class NONE, TTL 0 (RFC 2136 section 2.5.4) */
		ldns_rr_set_class(rr, add ? LDNS_RR_CLASS_IN : LDNS_RR_CLASS_NONE);
		ldns_rr_set_ttl(rr, add ? ttl : 0);
		ldns_rr_list_push_rr(up, rr);
	}
	pkt = ldns_update_pkt_new(z, LDNS_RR_CLASS_IN, NULL, up, NULL);
	z = NULL;	/* owned by pkt now */
	/* ldns_update_pkt_new() takes a copy of the list (LeakSanitizer) */
	ldns_rr_list_deep_free(up);
	up = NULL;
	rc = pkt_out(m, pkt, key, err, errlen);
out:
	ldns_rdf_deep_free(z);
	ldns_rr_list_deep_free(up);
	return rc;
}

/* The rdf's presentation, lower case, without the final dot. */
static void
rdf_name(const ldns_rdf *d, char *out, size_t len)
{
	char *s = d != NULL ? ldns_rdf2str(d) : NULL;
	size_t n;

	out[0] = '\0';
	if (s == NULL)
		return;
	n = strlen(s);
	if (n > 1 && s[n - 1] == '.')
		s[--n] = '\0';
	if (n < len) {
		for (size_t i = 0; i <= n; i++)
			out[i] = (char)tolower((unsigned char)s[i]);
	}
	free(s);
}

/* The character-strings of a TXT RR, joined, printable bytes only. */
static void
txt_value(const ldns_rr *rr, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *d = ldns_rr_rdf(rr, i);
		const uint8_t *p = ldns_rdf_data(d);
		size_t n = ldns_rdf_size(d);
		if (ldns_rdf_get_type(d) != LDNS_RDF_TYPE_STR || n == 0)
			continue;
		for (size_t k = 1; k < n && k <= p[0] && o + 1 < len; k++)
			out[o++] = p[k] >= 0x20 && p[k] < 0x7f ? (char)p[k] : '?';
	}
	out[o] = '\0';
}

static void
take_rr(struct dnsmsg_reply *r, const ldns_rr *rr, bool answer)
{
	ldns_rr_type t = ldns_rr_get_type(rr);

	switch ((int)t) {
	case LDNS_RR_TYPE_CNAME:
		if (answer && ldns_rr_rd_count(rr) == 1)
			rdf_name(ldns_rr_rdf(rr, 0), r->cname, sizeof r->cname);
		break;
	case LDNS_RR_TYPE_SOA:
		if (r->soa_zone[0] == '\0' || answer) {
			rdf_name(ldns_rr_owner(rr), r->soa_zone, sizeof r->soa_zone);
			if (ldns_rr_rd_count(rr) >= 1)
				rdf_name(ldns_rr_rdf(rr, 0), r->soa_mname, sizeof r->soa_mname);
			r->soa_in_answer = answer;
		}
		break;
	case LDNS_RR_TYPE_NS:
		if (answer && r->nns < DNSMSG_ITEMS_MAX && ldns_rr_rd_count(rr) == 1)
			rdf_name(ldns_rr_rdf(rr, 0), r->ns[r->nns++], DNSMSG_NAME_MAX);
		break;
	case LDNS_RR_TYPE_A:
	case LDNS_RR_TYPE_AAAA:
		if (r->naddr < DNSMSG_ITEMS_MAX && ldns_rr_rd_count(rr) == 1) {
			char *s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
			if (s != NULL && strlen(s) < sizeof r->addr[0]) {
				snprintf(r->addr[r->naddr], sizeof r->addr[0], "%s", s);
				rdf_name(ldns_rr_owner(rr), r->addr_owner[r->naddr],
				    DNSMSG_NAME_MAX);
				r->naddr++;
			}
			free(s);
		}
		break;
	case LDNS_RR_TYPE_TXT:
		if (answer && r->ntxt < DNSMSG_ITEMS_MAX)
			txt_value(rr, r->txt[r->ntxt++], DNSMSG_TXT_MAX);
		break;
	default:
		break;
	}
}

static void
take_section(struct dnsmsg_reply *r, const ldns_rr_list *l, bool answer)
{
	for (size_t i = 0; l != NULL && i < ldns_rr_list_rr_count(l); i++)
		take_rr(r, ldns_rr_list_rr(l, i), answer);
}

int
dnsmsg_parse(const uint8_t *wire, size_t len, struct dnsmsg_reply *r, char *err,
    size_t errlen)
{
	ldns_pkt *pkt = NULL;
	ldns_rr *t;

	memset(r, 0, sizeof *r);
	if (len < 12 || ldns_wire2pkt(&pkt, wire, len) != LDNS_STATUS_OK) {
		/* the header alone still tells an id and a truncation */
		if (len >= 12) {
			r->id = (uint16_t)(wire[0] << 8 | wire[1]);
			r->tc = (wire[2] & 0x02) != 0;
			r->rcode = wire[3] & 0x0f;
		}
		errbuf_set(err, errlen, "%s", "the reply is not a valid DNS message");
		return -1;
	}
	r->id = ldns_pkt_id(pkt);
	r->rcode = ldns_pkt_get_rcode(pkt);
	r->tc = ldns_pkt_tc(pkt);
	r->aa = ldns_pkt_aa(pkt);
	take_section(r, ldns_pkt_answer(pkt), true);
	take_section(r, ldns_pkt_authority(pkt), false);
	take_section(r, ldns_pkt_additional(pkt), false);
	if ((t = ldns_pkt_tsig(pkt)) != NULL && ldns_rr_rd_count(t) > 5) {
		const ldns_rdf *e = ldns_rr_rdf(t, 5);
		if (ldns_rdf_size(e) == 2)
			r->tsig_error = ldns_rdf2native_int16(e);
	}
	ldns_pkt_free(pkt);
	return 0;
}

void
dnsmsg_verify(const uint8_t *wire, size_t len, const struct dnsmsg_out *req,
    const struct dnsmsg_tsig *key, struct dnsmsg_reply *r)
{
	ldns_pkt *pkt = NULL;

	r->signed_ok = false;
	if (key == NULL || req->mac == NULL || ldns_wire2pkt(&pkt, wire, len) != LDNS_STATUS_OK)
		return;
	r->signed_ok = ldns_pkt_tsig(pkt) != NULL &&
	    ldns_pkt_tsig_verify(pkt, wire, len, key->name, key->secret, req->mac);
	ldns_pkt_free(pkt);
}

const char *
dnsmsg_rcode_name(int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
	    "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE" };

	if (rcode >= 0 && (size_t)rcode < sizeof names / sizeof names[0])
		return names[rcode];
	switch (rcode) {
	case 16: return "BADSIG";
	case 17: return "BADKEY";
	case 18: return "BADTIME";
	default: return "an unknown code";
	}
}
