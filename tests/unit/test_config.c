/* test_config.c - the config file: DESIGN.md's example, defaults, every
 * error class with its line, quoting, comments, dual keys, implicit certs,
 * config_name_valid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme/config.h"
#include "tap.h"

/* DESIGN.md "Config file", verbatim but for the eab-hmac-key placeholder. */
#define EXAMPLE_HEAD \
    "global\n" \
    "    state-dir       /var/lib/hacme\n" \
    "    runtime-api     unix@/run/haproxy/admin.sock      # may repeat: one per HAProxy\n" \
    "    crt-list        /etc/haproxy/certs.list            # the crt-list bound on :443\n" \
    "    cert-dir        /etc/haproxy/certs\n" \
    "    tls-check       127.0.0.1:443                      # may repeat: where to verify by SNI\n" \
    "    agent           unix@/run/hacme/agent.sock         # may repeat: external agents;\n" \
    "                                                       # without any, `run` starts its own\n" \
    "    spoa-listen     127.0.0.1:12345                    # the agent `run` starts (default)\n" \
    "    concurrency     32                                 # orders in flight\n" \
    "    preflight-port  80                                 # where the self-check connects\n" \
    "    preflight-connect 127.0.0.1:8080                   # optional: connect here instead of DNS\n" \
    "    metrics-listen  127.0.0.1:9901                     # optional, off by default\n" \
    "    reload-command  \"systemctl reload haproxy\"         # optional fallback deploy\n" \
    "ca letsencrypt\n" \
    "    directory       https://acme-v02.api.letsencrypt.org/directory\n" \
    "    contact         mailto:ops@example.com\n" \
    "    ca-bundle       /path/to/ca.pem                    # optional: trust for the CA's HTTPS\n" \
    "    account-key     ecdsa-p256                         # or rsa2048 ...\n" \
    "    eab-kid         KEYID                              # optional External Account Binding\n"
#define EXAMPLE_TAIL \
    "cert example.com\n" \
    "    domains         example.com www.example.com\n" \
    "    key             ecdsa-p256                         # two values = dual cert: ecdsa-p256 rsa2048\n" \
    "    ca              letsencrypt\n" \
    "    profile         tlsserver                          # optional ACME profile\n" \
    "    preferred-chain \"ISRG Root X1\"                     # optional\n" \
    "    reuse-key       off\n" \
    "    preflight       on                                 # off: skip the self-check (CDN)\n"

static const char example_real[] = EXAMPLE_HEAD
    "    eab-hmac-key    c2VjcmV0LWtleQ==\n" EXAMPLE_TAIL;
static const char example_verbatim[] = EXAMPLE_HEAD
    "    eab-hmac-key    BASE64URL\n" EXAMPLE_TAIL;

/* a ca section that satisfies "at least one ca" */
#define CA "ca le\n  directory https://acme.example/dir\n"

static struct config cfg;
static char err[CONFIG_ERR_MAX];

static int
parse_n(const char *text, size_t len)
{
	config_free(&cfg);
	err[0] = '\0';
	return config_parse(&cfg, "t.cfg", text, len, err, sizeof(err));
}

static int
parse(const char *text)
{
	return parse_n(text, strlen(text));
}

/* text fails at line with a message containing phrase */
static void
fails_n(const char *text, size_t len, int line, const char *phrase, const char *what)
{
	char want[32];
	int rc = parse_n(text, len);

	snprintf(want, sizeof(want), "t.cfg:%d: ", line);
	if (!ok(rc == -1 && strncmp(err, want, strlen(want)) == 0 &&
	    strstr(err, phrase) != NULL && strlen(err) < sizeof(err) - 1, "%s", what))
		printf("#   rc %d, err '%s'; want '%s...%s'\n", rc, err, want, phrase);
	ok(cfg.ncas == 0 && cfg.ncerts == 0 && cfg.file == NULL, "%s: config left empty", what);
}

static void
fails(const char *text, int line, const char *phrase, const char *what)
{
	fails_n(text, strlen(text), line, phrase, what);
}

static void
parses(const char *text, const char *what)
{
	if (!ok(parse(text) == 0, "%s", what))
		printf("#   err '%s'\n", err);
}

