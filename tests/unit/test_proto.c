/* test_proto.c - ACME documents (pebble 2.4 and Let's Encrypt shapes), problem
 * explanations, RFC 3339, Retry-After, Link, builders. */
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "acme/proto.h"
#include "tap.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- documents as the CAs send them ---- */

static const char pebble_dir[] =
    "{\n"
    "   \"keyChange\": \"https://127.0.0.1:14000/rollover-account-key\",\n"
    "   \"meta\": {\n"
    "      \"externalAccountRequired\": false,\n"
    "      \"termsOfService\": \"data:text/plain,Do%20what%20thou%20wilt\"\n"
    "   },\n"
    "   \"newAccount\": \"https://127.0.0.1:14000/sign-me-up\",\n"
    "   \"newNonce\": \"https://127.0.0.1:14000/nonce-plz\",\n"
    "   \"newOrder\": \"https://127.0.0.1:14000/order-plz\",\n"
    "   \"revokeCert\": \"https://127.0.0.1:14000/revoke-cert\"\n"
    "}\n";

static const char le_dir[] =
    "{\"XsK9jxPuIzQ\":\"https://community.letsencrypt.org/t/adding-random-"
    "entries-to-the-directory/33417\","
    "\"keyChange\":\"https://acme-v02.api.letsencrypt.org/acme/key-change\","
    "\"meta\":{\"caaIdentities\":[\"letsencrypt.org\"],"
    "\"profiles\":{\"classic\":\"https://letsencrypt.org/docs/profiles#classic\","
    "\"shortlived\":\"https://letsencrypt.org/docs/profiles#shortlived\","
    "\"tlsserver\":\"https://letsencrypt.org/docs/profiles#tlsserver\"},"
    "\"termsOfService\":\"https://letsencrypt.org/documents/LE-SA-v1.5-February-24-2025.pdf\","
    "\"website\":\"https://letsencrypt.org\"},"
    "\"newAccount\":\"https://acme-v02.api.letsencrypt.org/acme/new-acct\","
    "\"newNonce\":\"https://acme-v02.api.letsencrypt.org/acme/new-nonce\","
    "\"newOrder\":\"https://acme-v02.api.letsencrypt.org/acme/new-order\","
    "\"renewalInfo\":\"https://acme-v02.api.letsencrypt.org/draft-ietf-acme-ari-03/renewalInfo\","
    "\"revokeCert\":\"https://acme-v02.api.letsencrypt.org/acme/revoke-cert\"}";

static const char pebble_order[] =
    "{\n"
    "   \"status\": \"pending\",\n"
    "   \"expires\": \"2026-11-26T04:24:30Z\",\n"
    "   \"identifiers\": [\n"
    "      { \"type\": \"dns\", \"value\": \"a.example\" },\n"
    "      { \"type\": \"dns\", \"value\": \"www.a.example\" }\n"
    "   ],\n"
    "   \"finalize\": \"https://127.0.0.1:14000/finalize-order/mGkM1p2p\",\n"
    "   \"authorizations\": [\n"
    "      \"https://127.0.0.1:14000/authZ/xA1\",\n"
    "      \"https://127.0.0.1:14000/authZ/xB2\"\n"
    "   ]\n"
    "}";

static const char le_order_valid[] =
    "{\"status\":\"valid\",\"expires\":\"2026-12-02T04:24:30Z\","
    "\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}],"
    "\"profile\":\"tlsserver\","
    "\"replaces\":\"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE\","
    "\"authorizations\":[\"https://acme-v02.api.letsencrypt.org/acme/authz/1/2\"],"
    "\"finalize\":\"https://acme-v02.api.letsencrypt.org/acme/finalize/1/3\","
    "\"certificate\":\"https://acme-v02.api.letsencrypt.org/acme/cert/fa01\"}";

static const char order_invalid[] =
    "{\"status\":\"invalid\",\"identifiers\":[{\"type\":\"dns\",\"value\":"
    "\"a.example\"}],\"authorizations\":[],\"finalize\":\"https://ca/f/1\","
    "\"error\":{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
    "\"detail\":\"Order was invalidated\",\"status\":403}}";

static const char pebble_authz[] =
    "{\n"
    "   \"status\": \"pending\",\n"
    "   \"identifier\": { \"type\": \"dns\", \"value\": \"a.example\" },\n"
    "   \"challenges\": [\n"
    "      { \"type\": \"tls-alpn-01\", \"url\": \"https://127.0.0.1:14000/chalZ/t1\",\n"
    "        \"token\": \"Ak1Gk7DWq4nwW3vdK0Y2ZV5cEy8X3xGTJ7LBNKPdsAg\", \"status\": \"pending\" },\n"
    "      { \"type\": \"http-01\", \"url\": \"https://127.0.0.1:14000/chalZ/h1\",\n"
    "        \"token\": \"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\", \"status\": \"pending\" },\n"
    "      { \"type\": \"dns-01\", \"url\": \"https://127.0.0.1:14000/chalZ/d1\",\n"
    "        \"token\": \"9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI\", \"status\": \"pending\" }\n"
    "   ],\n"
    "   \"expires\": \"2026-11-25T05:24:30Z\"\n"
    "}";

static const char le_authz_invalid[] =
    "{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
    "\"status\":\"invalid\",\"expires\":\"2026-12-02T04:24:30Z\","
    "\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://acme-v02.api."
    "letsencrypt.org/acme/chall/1/2/Ab\",\"status\":\"invalid\","
    "\"validated\":\"2026-11-25T04:24:30.5123Z\",\"error\":{\"type\":"
    "\"urn:ietf:params:acme:error:connection\",\"detail\":\"203.0.113.7: "
    "Fetching http://a.example/.well-known/acme-challenge/tok: Connection "
    "refused\",\"status\":400},\"token\":\"tok\"}]}";

static const char rfc_compound[] =
    "{\n"
    "    \"type\": \"urn:ietf:params:acme:error:malformed\",\n"
    "    \"detail\": \"Some of the identifiers requested were rejected\",\n"
    "    \"subproblems\": [\n"
    "        {\n"
    "            \"type\": \"urn:ietf:params:acme:error:malformed\",\n"
    "            \"detail\": \"Invalid underscore in DNS name \\\"_example.org\\\"\",\n"
    "            \"identifier\": { \"type\": \"dns\", \"value\": \"_example.org\" }\n"
    "        },\n"
    "        {\n"
    "            \"type\": \"urn:ietf:params:acme:error:rejectedIdentifier\",\n"
    "            \"detail\": \"This CA will not issue for \\\"example.net\\\"\",\n"
    "            \"identifier\": { \"type\": \"dns\", \"value\": \"example.net\" }\n"
    "        }\n"
    "    ]\n"
    "}";

