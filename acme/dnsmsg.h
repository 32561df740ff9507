/* dnsmsg.h - the DNS messages hacme sends and reads, on ldns (wire
 * format, names, TSIG): queries, RFC 2136 UPDATEs of one TXT record, and a
 * reply flattened into what the DNS solvers look at. Pure: no I/O.
 *
 * Also the record each challenge publishes: RFC 8555 section 8.4
 * (dns-01) and draft-ietf-acme-dns-persist (dns-persist-01). */
#ifndef HACME_DNSMSG_H
#define HACME_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSMSG_NAME_MAX 256	/* a presentation name, without the final dot, + NUL */
#define DNSMSG_MAX 65535	/* bytes of a message over TCP */
#define DNSMSG_UDP_MAX 1232	/* bytes we accept over UDP (EDNS buffer size) */
#define DNSMSG_ITEMS_MAX 32	/* answers of each kind kept */
#define DNSMSG_TXT_MAX 512	/* bytes of one TXT value kept (strings joined) */
#define DNSMSG_ERR_MAX 256

/* "_acme-challenge.<name>" (a wildcard's base name), no final dot. -1 when
 * it would be longer than a DNS name. */
int dnsmsg_dns01_name(const char *name, char *out, size_t len);
/* base64url(SHA-256(key authorization)): 43 characters + NUL. */
void dnsmsg_dns01_value(const char *keyauth, char out[44]);
/* "_validation-persist.<name>". */
int dnsmsg_persist_name(const char *name, char *out, size_t len);
/* "<issuer>; accounturi=<url>[; policy=wildcard]" into out; -1 if too long. */
int dnsmsg_persist_value(const char *issuer, const char *account_url, bool wildcard,
    char *out, size_t len);
/* True when a TXT value (issue-value syntax, RFC 8659 section 4) names
 * issuer and account_url, and, for a wildcard, policy=wildcard. */
bool dnsmsg_persist_matches(const char *txt, const char *issuer, const char *account_url,
    bool wildcard);

enum dnsmsg_type { DNSMSG_A = 1, DNSMSG_NS = 2, DNSMSG_CNAME = 5, DNSMSG_SOA = 6,
    DNSMSG_TXT = 16, DNSMSG_AAAA = 28 };

/* A TSIG key: name, algorithm ("hmac-sha256"), base64 secret. The secret
 * is only handed to ldns; never logged. */
struct dnsmsg_tsig {
	const char *name, *algorithm, *secret;
};

/* A message to send, malloc'd wire bytes. For a signed one, mac keeps the
 * request's MAC (to check the reply's signature). */
struct dnsmsg_out {
	uint8_t *wire;
	size_t len;
	uint16_t id;
	void *mac;			/* ldns_rdf *, NULL when unsigned */
};
void dnsmsg_out_free(struct dnsmsg_out *m);

/* A query for name/type with a random id; rd sets Recursion Desired. */
int dnsmsg_query(struct dnsmsg_out *m, const char *name, enum dnsmsg_type type, bool rd,
    char *err, size_t errlen);
/* An UPDATE of zone: add (or, add false, delete exactly) the TXT record
 * fqdn ttl value; fqdn NULL: no change at all (checks that updates of the
 * zone are authorized). Signed when key is not NULL. */
int dnsmsg_update(struct dnsmsg_out *m, const char *zone, const char *fqdn,
    const char *value, unsigned ttl, bool add, const struct dnsmsg_tsig *key,
    char *err, size_t errlen);

/* A reply, flattened. Names are lower case without the final dot. */
struct dnsmsg_reply {
	uint16_t id;
	int rcode;			/* 0 NOERROR, 3 NXDOMAIN, 5 REFUSED, 9 NOTAUTH ... */
	bool tc, aa;
	bool signed_ok;			/* a TSIG on it verified (dnsmsg_verify) */
	int tsig_error;			/* the reply's TSIG error field, 0 if none */
	char cname[DNSMSG_NAME_MAX];	/* the last CNAME target in the answer, "" */
	char soa_zone[DNSMSG_NAME_MAX];	/* owner of a SOA in answer or authority */
	char soa_mname[DNSMSG_NAME_MAX];	/* its primary server */
	bool soa_in_answer;
	char ns[DNSMSG_ITEMS_MAX][DNSMSG_NAME_MAX];	/* NS targets in the answer */
	size_t nns;
	char addr[DNSMSG_ITEMS_MAX][48];	/* A/AAAA of the answer and additional */
	char addr_owner[DNSMSG_ITEMS_MAX][DNSMSG_NAME_MAX];
	size_t naddr;
	char txt[DNSMSG_ITEMS_MAX][DNSMSG_TXT_MAX];	/* TXT values of the answer */
	size_t ntxt;
};

/* Parses wire (len bytes) into r. -1 with err on a message that is not
 * DNS. A reply whose TSIG is to be checked goes through dnsmsg_verify. */
int dnsmsg_parse(const uint8_t *wire, size_t len, struct dnsmsg_reply *r, char *err,
    size_t errlen);
/* Checks the reply's TSIG against the request's MAC; sets r->signed_ok. */
void dnsmsg_verify(const uint8_t *wire, size_t len, const struct dnsmsg_out *req,
    const struct dnsmsg_tsig *key, struct dnsmsg_reply *r);

/* "NOERROR", "REFUSED", "NOTAUTH", ... ; TSIG errors "BADSIG", "BADKEY", "BADTIME". */
const char *dnsmsg_rcode_name(int rcode);

#endif
