/* test_status.c - acme/status.c: LEFT, then `hacme status` and `--json`
 * over a state dir made by the test (store_cert_save of a fresh key and a
 * placeholder chain: status reads meta.json only), hacme run's
 * schedule.json beside it, and stand-ins for HAProxy's CLI (forked
 * processes on unix sockets answering `show ssl cert FILE` from a table,
 * with "Permission denied.", or not at all) plus a socket nobody listens
 * on. The real HAProxy is exercised by the integration tests. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/status.h"
#include "acme/store.h"
#include "common/atomicfile.h"
#include "common/log.h"
#include "fakecli.h"
#include "tap.h"

#define DAY 86400

static char tmpdir[] = "/tmp/hacme-test-status-XXXXXX";
static time_t now;

/* ---- HAProxy stand-ins -------------------------------------------------- */

enum fake_mode { FAKE_TABLE, FAKE_DENIED, FAKE_SILENT };

struct served {
	const char *file;	/* under tmpdir/certs */
	const char *serial;
	const char *status;
};

static const struct served served_table[] = {
	{ "a.example.pem", "000A1B", "Used" },	/* ours, leading zeros as HAProxy shows */
	{ "b.example.pem", "B1", "Unused" },	/* ours, but in no crt-list */
	{ "d.example.pem", "DD02", "Used" },	/* an older one */
};

static void
fake_serve(int fd, enum fake_mode mode)
{
	char buf[4096], out[8192], want[600];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
		len += (size_t)n;
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	buf[len] = '\0';
	if (mode == FAKE_DENIED) {
		snprintf(out, sizeof(out), "Permission denied.\n\n");
	} else {
		snprintf(out, sizeof(out), "Can't display the certificate: Not found or the "
		    "certificate is a bundle!\n\n");
		for (size_t i = 0; i < sizeof(served_table) / sizeof(served_table[0]); i++) {
			snprintf(want, sizeof(want), "show ssl cert %s/certs/%s\n", tmpdir,
			    served_table[i].file);
			if (strcmp(buf, want) == 0)
				snprintf(out, sizeof(out), "Filename: %s/certs/%s\nStatus: %s\n"
				    "Serial: %s\nnotBefore: Nov 26 23:29:40 2026 GMT\n"
				    "notAfter: Dec  3 23:29:40 2026 GMT\nSubject: /CN=x\n"
				    "Issuer: /CN=testca\n\n", tmpdir, served_table[i].file,
				    served_table[i].status, served_table[i].serial);
		}
	}
	if (write(fd, out, strlen(out)) < 0)
		return;
}

static void
fake_serve_close(int fd, const void *arg)
{
	enum fake_mode mode = *(const enum fake_mode *)arg;

	if (mode == FAKE_SILENT)
		return;		/* kept open, never answered */
	fake_serve(fd, mode);
	close(fd);
}

static pid_t
fake_start(const char *path, enum fake_mode mode)
{
	static const enum fake_mode modes[] = { FAKE_TABLE, FAKE_DENIED, FAKE_SILENT };

	return fakecli_start(path, fake_serve_close, &modes[mode]);
}

/* ---- the state dir ------------------------------------------------------ */

static char *key_pem;
static size_t key_len;
static const char chain[] = "-----BEGIN CERTIFICATE-----\nMIIBplaceholder\n"
    "-----END CERTIFICATE-----\n";

static void
store_one(struct store *st, const char *name, const char *variant, const char *key_type,
    const char *serial, time_t nb, time_t na, const char *const *names, size_t nnames,
    time_t renew_at, const char *reason, const char *last_error)
{
	struct store_meta m;
	char err[STORE_ERR_MAX];

	memset(&m, 0, sizeof(m));
	m.names = (char **)names;
	m.nnames = nnames;
	m.key_type = (char *)key_type;
	m.serial = (char *)serial;
	m.not_before = nb;
	m.not_after = na;
	m.issuer = (char *)"Test CA";
	m.ca = (char *)"test";
	m.renew_at = renew_at;
	m.renew_reason = (char *)reason;
	m.last_error = (char *)last_error;
	if (store_cert_save(st, name, variant, &m, key_pem, key_len, chain, sizeof(chain) - 1,
	    err, sizeof(err)) < 0)
		printf("# store_cert_save %s: %s\n", name, err);
}