static void
test_directory(void)
{
	struct proto_directory d;
	char why[PROTO_WHY_MAX];

	is_int(proto_directory_parse(&d, S(pebble_dir), why, sizeof(why)), 0,
	    "pebble directory parses");
	is_str(d.new_nonce, "https://127.0.0.1:14000/nonce-plz", "newNonce");
	is_str(d.new_account, "https://127.0.0.1:14000/sign-me-up", "newAccount");
	is_str(d.new_order, "https://127.0.0.1:14000/order-plz", "newOrder");
	is_str(d.revoke_cert, "https://127.0.0.1:14000/revoke-cert", "revokeCert");
	is_str(d.key_change, "https://127.0.0.1:14000/rollover-account-key",
	    "keyChange");
	ok(d.renewal_info == NULL, "pebble 2.4: no renewalInfo");
	ok(d.new_authz == NULL, "no newAuthz");
	is_str(d.terms_of_service, "data:text/plain,Do%20what%20thou%20wilt",
	    "termsOfService (a data: URL)");
	ok(!d.external_account_required, "externalAccountRequired false");
	is_int(d.nprofiles, 0, "no profiles");
	ok(!proto_directory_has_profile(&d, "classic"), "has_profile: none");
	proto_directory_free(&d);

	is_int(proto_directory_parse(&d, S(le_dir), why, sizeof(why)), 0,
	    "Let's Encrypt directory parses (random key ignored)");
	is_str(d.renewal_info, "https://acme-v02.api.letsencrypt.org/"
	    "draft-ietf-acme-ari-03/renewalInfo", "renewalInfo");
	is_str(d.website, "https://letsencrypt.org", "website");
	is_int(d.ncaa_identities, 1, "one caaIdentity");
	is_str(d.ncaa_identities ? d.caa_identities[0] : NULL,
	    "letsencrypt.org", "caaIdentities[0]");
	is_int(d.nprofiles, 3, "three profiles");
	ok(proto_directory_has_profile(&d, "tlsserver"), "has tlsserver");
	ok(proto_directory_has_profile(&d, "shortlived"), "has shortlived");
	ok(!proto_directory_has_profile(&d, "tlsclient"), "no tlsclient");
	ok(!proto_directory_has_profile(&d, "Classic"), "profile names are "
	    "case sensitive");
	is_str(d.nprofiles ? d.profile_descs[0] : NULL,
	    "https://letsencrypt.org/docs/profiles#classic", "profile description");
	proto_directory_free(&d);
	proto_directory_free(&d);	/* twice: a no-op */

	is_int(proto_directory_parse(&d, S("{\"newAccount\":\"https://x/a\","
	    "\"newOrder\":\"https://x/o\",\"revokeCert\":\"https://x/r\","
	    "\"keyChange\":\"https://x/k\"}"), why, sizeof(why)), -1,
	    "directory without newNonce refused");
	is_str(why, "directory: missing \"newNonce\"", "why names newNonce");
	ok(d.new_account == NULL, "failed parse leaves nothing behind");
	is_int(proto_directory_parse(&d, S("{\"newNonce\":\"https://x/n\","
	    "\"newAccount\":\"https://x/a\",\"newOrder\":\"https://x/o\","
	    "\"revokeCert\":\"https://x/r\"}"), why, sizeof(why)), -1,
	    "directory without keyChange refused");
	is_str(why, "directory: missing \"keyChange\"", "why names keyChange");
	is_int(proto_directory_parse(&d, S("{\"newNonce\":\"https://x/n\","
	    "\"newAccount\":\"https://x/a\",\"newOrder\":7,"
	    "\"revokeCert\":\"https://x/r\",\"keyChange\":\"https://x/k\"}"),
	    why, sizeof(why)), -1, "newOrder as a number refused");
	is_str(why, "directory: \"newOrder\" is not a string",
	    "why says newOrder is not a string");
	is_int(proto_directory_parse(&d, S("{\"newNonce\":\"https://x/n\","
	    "\"newAccount\":\"https://x/a\",\"newOrder\":\"https://x/o\","
	    "\"revokeCert\":\"https://x/r\",\"keyChange\":\"https://x/k\","
	    "\"meta\":{\"externalAccountRequired\":\"yes\"}}"), why,
	    sizeof(why)), -1, "externalAccountRequired as a string refused");
	is_str(why, "directory meta: \"externalAccountRequired\" is not true "
	    "or false", "why names externalAccountRequired");
	is_int(proto_directory_parse(&d, S("{\"newNonce\":\"https://x/n\","
	    "\"newAccount\":\"https://x/a\",\"newOrder\":\"https://x/o\","
	    "\"revokeCert\":\"https://x/r\",\"keyChange\":\"https://x/k\","
	    "\"meta\":{\"externalAccountRequired\":true,\"profiles\":[]}}"),
	    why, sizeof(why)), -1, "profiles as an array refused");
	is_str(why, "directory meta: \"profiles\" is not an object",
	    "why names profiles");
	is_int(proto_directory_parse(&d, S("{\"newNonce\":\"https://x/n x\","
	    "\"newAccount\":\"https://x/a\",\"newOrder\":\"https://x/o\","
	    "\"revokeCert\":\"https://x/r\",\"keyChange\":\"https://x/k\"}"),
	    why, sizeof(why)), -1, "URL with a space refused");
	ok(strstr(why, "\"newNonce\" is not a valid URL") != NULL,
	    "why: newNonce not a valid URL (%s)", why);
}

static void
test_generic_doc(void)
{
	struct proto_directory d;
	struct proto_order o;
	char why[PROTO_WHY_MAX];
	char *big;
	size_t n = PROTO_MAX_DOC + 2;

	is_int(proto_directory_parse(&d, S("{\"newNonce\":"), why, sizeof(why)),
	    -1, "truncated JSON refused");
	ok(strncmp(why, "directory: not valid JSON", 25) == 0, "why: %s", why);
	is_int(proto_directory_parse(&d, S("[1,2]"), why, sizeof(why)), -1,
	    "array root refused");
	is_str(why, "directory: not a JSON object", "why: not an object");
	is_int(proto_order_parse(&o, S("{} {}"), why, sizeof(why)), -1,
	    "trailing data refused");
	is_int(proto_order_parse(&o, "{}\0{}", 5, why, sizeof(why)), -1,
	    "NUL byte refused");
	is_int(proto_order_parse(&o, "", 0, why, sizeof(why)), -1,
	    "empty body refused");
	is_int(proto_order_parse(&o, NULL, 0, NULL, 0), -1,
	    "NULL body, NULL why: refused without a crash");
	big = malloc(n);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	is_int(proto_order_parse(&o, big, n, why, sizeof(why)), -1,
	    "document over 1 MiB refused");
	ok(strstr(why, "larger than") != NULL, "why: %s", why);
	free(big);
}

