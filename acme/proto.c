/* proto.c - ACME documents, problem explanations, Retry-After, Link, builders.
 * Pure: no I/O; JSON through cJSON only. See proto.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "acme/proto.h"
#include "common/b64url.h"
#include "common/errbuf.h"
#include "common/log.h"
#include "common/token.h"

#define PROTO_MAX_NAME 255	/* bytes of an identifier value (a DNS name) */
#define PROTO_MAX_WORD 128	/* bytes of a type, status or profile name */
#define EXPLAIN_DETAIL 300	/* bytes of escaped CA detail in one clause */
#define EXPLAIN_SUBS 10		/* subproblem clauses before "and N more" */
#define RETRY_AFTER_MAX (365L * 86400)

/* ---- small string checks ---- */

/* Printable ASCII without spaces: what a URL from the server may hold. */
static bool
url_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static char *
dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
proto_strv_free(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- JSON access with reasons ---- */

enum str_kind {
	STR_URL,	/* 1..PROTO_MAX_URL, url_chars */
	STR_WORD,	/* 1..PROTO_MAX_WORD, url_chars */
	STR_NAME,	/* 1..PROTO_MAX_NAME, url_chars */
	STR_TEXT,	/* anything, cut at PROTO_MAX_STR */
};

/* The document as a cJSON object: bounded, NUL-free, nothing after it. */
static cJSON *
doc_parse(const char *what, const char *json, size_t len, char *why,
    size_t whylen)
{
	cJSON *root = NULL;
	const char *end = NULL;
	char *copy = NULL;

	if (json == NULL) {
		errbuf_set(why, whylen, "%s: no document", what);
		goto out;
	}
	if (len > PROTO_MAX_DOC) {
		errbuf_set(why, whylen, "%s: document of %zu bytes is larger than "
		    "the %d byte limit", what, len, PROTO_MAX_DOC);
		goto out;
	}
	if (memchr(json, '\0', len) != NULL) {
		errbuf_set(why, whylen, "%s: not valid JSON (NUL byte)", what);
		goto out;
	}
	/* A NUL-terminated copy: cJSON's string scanner must find an end. */
	if ((copy = dup_n(json, len)) == NULL) {
		errbuf_set(why, whylen, "%s: out of memory", what);
		goto out;
	}
	root = cJSON_ParseWithOpts(copy, &end, 1);
	if (root == NULL) {
		size_t at = end != NULL && end >= copy ? (size_t)(end - copy) : 0;
		errbuf_set(why, whylen, "%s: not valid JSON (at byte %zu)", what, at);
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		errbuf_set(why, whylen, "%s: not a JSON object", what);
		cJSON_Delete(root);
		root = NULL;
	}
out:
	free(copy);
	return root;
}

/* Copies member name of o into *out. 1 found, 0 absent (or null) and not
 * required, -1 with why. */
static int
get_str(const cJSON *o, const char *where, const char *name, enum str_kind k,
    bool required, char **out, char *why, size_t whylen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	size_t n, max;

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v)) {
		if (!required)
			return 0;
		errbuf_set(why, whylen, "%s: missing \"%s\"", where, name);
		return -1;
	}
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		errbuf_set(why, whylen, "%s: \"%s\" is not a string", where, name);
		return -1;
	}
	n = strlen(v->valuestring);
	switch (k) {
	case STR_TEXT:
		if (n > PROTO_MAX_STR)
			n = PROTO_MAX_STR;	/* free text is cut, not refused */
		break;
	case STR_URL:
	case STR_WORD:
	case STR_NAME:
		max = k == STR_URL ? PROTO_MAX_URL :
		    k == STR_WORD ? PROTO_MAX_WORD : PROTO_MAX_NAME;
		if (n == 0 || n > max || !url_chars(v->valuestring, n)) {
			errbuf_set(why, whylen, "%s: \"%s\" is not a valid %s "
			    "(empty, longer than %zu bytes, or spaces or "
			    "control bytes)", where, name,
			    k == STR_URL ? "URL" : "value", max);
			return -1;
		}
		break;
	}
	if ((*out = dup_n(v->valuestring, n)) == NULL) {
		errbuf_set(why, whylen, "%s: out of memory", where);
		return -1;
	}
	return 1;
}

static int
get_time(const cJSON *o, const char *where, const char *name, bool required,
    time_t *out, char *why, size_t whylen)
{
	char *s = NULL;
	int rc;

	*out = 0;
	rc = get_str(o, where, name, STR_WORD, required, &s, why, whylen);
	if (rc <= 0)
		return rc;
	if (proto_rfc3339_parse(s, strlen(s), out) < 0) {
		errbuf_set(why, whylen, "%s: \"%s\" is not an RFC 3339 date-time",
		    where, name);
		rc = -1;
	}
	free(s);
	return rc;
}

static int
get_bool(const cJSON *o, const char *where, const char *name, bool *out,
    char *why, size_t whylen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	*out = false;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v)) {
		errbuf_set(why, whylen, "%s: \"%s\" is not true or false", where,
		    name);
		return -1;
	}
	*out = cJSON_IsTrue(v);
	return 1;
}

/* An array member: *arr set (NULL when absent and not required). */
static int
get_array(const cJSON *o, const char *where, const char *name, bool required,
    const cJSON **arr, size_t *n, char *why, size_t whylen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	*arr = NULL;
	*n = 0;
	if (v == NULL || cJSON_IsNull(v)) {
		if (!required)
			return 0;
		errbuf_set(why, whylen, "%s: missing \"%s\"", where, name);
		return -1;
	}
	if (!cJSON_IsArray(v)) {
		errbuf_set(why, whylen, "%s: \"%s\" is not an array", where, name);
		return -1;
	}
	*n = (size_t)cJSON_GetArraySize(v);
	if (*n > PROTO_MAX_LIST) {
		errbuf_set(why, whylen, "%s: \"%s\" has more than %d entries",
		    where, name, PROTO_MAX_LIST);
		return -1;
	}
	*arr = v;
	return 1;
}

/* An array of strings of kind k; *out NULL when absent or empty. */
static int
get_str_array(const cJSON *o, const char *where, const char *name,
    enum str_kind k, bool required, char ***out, size_t *nout, char *why,
    size_t whylen)
{
	const cJSON *arr, *e;
	char **v = NULL;
	size_t n, i = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	if ((rc = get_array(o, where, name, required, &arr, &n, why,
	    whylen)) <= 0)
		return rc;
	if (n == 0)
		return 1;
	if ((v = calloc(n, sizeof(*v))) == NULL) {
		errbuf_set(why, whylen, "%s: out of memory", where);
		return -1;
	}
	cJSON_ArrayForEach(e, arr) {
		size_t len;

		if (i == n)
			break;
		if (!cJSON_IsString(e) || e->valuestring == NULL) {
			errbuf_set(why, whylen, "%s: \"%s\"[%zu] is not a string",
			    where, name, i);
			goto fail;
		}
		len = strlen(e->valuestring);
		if (k != STR_TEXT && (len == 0 || len > (k == STR_URL ?
		    PROTO_MAX_URL : PROTO_MAX_NAME) ||
		    !url_chars(e->valuestring, len))) {
			errbuf_set(why, whylen, "%s: \"%s\"[%zu] is not a valid %s",
			    where, name, i, k == STR_URL ? "URL" : "value");
			goto fail;
		}
		if (len > PROTO_MAX_URL)
			len = PROTO_MAX_URL;
		if ((v[i] = dup_n(e->valuestring, len)) == NULL) {
			errbuf_set(why, whylen, "%s: out of memory", where);
			goto fail;
		}
		i++;
	}
	*out = v;
	*nout = i;
	return 1;
fail:
	proto_strv_free(v, n);
	return -1;
}

/* A status word mapped through names[]; required. */
static int
get_enum(const cJSON *o, const char *where, const char *name,
    const char *const *names, size_t nnames, int *out, char *why,
    size_t whylen)
{
	char *s = NULL;
	int rc = -1;

	if (get_str(o, where, name, STR_WORD, true, &s, why, whylen) < 0) {
		/* A status too odd to be a word is still an unknown status. */
		if (s == NULL && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o,
		    name)))
			errbuf_set(why, whylen, "%s: unknown \"%s\"", where, name);
		return -1;
	}
	for (size_t i = 0; i < nnames; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			rc = 0;
			goto out;
		}
	{
		char esc[64];

		errbuf_set(why, whylen, "%s: unknown %s \"%s\"", where, name,
		    log_escape(esc, sizeof(esc), s, strlen(s)));
	}
