/* test_store.c - the state directory in a mkdtemp dir: round trips,
 * permissions, haproxy.pem normalization, crash recovery of a staged set,
 * the rsa variant, list, remove, names, the lock. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "acme/store.h"
#include "common/atomicfile.h"
#include "tap.h"

static char base[] = "/tmp/hacme-test-store-XXXXXX";
static char state[256];
static char err[STORE_ERR_MAX];

static const char key1[] =
    "-----BEGIN EC PRIVATE KEY-----\r\n"
    "MHcCAQEEIKEY1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAoAoGCCqGSM49\r\n"
    "-----END EC PRIVATE KEY-----";	/* CR LF, no final LF */
static const char chain1[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBLEAF1\n"
    "-----END CERTIFICATE-----\n"
    "\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBISSUER1\n"
    "-----END CERTIFICATE-----\n"
    "  \n";
static const char haproxy1[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIKEY1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAoAoGCCqGSM49\n"
    "-----END EC PRIVATE KEY-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBLEAF1\n"
    "-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBISSUER1\n"
    "-----END CERTIFICATE-----\n";

static const char key2[] = "-----BEGIN EC PRIVATE KEY-----\nKEY2\n-----END EC PRIVATE KEY-----\n";
static const char chain2[] = "-----BEGIN CERTIFICATE-----\nLEAF2\n-----END CERTIFICATE-----\n";

static char *
path_of(const char *rel)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", state, rel);
	return p;
}

static int
mode_of(const char *rel)
{
	struct stat st;

	if (stat(path_of(rel), &st) < 0)
		return -1;
	return (int)(st.st_mode & 07777);
}

static bool
exists(const char *rel)
{
	struct stat st;

	return lstat(path_of(rel), &st) == 0;
}

static char *
slurp(const char *rel)
{
	char *data;
	size_t len;

	if (file_read(path_of(rel), 1 << 20, &data, &len) < 0)
		return NULL;
	return data;
}

static void
put(const char *rel, const char *data)
{
	if (atomic_write(path_of(rel), data, strlen(data), 0644) < 0)
		printf("# cannot write %s: %s\n", rel, strerror(errno));
}

static int
rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
meta_fill(struct store_meta *m, char **names, size_t n, const char *serial)
{
	memset(m, 0, sizeof(*m));
	m->names = names;
	m->nnames = n;
	m->key_type = (char *)"ecdsa-p256";
	m->serial = (char *)serial;
	m->not_before = 1795687200;	/* 2026-11-26T10:00:00Z */
	m->not_after = 1795687200 + 90 * 86400;
	m->issuer = (char *)"Pebble Intermediate CA 1a2b3c";
	m->ca = (char *)"le";
	m->directory = (char *)"https://127.0.0.1:14000/dir";
	m->order_url = (char *)"https://127.0.0.1:14000/my-order/1";
	m->cert_url = (char *)"https://127.0.0.1:14000/certZ/1";
	m->ari_id = (char *)"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
	m->renew_at = 1795687200 + 60 * 86400;
	m->renew_reason = (char *)"ari";
	m->ari_window_start = 1795687200 + 59 * 86400;
	m->ari_window_end = 1795687200 + 61 * 86400;
	m->ari_next_poll = 1795687200 + 21600;
	m->failures = 3;
	m->next_attempt = 1795687200 + 3600;
	m->last_error = (char *)"urn:ietf:params:acme:error:rateLimited: too many";
	m->issued = 1795600801;
}

static void
save(struct store *s, const char *name, const char *variant, const char *serial,
    const char *key, const char *chain)
{
	char *names[] = { (char *)"a.example", (char *)"www.a.example" };
	struct store_meta m;

	meta_fill(&m, names, 2, serial);
	if (!ok(store_cert_save(s, name, variant, &m, key, strlen(key), chain,
	    strlen(chain), err, sizeof(err)) == 0, "save %s%s%s serial %s", name,
	    variant ? "/" : "", variant ? variant : "", serial))
		printf("#   %s\n", err);
}

/* The serial of the stored cert, or "" (static). */
static const char *
serial_of(struct store *s, const char *name, const char *variant)
{
	static char out[STORE_ERR_MAX + 16];
	struct store_cert c;

	out[0] = '\0';
	if (store_cert_load(s, name, variant, &c, err, sizeof(err)) == 0) {
		snprintf(out, sizeof(out), "%s", c.meta.serial ? c.meta.serial : "(null)");
		store_cert_free(&c);
	} else {
		snprintf(out, sizeof(out), "error: %s", err);
	}
	return out;
}

static void
test_open(struct store *s)
{
	struct store bad;
	char file[300];

	ok(store_open(s, state, err, sizeof(err)) == 0, "store_open creates the state dir");
	is_int(mode_of(""), 0700, "state dir 0700");
	is_int(mode_of("account"), 0700, "account/ 0700");
	is_int(mode_of("certs"), 0700, "certs/ 0700");
	is_int(s->lock_fd, -1, "not locked yet");
	snprintf(file, sizeof(file), "%s/afile", base);
	put("../afile", "x");
	ok(store_open(&bad, file, err, sizeof(err)) == -1 && bad.dir == NULL,
	    "a file as state dir fails: %s", err);
	store_close(&bad);
	ok(store_open(&bad, "", err, sizeof(err)) == -1, "empty state dir");
	store_close(&bad);
}

static void
test_lock(struct store *s)
{
	struct store s2;

	ok(store_open(&s2, state, err, sizeof(err)) == 0, "second store");
	ok(store_lock(s, false, err, sizeof(err)) == 0, "lock");
	ok(s->lock_fd >= 0, "lock fd");
	ok(store_lock(s, false, err, sizeof(err)) == 0, "lock again: held already");
	is_int(mode_of("lock"), 0600, "lock file 0600");
	err[0] = '\0';
	errno = 0;
	ok(store_lock(&s2, false, err, sizeof(err)) == -1 && errno == EWOULDBLOCK,
	    "a second open file fails with EWOULDBLOCK");
	ok(strstr(err, "another hacme holds") != NULL && strstr(err, "/lock") != NULL,
	    "message: %s", err);
	is_int(s2.lock_fd, -1, "second store not locked");
	store_close(s);
	ok(store_lock(&s2, false, err, sizeof(err)) == 0, "free after store_close");
	ok(store_open(s, state, err, sizeof(err)) == 0, "reopen");
	ok(store_lock(s, false, err, sizeof(err)) == -1, "now the first one fails");
	store_close(&s2);
	ok(store_lock(s, true, err, sizeof(err)) == 0, "lock with wait once free");
}

static void
test_account(struct store *s)
{
	struct store_account a, b;
	char *pem, *json;
	size_t len;
	cJSON *o;

	ok(store_account_key_save(s, "le", key2, strlen(key2), err, sizeof(err)) == 0,
	    "account key save");
	is_int(mode_of("account/le"), 0700, "account/le 0700");
	is_int(mode_of("account/le/key.pem"), 0600, "account key 0600");
	ok(store_account_key_load(s, "le", &pem, &len, err, sizeof(err)) == 0, "key load");
	is_mem(pem, len, key2, strlen(key2), "account key round trip");
	free(pem);
	errno = 0;
	ok(store_account_key_load(s, "other", &pem, &len, err, sizeof(err)) == -1 &&
	    errno == ENOENT && pem == NULL, "missing key: ENOENT");
	ok(strstr(err, "account/other/key.pem") != NULL, "message names the file: %s", err);

	memset(&a, 0, sizeof(a));
	a.url = (char *)"https://127.0.0.1:14000/my-account/1";
	a.directory = (char *)"https://127.0.0.1:14000/dir";
	a.key_type = (char *)"ecdsa-p256";
	a.thumbprint = (char *)"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
	a.created = 1795687200;
	ok(store_account_save(s, "le", &a, err, sizeof(err)) == 0, "account save");
	is_int(mode_of("account/le/account.json"), 0644, "account.json 0644");
	ok(store_account_load(s, "le", &b, err, sizeof(err)) == 0, "account load");
	is_str(b.url, a.url, "url");
	is_str(b.directory, a.directory, "directory");
	is_str(b.key_type, a.key_type, "key_type");
	is_str(b.thumbprint, a.thumbprint, "thumbprint");
	is_int(b.created, a.created, "created");
	store_account_free(&b);
	json = slurp("account/le/account.json");
	o = json ? cJSON_Parse(json) : NULL;
	ok(o != NULL && cJSON_IsString(cJSON_GetObjectItem(o, "created")) &&
	    strcmp(cJSON_GetObjectItem(o, "created")->valuestring, "2026-11-26T10:00:00Z") == 0,
	    "created written as RFC 3339 UTC");
	ok(json != NULL && json[strlen(json) - 1] == '\n', "account.json ends in LF");
	cJSON_Delete(o);
	free(json);

	memset(&a, 0, sizeof(a));
	a.url = (char *)"https://x/acct/2";
	ok(store_account_save(s, "sparse", &a, err, sizeof(err)) == 0, "sparse account save");
	ok(store_account_load(s, "sparse", &b, err, sizeof(err)) == 0 && b.directory == NULL &&
	    b.created == 0 && b.url != NULL, "absent members: NULL and 0");
	store_account_free(&b);
	put("account/sparse/account.json", "{\"url\": 5}");
	errno = 0;
	ok(store_account_load(s, "sparse", &b, err, sizeof(err)) == -1 && errno == EINVAL &&
	    b.url == NULL, "wrong type: EINVAL");
	ok(strstr(err, "\"url\" is not a string") != NULL, "message: %s", err);
	put("account/sparse/account.json", "{\"created\": \"yesterday\"}");
	ok(store_account_load(s, "sparse", &b, err, sizeof(err)) == -1 &&
	    strstr(err, "RFC 3339") != NULL, "bad time: %s", err);
	put("account/sparse/account.json", "[1]");
	ok(store_account_load(s, "sparse", &b, err, sizeof(err)) == -1 &&
	    strstr(err, "not a JSON object") != NULL, "not an object");
	errno = 0;
	ok(store_account_load(s, "../le", &b, err, sizeof(err)) == -1 && errno == EINVAL,
	    "account name ../le refused");
	ok(store_account_key_save(s, "a/b", key2, strlen(key2), err, sizeof(err)) == -1 &&
	    errno == EINVAL, "account name a/b refused");
}

static void
test_cert_roundtrip(struct store *s)
{
	struct store_cert c;
	struct store_meta m0, *m = &c.meta;
	char *names[] = { (char *)"a.example", (char *)"www.a.example" };
	char *json;
	cJSON *o;

	save(s, "a.example", NULL, "01AB", key1, chain1);
	ok(!exists("certs/a.example/.new"), "no staging dir after save");
	is_int(mode_of("certs/a.example"), 0700, "cert dir 0700");
	is_int(mode_of("certs/a.example/key.pem"), 0600, "key.pem 0600");
	is_int(mode_of("certs/a.example/haproxy.pem"), 0600, "haproxy.pem 0600");
	is_int(mode_of("certs/a.example/chain.pem"), 0644, "chain.pem 0644");
	is_int(mode_of("certs/a.example/meta.json"), 0644, "meta.json 0644");

	ok(store_cert_load(s, "a.example", NULL, &c, err, sizeof(err)) == 0, "load");
	is_mem(c.key_pem, c.key_len, key1, strlen(key1), "key.pem as given");
	is_mem(c.chain_pem, c.chain_len, chain1, strlen(chain1), "chain.pem as given");
	is_mem(c.haproxy_pem, c.haproxy_len, haproxy1, strlen(haproxy1),
	    "haproxy.pem: key + chain, LF only, no blank line, final LF");
	meta_fill(&m0, names, 2, "01AB");
	is_int(m->nnames, 2, "names");
	is_str(m->names[0], "a.example", "name 0");
	is_str(m->names[1], "www.a.example", "name 1");
	is_str(m->key_type, m0.key_type, "key_type");
	is_str(m->serial, "01AB", "serial");
	is_int(m->not_before, m0.not_before, "not_before");
	is_int(m->not_after, m0.not_after, "not_after");
	is_str(m->issuer, m0.issuer, "issuer");
	is_str(m->ca, "le", "ca");
	is_str(m->directory, m0.directory, "directory");
	is_str(m->order_url, m0.order_url, "order_url");
	is_str(m->cert_url, m0.cert_url, "cert_url");
	is_str(m->ari_id, m0.ari_id, "ari_id");
	is_int(m->renew_at, m0.renew_at, "renew_at");
	is_str(m->renew_reason, "ari", "renew_reason");
	is_int(m->ari_window_start, m0.ari_window_start, "ari_window_start");
	is_int(m->ari_window_end, m0.ari_window_end, "ari_window_end");
	is_int(m->ari_next_poll, m0.ari_next_poll, "ari_next_poll");
	is_int(m->failures, 3, "failures");
	is_int(m->next_attempt, m0.next_attempt, "next_attempt");
	is_str(m->last_error, m0.last_error, "last_error");
	is_int(m->issued, m0.issued, "issued");
	store_cert_free(&c);
	ok(c.key_pem == NULL && c.meta.names == NULL, "store_cert_free clears");

	json = slurp("certs/a.example/meta.json");
	o = json ? cJSON_Parse(json) : NULL;
	ok(o != NULL && strcmp(cJSON_GetObjectItem(o, "not_before")->valuestring,
	    "2026-11-26T10:00:00Z") == 0, "times written as RFC 3339 UTC");
	ok(o != NULL && cJSON_GetArraySize(cJSON_GetObjectItem(o, "names")) == 2,
	    "names as a JSON array");
	cJSON_Delete(o);
	free(json);

	/* a sparse meta: absent members come back zero / NULL */
	memset(&m0, 0, sizeof(m0));
	m0.names = names;
	m0.nnames = 1;
	ok(store_cert_save(s, "sparse", NULL, &m0, key2, strlen(key2), chain2,
	    strlen(chain2), err, sizeof(err)) == 0, "save a sparse meta");
	ok(store_cert_load(s, "sparse", NULL, &c, err, sizeof(err)) == 0 &&
	    c.meta.serial == NULL && c.meta.not_after == 0 && c.meta.failures == 0 &&
	    c.meta.nnames == 1, "sparse meta round trip");
	is_mem(c.haproxy_pem, c.haproxy_len,
	    "-----BEGIN EC PRIVATE KEY-----\nKEY2\n-----END EC PRIVATE KEY-----\n"
	    "-----BEGIN CERTIFICATE-----\nLEAF2\n-----END CERTIFICATE-----\n",
	    strlen(key2) + strlen(chain2), "haproxy.pem of clean input: the concatenation");
	store_cert_free(&c);

	/* unknown members ignored, wrong types refused */
	put("certs/sparse/meta.json", "{\"names\":[\"x.example\"],\"future\":{\"a\":1},"
	    "\"not_after\":\"2027-01-01T00:00:00+01:00\"}");
	ok(store_cert_load(s, "sparse", NULL, &c, err, sizeof(err)) == 0 &&
	    c.meta.not_after == 1798758000, "unknown member ignored, offset honoured");
	store_cert_free(&c);
	put("certs/sparse/meta.json", "{\"names\":\"x.example\"}");
	errno = 0;
	ok(store_cert_load(s, "sparse", NULL, &c, err, sizeof(err)) == -1 && errno == EINVAL &&
	    strstr(err, "certs/sparse/meta.json") != NULL, "names not an array: %s", err);
	put("certs/sparse/meta.json", "{\"failures\":-1}");
	ok(store_cert_load(s, "sparse", NULL, &c, err, sizeof(err)) == -1 &&
	    strstr(err, "failures") != NULL, "negative failures refused");
	put("certs/sparse/meta.json", "{\"names\":[\"a\"]} trailing");
	ok(store_cert_load(s, "sparse", NULL, &c, err, sizeof(err)) == -1,
	    "garbage after the JSON refused");

	/* the key of a saved cert can be replaced */
	save(s, "a.example", NULL, "02CD", key2, chain2);
	ok(store_cert_load(s, "a.example", NULL, &c, err, sizeof(err)) == 0 &&
	    strcmp(c.meta.serial, "02CD") == 0 && c.key_len == strlen(key2) &&
	    memcmp(c.key_pem, key2, c.key_len) == 0, "a second save replaces the set");
	store_cert_free(&c);

	/* meta alone */
	meta_fill(&m0, names, 2, "02CD");
	m0.failures = 7;
	m0.last_error = NULL;
	ok(store_meta_save(s, "a.example", NULL, &m0, err, sizeof(err)) == 0, "store_meta_save");
	ok(store_cert_load(s, "a.example", NULL, &c, err, sizeof(err)) == 0 &&
	    c.meta.failures == 7 && c.meta.last_error == NULL &&
	    memcmp(c.key_pem, key2, c.key_len) == 0, "meta changed, key kept");
	store_cert_free(&c);
	errno = 0;
	ok(store_meta_save(s, "nothere", NULL, &m0, err, sizeof(err)) == -1 && errno == ENOENT,
	    "meta_save of a missing cert: ENOENT (%s)", err);
	ok(!exists("certs/nothere"), "and nothing created");

	errno = 0;
	ok(store_cert_load(s, "nothere", NULL, &c, err, sizeof(err)) == -1 && errno == ENOENT &&
	    strstr(err, "not stored") != NULL, "load of a missing cert: ENOENT (%s)", err);
	m0.not_after = (time_t)400000000000LL;	/* year 14645 */
	ok(store_cert_save(s, "far", NULL, &m0, key2, strlen(key2), chain2, strlen(chain2),
	    err, sizeof(err)) == -1 && strstr(err, "0000..9999") != NULL,
	    "a time past 9999 refused: %s", err);
	ok(store_cert_save(s, "nul", NULL, &m0, "a\0b", 3, chain2, strlen(chain2), err,
	    sizeof(err)) == -1 && errno == EINVAL, "NUL in a key refused");
	ok(store_cert_save(s, "empty", NULL, &m0, key2, 0, chain2, strlen(chain2), err,
	    sizeof(err)) == -1 && errno == EINVAL, "empty key refused");
}

/* Writes a staged set by hand: what a crash leaves. */
static void
stage(const char *dir, const char *serial, bool with_key, bool with_meta)
{
	char rel[256], meta[256];

	snprintf(rel, sizeof(rel), "%s/.new", dir);
	mkdir(path_of(rel), 0700);
	if (with_key) {
		snprintf(rel, sizeof(rel), "%s/.new/key.pem", dir);
		put(rel, key2);
		snprintf(rel, sizeof(rel), "%s/.new/haproxy.pem", dir);
		put(rel, "HAPROXY-NEW\n");
	}
	snprintf(rel, sizeof(rel), "%s/.new/chain.pem", dir);
	put(rel, chain2);
	snprintf(rel, sizeof(rel), "%s/.new/meta.json.tmp.4242", dir);
	put(rel, "{\"half");
	if (with_meta) {
		snprintf(meta, sizeof(meta), "{\"names\":[\"a.example\"],\"serial\":\"%s\"}", serial);
		snprintf(rel, sizeof(rel), "%s/.new/meta.json", dir);
		put(rel, meta);
	}
}

static void
test_crash(struct store *s)
{
	struct store other, s3;
	struct store_cert c;

	save(s, "c.example", NULL, "OLD", key1, chain1);

	/* complete staged set: rolled forward */
	stage("certs/c.example", "NEW", true, true);
	is_str(serial_of(s, "c.example", NULL), "NEW", "complete .new/: load sees the new set");
	ok(!exists("certs/c.example/.new"), "complete .new/ is gone");
	ok(store_cert_load(s, "c.example", NULL, &c, err, sizeof(err)) == 0 &&
	    memcmp(c.key_pem, key2, c.key_len) == 0 &&
	    memcmp(c.haproxy_pem, "HAPROXY-NEW\n", c.haproxy_len) == 0,
	    "new key and haproxy.pem in place");
	store_cert_free(&c);

	/* complete set half moved before the crash (key, haproxy.pem gone) */
	save(s, "c.example", NULL, "OLD", key1, chain1);
	put("certs/c.example/key.pem", key2);
	put("certs/c.example/haproxy.pem", "HAPROXY-NEW\n");
	stage("certs/c.example", "NEW2", false, true);
	is_str(serial_of(s, "c.example", NULL), "NEW2", "half-moved set: finished");
	ok(store_cert_load(s, "c.example", NULL, &c, err, sizeof(err)) == 0 &&
	    memcmp(c.chain_pem, chain2, c.chain_len) == 0 &&
	    memcmp(c.key_pem, key2, c.key_len) == 0, "every file of the new set");
	store_cert_free(&c);

	/* incomplete staged set (no meta.json): removed, old set kept */
	save(s, "c.example", NULL, "OLD", key1, chain1);
	stage("certs/c.example", "NEVER", true, false);
	is_str(serial_of(s, "c.example", NULL), "OLD", "incomplete .new/: load sees the old set");
	ok(!exists("certs/c.example/.new"), "incomplete .new/ is gone");
	ok(store_cert_load(s, "c.example", NULL, &c, err, sizeof(err)) == 0 &&
	    memcmp(c.key_pem, key1, c.key_len) == 0, "old key kept");
	store_cert_free(&c);

	/* a first save that crashed while staging: not stored */
	mkdir(path_of("certs/first.example"), 0700);
	stage("certs/first.example", "X", true, false);
	errno = 0;
	ok(store_cert_load(s, "first.example", NULL, &c, err, sizeof(err)) == -1 &&
	    errno == ENOENT, "incomplete first save: not stored");
	ok(!exists("certs/first.example/.new"), "and cleaned");

	/* a reader while another store holds the lock: reads through, no repair */
	store_close(s);
	ok(store_open(&other, state, err, sizeof(err)) == 0 &&
	    store_lock(&other, false, err, sizeof(err)) == 0, "another store holds the lock");
	ok(store_open(s, state, err, sizeof(err)) == 0, "reader store");
	stage("certs/c.example", "BUSY", true, true);
	is_str(serial_of(s, "c.example", NULL), "BUSY", "reader without the lock sees the new set");
	ok(exists("certs/c.example/.new/meta.json"), "and leaves .new/ to the lock holder");
	ok(store_cert_load(s, "c.example", NULL, &c, err, sizeof(err)) == 0 &&
	    memcmp(c.key_pem, key2, c.key_len) == 0, "its key through .new/");
	store_cert_free(&c);
	stage("certs/c.example", "BUSY2", true, false);	/* meta.json stays from BUSY */
	is_str(serial_of(&other, "c.example", NULL), "BUSY", "the lock holder rolls forward");
	ok(!exists("certs/c.example/.new"), "lock holder removed .new/");
	store_close(&other);

	/* lock free, reader not holding it: it repairs under a temporary lock */
	stage("certs/c.example", "FREE", true, true);
	is_str(serial_of(s, "c.example", NULL), "FREE", "unlocked reader, free lock: repaired");
	ok(!exists("certs/c.example/.new"), ".new/ gone");
	ok(store_open(&s3, state, err, sizeof(err)) == 0 &&
	    store_lock(&s3, false, err, sizeof(err)) == 0, "the temporary lock was released");
	store_close(&s3);
	ok(store_lock(s, false, err, sizeof(err)) == 0, "relock");
}

static void
test_variant(struct store *s)
{
	struct store_cert c;
	char **names = NULL;
	int n;

	save(s, "dual.example", NULL, "EC1", key1, chain1);
	save(s, "dual.example", "rsa", "RSA1", key2, chain2);
	ok(exists("certs/dual.example/rsa/meta.json"), "rsa set in certs/<name>/rsa/");
	is_int(mode_of("certs/dual.example/rsa"), 0700, "rsa dir 0700");
	is_int(mode_of("certs/dual.example/rsa/key.pem"), 0600, "rsa key 0600");
	is_str(serial_of(s, "dual.example", NULL), "EC1", "main set");
	is_str(serial_of(s, "dual.example", "rsa"), "RSA1", "rsa set");
	save(s, "dual.example", NULL, "EC2", key2, chain2);
	is_str(serial_of(s, "dual.example", "rsa"), "RSA1", "saving main leaves rsa alone");
	ok(store_cert_load(s, "dual.example", "rsa", &c, err, sizeof(err)) == 0 &&
	    memcmp(c.key_pem, key2, c.key_len) == 0, "rsa key kept");
	store_cert_free(&c);
	save(s, "dual.example", "rsa", "RSA2", key1, chain1);
	is_str(serial_of(s, "dual.example", NULL), "EC2", "saving rsa leaves main alone");

	/* a staged rsa set is the rsa set's business only */
	stage("certs/dual.example/rsa", "RSA3", true, true);
	is_str(serial_of(s, "dual.example", NULL), "EC2", "main load with rsa/.new/");
	ok(exists("certs/dual.example/rsa/.new/meta.json"), "main load leaves rsa/.new/");
	stage("certs/dual.example", "EC3", true, false);
	is_str(serial_of(s, "dual.example", "rsa"), "RSA3", "rsa load rolls rsa forward");
	ok(exists("certs/dual.example/.new"), "rsa load leaves main's .new/");
	is_str(serial_of(s, "dual.example", NULL), "EC2", "main's incomplete set dropped");
	ok(exists("certs/dual.example/rsa/meta.json"), "rsa untouched by main's repair");

	n = store_cert_list(s, &names, err, sizeof(err));
	ok(n > 0, "list");
	for (int i = 0; i < n; i++) {
		ok(strcmp(names[i], "rsa") != 0, "'%s' listed, not rsa", names[i]);
		free(names[i]);
	}
	free(names);

	errno = 0;
	ok(store_cert_load(s, "dual.example", "ecdsa", &c, err, sizeof(err)) == -1 &&
	    errno == EINVAL, "variant other than rsa refused");
	errno = 0;
	ok(store_cert_load(s, "only-main.example", "rsa", &c, err, sizeof(err)) == -1 &&
	    errno == ENOENT && strstr(err, "(rsa)") != NULL, "missing rsa: %s", err);
}

static void
test_list_remove(struct store *s)
{
	static const char *const want[] = {
		"a.example", "b", "c.example", "dual.example", "rsa-only", "sparse",
	};
	char **names = NULL;
	struct store_cert c;
	char *p;
	int n;
	bool same;

	save(s, "b", NULL, "B", key1, chain1);
	save(s, "rsa-only", "rsa", "R", key1, chain1);
	mkdir(path_of("certs/empty"), 0700);	/* no meta.json: not stored */
	put("certs/afile", "x");
	mkdir(path_of("certs/.rm.gone"), 0700);
	put("certs/.rm.gone/meta.json", "{}");
	n = store_cert_list(s, &names, err, sizeof(err));
	is_int(n, 6, "six stored certificates");
	same = n == 6;
	for (int i = 0; i < n; i++) {
		if (same && strcmp(names[i], want[i]) != 0)
			same = false;
		free(names[i]);
	}
	free(names);
	ok(same, "sorted names, no rsa, no empty dir, no file, no trash");

	ok(store_cert_remove(s, "dual.example", err, sizeof(err)) == 0, "remove");
	ok(!exists("certs/dual.example") && !exists("certs/.rm.dual.example"),
	    "certs/<name>/ gone, rsa/ with it");
	errno = 0;
	ok(store_cert_load(s, "dual.example", "rsa", &c, err, sizeof(err)) == -1 &&
	    errno == ENOENT, "rsa half gone");
	ok(store_cert_remove(s, "dual.example", err, sizeof(err)) == 0, "remove again: 0");
	n = store_cert_list(s, &names, err, sizeof(err));
	is_int(n, 5, "five left");
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);

	/* a crash during a removal leaves certs/.rm.<name>: the next lock cleans */
	store_close(s);
	ok(store_open(s, state, err, sizeof(err)) == 0 &&
	    store_lock(s, false, err, sizeof(err)) == 0, "reopen and lock");
	ok(!exists("certs/.rm.gone"), "trash of a crashed removal cleaned");

	p = store_cert_path(s, "a.example", "rsa", "key.pem");
	ok(p != NULL && strcmp(p, path_of("certs/a.example/rsa/key.pem")) == 0,
	    "store_cert_path: %s", p ? p : "(null)");
	free(p);
	p = store_cert_path(s, "a.example", NULL, "haproxy.pem");
	ok(p != NULL && strcmp(p, path_of("certs/a.example/haproxy.pem")) == 0,
	    "store_cert_path without variant");
	free(p);
	p = store_cert_path(s, "a.example", NULL, NULL);
	ok(p != NULL && strcmp(p, path_of("certs/a.example")) == 0, "store_cert_path: the dir");
	free(p);
}