static void
test_account(void)
{
	struct proto_account a;
	char why[PROTO_WHY_MAX];

	is_int(proto_account_parse(&a, S("{\n   \"status\": \"valid\",\n"
	    "   \"contact\": [\n      \"mailto:ops@example.com\"\n   ],\n"
	    "   \"orders\": \"https://127.0.0.1:14000/list-orderz/7\",\n"
	    "   \"key\": {\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"a\", "
	    "\"y\": \"b\"}\n}"), why, sizeof(why)), 0, "pebble account parses");
	is_int(a.status, PROTO_ACCOUNT_VALID, "status valid");
	is_int(a.ncontact, 1, "one contact");
	is_str(a.ncontact ? a.contact[0] : NULL, "mailto:ops@example.com",
	    "contact[0]");
	is_str(a.orders, "https://127.0.0.1:14000/list-orderz/7", "orders");
	proto_account_free(&a);
	is_int(proto_account_parse(&a, S("{\"key\":{\"kty\":\"EC\"},"
	    "\"initialIp\":\"203.0.113.7\",\"createdAt\":"
	    "\"2026-11-25T04:24:30Z\",\"status\":\"deactivated\"}"), why,
	    sizeof(why)), 0, "Let's Encrypt account (no orders, no contact)");
	is_int(a.status, PROTO_ACCOUNT_DEACTIVATED, "status deactivated");
	ok(a.orders == NULL && a.ncontact == 0, "orders and contact absent");
	proto_account_free(&a);
	is_int(proto_account_parse(&a, S("{\"contact\":[]}"), why, sizeof(why)),
	    -1, "account without status refused");
	is_str(why, "account: missing \"status\"", "why names status");
	is_int(proto_account_parse(&a, S("{\"status\":\"valid\",\"contact\":"
	    "\"mailto:x@y\"}"), why, sizeof(why)), -1,
	    "contact as a string refused");
	is_str(why, "account: \"contact\" is not an array", "why: contact");
	is_int(proto_account_parse(&a, S("{\"status\":\"frozen\"}"), why,
	    sizeof(why)), -1, "unknown status refused");
	is_str(why, "account: unknown status \"frozen\"", "why: unknown status");
}

static void
test_order(void)
{
	struct proto_order o;
	char why[PROTO_WHY_MAX];

	is_int(proto_order_parse(&o, S(pebble_order), why, sizeof(why)), 0,
	    "pebble order parses");
	is_int(o.status, PROTO_ORDER_PENDING, "status pending");
	is_int(o.expires, 1795580670 + 86400, "expires");
	is_int(o.nidentifiers, 2, "two identifiers");
	is_str(o.nidentifiers > 1 ? o.identifiers[1].value : NULL,
	    "www.a.example", "identifiers[1].value");
	is_str(o.nidentifiers > 1 ? o.identifiers[1].type : NULL, "dns",
	    "identifiers[1].type");
	is_int(o.nauthorizations, 2, "two authorizations");
	is_str(o.nauthorizations ? o.authorizations[0] : NULL,
	    "https://127.0.0.1:14000/authZ/xA1", "authorizations[0]");
	is_str(o.finalize, "https://127.0.0.1:14000/finalize-order/mGkM1p2p",
	    "finalize");
	ok(o.certificate == NULL && o.error == NULL && o.replaces == NULL &&
	    o.profile == NULL, "optional members absent");
	is_str(proto_order_status_name(o.status), "pending", "status name");
	proto_order_free(&o);

	is_int(proto_order_parse(&o, S(le_order_valid), why, sizeof(why)), 0,
	    "Let's Encrypt valid order parses");
	is_int(o.status, PROTO_ORDER_VALID, "status valid");
	is_str(o.certificate, "https://acme-v02.api.letsencrypt.org/acme/cert/"
	    "fa01", "certificate");
	is_str(o.profile, "tlsserver", "profile");
	is_str(o.replaces, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "replaces");
	proto_order_free(&o);

	is_int(proto_order_parse(&o, S(order_invalid), why, sizeof(why)), 0,
	    "invalid order with an error parses");
	is_int(o.status, PROTO_ORDER_INVALID, "status invalid");
	ok(o.error != NULL && o.error->kind == PROTO_ERR_UNAUTHORIZED &&
	    o.error->status == 403, "order error is an unauthorized problem");
	is_int(o.nauthorizations, 0, "empty authorizations allowed");
	proto_order_free(&o);

	is_int(proto_order_parse(&o, S("{\"status\":\"pending\",\"identifiers\":"
	    "[{\"type\":\"dns\",\"value\":\"a\"}],\"authorizations\":[]}"), why,
	    sizeof(why)), -1, "order without finalize refused");
	is_str(why, "order: missing \"finalize\"", "why names finalize");
	is_int(proto_order_parse(&o, S("{\"status\":\"pending\","
	    "\"authorizations\":[],\"finalize\":\"https://x/f\"}"), why,
	    sizeof(why)), -1, "order without identifiers refused");
	is_str(why, "order: missing \"identifiers\"", "why names identifiers");
	is_int(proto_order_parse(&o, S("{\"status\":5,\"identifiers\":[],"
	    "\"authorizations\":[],\"finalize\":\"https://x/f\"}"), why,
	    sizeof(why)), -1, "status as a number refused");
	is_str(why, "order: \"status\" is not a string", "why: status type");
	is_int(proto_order_parse(&o, S("{\"status\":\"ready\",\"identifiers\":"
	    "[{\"type\":\"dns\"}],\"authorizations\":[],\"finalize\":"
	    "\"https://x/f\"}"), why, sizeof(why)), -1,
	    "identifier without value refused");
	is_str(why, "order identifiers[0]: missing \"value\"",
	    "why names identifiers[0] value");
	is_int(proto_order_parse(&o, S("{\"status\":\"ready\",\"identifiers\":"
	    "[{\"type\":\"dns\",\"value\":\"a\"}],\"authorizations\":"
	    "{\"x\":1},\"finalize\":\"https://x/f\"}"), why, sizeof(why)), -1,
	    "authorizations as an object refused");
	is_str(why, "order: \"authorizations\" is not an array",
	    "why: authorizations type");
	is_int(proto_order_parse(&o, S("{\"status\":\"ready\",\"identifiers\":"
	    "[{\"type\":\"dns\",\"value\":\"a\"}],\"authorizations\":[3],"
	    "\"finalize\":\"https://x/f\"}"), why, sizeof(why)), -1,
	    "authorization URL as a number refused");
	is_str(why, "order: \"authorizations\"[0] is not a string",
	    "why: authorizations[0]");
	is_int(proto_order_parse(&o, S("{\"status\":\"ready\",\"expires\":"
	    "\"tomorrow\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],"
	    "\"authorizations\":[],\"finalize\":\"https://x/f\"}"), why,
	    sizeof(why)), -1, "bad expires refused");
	is_str(why, "order: \"expires\" is not an RFC 3339 date-time",
	    "why names expires");
	is_int(proto_order_parse(&o, S("{\"status\":\"valid\",\"identifiers\":"
	    "[{\"type\":\"dns\",\"value\":\"a\"}],\"authorizations\":[],"
	    "\"finalize\":\"https://x/f\"}"), why, sizeof(why)), -1,
	    "valid order without certificate refused");
	is_int(proto_order_parse(&o, S("{\"status\":\"invalid\",\"identifiers\":"
	    "[{\"type\":\"dns\",\"value\":\"a\"}],\"authorizations\":[],"
	    "\"finalize\":\"https://x/f\",\"error\":\"boom\"}"), why,
	    sizeof(why)), -1, "error as a string refused");
	is_str(why, "order: \"error\" is not an object", "why: error type");
}

