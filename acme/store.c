/* store.c - hacme's state directory (DESIGN.md "On disk"). See store.h.
 *
 * A certificate's four files change as one set: they are staged in
 * certs/<name>[/rsa]/.new/ (meta.json last marks the set complete), then
 * renamed into place with meta.json last again. Whoever holds the lock
 * finishes a complete staged set or removes an incomplete one before
 * reading; a reader without the lock reads through a complete staged set
 * instead (each file from .new/ when still there), so it too sees one set. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "acme/config.h"
#include "acme/proto.h"
#include "acme/store.h"
#include "common/atomicfile.h"
#include "common/errbuf.h"

#define STAGE ".new"
#define TRASH ".rm."		/* certs/.rm.<name>: a removal in progress */
#define META_NAMES_MAX 1000
#define CERTS_MAX 100000	/* names store_cert_list returns at most */
#define RM_DEPTH 4		/* certs/<name>/rsa/.new/<file> */

/* The set, in the order it is staged and committed: meta.json last. */
static const char *const set_files[] = {
	"key.pem", "chain.pem", "haproxy.pem", "meta.json",
};
static const mode_t set_modes[] = { 0600, 0644, 0600, 0644 };
#define SET_N 4

/* Sets err and errno e; returns -1. */
static int __attribute__((format(printf, 4, 5)))
serr(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errbuf_vset(err, errlen, fmt, ap);
	va_end(ap);
	errno = e;
	return -1;
}

/* "<path>: <strerror(errno)>" */
static int
serr_path(char *err, size_t errlen, const char *path)
{
	int e = errno;

	return serr(err, errlen, e, "%s: %s", path, strerror(e));
}

static char * __attribute__((format(printf, 1, 2)))
pathf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

static void
wipe_free(char *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

static int
check_name(const char *what, const char *name, char *err, size_t errlen)
{
	if (config_section_name_valid(name))
		return 0;
	return serr(err, errlen, EINVAL, "%s name '%.64s%s': use 1..%d of A-Z a-z "
	    "0-9 . _ - (not starting with '.')", what, name ? name : "",
	    name && strlen(name) > 64 ? "..." : "", CONFIG_NAME_MAX);
}

static int
check_names(const char *name, const char *variant, char *err, size_t errlen)
{
	char why[128];

	if (!config_cert_name_valid(name, why, sizeof(why)))
		return serr(err, errlen, EINVAL, "certificate name '%.64s%s': %s",
		    name ? name : "", name && strlen(name) > 64 ? "..." : "", why);
	if (variant != NULL && strcmp(variant, "rsa") != 0)
		return serr(err, errlen, EINVAL, "certificate variant '%.16s': "
		    "only \"rsa\" (or none)", variant);
	return 0;
}

/* certs/<name>[/<variant>]: NULL with errno */
static char *
cert_dir(const struct store *s, const char *name, const char *variant)
{
	if (variant != NULL)
		return pathf("%s/certs/%s/%s", s->dir, name, variant);
	return pathf("%s/certs/%s", s->dir, name);
}

char *
store_cert_path(const struct store *s, const char *name, const char *variant,
    const char *file)
{
	char *dir, *p;

	if (s == NULL || s->dir == NULL || check_names(name, variant, NULL, 0) < 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((dir = cert_dir(s, name, variant)) == NULL || file == NULL)
		return dir;
	p = pathf("%s/%s", dir, file);
	free(dir);
	return p;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* fsync of a directory. */
static int
sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, e;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* rm -r of name in dfd, not following links, at most depth levels. */
static int
rm_at(int dfd, const char *name, int depth)
{
	struct dirent *e;
	DIR *d;
	int fd, rc = 0, saved;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	if (depth == 0) {
		errno = ELOOP;
		return -1;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((rc = rm_at(dirfd(d), e->d_name, depth - 1)) < 0)
			break;
	}
	saved = errno;
	closedir(d);
	errno = saved;
	if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

static int
rm_tree(const char *path)
{
	return rm_at(AT_FDCWD, path, RM_DEPTH);
}

/* ---- open, lock ---- */

int
store_open(struct store *s, const char *state_dir, char *err, size_t errlen)
{
	static const char *const subdirs[] = { "account", "certs" };
	char *p;

	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
	if (state_dir == NULL || state_dir[0] == '\0')
		return serr(err, errlen, EINVAL, "empty state-dir");
	if ((s->dir = strdup(state_dir)) == NULL)
		return serr(err, errlen, ENOMEM, "out of memory");
	if (mkdir_p(s->dir, 0700) < 0) {
		serr_path(err, errlen, s->dir);
		goto fail;
	}
	for (size_t i = 0; i < 2; i++) {
		if ((p = pathf("%s/%s", s->dir, subdirs[i])) == NULL) {
			serr(err, errlen, ENOMEM, "out of memory");
			goto fail;
		}
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			serr_path(err, errlen, p);
			free(p);
			goto fail;
		}
		free(p);
	}
	return 0;
fail:
	p = s->dir;
	s->dir = NULL;
	free(p);
	return -1;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->lock_fd >= 0)
		close(s->lock_fd);	/* releases the flock */
	s->lock_fd = -1;
	free(s->dir);
	s->dir = NULL;
}

/* An fd holding the lock, or -1 (busy, or no permission). */
static int
lock_take(const struct store *s, bool wait, char *err, size_t errlen)
{
	char *path = pathf("%s/lock", s->dir);
	int fd = -1, e;

	if (path == NULL)
		return serr(err, errlen, ENOMEM, "out of memory");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		serr_path(err, errlen, path);
		goto out;
	}
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR && wait)
			continue;
		e = errno;
		if (e == EWOULDBLOCK)
			serr(err, errlen, e, "another hacme holds %s", path);
		else
			serr(err, errlen, e, "%s: flock: %s", path, strerror(e));
		close(fd);
		fd = -1;
		errno = e;
		goto out;
	}