/* Inputs that fail: the line and a phrase of the message. */
static const struct err_case {
	const char *text;
	int line;
	const char *phrase;
	const char *what;
} err_cases[] = {
	/* lines */
	{ "", 1, "no ca section: add `ca NAME` with a `directory` line", "empty file" },
	{ "global\n  state-dir /x\n", 2, "no ca section", "no ca: the last line" },
	{ "global\n\n\n", 3, "no ca section", "no ca: counts blank lines" },
	{ CA "# caf\xc3\xa9 ok\n# bad \xc3\x28\n", 4, "not valid UTF-8",
	    "invalid UTF-8 in a comment" },
	{ CA "cert a.example\n  preferred-chain \xc0\xaf\n", 4, "not valid UTF-8",
	    "overlong UTF-8" },
	{ CA "# \xed\xa0\x80\n", 3, "not valid UTF-8", "UTF-16 surrogate" },
	{ CA "# \xf4\x90\x80\x80\n", 3, "not valid UTF-8", "beyond U+10FFFF" },
	{ CA "# \xe2\x82\n", 3, "not valid UTF-8", "cut UTF-8 sequence" },
	{ CA "global\n  state-dir /a\x01\n", 4, "control character 0x01",
	    "control character" },
	{ CA "global\n  state-dir /a\rb\n", 4, "control character 0x0d",
	    "a CR inside a line" },
	{ CA "global\n  store redis://u:hunter2@h:99999/0\n", 4, "is not HOST:PORT",
	    "store: bad port" },
	{ CA "global\n  store memcached://h\n", 4, "unknown scheme", "store: scheme" },
	{ CA "global\n  store redis://h\n", 4, "store without store-key-file",
	    "store: no store-key-file" },
	{ CA "global\n  store sentinel://h:1\n", 4, "master's name", "store: no master" },
	/* quoting */
	{ CA "global\n  reload-command \"systemctl reload\n", 4, "unterminated quote",
	    "unterminated quote" },
	{ CA "global\n  reload-command \"a\\nb\"\n", 4, "only \\\" and \\\\ are escapes",
	    "unknown escape" },
	{ CA "global\n  reload-command \"a\\", 4, "only \\\" and \\\\ are escapes",
	    "backslash at the end of the line" },
	{ CA "global\n  state-dir \"\"\n", 4, "state-dir: empty value",
	    "empty quoted value" },
	{ CA "global\n  state-dir \"/a b\" /c\n", 4, "'state-dir' takes one value",
	    "quoted value plus one" },
	/* sections */
	{ "  state-dir /x\n" CA, 1, "'state-dir' before any section: put it under `global`",
	    "keyword before any section" },
	{ "domains a.example\n" CA, 1, "put it under `cert NAME`",
	    "cert keyword before any section" },
	{ "frobnicate\n" CA, 1, "unknown keyword 'frobnicate' before any section",
	    "unknown word before any section" },
	{ CA "global x\n", 3, "`global` takes no name", "global NAME" },
	{ CA "cert\n", 3, "`cert` needs a name: `cert NAME`", "cert without name" },
	{ "ca\n", 1, "`ca` needs a name", "ca without name" },
	{ CA "cert a b\n", 3, "`cert` takes one name", "cert with two names" },
	{ CA "cert ../x\n", 3, "cert name '../x'", "cert ../x" },
	{ CA "cert a/b\n", 3, "cert name 'a/b'", "cert a/b" },
	{ CA "cert .hidden\n", 3, "not starting with '.'", "cert .hidden" },
	{ "ca \"\"\n", 1, "ca name ''", "empty ca name" },
	{ CA "cert a.example\ncert b.example\ncert a.example\n", 5,
	    "cert 'a.example' is already defined at line 3", "duplicate cert" },
	{ CA "ca le\n  directory https://b.example/\n", 3,
	    "ca 'le' is already defined at line 1", "duplicate ca" },
	{ "ca le\n  contact mailto:a@b.example\n", 1, "ca 'le' has no `directory` line",
	    "ca without directory: its header line" },
	{ "ca le\n  contact mailto:a@b.example\ncert a.example\n", 1, "no `directory` line",
	    "ca without directory, section closed by the next" },
	{ CA "cert nodots\n", 3, "cert 'nodots' has no `domains` line",
	    "cert name is no domain, no domains line" },
	{ CA "cert *.example.com\n", 3, "cert name '*.example.com'",
	    "wildcard section name" },
	/* keywords */
	{ CA "cert a.example\n  domain a.example\n", 4,
	    "unknown keyword 'domain' in the cert section (did you mean 'domains'?)",
	    "did you mean domains" },
	{ "ca le\n  directory https://a/\n  contcat mailto:a@b.c\n", 3,
	    "(did you mean 'contact'?)", "did you mean contact (transposition)" },
	{ CA "global\n  State-Dir /x\n", 4, "(did you mean 'state-dir'?)",
	    "did you mean: case" },
	{ CA "global\n  domains a.example\n", 4,
	    "'domains' belongs in a cert section, not in the global section",
	    "domains in global" },
	{ CA "  state-dir /x\n", 3, "'state-dir' belongs in a global section",
	    "state-dir in a ca section" },
	{ CA "cert a.example\n  directory https://x/\n", 4,
	    "belongs in a ca section, not in the cert section", "directory in cert" },
	{ CA "cert a.example\n  directroy https://x/\n", 4,
	    "did you mean 'directory'? it belongs in a ca section",
	    "near another section's keyword" },
	{ CA "crt a.example\n", 3, "did you mean the section header `cert NAME`",
	    "misspelt section header" },
	{ CA "global\n  frobnicate 1\n", 4,
	    "unknown keyword 'frobnicate' in the global section", "no suggestion" },
	{ CA "global\n  xy\n", 4, "unknown keyword 'xy' in the global section",
	    "short word: no suggestion" },
	{ CA "global\n  state-dir\n", 4, "'state-dir' needs a value: `state-dir DIR`",
	    "missing value" },
	{ CA "cert a.example\n  key\n", 4, "'key' needs a value: `key TYPE [TYPE]`",
	    "key without value" },
	{ CA "global\n  state-dir /a /b\n", 4,
	    "'state-dir' takes one value: `state-dir DIR` (quote a value with spaces)",
	    "too many values" },
	{ CA "cert a.example\n  key ecdsa-p256 rsa2048 rsa4096\n", 4,
	    "'key' takes at most 2 values", "three keys" },
	{ CA "global\n  state-dir /a\n  state-dir /b\n", 5,
	    "'state-dir' is already set at line 4", "keyword twice" },
	{ "global\n  state-dir /a\n" CA "global\n  state-dir /b\n", 6,
	    "already set at line 2", "keyword twice across global sections" },
	{ CA "cert a.example\n  key rsa2048\n  key rsa2048\n", 5, "already set at line 4",
	    "key twice" },
	/* values */
	{ CA "cert a.example\n  reuse-key maybe\n", 4, "reuse-key 'maybe': use on or off",
	    "bad boolean" },
	{ CA "cert a.example\n  preflight 1\n", 4, "use on or off", "1 is no boolean" },
	{ CA "global\n  concurrency 0\n", 4,
	    "concurrency '0': use a number from 1 to 10000", "concurrency 0" },
	{ CA "global\n  concurrency 10001\n", 4, "from 1 to 10000", "concurrency 10001" },
	{ CA "global\n  concurrency -1\n", 4, "from 1 to 10000", "concurrency -1" },
	{ CA "global\n  concurrency 99999999999999999999999\n", 4, "from 1 to 10000",
	    "concurrency overflow" },
	{ CA "global\n  concurrency 3x\n", 4, "from 1 to 10000", "concurrency 3x" },
	{ CA "global\n  preflight-port 65536\n", 4,
	    "preflight-port '65536': use a number from 1 to 65535", "port 65536" },
	{ CA "global\n  preflight-port 0\n", 4, "from 1 to 65535", "port 0" },
	{ CA "global\n  log-level loud\n", 4,
	    "log-level 'loud': use error, warning, notice, info or debug",
	    "bad log-level" },
	/* addresses */
	{ CA "global\n  runtime-api /run/haproxy.sock\n", 4,
	    "write a unix socket as unix@PATH", "bare path" },
	{ CA "global\n  runtime-api 127.0.0.1\n", 4, "expected HOST:PORT", "no port" },
	{ CA "global\n  agent 127.0.0.1:0\n", 4,
	    "agent '127.0.0.1:0': port must be 1..65535", "port 0" },
	{ CA "global\n  agent haproxy:99999\n", 4, "port must be 1..65535",
	    "port too large with a host name" },
	{ CA "global\n  tls-check \"bad host:443\"\n", 4, "not a host name or IP address",
	    "space in a host name" },
	{ CA "global\n  tls-check a..b:443\n", 4, "not a host name", "empty label" },
	{ CA "global\n  spoa-listen unix@\n", 4, "empty unix socket path", "unix@ alone" },
	{ CA "global\n  metrics-listen master@127.0.0.1:1\n", 4, "master@unix@PATH",
	    "master@ with tcp" },
	{ CA "global\n  runtime-api ipv6@[::1:99\n", 4, "expected [HOST]:PORT",
	    "unclosed bracket" },
	{ CA "global\n  preflight-connect 127.0.0.1\n", 4,
	    "preflight-connect '127.0.0.1': expected HOST:PORT",
	    "preflight-connect no port" },
	{ CA "global\n  preflight-connect unix@/x:1\n", 4, "not a host name",
	    "preflight-connect takes no prefix" },
	{ CA "global\n  preflight-connect a:70000\n", 4, "port must be 1..65535",
	    "preflight-connect port" },
	/* ca */
	{ "ca le\n  directory http://acme.example/dir\n", 2, "must be an https:// URL",
	    "http directory" },
	{ "ca le\n  directory acme.example\n", 2, "must be an https:// URL",
	    "directory without scheme" },
	{ "ca le\n  directory https://\n", 2, "no host in the URL", "https:// alone" },
	{ "ca le\n  directory \"https://a b/\"\n", 2, "printable ASCII without spaces",
	    "space in URL" },
	{ CA "  contact ops@x.example\n", 3,
	    "contact 'ops@x.example': write it as mailto:ops@x.example",
	    "contact without mailto:" },
	{ CA "  contact https://x.example/\n", 3, "use a mailto: URL", "contact https" },
	{ CA "  contact mailto:ops\n", 3, "one e-mail address", "mailto without @" },
	{ CA "  contact mailto:a@x.example,b@x.example\n", 3, "one e-mail address",
	    "two addresses in one URL" },
	{ CA "  contact mailto:a@x.example\n  contact mailto:A@x.example\n", 4,
	    "listed twice", "duplicate contact" },
	{ CA "  account-key ed25519\n", 3,
	    "account-key 'ed25519': use ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096",
	    "bad account-key" },
	{ CA "  eab-kid kid-1\n", 3, "eab-kid without eab-hmac-key", "kid alone" },
	{ CA "  eab-hmac-key YWJj\ncert a.example\n", 3, "eab-hmac-key without eab-kid",
	    "hmac alone: the hmac line" },
	{ CA "  eab-kid k\n  eab-hmac-key ===\n", 4, "eab-hmac-key", "only padding" },
	{ CA "  eab-kid \"a b\"\n", 3, "printable ASCII", "kid with a space" },
	/* cert */
	{ CA "cert d\n  key ecdsa-p256 ecdsa-p384\n", 4,
	    "a dual certificate is one ECDSA and one RSA key", "two ECDSA keys" },
	{ CA "cert d\n  key rsa2048 rsa4096\n", 4, "one ECDSA and one RSA",
	    "two RSA keys" },
	{ CA "cert d\n  key ecdsa-p521\n", 4,
	    "key 'ecdsa-p521': use ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096",
	    "unknown key type (config.h's example)" },
	{ CA "cert d\n  domains a.example A.EXAMPLE\n", 4, "'a.example' is listed twice",
	    "duplicate across case" },
	{ CA "cert d\n  domains a.example\n  domains b.example a.example\n", 5,
	    "listed twice", "duplicate across lines" },
	{ CA "cert d\n  domains a.example *.example.com\n", 4,
	    "'*.example.com': http-01 cannot validate wildcards: add `challenge dns-01`",
	    "wildcard: names the keyword" },
	{ CA "cert d\n  domains -a.example\n", 4, "starts or ends with '-'",
	    "leading hyphen" },
	{ CA "cert d\n  domains localhost\n", 4, "one label", "one label" },
	{ CA "cert d\n  domains caf\xc3\xa9.example\n", 4, "punycode", "IDN" },
	{ "ca one\n  directory https://one.example/\nca two\n  directory https://two.example/\n"
	    "cert a.example\n  domains a.example\n", 5,
	    "several ca sections: add `ca NAME` to cert a.example",
	    "several ca, none chosen" },
	{ CA "cert a.example\n  ca nope\n", 4, "no ca section named 'nope'", "unknown ca" },
	{ CA "cert a.example\nca le\n", 4,
	    "already defined at line 1 (an unindented `ca NAME` line starts a ca section",
	    "unindented ca line in a cert section: hint" },
	{ CA "cert a.example\nca other\ncert b.example\n", 4,
	    "indent it to choose the CA of the cert above",
	    "unindented ca: missing directory hint" },
	{ CA "cert a.example\n  ca ../x\n", 4, "not a ca section name", "ca ../x" },
	{ CA "cert a.example\n  profile \"two words\"\n", 4, "printable ASCII", "profile" },
};