static void
test_authz(void)
{
	struct proto_authz a;
	struct proto_challenge c;
	const struct proto_challenge *h;
	char why[PROTO_WHY_MAX];

	is_int(proto_authz_parse(&a, S(pebble_authz), why, sizeof(why)), 0,
	    "pebble authorization parses");
	is_int(a.status, PROTO_AUTHZ_PENDING, "status pending");
	is_str(a.identifier.value, "a.example", "identifier value");
	is_int(a.nchallenges, 3, "three challenges");
	is_int(a.expires, 1795580670 + 3600, "expires");
	ok(!a.wildcard, "not a wildcard");
	h = proto_authz_challenge(&a, "http-01");
	ok(h != NULL, "http-01 challenge found");
	is_str(h ? h->token : NULL, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
	    "http-01 token");
	is_str(h ? h->url : NULL, "https://127.0.0.1:14000/chalZ/h1",
	    "http-01 url");
	ok(proto_authz_challenge(&a, "dns-account-01") == NULL,
	    "absent challenge type: NULL");
	proto_authz_free(&a);

	is_int(proto_authz_parse(&a, S(le_authz_invalid), why, sizeof(why)), 0,
	    "Let's Encrypt invalid authorization parses");
	is_int(a.status, PROTO_AUTHZ_INVALID, "status invalid");
	is_str(proto_authz_status_name(a.status), "invalid", "status name");
	h = proto_authz_challenge(&a, "http-01");
	ok(h != NULL && h->status == PROTO_CHALL_INVALID, "challenge invalid");
	is_int(h ? h->validated : 0, 1795580670, "validated (fraction dropped)");
	ok(h && h->error && h->error->kind == PROTO_ERR_CONNECTION &&
	    h->error->status == 400, "challenge error: connection, 400");
	proto_authz_free(&a);

	is_int(proto_authz_parse(&a, S("{\"status\":\"valid\",\"wildcard\":true,"
	    "\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	    "\"challenges\":[{\"type\":\"dns-01\",\"url\":\"https://x/c\","
	    "\"status\":\"valid\",\"token\":\"abc\"}]}"), why, sizeof(why)), 0,
	    "wildcard authorization parses");
	ok(a.wildcard, "wildcard true");
	proto_authz_free(&a);

	is_int(proto_authz_parse(&a, S("{\"status\":\"pending\",\"challenges\":"
	    "[]}"), why, sizeof(why)), -1, "no identifier refused");
	is_str(why, "authorization: missing \"identifier\"", "why: identifier");
	is_int(proto_authz_parse(&a, S("{\"status\":\"pending\",\"identifier\":"
	    "{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[{\"type\":"
	    "\"http-01\",\"url\":\"https://x/c\",\"status\":\"pending\"}]}"),
	    why, sizeof(why)), -1, "http-01 without token refused");
	is_str(why, "authorization challenges[0]: missing \"token\"",
	    "why names challenges[0] token");
	is_int(proto_authz_parse(&a, S("{\"status\":\"pending\",\"identifier\":"
	    "{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[{\"type\":"
	    "\"http-01\",\"url\":\"https://x/c\",\"status\":\"pending\","
	    "\"token\":\"../../etc/passwd\"}]}"), why, sizeof(why)), -1,
	    "token outside base64url refused");
	ok(strstr(why, "\"token\" is not base64url") != NULL, "why: %s", why);
	is_int(proto_authz_parse(&a, S("{\"status\":\"pending\",\"identifier\":"
	    "{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[{\"type\":"
	    "\"x-new-01\",\"url\":\"https://x/c\",\"status\":\"pending\","
	    "\"token\":\"not a token\"}]}"), why, sizeof(why)), 0,
	    "unknown challenge type with an odd token still parses");
	ok(a.nchallenges == 1 && a.challenges[0].token == NULL,
	    "its token is dropped");
	proto_authz_free(&a);
	is_int(proto_authz_parse(&a, S("{\"status\":\"pending\",\"wildcard\":"
	    "\"true\",\"identifier\":{\"type\":\"dns\",\"value\":\"a\"},"
	    "\"challenges\":[]}"), why, sizeof(why)), -1,
	    "wildcard as a string refused");
	is_str(why, "authorization: \"wildcard\" is not true or false",
	    "why: wildcard");
	is_int(proto_authz_parse(&a, S("{\"status\":\"gone\",\"identifier\":"
	    "{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[]}"), why,
	    sizeof(why)), -1, "unknown authz status refused");

	is_int(proto_challenge_parse(&c, S("{\"type\":\"http-01\",\"url\":"
	    "\"https://127.0.0.1:14000/chalZ/h1\",\"token\":\"LoqXcYV8\","
	    "\"status\":\"processing\"}"), why, sizeof(why)), 0,
	    "challenge response parses");
	is_int(c.status, PROTO_CHALL_PROCESSING, "challenge processing");
	proto_challenge_free(&c);
}

static void
test_renewal_info(void)
{
	struct proto_renewal_info r;
	char why[PROTO_WHY_MAX];

	is_int(proto_renewal_info_parse(&r, S("{\n  \"suggestedWindow\": {\n"
	    "    \"start\": \"2026-12-31T00:00:00Z\",\n"
	    "    \"end\": \"2027-01-02T00:00:00Z\"\n  },\n"
	    "  \"explanationURL\": \"https://acme.example.com/docs/ari\"\n}"),
	    why, sizeof(why)), 0, "RFC 9773 renewalInfo parses");
	is_int(r.start, 1798675200, "window start");
	is_int(r.end, 1798848000, "window end");
	is_str(r.explanation_url, "https://acme.example.com/docs/ari",
	    "explanationURL");
	proto_renewal_info_free(&r);
	is_int(proto_renewal_info_parse(&r, S("{\"suggestedWindow\":{\"start\":"
	    "\"2027-01-02T00:00:00Z\",\"end\":\"2026-12-31T00:00:00Z\"}}"), why,
	    sizeof(why)), -1, "end before start refused");
	is_str(why, "renewalInfo: suggestedWindow ends before it starts",
	    "why: window order");
	is_int(proto_renewal_info_parse(&r, S("{\"suggestedWindow\":{\"start\":"
	    "\"2027-01-02T00:00:00Z\"}}"), why, sizeof(why)), -1,
	    "window without end refused");
	is_str(why, "renewalInfo suggestedWindow: missing \"end\"", "why: end");
	is_int(proto_renewal_info_parse(&r, S("{}"), why, sizeof(why)), -1,
	    "no suggestedWindow refused");
	is_str(why, "renewalInfo: missing \"suggestedWindow\"",
	    "why: suggestedWindow");
	is_int(proto_renewal_info_parse(&r, S("{\"suggestedWindow\":{\"start\":"
	    "1,\"end\":2}}"), why, sizeof(why)), -1, "numeric times refused");
}

/* ---- problems and their explanations ---- */

static void
explain_doc(const char *json, const char *ident,
    const struct proto_explain_ctx *ctx, char *out, size_t outlen)
{
	struct proto_problem p;
	char why[PROTO_WHY_MAX];

	if (proto_problem_parse(&p, json, strlen(json), why, sizeof(why)) < 0) {
		snprintf(out, outlen, "PARSE FAILED: %s", why);
		return;
	}
	proto_problem_explain(&p, ident, ctx, out, outlen);
	proto_problem_free(&p);
}