out:
	free(s);
	return rc;
}

/* ---- problems ---- */

static const char *const errtype_names[PROTO_ERR_COUNT] = {
	[PROTO_ERR_OTHER] = "",
	[PROTO_ERR_ACCOUNT_DOES_NOT_EXIST] = "accountDoesNotExist",
	[PROTO_ERR_ALREADY_REVOKED] = "alreadyRevoked",
	[PROTO_ERR_BAD_CSR] = "badCSR",
	[PROTO_ERR_BAD_NONCE] = "badNonce",
	[PROTO_ERR_BAD_PUBLIC_KEY] = "badPublicKey",
	[PROTO_ERR_BAD_REVOCATION_REASON] = "badRevocationReason",
	[PROTO_ERR_BAD_SIGNATURE_ALGORITHM] = "badSignatureAlgorithm",
	[PROTO_ERR_CAA] = "caa",
	[PROTO_ERR_COMPOUND] = "compound",
	[PROTO_ERR_CONNECTION] = "connection",
	[PROTO_ERR_DNS] = "dns",
	[PROTO_ERR_EXTERNAL_ACCOUNT_REQUIRED] = "externalAccountRequired",
	[PROTO_ERR_INCORRECT_RESPONSE] = "incorrectResponse",
	[PROTO_ERR_INVALID_CONTACT] = "invalidContact",
	[PROTO_ERR_MALFORMED] = "malformed",
	[PROTO_ERR_ORDER_NOT_READY] = "orderNotReady",
	[PROTO_ERR_RATE_LIMITED] = "rateLimited",
	[PROTO_ERR_REJECTED_IDENTIFIER] = "rejectedIdentifier",
	[PROTO_ERR_SERVER_INTERNAL] = "serverInternal",
	[PROTO_ERR_TLS] = "tls",
	[PROTO_ERR_UNAUTHORIZED] = "unauthorized",
	[PROTO_ERR_UNSUPPORTED_CONTACT] = "unsupportedContact",
	[PROTO_ERR_UNSUPPORTED_IDENTIFIER] = "unsupportedIdentifier",
	[PROTO_ERR_USER_ACTION_REQUIRED] = "userActionRequired",
	[PROTO_ERR_ALREADY_REPLACED] = "alreadyReplaced",
};

enum proto_errtype
proto_errtype_of(const char *type)
{
	size_t plen = sizeof(PROTO_ERR_PREFIX) - 1;

	if (type == NULL || strncmp(type, PROTO_ERR_PREFIX, plen) != 0)
		return PROTO_ERR_OTHER;
	for (int i = 1; i < PROTO_ERR_COUNT; i++)
		if (strcmp(type + plen, errtype_names[i]) == 0)
			return (enum proto_errtype)i;
	return PROTO_ERR_OTHER;
}

const char *
proto_errtype_name(enum proto_errtype t)
{
	if ((int)t < 0 || t >= PROTO_ERR_COUNT)
		return "";
	return errtype_names[t];
}

/* A string member of a problem: wrong types count as absent, since an
 * error report must still be shown when the CA gets it half right. */
static int
prob_str(const cJSON *o, const char *name, enum str_kind k, char **out)
{
	char tmp[8];

	if (get_str(o, "problem", name, k, false, out, tmp, sizeof(tmp)) < 0) {
		free(*out);
		*out = NULL;
		return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, name)) &&
		    k == STR_TEXT ? -1 : 0;	/* only no memory is fatal */
	}
	return 0;
}

static int
identifier_from(const cJSON *o, const char *where, bool strict,
    struct proto_identifier *id, char *why, size_t whylen)
{
	char tmp[8];

	if (!strict) {
		if (!cJSON_IsObject(o))
			return 0;
		if (get_str(o, where, "type", STR_WORD, false, &id->type, tmp,
		    sizeof(tmp)) < 0 || get_str(o, where, "value", STR_NAME,
		    false, &id->value, tmp, sizeof(tmp)) < 0) {
			free(id->type);
			free(id->value);
			id->type = id->value = NULL;
		}
		return 0;
	}
	if (get_str(o, where, "type", STR_WORD, true, &id->type, why,
	    whylen) < 0 || get_str(o, where, "value", STR_NAME, true,
	    &id->value, why, whylen) < 0)
		return -1;
	return 0;
}

static void
identifier_fini(struct proto_identifier *id)
{
	free(id->type);
	free(id->value);
	id->type = id->value = NULL;
}

static int
problem_from(const cJSON *o, struct proto_problem *p, char *why, size_t whylen)
{
	const cJSON *v, *e;
	size_t n, i = 0;

	memset(p, 0, sizeof(*p));
	if (prob_str(o, "type", STR_URL, &p->type) < 0 ||
	    prob_str(o, "detail", STR_TEXT, &p->detail) < 0 ||
	    prob_str(o, "instance", STR_URL, &p->instance) < 0)
		goto nomem;
	p->kind = proto_errtype_of(p->type);
	v = cJSON_GetObjectItemCaseSensitive(o, "status");
	if (cJSON_IsNumber(v) && v->valuedouble >= 100 && v->valuedouble < 600)
		p->status = (int)v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(o, "subproblems");
	if (!cJSON_IsArray(v))
		return 0;
	n = (size_t)cJSON_GetArraySize(v);
	if (n > PROTO_MAX_LIST)
		n = PROTO_MAX_LIST;
	if (n == 0)
		return 0;
	if ((p->sub = calloc(n, sizeof(*p->sub))) == NULL)
		goto nomem;
	cJSON_ArrayForEach(e, v) {
		struct proto_subproblem *s = &p->sub[i];

		if (i == n)
			break;
		if (!cJSON_IsObject(e))
			continue;
		p->nsub = ++i;
		if (prob_str(e, "type", STR_URL, &s->type) < 0 ||
		    prob_str(e, "detail", STR_TEXT, &s->detail) < 0)
			goto nomem;
		s->kind = proto_errtype_of(s->type);
		identifier_from(cJSON_GetObjectItemCaseSensitive(e,
		    "identifier"), "subproblem", false, &s->identifier, NULL, 0);
	}
	return 0;
nomem:
	errbuf_set(why, whylen, "problem: out of memory");
	proto_problem_free(p);
	return -1;
}

int
proto_problem_parse(struct proto_problem *p, const char *json, size_t len,
    char *why, size_t whylen)
{
	cJSON *root;
	int rc;

	memset(p, 0, sizeof(*p));
	if ((root = doc_parse("problem", json, len, why, whylen)) == NULL)
		return -1;
	rc = problem_from(root, p, why, whylen);
	cJSON_Delete(root);
	return rc;
}

void
proto_problem_free(struct proto_problem *p)
{
	if (p == NULL)
		return;
	free(p->type);
	free(p->detail);
	free(p->instance);
	for (size_t i = 0; i < p->nsub; i++) {
		free(p->sub[i].type);
		free(p->sub[i].detail);
		identifier_fini(&p->sub[i].identifier);
	}
	free(p->sub);
	memset(p, 0, sizeof(*p));
}

/* An optional "error" member holding a problem; *out NULL when absent. */
static int
get_problem(const cJSON *o, const char *where, struct proto_problem **out,
    char *why, size_t whylen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "error");

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsObject(v)) {
		errbuf_set(why, whylen, "%s: \"error\" is not an object", where);
		return -1;
	}
	if ((*out = calloc(1, sizeof(**out))) == NULL ||
	    problem_from(v, *out, why, whylen) < 0) {
		free(*out);
		*out = NULL;
		errbuf_set(why, whylen, "%s: out of memory", where);
		return -1;
	}
	return 1;
}

static void
problem_release(struct proto_problem *p)
{
	proto_problem_free(p);
	free(p);
}

/* ---- explanations ---- */

