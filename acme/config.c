/* config.c - hacme's configuration file (DESIGN.md "Config file").
 * Pure: no I/O but reading the file; no OpenSSL. See config.h.
 *
 * One pass over the lines: a tokenizer (quotes, escapes, comments), a
 * keyword table per section, checks of each value; then the checks that
 * need the whole file (a cert's ca, the default ca). Host names in
 * addresses are checked for syntax only: they are resolved when used. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme/config.h"
#include "acme/storeurl.h"
#include "common/addr.h"
#include "common/atomicfile.h"
#include "common/b64url.h"
#include "common/errbuf.h"
#include "common/log.h"

#define LINE_BYTES_MAX 4096	/* bytes of one line, without the LF */
#define LINE_WORDS_MAX (CONFIG_DOMAINS_MAX + 1)	/* keyword + values */
#define CONTACTS_MAX 16		/* contact URLs of one ca */
#define ADDRS_MAX 64		/* runtime-api, tls-check, agent lines each */
#define PATH_BYTES_MAX 1024
#define TEXT_BYTES_MAX 1024	/* reload-command */
#define WORD_BYTES_MAX 256	/* profile, eab-kid, preferred-chain */
#define URL_BYTES_MAX 1024
#define ADDR_BYTES_MAX 280	/* "ipv4@" + a 253-char name + ":65535" */
#define HMAC_CHARS_MAX 1024
#define SHOW_BYTES 72		/* of a value quoted in a message */
#define FILE_SHOW_BYTES 120	/* of the file name in a message */
#define SUGGEST_WORD_MAX 32	/* longer unknown words get no suggestion */

enum section { SEC_NONE, SEC_GLOBAL, SEC_CA, SEC_CERT, SEC_DNS };

static const char *const section_word[] = { "", "global", "ca", "cert", "dns" };
static const char *const section_where[] = {
	"before any section", "global section", "ca section", "cert section", "dns section",
};

static const char *const challenge_names[CHALL_COUNT] = { "http-01", "dns-01",
    "dns-persist-01" };

/* What a keyword's values are, and where they go. */
enum vkind {
	V_PATH,		/* char *: a file or directory */
	V_TEXT,		/* char *: free text (reload-command) */
	V_WORD,		/* char *: printable ASCII without spaces */
	V_CHAIN,	/* char *: an issuer name (any UTF-8) */
	V_ADDR,		/* char *: common/addr.h syntax */
	V_ADDRS,	/* char ** + size_t: repeatable address */
	V_HOSTPORT,	/* char *: HOST:PORT */
	V_BOOL,		/* bool */
	V_UINT,		/* unsigned, lo..hi */
	V_INT,		/* int, lo..hi */
	V_LOGLEVEL,	/* char * */
	V_URL,		/* char *: https URL */
	V_CONTACTS,	/* char ** + size_t: mailto: URLs */
	V_KEYTYPE,	/* enum keytype */
	V_KEYS,		/* enum keytype[2] + size_t */
	V_HMAC,		/* char *: base64url secret, never echoed */
	V_DOMAINS,	/* char ** + size_t */
	V_CAREF,	/* the name of a ca section, resolved at the end */
	V_DNSREF,	/* the name of a dns section, resolved at the end */
	V_CHALLENGE,	/* TYPE [NAME...]: the cert's, or these names' */
	V_PROVIDER,	/* enum dns_provider_kind */
	V_TSIGALG,	/* char *: hmac-sha256|384|512 */
	V_DNSSERVER,	/* char *: HOST or HOST:PORT or [IPV6]:PORT */
	V_ZONE,		/* char *: a DNS name */
};

struct keyword {
	const char *name;
	enum section sec;
	enum vkind kind;
	unsigned min, max;	/* values on one line */
	bool repeat;
	size_t off, noff;	/* the field (and its count) in the section's struct */
	long lo, hi;		/* V_UINT, V_INT */
	const char *usage;
};

#define G(f) offsetof(struct config, f)
#define A(f) offsetof(struct config_ca, f)
#define C(f) offsetof(struct config_cert, f)
#define D(f) offsetof(struct config_dns, f)

static const struct keyword keywords[] = {
	{ "state-dir", SEC_GLOBAL, V_PATH, 1, 1, false, G(state_dir), 0, 0, 0,
	    "state-dir DIR" },
	{ "runtime-api", SEC_GLOBAL, V_ADDRS, 1, 1, true, G(runtime_apis),
	    G(nruntime_apis), 0, 0, "runtime-api ADDRESS" },
	{ "crt-list", SEC_GLOBAL, V_PATH, 1, 1, false, G(crt_list), 0, 0, 0,
	    "crt-list FILE" },
	{ "cert-dir", SEC_GLOBAL, V_PATH, 1, 1, false, G(cert_dir), 0, 0, 0,
	    "cert-dir DIR" },
	{ "tls-check", SEC_GLOBAL, V_ADDRS, 1, 1, true, G(tls_checks),
	    G(ntls_checks), 0, 0, "tls-check ADDRESS" },
	{ "agent", SEC_GLOBAL, V_ADDRS, 1, 1, true, G(agents), G(nagents), 0, 0,
	    "agent ADDRESS" },
	{ "spoa-listen", SEC_GLOBAL, V_ADDR, 1, 1, false, G(spoa_listen), 0, 0, 0,
	    "spoa-listen ADDRESS" },
	{ "concurrency", SEC_GLOBAL, V_UINT, 1, 1, false, G(concurrency), 0, 1,
	    10000, "concurrency N" },
	{ "preflight-port", SEC_GLOBAL, V_INT, 1, 1, false, G(preflight_port), 0,
	    1, 65535, "preflight-port PORT" },
	{ "order-timeout", SEC_GLOBAL, V_UINT, 1, 1, false, G(order_timeout), 0,
	    1, 86400, "order-timeout SECONDS" },
	{ "preflight-connect", SEC_GLOBAL, V_HOSTPORT, 1, 1, false,
	    G(preflight_connect), 0, 0, 0, "preflight-connect HOST:PORT" },
	{ "metrics-listen", SEC_GLOBAL, V_ADDR, 1, 1, false, G(metrics_listen),
	    0, 0, 0, "metrics-listen ADDRESS" },
	{ "reload-command", SEC_GLOBAL, V_TEXT, 1, 1, false, G(reload_command),
	    0, 0, 0, "reload-command \"COMMAND\"" },
	{ "store", SEC_GLOBAL, V_TEXT, 1, 1, false, G(store), 0, 0, 0,
	    "store redis://HOST:PORT/DB" },
	{ "store-password-file", SEC_GLOBAL, V_PATH, 1, 1, false,
	    G(store_password_file), 0, 0, 0, "store-password-file FILE" },
	{ "store-key-file", SEC_GLOBAL, V_PATH, 1, 1, false, G(store_key_file), 0, 0,
	    0, "store-key-file FILE" },
	{ "node-name", SEC_GLOBAL, V_WORD, 1, 1, false, G(node_name), 0, 0, 0,
	    "node-name NAME" },
	{ "notify-command", SEC_GLOBAL, V_TEXT, 1, 1, false, G(notify_command),
	    0, 0, 0, "notify-command \"COMMAND\"" },
	{ "log-level", SEC_GLOBAL, V_LOGLEVEL, 1, 1, false, G(log_level), 0, 0,
	    0, "log-level error|warning|notice|info|debug" },

	{ "directory", SEC_CA, V_URL, 1, 1, false, A(directory), 0, 0, 0,
	    "directory https://URL" },
	{ "contact", SEC_CA, V_CONTACTS, 1, CONTACTS_MAX, true, A(contact),
	    A(ncontact), 0, 0, "contact mailto:ADDRESS..." },
	{ "ca-bundle", SEC_CA, V_PATH, 1, 1, false, A(ca_bundle), 0, 0, 0,
	    "ca-bundle FILE" },
	{ "account-key", SEC_CA, V_KEYTYPE, 1, 1, false, A(account_key), 0, 0, 0,
	    "account-key TYPE" },
	{ "eab-kid", SEC_CA, V_WORD, 1, 1, false, A(eab_kid), 0, 0, 0,
	    "eab-kid KEY-ID" },
	{ "eab-hmac-key", SEC_CA, V_HMAC, 1, 1, false, A(eab_hmac_key), 0, 0, 0,
	    "eab-hmac-key BASE64URL" },

	{ "domains", SEC_CERT, V_DOMAINS, 1, CONFIG_DOMAINS_MAX, true,
	    C(domains), C(ndomains), 0, 0, "domains NAME..." },
	{ "key", SEC_CERT, V_KEYS, 1, CONFIG_KEYS_MAX, false, C(keys), C(nkeys),
	    0, 0, "key TYPE [TYPE]" },
	{ "ca", SEC_CERT, V_CAREF, 1, 1, false, 0, 0, 0, 0, "ca NAME" },
	{ "profile", SEC_CERT, V_WORD, 1, 1, false, C(profile), 0, 0, 0,
	    "profile NAME" },
	{ "preferred-chain", SEC_CERT, V_CHAIN, 1, 1, false, C(preferred_chain),
	    0, 0, 0, "preferred-chain \"ISSUER NAME\"" },
	{ "reuse-key", SEC_CERT, V_BOOL, 1, 1, false, C(reuse_key), 0, 0, 0,
	    "reuse-key on|off" },
	{ "preflight", SEC_CERT, V_BOOL, 1, 1, false, C(preflight), 0, 0, 0,
	    "preflight on|off" },
	{ "challenge", SEC_CERT, V_CHALLENGE, 1, CONFIG_DOMAINS_MAX + 1, true, 0, 0, 0, 0,
	    "challenge http-01|dns-01|dns-persist-01 [NAME...]" },
	{ "dns", SEC_CERT, V_DNSREF, 1, 1, false, 0, 0, 0, 0, "dns NAME" },

	{ "provider", SEC_DNS, V_PROVIDER, 1, 1, false, D(provider), 0, 0, 0,
	    "provider rfc2136|exec" },
	{ "server", SEC_DNS, V_DNSSERVER, 1, 1, false, D(server), 0, 0, 0,
	    "server HOST[:PORT]" },
	{ "zone", SEC_DNS, V_ZONE, 1, 1, false, D(zone), 0, 0, 0, "zone NAME" },
	{ "tsig-key", SEC_DNS, V_WORD, 1, 1, false, D(tsig_key), 0, 0, 0, "tsig-key NAME" },
	{ "tsig-algorithm", SEC_DNS, V_TSIGALG, 1, 1, false, D(tsig_algorithm), 0, 0, 0,
	    "tsig-algorithm hmac-sha256|hmac-sha384|hmac-sha512" },
	{ "tsig-secret-file", SEC_DNS, V_PATH, 1, 1, false, D(tsig_secret_file), 0, 0, 0,
	    "tsig-secret-file FILE" },
	{ "ttl", SEC_DNS, V_UINT, 1, 1, false, D(ttl), 0, 1, 86400, "ttl SECONDS" },
	{ "propagation-timeout", SEC_DNS, V_UINT, 1, 1, false, D(propagation_timeout), 0,
	    1, 86400, "propagation-timeout SECONDS" },
	{ "command", SEC_DNS, V_PATH, 1, 1, false, D(command), 0, 0, 0, "command PROGRAM" },
};