static void
test_problem(void)
{
	struct proto_problem p;
	char why[PROTO_WHY_MAX], line[2048];
	struct proto_explain_ctx http = { .challenge = "http-01",
	    .token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0" };

	is_int(proto_problem_parse(&p, S(rfc_compound), why, sizeof(why)), 0,
	    "RFC 8555 6.7.1 example parses");
	is_int(p.kind, PROTO_ERR_MALFORMED, "kind malformed");
	is_int(p.nsub, 2, "two subproblems");
	is_str(p.nsub > 1 ? p.sub[1].identifier.value : NULL, "example.net",
	    "subproblem identifier");
	is_int(p.nsub > 1 ? (int)p.sub[1].kind : -1, PROTO_ERR_REJECTED_IDENTIFIER,
	    "subproblem kind");
	proto_problem_free(&p);
	is_int(proto_problem_parse(&p, S("{\"type\":7,\"detail\":[1],"
	    "\"status\":\"x\"}"), why, sizeof(why)), 0,
	    "wrong-typed problem members count as absent");
	ok(p.type == NULL && p.detail == NULL && p.status == 0 &&
	    p.kind == PROTO_ERR_OTHER, "so they are absent");
	proto_problem_free(&p);
	is_int(proto_problem_parse(&p, S("\"oops\""), why, sizeof(why)), -1,
	    "a problem that is not an object is refused");
	is_int(proto_errtype_of("urn:ietf:params:acme:error:badNonce"),
	    PROTO_ERR_BAD_NONCE, "errtype_of badNonce");
	is_int(proto_errtype_of("urn:ietf:params:acme:error:badNoncex"),
	    PROTO_ERR_OTHER, "errtype_of near miss");
	is_int(proto_errtype_of("about:blank"), PROTO_ERR_OTHER,
	    "errtype_of about:blank");

	explain_doc("{\"type\":\"urn:ietf:params:acme:error:connection\"}",
	    "a.example", &http, line, sizeof(line));
	is_str(line, "a.example: the CA could not connect to http://a.example/"
	    ".well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	    " (urn:ietf:params:acme:error:connection): check that port 80 of "
	    "a.example reaches this HAProxy", "explain connection (http-01)");

	explain_doc("{\"type\":\"urn:ietf:params:acme:error:connection\"}",
	    NULL, &http, line, sizeof(line));
	is_str(line, "the CA could not connect to the name (urn:ietf:params:"
	    "acme:error:connection): check that the name resolves to this "
	    "HAProxy and that port 80 is open to the internet",
	    "explain connection without a name: no half-made URL");

	explain_doc("{\"type\":\"urn:ietf:params:acme:error:dns\",\"detail\":"
	    "\"DNS problem: NXDOMAIN looking up A for a.example\",\"status\":400}",
	    "a.example", &http, line, sizeof(line));
	is_str(line, "a.example: the CA could not resolve a.example in DNS "
	    "(urn:ietf:params:acme:error:dns): check that a.example has an A or "
	    "AAAA record pointing to this HAProxy and that its DNS servers "
	    "answer; the CA said: DNS problem: NXDOMAIN looking up A for "
	    "a.example", "explain dns with the CA's detail");

	explain_doc("{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
	    "\"detail\":\"203.0.113.7: Invalid response from http://a.example/"
	    ".well-known/acme-challenge/x: 404\",\"status\":403}", "a.example",
	    &http, line, sizeof(line));
	ok(strncmp(line, "a.example: the CA fetched http://a.example/.well-known"
	    "/acme-challenge/LoqX", 64) == 0 && strstr(line, "(urn:ietf:params:"
	    "acme:error:unauthorized): check that a.example points at this "
	    "HAProxy") != NULL && strstr(line, "; the CA said: 203.0.113.7: "
	    "Invalid response") != NULL, "explain unauthorized (http-01): %s",
	    line);
	explain_doc("{\"type\":\"urn:ietf:params:acme:error:unauthorized\"}",
	    NULL, NULL, line, sizeof(line));
	is_str(line, "this account is not authorized for the request (urn:ietf"
	    ":params:acme:error:unauthorized): check that the certificate or "
	    "order belongs to this account, or revoke with --cert-key",
	    "explain unauthorized without a challenge (revocation)");

	explain_doc("{\"type\":\"urn:ietf:params:acme:error:incorrectResponse\","
	    "\"detail\":\"The key authorization file from the server did not "
	    "match this challenge\"}", "a.example", &http, line, sizeof(line));
	ok(strstr(line, "a.example: the CA fetched http://a.example/.well-known/"
	    "acme-challenge/") == line && strstr(line, "and got a wrong answer "
	    "(urn:ietf:params:acme:error:incorrectResponse): check that every "
	    "HAProxy serving a.example sends /.well-known/acme-challenge/ to "
	    "hacme-spoa") != NULL, "explain incorrectResponse: %s", line);

	{
		struct proto_explain_ctx rl = { .retry_after = 3600 };

		explain_doc("{\"type\":\"urn:ietf:params:acme:error:rateLimited\","
		    "\"detail\":\"too many certificates (5) already issued for "
		    "this exact set of identifiers in the last 168h0m0s\","
		    "\"status\":429}", NULL, &rl, line, sizeof(line));
		is_str(line, "the CA's rate limit was hit (urn:ietf:params:acme:"
		    "error:rateLimited): wait 3600 s before trying again and "
		    "stop repeated issue or renew --force; the CA said: too many "
		    "certificates (5) already issued for this exact set of "
		    "identifiers in the last 168h0m0s", "explain rateLimited");
	}

	explain_doc("{\"type\":\"urn:ietf:params:acme:error:caa\",\"detail\":"
	    "\"CAA record for a.example prevents issuance\"}", "a.example",
	    &http, line, sizeof(line));
	ok(strncmp(line, "a.example: a CAA record in DNS forbids this CA to "
	    "issue for a.example (urn:ietf:params:acme:error:caa): add a CAA "
	    "\"issue\" record", 110) == 0, "explain caa: %s", line);

	explain_doc("{\"type\":\"urn:ietf:params:acme:error:compound\","
	    "\"detail\":\"Cannot issue\",\"subproblems\":["
	    "{\"type\":\"urn:ietf:params:acme:error:connection\",\"detail\":"
	    "\"refused\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"}},"
	    "{\"type\":\"urn:ietf:params:acme:error:caa\",\"identifier\":"
	    "{\"type\":\"dns\",\"value\":\"b.example\"}}]}", NULL, &http, line,
	    sizeof(line));
	ok(strncmp(line, "the CA refused 2 identifiers (urn:ietf:params:acme:"
	    "error:compound): each is listed next with its fix; the CA said: "
	    "Cannot issue; a.example: the CA could not connect to "
	    "http://a.example/", 163) ==
	    0, "explain compound: head and first clause: %s", line);
	ok(strstr(line, "check that port 80 of a.example reaches this HAProxy; "
	    "the CA said: refused; b.example: a CAA record in DNS forbids this "
	    "CA to issue for b.example (urn:ietf:params:acme:error:caa)") != NULL,
	    "explain compound: one clause per identifier");

	explain_doc(rfc_compound, NULL, NULL, line, sizeof(line));
	ok(strstr(line, "; _example.org: the CA found the request malformed "
	    "(urn:ietf:params:acme:error:malformed)") != NULL &&
	    strstr(line, "; example.net: the CA will not issue for example.net "
	    "(urn:ietf:params:acme:error:rejectedIdentifier): remove example.net "
	    "from the domains") != NULL, "explain RFC example: %s", line);

	/* Untrusted bytes are escaped, long details cut, the line bounded. */
	explain_doc("{\"type\":\"urn:ietf:params:acme:error:serverInternal\","
	    "\"detail\":\"bad\\n\\u00e9\\u001b[31m\"}", NULL, NULL, line,
	    sizeof(line));
	ok(strstr(line, "; the CA said: bad\\x0a\\xc3\\xa9\\x1b[31m") != NULL,
	    "control bytes and non-ASCII escaped: %s", line);
	{
		char doc[8192], small[120];
		size_t n;

		n = (size_t)snprintf(doc, sizeof(doc), "{\"type\":\"urn:ietf:"
		    "params:acme:error:malformed\",\"detail\":\"");
		memset(doc + n, 'x', 5000);
		n += 5000;
		snprintf(doc + n, sizeof(doc) - n, "\"}");
		explain_doc(doc, NULL, NULL, line, sizeof(line));
		ok(strlen(line) < 600 && strstr(line, "xxx...") != NULL,
		    "a 5000-byte detail is cut (%zu bytes)", strlen(line));
		explain_doc(doc, NULL, NULL, small, sizeof(small));
		is_int(strlen(small), sizeof(small) - 1, "line fills the buffer");
		ok(strcmp(small + sizeof(small) - 4, "...") == 0,
		    "and ends in ...");
	}
	{
		/* 30 subproblems: 10 clauses, then a count. */
		char doc[8192];
		size_t n;

		n = (size_t)snprintf(doc, sizeof(doc), "{\"type\":\"urn:ietf:"
		    "params:acme:error:compound\",\"subproblems\":[");
		for (int i = 0; i < 30; i++)
			n += (size_t)snprintf(doc + n, sizeof(doc) - n,
			    "%s{\"type\":\"urn:ietf:params:acme:error:dns\","
			    "\"identifier\":{\"type\":\"dns\",\"value\":"
			    "\"n%d.example\"}}", i ? "," : "", i);
		snprintf(doc + n, sizeof(doc) - n, "]}");
		explain_doc(doc, NULL, NULL, line, sizeof(line));
		ok(strstr(line, "n9.example: ") != NULL &&
		    strstr(line, "n10.example") == NULL &&
		    strstr(line, "; and 20 more") != NULL,
		    "subproblem clauses are bounded: %s", line);
	}

	/* Every RFC 8555 and RFC 9773 type has its own fix. */
	for (int k = 1; k < PROTO_ERR_COUNT; k++) {
		char doc[256], urn[128];

		snprintf(urn, sizeof(urn), PROTO_ERR_PREFIX "%s",
		    proto_errtype_name((enum proto_errtype)k));
		is_int(proto_errtype_of(urn), k, "errtype_of %s", urn);
		snprintf(doc, sizeof(doc), "{\"type\":\"%s\"}", urn);
		explain_doc(doc, "a.example", &http, line, sizeof(line));
		ok(strstr(line, urn) != NULL && strstr(line, "): ") != NULL &&
		    strstr(line, "read what the CA said") == NULL,
		    "%s has its own fix: %s", proto_errtype_name(
		    (enum proto_errtype)k), line);
	}
	explain_doc("{\"type\":\"urn:example:other\"}", NULL, NULL, line,
	    sizeof(line));
	is_str(line, "the CA returned an error (urn:example:other): read what "
	    "the CA said and the CA's documentation",
	    "unknown type: generic text");
	explain_doc("{\"type\":\"urn:ietf:params:acme:error:userActionRequired\","
	    "\"instance\":\"https://ca.example/tos\"}", NULL, NULL, line,
	    sizeof(line));
	ok(strstr(line, "open https://ca.example/tos") != NULL,
	    "userActionRequired names the instance URL: %s", line);
	proto_problem_explain(NULL, NULL, NULL, line, sizeof(line));
	is_str(line, "no error document from the CA", "explain NULL problem");
	{
		struct proto_explain_ctx p5002 = { .challenge = "http-01",
		    .token = "tok", .port = 5002 };

		explain_doc("{\"type\":\"urn:ietf:params:acme:error:connection\"}",
		    "a.example", &p5002, line, sizeof(line));
		ok(strstr(line, "http://a.example:5002/.well-known/acme-challenge/"
		    "tok") != NULL && strstr(line, "port 5002 of a.example") !=
		    NULL, "a non-default validation port is named: %s", line);
	}
}