/* A bounded line: appends until full, then remembers that it was cut. */
struct line {
	char *p;
	size_t cap, len;
	bool cut;
};

static void __attribute__((format(printf, 2, 3)))
line_add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->cut)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->p + l->len, l->cap - l->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= l->cap - l->len) {
		l->cut = true;
		l->len = l->cap - 1;
		return;
	}
	l->len += (size_t)n;
}

/* The challenge URL a CA fetches for http-01. */
static void
http01_url(char *dst, size_t dstlen, const char *name,
    const struct proto_explain_ctx *ctx)
{
	char tok[TOKEN_MAX + 8] = "";
	int port = ctx != NULL && ctx->port > 0 ? ctx->port : 80;

	if (ctx != NULL && ctx->token != NULL)
		log_escape(tok, sizeof(tok), ctx->token, strlen(ctx->token));
	if (port == 80)
		snprintf(dst, dstlen, "http://%s/.well-known/acme-challenge/%s",
		    name, tok);
	else
		snprintf(dst, dstlen, "http://%s:%d/.well-known/acme-challenge/%s",
		    name, port, tok);
}

/* "<what happened>" and "<fix>" for one error type. name is escaped. */
static void
explain_texts(struct line *l, enum proto_errtype kind, const char *typestr,
    const char *name, bool have_name, const char *instance,
    const struct proto_explain_ctx *ctx, size_t nsub)
{
	const char *chal = ctx != NULL ? ctx->challenge : NULL;
	/* A challenge URL needs the name; without one, say it in general. */
	bool http01 = have_name && chal != NULL && strcmp(chal, "http-01") == 0;
	bool dns01 = chal != NULL && strcmp(chal, "dns-01") == 0;
	int port = ctx != NULL && ctx->port > 0 ? ctx->port : 80;
	char url[PROTO_MAX_NAME * 4 + TOKEN_MAX + 64];
	const char *what, *fix;

	http01_url(url, sizeof(url), name, ctx);
	switch (kind) {
	case PROTO_ERR_ACCOUNT_DOES_NOT_EXIST:
		line_add(l, "the CA has no account for this account key (%s): "
		    "let hacme register a new account (remove "
		    "account/<ca>/account.json) or restore the right "
		    "account-key", typestr);
		return;
	case PROTO_ERR_ALREADY_REVOKED:
		what = "the certificate is already revoked";
		fix = "nothing to revoke; run `hacme renew --force` for a new "
		    "certificate";
		break;
	case PROTO_ERR_BAD_CSR:
		what = "the CA refused the certificate signing request";
		fix = "check the domains and key of this cert section (the CA "
		    "may refuse the key type or size, or a name)";
		break;
	case PROTO_ERR_BAD_NONCE:
		what = "the CA refused the anti-replay nonce";
		fix = "retry; if it repeats, check that no "
		    "proxy between hacme and the CA caches or replays requests";
		break;
	case PROTO_ERR_BAD_PUBLIC_KEY:
		what = "the CA does not accept this public key";
		fix = "use another key type (account-key or key: ecdsa-p256 or "
		    "rsa2048)";
		break;
	case PROTO_ERR_BAD_REVOCATION_REASON:
		what = "the CA refused the revocation reason";
		fix = "use --reason unspecified, keyCompromise, "
		    "affiliationChanged, superseded or cessationOfOperation";
		break;
	case PROTO_ERR_BAD_SIGNATURE_ALGORITHM:
		what = "the CA does not accept the signature algorithm";
		fix = "use account-key ecdsa-p256 (ES256) or rsa2048 (RS256)";
		break;
	case PROTO_ERR_CAA:
		line_add(l, "a CAA record in DNS forbids this CA to issue for "
		    "%s (%s): add a CAA \"issue\" record for %s (or remove the "
		    "one on its parent domain) that names this CA's domain",
		    name, typestr, name);
		return;
	case PROTO_ERR_COMPOUND:
		if (nsub == 0)
			line_add(l, "the CA reported several errors but listed "
			    "none (%s): look for the names at fault in the "
			    "CA's detail", typestr);
		else
			line_add(l, "the CA refused %zu identifier%s (%s): each "
			    "is listed next with its fix", nsub,
			    nsub == 1 ? "" : "s", typestr);
		return;
	case PROTO_ERR_CONNECTION:
		if (http01)
			line_add(l, "the CA could not connect to %s (%s): check "
			    "that port %d of %s reaches this HAProxy", url,
			    typestr, port, name);
		else
			line_add(l, "the CA could not connect to %s (%s): check "
			    "that %s resolves to this HAProxy and that port %d "
			    "is open to the internet", name, typestr, name,
			    port);
		return;
	case PROTO_ERR_DNS:
		if (dns01)
			line_add(l, "the CA could not look up the TXT record "
			    "_acme-challenge.%s (%s): check that the record is "
			    "published on every authoritative server of %s",
			    name, typestr, name);
		else
			line_add(l, "the CA could not resolve %s in DNS (%s): "
			    "check that %s has an A or AAAA record pointing to "
			    "this HAProxy and that its DNS servers answer",
			    name, typestr, name);
		return;
	case PROTO_ERR_EXTERNAL_ACCOUNT_REQUIRED:
		what = "the CA requires an External Account Binding";
		fix = "set eab-kid and eab-hmac-key in the ca section (from "
		    "the CA's account page)";
		break;
	case PROTO_ERR_INCORRECT_RESPONSE:
		if (http01)
			line_add(l, "the CA fetched %s and got a wrong answer "
			    "(%s): check that every HAProxy serving %s sends "
			    "/.well-known/acme-challenge/ to hacme-spoa before "
			    "any redirect or other backend", url, typestr,
			    name);
		else
			line_add(l, "the CA got a wrong answer to the challenge "
			    "for %s (%s): check that %s points at this HAProxy "
			    "and nothing else answers for it", name, typestr,
			    name);
		return;
	case PROTO_ERR_INVALID_CONTACT:
		what = "the CA refused the contact address";
		fix = "fix the contact line of the ca section (a mailto: "
		    "address whose domain exists)";
		break;
	case PROTO_ERR_MALFORMED:
		what = "the CA found the request malformed";
		fix = "check the names of this cert section; if they are "
		    "valid, report it as a hacme bug with the CA's words";
		break;
	case PROTO_ERR_ORDER_NOT_READY:
		what = "the order was not ready to be finalized";
		fix = "an authorization is still pending or failed: run the "
		    "order again (`hacme renew --force`)";
		break;
	case PROTO_ERR_RATE_LIMITED:
		if (ctx != NULL && ctx->retry_after > 0)
			line_add(l, "the CA's rate limit was hit (%s): wait "
			    "%ld s before trying again and stop repeated "
			    "issue or renew --force", typestr,
			    ctx->retry_after);
		else
			line_add(l, "the CA's rate limit was hit (%s): wait "
			    "before trying again and stop repeated issue or "
			    "renew --force", typestr);
		return;
	case PROTO_ERR_REJECTED_IDENTIFIER:
		line_add(l, "the CA will not issue for %s (%s): remove %s from "
		    "the domains of this cert, or use another CA", name,
		    typestr, name);
		return;
	case PROTO_ERR_SERVER_INTERNAL:
		what = "the CA had an internal error";
		fix = "try again later and check the CA's status page";
		break;
	case PROTO_ERR_TLS:
		line_add(l, "the CA had a TLS error talking to %s (%s): if "
		    "port 80 redirects to https, check that https://%s serves "
		    "a valid certificate, or exempt "
		    "/.well-known/acme-challenge/ from the redirect", name,
		    typestr, name);
		return;
	case PROTO_ERR_UNAUTHORIZED:
		if (http01)
			line_add(l, "the CA fetched %s but was not given the "
			    "key authorization (%s): check that %s points at "
			    "this HAProxy (not a CDN or an old address) and "
			    "that the challenge rule comes before any other",
			    url, typestr, name);
		else if (have_name)
			line_add(l, "this account is not authorized for %s "
			    "(%s): validate %s again, or revoke with "
			    "--cert-key", name, typestr, name);
		else
			line_add(l, "this account is not authorized for the "
			    "request (%s): check that the certificate or "
			    "order belongs to this account, or revoke with "
			    "--cert-key", typestr);
		return;
	case PROTO_ERR_UNSUPPORTED_CONTACT:
		what = "the CA does not support this contact URL scheme";
		fix = "use a mailto: contact";
		break;
	case PROTO_ERR_UNSUPPORTED_IDENTIFIER:
		line_add(l, "the CA does not support the identifier type of %s "
		    "(%s): use DNS names only (IP addresses need a CA and "
		    "profile that allow them)", name, typestr);
		return;
	case PROTO_ERR_USER_ACTION_REQUIRED:
		if (instance != NULL) {
			char esc[256];

			line_add(l, "the CA requires an action from you (%s): "
			    "open %s and do what it asks (often: accept new "
			    "terms of service)", typestr, log_escape(esc,
			    sizeof(esc), instance, strlen(instance)));
			return;
		}
		what = "the CA requires an action from you";
		fix = "read the CA's terms of service page and accept them";
		break;
	case PROTO_ERR_ALREADY_REPLACED:
		what = "the certificate named in \"replaces\" was already "
		    "replaced";
		fix = "hacme orders again without \"replaces\"; if this "
		    "repeats, another ACME client renews this certificate: "
		    "stop it";
		break;
	default:
		what = "the CA returned an error";
		fix = "read what the CA said and the CA's documentation";
		break;
	}
	line_add(l, "%s (%s): %s", what, typestr, fix);
}