static void
fmt(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- reading the output ------------------------------------------------- */

static char *
run_status(struct config *cfg, bool json, double timeout, int *rc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	*rc = status_report(cfg, json, f, now, timeout);
	fclose(f);
	return text;
}

enum { C_NAME, C_KEY, C_CHALLENGE, C_NOTAFTER, C_LEFT, C_NEXT, C_REASON, C_DEPLOYED, C_ERROR,
    C_N };
static const char *const hdr[C_N] = { "NAME", "KEY", "CHALLENGE", "NOTAFTER", "LEFT", "NEXT",
    "REASON", "DEPLOYED", "ERROR" };

/* The cell of column c in the row named name, read at the header's
 * column offsets; "" when absent. */
static const char *
cell(const char *table, const char *name, int c)
{
	static char out[C_N][600];
	const char *nl = strchr(table, '\n'), *line;
	size_t off[C_N + 1], n, len;

	out[c][0] = '\0';
	if (nl == NULL)
		return out[c];
	for (int i = 0; i < C_N; i++) {
		const char *h = strstr(table, hdr[i]);
		if (h == NULL || h > nl)
			return out[c];
		off[i] = (size_t)(h - table);
	}
	for (line = nl + 1; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		len = nl ? (size_t)(nl - line) : strlen(line);
		n = strlen(name);
		if (len > n && strncmp(line, name, n) == 0 && line[n] == ' ') {
			size_t from = off[c], to = c + 1 < C_N ? off[c + 1] : len;
			if (to > len)
				to = len;
			if (from < to)
				snprintf(out[c], sizeof(out[c]), "%.*s", (int)(to - from), line + from);
			for (n = strlen(out[c]); n > 0 && out[c][n - 1] == ' '; n--)
				out[c][n - 1] = '\0';
			return out[c];
		}
		if (nl == NULL)
			break;
	}
	return out[c];
}

static const cJSON *
jfind(const cJSON *arr, const char *name)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, arr) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
			return o;
	}
	return NULL;
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : cJSON_IsNull(v) ? "(null)" : "(absent)";
}

static const cJSON *
jdep(const cJSON *o, size_t i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "deployed"), (int)i);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_left(void)
{
	char b[STATUS_LEFT_MAX];

	is_str(status_fmt_left(29 * DAY + 4 * 3600 + 59, b, sizeof(b)), "29d4h", "29d4h");
	is_str(status_fmt_left(DAY, b, sizeof(b)), "1d0h", "exactly a day");
	is_str(status_fmt_left(DAY - 1, b, sizeof(b)), "23h59m", "a second less");
	is_str(status_fmt_left(3 * 3600 + 12 * 60 + 5, b, sizeof(b)), "3h12m", "3h12m");
	is_str(status_fmt_left(45 * 60 + 59, b, sizeof(b)), "45m", "45m");
	is_str(status_fmt_left(59, b, sizeof(b)), "59s", "59s");
	is_str(status_fmt_left(1, b, sizeof(b)), "1s", "1s");
	is_str(status_fmt_left(0, b, sizeof(b)), "expired", "0: expired");
	is_str(status_fmt_left(-5 * DAY, b, sizeof(b)), "expired", "past: expired");
	is_str(status_fmt_left(400LL * 365 * DAY, b, sizeof(b)), "146000d0h", "centuries");
}

static void
write_config(const char *path, const char *apis)
{
	FILE *f = fopen(path, "w");

	fprintf(f, "global\n    state-dir %s/state\n    cert-dir %s/certs\n%s"
	    "ca test\n    directory https://ca.test/dir\n"
	    "cert a.example\n    domains a.example www.a.example\n"
	    "cert b.example\n    key ecdsa-p256 rsa2048\n"
	    "cert c.example\n"
	    "cert d.example\n"
	    "cert e.example\n    domains e.example new.e.example\n",
	    tmpdir, tmpdir, apis);
	fclose(f);
}

