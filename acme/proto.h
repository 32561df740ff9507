/* proto.h - the ACME documents (RFC 8555, RFC 9773 ARI, profiles) and the
 * HTTP headers ACME relies on. Pure: bytes in, a struct or a status out, no
 * I/O. JSON only through cJSON.
 *
 * Parsers take (json, len), refuse more than PROTO_MAX_DOC bytes or invalid
 * JSON, and fill a struct that owns its strings (free it with the matching
 * proto_*_free, also after a failure; freeing a zeroed struct is a no-op).
 * They return 0, or -1 with a one-line reason in why (naming the member at
 * fault) when why is not NULL. Strings from the server are untrusted: URLs
 * must be printable ASCII without spaces, every string and list is bounded,
 * and free text (detail) is cut, never refused. Escape before logging.
 *
 * Builders return malloc'd JSON text (free()), or NULL on a bad argument or
 * no memory. */
#ifndef HACME_PROTO_H
#define HACME_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct cJSON;

#define PROTO_MAX_DOC (1024 * 1024)	/* bytes of one JSON document */
#define PROTO_MAX_URL 4096		/* bytes of one URL */
#define PROTO_MAX_STR 1024		/* bytes kept of free text (detail) */
#define PROTO_MAX_LIST 1000		/* entries in any array */
#define PROTO_MAX_LINKS 32		/* URLs proto_link_find returns */
#define PROTO_WHY_MAX 256		/* a why buffer of this size is never cut */

/* ---- problem documents (RFC 7807, RFC 8555 section 6.7) ---- */

/* The error types of RFC 8555 section 6.7 and RFC 9773. */
enum proto_errtype {
	PROTO_ERR_OTHER = 0,	/* any other type, or none */
	PROTO_ERR_ACCOUNT_DOES_NOT_EXIST,
	PROTO_ERR_ALREADY_REVOKED,
	PROTO_ERR_BAD_CSR,
	PROTO_ERR_BAD_NONCE,
	PROTO_ERR_BAD_PUBLIC_KEY,
	PROTO_ERR_BAD_REVOCATION_REASON,
	PROTO_ERR_BAD_SIGNATURE_ALGORITHM,
	PROTO_ERR_CAA,
	PROTO_ERR_COMPOUND,
	PROTO_ERR_CONNECTION,
	PROTO_ERR_DNS,
	PROTO_ERR_EXTERNAL_ACCOUNT_REQUIRED,
	PROTO_ERR_INCORRECT_RESPONSE,
	PROTO_ERR_INVALID_CONTACT,
	PROTO_ERR_MALFORMED,
	PROTO_ERR_ORDER_NOT_READY,
	PROTO_ERR_RATE_LIMITED,
	PROTO_ERR_REJECTED_IDENTIFIER,
	PROTO_ERR_SERVER_INTERNAL,
	PROTO_ERR_TLS,
	PROTO_ERR_UNAUTHORIZED,
	PROTO_ERR_UNSUPPORTED_CONTACT,
	PROTO_ERR_UNSUPPORTED_IDENTIFIER,
	PROTO_ERR_USER_ACTION_REQUIRED,
	PROTO_ERR_ALREADY_REPLACED,	/* RFC 9773 */
	PROTO_ERR_COUNT
};

#define PROTO_ERR_PREFIX "urn:ietf:params:acme:error:"

struct proto_identifier {
	char *type;		/* "dns", "ip" */
	char *value;
};

struct proto_subproblem {
	char *type;			/* NULL when absent */
	enum proto_errtype kind;
	char *detail;			/* NULL when absent; cut to PROTO_MAX_STR */
	struct proto_identifier identifier;	/* members NULL when absent */
};

struct proto_problem {
	char *type;		/* NULL when absent ("about:blank") */
	enum proto_errtype kind;
	char *detail;		/* NULL when absent; cut to PROTO_MAX_STR */
	char *instance;		/* NULL when absent (userActionRequired) */
	int status;		/* HTTP status, 0 when absent */
	struct proto_subproblem *sub;
	size_t nsub;
};

/* A problem+json body. A body that is not a JSON object fails; members of
 * the wrong type count as absent, so that a half-right report still shows. */
int proto_problem_parse(struct proto_problem *p, const char *json, size_t len,
    char *why, size_t whylen);