out:
	e = errno;
	free(path);
	errno = e;
	return fd;
}

/* Leftovers of a removal interrupted by a crash: certs/.rm.* */
static void
trash_clean(const struct store *s)
{
	char *certs = pathf("%s/certs", s->dir), *p;
	struct dirent *e;
	DIR *d;

	if (certs == NULL || (d = opendir(certs)) == NULL) {
		free(certs);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, TRASH, strlen(TRASH)) != 0)
			continue;
		if ((p = pathf("%s/%s", certs, e->d_name)) != NULL)
			(void)rm_tree(p);
		free(p);
	}
	closedir(d);
	free(certs);
}

int
store_lock(struct store *s, bool wait, char *err, size_t errlen)
{
	int fd;

	if (s->lock_fd >= 0)
		return 0;
	if ((fd = lock_take(s, wait, err, errlen)) < 0)
		return -1;
	s->lock_fd = fd;
	trash_clean(s);
	return 0;
}

void
store_unlock(struct store *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd);	/* releases the flock */
	s->lock_fd = -1;
}

/* True when this caller may repair staged sets: it holds the lock, or the
 * lock is free (*tmpfd then holds it until released by the caller). */
static bool
may_repair(const struct store *s, int *tmpfd)
{
	*tmpfd = -1;
	if (s->lock_fd >= 0)
		return true;
	*tmpfd = lock_take(s, false, NULL, 0);
	return *tmpfd >= 0;
}