static void
test_errors(void)
{
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++)
		fails(err_cases[i].text, err_cases[i].line, err_cases[i].phrase,
		    err_cases[i].what);
}

static void
test_example(void)
{
	const struct config_ca *ca;
	const struct config_cert *ce;

	parses(example_real, "DESIGN.md example parses");
	is_str(cfg.file, "t.cfg", "file");
	is_str(cfg.state_dir, "/var/lib/hacme", "state-dir");
	is_int(cfg.nruntime_apis, 1, "one runtime-api");
	is_str(cfg.runtime_apis[0], "unix@/run/haproxy/admin.sock", "runtime-api");
	is_str(cfg.crt_list, "/etc/haproxy/certs.list", "crt-list");
	is_str(cfg.cert_dir, "/etc/haproxy/certs", "cert-dir");
	is_int(cfg.ntls_checks, 1, "one tls-check");
	is_str(cfg.tls_checks[0], "127.0.0.1:443", "tls-check");
	is_int(cfg.nagents, 1, "one agent");
	is_str(cfg.agents[0], "unix@/run/hacme/agent.sock", "agent");
	is_str(cfg.spoa_listen, "127.0.0.1:12345", "spoa-listen");
	is_int(cfg.concurrency, 32, "concurrency");
	is_int(cfg.preflight_port, 80, "preflight-port");
	is_str(cfg.preflight_connect, "127.0.0.1:8080", "preflight-connect");
	is_str(cfg.metrics_listen, "127.0.0.1:9901", "metrics-listen");
	is_str(cfg.reload_command, "systemctl reload haproxy", "reload-command unquoted");
	ok(cfg.log_level == NULL, "log-level unset");

	is_int(cfg.ncas, 1, "one ca");
	ca = &cfg.cas[0];
	is_str(ca->name, "letsencrypt", "ca name");
	is_int(ca->line, 15, "ca line");
	is_str(ca->directory, "https://acme-v02.api.letsencrypt.org/directory", "directory");
	is_int(ca->ncontact, 1, "one contact");
	is_str(ca->contact[0], "mailto:ops@example.com", "contact");
	is_str(ca->ca_bundle, "/path/to/ca.pem", "ca-bundle");
	is_int(ca->account_key, KEYTYPE_EC_P256, "account-key");
	is_str(ca->eab_kid, "KEYID", "eab-kid");
	is_str(ca->eab_hmac_key, "c2VjcmV0LWtleQ", "eab-hmac-key, padding dropped");
	ok(config_find_ca(&cfg, "letsencrypt") == ca, "config_find_ca");
	ok(config_find_ca(&cfg, "other") == NULL, "config_find_ca unknown");

	is_int(cfg.ncerts, 1, "one cert");
	ce = &cfg.certs[0];
	is_str(ce->name, "example.com", "cert name");
	is_int(ce->line, 22, "cert line");
	is_int(ce->ndomains, 2, "two domains");
	is_str(ce->domains[0], "example.com", "domain 0");
	is_str(ce->domains[1], "www.example.com", "domain 1");
	is_int(ce->nkeys, 1, "one key");
	is_int(ce->keys[0], KEYTYPE_EC_P256, "key");
	ok(ce->ca == ca, "ca resolved");
	is_str(ce->profile, "tlsserver", "profile");
	is_str(ce->preferred_chain, "ISRG Root X1", "preferred-chain");
	ok(!ce->reuse_key, "reuse-key off");
	ok(ce->preflight, "preflight on");
	ok(!ce->implicit, "not implicit");
	ok(config_find_cert(&cfg, "example.com") == ce, "config_find_cert");
	ok(config_find_cert(&cfg, "www.example.com") == NULL, "find_cert: a domain is no section");

	/* The placeholder in DESIGN.md is 9 characters, no base64url key: the
	 * documented example must still pass `hacme check`, so the key's
	 * length is checked where it is used (jws_eab), not here. */
	parses(example_verbatim, "DESIGN.md example verbatim (placeholder eab-hmac-key)");
}