/* One clause: "[<name>: ]<what> (<type>): <fix>[; the CA said: <detail>]". */
static void
explain_clause(struct line *l, enum proto_errtype kind, const char *type,
    const char *detail, const char *instance, const char *ident,
    const struct proto_explain_ctx *ctx, size_t nsub)
{
	char name[PROTO_MAX_NAME * 4 + 4], typestr[PROTO_MAX_WORD + 4];
	char det[EXPLAIN_DETAIL];

	if (ident != NULL) {
		log_escape(name, sizeof(name), ident, strlen(ident));
		line_add(l, "%s: ", name);
	} else
		snprintf(name, sizeof(name), "the name");
	if (type != NULL)
		log_escape(typestr, sizeof(typestr), type, strlen(type));
	else
		snprintf(typestr, sizeof(typestr), "no error type");
	explain_texts(l, kind, typestr, name, ident != NULL, instance, ctx,
	    nsub);
	if (detail != NULL && detail[0] != '\0')
		line_add(l, "; the CA said: %s", log_escape(det, sizeof(det),
		    detail, strlen(detail)));
}

char *
proto_problem_explain(const struct proto_problem *p, const char *identifier,
    const struct proto_explain_ctx *ctx, char *out, size_t outlen)
{
	struct line l = { out, outlen, 0, false };

	if (out == NULL || outlen < 4)
		return out;
	out[0] = '\0';
	if (p == NULL) {
		line_add(&l, "no error document from the CA");
		goto out;
	}
	explain_clause(&l, p->kind, p->type, p->detail, p->instance,
	    identifier, ctx, p->nsub);
	for (size_t i = 0; i < p->nsub && !l.cut; i++) {
		const struct proto_subproblem *s = &p->sub[i];
		const char *id = s->identifier.value != NULL ?
		    s->identifier.value : identifier;

		if (i == EXPLAIN_SUBS) {
			line_add(&l, "; and %zu more", p->nsub - i);
			break;
		}
		line_add(&l, "; ");
		/* A subproblem without a type inherits the problem's. */
		explain_clause(&l, s->type != NULL ? s->kind : p->kind,
		    s->type != NULL ? s->type : p->type, s->detail, NULL, id,
		    ctx, 0);
	}
out:
	if (l.cut)
		memcpy(out + outlen - 4, "...", 4);
	return out;
}

/* ---- directory ---- */

int
proto_directory_parse(struct proto_directory *d, const char *json, size_t len,
    char *why, size_t whylen)
{
	static const char w[] = "directory";
	const cJSON *meta, *prof, *e;
	cJSON *root;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	if ((root = doc_parse(w, json, len, why, whylen)) == NULL)
		return -1;
	if (get_str(root, w, "newNonce", STR_URL, true, &d->new_nonce, why,
	    whylen) < 0 ||
	    get_str(root, w, "newAccount", STR_URL, true, &d->new_account, why,
	    whylen) < 0 ||
	    get_str(root, w, "newOrder", STR_URL, true, &d->new_order, why,
	    whylen) < 0 ||
	    get_str(root, w, "revokeCert", STR_URL, true, &d->revoke_cert, why,
	    whylen) < 0 ||
	    get_str(root, w, "keyChange", STR_URL, true, &d->key_change, why,
	    whylen) < 0 ||
	    get_str(root, w, "newAuthz", STR_URL, false, &d->new_authz, why,
	    whylen) < 0 ||
	    get_str(root, w, "renewalInfo", STR_URL, false, &d->renewal_info,
	    why, whylen) < 0)
		goto out;
	meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
	if (meta == NULL || cJSON_IsNull(meta)) {
		rc = 0;
		goto out;
	}
	if (!cJSON_IsObject(meta)) {
		errbuf_set(why, whylen, "directory: \"meta\" is not an object");
		goto out;
	}
	if (get_str(meta, "directory meta", "termsOfService", STR_URL, false,
	    &d->terms_of_service, why, whylen) < 0 ||
	    get_str(meta, "directory meta", "website", STR_URL, false,
	    &d->website, why, whylen) < 0 ||
	    get_str_array(meta, "directory meta", "caaIdentities", STR_NAME,
	    false, &d->caa_identities, &d->ncaa_identities, why, whylen) < 0 ||
	    get_bool(meta, "directory meta", "externalAccountRequired",
	    &d->external_account_required, why, whylen) < 0)
		goto out;
	prof = cJSON_GetObjectItemCaseSensitive(meta, "profiles");
	if (prof != NULL && !cJSON_IsNull(prof)) {
		size_t n;

		if (!cJSON_IsObject(prof)) {
			errbuf_set(why, whylen, "directory meta: \"profiles\" is "
			    "not an object");
			goto out;
		}
		n = (size_t)cJSON_GetArraySize(prof);
		if (n > PROTO_MAX_LIST) {
			errbuf_set(why, whylen, "directory meta: \"profiles\" has "
			    "more than %d entries", PROTO_MAX_LIST);
			goto out;
		}
		if (n > 0 && ((d->profiles = calloc(n, sizeof(char *))) == NULL ||
		    (d->profile_descs = calloc(n, sizeof(char *))) == NULL))
			goto nomem;
		cJSON_ArrayForEach(e, prof) {
			const char *desc = cJSON_IsString(e) &&
			    e->valuestring != NULL ? e->valuestring : "";
			size_t nl = e->string != NULL ? strlen(e->string) : 0;
			size_t dl = strlen(desc);

			if (d->nprofiles == n)
				break;
			/* A name we could not send back is skipped. */
			if (nl == 0 || nl > PROTO_MAX_WORD ||
			    !url_chars(e->string, nl))
				continue;
			if ((d->profiles[d->nprofiles] = dup_n(e->string,
			    nl)) == NULL || (d->profile_descs[d->nprofiles] =
			    dup_n(desc, dl > PROTO_MAX_STR ? PROTO_MAX_STR :
			    dl)) == NULL) {
				free(d->profiles[d->nprofiles]);
				goto nomem;
			}
			d->nprofiles++;
		}
	}
	rc = 0;
	goto out;
nomem:
	errbuf_set(why, whylen, "directory: out of memory");
out:
	cJSON_Delete(root);
	if (rc < 0)
		proto_directory_free(d);
	return rc;
}

void
proto_directory_free(struct proto_directory *d)
{
	if (d == NULL)
		return;
	free(d->new_nonce);
	free(d->new_account);
	free(d->new_order);
	free(d->revoke_cert);
	free(d->key_change);
	free(d->new_authz);
	free(d->renewal_info);
	free(d->terms_of_service);
	free(d->website);
	proto_strv_free(d->caa_identities, d->ncaa_identities);
	proto_strv_free(d->profiles, d->nprofiles);
	proto_strv_free(d->profile_descs, d->nprofiles);
	memset(d, 0, sizeof(*d));
}