static void
lock_release(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* ---- JSON ---- */

enum ftype { F_STR, F_TIME };

struct field {
	const char *key;
	enum ftype type;
	size_t off;
};

#define M(f) offsetof(struct store_meta, f)
static const struct field meta_fields[] = {
	{ "key_type", F_STR, M(key_type) },
	{ "serial", F_STR, M(serial) },
	{ "not_before", F_TIME, M(not_before) },
	{ "not_after", F_TIME, M(not_after) },
	{ "issuer", F_STR, M(issuer) },
	{ "ca", F_STR, M(ca) },
	{ "directory", F_STR, M(directory) },
	{ "order_url", F_STR, M(order_url) },
	{ "cert_url", F_STR, M(cert_url) },
	{ "ari_id", F_STR, M(ari_id) },
	{ "renew_at", F_TIME, M(renew_at) },
	{ "renew_reason", F_STR, M(renew_reason) },
	{ "ari_window_start", F_TIME, M(ari_window_start) },
	{ "ari_window_end", F_TIME, M(ari_window_end) },
	{ "ari_next_poll", F_TIME, M(ari_next_poll) },
	{ "next_attempt", F_TIME, M(next_attempt) },
	{ "last_error", F_STR, M(last_error) },
	{ "issued", F_TIME, M(issued) },
};

#define AC(f) offsetof(struct store_account, f)
static const struct field account_fields[] = {
	{ "url", F_STR, AC(url) },
	{ "directory", F_STR, AC(directory) },
	{ "key_type", F_STR, AC(key_type) },
	{ "thumbprint", F_STR, AC(thumbprint) },
	{ "created", F_TIME, AC(created) },
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* "2026-11-26T10:00:00Z"; false when the year is outside 0000..9999. */
static bool
time_format(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900)
		return false;
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return true;
}

/* Adds the set fields (NULL strings and 0 times are left out). */
static int
fields_put(cJSON *o, const struct field *f, size_t n, const void *base,
    const char *what, char *err, size_t errlen)
{
	char buf[32];

	for (size_t i = 0; i < n; i++) {
		const char *v = NULL;

		if (f[i].type == F_STR) {
			v = *(char *const *)(const void *)((const char *)base + f[i].off);
		} else {
			time_t t = *(const time_t *)(const void *)((const char *)base + f[i].off);
			if (t == 0)
				continue;
			if (!time_format(t, buf, sizeof(buf)))
				return serr(err, errlen, EOVERFLOW, "%s: \"%s\" is "
				    "outside the years 0000..9999", what, f[i].key);
			v = buf;
		}
		if (v != NULL && cJSON_AddStringToObject(o, f[i].key, v) == NULL)
			return serr(err, errlen, ENOMEM, "out of memory");
	}
	return 0;
}

static int
fields_get(const cJSON *o, const struct field *f, size_t n, void *base,
    const char *path, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f[i].key);
		void *field = (char *)base + f[i].off;

		if (v == NULL || cJSON_IsNull(v))
			continue;
		if (!cJSON_IsString(v) || v->valuestring == NULL)
			return serr(err, errlen, EINVAL, "%s: \"%s\" is not a string",
			    path, f[i].key);
		if (f[i].type == F_TIME) {
			if (proto_rfc3339_parse(v->valuestring,
			    strlen(v->valuestring), (time_t *)field) < 0)
				return serr(err, errlen, EINVAL, "%s: \"%s\" is not an "
				    "RFC 3339 time", path, f[i].key);
		} else if ((*(char **)field = strdup(v->valuestring)) == NULL) {
			return serr(err, errlen, ENOMEM, "out of memory");
		}
	}
	return 0;
}

/* The JSON object in text (NUL-terminated, as file_read gives it); NULL
 * with errno and err naming path. */
static cJSON *
json_parse(const char *text, size_t len, const char *path, char *err,
    size_t errlen)
{
	cJSON *root;

	root = memchr(text, '\0', len) == NULL ?
	    cJSON_ParseWithOpts(text, NULL, 1) : NULL;
	if (root == NULL || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		serr(err, errlen, EINVAL, "%s: not a JSON object", path);
		return NULL;
	}
	return root;
}

static cJSON *
json_read(const char *path, char *err, size_t errlen)
{
	cJSON *root;
	char *text;
	size_t len;
	int e;

	if (file_read(path, STORE_FILE_MAX, &text, &len) < 0) {
		serr_path(err, errlen, path);
		return NULL;
	}
	root = json_parse(text, len, path, err, errlen);
	e = errno;
	free(text);
	errno = e;
	return root;
}