/* ---- helpers ---- */

static void
test_rfc3339(void)
{
	static const struct {
		const char *s;
		long long t;	/* -1: must fail */
	} v[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2026-11-25T04:24:30Z", 1795580670 },
		{ "2026-11-25T05:24:30+01:00", 1795580670 },
		{ "2026-11-24T23:54:30-04:30", 1795580670 },
		{ "2026-11-25t04:24:30z", 1795580670 },
		{ "2026-11-25 04:24:30Z", 1795580670 },
		{ "2026-11-25T04:24:30.123456789Z", 1795580670 },
		{ "1985-04-12T23:20:50.52Z", 482196050 },
		{ "1996-12-19T16:39:57-08:00", 851042397 },
		{ "1990-12-31T23:59:60Z", 662688000 },
		{ "2024-02-29T00:00:00Z", 1709164800 },
		{ "2023-02-29T00:00:00Z", -1 },
		{ "2026-13-01T00:00:00Z", -1 },
		{ "2026-00-10T00:00:00Z", -1 },
		{ "2026-11-25T24:00:00Z", -1 },
		{ "2026-11-25T04:60:00Z", -1 },
		{ "2026-11-25T04:24:30", -1 },
		{ "2026-11-25T04:24:30.Z", -1 },
		{ "2026-11-25T04:24:30Zjunk", -1 },
		{ "2026-11-25T04:24:30+0100", -1 },
		{ "2026-11-25T04:24:30+24:00", -1 },
		{ "2026-11-25", -1 },
		{ "26-11-25T04:24:30Z", -1 },
		{ "", -1 },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		time_t t = 12345;
		int rc = proto_rfc3339_parse(v[i].s, strlen(v[i].s), &t);

		if (v[i].t < 0)
			is_int(rc, -1, "rfc3339 refuses '%s'", v[i].s);
		else
			ok(rc == 0 && t == v[i].t, "rfc3339 '%s' = %lld (got %d, "
			    "%lld)", v[i].s, v[i].t, rc, (long long)t);
	}
	{
		/* The length bounds the parse: no NUL needed. */
		const char buf[] = { '2', '0', '2', '6', '-', '1', '1', '-', '2',
		    '5', 'T', '0', '4', ':', '2', '4', ':', '3', '0', 'Z' };
		time_t t;

		ok(proto_rfc3339_parse(buf, sizeof(buf), &t) == 0 &&
		    t == 1795580670, "rfc3339 without a NUL");
		is_int(proto_rfc3339_parse(buf, sizeof(buf) - 1, &t), -1,
		    "rfc3339 cut before Z refused");
	}
}