#define NKEYWORDS (sizeof(keywords) / sizeof(keywords[0]))

/* A hash set of file stems: a cert name, or a name + ".rsa" (the RSA half
 * of a dual certificate), so that checks stay linear in the sections. */
struct stem {
	const char *name;	/* borrowed from the config */
	bool rsa;		/* the stem is name + ".rsa" */
	size_t cert;		/* index in c->certs */
};

struct nameset {
	struct stem *v;
	size_t cap, n;		/* cap: 0 or a power of two */
};

static uint64_t
stem_hash(const char *name, bool rsa)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (const char *q = name; *q; q++)
		h = (h ^ (unsigned char)*q) * 1099511628211ull;
	if (rsa)
		for (const char *q = ".rsa"; *q; q++)
			h = (h ^ (unsigned char)*q) * 1099511628211ull;
	return h;
}

/* name1[+".rsa"] == name2[+".rsa"] as strings */
static bool
stem_eq(const struct stem *a, const char *name, bool rsa)
{
	size_t la = strlen(a->name), lb = strlen(name);

	if (la + (a->rsa ? 4 : 0) != lb + (rsa ? 4 : 0))
		return false;
	if (a->rsa == rsa)
		return strcmp(a->name, name) == 0;
	if (a->rsa)	/* name == a->name + ".rsa" */
		return strncmp(a->name, name, la) == 0 && strcmp(name + la, ".rsa") == 0;
	return strncmp(name, a->name, lb) == 0 && strcmp(a->name + lb, ".rsa") == 0;
}

/* Adds (name, rsa) for cert; returns the stem already there, or NULL when
 * added. *oom on no memory. */
static const struct stem *
nameset_add(struct nameset *s, const char *name, bool rsa, size_t cert, bool *oom)
{
	size_t i;

	*oom = false;
	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct stem *v = calloc(cap, sizeof(*v));

		if (v == NULL) {
			*oom = true;
			return NULL;
		}
		for (size_t j = 0; j < s->cap; j++) {
			if (s->v[j].name == NULL)
				continue;
			i = stem_hash(s->v[j].name, s->v[j].rsa) & (cap - 1);
			while (v[i].name != NULL)
				i = (i + 1) & (cap - 1);
			v[i] = s->v[j];
		}
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	for (i = stem_hash(name, rsa) & (s->cap - 1); s->v[i].name != NULL;
	    i = (i + 1) & (s->cap - 1))
		if (stem_eq(&s->v[i], name, rsa))
			return &s->v[i];
	s->v[i] = (struct stem){ name, rsa, cert };
	s->n++;
	return NULL;
}

/* Parse state beside a cert section: what is resolved at the end. */
struct cert_extra {
	char *ca_name;		/* `ca` value, NULL: the default ca */
	int ca_line;
	char *dns_name;		/* `dns` value, NULL: the only dns section */
	int dns_line;
	int chall_line;		/* of `challenge TYPE` without names */
	enum challenge chall;
	char **over;		/* `challenge TYPE NAME...`: names, and their types */
	enum challenge *over_type;
	int *over_line;
	size_t nover;
	int wild_line;		/* of the first wildcard in `domains` */
};

struct parser {
	struct config *c;
	const char *file;
	int line;
	char *err;
	size_t errlen;
	enum section sec;
	size_t cur;		/* index of the current ca or cert */
	bool indented;		/* the current line starts with white space */
	bool prev_cert_unindented;	/* a ca header right after a cert section */
	int seen[NKEYWORDS];	/* line of a keyword in the current section */
	int global_seen[NKEYWORDS];	/* the same, over every global section */
	bool *ca_after_cert;	/* per ca: its header followed a cert section */
	int *ca_kid_line, *ca_hmac_line;
	struct cert_extra *cx;
	size_t certs_cap;	/* allocated c->certs and cx */
	struct nameset cert_names;	/* cert section names: duplicates in O(1) */
};

/* Copies s into buf (SHOW_BYTES) with control characters as \xNN (a
 * message stays one line, whatever a file or command line holds), cut at
 * a UTF-8 boundary with "...". */
static const char *
show_n(char *buf, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i = 0;

	for (; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t need = c < 0x20 || c == 0x7f ? 4 : 1;
		if (o + need + 4 > cap) {	/* room for "..." and NUL */
			if ((c & 0xc0) == 0x80) {	/* inside a UTF-8 sequence: drop its start */
				while (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
					o--;
				if (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0)
					o--;
			}
			memcpy(buf + o, "...", 4);
			return buf;
		}
		if (need == 1) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

#define SHOW(buf, s) show_n((buf), sizeof(buf), (s))

/* "FILE:LINE: message"; returns -1. */
static int __attribute__((format(printf, 2, 3)))
perr(struct parser *p, const char *fmt, ...)
{
	char msg[CONFIG_ERR_MAX], file[FILE_SHOW_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errbuf_set(p->err, p->errlen, "%s:%d: %s", SHOW(file, p->file), p->line, msg);
	return -1;
}

static int
oom(struct parser *p)
{
	return perr(p, "out of memory");
}

/* ---- small checks ---- */

static bool
valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (k > n - i - 1)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += k + 1;
	}
	return true;
}

static bool
printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

bool
config_section_name_valid(const char *name)
{
	size_t n;

	if (name == NULL || name[0] == '\0' || name[0] == '.')
		return false;
	n = strlen(name);
	if (n > CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
			return false;
	}
	return true;
}

bool
config_cert_name_valid(const char *name, char *why, size_t whylen)
{
	if (name != NULL && strlen(name) > CONFIG_CERT_NAME_MAX) {
		errbuf_set(why, whylen, "longer than %d characters (a certificate's name is "
		    "its file name)", CONFIG_CERT_NAME_MAX);
		return false;
	}
	if (!config_section_name_valid(name)) {
		errbuf_set(why, whylen, "a certificate's name is its file name: use A-Z a-z "
		    "0-9 . _ - (not starting with '.')");
		return false;
	}
	return true;
}

static bool
is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool
config_name_valid(const char *name, char *why, size_t whylen)
{
	size_t n, label = 0, labels = 0;
	bool digits_only = true;

	if (name == NULL || name[0] == '\0') {
		errbuf_set(why, whylen, "empty name");
		return false;
	}
	n = strlen(name);
	if (n > CONFIG_NAME_MAX) {
		errbuf_set(why, whylen, "longer than %d characters", CONFIG_NAME_MAX);
		return false;
	}
	if (strchr(name, '*') != NULL) {
		errbuf_set(why, whylen, "http-01 cannot validate wildcards");
		return false;
	}
	if (is_ip_literal(name))
		return true;
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch == '.' || ch == '\0') {
			if (label == 0) {
				errbuf_set(why, whylen, ch == '\0' ?
				    "no trailing dot" : "empty label");
				return false;
			}
			if (name[i - 1] == '-' || name[i - label] == '-') {
				errbuf_set(why, whylen, "a label starts or ends with '-'");
				return false;
			}
			labels++;
			label = 0;
			continue;
		}
		if (++label > 63) {
			errbuf_set(why, whylen, "a label is longer than 63 characters");
			return false;
		}
		if (ch >= 0x80) {
			errbuf_set(why, whylen, "not ASCII: write an internationalized "
			    "name in punycode (xn--...)");
			return false;
		}
		if (!(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') && ch != '-') {
			if (ch >= 'A' && ch <= 'Z')
				errbuf_set(why, whylen, "upper-case letter '%c'", ch);
			else if (ch > 0x20 && ch < 0x7f)
				errbuf_set(why, whylen, "character '%c' is not allowed "
				    "(a-z, 0-9, '-', '.')", ch);
			else
				errbuf_set(why, whylen, "character 0x%02x is not allowed "
				    "(a-z, 0-9, '-', '.')", ch);
			return false;
		}
		/* digits_only tracks the last label: a numeric TLD is no name */
		if (label == 1)
			digits_only = true;
		if (!(ch >= '0' && ch <= '9'))
			digits_only = false;
	}
	if (labels < 2) {
		errbuf_set(why, whylen, "not a fully qualified name (one label)");
		return false;
	}
	if (digits_only) {
		errbuf_set(why, whylen, "neither a DNS name nor an IP address");
		return false;
	}
	return true;
}

/* A host name in an address: resolved later, checked here. */
static bool
host_name_ok(const char *h, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum(ch) || ch == '-' || ch == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

static bool
port_ok(const char *s)
{
	long v = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 65535)
			return false;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= 65535;
}

/* Splits HOST:PORT or [HOST]:PORT. host points into s; false when the
 * shape is wrong. */
static bool
split_hostport(const char *s, const char **host, size_t *hlen, const char **port)
{
	const char *colon;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return false;
		*host = s + 1;
		*hlen = (size_t)(close - s - 1);
		*port = close + 2;
		return true;
	}
	colon = strrchr(s, ':');
	if (colon == NULL)
		return false;
	*host = s;
	*hlen = (size_t)(colon - s);
	*port = colon + 1;
	return true;
}

