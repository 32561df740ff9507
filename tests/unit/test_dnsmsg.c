/* test_dnsmsg: the records of dns-01 (RFC 8555 section 8.4) and
 * dns-persist-01, and the DNS messages (queries, UPDATE + TSIG, replies)
 * against ldns as the other side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "acme/dnsmsg.h"
#include "tap.h"

static const char *const SECRET = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";

static void
test_records(void)
{
	char name[DNSMSG_NAME_MAX], v[44], rec[DNSMSG_TXT_MAX], big[300];

	/* RFC 8555 section 8.4: "_acme-challenge." + the domain, a wildcard's
	 * base name; value base64url(SHA-256(key authorization)), no padding.
	 * The expected value is Python's hashlib/base64 over the same text. */
	ok(dnsmsg_dns01_name("www.example.org", name, sizeof name) == 0 &&
	    strcmp(name, "_acme-challenge.www.example.org") == 0, "dns-01 name");
	ok(dnsmsg_dns01_name("*.example.org", name, sizeof name) == 0 &&
	    strcmp(name, "_acme-challenge.example.org") == 0, "a wildcard's base name");
	dnsmsg_dns01_value("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0."
	    "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI", v);
	is_str(v, "LPsIwTo7o8BoG0-vjCyGQGBWSVIPxI-i_X336eUOQZo",
	    "value: base64url(SHA-256(keyauth)), 43 chars, no '='");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ok(dnsmsg_dns01_name(big, name, sizeof name) < 0, "a name over 253 bytes refused");

	ok(dnsmsg_persist_name("*.example.org", name, sizeof name) == 0 &&
	    strcmp(name, "_validation-persist.example.org") == 0, "dns-persist-01 name");
	ok(dnsmsg_persist_value("ca.example", "https://ca.example/acct/1", false, rec,
	    sizeof rec) == 0 && strcmp(rec, "ca.example; accounturi=https://ca.example/acct/1") == 0,
	    "dns-persist-01 value");
	ok(dnsmsg_persist_value("ca.example", "https://ca.example/acct/1", true, rec,
	    sizeof rec) == 0 && strcmp(rec, "ca.example; accounturi=https://ca.example/acct/1; "
	    "policy=wildcard") == 0, "dns-persist-01 value for a wildcard");
	ok(dnsmsg_persist_matches(rec, "ca.example", "https://ca.example/acct/1", true),
	    "its own record matches (wildcard)");
	ok(dnsmsg_persist_matches("CA.Example. ;accounturi=https://ca.example/acct/1",
	    "ca.example", "https://ca.example/acct/1", false), "issuer case, final dot, spaces");
	ok(!dnsmsg_persist_matches("ca.example; accounturi=https://ca.example/acct/1",
	    "ca.example", "https://ca.example/acct/1", true), "a wildcard needs policy=wildcard");
	ok(!dnsmsg_persist_matches("ca.example; accounturi=https://ca.example/acct/2",
	    "ca.example", "https://ca.example/acct/1", false), "another account");
	ok(!dnsmsg_persist_matches("other.example; accounturi=https://ca.example/acct/1",
	    "ca.example", "https://ca.example/acct/1", false), "another issuer");
	ok(!dnsmsg_persist_matches("ca.examplex; accounturi=https://ca.example/acct/1",
	    "ca.example", "https://ca.example/acct/1", false), "issuer prefix is no match");
	ok(!dnsmsg_persist_matches("ca.example", "ca.example", "https://ca.example/acct/1", false),
	    "no accounturi");
}

/* wire of a reply built by ldns from RR strings (section 0 answer, 1
 * authority, 2 additional). */
static size_t
reply(uint8_t **wire, uint16_t id, int rcode, const char *const *rrs, const int *sec, size_t n)
{
	ldns_pkt *p = ldns_pkt_new();
	size_t len = 0;

	ldns_pkt_set_id(p, id);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_aa(p, true);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = NULL;
		if (ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL) != LDNS_STATUS_OK)
			continue;
		ldns_pkt_push_rr(p, sec[i] == 0 ? LDNS_SECTION_ANSWER : sec[i] == 1 ?
		    LDNS_SECTION_AUTHORITY : LDNS_SECTION_ADDITIONAL, rr);
	}
	ldns_pkt2wire(wire, p, &len);
	ldns_pkt_free(p);
	return len;
}

