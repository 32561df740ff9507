/* config.h - hacme's configuration file (DESIGN.md "Config file"):
 * HAProxy-style sections (global, ca NAME, cert NAME) of keyword lines,
 * '#' comments, double-quoted values with \" and \\ escapes.
 *
 * Pure: no I/O but reading the file, no OpenSSL, no libcurl. The whole file
 * is checked before anything is returned, so a caller (SIGHUP) can keep its
 * old config on any error. Errors are one line:
 *   "hacme.cfg:12: unknown keyword 'domain' in cert section (did you mean 'domains'?)"
 *   "hacme.cfg:7: key 'ecdsa-p521': use ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096"
 *   "hacme.cfg:14: '*.example.com': http-01 cannot validate wildcards" */
#ifndef HACME_CONFIG_H
#define HACME_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "acme/keytype.h"

#define CONFIG_ERR_MAX 512	/* an err buffer of this size is never cut */
#define CONFIG_FILE_MAX (4 * 1024 * 1024)
#define CONFIG_NAME_MAX 253	/* a DNS name; section names too */
#define CONFIG_DOMAINS_MAX 100	/* names in one certificate (Let's Encrypt's limit) */
#define CONFIG_KEYS_MAX 2	/* key types of one certificate: a dual certificate */
/* A certificate's name is a file name (<cert-dir>/<name>.rsa.pem, and its
 * ".tmp.<pid>" while written): it must fit NAME_MAX (255) with those. */
#define CONFIG_CERT_NAME_MAX 230

struct config_ca {
	char *name;		/* section name */
	char *directory;	/* https URL (required) */
	char **contact;		/* "mailto:..." URLs; may repeat or list several */
	size_t ncontact;
	char *ca_bundle;	/* NULL: the system's trust store */
	enum keytype account_key;	/* default KEYTYPE_EC_P256 */
	char *eab_kid, *eab_hmac_key;	/* both or neither */
	int line;		/* of the section header */
};

/* How the CA validates a name (DESIGN.md: `challenge`). */
enum challenge { CHALL_HTTP01 = 0, CHALL_DNS01, CHALL_DNSPERSIST01 };
#define CHALL_COUNT 3
/* "http-01", "dns-01", "dns-persist-01" */
const char *config_challenge_name(enum challenge c);

enum dns_provider_kind { DNS_RFC2136 = 0, DNS_EXEC };

/* A `dns NAME` section: how dns-01 records are published. */
struct config_dns {
	char *name;
	enum dns_provider_kind provider;	/* default rfc2136 */
	char *server;		/* "HOST[:PORT]": where UPDATEs and lookups go;
				 * NULL: the system's resolver, the primary from the SOA */
	char *zone;		/* NULL: found by SOA queries */
	char *tsig_key;		/* key name; NULL: unsigned updates */
	char *tsig_algorithm;	/* hmac-sha256 (default), hmac-sha384, hmac-sha512 */
	char *tsig_secret_file;	/* base64 secret (as knot/bind write it) */
	unsigned ttl;		/* seconds, default 60 */
	unsigned propagation_timeout;	/* seconds, default 300 */
	char *command;		/* exec: `command present|cleanup FQDN VALUE` */
	int line;
};

struct config_cert {
	char *name;		/* section name: certs/<name>/, <cert-dir>/<name>.pem */
	char **domains;		/* lower-cased; default: the section name alone */
	size_t ndomains;
	enum keytype keys[CONFIG_KEYS_MAX];	/* default { KEYTYPE_EC_P256 } */
	size_t nkeys;		/* 1, or 2 (one ECDSA and one RSA) */
	const struct config_ca *ca;	/* resolved: never NULL */
	char *profile;		/* NULL: the CA's default */
	char *preferred_chain;	/* NULL: the CA's default chain */
	bool reuse_key;		/* default false: a new key per certificate */
	bool preflight;		/* default true */
	enum challenge *challenges;	/* per domain, parallel to domains */
	const struct config_dns *dns;	/* resolved when a name uses dns-01 */
	bool implicit;		/* made by config_cert_for_name, not in the file */
	int line;
};