static void
test_names(struct store *s)
{
	static const char *const bad[] = {
		"../x", "a/b", "", ".", "..", ".new", ".rm.x", "/abs", "a b", "a\nb",
	};
	struct store_meta m;
	struct store_cert c;
	char long_name[300];

	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool all;

		errno = 0;
		all = store_cert_load(s, bad[i], NULL, &c, err, sizeof(err)) == -1 && errno == EINVAL;
		errno = 0;
		all = all && store_cert_save(s, bad[i], NULL, &m, key1, strlen(key1), chain1,
		    strlen(chain1), err, sizeof(err)) == -1 && errno == EINVAL;
		errno = 0;
		all = all && store_meta_save(s, bad[i], NULL, &m, err, sizeof(err)) == -1 &&
		    errno == EINVAL;
		errno = 0;
		all = all && store_cert_remove(s, bad[i], err, sizeof(err)) == -1 && errno == EINVAL;
		all = all && store_cert_path(s, bad[i], NULL, "key.pem") == NULL;
		ok(all, "name '%s' refused everywhere", strchr(bad[i], '\n') ? "a\\nb" : bad[i]);
	}
	ok(store_cert_load(s, NULL, NULL, &c, err, sizeof(err)) == -1 && errno == EINVAL,
	    "NULL name refused");
	ok(store_cert_load(s, "x", "../rsa", &c, err, sizeof(err)) == -1 && errno == EINVAL,
	    "variant ../rsa refused");
	memset(long_name, 'a', 254);
	long_name[254] = '\0';
	ok(store_cert_remove(s, long_name, err, sizeof(err)) == -1 && errno == EINVAL,
	    "254-char name refused");
	ok(strlen(err) < 200, "message cut: %s", err);
	ok(!exists("x") && !exists("../x"), "nothing written outside certs/");
}

int
main(void)
{
	struct store s;

	if (mkdtemp(base) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(state, sizeof(state), "%s/state", base);
	test_open(&s);
	test_lock(&s);
	test_account(&s);
	test_cert_roundtrip(&s);
	test_crash(&s);
	test_variant(&s);
	test_list_remove(&s);
	test_names(&s);
	store_close(&s);
	nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