static void
test_defaults(void)
{
	const struct config_cert *ce;

	parses(CA "cert example.org\n", "minimal config");
	is_str(cfg.state_dir, "/var/lib/hacme", "default state-dir");
	is_str(cfg.spoa_listen, "127.0.0.1:12345", "default spoa-listen");
	is_int(cfg.concurrency, 32, "default concurrency");
	is_int(cfg.preflight_port, 80, "default preflight-port");
	ok(cfg.crt_list == NULL && cfg.cert_dir == NULL && cfg.preflight_connect == NULL &&
	    cfg.metrics_listen == NULL && cfg.reload_command == NULL &&
	    cfg.log_level == NULL, "optional globals unset");
	ok(cfg.nruntime_apis == 0 && cfg.ntls_checks == 0 && cfg.nagents == 0,
	    "no lists");
	is_int(cfg.cas[0].account_key, KEYTYPE_EC_P256, "default account-key");
	ok(cfg.cas[0].ncontact == 0 && cfg.cas[0].ca_bundle == NULL &&
	    cfg.cas[0].eab_kid == NULL && cfg.cas[0].eab_hmac_key == NULL,
	    "optional ca values unset");
	ce = &cfg.certs[0];
	is_int(ce->ndomains, 1, "default domains: one");
	is_str(ce->domains[0], "example.org", "default domains: the section name");
	is_int(ce->nkeys, 1, "default: one key");
	is_int(ce->keys[0], KEYTYPE_EC_P256, "default key ecdsa-p256");
	ok(ce->ca == &cfg.cas[0], "default: the only ca");
	ok(ce->profile == NULL && ce->preferred_chain == NULL, "no profile, no chain");
	ok(!ce->reuse_key && ce->preflight, "reuse-key off, preflight on");

	parses(CA "cert Example.ORG\n", "upper-case section name");
	is_str(cfg.certs[0].name, "Example.ORG", "section name kept");
	is_str(cfg.certs[0].domains[0], "example.org", "its default domain lower-cased");

	parses(CA, "no cert section is fine");
	is_int(cfg.ncerts, 0, "no certs");
	parses("global\n" CA "global\n  log-level debug\n", "global may appear twice");
	is_str(cfg.log_level, "debug", "log-level");
}

static void
test_lines(void)
{
	char *big;
	static const char nul[] = CA "cert a.example\n  profile x\0y\n";
	static const char bom[] = "\xef\xbb\xbf" CA;


	big = malloc(8192);
	memset(big, 0, 8192);
	strcpy(big, CA "# ");
	memset(big + strlen(big), 'x', 4096 - 2);
	parses(big, "a 4096-byte line");
	strcat(big, "x\n");
	fails(big, 3, "line longer than 4096 bytes", "a 4097-byte line");
	memset(big, 0, 8192);
	strcpy(big, CA "# ");
	memset(big + strlen(big), 'x', 4096 - 2);
	strcat(big, "\r\n");
	parses(big, "a 4096-byte line plus CR LF");
	free(big);

	fails_n(nul, sizeof(nul) - 1, 4, "NUL byte", "NUL byte");
	parses(bom, "UTF-8 byte order mark");
	parses("ca le\r\n  directory https://a.example/\r\n", "CR LF lines");
	is_str(cfg.cas[0].directory, "https://a.example/", "CR not in the value");
	parses("ca le\n\tdirectory\thttps://a.example/ \t \n", "tabs");
	parses("ca le\ndirectory https://a.example/\n", "keywords not indented");
	parses("ca le\n  directory https://a.example/", "no final LF");
	is_str(cfg.cas[0].directory, "https://a.example/", "last line without LF");
}