static void
test_replies(void)
{
	struct dnsmsg_reply r;
	char err[DNSMSG_ERR_MAX];
	uint8_t *w = NULL;
	size_t n;
	static const char *const a[] = {
		"_acme-challenge.x.example. 60 IN CNAME _acme-challenge.x.acme.example.",
		"_acme-challenge.x.acme.example. 60 IN TXT \"one\" \"two\"",
		"_acme-challenge.x.acme.example. 60 IN TXT \"abc\"",
		"example. 60 IN NS ns1.example.",
		"ns1.example. 60 IN A 192.0.2.53",
		"ns1.example. 60 IN AAAA 2001:db8::53",
	};
	static const int as[] = { 0, 0, 0, 1, 2, 2 };
	static const char *const b[] = {
		"Example. 60 IN SOA NS1.example. host.example. 1 2 3 4 5",
	};
	static const int bs[] = { 1 };

	n = reply(&w, 0x1234, 0, a, as, 6);
	ok(dnsmsg_parse(w, n, &r, err, sizeof err) == 0, "a reply parses");
	is_int(r.id, 0x1234, "id");
	is_str(r.cname, "_acme-challenge.x.acme.example", "CNAME target, no final dot");
	is_int((int)r.ntxt, 2, "two TXT records");
	is_str(r.txt[0], "onetwo", "character-strings of one TXT joined");
	is_str(r.txt[1], "abc", "second TXT");
	is_int((int)r.naddr, 2, "A and AAAA from the additional section");
	is_str(r.addr[0], "192.0.2.53", "A");
	is_str(r.addr_owner[1], "ns1.example", "AAAA owner");
	is_int((int)r.nns, 0, "NS in authority is no NS answer");
	free(w);

	n = reply(&w, 7, 3, b, bs, 1);
	ok(dnsmsg_parse(w, n, &r, err, sizeof err) == 0 && r.rcode == 3 &&
	    strcmp(r.soa_zone, "example") == 0 && strcmp(r.soa_mname, "ns1.example") == 0 &&
	    !r.soa_in_answer, "NXDOMAIN with the zone's SOA in authority: zone, primary, lower case");
	free(w);

	ok(dnsmsg_parse((const uint8_t *)"\x12\x34\x82\x05", 4, &r, err, sizeof err) < 0,
	    "4 bytes: not DNS");
	uint8_t hdr[12] = { 0xab, 0xcd, 0x82, 0x05, 0, 1, 0, 0, 0, 0, 0, 0 };
	ok(dnsmsg_parse(hdr, sizeof hdr, &r, err, sizeof err) < 0 && r.id == 0xabcd && r.tc &&
	    r.rcode == 5, "a truncated question: the header still tells id, TC, rcode");
	is_str(dnsmsg_rcode_name(9), "NOTAUTH", "rcode names");
	is_str(dnsmsg_rcode_name(16), "BADSIG", "TSIG error names");
}