bool
proto_directory_has_profile(const struct proto_directory *d, const char *name)
{
	if (d == NULL || name == NULL)
		return false;
	for (size_t i = 0; i < d->nprofiles; i++)
		if (strcmp(d->profiles[i], name) == 0)
			return true;
	return false;
}

/* ---- account ---- */

static const char *const account_status_names[] = {
	"valid", "deactivated", "revoked",
};

int
proto_account_parse(struct proto_account *a, const char *json, size_t len,
    char *why, size_t whylen)
{
	static const char w[] = "account";
	cJSON *root;
	int st, rc = -1;

	memset(a, 0, sizeof(*a));
	if ((root = doc_parse(w, json, len, why, whylen)) == NULL)
		return -1;
	if (get_enum(root, w, "status", account_status_names, 3, &st, why,
	    whylen) < 0 ||
	    get_str_array(root, w, "contact", STR_URL, false, &a->contact,
	    &a->ncontact, why, whylen) < 0 ||
	    get_str(root, w, "orders", STR_URL, false, &a->orders, why,
	    whylen) < 0)
		goto out;
	a->status = (enum proto_account_status)st;
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc < 0)
		proto_account_free(a);
	return rc;
}

void
proto_account_free(struct proto_account *a)
{
	if (a == NULL)
		return;
	proto_strv_free(a->contact, a->ncontact);
	free(a->orders);
	memset(a, 0, sizeof(*a));
}

/* ---- order ---- */

static const char *const order_status_names[] = {
	"pending", "ready", "processing", "valid", "invalid",
};

const char *
proto_order_status_name(enum proto_order_status s)
{
	if ((size_t)s >= sizeof(order_status_names) / sizeof(char *))
		return "?";
	return order_status_names[s];
}

int
proto_order_parse(struct proto_order *o, const char *json, size_t len,
    char *why, size_t whylen)
{
	static const char w[] = "order";
	const cJSON *ids, *e;
	cJSON *root;
	size_t n, i = 0;
	int st, rc = -1;

	memset(o, 0, sizeof(*o));
	if ((root = doc_parse(w, json, len, why, whylen)) == NULL)
		return -1;
	if (get_enum(root, w, "status", order_status_names, 5, &st, why,
	    whylen) < 0 ||
	    get_time(root, w, "expires", false, &o->expires, why, whylen) < 0 ||
	    get_array(root, w, "identifiers", true, &ids, &n, why, whylen) < 0)
		goto out;
	o->status = (enum proto_order_status)st;
	if (n == 0) {
		errbuf_set(why, whylen, "order: \"identifiers\" is empty");
		goto out;
	}
	if ((o->identifiers = calloc(n, sizeof(*o->identifiers))) == NULL) {
		errbuf_set(why, whylen, "order: out of memory");
		goto out;
	}
	cJSON_ArrayForEach(e, ids) {
		char where[48];

		if (i == n)
			break;
		snprintf(where, sizeof(where), "order identifiers[%zu]", i);
		if (!cJSON_IsObject(e)) {
			errbuf_set(why, whylen, "%s: not an object", where);
			goto out;
		}
		o->nidentifiers = ++i;
		if (identifier_from(e, where, true, &o->identifiers[i - 1], why,
		    whylen) < 0)
			goto out;
	}
	if (get_str_array(root, w, "authorizations", STR_URL, true,
	    &o->authorizations, &o->nauthorizations, why, whylen) < 0 ||
	    get_str(root, w, "finalize", STR_URL, true, &o->finalize, why,
	    whylen) < 0 ||
	    get_str(root, w, "certificate", STR_URL, false, &o->certificate,
	    why, whylen) < 0 ||
	    get_problem(root, w, &o->error, why, whylen) < 0 ||
	    get_str(root, w, "replaces", STR_URL, false, &o->replaces, why,
	    whylen) < 0 ||
	    get_str(root, w, "profile", STR_WORD, false, &o->profile, why,
	    whylen) < 0)
		goto out;
	if (o->status == PROTO_ORDER_VALID && o->certificate == NULL) {
		errbuf_set(why, whylen, "order: status valid without "
		    "\"certificate\"");
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc < 0)
		proto_order_free(o);
	return rc;
}

void
proto_order_free(struct proto_order *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->nidentifiers; i++)
		identifier_fini(&o->identifiers[i]);
	free(o->identifiers);
	proto_strv_free(o->authorizations, o->nauthorizations);
	free(o->finalize);
	free(o->certificate);
	problem_release(o->error);
	free(o->replaces);
	free(o->profile);
	memset(o, 0, sizeof(*o));
}

/* ---- authorization, challenge ---- */

static const char *const authz_status_names[] = {
	"pending", "valid", "invalid", "deactivated", "expired", "revoked",
};

static const char *const chall_status_names[] = {
	"pending", "processing", "valid", "invalid",
};

const char *
proto_authz_status_name(enum proto_authz_status s)
{
	if ((size_t)s >= sizeof(authz_status_names) / sizeof(char *))
		return "?";
	return authz_status_names[s];
}

static void
challenge_fini(struct proto_challenge *c)
{
	free(c->type);
	free(c->url);
	free(c->token);
	proto_strv_free(c->issuer_domain_names, c->nissuer_domain_names);
	problem_release(c->error);
	memset(c, 0, sizeof(*c));
}

static int
challenge_from(const cJSON *o, const char *where, struct proto_challenge *c,
    char *why, size_t whylen)
{
	int st;
	bool known;

	if (get_str(o, where, "type", STR_WORD, true, &c->type, why,
	    whylen) < 0 ||
	    get_str(o, where, "url", STR_URL, true, &c->url, why, whylen) < 0 ||
	    get_enum(o, where, "status", chall_status_names, 4, &st, why,
	    whylen) < 0 ||
	    get_time(o, where, "validated", false, &c->validated, why,
	    whylen) < 0 ||
	    get_problem(o, where, &c->error, why, whylen) < 0)
		return -1;
	c->status = (enum proto_chall_status)st;
	/* dns-persist-01 (draft-ietf-acme-dns-persist): the names the record must carry */
	if (strcmp(c->type, "dns-persist-01") == 0 &&
	    get_str_array(o, where, "issuer-domain-names", STR_WORD, true,
	    &c->issuer_domain_names, &c->nissuer_domain_names, why, whylen) < 0)
		return -1;
	known = strcmp(c->type, "http-01") == 0 ||
	    strcmp(c->type, "dns-01") == 0 ||
	    strcmp(c->type, "tls-alpn-01") == 0;
	if (get_str(o, where, "token", STR_WORD, known, &c->token, why,
	    whylen) < 0) {
		/* Another type's odd token is none of our business. */
		if (known)
			return -1;
		c->token = NULL;
		return 0;
	}
	if (c->token != NULL && !token_valid(c->token, strlen(c->token))) {
		free(c->token);
		c->token = NULL;
		if (known) {
			errbuf_set(why, whylen, "%s: \"token\" is not base64url of "
			    "1..%d characters", where, TOKEN_MAX);
			return -1;
		}
	}
	return 0;
}

int
proto_authz_parse(struct proto_authz *a, const char *json, size_t len,
    char *why, size_t whylen)
{
	static const char w[] = "authorization";
	const cJSON *id, *chs, *e;
	cJSON *root;
	size_t n, i = 0;
	int st, rc = -1;

	memset(a, 0, sizeof(*a));
	if ((root = doc_parse(w, json, len, why, whylen)) == NULL)
		return -1;
	id = cJSON_GetObjectItemCaseSensitive(root, "identifier");
	if (id == NULL || cJSON_IsNull(id)) {
		errbuf_set(why, whylen, "authorization: missing \"identifier\"");
		goto out;
	}
	if (!cJSON_IsObject(id)) {
		errbuf_set(why, whylen, "authorization: \"identifier\" is not an "
		    "object");
		goto out;
	}
	if (identifier_from(id, "authorization identifier", true,
	    &a->identifier, why, whylen) < 0 ||
	    get_enum(root, w, "status", authz_status_names, 6, &st, why,
	    whylen) < 0 ||
	    get_time(root, w, "expires", false, &a->expires, why, whylen) < 0 ||
	    get_bool(root, w, "wildcard", &a->wildcard, why, whylen) < 0 ||
	    get_array(root, w, "challenges", true, &chs, &n, why, whylen) < 0)
		goto out;
	a->status = (enum proto_authz_status)st;
	if (n > 0 && (a->challenges = calloc(n, sizeof(*a->challenges))) ==
	    NULL) {
		errbuf_set(why, whylen, "authorization: out of memory");
		goto out;
	}
	cJSON_ArrayForEach(e, chs) {
		char where[48];

		if (i == n)
			break;
		snprintf(where, sizeof(where), "authorization challenges[%zu]",
		    i);
		if (!cJSON_IsObject(e)) {
			errbuf_set(why, whylen, "%s: not an object", where);
			goto out;
		}
		a->nchallenges = ++i;
		if (challenge_from(e, where, &a->challenges[i - 1], why,
		    whylen) < 0)
			goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc < 0)
		proto_authz_free(a);
	return rc;
}