void proto_problem_free(struct proto_problem *p);
/* PROTO_ERR_* for a type URN (PROTO_ERR_OTHER for NULL or unknown). */
enum proto_errtype proto_errtype_of(const char *type);
/* "badNonce" for PROTO_ERR_BAD_NONCE...; "" for PROTO_ERR_OTHER. */
const char *proto_errtype_name(enum proto_errtype t);

/* What the worker was doing when the problem came; every member optional. */
struct proto_explain_ctx {
	const char *challenge;	/* "http-01", "dns-01", "tls-alpn-01" */
	const char *token;	/* the challenge token */
	int port;		/* where http-01 is validated; 0 means 80 */
	long retry_after;	/* seconds from Retry-After; <= 0 when unknown */
};

/* One line for a person: "<identifier>: <what happened> (<type>): <fix>",
 * then "; the CA said: <detail>" (escaped, bounded), and for subproblems one
 * "<identifier>: ..." clause each. identifier and ctx may be NULL. The line
 * is cut with "..." to fit outlen (>= 4); returns out. */
char *proto_problem_explain(const struct proto_problem *p,
    const char *identifier, const struct proto_explain_ctx *ctx,
    char *out, size_t outlen);

/* ---- directory (RFC 8555 section 7.1.1) ---- */

struct proto_directory {
	char *new_nonce, *new_account, *new_order, *revoke_cert, *key_change;
	char *new_authz;	/* NULL: no pre-authorization */
	char *renewal_info;	/* NULL: the CA has no ARI */
	char *terms_of_service, *website;	/* NULL when absent */
	char **caa_identities;
	size_t ncaa_identities;
	bool external_account_required;
	char **profiles;	/* names from meta.profiles */
	char **profile_descs;	/* their descriptions ("" when not a string) */
	size_t nprofiles;
};

int proto_directory_parse(struct proto_directory *d, const char *json,
    size_t len, char *why, size_t whylen);
void proto_directory_free(struct proto_directory *d);
bool proto_directory_has_profile(const struct proto_directory *d,
    const char *name);

/* ---- account (RFC 8555 section 7.1.2) ---- */

enum proto_account_status {
	PROTO_ACCOUNT_VALID,
	PROTO_ACCOUNT_DEACTIVATED,
	PROTO_ACCOUNT_REVOKED,
};

struct proto_account {
	enum proto_account_status status;
	char **contact;
	size_t ncontact;
	char *orders;		/* NULL when absent (Boulder omits it) */
};

int proto_account_parse(struct proto_account *a, const char *json, size_t len,
    char *why, size_t whylen);
void proto_account_free(struct proto_account *a);

/* ---- order (RFC 8555 section 7.1.3) ---- */

enum proto_order_status {
	PROTO_ORDER_PENDING,
	PROTO_ORDER_READY,
	PROTO_ORDER_PROCESSING,
	PROTO_ORDER_VALID,
	PROTO_ORDER_INVALID,
};

struct proto_order {
	enum proto_order_status status;
	time_t expires;		/* 0 when absent */
	struct proto_identifier *identifiers;
	size_t nidentifiers;
	char **authorizations;
	size_t nauthorizations;
	char *finalize;
	char *certificate;	/* NULL until valid */
	struct proto_problem *error;	/* NULL when absent */
	char *replaces, *profile;	/* NULL when absent */
};

int proto_order_parse(struct proto_order *o, const char *json, size_t len,
    char *why, size_t whylen);
void proto_order_free(struct proto_order *o);
const char *proto_order_status_name(enum proto_order_status s);

/* ---- authorization and challenge (RFC 8555 sections 7.1.4, 8) ---- */

enum proto_authz_status {
	PROTO_AUTHZ_PENDING,
	PROTO_AUTHZ_VALID,
	PROTO_AUTHZ_INVALID,
	PROTO_AUTHZ_DEACTIVATED,
	PROTO_AUTHZ_EXPIRED,
	PROTO_AUTHZ_REVOKED,
};

enum proto_chall_status {
	PROTO_CHALL_PENDING,
	PROTO_CHALL_PROCESSING,
	PROTO_CHALL_VALID,
	PROTO_CHALL_INVALID,
};

struct proto_challenge {
	char *type;
	char *url;
	char *token;		/* base64url; NULL for a type without one */
	enum proto_chall_status status;
	time_t validated;	/* 0 when absent */
	struct proto_problem *error;	/* NULL when absent */
	char **issuer_domain_names;	/* dns-persist-01, else NULL */
	size_t nissuer_domain_names;
};