static void
test_retry_after(void)
{
	const time_t now = 784111777 - 60;	/* a minute before the RFC date */
	long s = -7;

	ok(proto_retry_after_parse(S("120"), now, &s) == 0 && s == 120,
	    "Retry-After 120");
	ok(proto_retry_after_parse(S(" 0 \r\n"), now, &s) == 0 && s == 0,
	    "Retry-After 0 with white space");
	ok(proto_retry_after_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), now,
	    &s) == 0 && s == 60, "Retry-After IMF-fixdate (got %ld)", s);
	ok(proto_retry_after_parse(S("Sunday, 06-Nov-94 08:49:37 GMT"), now,
	    &s) == 0 && s == 60, "Retry-After RFC 850 date");
	ok(proto_retry_after_parse(S("Sun Nov  6 08:49:37 1994"), now, &s) ==
	    0 && s == 60, "Retry-After asctime date");
	ok(proto_retry_after_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"),
	    now + 3600, &s) == 0 && s == 0, "a date in the past: 0");
	ok(proto_retry_after_parse(S("Fri, 31 Dec 9999 23:59:59 GMT"), now,
	    &s) == 0 && s == 365L * 86400, "a far date is capped at a year");
	ok(proto_retry_after_parse(S("99999999999999999999999"), now, &s) == 0
	    && s == 365L * 86400, "a huge delta is capped, no overflow");
	is_int(proto_retry_after_parse(S(""), now, &s), -1, "empty refused");
	is_int(proto_retry_after_parse(S("   "), now, &s), -1, "blank refused");
	is_int(proto_retry_after_parse(S("soon"), now, &s), -1, "word refused");
	is_int(proto_retry_after_parse(S("12a"), now, &s), -1, "12a refused");
	is_int(proto_retry_after_parse(S("-5"), now, &s), -1, "-5 refused");
	is_int(proto_retry_after_parse(S("1.5"), now, &s), -1, "1.5 refused");
	is_int(proto_retry_after_parse(S("Sun, 06 Nov 1994 08:49:37 UTC"), now,
	    &s), -1, "UTC instead of GMT refused");
	is_int(proto_retry_after_parse(S("Sun, 31 Feb 1994 08:49:37 GMT"), now,
	    &s), -1, "31 February refused");
	is_int(proto_retry_after_parse(S("Sun, 06 Nov 1994 08:49"), now, &s), -1,
	    "cut date refused");
	is_int(proto_retry_after_parse(S("Xyz, 06 Nov 1994 08:49:37 GMT"), now,
	    &s), -1, "bad day name refused");
}

static void
test_link(void)
{
	const char *hdrs[] = {
		"<https://ca.example/acme/cert/1/1>;rel=\"alternate\", "
		"<https://ca.example/acme/cert/1/2>; rel=alternate",
		"Link: </acme/directory>;rel=\"index\"",
		"<https://ca.example/acme/issuer>;title=\"a, b; rel=alternate\";"
		"rel=\"up\", <chain/3>; REL=\"Alternate UP\"",
		"<https://ca.example/x>;rel=up;rel=alternate",
		"garbage, <https://ca.example/y>; rel=\"index\"",
	};
	const char *base = "https://ca.example/acme/cert/1";
	char **u = NULL;
	int n;

	n = proto_link_find(hdrs, 1, "alternate", base, &u);
	is_int(n, 2, "two alternates in one header");
	is_str(n > 0 ? u[0] : NULL, "https://ca.example/acme/cert/1/1",
	    "alternate 1");
	is_str(n > 1 ? u[1] : NULL, "https://ca.example/acme/cert/1/2",
	    "alternate 2");
	proto_strv_free(u, (size_t)n);

	n = proto_link_find(hdrs, 5, "alternate", base, &u);
	is_int(n, 3, "three alternates over five headers (only the first rel "
	    "counts, quoted commas ignored)");
	is_str(n > 2 ? u[2] : NULL, "https://ca.example/acme/cert/chain/3",
	    "relative path resolved against the base");
	proto_strv_free(u, (size_t)n);

	n = proto_link_find(hdrs, 5, "up", base, &u);
	is_int(n, 3, "three up links");
	is_str(n > 0 ? u[0] : NULL, "https://ca.example/acme/issuer", "up 1");
	is_str(n > 2 ? u[2] : NULL, "https://ca.example/x", "up 3");
	proto_strv_free(u, (size_t)n);

	n = proto_link_find(hdrs, 5, "index", base, &u);
	is_int(n, 2, "index links, one after garbage");
	is_str(n > 0 ? u[0] : NULL, "https://ca.example/acme/directory",
	    "absolute path resolved, Link: prefix skipped");
	proto_strv_free(u, (size_t)n);

	n = proto_link_find(hdrs, 5, "terms-of-service", base, &u);
	ok(n == 0 && u == NULL, "no such rel: 0 and NULL");
	n = proto_link_find(hdrs + 2, 1, "up", NULL, &u);
	is_int(n, 1, "without a base only absolute URLs are kept");
	proto_strv_free(u, (size_t)n);
	{
		const char *bad[] = { "<https://a/b", "<https://a/c>;rel=\"up",
		    ";;;,,,<>;rel=up", "<https://a/d>;rel=up;", "" };

		n = proto_link_find(bad, 5, "up", base, &u);
		is_int(n, 1, "malformed headers: only the complete link");
		is_str(n > 0 ? u[0] : NULL, "https://a/d", "the complete link");
		proto_strv_free(u, (size_t)n);
	}

	{
		static const char *r[][3] = {
			{ "https://h/a/b?q", "https://o/x", "https://o/x" },
			{ "https://h/a/b?q", "//o/x", "https://o/x" },
			{ "https://h/a/b?q", "/x", "https://h/x" },
			{ "https://h/a/b?q", "x/y", "https://h/a/x/y" },
			{ "https://h/a/b?q", "?z", "https://h/a/b?z" },
			{ "https://h:8443", "x", "https://h:8443/x" },
			{ "https://h/a/", "b", "https://h/a/b" },
			{ "https://h/a/b/c", "../x", "https://h/a/x" },
			{ "https://h/a/b/c", "./x/../../y?z", "https://h/a/y?z" },
			{ "https://h/a/b/c", "/../../x", "https://h/x" },
			{ "https://h/a/b/c", "..", "https://h/a/" },
			{ "https://h/a/b?q#f", "", "https://h/a/b?q" },
			{ "https://h/a/b?q#f", "#g", "https://h/a/b?q#g" },
			{ "https://h/a/b", "//o/p/./q", "https://o/p/q" },
		};

		for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
			char *s = proto_url_resolve(r[i][0], r[i][1]);

			is_str(s, r[i][2], "resolve '%s' against '%s'", r[i][1],
			    r[i][0]);
			free(s);
		}
		ok(proto_url_resolve("not a url", "x") == NULL,
		    "relative ref against a non-URL: NULL");
		ok(proto_url_resolve("https://h/", "a b") == NULL,
		    "ref with a space: NULL");
	}
}