static void
setup_state(void)
{
	struct store st;
	struct crypto_key *k;
	char err[512], path[300], t1[32], t2[32], sched[2048];
	static const char *const a_names[] = { "a.example", "www.a.example" };
	static const char *const b_names[] = { "b.example" };
	static const char *const d_names[] = { "d.example" };
	static const char *const e_names[] = { "e.example" };
	static const char *const old_names[] = { "old.example" };

	k = crypto_key_generate(KEYTYPE_EC_P256, err, sizeof(err));
	key_pem = k ? crypto_key_pem(k, &key_len) : NULL;
	crypto_key_free(k);
	snprintf(path, sizeof(path), "%s/state", tmpdir);
	if (key_pem == NULL || store_open(&st, path, err, sizeof(err)) < 0) {
		printf("# setup: %s\n", err);
		return;
	}
	/* 60 days, 50 left: 1/3 left (20 days) in 30 days */
	store_one(&st, "a.example", NULL, "ecdsa-p256", "0A1B", now - 10 * DAY, now + 50 * DAY,
	    a_names, 2, 0, NULL, NULL);
	/* the RSA half of an old dual a.example: no longer asked for */
	store_one(&st, "a.example", "rsa", "rsa2048", "A2", now - 10 * DAY, now + 50 * DAY,
	    a_names, 2, 0, NULL, NULL);
	store_one(&st, "b.example", NULL, "ecdsa-p256", "B1", now - 30 * DAY, now + 60 * DAY,
	    b_names, 1, now + 5 * DAY, "ari window", "urn:ietf:params:acme:error:rateLimited: "
	    "too many\x01");
	store_one(&st, "d.example", NULL, "ecdsa-p256", "DD03", now - 90 * DAY, now - 3600,
	    d_names, 1, 0, NULL, NULL);
	store_one(&st, "e.example", NULL, "ecdsa-p256", "E1", now - DAY, now + 89 * DAY,
	    e_names, 1, 0, NULL, NULL);
	store_one(&st, "old.example", NULL, "ecdsa-p384", "0", now - DAY, now + 6 * DAY,
	    old_names, 1, 0, NULL, "urn:ietf:params:acme:error:rateLimited: too many\x01");
	store_close(&st);
	/* hacme run's schedule: b's moment for its serial; d's for another serial
	 * (ignored); c failing */
	fmt(now + 2 * DAY, t1, sizeof(t1));
	fmt(now + 3600, t2, sizeof(t2));
	snprintf(sched, sizeof(sched), "{\"b.example\": {\"serial\": \"B1\", \"renew_at\": \"%s\","
	    " \"renew_reason\": \"ari window (open)\", \"failures\": 0},"
	    " \"d.example\": {\"serial\": \"DD01\", \"renew_at\": \"%s\", \"renew_reason\": \"x\"},"
	    " \"c.example\": {\"failures\": 3, \"next_attempt\": \"%s\","
	    " \"last_error\": \"http-01: 404 from 192.0.2.1\"}}", t1, t1, t2);
	snprintf(path, sizeof(path), "%s/state/schedule.json", tmpdir);
	if (atomic_write(path, sched, strlen(sched), 0600) < 0)
		printf("# schedule.json: %s\n", strerror(errno));
}