void
proto_authz_free(struct proto_authz *a)
{
	if (a == NULL)
		return;
	identifier_fini(&a->identifier);
	for (size_t i = 0; i < a->nchallenges; i++)
		challenge_fini(&a->challenges[i]);
	free(a->challenges);
	memset(a, 0, sizeof(*a));
}

const struct proto_challenge *
proto_authz_challenge(const struct proto_authz *a, const char *type)
{
	if (a == NULL || type == NULL)
		return NULL;
	for (size_t i = 0; i < a->nchallenges; i++)
		if (strcmp(a->challenges[i].type, type) == 0)
			return &a->challenges[i];
	return NULL;
}

int
proto_challenge_parse(struct proto_challenge *c, const char *json, size_t len,
    char *why, size_t whylen)
{
	cJSON *root;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((root = doc_parse("challenge", json, len, why, whylen)) == NULL)
		return -1;
	rc = challenge_from(root, "challenge", c, why, whylen);
	cJSON_Delete(root);
	if (rc < 0)
		challenge_fini(c);
	return rc;
}

void
proto_challenge_free(struct proto_challenge *c)
{
	if (c != NULL)
		challenge_fini(c);
}

/* ---- ARI ---- */

int
proto_renewal_info_parse(struct proto_renewal_info *r, const char *json,
    size_t len, char *why, size_t whylen)
{
	static const char w[] = "renewalInfo";
	const cJSON *win;
	cJSON *root;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if ((root = doc_parse(w, json, len, why, whylen)) == NULL)
		return -1;
	win = cJSON_GetObjectItemCaseSensitive(root, "suggestedWindow");
	if (win == NULL || cJSON_IsNull(win)) {
		errbuf_set(why, whylen, "renewalInfo: missing \"suggestedWindow\"");
		goto out;
	}
	if (!cJSON_IsObject(win)) {
		errbuf_set(why, whylen, "renewalInfo: \"suggestedWindow\" is not "
		    "an object");
		goto out;
	}
	if (get_time(win, "renewalInfo suggestedWindow", "start", true,
	    &r->start, why, whylen) < 0 ||
	    get_time(win, "renewalInfo suggestedWindow", "end", true, &r->end,
	    why, whylen) < 0 ||
	    get_str(root, w, "explanationURL", STR_URL, false,
	    &r->explanation_url, why, whylen) < 0)
		goto out;
	if (r->end < r->start) {
		errbuf_set(why, whylen, "renewalInfo: suggestedWindow ends before "
		    "it starts");
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc < 0)
		proto_renewal_info_free(r);
	return rc;
}

void
proto_renewal_info_free(struct proto_renewal_info *r)
{
	if (r == NULL)
		return;
	free(r->explanation_url);
	memset(r, 0, sizeof(*r));
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned
days_in_month(int y, unsigned m)
{
	static const unsigned dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* Exactly n digits at *p (within end); advances. */
static bool
scan_digits(const char **p, const char *end, int n, int *v)
{
	int x = 0;

	if (n > end - *p)
		return false;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		x = x * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*v = x;
	return true;
}

static bool
scan_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

static bool
civil_time(int y, int mo, int d, int h, int mi, int s, time_t *out)
{
	if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y,
	    (unsigned)mo) || h > 23 || mi > 59 || s > 60)
		return false;
	*out = (time_t)(days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
	    h * 3600 + mi * 60 + s);
	return true;
}

int
proto_rfc3339_parse(const char *s, size_t len, time_t *out)
{
	const char *p = s, *end = s + len;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	time_t t;

	if (s == NULL)
		return -1;
	if (!scan_digits(&p, end, 4, &y) || !scan_char(&p, end, '-') ||
	    !scan_digits(&p, end, 2, &mo) || !scan_char(&p, end, '-') ||
	    !scan_digits(&p, end, 2, &d))
		return -1;
	if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (!scan_digits(&p, end, 2, &h) || !scan_char(&p, end, ':') ||
	    !scan_digits(&p, end, 2, &mi) || !scan_char(&p, end, ':') ||
	    !scan_digits(&p, end, 2, &sec))
		return -1;
	if (scan_char(&p, end, '.')) {
		const char *f = p;

		while (p < end && isdigit((unsigned char)*p))
			p++;
		if (p == f)
			return -1;
	}
	if (p < end && (*p == 'Z' || *p == 'z'))
		p++;
	else if (p < end && (*p == '+' || *p == '-')) {
		sign = *p++ == '+' ? 1 : -1;
		if (!scan_digits(&p, end, 2, &oh) || !scan_char(&p, end, ':') ||
		    !scan_digits(&p, end, 2, &om) || oh > 23 || om > 59)
			return -1;
	} else
		return -1;
	if (p != end || !civil_time(y, mo, d, h, mi, sec, &t))
		return -1;
	*out = t - sign * (oh * 3600 + om * 60);
	return 0;
}

static int
month_of(const char *p, const char *end)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	if (end - p < 3)
		return 0;
	for (int i = 0; i < 12; i++)
		if (memcmp(p, months + i * 3, 3) == 0)
			return i + 1;
	return 0;
}

static bool
scan_hms(const char **p, const char *end, int *h, int *mi, int *s)
{
	return scan_digits(p, end, 2, h) && scan_char(p, end, ':') &&
	    scan_digits(p, end, 2, mi) && scan_char(p, end, ':') &&
	    scan_digits(p, end, 2, s);
}

/* The three HTTP-date forms of RFC 9110 section 5.6.7. */
static int
http_date(const char *s, const char *end, time_t *out)
{
	static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri",
	    "Sat", "Sun" };
	const char *p = s, *comma;
	int y, mo, d, h, mi, sec;
	bool dayok = false;

	for (int i = 0; i < 7; i++)
		if (end - p >= 3 && memcmp(p, days[i], 3) == 0)
			dayok = true;
	if (!dayok)
		return -1;
	comma = memchr(p, ',', (size_t)(end - p));
	if (comma == p + 3) {
		/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
		p += 4;
		if (!scan_char(&p, end, ' ') || !scan_digits(&p, end, 2, &d) ||
		    !scan_char(&p, end, ' ') || (mo = month_of(p, end)) == 0)
			return -1;
		p += 3;
		if (!scan_char(&p, end, ' ') || !scan_digits(&p, end, 4, &y) ||
		    !scan_char(&p, end, ' ') || !scan_hms(&p, end, &h, &mi,
		    &sec))
			return -1;
	} else if (comma != NULL && comma - p <= 9) {
		/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
		p = comma + 1;
		if (!scan_char(&p, end, ' ') || !scan_digits(&p, end, 2, &d) ||
		    !scan_char(&p, end, '-') || (mo = month_of(p, end)) == 0)
			return -1;
		p += 3;
		if (!scan_char(&p, end, '-') || !scan_digits(&p, end, 2, &y) ||
		    !scan_char(&p, end, ' ') || !scan_hms(&p, end, &h, &mi,
		    &sec))
			return -1;
		y += y < 70 ? 2000 : 1900;
	} else {
		/* asctime: "Sun Nov  6 08:49:37 1994" */
		p += 3;
		if (!scan_char(&p, end, ' ') || (mo = month_of(p, end)) == 0)
			return -1;
		p += 3;
		if (!scan_char(&p, end, ' '))
			return -1;
		if (scan_char(&p, end, ' ')) {
			if (!scan_digits(&p, end, 1, &d))
				return -1;
		} else if (!scan_digits(&p, end, 2, &d))
			return -1;
		if (!scan_char(&p, end, ' ') || !scan_hms(&p, end, &h, &mi,
		    &sec) || !scan_char(&p, end, ' ') ||
		    !scan_digits(&p, end, 4, &y))
			return -1;
		return p == end && civil_time(y, mo, d, h, mi, sec, out) ?
		    0 : -1;
	}
	if (end - p != 4 || memcmp(p, " GMT", 4) != 0)
		return -1;
	return civil_time(y, mo, d, h, mi, sec, out) ? 0 : -1;
}