/* An address in common/addr.h syntax. unix and numeric addresses go
 * through addr_parse (no I/O); a host name is checked for syntax only. */
static bool
addr_ok(const char *s, char *why, size_t whylen)
{
	const char *hp = s, *host, *port;
	char hbuf[CONFIG_NAME_MAX + 3], aerr[CONFIG_ERR_MAX];
	struct addr a;
	size_t hlen;

	if (strlen(s) > ADDR_BYTES_MAX) {
		errbuf_set(why, whylen, "longer than %d bytes", ADDR_BYTES_MAX);
		return false;
	}
	if (strncmp(hp, "master@", 7) == 0 || strncmp(hp, "unix@", 5) == 0 ||
	    strncmp(hp, "unix:", 5) == 0 || *hp == '/')
		goto parse;
	if (strncmp(hp, "ipv4@", 5) == 0 || strncmp(hp, "ipv6@", 5) == 0)
		hp += 5;
	else if (strncmp(hp, "tcp:", 4) == 0)
		hp += 4;
	if (!split_hostport(hp, &host, &hlen, &port) || hlen == 0 ||
	    hlen >= sizeof(hbuf))
		goto parse;	/* addr_parse names the problem */
	memcpy(hbuf, host, hlen);
	hbuf[hlen] = '\0';
	if (strcmp(hbuf, "*") == 0 || is_ip_literal(hbuf))
		goto parse;
	if (!host_name_ok(host, hlen)) {
		errbuf_set(why, whylen, "not a host name or IP address");
		return false;
	}
	if (!port_ok(port)) {
		errbuf_set(why, whylen, "port must be 1..65535");
		return false;
	}
	return true;
parse:
	if (addr_parse(&a, s, aerr, sizeof(aerr)) < 0) {
		/* addr_parse's reason starts with the quoted value: drop it */
		const char *r = aerr;
		if (aerr[0] == '\'' && strncmp(aerr + 1, s, strlen(s)) == 0 &&
		    strncmp(aerr + 1 + strlen(s), "': ", 3) == 0)
			r = aerr + strlen(s) + 4;
		errbuf_set(why, whylen, "%s", r);
		return false;
	}
	return true;
}

static bool
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true" };
	static const char *const no[] = { "off", "no", "false" };

	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool
parse_num(const char *s, long lo, long hi, long *out)
{
	long v = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > hi)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Optimal string alignment distance, for "did you mean". */