static void
test_quoting(void)
{
	parses(CA "global\n  reload-command \"a \\\"b\\\" c\\\\d\"\n", "escapes");
	is_str(cfg.reload_command, "a \"b\" c\\d", "\\\" and \\\\ unescaped");
	parses(CA "global\n  reload-command pre\"fix x\"post\n", "quoted part in a word");
	is_str(cfg.reload_command, "prefix xpost", "parts joined");
	parses(CA "cert a.example\n  preferred-chain \"A # B\" # comment\n",
	    "'#' inside quotes");
	is_str(cfg.certs[0].preferred_chain, "A # B", "'#' kept inside quotes");
	parses(CA "global\n  state-dir /x#comment\n", "'#' ends a word");
	is_str(cfg.state_dir, "/x", "comment cut off");
	parses(CA "global\n  state-dir /a\\b\n", "backslash outside quotes");
	is_str(cfg.state_dir, "/a\\b", "backslash kept outside quotes");
	parses(CA "global\n  state-dir '/a'\n", "single quotes are plain characters");
	is_str(cfg.state_dir, "'/a'", "single quotes kept");
	parses(CA "# only a comment\n   # indented comment\n\n   \n", "comments and blank lines");
}

static void
test_sections(void)
{
	parses("ca x.example\n  directory https://a.example/\ncert x.example\n",
	    "ca and cert may share a name");
	parses(CA "cert A_b-c.1\n  domains a.example\n", "section name characters");
	parses(CA "cert nodots\n  domains a.example\n", "cert name any word with domains");
}

static void
test_keywords(void)
{
	parses(CA "cert a.example\n  preflight off\ncert b.example\n  preflight off\n",
	    "a keyword once per section");
}

static void
test_suggest_limit(void)
{
	fails(CA "global\n  concurrexxx 3\n", 4, "unknown keyword 'concurrexxx'",
	    "three edits from concurrency");
	ok(strstr(err, "did you mean") == NULL, "no suggestion three edits away: %s", err);
	fails(CA "global\n  concurrenxx 3\n", 4, "(did you mean 'concurrency'?)",
	    "two edits from concurrency");
}

static void
test_values(void)
{
	static const char *const yes[] = { "on", "yes", "true", "ON", "Yes" };
	static const char *const no[] = { "off", "no", "false", "OFF" };
	char text[256];

	for (size_t i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), CA "cert a.example\n  reuse-key %s\n", yes[i]);
		parses(text, "bool true");
		ok(cfg.certs[0].reuse_key, "reuse-key %s", yes[i]);
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), CA "cert a.example\n  preflight %s\n", no[i]);
		parses(text, "bool false");
		ok(!cfg.certs[0].preflight, "preflight %s", no[i]);
	}

	parses(CA "global\n  concurrency 10000\n  preflight-port 65535\n", "range ends");
	is_int(cfg.concurrency, 10000, "concurrency 10000");
	is_int(cfg.preflight_port, 65535, "preflight-port 65535");
	parses(CA "global\n  concurrency 1\n  preflight-port 1\n", "range starts");
	is_int(cfg.concurrency, 1, "concurrency 1");

	parses(CA "global\n  log-level warning\n", "log-level warning");
}

static void
test_addresses(void)
{
	parses(CA "global\n"
	    "  runtime-api unix@/run/a.sock\n"
	    "  runtime-api master@unix@/run/m.sock\n"
	    "  runtime-api 127.0.0.1:9999\n"
	    "  runtime-api ipv6@[::1]:9999\n"
	    "  runtime-api tcp:haproxy:9999\n"
	    "  runtime-api unix:/run/b.sock\n"
	    "  tls-check 127.0.0.1:443\n"
	    "  tls-check haproxy-2.internal:443\n"
	    "  agent unix@/run/agent1.sock\n"
	    "  agent 10.0.0.2:12346\n"
	    "  spoa-listen *:12345\n"
	    "  metrics-listen ipv4@127.0.0.1:9901\n",
	    "address forms");
	is_int(cfg.nruntime_apis, 6, "six runtime-api lines");
	is_str(cfg.runtime_apis[2], "127.0.0.1:9999", "runtime-api kept in order");
	is_str(cfg.runtime_apis[4], "tcp:haproxy:9999", "a host name is kept (resolved later)");
	is_int(cfg.ntls_checks, 2, "two tls-check lines");
	is_int(cfg.nagents, 2, "two agent lines");
	is_str(cfg.spoa_listen, "*:12345", "spoa-listen");
	is_str(cfg.metrics_listen, "ipv4@127.0.0.1:9901", "metrics-listen");


	parses(CA "global\n  preflight-connect [::1]:8080\n", "preflight-connect IPv6");
	parses(CA "global\n  preflight-connect haproxy:80\n", "preflight-connect host name");
}

static void
test_ca(void)
{
	char hmac[1200];

	parses("ca le\n  directory HTTPS://a.example/dir\n", "scheme case");

	parses(CA "  contact mailto:a@x.example mailto:b@x.example\n"
	    "  contact mailto:c@x.example\n", "contacts on one line and repeated");
	is_int(cfg.cas[0].ncontact, 3, "three contacts");
	is_str(cfg.cas[0].contact[2], "mailto:c@x.example", "contact order");

	parses(CA "  account-key rsa4096\n", "account-key rsa4096");
	is_int(cfg.cas[0].account_key, KEYTYPE_RSA4096, "rsa4096");

	parses(CA "  eab-kid kid-1\n  eab-hmac-key YWI=\n", "eab with padding");
	is_str(cfg.cas[0].eab_hmac_key, "YWI", "padding dropped");
	parses(CA "  eab-hmac-key YWJj\n  eab-kid kid-1\n", "eab in any order");
	fails(CA "  eab-kid k\n  eab-hmac-key abc+def/\n", 4, "not base64url", "base64, not url");
	ok(strstr(err, "abc+def") == NULL, "the hmac key is not echoed");
	memset(hmac, 0, sizeof(hmac));
	strcpy(hmac, CA "  eab-kid k\n  eab-hmac-key ");
	memset(hmac + strlen(hmac), 'A', 1028);
	fails(hmac, 4, "longer than 1024", "hmac key too long");
}