static void
test_table(struct config *cfg)
{
	char *out, t[40], t2[40], *p;
	int rc;

	out = run_status(cfg, false, 2.0, &rc);
	is_int(rc, 0, "status: exit 0 whatever the certificates' state");
	for (p = out; p != NULL && *p != '\0'; p = strchr(p, '\n') + 1)
		printf("# %.*s\n", (int)(strchr(p, '\n') - p), p);
	ok(out != NULL && strncmp(out, "NAME ", 5) == 0 && strstr(out, " ERROR\n") != NULL,
	    "a header line");

	is_str(cell(out, "a.example", C_KEY), "ecdsa-p256", "a: KEY");
	is_str(cell(out, "a.example", C_CHALLENGE), "http-01", "a: CHALLENGE (the default)");
	fmt(now + 50 * DAY, t, sizeof(t));
	is_str(cell(out, "a.example", C_NOTAFTER), t, "a: NOTAFTER in RFC 3339 UTC");
	is_str(cell(out, "a.example", C_LEFT), "50d0h", "a: LEFT");
	fmt(now + 30 * DAY, t + 1, sizeof(t) - 1);
	t[0] = '~';
	is_str(cell(out, "a.example", C_NEXT), t,
	    "a: no moment chosen yet: the 1/3 rule's, without jitter, marked ~");
	is_str(cell(out, "a.example", C_REASON), "1/3 of lifetime left", "a: REASON");
	is_str(cell(out, "a.example", C_DEPLOYED), "1/2",
	    "a: served by one HAProxy (leading zeros of HAProxy's serial ignored); the other is down");
	is_str(cell(out, "a.example", C_ERROR), "-", "a: no error");

	is_str(cell(out, "a.example/rsa", C_REASON), "not in config",
	    "a's stored RSA half the config no longer asks for: not in config");
	is_str(cell(out, "a.example/rsa", C_NEXT), "-", "a/rsa: never renewed");
	is_str(cell(out, "a.example/rsa", C_KEY), "rsa2048", "a/rsa: KEY from meta.json");

	fmt(now + 2 * DAY, t2, sizeof(t2));
	is_str(cell(out, "b.example", C_NEXT), t2,
	    "b: schedule.json's moment for the stored serial wins over meta.json's");
	is_str(cell(out, "b.example", C_REASON), "ari window (open)", "b: its reason");
	is_str(cell(out, "b.example", C_DEPLOYED), "0/2",
	    "b: loaded in HAProxy but Unused: not deployed");
	is_str(cell(out, "b.example", C_ERROR), "-",
	    "b: schedule.json's entry (no last_error) wins over meta.json's last_error");

	is_str(cell(out, "b.example/rsa", C_KEY), "rsa2048", "b/rsa: KEY from the config");
	is_str(cell(out, "b.example/rsa", C_NOTAFTER), "-", "b/rsa: not issued: NOTAFTER -");
	is_str(cell(out, "b.example/rsa", C_LEFT), "-", "b/rsa: LEFT -");
	is_str(cell(out, "b.example/rsa", C_NEXT), "-", "b/rsa: NEXT -");
	is_str(cell(out, "b.example/rsa", C_REASON), "not issued", "b/rsa: not issued");
	is_str(cell(out, "b.example/rsa", C_DEPLOYED), "0/2", "b/rsa: 0/2");

	fmt(now + 3600, t, sizeof(t));
	is_str(cell(out, "c.example", C_NEXT), t, "c: not issued, failing: the next attempt");
	is_str(cell(out, "c.example", C_REASON), "not issued", "c: not issued");
	is_str(cell(out, "c.example", C_ERROR), "http-01: 404 from 192.0.2.1",
	    "c: last_error from schedule.json");

	is_str(cell(out, "d.example", C_LEFT), "expired", "d: expired");
	is_str(cell(out, "d.example", C_NEXT), "now",
	    "d: schedule.json's moment for another serial is ignored: now");
	is_str(cell(out, "d.example", C_REASON), "expired", "d: REASON expired");
	is_str(cell(out, "d.example", C_DEPLOYED), "0/2", "d: HAProxy serves another serial");

	is_str(cell(out, "e.example", C_REASON), "config changed",
	    "e: stored names differ from the section: config changed");
	is_str(cell(out, "e.example", C_NEXT), "now", "e: ordered again now");

	is_str(cell(out, "old.example", C_REASON), "not in config", "old: not in config");
	is_str(cell(out, "old.example", C_KEY), "ecdsa-p384", "old: its stored key type");
	is_str(cell(out, "old.example", C_LEFT), "6d0h", "old: LEFT");
	is_str(cell(out, "old.example", C_ERROR),
	    "urn:ietf:params:acme:error:rateLimited: too many\\x01",
	    "old: last_error from meta.json, a control byte escaped");
	ok(strstr(out, "\nold.example/rsa ") == NULL, "old: no RSA half shown");
	p = strstr(out, "\na.example ");
	ok(p != NULL && strstr(out, "\nb.example ") > p && strstr(out, "\ne.example ") <
	    strstr(out, "\nold.example "), "config order, then the stored-only ones");
	free(out);
}