static int
edit_distance(const char *a, const char *b)
{
	int d[SUGGEST_WORD_MAX + 1][SUGGEST_WORD_MAX + 1];
	int n = (int)strlen(a), m = (int)strlen(b);

	if (n > SUGGEST_WORD_MAX || m > SUGGEST_WORD_MAX)
		return 99;
	for (int i = 0; i <= n; i++)
		d[i][0] = i;
	for (int j = 0; j <= m; j++)
		d[0][j] = j;
	for (int i = 1; i <= n; i++) {
		for (int j = 1; j <= m; j++) {
			int cost = tolower((unsigned char)a[i - 1]) != b[j - 1];
			int v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    tolower((unsigned char)a[i - 1]) == b[j - 2] &&
			    tolower((unsigned char)a[i - 2]) == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[n][m];
}

static bool
close_to(const char *word, const char *cand, int *best)
{
	int dist = edit_distance(word, cand);

	if (dist > 2 || dist >= (int)strlen(cand) - 1 || dist >= *best)
		return false;
	*best = dist;
	return true;
}

/* ---- tokenizer ---- */

/* Splits line (len bytes, no LF) into words stored in buf (len + 1
 * bytes). *nwords may exceed LINE_WORDS_MAX: only the first are kept. */
static int
tokenize(struct parser *p, const char *line, size_t len, char *buf,
    char **words, size_t *nwords)
{
	size_t i = 0, o = 0, n = 0;

	*nwords = 0;
	while (i < len) {
		bool inq = false;
		size_t start;

		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len || line[i] == '#')
			break;
		start = o;
		while (i < len) {
			char ch = line[i];

			if (!inq && (ch == ' ' || ch == '\t' || ch == '#'))
				break;
			i++;
			if (ch == '"') {
				inq = !inq;
				continue;
			}
			if (inq && ch == '\\') {
				if (i == len || (line[i] != '"' && line[i] != '\\'))
					return perr(p, "inside quotes only \\\" and \\\\ "
					    "are escapes (write \\\\ for a backslash)");
				ch = line[i++];
			}
			buf[o++] = ch;
		}
		if (inq)
			return perr(p, "unterminated quote");
		buf[o++] = '\0';
		if (n < LINE_WORDS_MAX)
			words[n] = buf + start;
		n++;
	}
	*nwords = n;
	return 0;
}

/* ---- sections ---- */

static const struct keyword *
keyword_find(const char *w, enum section sec)
{
	for (size_t i = 0; i < NKEYWORDS; i++)
		if (keywords[i].sec == sec && strcmp(keywords[i].name, w) == 0)
			return &keywords[i];
	return NULL;
}

static int
unknown_keyword(struct parser *p, const char *w)
{
	const struct keyword *other = NULL, *near = NULL;
	const char *near_section = NULL;
	char s[SHOW_BYTES];
	int best = 3;

	for (size_t i = 0; i < NKEYWORDS; i++)
		if (strcmp(keywords[i].name, w) == 0)
			other = &keywords[i];
	if (other != NULL && p->sec == SEC_NONE)
		return perr(p, "'%s' before any section: put it under `%s`", w,
		    other->sec == SEC_GLOBAL ? "global" :
		    other->sec == SEC_CA ? "ca NAME" : other->sec == SEC_DNS ? "dns NAME" :
		    "cert NAME");
	if (other != NULL)
		return perr(p, "'%s' belongs in a %s section, not in the %s", w,
		    section_word[other->sec], section_where[p->sec]);

	/* this section first, then section headers, then other sections */
	for (size_t i = 0; i < NKEYWORDS; i++)
		if (keywords[i].sec == p->sec && close_to(w, keywords[i].name, &best))
			near = &keywords[i];
	for (int sec = SEC_GLOBAL; sec <= SEC_DNS; sec++)
		if (close_to(w, section_word[sec], &best)) {
			near = NULL;
			near_section = section_word[sec];
		}
	for (size_t i = 0; i < NKEYWORDS; i++)
		if (keywords[i].sec != p->sec && close_to(w, keywords[i].name, &best)) {
			near = &keywords[i];
			near_section = NULL;
		}
	SHOW(s, w);
	if (near != NULL && near->sec == p->sec)
		return perr(p, "unknown keyword '%s' in the %s (did you mean '%s'?)",
		    s, section_where[p->sec], near->name);
	if (near != NULL)
		return perr(p, "unknown keyword '%s' in the %s (did you mean '%s'? "
		    "it belongs in a %s section)", s, section_where[p->sec],
		    near->name, section_word[near->sec]);
	if (near_section != NULL)
		return perr(p, "unknown keyword '%s' (did you mean the section "
		    "header `%s%s`?)", s, near_section,
		    strcmp(near_section, "global") == 0 ? "" : " NAME");
	if (p->sec == SEC_NONE)
		return perr(p, "unknown keyword '%s' before any section (sections "
		    "are `global`, `ca NAME` and `cert NAME`)", s);
	return perr(p, "unknown keyword '%s' in the %s", s, section_where[p->sec]);
}

/* Checks of a section once its last line is read. */
static int
section_end(struct parser *p)
{
	struct config *c = p->c;
	char why[128], s[SHOW_BYTES];

	if (p->sec == SEC_CA) {
		struct config_ca *ca = &c->cas[p->cur];

		if (ca->directory == NULL) {
			p->line = ca->line;
			perr(p, "ca '%s' has no `directory` line: add `directory "
			    "https://...` (the CA's ACME directory URL)%s",
			    SHOW(s, ca->name), p->ca_after_cert[p->cur] ?
			    "; an unindented `ca NAME` line starts a ca section: "
			    "indent it to choose the CA of the cert above" : "");
			return -1;
		}
		if ((ca->eab_kid == NULL) != (ca->eab_hmac_key == NULL)) {
			bool kid = ca->eab_kid != NULL;
			p->line = kid ? p->ca_kid_line[p->cur] : p->ca_hmac_line[p->cur];
			perr(p, "%s without %s: External Account Binding needs both "
			    "(or neither)", kid ? "eab-kid" : "eab-hmac-key",
			    kid ? "eab-hmac-key" : "eab-kid");
			return -1;
		}
	} else if (p->sec == SEC_DNS) {
		struct config_dns *d = &c->dnss[p->cur];
		int here = p->line;

		p->line = d->line;
		if (d->provider == DNS_EXEC && d->command == NULL)
			return perr(p, "dns %s: provider exec needs `command PROGRAM` (run as "
			    "`PROGRAM present|cleanup FQDN VALUE`)", SHOW(s, d->name));
		if (d->provider == DNS_RFC2136 && d->command != NULL)
			return perr(p, "dns %s: `command` is for provider exec: add `provider "
			    "exec` or remove it", SHOW(s, d->name));
		if ((d->tsig_key == NULL) != (d->tsig_secret_file == NULL))
			return perr(p, "dns %s: %s without %s: a TSIG key needs both its name "
			    "and its secret (or neither, for updates allowed by address)",
			    SHOW(s, d->name), d->tsig_key != NULL ? "tsig-key" : "tsig-secret-file",
			    d->tsig_key != NULL ? "tsig-secret-file" : "tsig-key");
		if (d->tsig_algorithm != NULL && d->tsig_key == NULL)
			return perr(p, "dns %s: tsig-algorithm without tsig-key", SHOW(s, d->name));
		p->line = here;
	} else if (p->sec == SEC_CERT) {
		struct config_cert *ce = &c->certs[p->cur];

		if (ce->ndomains == 0) {
			char *d = strdup(ce->name);

			if (d == NULL || (ce->domains = malloc(sizeof(char *))) == NULL) {
				free(d);
				return oom(p);
			}
			for (char *q = d; *q; q++)
				*q = (char)tolower((unsigned char)*q);
			ce->domains[ce->ndomains++] = d;
			if (!config_name_valid(d, why, sizeof(why))) {
				p->line = ce->line;
				perr(p, "cert '%s' has no `domains` line and its name is "
				    "no domain: %s; add `domains NAME...`",
				    SHOW(s, ce->name), why);
				return -1;
			}
		}
	}
	return 0;
}

static int
section_start(struct parser *p, const char *w, char **v, size_t n)
{
	struct config *c = p->c;
	char s[SHOW_BYTES];
	bool after_cert = p->sec == SEC_CERT;

	if (section_end(p) < 0)
		return -1;
	memset(p->seen, 0, sizeof(p->seen));
	if (strcmp(w, "global") == 0) {
		if (n != 0)
			return perr(p, "`global` takes no name");
		p->sec = SEC_GLOBAL;
		return 0;
	}
	if (n == 0)
		return perr(p, "`%s` needs a name: `%s NAME`", w, w);
	if (n > 1)
		return perr(p, "`%s` takes one name: `%s NAME`", w, w);
	if (!config_section_name_valid(v[0]))
		return perr(p, "%s name '%s': use 1..%d of A-Z a-z 0-9 . _ - "
		    "(not starting with '.')", w, SHOW(s, v[0]), CONFIG_NAME_MAX);
	if (strcmp(w, "dns") == 0) {
		struct config_dns *d;
		void *q;

		for (size_t i = 0; i < c->ndnss; i++)
			if (strcmp(c->dnss[i].name, v[0]) == 0)
				return perr(p, "dns '%s' is already defined at line %d%s",
				    SHOW(s, v[0]), c->dnss[i].line, after_cert ?
				    " (an unindented `dns NAME` line starts a dns section: "
				    "indent it to choose the dns section of the cert above)" : "");
		if ((q = realloc(c->dnss, (c->ndnss + 1) * sizeof(*c->dnss))) == NULL)
			return oom(p);
		c->dnss = q;
		d = &c->dnss[c->ndnss];
		memset(d, 0, sizeof(*d));
		d->ttl = 60;
		d->propagation_timeout = 300;
		d->line = p->line;
		p->cur = c->ndnss++;
		p->sec = SEC_DNS;
		if ((d->name = strdup(v[0])) == NULL)
			return oom(p);
		return 0;
	}
	if (strcmp(w, "ca") == 0) {
		struct config_ca *ca;
		void *q;

		for (size_t i = 0; i < c->ncas; i++)
			if (strcmp(c->cas[i].name, v[0]) == 0)
				return perr(p, "ca '%s' is already defined at line %d%s",
				    SHOW(s, v[0]), c->cas[i].line, after_cert ?
				    " (an unindented `ca NAME` line starts a ca section: "
				    "indent it to choose the CA of the cert above)" : "");
		if ((q = realloc(c->cas, (c->ncas + 1) * sizeof(*c->cas))) == NULL)
			return oom(p);
		c->cas = q;
		if ((q = realloc(p->ca_after_cert, (c->ncas + 1) * sizeof(bool))) == NULL)
			return oom(p);
		p->ca_after_cert = q;
		if ((q = realloc(p->ca_kid_line, (c->ncas + 1) * sizeof(int))) == NULL)
			return oom(p);
		p->ca_kid_line = q;
		if ((q = realloc(p->ca_hmac_line, (c->ncas + 1) * sizeof(int))) == NULL)
			return oom(p);
		p->ca_hmac_line = q;
		ca = &c->cas[c->ncas];
		memset(ca, 0, sizeof(*ca));
		p->ca_after_cert[c->ncas] = after_cert;
		p->ca_kid_line[c->ncas] = p->ca_hmac_line[c->ncas] = 0;
		ca->account_key = KEYTYPE_EC_P256;
		ca->line = p->line;
		p->cur = c->ncas++;
		p->sec = SEC_CA;
		if ((ca->name = strdup(v[0])) == NULL)
			return oom(p);
		return 0;
	} else {
		struct config_cert *ce;
		void *q;

		const struct stem *dup;
		char why[128];
		bool nomem;

		if (!config_cert_name_valid(v[0], why, sizeof(why)))
			return perr(p, "cert name '%s': %s", SHOW(s, v[0]), why);
		/* geometric growth: 80,000 sections must not copy the array each time */
		if (c->ncerts == p->certs_cap) {
			size_t cap = p->certs_cap ? 2 * p->certs_cap : 16;

			if ((q = realloc(c->certs, cap * sizeof(*c->certs))) == NULL)
				return oom(p);
			c->certs = q;
			if ((q = realloc(p->cx, cap * sizeof(*p->cx))) == NULL)
				return oom(p);
			p->cx = q;
			p->certs_cap = cap;
		}
		ce = &c->certs[c->ncerts];
		memset(ce, 0, sizeof(*ce));
		memset(&p->cx[c->ncerts], 0, sizeof(*p->cx));
		if ((ce->name = strdup(v[0])) == NULL)
			return oom(p);
		dup = nameset_add(&p->cert_names, ce->name, false, c->ncerts, &nomem);
		if (nomem || dup != NULL) {
			free(ce->name);
			if (nomem)
				return oom(p);
			return perr(p, "cert '%s' is already defined at line %d",
			    SHOW(s, v[0]), c->certs[dup->cert].line);
		}
		ce->keys[0] = KEYTYPE_EC_P256;
		ce->nkeys = 1;
		ce->preflight = true;
		ce->line = p->line;
		p->cur = c->ncerts++;
		p->sec = SEC_CERT;
		return 0;
	}
}

/* ---- values ---- */

static int
strv_push(struct parser *p, char ***v, size_t *n, const char *s)
{
	char **q, *d;

	if ((d = strdup(s)) == NULL)
		return oom(p);
	if ((q = realloc(*v, (*n + 1) * sizeof(*q))) == NULL) {
		free(d);
		return oom(p);
	}
	*v = q;
	q[(*n)++] = d;
	return 0;
}

static int
set_str(struct parser *p, char **field, const char *s)
{
	free(*field);
	if ((*field = strdup(s)) == NULL)
		return oom(p);
	return 0;
}

static int
value_url(struct parser *p, const struct keyword *k, char **field, const char *v)
{
	const char *host;
	char s[SHOW_BYTES];

	if (strlen(v) > URL_BYTES_MAX)
		return perr(p, "%s: URL longer than %d bytes", k->name, URL_BYTES_MAX);
	if (!printable_ascii(v))
		return perr(p, "%s '%s': a URL is printable ASCII without spaces "
		    "(percent-encode the rest)", k->name, SHOW(s, v));
	if (strncasecmp(v, "https://", 8) != 0)
		return perr(p, "%s '%s': the ACME directory must be an https:// URL "
		    "(RFC 8555 requires HTTPS)", k->name, SHOW(s, v));
	host = v + 8;
	if (*host == '\0' || *host == '/' || *host == '?' || *host == '#')
		return perr(p, "%s '%s': no host in the URL", k->name, SHOW(s, v));
	return set_str(p, field, v);
}

static int
value_contact(struct parser *p, struct config_ca *ca, const char *v)
{
	const char *a = v + 7;
	char s[SHOW_BYTES];

	if (ca->ncontact >= CONTACTS_MAX)
		return perr(p, "more than %d contacts", CONTACTS_MAX);
	if (strncasecmp(v, "mailto:", 7) != 0) {
		if (strchr(v, '@') != NULL && strchr(v, ':') == NULL)
			return perr(p, "contact '%s': write it as mailto:%s",
			    SHOW(s, v), s);
		return perr(p, "contact '%s': use a mailto: URL "
		    "(contact mailto:ops@example.com)", SHOW(s, v));
	}
	if (!printable_ascii(v) || strchr(a, '@') == NULL || a[0] == '@' ||
	    strchr(a, ',') != NULL || strchr(a, '?') != NULL)
		return perr(p, "contact '%s': one e-mail address per mailto: URL "
		    "(contact mailto:ops@example.com)", SHOW(s, v));
	for (size_t i = 0; i < ca->ncontact; i++)
		if (strcasecmp(ca->contact[i], v) == 0)
			return perr(p, "contact '%s' is listed twice", SHOW(s, v));
	return strv_push(p, &ca->contact, &ca->ncontact, v);
}

static int
value_hmac(struct parser *p, char **field, const char *v)
{
	size_t n = strlen(v);

	/* the value is a secret: never quoted in a message */
	while (n > 0 && v[n - 1] == '=' && strlen(v) - n < 2)
		n--;
	if (n == 0)
		return perr(p, "eab-hmac-key: empty key");
	if (n > HMAC_CHARS_MAX)
		return perr(p, "eab-hmac-key: longer than %d characters", HMAC_CHARS_MAX);
	if (!b64url_alphabet(v, n))
		return perr(p, "eab-hmac-key: not base64url (A-Z a-z 0-9 - _; a "
		    "base64 '+' is '-' and '/' is '_')");
	/* The length is checked when the key is used (jws_eab): DESIGN.md's
	 * example writes the placeholder `BASE64URL`, and `hacme check` of
	 * that documented example must pass. */
	free(*field);
	if ((*field = strndup(v, n)) == NULL)
		return oom(p);
	return 0;
}

static const char keytype_hint[] =
    "use ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096";

static int
value_keys(struct parser *p, struct config_cert *ce, char **v, size_t n)
{
	enum keytype t[CONFIG_KEYS_MAX];
	char s[SHOW_BYTES];

	for (size_t i = 0; i < n; i++)
		if ((t[i] = keytype_parse(v[i])) == KEYTYPE_NONE)
			return perr(p, "key '%s': %s", SHOW(s, v[i]), keytype_hint);
	if (n == 2) {
		if (keytype_is_rsa(t[0]) == keytype_is_rsa(t[1]))
			return perr(p, "key '%s %s': a dual certificate is one ECDSA "
			    "and one RSA key (key ecdsa-p256 rsa2048)", v[0], v[1]);
		if (keytype_is_rsa(t[0])) {	/* ECDSA first: the main one */
			enum keytype x = t[0];
			t[0] = t[1];
			t[1] = x;
		}
	}
	memcpy(ce->keys, t, n * sizeof(t[0]));
	ce->nkeys = n;
	return 0;
}

static void
strv_free(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
challenge_parse(const char *s, enum challenge *out)
{
	for (int i = 0; i < CHALL_COUNT; i++)
		if (strcmp(s, challenge_names[i]) == 0) {
			*out = (enum challenge)i;
			return true;
		}
	return false;
}

const char *
config_challenge_name(enum challenge c)
{
	return (unsigned)c < CHALL_COUNT ? challenge_names[c] : "?";
}

enum challenge
config_cert_challenge(const struct config_cert *ce, size_t i)
{
	return ce->challenges != NULL && i < ce->ndomains ? ce->challenges[i] : CHALL_HTTP01;
}

/* `challenge TYPE [NAME...]`: the cert's type, or these names'. */
static int
value_challenge(struct parser *p, struct cert_extra *x, char **v, size_t n)
{
	enum challenge t;
	char s[SHOW_BYTES];

	if (!challenge_parse(v[0], &t))
		return perr(p, "challenge '%s': use http-01, dns-01 or dns-persist-01",
		    SHOW(s, v[0]));
	if (n == 1) {
		if (x->chall_line != 0)
			return perr(p, "'challenge' is already set at line %d (a second "
			    "`challenge TYPE NAME...` line names the names it is for)",
			    x->chall_line);
		x->chall_line = p->line;
		x->chall = t;
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		void *q;
		char *d;
		if ((q = realloc(x->over, (x->nover + 1) * sizeof(*x->over))) == NULL)
			return oom(p);
		x->over = q;
		if ((q = realloc(x->over_type, (x->nover + 1) * sizeof(*x->over_type))) == NULL)
			return oom(p);
		x->over_type = q;
		if ((q = realloc(x->over_line, (x->nover + 1) * sizeof(int))) == NULL)
			return oom(p);
		x->over_line = q;
		if ((d = strdup(v[i])) == NULL)
			return oom(p);
		for (char *c = d; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		x->over[x->nover] = d;
		x->over_type[x->nover] = t;
		x->over_line[x->nover++] = p->line;
	}
	return 0;
}

static int
value_domain(struct parser *p, struct config_cert *ce, const char *v)
{
	char d[CONFIG_NAME_MAX + 1], why[128], s[SHOW_BYTES];
	size_t n = strlen(v);
	bool wild = n > 2 && v[0] == '*' && v[1] == '.';

	if (ce->ndomains >= CONFIG_DOMAINS_MAX)
		return perr(p, "more than %d domains in one certificate (the CA's "
		    "limit): split them into several cert sections",
		    CONFIG_DOMAINS_MAX);
	if (n > CONFIG_NAME_MAX)
		return perr(p, "'%s': longer than %d characters", SHOW(s, v),
		    CONFIG_NAME_MAX);
	for (size_t i = 0; i <= n; i++)
		d[i] = (char)((v[i] >= 'A' && v[i] <= 'Z') ? v[i] - 'A' + 'a' : v[i]);
	if (wild && strchr(d + 2, '*') == NULL && config_name_valid(d + 2, why, sizeof(why))) {
		if (is_ip_literal(d + 2))
			return perr(p, "'%s': a wildcard is '*.' and a DNS name", SHOW(s, v));
		if (p->cx[p->cur].wild_line == 0)
			p->cx[p->cur].wild_line = p->line;
	} else if (wild && strchr(d + 2, '*') != NULL) {
		return perr(p, "'%s': a wildcard is '*.' and a DNS name, only one '*'",
		    SHOW(s, v));
	} else if (wild) {
		return perr(p, "'%s': %s", SHOW(s, v), why);
	} else if (strchr(d, '*') != NULL) {
		return perr(p, "'%s': a wildcard is '*.' followed by a name (*.example.com)",
		    SHOW(s, v));
	} else if (!config_name_valid(d, why, sizeof(why))) {
		return perr(p, "'%s': %s", SHOW(s, v), why);
	}
	for (size_t i = 0; i < ce->ndomains; i++)
		if (strcmp(ce->domains[i], d) == 0)
			return perr(p, "'%s' is listed twice", SHOW(s, d));
	return strv_push(p, &ce->domains, &ce->ndomains, d);
}

static int
value_check_len(struct parser *p, const struct keyword *k, const char *v, size_t max)
{
	if (v[0] == '\0')
		return perr(p, "%s: empty value: `%s`", k->name, k->usage);
	if (strlen(v) > max)
		return perr(p, "%s: value longer than %zu bytes", k->name, max);
	return 0;
}

/* Applies one keyword line. */
static int
keyword_apply(struct parser *p, const struct keyword *k, char **v, size_t n)
{
	struct config *c = p->c;
	char *base, why[CONFIG_ERR_MAX / 2], s[SHOW_BYTES];
	char **str;
	long num;
	enum log_level lvl;

	if (p->sec == SEC_GLOBAL)
		base = (char *)c;
	else if (p->sec == SEC_CA)
		base = (char *)&c->cas[p->cur];
	else if (p->sec == SEC_DNS)
		base = (char *)&c->dnss[p->cur];
	else
		base = (char *)&c->certs[p->cur];
	str = (char **)(void *)(base + k->off);

	for (size_t i = 0; i < n; i++)
		if (k->kind != V_HMAC && v[i][0] == '\0')
			return perr(p, "%s: empty value: `%s`", k->name, k->usage);

	switch (k->kind) {
	case V_PATH:
		if (value_check_len(p, k, v[0], PATH_BYTES_MAX) < 0)
			return -1;
		return set_str(p, str, v[0]);
	case V_TEXT:
		if (value_check_len(p, k, v[0], TEXT_BYTES_MAX) < 0)
			return -1;
		return set_str(p, str, v[0]);
	case V_CHAIN:
		if (value_check_len(p, k, v[0], WORD_BYTES_MAX) < 0)
			return -1;
		return set_str(p, str, v[0]);
	case V_WORD:
		if (value_check_len(p, k, v[0], WORD_BYTES_MAX) < 0)
			return -1;
		if (!printable_ascii(v[0]))
			return perr(p, "%s '%s': printable ASCII without spaces",
			    k->name, SHOW(s, v[0]));
		return set_str(p, str, v[0]);
	case V_ADDR:
	case V_ADDRS:
		if (!addr_ok(v[0], why, sizeof(why)))
			return perr(p, "%s '%s': %s (addresses: unix@PATH, HOST:PORT, "
			    "ipv4@HOST:PORT, ipv6@[HOST]:PORT)", k->name,
			    SHOW(s, v[0]), why);
		if (k->kind == V_ADDR)
			return set_str(p, str, v[0]);
		if (*(size_t *)(void *)(base + k->noff) >= ADDRS_MAX)
			return perr(p, "more than %d `%s` lines", ADDRS_MAX, k->name);
		return strv_push(p, (char ***)(void *)(base + k->off),
		    (size_t *)(void *)(base + k->noff), v[0]);
	case V_HOSTPORT: {
		const char *host, *port;
		char h[CONFIG_NAME_MAX + 1];
		size_t hlen;

		if (!split_hostport(v[0], &host, &hlen, &port) || hlen == 0 ||
		    hlen > CONFIG_NAME_MAX)
			return perr(p, "%s '%s': expected HOST:PORT or [IPV6]:PORT",
			    k->name, SHOW(s, v[0]));
		memcpy(h, host, hlen);
		h[hlen] = '\0';
		if (!is_ip_literal(h) && !host_name_ok(h, hlen))
			return perr(p, "%s '%s': not a host name or IP address",
			    k->name, SHOW(s, v[0]));
		if (!port_ok(port))
			return perr(p, "%s '%s': port must be 1..65535", k->name,
			    SHOW(s, v[0]));
		return set_str(p, str, v[0]);
	}
	case V_BOOL:
		if (!parse_bool(v[0], (bool *)(void *)(base + k->off)))
			return perr(p, "%s '%s': use on or off", k->name, SHOW(s, v[0]));
		return 0;
	case V_UINT:
	case V_INT:
		if (!parse_num(v[0], k->lo, k->hi, &num))
			return perr(p, "%s '%s': use a number from %ld to %ld",
			    k->name, SHOW(s, v[0]), k->lo, k->hi);
		if (k->kind == V_UINT)
			*(unsigned *)(void *)(base + k->off) = (unsigned)num;
		else
			*(int *)(void *)(base + k->off) = (int)num;
		return 0;
	case V_LOGLEVEL:
		if (!log_parse_level(v[0], &lvl))
			return perr(p, "log-level '%s': use error, warning, notice, "
			    "info or debug", SHOW(s, v[0]));
		return set_str(p, str, v[0]);
	case V_URL:
		return value_url(p, k, str, v[0]);
	case V_CONTACTS:
		for (size_t i = 0; i < n; i++)
			if (value_contact(p, &c->cas[p->cur], v[i]) < 0)
				return -1;
		return 0;
	case V_KEYTYPE: {
		enum keytype t = keytype_parse(v[0]);

		if (t == KEYTYPE_NONE)
			return perr(p, "%s '%s': %s", k->name, SHOW(s, v[0]),
			    keytype_hint);
		*(enum keytype *)(void *)(base + k->off) = t;
		return 0;
	}
	case V_KEYS:
		return value_keys(p, &c->certs[p->cur], v, n);
	case V_HMAC:
		p->ca_hmac_line[p->cur] = p->line;
		return value_hmac(p, str, v[0]);
	case V_DOMAINS:
		for (size_t i = 0; i < n; i++)
			if (value_domain(p, &c->certs[p->cur], v[i]) < 0)
				return -1;
		return 0;
	case V_CAREF:
		if (!config_section_name_valid(v[0]))
			return perr(p, "ca '%s': not a ca section name", SHOW(s, v[0]));
		p->cx[p->cur].ca_line = p->line;
		return set_str(p, &p->cx[p->cur].ca_name, v[0]);
	case V_DNSREF:
		if (!config_section_name_valid(v[0]))
			return perr(p, "dns '%s': not a dns section name", SHOW(s, v[0]));
		p->cx[p->cur].dns_line = p->line;
		return set_str(p, &p->cx[p->cur].dns_name, v[0]);
	case V_CHALLENGE:
		return value_challenge(p, &p->cx[p->cur], v, n);
	case V_PROVIDER:
		if (strcmp(v[0], "rfc2136") == 0)
			c->dnss[p->cur].provider = DNS_RFC2136;
		else if (strcmp(v[0], "exec") == 0)
			c->dnss[p->cur].provider = DNS_EXEC;
		else
			return perr(p, "provider '%s': use rfc2136 (DNS UPDATE) or exec (a "
			    "program run as `PROGRAM present|cleanup FQDN VALUE`)",
			    SHOW(s, v[0]));
		return 0;
	case V_TSIGALG:
		if (strcmp(v[0], "hmac-sha256") != 0 && strcmp(v[0], "hmac-sha384") != 0 &&
		    strcmp(v[0], "hmac-sha512") != 0)
			return perr(p, "tsig-algorithm '%s': use hmac-sha256, hmac-sha384 or "
			    "hmac-sha512", SHOW(s, v[0]));
		return set_str(p, str, v[0]);
	case V_DNSSERVER: {
		const char *host = v[0], *port = NULL;
		char h[CONFIG_NAME_MAX + 1];
		size_t hlen = strlen(v[0]);

		if (strchr(v[0], ':') != NULL && !is_ip_literal(v[0]) &&
		    !split_hostport(v[0], &host, &hlen, &port))
			return perr(p, "server '%s': expected HOST, HOST:PORT or [IPV6]:PORT",
			    SHOW(s, v[0]));
		if (hlen == 0 || hlen > CONFIG_NAME_MAX)
			return perr(p, "server '%s': no host", SHOW(s, v[0]));
		memcpy(h, host, hlen);
		h[hlen] = '\0';
		if (!is_ip_literal(h) && !host_name_ok(h, hlen))
			return perr(p, "server '%s': not a host name or IP address", SHOW(s, v[0]));
		if (port != NULL && !port_ok(port))
			return perr(p, "server '%s': port must be 1..65535", SHOW(s, v[0]));
		return set_str(p, str, v[0]);
	}
	case V_ZONE: {
		char z[CONFIG_NAME_MAX + 2];
		size_t zl = strlen(v[0]);

		if (zl > CONFIG_NAME_MAX)
			return perr(p, "zone: longer than %d characters", CONFIG_NAME_MAX);
		for (size_t i = 0; i <= zl; i++)
			z[i] = (char)tolower((unsigned char)v[0][i]);
		if (zl > 1 && z[zl - 1] == '.')
			z[zl - 1] = '\0';
		if (!host_name_ok(z, strlen(z)))
			return perr(p, "zone '%s': not a DNS name", SHOW(s, v[0]));
		return set_str(p, str, z);
	}
	}
	return 0;
}

static int
keyword_line(struct parser *p, char **w, size_t nw)
{
	const struct keyword *k = keyword_find(w[0], p->sec);
	int *seen;
	size_t n = nw - 1, idx;

	if (p->sec == SEC_NONE || k == NULL)
		return unknown_keyword(p, w[0]);
	idx = (size_t)(k - keywords);
	seen = p->sec == SEC_GLOBAL ? p->global_seen : p->seen;
	if (!k->repeat && seen[idx] != 0)
		return perr(p, "'%s' is already set at line %d (it takes one line)",
		    k->name, seen[idx]);
	if (n < k->min)
		return perr(p, "'%s' needs a value: `%s`", k->name, k->usage);
	if (n > k->max) {
		if (k->max == 1)
			return perr(p, "'%s' takes one value: `%s` (quote a value "
			    "with spaces)", k->name, k->usage);
		return perr(p, "'%s' takes at most %u values: `%s`", k->name,
		    k->max, k->usage);
	}
	seen[idx] = p->line;
	if (strcmp(k->name, "eab-kid") == 0)
		p->ca_kid_line[p->cur] = p->line;
	if (strcmp(k->name, "store") == 0) {
		struct storeurl u;
		char why[CONFIG_ERR_MAX / 2];
		int rc = storeurl_parse(w[1], &u, why, sizeof why);
		explicit_bzero(&u, sizeof u);
		if (rc < 0)
			return perr(p, "%s", why);
	}
	return keyword_apply(p, k, w + 1, n);
}

/* One line: checked, split, applied. */
static int
parse_line(struct parser *p, const char *line, size_t len)
{
	char buf[LINE_BYTES_MAX + 1];
	char *words[LINE_WORDS_MAX];
	size_t nw;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > LINE_BYTES_MAX)
		return perr(p, "line longer than %d bytes", LINE_BYTES_MAX);
	if (memchr(line, '\0', len) != NULL)
		return perr(p, "NUL byte in the line");
	if (!valid_utf8((const unsigned char *)line, len))
		return perr(p, "not valid UTF-8");
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return perr(p, "control character 0x%02x in the line", ch);
	}
	if (tokenize(p, line, len, buf, words, &nw) < 0)
		return -1;
	if (nw == 0)
		return 0;
	if (nw > LINE_WORDS_MAX) {
		const struct keyword *k = keyword_find(words[0], p->sec);
		if (k != NULL)
			return perr(p, "'%s' takes at most %u values: `%s`", k->name,
			    k->max, k->usage);
		return perr(p, "more than %d words on one line", LINE_WORDS_MAX);
	}
	p->indented = line[0] == ' ' || line[0] == '\t';
	if (strcmp(words[0], "global") == 0 || strcmp(words[0], "cert") == 0 ||
	    ((strcmp(words[0], "ca") == 0 || strcmp(words[0], "dns") == 0) &&
	    !(p->sec == SEC_CERT && p->indented)))
		return section_start(p, words[0], words + 1, nw - 1);
	return keyword_line(p, words, nw);
}

/* A path that HAProxy commands and crt-list lines carry unquoted. */
static int
path_for_haproxy(struct parser *p, const char *kw, const char *path)
{
	const struct keyword *k = keyword_find(kw, SEC_GLOBAL);
	const char *bad = strpbrk(path, " \t#[;\\\"'");
	char s[SHOW_BYTES];
	int line = k != NULL ? p->global_seen[k - keywords] : p->line;

	if (bad == NULL)
		return 0;
	p->line = line;
	return perr(p, "%s '%s': HAProxy's runtime API and crt-list lines cannot hold "
	    "the character '%c' in a path: choose a path without blanks, '#', '[', ';', "
	    "'\\' or quotes", kw, SHOW(s, path), *bad);
}

/* Each name's challenge, the dns section, and what a wildcard needs. */
static int
resolve_challenges(struct parser *p, struct config_cert *ce, struct cert_extra *x)
{
	struct config *c = p->c;
	char s[SHOW_BYTES];
	bool dns01 = false;

	if ((ce->challenges = calloc(ce->ndomains + 1, sizeof(*ce->challenges))) == NULL)
		return oom(p);
	for (size_t i = 0; i < ce->ndomains; i++)
		ce->challenges[i] = x->chall;
	for (size_t k = 0; k < x->nover; k++) {
		size_t i;
		for (i = 0; i < ce->ndomains; i++)
			if (strcmp(ce->domains[i], x->over[k]) == 0)
				break;
		if (i == ce->ndomains) {
			p->line = x->over_line[k];
			return perr(p, "challenge: '%s' is not in this cert's `domains`",
			    SHOW(s, x->over[k]));
		}
		ce->challenges[i] = x->over_type[k];
	}
	for (size_t i = 0; i < ce->ndomains; i++) {
		dns01 |= ce->challenges[i] == CHALL_DNS01;
		if (ce->domains[i][0] == '*' && ce->challenges[i] == CHALL_HTTP01) {
			p->line = x->wild_line != 0 ? x->wild_line : ce->line;
			return perr(p, "'%s': http-01 cannot validate wildcards: add `challenge "
			    "dns-01` (with `dns NAME`) or `challenge dns-persist-01` to cert %s",
			    SHOW(s, ce->domains[i]), ce->name);
		}
	}
	if (x->dns_name != NULL) {
		if ((ce->dns = config_find_dns(c, x->dns_name)) == NULL) {
			p->line = x->dns_line;
			return perr(p, "no dns section named '%s'", SHOW(s, x->dns_name));
		}
	} else if (dns01 && c->ndnss == 1) {
		ce->dns = &c->dnss[0];
	} else if (dns01) {
		p->line = x->chall_line != 0 ? x->chall_line : ce->line;
		return perr(p, "cert %s: dns-01 needs a dns section: add `dns NAME` (%s)",
		    SHOW(s, ce->name), c->ndnss == 0 ? "and a `dns NAME` section with its "
		    "provider" : "several dns sections exist");
	}
	return 0;
}

/* After the last line: what needs the whole file. */
static int
resolve(struct parser *p)
{
	struct config *c = p->c;
	char s[SHOW_BYTES];

	if (section_end(p) < 0)
		return -1;
	if (c->ncas == 0)
		return perr(p, "no ca section: add `ca NAME` with a `directory` line");
	if (c->store != NULL && c->store_key_file == NULL) {
		p->line = p->global_seen[keyword_find("store", SEC_GLOBAL) - keywords];
		return perr(p, "store without store-key-file: private keys go to the store only "
		    "sealed; add `store-key-file FILE` (`openssl rand -hex 32`, the same on every node)");
	}
	/* the default cert-dir (<state-dir>/haproxy) is checked with the live checks */
	if ((c->cert_dir != NULL && path_for_haproxy(p, "cert-dir", c->cert_dir) < 0) ||
	    (c->crt_list != NULL && path_for_haproxy(p, "crt-list", c->crt_list) < 0))
		return -1;
	/* two sections must never write the same file: `cert a` with two keys
	 * writes a.pem and a.rsa.pem, `cert a.rsa` writes a.rsa.pem */
	for (size_t i = 0; i < c->ncerts; i++) {
		const struct config_cert *ce = &c->certs[i], *other;
		const struct stem *dup;
		bool nomem;

		if (ce->nkeys < 2)
			continue;
		dup = nameset_add(&p->cert_names, ce->name, true, i, &nomem);
		if (nomem)
			return oom(p);
		if (dup == NULL)
			continue;
		other = &c->certs[dup->cert];
		p->line = ce->line > other->line ? ce->line : other->line;
		return perr(p, "cert '%s' (line %d) and the RSA half of cert '%s' (line %d, "
		    "two keys) would both write %s.rsa.pem: rename cert '%s'", other->name,
		    other->line, ce->name, ce->line, ce->name, other->name);
	}
	for (size_t i = 0; i < c->ncerts; i++) {
		struct config_cert *ce = &c->certs[i];
		const char *want = p->cx[i].ca_name;

		if (want == NULL) {
			if (c->ncas > 1) {
				p->line = ce->line;
				return perr(p, "several ca sections: add `ca NAME` to "
				    "cert %s", SHOW(s, ce->name));
			}
			ce->ca = &c->cas[0];
			continue;
		}
		ce->ca = config_find_ca(c, want);
		if (ce->ca == NULL) {
			p->line = p->cx[i].ca_line;
			return perr(p, "no ca section named '%s'", SHOW(s, want));
		}
	}
	for (size_t i = 0; i < c->ncerts; i++)
		if (resolve_challenges(p, &c->certs[i], &p->cx[i]) < 0)
			return -1;
	return 0;
}

static int
set_defaults(struct parser *p)
{
	struct config *c = p->c;

	if ((c->file = strdup(p->file)) == NULL ||
	    (c->state_dir = strdup("/var/lib/hacme")) == NULL ||
	    (c->spoa_listen = strdup("127.0.0.1:12345")) == NULL)
		return oom(p);
	c->concurrency = 32;
	c->preflight_port = 80;
	c->order_timeout = 600;
	return 0;
}

int
config_parse(struct config *c, const char *file, const char *text, size_t len,
    char *err, size_t errlen)
{
	struct parser p;
	const char *s, *end;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	memset(&p, 0, sizeof(p));
	p.c = c;
	p.file = file != NULL ? file : "(config)";
	p.err = err;
	p.errlen = errlen;
	if (set_defaults(&p) < 0)
		goto out;
	if (text == NULL)
		text = "", len = 0;
	s = text;
	end = text + len;
	if (len > CONFIG_FILE_MAX) {
		errbuf_set(err, errlen, "%s: larger than %d bytes", p.file, CONFIG_FILE_MAX);
		goto out;
	}
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;	/* a UTF-8 byte order mark */
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);

		p.line++;
		if (parse_line(&p, s, n) < 0)
			goto out;
		s += n + (nl != NULL);
	}
	if (p.line == 0)
		p.line = 1;
	if (resolve(&p) < 0)
		goto out;
	rc = 0;