struct proto_authz {
	struct proto_identifier identifier;
	enum proto_authz_status status;
	time_t expires;		/* 0 when absent */
	bool wildcard;
	struct proto_challenge *challenges;
	size_t nchallenges;
};

int proto_authz_parse(struct proto_authz *a, const char *json, size_t len,
    char *why, size_t whylen);
void proto_authz_free(struct proto_authz *a);
/* The first challenge of that type, or NULL. Lives as long as a. */
const struct proto_challenge *proto_authz_challenge(const struct proto_authz *a,
    const char *type);
const char *proto_authz_status_name(enum proto_authz_status s);
/* The response to a POST to a challenge URL. */
int proto_challenge_parse(struct proto_challenge *c, const char *json,
    size_t len, char *why, size_t whylen);
void proto_challenge_free(struct proto_challenge *c);

/* ---- ARI renewalInfo response (RFC 9773 section 4.2) ---- */

struct proto_renewal_info {
	time_t start, end;	/* the suggested window, start <= end */
	char *explanation_url;	/* NULL when absent */
};

int proto_renewal_info_parse(struct proto_renewal_info *r, const char *json,
    size_t len, char *why, size_t whylen);
void proto_renewal_info_free(struct proto_renewal_info *r);

/* ---- helpers ---- */

/* RFC 3339 date-time ("2026-01-02T03:04:05.123+01:00", "...Z"; lower case
 * t/z and a space for T allowed); fractions are dropped. 0 or -1. */
int proto_rfc3339_parse(const char *s, size_t len, time_t *out);

/* HTTP Retry-After (RFC 9110 section 10.2.3): delta-seconds or an HTTP-date
 * (IMF-fixdate; RFC 850 and asctime forms too). *secs = seconds from now,
 * 0 for a date in the past, capped at one year. 0 or -1. */
int proto_retry_after_parse(const char *s, size_t len, time_t now, long *secs);

/* Every URL of the Link headers (RFC 8288) whose rel lists rel (case
 * insensitive), resolved against base (may be NULL: then only absolute URLs
 * are kept), in order, at most PROTO_MAX_LINKS. headers are header values
 * ("<url>;rel=up, <url2>;rel=\"alternate\""); a leading "Link:" is skipped.
 * *urls is malloc'd (free with proto_strv_free), NULL when none.
 * Returns the count, or -1 on no memory. */
int proto_link_find(const char *const *headers, size_t nheaders,
    const char *rel, const char *base, char ***urls);
void proto_strv_free(char **v, size_t n);

/* ref resolved against base (RFC 3986 section 5.2, dot segments removed):
 * a full URL (kept as is), "//host/p", "/abs/path", "?q", "#f", "rel/path".
 * malloc'd, or NULL (base not absolute when needed, too long, no memory). */
char *proto_url_resolve(const char *base, const char *ref);

/* ---- builders (request payloads) ---- */

/* newAccount (RFC 8555 section 7.3). eab (may be NULL) is the External
 * Account Binding JWS object; it is copied, the caller keeps it. */
char *proto_new_account_json(const char *const *contact, size_t ncontact,
    bool tos_agreed, bool only_return_existing, const struct cJSON *eab);
/* newOrder: one identifier per name ("ip" for an IP address literal, else
 * "dns"); profile and replaces may be NULL. */
char *proto_new_order_json(const char *const *names, size_t nnames,
    const char *profile, const char *replaces);
/* finalize: csr is base64url DER. */
char *proto_finalize_json(const char *csr_b64url);
/* revokeCert: cert is base64url DER; reason < 0 leaves it out. */
char *proto_revoke_json(const char *cert_b64url, int reason);
/* Account update with a new contact list (ncontact may be 0: none). */
char *proto_account_update_json(const char *const *contact, size_t ncontact);
/* {"status":"deactivated"} for an account or an authorization. */
char *proto_deactivate_json(void);
/* {} : the response that starts a challenge. */
char *proto_challenge_response_json(void);

/* RFC 5280 reason names that ACME CAs accept: unspecified (0),
 * keyCompromise (1), affiliationChanged (3), superseded (4),
 * cessationOfOperation (5); also the number. Others (cACompromise,
 * certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise) are
 * refused with a why, as CAs refuse them. 0 or -1. */
int proto_revoke_reason_parse(const char *s, int *code, char *why,
    size_t whylen);

#endif