static void
test_cert(void)
{
	char text[8192];
	size_t o;

	parses(CA "cert d\n  key rsa2048 ecdsa-p384\n  domains a.example\n", "dual key, RSA first");
	is_int(cfg.certs[0].nkeys, 2, "two keys");
	is_int(cfg.certs[0].keys[0], KEYTYPE_EC_P384, "ECDSA first");
	is_int(cfg.certs[0].keys[1], KEYTYPE_RSA2048, "RSA second");
	parses(CA "cert d\n  key ecdsa-p256 rsa3072\n  domains a.example\n", "dual key");
	is_int(cfg.certs[0].keys[0], KEYTYPE_EC_P256, "ecdsa-p256");
	is_int(cfg.certs[0].keys[1], KEYTYPE_RSA3072, "rsa3072");
	parses(CA "cert d\n  key rsa2048\n  domains a.example\n", "one RSA key");
	is_int(cfg.certs[0].nkeys, 1, "one key");
	is_int(cfg.certs[0].keys[0], KEYTYPE_RSA2048, "rsa2048 alone");

	parses(CA "cert d\n  domains Example.COM WWW.example.com\n  domains 192.0.2.1 2001:DB8::1\n",
	    "domains lower-cased, repeated, IP literals");
	is_int(cfg.certs[0].ndomains, 4, "four domains");
	is_str(cfg.certs[0].domains[0], "example.com", "lower-cased");
	is_str(cfg.certs[0].domains[1], "www.example.com", "lower-cased 2");
	is_str(cfg.certs[0].domains[3], "2001:db8::1", "IPv6 lower-cased");

	o = (size_t)snprintf(text, sizeof(text), CA "cert d\n  domains");
	for (int i = 0; i < 101; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, " n%d.example", i);
	snprintf(text + o, sizeof(text) - o, "\n");
	fails(text, 4, "'domains' takes at most 100 values", "101 domains on a line");
	o = (size_t)snprintf(text, sizeof(text), CA "cert d\n  domains");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, " n%d.example", i);
	snprintf(text + o, sizeof(text) - o, "\n");
	parses(text, "100 domains");
	is_int(cfg.certs[0].ndomains, 100, "100 domains kept");
	snprintf(text + o, sizeof(text) - o, "\n  domains last.example\n");
	fails(text, 5, "more than 100 domains", "101st domain on the next line");

	/* ca references: any order, indentation tells keyword from section */
	parses("cert a.example\n  ca two\nca one\n  directory https://one.example/\n"
	    "ca two\n  directory https://two.example/\n", "cert before its ca");
	is_str(cfg.certs[0].ca->name, "two", "ca resolved after parsing");
}

static void
test_escaped(void)
{
	char big[400];

	/* a control character in a value echoed by an error */
	fails(CA "cert a.example\n  profile \"x\ty\"\n", 4, "'x\\x09y'",
	    "a tab in a quoted value is echoed as \\x09");
	fails(CA "cert a.example\n  key \"ecdsa\x1b[2J\"\n", 4, "control character 0x1b",
	    "ESC in a line: refused, not echoed");
	/* a long UTF-8 value is cut at a character boundary */
	memset(big, 0, sizeof big);
	strcpy(big, CA "cert a.example\n  key ");
	for (size_t n = strlen(big); n + 3 < 300; n += 2)
		memcpy(big + n, "\xc3\xa9", 2);
	strcat(big, "\n");
	fails(big, 4, "...'", "a long UTF-8 value is cut");
	{
		const char *q = strstr(err, "...'");
		ok(q != NULL && ((unsigned char)q[-1] == 0xa9), "cut after a whole character");
	}
}

static void
test_for_name(void)
{
	const struct config_cert *a, *b;
	char e[CONFIG_ERR_MAX];

	parses(CA "cert site\n  domains a.example b.example\n", "config for names");
	a = config_cert_for_name(&cfg, "site", e, sizeof(e));
	ok(a == &cfg.certs[0], "a section name gives the section");
	a = config_cert_for_name(&cfg, "new.example", e, sizeof(e));
	ok(a != NULL && a->implicit, "an unknown name gives an implicit cert");
	if (a != NULL) {
		is_str(a->name, "new.example", "implicit name");
		is_int(a->ndomains, 1, "implicit: one domain");
		is_str(a->domains[0], "new.example", "implicit domain");
		ok(a->ca == &cfg.cas[0], "implicit: the default ca");
		is_int(a->nkeys, 1, "implicit: one key");
		is_int(a->keys[0], KEYTYPE_EC_P256, "implicit: ecdsa-p256");
		ok(a->preflight && !a->reuse_key, "implicit: defaults");
	}
	b = config_cert_for_name(&cfg, "NEW.example", e, sizeof(e));
	ok(b == a, "the same implicit cert again, case ignored");
	ok(config_cert_for_name(&cfg, "*.example.com", e, sizeof(e)) == NULL &&
	    strstr(e, "http-01 cannot validate wildcards") != NULL, "wildcard refused");
	ok(config_cert_for_name(&cfg, "nodots", e, sizeof(e)) == NULL &&
	    strstr(e, "no cert section of that name") != NULL, "a word is no domain");
	ok(config_cert_for_name(&cfg, "", e, sizeof(e)) == NULL, "empty name");
	/* a name echoed in an error is escaped: the error stays one line */
	ok(config_cert_for_name(&cfg, "foo\nbar\x1b[31m.example", e, sizeof(e)) == NULL &&
	    strchr(e, '\n') == NULL && strchr(e, '\x1b') == NULL &&
	    strstr(e, "'foo\\x0abar\\x1b[31m.example'") != NULL,
	    "a newline and ESC in a command-line name are escaped: %s", e);
	ok(config_cert_for_name(&cfg, "a\r\x7f.example", e, sizeof(e)) == NULL &&
	    strstr(e, "'a\\x0d\\x7f.example'") != NULL, "CR and DEL escaped: %s", e);
	is_int(cfg.nimplicit, 1, "one implicit cert kept");
	is_int(cfg.ncerts, 1, "implicit certs are not in certs");

	parses("ca one\n  directory https://one.example/\nca two\n  directory https://two.example/\n",
	    "two cas");
	ok(config_cert_for_name(&cfg, "x.example", e, sizeof(e)) == NULL &&
	    strstr(e, "several ca sections") != NULL, "several cas: no implicit cert");
}