out:
	if (p.cx != NULL)
		for (size_t i = 0; i < c->ncerts; i++) {
			free(p.cx[i].ca_name);
			free(p.cx[i].dns_name);
			strv_free(p.cx[i].over, p.cx[i].nover);
			free(p.cx[i].over_type);
			free(p.cx[i].over_line);
		}
	free(p.cx);
	free(p.ca_after_cert);
	free(p.ca_kid_line);
	free(p.ca_hmac_line);
	free(p.cert_names.v);
	if (rc < 0)
		config_free(c);
	return rc;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	char *text = NULL, file[FILE_SHOW_BYTES];
	size_t len;
	int rc;

	memset(c, 0, sizeof(*c));
	if (path == NULL) {
		errbuf_set(err, errlen, "no config file given");
		return -1;
	}
	if (file_read(path, CONFIG_FILE_MAX, &text, &len) < 0) {
		if (errno == EFBIG)
			errbuf_set(err, errlen, "%s: larger than %d bytes",
			    SHOW(file, path), CONFIG_FILE_MAX);
		else if (errno == EINVAL)
			errbuf_set(err, errlen, "%s: not a regular file", SHOW(file, path));
		else
			errbuf_set(err, errlen, "%s: %s", SHOW(file, path), strerror(errno));
		return -1;
	}
	rc = config_parse(c, path, text, len, err, errlen);
	free(text);
	return rc;
}