struct config {
	char *file;		/* as given to config_load */
	/* global */
	char *state_dir;	/* default "/var/lib/hacme" */
	char **runtime_apis;	/* addresses (common/addr.h syntax, checked) */
	size_t nruntime_apis;
	char *crt_list;		/* NULL when not set */
	char *cert_dir;		/* NULL: "<state-dir>/haproxy" */
	char **tls_checks;	/* addresses */
	size_t ntls_checks;
	char **agents;		/* addresses; none: `run` starts its own */
	size_t nagents;
	char *spoa_listen;	/* default "127.0.0.1:12345" */
	unsigned concurrency;	/* 1..10000, default 32 */
	int preflight_port;	/* 1..65535, default 80 */
	unsigned order_timeout;	/* seconds an order may take, 1..86400, default 600 */
	char *preflight_connect;	/* "HOST:PORT" or NULL */
	char *metrics_listen;	/* NULL: off */
	char *reload_command;	/* NULL: none */
	char *notify_command;	/* NULL: none (acme/notify.h) */
	char *store;		/* redis:// or sentinel:// URL (checked); NULL: the state dir */
	char *store_password_file, *store_key_file, *node_name;	/* NULL: unset */
	char *log_level;	/* NULL: "info" */
	struct config_ca *cas;
	size_t ncas;
	struct config_cert *certs;
	size_t ncerts;
	struct config_dns *dnss;
	size_t ndnss;
	/* certificates config_cert_for_name made (not in the file); each
	 * allocated alone so a returned pointer stays valid until config_free */
	struct config_cert **implicit;
	size_t nimplicit;
};

/* Reads and checks path. 0, or -1 with err "FILE:LINE: what; the fix" (or
 * "FILE: No such file or directory"). On failure c is left empty (safe to
 * config_free). */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
/* Same, from text; file is used in messages. */
int config_parse(struct config *c, const char *file, const char *text, size_t len,
    char *err, size_t errlen);
void config_free(struct config *c);

const struct config_cert *config_find_cert(const struct config *c, const char *name);
/* True when two sections ask for the same thing (their lines aside): a
 * SIGHUP keeps what runs for an unchanged section. A cert's dns section is
 * compared by name. */
bool config_ca_same(const struct config_ca *a, const struct config_ca *b);
bool config_cert_same(const struct config_cert *a, const struct config_cert *b);
/* Every keyword of two dns sections alike (a SIGHUP keeps its solver). */
bool config_dns_same(const struct config_dns *a, const struct config_dns *b);
const struct config_ca *config_find_ca(const struct config *c, const char *name);
const struct config_dns *config_find_dns(const struct config *c, const char *name);
/* The challenge of domain i of ce (http-01 when ce has none recorded). */
enum challenge config_cert_challenge(const struct config_cert *ce, size_t i);

/* The certificate a NAME on the command line means (DESIGN.md): the cert
 * section of that name, else a one-name certificate for name from the
 * default CA (the only ca section). *out is owned by c afterwards when it
 * is implicit (c keeps a list; freed by config_free). NULL with err (name
 * not a valid DNS name, a wildcard, or several ca sections and none
 * chosen). */
const struct config_cert *config_cert_for_name(struct config *c, const char *name,
    char *err, size_t errlen);

/* True for a DNS name hacme can order through http-01: 1..253 chars,
 * labels 1..63 of [a-z0-9-] (no leading/trailing '-'), at least two
 * labels, or an IPv4/IPv6 literal. why names the problem on false. */
bool config_name_valid(const char *name, char *why, size_t whylen);

/* True for a section name (ca, cert) -- also what the store accepts as a
 * directory name: 1..253 chars of [A-Za-z0-9._-], not starting with '.'. */
bool config_section_name_valid(const char *name);

/* Adds the one-name certificate config_cert_for_name makes for name to
 * c->certs (implicit stays true): a name issued from the command line that
 * `hacme run` keeps renewing (acme/cliname.h). Pointers into c->certs are
 * invalid afterwards. 0 added, 1 a cert section has that name already, -1
 * with err. */
int config_adopt(struct config *c, const char *name, char *err, size_t errlen);

/* The one rule for a certificate's name, wherever it comes from (cert
 * section, a NAME on the command line, the store, deploy): a section name
 * of at most CONFIG_CERT_NAME_MAX characters, because it names files in
 * state-dir and cert-dir and in HAProxy commands. An IPv4 literal is such
 * a name; an IPv6 literal (':') is not: name a cert section and list the
 * address in its `domains`. why names the problem on false. */
bool config_cert_name_valid(const char *name, char *why, size_t whylen);

#endif