static void
test_builders(void)
{
	const char *contact[] = { "mailto:ops@example.com", "mailto:b@example.com" };
	const char *names[] = { "a.example", "www.a.example", "192.0.2.1", "2001:db8::1" };
	char *s, why[PROTO_WHY_MAX];
	cJSON *j, *eab;
	int code = -1;

	eab = cJSON_Parse("{\"protected\":\"eyJh\",\"payload\":\"eyJr\","
	    "\"signature\":\"c2ln\"}");
	s = proto_new_account_json(contact, 2, true, false, eab);
	j = s ? cJSON_Parse(s) : NULL;
	ok(j != NULL, "newAccount is JSON: %s", s ? s : "(null)");
	is_int(cJSON_GetArraySize(cJSON_GetObjectItem(j, "contact")), 2,
	    "two contacts");
	is_str(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(j,
	    "contact"), 1)), "mailto:b@example.com", "contact[1]");
	ok(cJSON_IsTrue(cJSON_GetObjectItem(j, "termsOfServiceAgreed")),
	    "termsOfServiceAgreed true");
	ok(cJSON_GetObjectItem(j, "onlyReturnExisting") == NULL,
	    "onlyReturnExisting left out");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j,
	    "externalAccountBinding"), "signature")), "c2ln",
	    "externalAccountBinding copied");
	cJSON_Delete(j);
	free(s);
	cJSON_Delete(eab);
	s = proto_new_account_json(NULL, 0, false, true, NULL);
	is_str(s, "{\"onlyReturnExisting\":true}", "account lookup payload");
	free(s);

	s = proto_new_order_json(names, 4, "tlsserver", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	j = s ? cJSON_Parse(s) : NULL;
	ok(j != NULL, "newOrder is JSON: %s", s ? s : "(null)");
	is_int(cJSON_GetArraySize(cJSON_GetObjectItem(j, "identifiers")), 4,
	    "four identifiers");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(j, "identifiers"), 1), "value")), "www.a.example",
	    "identifiers[1].value");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(j, "identifiers"), 0), "type")), "dns",
	    "a name is type dns");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(j, "identifiers"), 2), "type")), "ip",
	    "an IPv4 literal is type ip");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(j, "identifiers"), 3), "type")), "ip",
	    "an IPv6 literal is type ip");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "profile")),
	    "tlsserver", "profile");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "replaces")),
	    "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "replaces");
	cJSON_Delete(j);
	free(s);
	s = proto_new_order_json(names, 1, NULL, NULL);
	is_str(s, "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}]}",
	    "minimal newOrder");
	free(s);
	ok(proto_new_order_json(names, 0, NULL, NULL) == NULL,
	    "newOrder without names: NULL");
	{
		/* Quotes and backslashes in a name are escaped by cJSON. */
		const char *odd[] = { "a\"b\\c" };

		s = proto_new_order_json(odd, 1, NULL, NULL);
		j = s ? cJSON_Parse(s) : NULL;
		is_str(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(
		    cJSON_GetObjectItem(j, "identifiers"), 0), "value")),
		    "a\"b\\c", "odd bytes survive the round trip");
		cJSON_Delete(j);
		free(s);
	}

	s = proto_finalize_json("MIIBkzCCATgCAQAwFDES");
	is_str(s, "{\"csr\":\"MIIBkzCCATgCAQAwFDES\"}", "finalize payload");
	free(s);
	ok(proto_finalize_json("MII+/=") == NULL, "finalize refuses base64 "
	    "that is not base64url");
	s = proto_revoke_json("MIIFazCCBFOg", 1);
	j = s ? cJSON_Parse(s) : NULL;
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "certificate")),
	    "MIIFazCCBFOg", "revokeCert certificate");
	is_int(cJSON_GetObjectItem(j, "reason") ?
	    cJSON_GetObjectItem(j, "reason")->valueint : -1, 1, "revokeCert reason");
	cJSON_Delete(j);
	free(s);
	s = proto_revoke_json("MIIFazCCBFOg", -1);
	is_str(s, "{\"certificate\":\"MIIFazCCBFOg\"}", "revokeCert without reason");
	free(s);
	s = proto_account_update_json(contact, 1);
	is_str(s, "{\"contact\":[\"mailto:ops@example.com\"]}", "account update");
	free(s);
	s = proto_account_update_json(NULL, 0);
	is_str(s, "{\"contact\":[]}", "account update removing contacts");
	free(s);
	s = proto_deactivate_json();
	is_str(s, "{\"status\":\"deactivated\"}", "deactivate payload");
	free(s);
	s = proto_challenge_response_json();
	is_str(s, "{}", "challenge response payload");
	free(s);

	ok(proto_revoke_reason_parse("keyCompromise", &code, why,
	    sizeof(why)) == 0 && code == 1, "reason keyCompromise = 1");
	ok(proto_revoke_reason_parse("unspecified", &code, why,
	    sizeof(why)) == 0 && code == 0, "reason unspecified = 0");
	ok(proto_revoke_reason_parse("affiliationChanged", &code, why,
	    sizeof(why)) == 0 && code == 3, "reason affiliationChanged = 3");
	ok(proto_revoke_reason_parse("superseded", &code, why,
	    sizeof(why)) == 0 && code == 4, "reason superseded = 4");
	ok(proto_revoke_reason_parse("cessationOfOperation", &code, why,
	    sizeof(why)) == 0 && code == 5, "reason cessationOfOperation = 5");
	ok(proto_revoke_reason_parse("4", &code, why, sizeof(why)) == 0 &&
	    code == 4, "reason as a number");
	is_int(proto_revoke_reason_parse("cACompromise", &code, why,
	    sizeof(why)), -1, "cACompromise refused");
	ok(strstr(why, "refused by ACME CAs") != NULL, "why says CAs refuse "
	    "it: %s", why);
	is_int(proto_revoke_reason_parse("privilegeWithdrawn", &code, why,
	    sizeof(why)), -1, "privilegeWithdrawn refused");
	ok(strlen(why) > 100 &&
	    strstr(why, "(or 0, 1, 3, 4, 5)") != NULL,
	    "the longest why fits PROTO_WHY_MAX uncut (%zu bytes)", strlen(why));
	is_int(proto_revoke_reason_parse("certificateHold", &code, why,
	    sizeof(why)), -1, "certificateHold refused");
	is_int(proto_revoke_reason_parse("6", &code, why, sizeof(why)), -1,
	    "6 refused");
	is_int(proto_revoke_reason_parse("stolen", &code, why, sizeof(why)), -1,
	    "unknown reason refused");
	ok(strncmp(why, "unknown revocation reason \"stolen\": use unspecified",
	    50) == 0, "why lists the accepted names: %s", why);
}

int
main(void)
{
	test_directory();
	test_generic_doc();
	test_account();
	test_order();
	test_authz();
	test_renewal_info();
	test_problem();
	test_rfc3339();
	test_retry_after();
	test_link();
	test_builders();
	return tap_done();
}