static void
cert_fini(struct config_cert *ce)
{
	free(ce->name);
	strv_free(ce->domains, ce->ndomains);
	free(ce->profile);
	free(ce->preferred_chain);
	free(ce->challenges);
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->file);
	free(c->state_dir);
	strv_free(c->runtime_apis, c->nruntime_apis);
	free(c->crt_list);
	free(c->notify_command);
	free(c->cert_dir);
	strv_free(c->tls_checks, c->ntls_checks);
	strv_free(c->agents, c->nagents);
	free(c->spoa_listen);
	free(c->preflight_connect);
	free(c->metrics_listen);
	free(c->reload_command);
	if (c->store != NULL)
		explicit_bzero(c->store, strlen(c->store));	/* may hold a password */
	free(c->store);
	free(c->store_password_file);
	free(c->store_key_file);
	free(c->node_name);
	free(c->log_level);
	for (size_t i = 0; i < c->ncas; i++) {
		struct config_ca *ca = &c->cas[i];

		free(ca->name);
		free(ca->directory);
		strv_free(ca->contact, ca->ncontact);
		free(ca->ca_bundle);
		free(ca->eab_kid);
		if (ca->eab_hmac_key != NULL) {
			explicit_bzero(ca->eab_hmac_key, strlen(ca->eab_hmac_key));
			free(ca->eab_hmac_key);
		}
	}
	free(c->cas);
	for (size_t i = 0; i < c->ndnss; i++) {
		struct config_dns *d = &c->dnss[i];
		free(d->name);
		free(d->server);
		free(d->zone);
		free(d->tsig_key);
		free(d->tsig_algorithm);
		free(d->tsig_secret_file);
		free(d->command);
	}
	free(c->dnss);
	for (size_t i = 0; i < c->ncerts; i++)
		cert_fini(&c->certs[i]);
	free(c->certs);
	for (size_t i = 0; i < c->nimplicit; i++) {
		cert_fini(c->implicit[i]);
		free(c->implicit[i]);
	}
	free(c->implicit);
	memset(c, 0, sizeof(*c));
}