/* Prints o with a final LF; NULL with err. */
static char *
json_print(cJSON *o, size_t *len, char *err, size_t errlen)
{
	char *text = cJSON_Print(o), *out;

	if (text == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		return NULL;
	}
	*len = strlen(text);
	if ((out = realloc(text, *len + 2)) == NULL) {
		free(text);
		serr(err, errlen, ENOMEM, "out of memory");
		return NULL;
	}
	out[(*len)++] = '\n';
	out[*len] = '\0';
	return out;
}

static char *
meta_json(const struct store_meta *m, size_t *len, char *err, size_t errlen)
{
	cJSON *o = cJSON_CreateObject(), *names;
	char *text = NULL;

	if (o == NULL || (names = cJSON_AddArrayToObject(o, "names")) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	if (m->nnames > META_NAMES_MAX) {
		serr(err, errlen, EINVAL, "meta.json: more than %d names",
		    META_NAMES_MAX);
		goto out;
	}
	for (size_t i = 0; i < m->nnames; i++) {
		cJSON *v = cJSON_CreateString(m->names[i] ? m->names[i] : "");
		if (v == NULL || !cJSON_AddItemToArray(names, v)) {
			cJSON_Delete(v);
			serr(err, errlen, ENOMEM, "out of memory");
			goto out;
		}
	}
	if (fields_put(o, meta_fields, NFIELDS(meta_fields), m, "meta.json",
	    err, errlen) < 0)
		goto out;
	if (cJSON_AddNumberToObject(o, "failures", m->failures) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	text = json_print(o, len, err, errlen);
out:
	cJSON_Delete(o);
	return text;
}

static int
meta_parse(struct store_meta *m, const char *text, size_t len, const char *path,
    char *err, size_t errlen)
{
	const cJSON *names, *fail, *v;
	cJSON *o;
	int rc = -1;

	if ((o = json_parse(text, len, path, err, errlen)) == NULL)
		return -1;
	names = cJSON_GetObjectItemCaseSensitive(o, "names");
	if (names != NULL && !cJSON_IsNull(names)) {
		int n = cJSON_GetArraySize(names);

		if (!cJSON_IsArray(names) || n > META_NAMES_MAX) {
			serr(err, errlen, EINVAL, "%s: \"names\" is not an array of "
			    "at most %d names", path, META_NAMES_MAX);
			goto out;
		}
		if (n > 0 && (m->names = calloc((size_t)n, sizeof(char *))) == NULL) {
			serr(err, errlen, ENOMEM, "out of memory");
			goto out;
		}
		cJSON_ArrayForEach(v, names) {
			if (!cJSON_IsString(v) || v->valuestring == NULL) {
				serr(err, errlen, EINVAL, "%s: a name is not a string",
				    path);
				goto out;
			}
			if ((m->names[m->nnames] = strdup(v->valuestring)) == NULL) {
				serr(err, errlen, ENOMEM, "out of memory");
				goto out;
			}
			m->nnames++;
		}
	}
	fail = cJSON_GetObjectItemCaseSensitive(o, "failures");
	if (fail != NULL && !cJSON_IsNull(fail)) {
		if (!cJSON_IsNumber(fail) || fail->valuedouble < 0 ||
		    fail->valuedouble > 4294967295.0) {
			serr(err, errlen, EINVAL, "%s: \"failures\" is not a count", path);
			goto out;
		}
		m->failures = (unsigned)fail->valuedouble;
	}
	if (fields_get(o, meta_fields, NFIELDS(meta_fields), m, path, err,
	    errlen) < 0)
		goto out;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

/* ---- account ---- */

void
store_account_free(struct store_account *a)
{
	if (a == NULL)
		return;
	free(a->url);
	free(a->directory);
	free(a->key_type);
	free(a->thumbprint);
	memset(a, 0, sizeof(*a));
}

/* account/<ca>/<file>, creating account/<ca>/ when mk. */
static char *
account_path(struct store *s, const char *ca, const char *file, bool mk,
    char *err, size_t errlen)
{
	char *dir, *p = NULL;

	if (check_name("ca", ca, err, errlen) < 0)
		return NULL;
	if ((dir = pathf("%s/account/%s", s->dir, ca)) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		return NULL;
	}
	if (mk && mkdir_p(dir, 0700) < 0)
		serr_path(err, errlen, dir);
	else if ((p = pathf("%s/%s", dir, file)) == NULL)
		serr(err, errlen, ENOMEM, "out of memory");
	free(dir);
	return p;
}

/* Writes data to path with mode; err names the file. */
static int
write_file(const char *path, const void *data, size_t len, mode_t mode,
    char *err, size_t errlen)
{
	if (atomic_write(path, data, len, mode) < 0)
		return serr_path(err, errlen, path);
	return 0;
}

static int
read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	if (file_read(path, STORE_FILE_MAX, out, len) < 0)
		return serr_path(err, errlen, path);
	return 0;
}

int
store_account_key_load(struct store *s, const char *ca, char **pem, size_t *len,
    char *err, size_t errlen)
{
	char *path = account_path(s, ca, "key.pem", false, err, errlen);
	int rc, e;

	*pem = NULL;
	*len = 0;
	if (path == NULL)
		return -1;
	rc = read_file(path, pem, len, err, errlen);
	e = errno;
	free(path);
	errno = e;
	return rc;
}

int
store_account_key_save(struct store *s, const char *ca, const char *pem, size_t len,
    char *err, size_t errlen)
{
	char *path = account_path(s, ca, "key.pem", true, err, errlen);
	int rc, e;

	if (path == NULL)
		return -1;
	rc = write_file(path, pem, len, 0600, err, errlen);
	e = errno;
	free(path);
	errno = e;
	return rc;
}

int
store_account_load(struct store *s, const char *ca, struct store_account *a,
    char *err, size_t errlen)
{
	char *path = account_path(s, ca, "account.json", false, err, errlen);
	cJSON *o = NULL;
	int rc = -1, e;

	memset(a, 0, sizeof(*a));
	if (path == NULL)
		return -1;
	if ((o = json_read(path, err, errlen)) == NULL)
		goto out;
	if (fields_get(o, account_fields, NFIELDS(account_fields), a, path, err,
	    errlen) < 0)
		goto out;
	rc = 0;
out:
	e = errno;
	if (rc < 0)
		store_account_free(a);
	cJSON_Delete(o);
	free(path);
	errno = e;
	return rc;
}

int
store_account_save(struct store *s, const char *ca, const struct store_account *a,
    char *err, size_t errlen)
{
	char *path = account_path(s, ca, "account.json", true, err, errlen);
	char *text = NULL;
	cJSON *o = NULL;
	size_t len;
	int rc = -1, e;

	if (path == NULL)
		return -1;
	if ((o = cJSON_CreateObject()) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	if (fields_put(o, account_fields, NFIELDS(account_fields), a,
	    "account.json", err, errlen) < 0)
		goto out;
	if ((text = json_print(o, &len, err, errlen)) == NULL)
		goto out;
	rc = write_file(path, text, len, 0644, err, errlen);
out:
	e = errno;
	cJSON_Delete(o);
	free(text);
	free(path);
	errno = e;
	return rc;
}

/* ---- certificates ---- */

void
store_meta_free(struct store_meta *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nnames; i++)
		free(m->names[i]);
	free(m->names);
	for (size_t i = 0; i < NFIELDS(meta_fields); i++)
		if (meta_fields[i].type == F_STR)
			free(*(char **)(void *)((char *)m + meta_fields[i].off));
	memset(m, 0, sizeof(*m));
}

void
store_cert_free(struct store_cert *c)
{
	if (c == NULL)
		return;
	store_meta_free(&c->meta);
	wipe_free(c->key_pem, c->key_len);
	free(c->chain_pem);
	wipe_free(c->haproxy_pem, c->haproxy_len);	/* holds the key too */
	memset(c, 0, sizeof(*c));
}

/* Appends the non-blank lines of p, each ending in LF (a CR before it
 * dropped), to out at *o. */
static void
pem_lines(char *out, size_t *o, const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		bool blank = true;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		for (size_t i = 0; i < len; i++)
			if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
				blank = false;
		if (!blank) {
			memcpy(out + *o, p, len);
			*o += len;
			out[(*o)++] = '\n';
		}
		p += (nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p));
	}
}