static void
test_name_valid(void)
{
	static const struct { const char *name; bool valid; const char *why; } t[] = {
		{ "example.com", true, NULL },
		{ "a.b.c.example", true, NULL },
		{ "xn--caf-dma.example", true, NULL },
		{ "a-b.example", true, NULL },
		{ "1.example", true, NULL },
		{ "example.c0m", true, NULL },
		{ "192.0.2.1", true, NULL },
		{ "::1", true, NULL },
		{ "2001:db8::1", true, NULL },
		{ "", false, "empty name" },
		{ "localhost", false, "one label" },
		{ "*.example.com", false, "wildcards" },
		{ "a*.example.com", false, "wildcards" },
		{ "example.com.", false, "no trailing dot" },
		{ ".example.com", false, "empty label" },
		{ "a..example", false, "empty label" },
		{ "-a.example", false, "'-'" },
		{ "a-.example", false, "'-'" },
		{ "a_b.example", false, "character '_'" },
		{ "Example.com", false, "upper-case" },
		{ "a b.example", false, "character" },
		{ "1.2.3.999", false, "neither a DNS name nor an IP address" },
		{ "1.2.3", false, "neither" },
		{ "caf\xc3\xa9.example", false, "punycode" },
		{ "a/b.example", false, "'/'" },
	};
	char why[128], name[300];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool v;

		why[0] = '\0';
		v = config_name_valid(t[i].name, why, sizeof(why));
		ok(v == t[i].valid && (v || strstr(why, t[i].why) != NULL),
		    "config_name_valid('%s') %s", t[i].name, t[i].valid ? "valid" : t[i].why);
	}
	memset(name, 'a', 63);
	strcpy(name + 63, ".example");
	ok(config_name_valid(name, why, sizeof(why)), "63-char label");
	memset(name, 'a', 64);
	strcpy(name + 64, ".example");
	ok(!config_name_valid(name, why, sizeof(why)) && strstr(why, "63"), "64-char label");
	for (int i = 0; i < 63; i++)
		memcpy(name + i * 4, "abc.", 4);
	strcpy(name + 63 * 4, "a");	/* 253 */
	ok(config_name_valid(name, why, sizeof(why)), "253 characters");
	strcpy(name + 63 * 4, "ab");
	ok(!config_name_valid(name, why, sizeof(why)) && strstr(why, "253"), "254 characters");
	ok(!config_name_valid(NULL, why, sizeof(why)), "NULL");

	ok(config_section_name_valid("a.b_c-D9"), "section name chars");
	ok(!config_section_name_valid(".x"), "section name: leading dot");
	ok(!config_section_name_valid(".."), "section name: ..");
	ok(!config_section_name_valid("a/b"), "section name: slash");
	ok(!config_section_name_valid(""), "section name: empty");
	ok(!config_section_name_valid(NULL), "section name: NULL");
}

/* Issue 8: one rule for a certificate's name (config, command line, store). */
static void
test_cert_name_rule(void)
{
	const struct config_cert *a;
	char e[CONFIG_ERR_MAX], name[CONFIG_CERT_NAME_MAX + 2], text[512];

	parses(CA "cert v6\n  domains ::1 192.0.2.1\n", "an IPv6 literal in domains of a named cert");
	is_str(cfg.certs[0].domains[0], "::1", "::1 kept as a domain");
	a = config_cert_for_name(&cfg, "::1", e, sizeof(e));
	ok(a == NULL && strstr(e, "file name") != NULL && strstr(e, "`domains ::1`") != NULL,
	    "'::1' on the command line: refused before any order ('%s')", e);
	a = config_cert_for_name(&cfg, "2001:db8::1", e, sizeof(e));
	ok(a == NULL && strchr(e, '\n') == NULL, "'2001:db8::1' refused too");
	a = config_cert_for_name(&cfg, "192.0.2.7", e, sizeof(e));
	ok(a != NULL && a->implicit && strcmp(a->name, "192.0.2.7") == 0,
	    "an IPv4 literal is a file name: accepted");
	ok(!config_cert_name_valid("::1", e, sizeof(e)) && strstr(e, "file name") != NULL,
	    "config_cert_name_valid('::1') false: '%s'", e);
	ok(config_cert_name_valid("a.example", e, sizeof(e)), "config_cert_name_valid(a.example)");
	memset(name, 'a', CONFIG_CERT_NAME_MAX);
	name[CONFIG_CERT_NAME_MAX] = '\0';
	ok(config_cert_name_valid(name, e, sizeof(e)), "%d characters: a cert name",
	    CONFIG_CERT_NAME_MAX);
	name[CONFIG_CERT_NAME_MAX] = 'a';
	name[CONFIG_CERT_NAME_MAX + 1] = '\0';
	ok(!config_cert_name_valid(name, e, sizeof(e)) && strstr(e, "longer than") != NULL,
	    "%d characters: too long for <name>.rsa.pem.tmp.<pid>", CONFIG_CERT_NAME_MAX + 1);
	snprintf(text, sizeof(text), CA "cert %s\n  domains a.example\n", name);
	fails(text, 3, "longer than 230 characters", "a cert section name too long for a file");
	/* a long domain is fine under a short section name */
	parses(CA "cert short\n  domains aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	    "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
	    "ddddddddddddddddddddddddddddddddddddddddddddd.example\n",
	    "a 245-character domain under a short section name");
	a = config_cert_for_name(&cfg, cfg.certs[0].domains[0], e, sizeof(e));
	ok(a == NULL && strstr(e, "longer than 230") != NULL,
	    "the same 245-character name on the command line: refused ('%.60s...')", e);
}

/* Issue 8: two sections never map to the same file. */
static void
test_same_file(void)
{
	const struct config_cert *a;
	char e[CONFIG_ERR_MAX];

	fails(CA "cert a.example\n  key ecdsa-p256 rsa2048\ncert a.example.rsa\n"
	    "  domains b.example\n", 5, "would both write a.example.rsa.pem",
	    "dual cert a + cert a.rsa: refused at the later section");
	ok(strstr(err, "cert 'a.example.rsa' (line 5)") != NULL &&
	    strstr(err, "cert 'a.example' (line 3") != NULL, "both sections named: '%s'", err);
	fails(CA "cert a.example.rsa\n  domains b.example\ncert a.example\n"
	    "  key rsa2048 ecdsa-p256\n", 5, "would both write a.example.rsa.pem",
	    "the other order: refused at the later section");
	parses(CA "cert a.example\n  key rsa2048\ncert a.example.rsa\n  domains b.example\n",
	    "a single RSA key writes a.example.pem: no clash");
	parses(CA "cert a.example\n  key ecdsa-p256 rsa2048\ncert a.example.rsa.x\n"
	    "  domains b.example\n", "a.example.rsa.x: no clash");
	parses(CA "cert a.example\n  key ecdsa-p256 rsa2048\n", "one dual cert");
	a = config_cert_for_name(&cfg, "a.example.rsa", e, sizeof(e));
	ok(a == NULL && strstr(e, "writes a.example.rsa.pem already") != NULL,
	    "'a.example.rsa' on the command line beside dual cert a.example: refused ('%s')", e);
	fails(CA "cert x.example\ncert y.example\ncert x.example\n", 5,
	    "cert 'x.example' is already defined at line 3", "a duplicate section, far apart");
}