const struct config_cert *
config_find_cert(const struct config *c, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < c->ncerts; i++)
		if (strcmp(c->certs[i].name, name) == 0)
			return &c->certs[i];
	return NULL;
}

const struct config_ca *
config_find_ca(const struct config *c, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < c->ncas; i++)
		if (strcmp(c->cas[i].name, name) == 0)
			return &c->cas[i];
	return NULL;
}

const struct config_dns *
config_find_dns(const struct config *c, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < c->ndnss; i++)
		if (strcmp(c->dnss[i].name, name) == 0)
			return &c->dnss[i];
	return NULL;
}

const struct config_cert *
config_cert_for_name(struct config *c, const char *name, char *err, size_t errlen)
{
	const struct config_cert *found;
	struct config_cert *ce = NULL, **q;
	char d[CONFIG_NAME_MAX + 1], why[128], s[SHOW_BYTES];
	size_t n;

	if (name == NULL || name[0] == '\0') {
		errbuf_set(err, errlen, "empty certificate name");
		return NULL;
	}
	if ((found = config_find_cert(c, name)) != NULL)
		return found;
	n = strlen(name);
	if (n > CONFIG_NAME_MAX) {
		errbuf_set(err, errlen, "'%s': longer than %d characters",
		    SHOW(s, name), CONFIG_NAME_MAX);
		return NULL;
	}
	for (size_t i = 0; i <= n; i++)
		d[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ?
		    name[i] - 'A' + 'a' : name[i]);
	if ((found = config_find_cert(c, d)) != NULL)
		return found;
	for (size_t i = 0; i < c->nimplicit; i++)
		if (strcmp(c->implicit[i]->name, d) == 0)
			return c->implicit[i];
	if (!config_name_valid(d, why, sizeof(why))) {
		errbuf_set(err, errlen, "'%s': no cert section of that name, and %s",
		    SHOW(s, name), why);
		return NULL;
	}
	/* the name becomes the certificate's file name: the same rule as a
	 * cert section's (an IPv6 literal has ':') */
	if (!config_cert_name_valid(d, why, sizeof(why))) {
		errbuf_set(err, errlen, "'%s': no cert section of that name, and %s: add "
		    "`cert NAME` with `domains %s`", SHOW(s, name), why, s);
		return NULL;
	}
	if (n > 4 && strcmp(d + n - 4, ".rsa") == 0) {
		d[n - 4] = '\0';
		found = config_find_cert(c, d);
		if (found != NULL && found->nkeys > 1) {
			errbuf_set(err, errlen, "'%s': cert %s (%s:%d) has two keys and writes "
			    "%s.rsa.pem already: add a cert section with another name and "
			    "`domains %s`", SHOW(s, name), found->name, c->file,
			    found->line, found->name, s);
			return NULL;
		}
		d[n - 4] = '.';
	}
	if (c->ncas == 0) {
		errbuf_set(err, errlen, "no ca section: add `ca NAME` with a "
		    "`directory` line");
		return NULL;
	}
	if (c->ncas > 1) {
		errbuf_set(err, errlen, "'%s' has no cert section and there are "
		    "several ca sections: add `cert %s` with a `ca NAME` line",
		    SHOW(s, d), s);
		return NULL;
	}
	if ((q = realloc(c->implicit, (c->nimplicit + 1) * sizeof(*q))) == NULL)
		goto oom;
	c->implicit = q;
	if ((ce = calloc(1, sizeof(*ce))) == NULL ||
	    (ce->name = strdup(d)) == NULL ||
	    (ce->domains = malloc(sizeof(char *))) == NULL ||
	    (ce->domains[0] = strdup(d)) == NULL)
		goto oom;
	ce->ndomains = 1;
	ce->keys[0] = KEYTYPE_EC_P256;
	ce->nkeys = 1;
	ce->ca = &c->cas[0];
	ce->preflight = true;
	ce->implicit = true;
	c->implicit[c->nimplicit++] = ce;
	return ce;
oom:
	if (ce != NULL) {
		cert_fini(ce);
		free(ce);
	}
	errbuf_set(err, errlen, "out of memory");
	return NULL;
}