static void
test_update_tsig(void)
{
	struct dnsmsg_tsig key = { "hacme-key", "hmac-sha256", SECRET };
	struct dnsmsg_tsig other = { "hacme-key", "hmac-sha256",
	    "b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyMTI=" };
	struct dnsmsg_out m, q;
	struct dnsmsg_reply r;
	char err[DNSMSG_ERR_MAX];
	ldns_pkt *p = NULL;

	ok(dnsmsg_update(&m, "example.org", "_acme-challenge.example.org", "VALUE", 60, true,
	    &key, err, sizeof err) == 0, "a signed UPDATE");
	ok(ldns_wire2pkt(&p, m.wire, m.len) == LDNS_STATUS_OK, "ldns reads it");
	ok(p != NULL && ldns_pkt_get_opcode(p) == LDNS_PACKET_UPDATE &&
	    ldns_pkt_tsig(p) != NULL, "opcode UPDATE, TSIG last");
	ok(p != NULL && ldns_pkt_tsig_verify(p, m.wire, m.len, "hacme-key", SECRET, NULL),
	    "the TSIG verifies with the key (what the server checks)");
	ok(p != NULL && !ldns_pkt_tsig_verify(p, m.wire, m.len, "hacme-key", other.secret, NULL),
	    "and not with another secret");
	if (p != NULL) {
		ldns_rr_list *up = ldns_pkt_authority(p);	/* the update section */
		char *s = up != NULL && ldns_rr_list_rr_count(up) == 1 ?
		    ldns_rr2str(ldns_rr_list_rr(up, 0)) : NULL;
		ok(s != NULL && strstr(s, "_acme-challenge.example.org.\t60\tIN\tTXT\t\"VALUE\"") != NULL,
		    "adds _acme-challenge.example.org 60 IN TXT \"VALUE\" (%s)", s ? s : "none");
		free(s);
		ldns_pkt_free(p);
		p = NULL;
	}
	/* the server's signed reply, verified against our request's MAC */
	{
		ldns_pkt *rp = ldns_pkt_new();
		uint8_t *w = NULL;
		size_t n = 0;
		ldns_pkt_set_id(rp, m.id);
		ldns_pkt_set_qr(rp, true);
		ldns_pkt_set_opcode(rp, LDNS_PACKET_UPDATE);
		ldns_pkt_tsig_sign(rp, "hacme-key", SECRET, 300, "hmac-sha256.", m.mac);
		ldns_pkt2wire(&w, rp, &n);
		ok(dnsmsg_parse(w, n, &r, err, sizeof err) == 0, "the signed reply parses");
		dnsmsg_verify(w, n, &m, &key, &r);
		ok(r.signed_ok, "its TSIG verifies against the request's MAC");
		dnsmsg_verify(w, n, &m, &other, &r);
		ok(!r.signed_ok, "not with another secret");
		free(w);
		ldns_pkt_free(rp);
	}
	dnsmsg_out_free(&m);

	ok(dnsmsg_update(&m, "example.org", "_acme-challenge.example.org", "VALUE", 60, false,
	    NULL, err, sizeof err) == 0 && ldns_wire2pkt(&p, m.wire, m.len) == LDNS_STATUS_OK,
	    "an unsigned delete");
	if (p != NULL) {
		ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
		ok(rr != NULL && ldns_rr_get_class(rr) == LDNS_RR_CLASS_NONE && ldns_rr_ttl(rr) == 0,
		    "delete one RR: class NONE, TTL 0 (RFC 2136 2.5.4)");
		ok(ldns_pkt_tsig(p) == NULL, "no TSIG without a key");
		ldns_pkt_free(p);
		p = NULL;
	}
	dnsmsg_out_free(&m);
	ok(dnsmsg_update(&m, "example.org", NULL, NULL, 0, true, &key, err, sizeof err) == 0 &&
	    ldns_wire2pkt(&p, m.wire, m.len) == LDNS_STATUS_OK &&
	    ldns_rr_list_rr_count(ldns_pkt_authority(p)) == 0, "the pre-flight UPDATE changes nothing");
	if (p != NULL)
		ldns_pkt_free(p);
	dnsmsg_out_free(&m);
	struct dnsmsg_tsig bad = { "hacme-key", "hmac-sha256", "not base64!" };
	ok(dnsmsg_update(&m, "example.org", NULL, NULL, 0, true, &bad, err, sizeof err) < 0 &&
	    strstr(err, "tsig-secret-file") != NULL && strstr(err, "not base64") == NULL,
	    "a secret that is not base64: an error naming the file, not the secret (%s)", err);
	ok(dnsmsg_query(&q, "_acme-challenge.example.org", DNSMSG_TXT, false, err, sizeof err) == 0 &&
	    q.len > 12 && (q.wire[2] & 0x01) == 0, "a query without RD");
	dnsmsg_out_free(&q);
}

int
main(void)
{
	test_records();
	test_replies();
	test_update_tsig();
	return tap_done();
}