/* Moves a staged set into dir: meta.json last, after a sync of the others,
 * so that a set whose meta.json left .new/ is wholly in place. */
static int
stage_commit(const char *dir, const char *stage, char *err, size_t errlen)
{
	char *from = NULL, *to = NULL;
	int rc = -1;

	for (size_t i = 0; i < SET_N; i++) {
		if (i == SET_N - 1 && (sync_dir(dir) < 0 || sync_dir(stage) < 0)) {
			serr_path(err, errlen, dir);
			goto out;
		}
		free(from);
		free(to);
		from = pathf("%s/%s", stage, set_files[i]);
		to = pathf("%s/%s", dir, set_files[i]);
		if (from == NULL || to == NULL) {
			serr(err, errlen, ENOMEM, "out of memory");
			goto out;
		}
		/* ENOENT: moved already, before a crash */
		if (rename(from, to) < 0 && errno != ENOENT) {
			int e = errno;
			serr(err, errlen, e, "rename %s: %s", from, strerror(e));
			goto out;
		}
	}
	if (sync_dir(dir) < 0 || rm_tree(stage) < 0 || sync_dir(dir) < 0) {
		serr_path(err, errlen, dir);
		goto out;
	}
	rc = 0;
out:
	free(from);
	free(to);
	return rc;
}