static void
test_json(struct config *cfg)
{
	char *out, t[40];
	cJSON *root;
	const cJSON *o, *d, *v;
	int rc;
	static const char *const keys[] = { "name", "domains", "key", "challenge", "serial",
	    "issuer", "not_after", "next_renewal", "renewal_reason", "last_error", "deployed" };
	bool all = true;

	out = run_status(cfg, true, 2.0, &rc);
	is_int(rc, 0, "--json: exit 0");
	root = out ? cJSON_Parse(out) : NULL;
	ok(cJSON_IsArray(root), "--json: an array");
	is_int(cJSON_GetArraySize(root), 8, "one object per row (6 of the config, 2 stored only)");
	cJSON_ArrayForEach(o, root)
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			all &= cJSON_GetObjectItemCaseSensitive(o, keys[i]) != NULL;
	ok(all, "every object has every DESIGN.md key");

	o = jfind(root, "a.example");
	ok(o != NULL, "a.example");
	d = cJSON_GetObjectItemCaseSensitive(o, "domains");
	ok(cJSON_GetArraySize(d) == 2 &&
	    strcmp(cJSON_GetArrayItem(d, 1)->valuestring, "www.a.example") == 0, "a: domains");
	is_str(jstr(o, "key"), "ecdsa-p256", "a: key");
	is_str(jstr(o, "challenge"), "http-01", "a: challenge");
	is_str(jstr(o, "serial"), "0A1B", "a: serial");
	is_str(jstr(o, "issuer"), "Test CA", "a: issuer");
	fmt(now + 50 * DAY, t, sizeof(t));
	is_str(jstr(o, "not_after"), t, "a: not_after RFC 3339 UTC");
	fmt(now + 30 * DAY, t, sizeof(t));
	is_str(jstr(o, "next_renewal"), t, "a: next_renewal");
	ok(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "next_renewal_estimated")),
	    "a: next_renewal_estimated true");
	is_str(jstr(o, "renewal_reason"), "1/3 of lifetime left", "a: renewal_reason");
	is_str(jstr(o, "last_error"), "(null)", "a: last_error null");
	ok(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "in_config")), "a: in_config");
	is_int(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "deployed")), 2,
	    "a: one deployed entry per runtime-api");
	d = jdep(o, 0);
	ok(strstr(jstr(d, "runtime_api"), "/rt.sock") != NULL, "a: [0] the live HAProxy");
	is_str(jstr(d, "serial"), "A1B", "a: [0] the serial HAProxy shows");
	ok(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")), "a: [0] ok");
	is_str(jstr(d, "error"), "(null)", "a: [0] no error");
	d = jdep(o, 1);
	ok(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(d, "ok")), "a: [1] the dead one: not ok");
	is_str(jstr(d, "serial"), "(null)", "a: [1] serial null");
	v = cJSON_GetObjectItemCaseSensitive(d, "error");
	ok(cJSON_IsString(v) && strstr(v->valuestring, "dead.sock") != NULL &&
	    strstr(v->valuestring, "connect") != NULL, "a: [1] its error names it: %s",
	    cJSON_IsString(v) ? v->valuestring : "?");

	o = jfind(root, "b.example/rsa");
	ok(o != NULL, "b.example/rsa: the RSA half is NAME/rsa");
	is_str(jstr(o, "key"), "rsa2048", "b/rsa: key");
	is_str(jstr(o, "serial"), "(null)", "b/rsa: not issued: serial null");
	is_str(jstr(o, "issuer"), "(null)", "b/rsa: issuer null");
	is_str(jstr(o, "not_after"), "(null)", "b/rsa: not_after null");
	is_str(jstr(o, "next_renewal"), "(null)", "b/rsa: next_renewal null");
	is_str(jstr(o, "renewal_reason"), "not issued", "b/rsa: not issued");
	d = cJSON_GetObjectItemCaseSensitive(o, "domains");
	ok(cJSON_GetArraySize(d) == 1 &&
	    strcmp(cJSON_GetArrayItem(d, 0)->valuestring, "b.example") == 0,
	    "b/rsa: domains from the config");

	o = jfind(root, "b.example");
	ok(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "next_renewal_estimated")),
	    "b: a chosen moment is not estimated");
	d = jdep(o, 0);
	ok(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(d, "ok")) &&
	    strcmp(jstr(d, "serial"), "B1") == 0, "b: [0] our serial, Unused: not ok");
	is_str(jstr(o, "last_error"), "(null)", "b: last_error null (schedule.json's)");

	o = jfind(root, "d.example");
	is_str(jstr(jdep(o, 0), "serial"), "DD02", "d: [0] the other serial HAProxy serves");
	is_str(jstr(o, "renewal_reason"), "expired", "d: expired");
	fmt(now, t, sizeof(t));
	is_str(jstr(o, "next_renewal"), t, "d: next_renewal now");

	o = jfind(root, "old.example");
	ok(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "in_config")),
	    "old: in_config false");
	is_str(jstr(o, "next_renewal"), "(null)", "old: next_renewal null");
	is_str(jstr(o, "last_error"), "urn:ietf:params:acme:error:rateLimited: too many\x01",
	    "old: last_error as stored (JSON escapes it)");
	cJSON_Delete(root);
	free(out);
}