static bool
str_same(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
strv_same(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_same(a[i], b[i]))
			return false;
	return true;
}

bool
config_ca_same(const struct config_ca *a, const struct config_ca *b)
{
	return str_same(a->name, b->name) && str_same(a->directory, b->directory) &&
	    strv_same(a->contact, a->ncontact, b->contact, b->ncontact) &&
	    str_same(a->ca_bundle, b->ca_bundle) && a->account_key == b->account_key &&
	    str_same(a->eab_kid, b->eab_kid) && str_same(a->eab_hmac_key, b->eab_hmac_key);
}

bool
config_cert_same(const struct config_cert *a, const struct config_cert *b)
{
	if (!str_same(a->name, b->name) ||
	    !strv_same(a->domains, a->ndomains, b->domains, b->ndomains) ||
	    a->nkeys != b->nkeys || memcmp(a->keys, b->keys, a->nkeys * sizeof *a->keys) != 0 ||
	    !config_ca_same(a->ca, b->ca) || !str_same(a->profile, b->profile) ||
	    !str_same(a->preferred_chain, b->preferred_chain) ||
	    a->reuse_key != b->reuse_key || a->preflight != b->preflight ||
	    (a->dns == NULL) != (b->dns == NULL) ||
	    (a->dns != NULL && !config_dns_same(a->dns, b->dns)))
		return false;
	for (size_t i = 0; i < a->ndomains; i++)
		if ((a->challenges != NULL ? a->challenges[i] : CHALL_HTTP01) !=
		    (b->challenges != NULL ? b->challenges[i] : CHALL_HTTP01))
			return false;
	return true;
}

bool
config_dns_same(const struct config_dns *a, const struct config_dns *b)
{
	return str_same(a->name, b->name) && a->provider == b->provider &&
	    str_same(a->server, b->server) && str_same(a->zone, b->zone) &&
	    str_same(a->tsig_key, b->tsig_key) && str_same(a->tsig_algorithm, b->tsig_algorithm) &&
	    str_same(a->tsig_secret_file, b->tsig_secret_file) && a->ttl == b->ttl &&
	    a->propagation_timeout == b->propagation_timeout && str_same(a->command, b->command);
}

int
config_adopt(struct config *c, const char *name, char *err, size_t errlen)
{
	const struct config_cert *got;
	struct config_cert *ce, *certs;

	if ((got = config_cert_for_name(c, name, err, errlen)) == NULL)
		return -1;
	if (!got->implicit)
		return 1;	/* a cert section (or adopted already) */
	if ((certs = realloc(c->certs, (c->ncerts + 1) * sizeof(*certs))) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		return -1;
	}
	c->certs = certs;
	/* the entry moves from the implicit list into certs (fields and all) */
	ce = (struct config_cert *)got;
	c->certs[c->ncerts++] = *ce;
	for (size_t i = 0; i < c->nimplicit; i++)
		if (c->implicit[i] == ce) {
			c->implicit[i] = c->implicit[--c->nimplicit];
			break;
		}
	free(ce);
	return 0;
}