/* Finishes a complete staged set in dir or removes an incomplete one. */
static int
stage_settle(const char *dir, char *err, size_t errlen)
{
	char *stage = pathf("%s/" STAGE, dir), *meta = NULL;
	int rc = -1;

	if (stage == NULL || (meta = pathf("%s/meta.json", stage)) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	if (!exists(stage))
		rc = 0;
	else if (exists(meta))
		rc = stage_commit(dir, stage, err, errlen);
	else if (rm_tree(stage) < 0 || sync_dir(dir) < 0)
		serr_path(err, errlen, stage);
	else
		rc = 0;
out:
	free(stage);
	free(meta);
	return rc;
}

/* Reads file of the set in dir; through .new/ first when complete. */
static int
set_read(const char *dir, bool through_stage, const char *file, char **out,
    size_t *len, char *err, size_t errlen)
{
	char *path = NULL;
	int rc = -1, e;

	if (through_stage) {
		if ((path = pathf("%s/" STAGE "/%s", dir, file)) == NULL)
			return serr(err, errlen, ENOMEM, "out of memory");
		if (file_read(path, STORE_FILE_MAX, out, len) == 0) {
			free(path);
			return 0;
		}
		free(path);
	}
	if ((path = pathf("%s/%s", dir, file)) == NULL)
		return serr(err, errlen, ENOMEM, "out of memory");
	rc = read_file(path, out, len, err, errlen);
	e = errno;
	free(path);
	errno = e;
	return rc;
}

int
store_cert_load(struct store *s, const char *name, const char *variant,
    struct store_cert *c, char *err, size_t errlen)
{
	char *dir = NULL, *meta = NULL, *text = NULL;
	bool through = false;
	size_t len;
	int rc = -1, e, tmpfd = -1;

	memset(c, 0, sizeof(*c));
	if (check_names(name, variant, err, errlen) < 0)
		return -1;
	if ((dir = cert_dir(s, name, variant)) == NULL ||
	    (meta = pathf("%s/" STAGE "/meta.json", dir)) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	if (may_repair(s, &tmpfd)) {
		if (stage_settle(dir, err, errlen) < 0)
			goto out;
	} else {
		through = exists(meta);	/* a writer is busy: read its new set */
	}
	free(meta);
	if ((meta = pathf("%s/meta.json", dir)) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	if (set_read(dir, through, "meta.json", &text, &len, err, errlen) < 0) {
		if (errno == ENOENT)
			serr(err, errlen, ENOENT, "certificate '%s'%s is not stored "
			    "(no %s)", name, variant ? " (rsa)" : "", meta);
		goto out;
	}
	if (meta_parse(&c->meta, text, len, meta, err, errlen) < 0)
		goto out;
	if (set_read(dir, through, "key.pem", &c->key_pem, &c->key_len, err,
	    errlen) < 0 ||
	    set_read(dir, through, "chain.pem", &c->chain_pem, &c->chain_len, err,
	    errlen) < 0 ||
	    set_read(dir, through, "haproxy.pem", &c->haproxy_pem,
	    &c->haproxy_len, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	e = errno;
	lock_release(tmpfd);
	if (rc < 0)
		store_cert_free(c);
	free(dir);
	free(meta);
	free(text);
	errno = e;
	return rc;
}

static bool
has_nul(const char *p, size_t n)
{
	return memchr(p, '\0', n) != NULL;
}

int
store_cert_save(struct store *s, const char *name, const char *variant,
    const struct store_meta *m, const char *key_pem, size_t key_len,
    const char *chain_pem, size_t chain_len, char *err, size_t errlen)
{
	char *dir = NULL, *stage = NULL, *hp = NULL, *json = NULL, *path = NULL;
	const char *data[SET_N];
	size_t lens[SET_N], hlen = 0, jlen = 0;
	int rc = -1, e;

	if (check_names(name, variant, err, errlen) < 0)
		return -1;
	if (m == NULL || key_pem == NULL || key_len == 0 || chain_pem == NULL ||
	    chain_len == 0)
		return serr(err, errlen, EINVAL, "certificate '%s': no key, chain "
		    "or meta to store", name);
	if (key_len > STORE_FILE_MAX || chain_len > STORE_FILE_MAX ||
	    key_len + chain_len + 2 > STORE_FILE_MAX)
		return serr(err, errlen, EFBIG, "certificate '%s': larger than %d "
		    "bytes", name, STORE_FILE_MAX);
	if (has_nul(key_pem, key_len) || has_nul(chain_pem, chain_len))
		return serr(err, errlen, EINVAL, "certificate '%s': NUL byte in the "
		    "key or chain", name);
	if ((json = meta_json(m, &jlen, err, errlen)) == NULL)
		return -1;
	if ((hp = malloc(key_len + chain_len + 2)) == NULL ||
	    (dir = cert_dir(s, name, variant)) == NULL ||
	    (stage = pathf("%s/" STAGE, dir)) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	pem_lines(hp, &hlen, key_pem, key_len);
	pem_lines(hp, &hlen, chain_pem, chain_len);
	data[0] = key_pem, lens[0] = key_len;
	data[1] = chain_pem, lens[1] = chain_len;
	data[2] = hp, lens[2] = hlen;
	data[3] = json, lens[3] = jlen;

	/* a staged set left over is older than this one: drop it */
	if (mkdir_p(dir, 0700) < 0 || rm_tree(stage) < 0 ||
	    mkdir(stage, 0700) < 0) {
		serr_path(err, errlen, stage);
		goto out;
	}
	for (size_t i = 0; i < SET_N; i++) {
		free(path);
		if ((path = pathf("%s/%s", stage, set_files[i])) == NULL) {
			serr(err, errlen, ENOMEM, "out of memory");
			goto out;
		}
		if (write_file(path, data[i], lens[i], set_modes[i], err, errlen) < 0) {
			e = errno;
			(void)rm_tree(stage);
			errno = e;
			goto out;
		}
	}
	rc = stage_commit(dir, stage, err, errlen);
out:
	e = errno;
	if (hp != NULL)
		wipe_free(hp, key_len + chain_len + 2);
	free(json);
	free(path);
	free(stage);
	free(dir);
	errno = e;
	return rc;
}

int
store_meta_save(struct store *s, const char *name, const char *variant,
    const struct store_meta *m, char *err, size_t errlen)
{
	char *dir = NULL, *path = NULL, *json = NULL;
	size_t jlen;
	int rc = -1, e, tmpfd = -1;

	if (check_names(name, variant, err, errlen) < 0)
		return -1;
	if (m == NULL)
		return serr(err, errlen, EINVAL, "certificate '%s': no meta", name);
	if ((dir = cert_dir(s, name, variant)) == NULL ||
	    (path = pathf("%s/meta.json", dir)) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	/* a staged set would overwrite this meta.json later: settle it first */
	if (may_repair(s, &tmpfd) && stage_settle(dir, err, errlen) < 0)
		goto out;
	if (!exists(path)) {
		serr(err, errlen, ENOENT, "certificate '%s'%s is not stored (no %s)",
		    name, variant ? " (rsa)" : "", path);
		goto out;
	}
	if ((json = meta_json(m, &jlen, err, errlen)) == NULL)
		goto out;
	rc = write_file(path, json, jlen, 0644, err, errlen);
out:
	e = errno;
	lock_release(tmpfd);
	free(json);
	free(path);
	free(dir);
	errno = e;
	return rc;
}

int
store_cert_remove(struct store *s, const char *name, char *err, size_t errlen)
{
	char *certs = NULL, *dir = NULL, *trash = NULL;
	int rc = -1, e;

	if (check_names(name, NULL, err, errlen) < 0)
		return -1;
	if ((certs = pathf("%s/certs", s->dir)) == NULL ||
	    (dir = pathf("%s/%s", certs, name)) == NULL ||
	    (trash = pathf("%s/" TRASH "%s", certs, name)) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	/* one rename makes the whole certificate disappear at once */
	if (rm_tree(trash) < 0) {
		serr_path(err, errlen, trash);
		goto out;
	}
	if (rename(dir, trash) < 0) {
		if (errno == ENOENT)
			rc = 0;
		else
			serr_path(err, errlen, dir);
		goto out;
	}
	if (sync_dir(certs) < 0 || rm_tree(trash) < 0) {
		serr_path(err, errlen, trash);
		goto out;
	}
	rc = 0;
out:
	e = errno;
	free(certs);
	free(dir);
	free(trash);
	errno = e;
	return rc;
}

/* A certificate is stored when one of its sets (main or rsa, in place or
 * complete in .new/) has a meta.json. */
static bool
cert_stored(int certs_fd, const char *name)
{
	static const char *const where[] = {
		"meta.json", STAGE "/meta.json", "rsa/meta.json",
		"rsa/" STAGE "/meta.json",
	};
	char rel[CONFIG_NAME_MAX + 32];

	for (size_t i = 0; i < 4; i++) {
		snprintf(rel, sizeof(rel), "%s/%s", name, where[i]);
		if (faccessat(certs_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return true;
	}
	return false;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
store_cert_list(struct store *s, char ***names, char *err, size_t errlen)
{
	char *certs = NULL, **v = NULL;
	struct dirent *e;
	struct stat st;
	size_t n = 0;
	DIR *d = NULL;
	int rc = -1, saved;

	*names = NULL;
	if ((certs = pathf("%s/certs", s->dir)) == NULL) {
		serr(err, errlen, ENOMEM, "out of memory");
		goto out;
	}
	if ((d = opendir(certs)) == NULL) {
		if (errno == ENOENT)
			rc = 0;
		else
			serr_path(err, errlen, certs);
		goto out;
	}
	while ((e = readdir(d)) != NULL) {
		char **q;

		if (!config_cert_name_valid(e->d_name, NULL, 0) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || !cert_stored(dirfd(d), e->d_name))
			continue;
		if (n >= CERTS_MAX) {
			serr(err, errlen, E2BIG, "%s: more than %d certificates",
			    certs, CERTS_MAX);
			goto out;
		}
		if ((q = realloc(v, (n + 1) * sizeof(*v))) == NULL) {
			serr(err, errlen, ENOMEM, "out of memory");
			goto out;
		}
		v = q;
		if ((v[n] = strdup(e->d_name)) == NULL) {
			serr(err, errlen, ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), name_cmp);
	*names = v;
	v = NULL;
	rc = (int)n;
out:
	saved = errno;
	if (d != NULL)
		closedir(d);
	if (v != NULL) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
	}
	free(certs);
	errno = saved;
	return rc;
}