static void
test_haproxies(const char *cfgpath)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX], apis[600], *out;
	cJSON *root;
	const cJSON *d;
	int rc;
	pid_t denied, silent;

	snprintf(apis, sizeof(apis), "%s/denied.sock", tmpdir);
	denied = fake_start(apis, FAKE_DENIED);
	snprintf(apis, sizeof(apis), "%s/silent.sock", tmpdir);
	silent = fake_start(apis, FAKE_SILENT);
	snprintf(apis, sizeof(apis), "    runtime-api unix@%s/denied.sock\n"
	    "    runtime-api unix@%s/silent.sock\n", tmpdir, tmpdir);
	write_config(cfgpath, apis);
	if (config_load(&cfg, cfgpath, err, sizeof(err)) < 0) {
		ok(0, "config: %s", err);
		return;
	}
	out = run_status(&cfg, true, 0.3, &rc);
	root = out ? cJSON_Parse(out) : NULL;
	d = jdep(jfind(root, "a.example"), 0);
	ok(strstr(jstr(d, "error"), "Permission denied.") != NULL &&
	    strstr(jstr(d, "error"), "denied.sock") != NULL,
	    "a HAProxy's refusal is the entry's error: %s", jstr(d, "error"));
	d = jdep(jfind(root, "a.example"), 1);
	ok(strstr(jstr(d, "error"), "silent.sock") != NULL,
	    "a HAProxy that does not answer: an error naming it: %s", jstr(d, "error"));
	d = jdep(jfind(root, "old.example"), 1);
	ok(strstr(jstr(d, "error"), "silent.sock") != NULL,
	    "... for every certificate: %s", jstr(d, "error"));
	is_int(rc, 0, "exit 0");
	cJSON_Delete(root);
	free(out);
	config_free(&cfg);
	fakecli_stop(denied);
	fakecli_stop(silent);

	write_config(cfgpath, "");
	if (config_load(&cfg, cfgpath, err, sizeof(err)) < 0) {
		ok(0, "config: %s", err);
		return;
	}
	out = run_status(&cfg, false, 0.3, &rc);
	is_str(cell(out, "a.example", C_DEPLOYED), "-", "no runtime-api: DEPLOYED -");
	free(out);
	out = run_status(&cfg, true, 0.3, &rc);
	root = out ? cJSON_Parse(out) : NULL;
	is_int(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(jfind(root, "a.example"),
	    "deployed")), 0, "no runtime-api: deployed []");
	cJSON_Delete(root);
	free(out);
	config_free(&cfg);
}

static void
test_errors(const char *cfgpath)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX], *out;
	FILE *f;
	int rc;

	f = fopen(cfgpath, "w");
	fprintf(f, "global\n    state-dir /proc/hacme-no-such-dir/state\n"
	    "ca test\n    directory https://ca.test/dir\ncert a.example\n");
	fclose(f);
	if (config_load(&cfg, cfgpath, err, sizeof(err)) < 0) {
		ok(0, "config: %s", err);
		return;
	}
	out = run_status(&cfg, false, 0.3, &rc);
	is_int(rc, 1, "a state dir that cannot be made: 1");
	is_str(out, "", "... and nothing on stdout");
	free(out);
	config_free(&cfg);

	/* an empty state dir: every certificate "not issued" */
	f = fopen(cfgpath, "w");
	fprintf(f, "global\n    state-dir %s/empty\n"
	    "ca test\n    directory https://ca.test/dir\ncert a.example\n", tmpdir);
	fclose(f);
	if (config_load(&cfg, cfgpath, err, sizeof(err)) < 0) {
		ok(0, "config: %s", err);
		return;
	}
	out = run_status(&cfg, false, 0.3, &rc);
	ok(rc == 0 && strcmp(cell(out, "a.example", C_REASON), "not issued") == 0 &&
	    strcmp(cell(out, "a.example", C_ERROR), "-") == 0, "a fresh state dir: not issued");
	free(out);
	config_free(&cfg);
}

int
main(void)
{
	struct config cfg;
	char cfgpath[200], apis[600], err[CONFIG_ERR_MAX];
	pid_t fake;

	log_init("test_status", LOG_LVL_ERROR);
	now = time(NULL);
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	test_left();
	setup_state();
	snprintf(cfgpath, sizeof(cfgpath), "%s/hacme.cfg", tmpdir);
	snprintf(apis, sizeof(apis), "%s/rt.sock", tmpdir);
	fake = fake_start(apis, FAKE_TABLE);
	snprintf(apis, sizeof(apis), "    runtime-api unix@%s/rt.sock\n"
	    "    runtime-api unix@%s/dead.sock\n", tmpdir, tmpdir);
	write_config(cfgpath, apis);
	if (config_load(&cfg, cfgpath, err, sizeof(err)) == 0) {
		test_table(&cfg);
		test_json(&cfg);
		config_free(&cfg);
	} else {
		ok(0, "config: %s", err);
	}
	fakecli_stop(fake);
	test_haproxies(cfgpath);
	test_errors(cfgpath);
	crypto_wipe_free(key_pem, key_len);
	tap_rmtree(tmpdir);
	return tap_done();
}