int
proto_retry_after_parse(const char *s, size_t len, time_t now, long *secs)
{
	const char *p = s, *end = s + len;
	time_t t;

	if (s == NULL)
		return -1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r' || end[-1] == '\n'))
		end--;
	if (p == end)
		return -1;
	if (isdigit((unsigned char)*p)) {
		long v = 0;

		for (; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			if (v <= RETRY_AFTER_MAX)
				v = v * 10 + (*p - '0');
		}
		*secs = v > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : v;
		return 0;
	}
	if (http_date(p, end, &t) < 0)
		return -1;
	if (t <= now)
		*secs = 0;
	else if (t - now > RETRY_AFTER_MAX)
		*secs = RETRY_AFTER_MAX;
	else
		*secs = (long)(t - now);
	return 0;
}

/* ---- URLs and Link ---- */

/* Length of "scheme:" at the start of s, or 0. */
static size_t
scheme_len(const char *s)
{
	size_t i = 0;

	if (!isalpha((unsigned char)s[0]))
		return 0;
	while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' ||
	    s[i] == '.')
		i++;
	return s[i] == ':' ? i + 1 : 0;
}

static char *
join2(const char *a, size_t alen, const char *b, size_t blen)
{
	char *p;

	if (alen + blen > PROTO_MAX_URL || (p = malloc(alen + blen + 1)) ==
	    NULL)
		return NULL;
	memcpy(p, a, alen);
	memcpy(p + alen, b, blen);
	p[alen + blen] = '\0';
	return p;
}

/* RFC 3986 section 5.2.4 on the path of url (from off to '?' or '#'), in
 * place: the path only shrinks. */
static char *
dots_removed(char *url, size_t off)
{
	char *in, *out;
	size_t n, ol = 0, i = 0;

	if (url == NULL || url[off] != '/')
		return url;
	n = strcspn(url + off, "?#");
	if ((in = dup_n(url + off, n)) == NULL) {
		free(url);
		return NULL;
	}
	out = url + off;
	while (i < n) {
		size_t j = i + 1, sl;
		const char *seg = in + i + 1;

		while (j < n && in[j] != '/')
			j++;
		sl = j - i - 1;
		if (sl == 1 && seg[0] == '.') {
			if (j == n)
				out[ol++] = '/';
		} else if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
			while (ol > 0 && out[ol - 1] != '/')
				ol--;
			if (ol > 0)
				ol--;
			if (j == n)
				out[ol++] = '/';
		} else {
			out[ol++] = '/';
			memcpy(out + ol, seg, sl);
			ol += sl;
		}
		i = j;
	}
	memmove(out + ol, url + off + n, strlen(url + off + n) + 1);
	free(in);
	return url;
}

char *
proto_url_resolve(const char *base, const char *ref)
{
	size_t sl, rl, auth_end, path_end, i;
	char *tmp, *r;

	if (ref == NULL || (rl = strlen(ref)) > PROTO_MAX_URL ||
	    !url_chars(ref, rl))
		return NULL;
	if (scheme_len(ref) > 0)
		return dup_n(ref, rl);
	if (base == NULL || (sl = scheme_len(base)) == 0 ||
	    strlen(base) > PROTO_MAX_URL)
		return NULL;
	if (ref[0] == '/' && ref[1] == '/')
		return dots_removed(join2(base, sl, ref, rl), sl + 2 +
		    strcspn(ref + 2, "/?#"));
	/* The authority ends at the first '/', '?' or '#' after "//". */
	auth_end = sl;
	if (base[sl] == '/' && base[sl + 1] == '/')
		auth_end = sl + 2 + strcspn(base + sl + 2, "/?#");
	path_end = auth_end + strcspn(base + auth_end, "?#");
	if (ref[0] == '/')
		return dots_removed(join2(base, auth_end, ref, rl), auth_end);
	if (ref[0] == '#' || rl == 0)
		return join2(base, auth_end + strcspn(base + auth_end, "#"), ref,
		    rl);
	if (ref[0] == '?')
		return join2(base, path_end, ref, rl);
	if (auth_end == sl)	/* "mailto:x" has no path to merge into */
		return NULL;
	/* A relative path replaces the last segment of the base path. */
	for (i = path_end; i > auth_end; i--)
		if (base[i - 1] == '/')
			break;
	if (i > auth_end)
		return dots_removed(join2(base, i, ref, rl), auth_end);
	if ((tmp = join2(base, auth_end, "/", 1)) == NULL)
		return NULL;
	r = join2(tmp, auth_end + 1, ref, rl);
	free(tmp);
	return dots_removed(r, auth_end);
}