/* Paths that HAProxy commands carry unquoted. */
static void
test_haproxy_paths(void)
{
	fails("global\n  cert-dir \"/etc/my certs\"\n" CA, 2, "cannot hold the character ' '",
	    "cert-dir with a blank");
	fails("global\n  crt-list /etc/haproxy/a;b.list\n" CA, 2, "character ';'",
	    "crt-list with ';'");
	parses("global\n  cert-dir /etc/haproxy/certs-1_2.d\n  crt-list /etc/haproxy/l.list\n" CA,
	    "plain paths");
}

static void
test_load(void)
{
	char path[] = "/tmp/hacme-test-config-XXXXXX";
	int fd = mkstemp(path);
	struct config c;

	ok(fd >= 0, "temp file");
	if (fd >= 0) {
		ok(write(fd, example_real, strlen(example_real)) == (ssize_t)strlen(example_real),
		    "written");
		close(fd);
		ok(config_load(&c, path, err, sizeof(err)) == 0, "config_load");
		is_str(c.file, path, "file as given");
		is_int(c.ncerts, 1, "loaded the example");
		config_free(&c);
		unlink(path);
	}
	ok(config_load(&c, "/nonexistent/hacme.cfg", err, sizeof(err)) == -1 &&
	    strcmp(err, "/nonexistent/hacme.cfg: No such file or directory") == 0,
	    "missing file: '%s'", err);
	ok(c.ncas == 0 && c.file == NULL, "left empty");
	config_free(&c);
	ok(config_load(&c, "/tmp", err, sizeof(err)) == -1 && strstr(err, "/tmp: ") == err,
	    "a directory: '%s'", err);
}

/* dns sections, challenge types, wildcards (DESIGN.md "Interfaces added") */
static void
test_dns(void)
{
	const struct config_cert *ce;

	parses(CA "dns corp\n  provider rfc2136\n  server 192.0.2.53:53\n  zone Acme.Example.net.\n"
	    "  tsig-key hacme-key\n  tsig-algorithm hmac-sha256\n  tsig-secret-file /etc/t\n"
	    "  ttl 60\n  propagation-timeout 300\n"
	    "cert wild.example.com\n  domains example.com *.example.com\n  challenge dns-01\n"
	    "  dns corp\n", "DESIGN.md's dns example");
	ce = config_find_cert(&cfg, "wild.example.com");
	ok(cfg.ndnss == 1 && ce != NULL && ce->dns == &cfg.dnss[0] &&
	    config_cert_challenge(ce, 0) == CHALL_DNS01 &&
	    config_cert_challenge(ce, 1) == CHALL_DNS01, "wildcard cert: dns-01 with dns corp");
	ok(cfg.ndnss == 1 && strcmp(cfg.dnss[0].zone, "acme.example.net") == 0 &&
	    cfg.dnss[0].ttl == 60 && cfg.dnss[0].propagation_timeout == 300 &&
	    strcmp(cfg.dnss[0].server, "192.0.2.53:53") == 0, "zone lower-cased, no dot");
	parses(CA "dns corp\n  provider exec\n  command /bin/hook\n"
	    "cert m\n  domains a.example b.example\n  challenge dns-01 b.example\n",
	    "per-name override, the only dns section by default");
	ce = config_find_cert(&cfg, "m");
	ok(ce != NULL && config_cert_challenge(ce, 0) == CHALL_HTTP01 &&
	    config_cert_challenge(ce, 1) == CHALL_DNS01 && ce->dns == &cfg.dnss[0] &&
	    cfg.dnss[0].provider == DNS_EXEC, "a.example http-01, b.example dns-01");
	parses(CA "cert p\n  domains *.a.example a.example\n  challenge dns-persist-01\n",
	    "dns-persist-01 needs no dns section");
	ok(strcmp(config_challenge_name(CHALL_DNSPERSIST01), "dns-persist-01") == 0,
	    "challenge names");
	parses(CA "cert a.example\n  dns x\ndns x\n  server ns.example\n",
	    "indented dns is the cert's keyword, unindented a section");
	fails(CA "cert d\n  domains a.example\n  challenge dns-01\n", 5,
	    "dns-01 needs a dns section: add `dns NAME`", "dns-01 without dns section");
	fails(CA "cert d\n  challenge tls-alpn-01\n", 4,
	    "use http-01, dns-01 or dns-persist-01", "unknown challenge");
	fails(CA "cert d.example\n  challenge dns-01 x.example\n", 4,
	    "'x.example' is not in this cert's `domains`", "override of an unknown name");
	fails(CA "cert d\n  domains *.a.example\n  challenge http-01\n", 4,
	    "add `challenge dns-01`", "wildcard with http-01 names the keyword");
	fails(CA "cert d\n  domains a*.example.com\n", 4, "a wildcard is '*.' followed",
	    "star inside a label");
	fails(CA "cert d\n  domains *.*.example.com\n", 4, "only one '*'", "two stars");
	fails(CA "cert d.example\n  dns nope\n", 4, "no dns section named 'nope'",
	    "unknown dns section");
	fails(CA "dns x\n  provider nsupdate\n", 4, "use rfc2136 (DNS UPDATE) or exec",
	    "unknown provider");
	fails(CA "dns x\n  provider exec\n", 3, "provider exec needs `command PROGRAM`",
	    "exec without command");
	fails(CA "dns x\n  command /bin/x\n", 3, "`command` is for provider exec",
	    "command with rfc2136");
	fails(CA "dns x\n  tsig-key k\n", 3, "tsig-key without tsig-secret-file",
	    "key without secret");
	fails(CA "dns x\n  tsig-algorithm hmac-md5\n", 4, "use hmac-sha256, hmac-sha384",
	    "md5 refused");
	fails(CA "dns x\n  server a.example:0\n", 4, "port must be 1..65535", "server port");
	fails(CA "dns x\n  zone bad_zone!\n", 4, "not a DNS name", "zone syntax");
	fails(CA "dns x\n  ttl 0\n", 4, "from 1 to 86400", "ttl 0");
	fails(CA "dns x\ndns x\n", 4, "dns 'x' is already defined at line 3", "dns twice");
	config_free(&cfg);
}

int
main(void)
{
	test_example();
	test_defaults();
	test_lines();
	test_quoting();
	test_sections();
	test_keywords();
	test_suggest_limit();
	test_values();
	test_addresses();
	test_ca();
	test_cert();
	test_for_name();
	test_escaped();
	test_name_valid();
	test_cert_name_rule();
	test_same_file();
	test_haproxy_paths();
	test_load();
	test_errors();
	test_dns();
	config_free(&cfg);
	return tap_done();
}