static bool
is_tchar(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void
skip_ows(const char **p, const char *end)
{
	while (*p < end && (**p == ' ' || **p == '\t'))
		(*p)++;
}

/* Does the space-separated relation list (v, n) hold rel? */
static bool
rel_has(const char *v, size_t n, const char *rel)
{
	size_t rl = strlen(rel), i = 0;

	while (i < n) {
		size_t j = i;

		while (j < n && v[j] != ' ' && v[j] != '\t')
			j++;
		if (j - i == rl && strncasecmp(v + i, rel, rl) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

/* Parses one link-value at *p (after OWS/commas); on return *p is past its
 * closing comma or at end. Sets url to the target view when rel matches. */
static void
link_value(const char **p, const char *end, const char *rel,
    const char **url, size_t *urllen)
{
	const char *s = *p, *gt;
	bool seen_rel = false;

	*url = NULL;
	if (s >= end || *s != '<')
		goto skip;
	if ((gt = memchr(s, '>', (size_t)(end - s))) == NULL) {
		*p = end;
		return;
	}
	*p = gt + 1;
	for (;;) {
		const char *name, *val = NULL;
		size_t nlen, vlen = 0;
		char q[512];

		skip_ows(p, end);
		if (*p >= end || **p == ',')
			break;
		if (**p != ';')
			goto skip;
		(*p)++;
		skip_ows(p, end);
		name = *p;
		while (*p < end && is_tchar(**p))
			(*p)++;
		nlen = (size_t)(*p - name);
		skip_ows(p, end);
		if (*p < end && **p == '=') {
			(*p)++;
			skip_ows(p, end);
			if (*p < end && **p == '"') {
				/* quoted-string: unescape into q, bounded */
				(*p)++;
				while (*p < end && **p != '"') {
					if (**p == '\\' && *p + 1 < end)
						(*p)++;
					if (vlen < sizeof(q))
						q[vlen] = **p;
					vlen++;
					(*p)++;
				}
				if (*p >= end) {
					*url = NULL;	/* unterminated */
					return;
				}
				(*p)++;
				val = q;
				if (vlen > sizeof(q))
					val = NULL;	/* too long to be ours */
			} else {
				val = *p;
				while (*p < end && is_tchar(**p))
					(*p)++;
				vlen = (size_t)(*p - val);
			}
		}
		/* RFC 8288 section 3.3: only the first rel counts. */
		if (nlen == 3 && strncasecmp(name, "rel", 3) == 0 && !seen_rel) {
			seen_rel = true;
			if (val != NULL && rel_has(val, vlen, rel)) {
				*url = s + 1;
				*urllen = (size_t)(gt - s - 1);
			}
		}
		if (nlen == 0 && *p < end && **p != ';' && **p != ',')
			goto skip;
	}
	if (*p < end)
		(*p)++;		/* the comma */
	return;
skip:
	/* Not a link-value: drop what we have and resync after a comma. */
	*url = NULL;
	while (*p < end && **p != ',') {
		if (**p == '"') {
			(*p)++;
			while (*p < end && **p != '"') {
				if (**p == '\\' && *p + 1 < end)
					(*p)++;
				(*p)++;
			}
		}
		if (*p < end)
			(*p)++;
	}
	if (*p < end)
		(*p)++;
}

int
proto_link_find(const char *const *headers, size_t nheaders, const char *rel,
    const char *base, char ***urls)
{
	char **v = NULL;
	int n = 0;

	*urls = NULL;
	if (rel == NULL)
		return 0;
	for (size_t h = 0; h < nheaders && n < PROTO_MAX_LINKS; h++) {
		const char *p, *end;

		if (headers == NULL || headers[h] == NULL)
			continue;
		p = headers[h];
		end = p + strlen(p);
		if (end - p >= 5 && strncasecmp(p, "link:", 5) == 0)
			p += 5;
		while (p < end && n < PROTO_MAX_LINKS) {
			const char *u;
			size_t ul;
			char *raw, *abs;

			while (p < end && (*p == ' ' || *p == '\t' ||
			    *p == ',' || *p == '\r' || *p == '\n'))
				p++;
			if (p >= end)
				break;
			link_value(&p, end, rel, &u, &ul);
			/* "<>" would be the base itself: never a useful link. */
			if (u == NULL || ul == 0 || ul > PROTO_MAX_URL)
				continue;
			if ((raw = dup_n(u, ul)) == NULL)
				goto nomem;
			abs = proto_url_resolve(base, raw);
			free(raw);
			if (abs == NULL)
				continue;	/* unusable: not an error */
			if (n == 0 && (v = calloc(PROTO_MAX_LINKS,
			    sizeof(*v))) == NULL) {
				free(abs);
				goto nomem;
			}
			v[n++] = abs;
		}
	}
	*urls = v;
	return n;
nomem:
	proto_strv_free(v, (size_t)n);
	return -1;
}

/* ---- builders ---- */

static char *
json_finish(cJSON *o, bool ok)
{
	char *s = NULL;

	if (ok && o != NULL)
		s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static bool
add_str_array(cJSON *o, const char *name, const char *const *v, size_t n)
{
	cJSON *arr;

	if (n > PROTO_MAX_LIST || (arr = cJSON_AddArrayToObject(o, name)) ==
	    NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		cJSON *s;

		if (v[i] == NULL || (s = cJSON_CreateString(v[i])) == NULL)
			return false;
		cJSON_AddItemToArray(arr, s);
	}
	return true;
}

char *
proto_new_account_json(const char *const *contact, size_t ncontact,
    bool tos_agreed, bool only_return_existing, const struct cJSON *eab)
{
	cJSON *o = cJSON_CreateObject(), *e;
	bool ok = o != NULL;

	if (ok && ncontact > 0)
		ok = add_str_array(o, "contact", contact, ncontact);
	if (ok && tos_agreed)
		ok = cJSON_AddTrueToObject(o, "termsOfServiceAgreed") != NULL;
	if (ok && only_return_existing)
		ok = cJSON_AddTrueToObject(o, "onlyReturnExisting") != NULL;
	if (ok && eab != NULL) {
		ok = cJSON_IsObject(eab) && (e = cJSON_Duplicate(eab, 1)) !=
		    NULL;
		if (ok)
			cJSON_AddItemToObject(o, "externalAccountBinding", e);
	}
	return json_finish(o, ok);
}

char *
proto_new_order_json(const char *const *names, size_t nnames,
    const char *profile, const char *replaces)
{
	cJSON *o = cJSON_CreateObject(), *arr;
	bool ok = o != NULL && nnames > 0 && nnames <= PROTO_MAX_LIST;

	if (ok)
		ok = (arr = cJSON_AddArrayToObject(o, "identifiers")) != NULL;
	for (size_t i = 0; ok && i < nnames; i++) {
		unsigned char a[16];
		cJSON *id;
		bool ip;

		if (names[i] == NULL || names[i][0] == '\0') {
			ok = false;
			break;
		}
		ip = inet_pton(AF_INET, names[i], a) == 1 ||
		    inet_pton(AF_INET6, names[i], a) == 1;
		ok = (id = cJSON_CreateObject()) != NULL;
		if (ok) {
			cJSON_AddItemToArray(arr, id);
			ok = cJSON_AddStringToObject(id, "type", ip ? "ip" :
			    "dns") != NULL && cJSON_AddStringToObject(id,
			    "value", names[i]) != NULL;
		}
	}
	if (ok && profile != NULL)
		ok = cJSON_AddStringToObject(o, "profile", profile) != NULL;
	if (ok && replaces != NULL)
		ok = cJSON_AddStringToObject(o, "replaces", replaces) != NULL;
	return json_finish(o, ok);
}

char *
proto_finalize_json(const char *csr_b64url)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL && csr_b64url != NULL && csr_b64url[0] != '\0' &&
	    b64url_alphabet(csr_b64url, strlen(csr_b64url));

	if (ok)
		ok = cJSON_AddStringToObject(o, "csr", csr_b64url) != NULL;
	return json_finish(o, ok);
}

char *
proto_revoke_json(const char *cert_b64url, int reason)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL && cert_b64url != NULL && cert_b64url[0] != '\0' &&
	    b64url_alphabet(cert_b64url, strlen(cert_b64url)) && reason <= 10;

	if (ok)
		ok = cJSON_AddStringToObject(o, "certificate", cert_b64url) !=
		    NULL;
	if (ok && reason >= 0)
		ok = cJSON_AddNumberToObject(o, "reason", reason) != NULL;
	return json_finish(o, ok);
}

char *
proto_account_update_json(const char *const *contact, size_t ncontact)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL;

	/* An empty array, not a missing member: it removes every contact. */
	if (ok)
		ok = add_str_array(o, "contact", contact, ncontact);
	return json_finish(o, ok);
}

char *
proto_deactivate_json(void)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL;

	if (ok)
		ok = cJSON_AddStringToObject(o, "status", "deactivated") != NULL;
	return json_finish(o, ok);
}

char *
proto_challenge_response_json(void)
{
	return json_finish(cJSON_CreateObject(), true);
}

static const struct {
	const char *name;
	int code;
	bool accepted;
} revoke_reasons[] = {
	{ "unspecified", 0, true },
	{ "keyCompromise", 1, true },
	{ "cACompromise", 2, false },
	{ "affiliationChanged", 3, true },
	{ "superseded", 4, true },
	{ "cessationOfOperation", 5, true },
	{ "certificateHold", 6, false },
	{ "removeFromCRL", 8, false },
	{ "privilegeWithdrawn", 9, false },
	{ "aACompromise", 10, false },
};

int
proto_revoke_reason_parse(const char *s, int *code, char *why, size_t whylen)
{
	static const char accepted[] = "unspecified, keyCompromise, "
	    "affiliationChanged, superseded, cessationOfOperation (or 0, 1, 3, "
	    "4, 5)";
	char esc[48];

	if (s == NULL || s[0] == '\0') {
		errbuf_set(why, whylen, "no revocation reason: use %s", accepted);
		return -1;
	}
	for (size_t i = 0; i < sizeof(revoke_reasons) / sizeof(*revoke_reasons);
	    i++) {
		char num[8];

		snprintf(num, sizeof(num), "%d", revoke_reasons[i].code);
		if (strcasecmp(s, revoke_reasons[i].name) != 0 &&
		    strcmp(s, num) != 0)
			continue;
		if (!revoke_reasons[i].accepted) {
			errbuf_set(why, whylen, "revocation reason %s (%d) is "
			    "refused by ACME CAs: use %s",
			    revoke_reasons[i].name, revoke_reasons[i].code,
			    accepted);
			return -1;
		}
		*code = revoke_reasons[i].code;
		return 0;
	}
	errbuf_set(why, whylen, "unknown revocation reason \"%s\": use %s",
	    log_escape(esc, sizeof(esc), s, strlen(s)), accepted);
	return -1;
}
