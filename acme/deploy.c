/* deploy.c - certificates into running HAProxy processes and onto disk.
 *
 * An operation (deploy, check, remove of one NAME) has one target per
 * runtime-api. A target is a small state machine driven by the replies of
 * runtime.c: each step sends one command, its reply picks the next step.
 * A target that fails after changing something undoes its own changes
 * before it gives its write turn back, so a HAProxy has either all the
 * variants of the new certificate or none. When every target is done the
 * operation goes on with the TLS checks, a reload-command, or a rollback
 * of every target, and finally restores the files if no HAProxy kept the
 * new certificate. See deploy.h for the whole sequence.
 *
 * Runtime-API differences between HAProxy 2.6 and 3.2 (both tested: `make
 * test`, `make test-haproxy-3.2`), for the commands sent here:
 *   - a `set ssl cert B` while a transaction on A is open: 2.6 merges B's
 *     payload into A's transaction ("Transaction updated for certificate
 *     A!"), so hacme aborts that spoiled transaction (TS_ABORT_MERGED);
 *     3.1+ refuses ("The ongoing transaction is about 'A' but you are trying
 *     to set 'B'", "Can't update B!"), which ends this target with HAProxy's
 *     text. Both are races only: the listing step (TS_LIST) first finds an
 *     open transaction, aborts a stale one of ours, leaves another
 *     client's alone and fails this target.
 *   - `show ssl cert *F` of a store made by `new ssl cert`: "Status: Unused"
 *     on 2.6, "Status: Uncommitted" on 3.2; only the serial and dates are read.
 *   - a command longer than tune.bufsize: 2.6 closes without a reply, 3.0+
 *     answers "The command line is too big for the buffer size". runtime.c
 *     learns the size from `show pools` (the same "Pool buffer (N bytes)"
 *     line on both) and never sends one.
 *   - 3.0+ runs only the first line of a non-interactive connection: every
 *     request here is one line (commands chained with ';'), at most one
 *     payload, last.
 *   - blank lines at the end of a reply differ: replies are matched by line. */
#include "acme/deploy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "acme/config.h"
#include "acme/hfiles.h"
#include "acme/runtime.h"
#include "acme/store.h"
#include "common/addr.h"
#include "common/atomicfile.h"
#include "common/buf.h"
#include "common/errbuf.h"
#include "common/log.h"

#define DP_TLS_TIMEOUT 5.0
#define DP_RELOAD_TIMEOUT 60.0
#define DP_RELOAD_SETTLE 10.0
#define DP_RETRY 0.2			/* between checks while a reload settles */
#define DP_LIST_MAX (16u << 20)		/* bytes of a crt-list we edit */
#define DP_OUT_MAX 4096			/* bytes of reload-command output kept */
#define DP_TEXT_MAX 300			/* bytes of HAProxy text in an error */
#define DP_SUFFIX_MAX 16
#define DP_TLS_OPS 8			/* operations checking over TLS at once */
#define DP_GROUP 32			/* checked operations made durable together */
#define DP_TLS_WAIT 10.0		/* seconds a TLS check waits for the pushes */

enum dp_kind {
	DP_DEPLOY = 0,
	DP_CHECK,
	DP_REMOVE,
};

/* What a target is doing. */
enum dp_mode {
	M_PUSH = 0,		/* deploy (after a precheck for DP_CHECK) */
	M_UNDO,			/* give every HAProxy its previous certificate back */
	M_REMOVE,
	M_RECHECK,		/* after a reload: does it serve ours now? */
};

enum tg_step {
	TS_IDLE = 0,
	TS_PRECHECK,		/* show ssl cert F, no turn */
	TS_LOCK,
	TS_LIST,		/* show ssl cert (head): a pending transaction? */
	TS_ABORT_STALE,
	TS_NEW,
	TS_SET,
	TS_ABORT_MERGED,	/* our set went into another file's transaction */
	TS_SHOWTX,
	TS_ABORT,
	TS_COMMIT,
	TS_ADD,
	TS_VERIFY,
	TS_UNDO_SET,
	TS_UNDO_COMMIT,
	TS_UNDO_ABORT,
	TS_UNDO_DELLIST,
	TS_UNDO_DELCERT,
	TS_RM_SHOW,
	TS_RM_DELLIST,
	TS_RM_DELCERT,
	TS_DONE,
};

struct dp_var {
	char *suffix;			/* NULL or "rsa" */
	char *path;			/* <cert-dir>/<name>[.<suffix>].pem */
	char *pem;			/* key + chain, no blank line (wiped on free) */
	size_t len;
	char serial[CRYPTO_SERIAL_MAX];
	time_t not_after;
	enum keytype key;
	char sni[256];			/* first DNS name; "" none */
	char *prev;			/* the file before (wiped on free); NULL none */
	size_t prevlen;
	char *tmp;			/* the batch's temp file, until renamed */
	char *in_key, *in_chain;	/* as given, until checked (key wiped) */
	size_t in_key_len, in_chain_len;
	bool had_line;
	bool wrote_file, wrote_line;
};

struct dp_tvar {			/* one target, one variant */
	bool known;			/* HAProxy had a store of that name */
	bool set_refused;		/* set said "not referenced": new ssl cert */
	bool add_tried;
	bool created, added, pushed, undone;
	bool ok;
	bool pushed_now;		/* for the report: a change was made */
	char serial[CRYPTO_SERIAL_MAX];
};

struct dp_op;

/* The listing ("show ssl cert") the last push chained to its commit: the
 * next holder of the same continuous hold needs no listing of its own. */
struct dp_listing {
	bool valid;
	uint64_t epoch;			/* runtime_turn_epoch when it was taken */
	bool tx;			/* a transaction was pending */
	char name[PATH_MAX];
};

struct dp_target {
	struct dp_op *op;
	struct runtime *rt;
	struct dp_listing *listing;	/* the runtime's */
	bool chained_list;		/* the commit request carries the listing */
	enum dp_mode mode;
	enum tg_step step;
	size_t v;			/* current variant */
	bool locked, failed, done, tx_open, list_retried;
	bool undoing;			/* waits for the turn to undo a replacement */
	struct dp_tvar tv[DEPLOY_VARIANTS_MAX];
	char other[PATH_MAX];		/* a foreign/stale transaction's file */
	char err[DEPLOY_ERR_MAX];
	ev_timer retry;			/* M_RECHECK while a reload settles */
};

struct dp_probe {
	struct dp_op *op;
	const struct addr *addr;
	size_t var;
	int fd;
	bool connected;
	struct crypto_tls_probe *tls;
	ev_io io;
	ev_timer timer;
	bool done, match;
	char serial[CRYPTO_SERIAL_MAX];
	char err[DEPLOY_ERR_MAX];
};

enum dp_phase {
	PH_FILES = 0,		/* waits for the batch that writes the files */
	PH_RUNTIME,
	PH_TLS_WAIT,		/* in d->tls_waiting */
	PH_TLS,
	PH_UNDO,
	PH_RELOAD,
	PH_SETTLE,		/* rechecks and TLS checks after a reload */
	PH_FINISHED,
};

struct dp_op {
	LIST_ENTRY(dp_op) entry;
	TAILQ_ENTRY(dp_op) done;
	TAILQ_ENTRY(dp_op) filing;	/* in the list in_list says */
	enum { DP_IN_NONE = 0, DP_IN_FILING, DP_IN_PREPARED, DP_IN_TLS } in_list;
	bool tls_slot;
	ev_tstamp tls_since;
	struct deploy *d;
	enum dp_kind kind;
	enum dp_phase phase;
	char *name;
	struct dp_var var[DEPLOY_VARIANTS_MAX];
	size_t nvar;
	struct dp_target *t;
	size_t nt;
	size_t tpending;
	struct dp_probe *probes;
	size_t nprobes, ppending;
	bool tls_ok, tls_started;
	char tls_err[DEPLOY_ERR_MAX];
	char fallback[PATH_MAX];	/* the crt-list's first entry; "" unknown */
	ev_tstamp reload_deadline;
	ev_tstamp settle_until;
	/* reload-command */
	bool reloaded, reload_ok;
	pid_t child;
	int out_fd;
	bool child_exited;
	int child_status;
	ev_child cw;
	ev_timer ctimer;		/* timeout, or waitpid polling */
	ev_io cio;
	struct buf out;
	char reload_err[DEPLOY_ERR_MAX];
	/* the end */
	bool restored;
	char warning[256];
	char error[DEPLOY_ERR_MAX];
	deploy_cb *cb;
	void *arg;
};

struct deploy {
	struct ev_loop *loop;
	const struct config *cfg;
	struct deploy_opts opts;
	struct runtime **rts;
	struct dp_listing *listings;	/* one per runtime */
	size_t nrts;
	struct addr *checks;
	size_t nchecks;
	char *cert_dir;
	char *list;			/* the crt-list as HAProxy names it, or NULL */
	bool list_dir;			/* list is a directory (`crt DIR`) */
	char *list_lock;		/* <state-dir>/crt-list.lock */
	LIST_HEAD(, dp_op) ops;
	TAILQ_HEAD(, dp_op) finished;
	TAILQ_HEAD(, dp_op) filing;	/* deploy_cert/check calls not yet checked */
	TAILQ_HEAD(, dp_op) prepared;	/* checked, PEMs in temp files */
	size_t nprepared;
	TAILQ_HEAD(, dp_op) tls_waiting;
	size_t tls_running;
	size_t nops;
	ev_timer kick;
	ev_idle prep;
	ev_timer tls_kick;
	int dispatching;
	bool free_pending;
};

static void tg_go(struct dp_target *);
static void op_targets_done(struct dp_op *);
static void op_tls_start(struct dp_op *);
static void op_finish(struct dp_op *);

/* ---- text ------------------------------------------------------------- */

/* HAProxy's reply as one escaped line: lines joined with "; ". */
static char *
hap_text(char *dst, size_t dstlen, const char *reply, size_t len)
{
	char flat[DP_TEXT_MAX];
	size_t o = 0;

	for (size_t i = 0; i < len && o + 3 < sizeof(flat); i++) {
		if (reply[i] == '\n') {
			if (o > 0 && i + 1 < len) {
				flat[o++] = ';';
				flat[o++] = ' ';
			}
		} else {
			flat[o++] = reply[i];
		}
	}
	return log_escape(dst, dstlen, flat, o);
}

/* ---- crt-list ---------------------------------------------------------- */

/* The path of a crt-list line: its first word; *n its length (0: blank
 * or comment). */
static const char *
cl_entry(const char *line, size_t len, size_t *n)
{
	size_t i = 0, j;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] == '#') {
		*n = 0;
		return line;
	}
	for (j = i; j < len && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' &&
	    line[j] != '['; j++)
		;
	*n = j - i;
	return line + i;
}

/* paths[] sorted for bsearch: an index into the caller's array. */
struct cl_key {
	const char *path;
	size_t len;
	size_t idx;
};

static int
cl_key_cmp(const void *a, const void *b)
{
	const struct cl_key *x = a, *y = b;
	int c = memcmp(x->path, y->path, x->len < y->len ? x->len : y->len);

	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Edits the crt-list text for n paths: without their lines (del), or with
 * "path\n" appended for each one missing (!del), in the given order; the
 * first entry (the fallback) is never one of them. had[i]: path i had a
 * line. *out malloc'd, NULL when nothing changes; *first, *firstlen: the
 * first entry (firstlen 0: none). */
static int
cl_edit(const char *text, size_t len, const char *const *paths, size_t n, bool del,
    bool *had, const char **first, size_t *firstlen, char **out, size_t *outlen)
{
	const char *p = text, *end = text + len, *nl, *e;
	struct cl_key *keys, k, *hit;
	size_t total = 0, o = 0, el, i;
	bool changed = false;
	char *res = NULL;

	*out = NULL;
	*first = NULL;
	*firstlen = 0;
	if ((keys = calloc(n ? n : 1, sizeof(*keys))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		keys[i].path = paths[i];
		keys[i].len = strlen(paths[i]);
		keys[i].idx = i;
		total += keys[i].len + 1;
		had[i] = false;
	}
	qsort(keys, n, sizeof(*keys), cl_key_cmp);
	if ((res = malloc(len + total + 2)) == NULL) {
		free(keys);
		return -1;
	}
	while (p < end) {
		size_t ll;
		nl = memchr(p, '\n', (size_t)(end - p));
		ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		e = cl_entry(p, ll, &el);
		hit = NULL;
		if (el > 0 && *first == NULL) {
			*first = e;	/* the fallback: never ours */
			*firstlen = el;
		} else if (el > 0) {
			k.path = e;
			k.len = el;
			hit = bsearch(&k, keys, n, sizeof(*keys), cl_key_cmp);
		}
		if (hit != NULL)
			had[hit->idx] = true;
		if (hit != NULL && del) {
			changed = true;
		} else {
			memcpy(res + o, p, ll);
			o += ll;
			res[o++] = '\n';
		}
		p += ll + (nl ? 1 : 0);
	}
	for (i = 0; !del && i < n; i++) {
		if (had[i])
			continue;
		memcpy(res + o, paths[i], strlen(paths[i]));
		o += strlen(paths[i]);
		res[o++] = '\n';
		changed = true;
	}
	free(keys);
	if (!changed) {
		free(res);
		return 0;
	}
	*out = res;
	*outlen = o;
	return 0;
}

/* Adds (del false) or removes the lines of n paths in the crt-list, under
 * the crt-list flock: one read, one atomic write. had[i]: path i had a
 * line; fallback (may be NULL) gets the first entry. */
static int
cl_change(struct deploy *d, const char *const *paths, size_t n, bool del, bool *had,
    char fallback[PATH_MAX], char *err, size_t errlen)
{
	const char *list = d->list, *first;
	char *text = NULL, *out = NULL;
	size_t len = 0, outlen = 0, firstlen, i;
	struct stat st;
	int fd = -1, rc = -1;

	if (d->list_dir) {
		/* `crt DIR`: the file in DIR is the line; nothing to edit */
		for (i = 0; had != NULL && i < n; i++)
			had[i] = true;
		if (fallback != NULL)
			fallback[0] = '\0';
		return 0;
	}

	if ((fd = open(d->list_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    flock(fd, LOCK_EX) < 0) {
		errbuf_set(err, errlen, "%s: %s", d->list_lock, strerror(errno));
		goto out;
	}
	if (file_read(list, DP_LIST_MAX, &text, &len) < 0) {
		errbuf_set(err, errlen, "crt-list %s: %s%s", list, strerror(errno),
		    errno == ENOENT ? " (make it with haproxy-conf/make-fallback-cert.sh: its "
		    "first line is the fallback certificate)" : "");
		goto out;
	}
	if (cl_edit(text, len, paths, n, del, had, &first, &firstlen, &out, &outlen) < 0) {
		errbuf_set(err, errlen, "no memory");
		goto out;
	}
	if (first == NULL) {
		errbuf_set(err, errlen, "crt-list %s has no first line (the fallback certificate "
		    "hacme never touches): run haproxy-conf/make-fallback-cert.sh", list);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (firstlen == strlen(paths[i]) && memcmp(first, paths[i], firstlen) == 0) {
			errbuf_set(err, errlen, "%s is the first line of crt-list %s (the fallback "
			    "certificate): hacme does not touch it", paths[i], list);
			goto out;
		}
	}
	if (fallback != NULL && firstlen < PATH_MAX) {
		memcpy(fallback, first, firstlen);
		fallback[firstlen] = '\0';
	}
	if (out != NULL && atomic_write(list, out, outlen,
	    stat(list, &st) == 0 ? (st.st_mode & 07777) : 0644) < 0) {
		errbuf_set(err, errlen, "crt-list %s: %s", list, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);	/* releases the flock */
	free(text);
	free(out);
	return rc;
}

/* ---- variants ---------------------------------------------------------- */

static void
var_fini(struct dp_var *v)
{
	free(v->suffix);
	free(v->path);
	crypto_wipe_free(v->pem, v->len);
	crypto_wipe_free(v->prev, v->prevlen);
	crypto_wipe_free(v->in_key, v->in_key_len);
	free(v->in_chain);
	if (v->tmp != NULL)
		(void)unlink(v->tmp);
	free(v->tmp);
	memset(v, 0, sizeof(*v));
}

static bool
suffix_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DP_SUFFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static int
var_path(struct deploy *d, struct dp_var *v, const char *name, const char *suffix)
{
	if (suffix != NULL && (v->suffix = strdup(suffix)) == NULL)
		return -1;
	if (asprintf(&v->path, "%s/%s%s%s.pem", d->cert_dir, name, suffix ? "." : "",
	    suffix ? suffix : "") < 0) {
		v->path = NULL;
		return -1;
	}
	return 0;
}

static bool
is_ip(const char *s)
{
	unsigned char b[16];

	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* Appends text without CRs and empty lines, each line LF-ended. */
static void
pem_clean_append(char *dst, size_t *o, const char *src, size_t len)
{
	bool line_empty = true;

	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\r')
			continue;
		if (src[i] == '\n') {
			if (!line_empty)
				dst[(*o)++] = '\n';
			line_empty = true;
			continue;
		}
		dst[(*o)++] = src[i];
		line_empty = false;
	}
	if (!line_empty)
		dst[(*o)++] = '\n';
}

/* Checks a stored certificate and builds what HAProxy gets. */
static int
var_copy(struct dp_var *v, const struct store_cert *c)
{
	if (c == NULL || c->key_pem == NULL || c->chain_pem == NULL)
		return 0;	/* var_load says what is missing */
	if ((v->in_key = malloc(c->key_len + 1)) == NULL ||
	    (v->in_chain = malloc(c->chain_len + 1)) == NULL)
		return -1;
	memcpy(v->in_key, c->key_pem, c->key_len);
	v->in_key[c->key_len] = '\0';
	v->in_key_len = c->key_len;
	memcpy(v->in_chain, c->chain_pem, c->chain_len);
	v->in_chain[c->chain_len] = '\0';
	v->in_chain_len = c->chain_len;
	return 0;
}

static int
var_load(struct dp_var *v, const char *label, char *err, size_t errlen)
{
	struct crypto_chain ch;
	struct crypto_cert_info ci;
	struct crypto_key *k = NULL;
	char why[CRYPTO_ERR_MAX];
	char *chain = NULL;
	size_t chainlen = 0;
	int rc = -1;

	memset(&ch, 0, sizeof(ch));
	memset(&ci, 0, sizeof(ci));
	if (v->in_key == NULL || v->in_chain == NULL) {
		errbuf_set(err, errlen, "%s: no key or no chain", label);
		goto out;
	}
	if ((k = crypto_key_from_pem(v->in_key, v->in_key_len, why, sizeof(why))) == NULL) {
		errbuf_set(err, errlen, "%s: key: %s", label, why);
		goto out;
	}
	if (crypto_chain_parse(&ch, v->in_chain, v->in_chain_len, why, sizeof(why)) < 0) {
		errbuf_set(err, errlen, "%s: chain: %s", label, why);
		goto out;
	}
	if (!crypto_cert_matches_key(ch.pem[0], strlen(ch.pem[0]), k)) {
		errbuf_set(err, errlen, "%s: the certificate is not for this key", label);
		goto out;
	}
	if (v->suffix != NULL && strcmp(v->suffix, "rsa") == 0 &&
	    !keytype_is_rsa(crypto_key_type(k))) {
		errbuf_set(err, errlen, "%s: the rsa variant holds a %s key", label,
		    keytype_name(crypto_key_type(k)));
		goto out;
	}
	if (crypto_cert_info(ch.pem[0], strlen(ch.pem[0]), &ci, why, sizeof(why)) < 0) {
		errbuf_set(err, errlen, "%s: certificate: %s", label, why);
		goto out;
	}
	snprintf(v->serial, sizeof(v->serial), "%s", ci.serial);
	v->not_after = ci.not_after;
	v->key = crypto_key_type(k);
	for (size_t i = 0; i < ci.nnames && v->sni[0] == '\0'; i++)
		if (!is_ip(ci.names[i]) && ci.names[i][0] != '*' &&
		    strlen(ci.names[i]) < sizeof(v->sni))
			snprintf(v->sni, sizeof(v->sni), "%s", ci.names[i]);
	if ((chain = crypto_chain_join(&ch, &chainlen)) == NULL ||
	    (v->pem = malloc(v->in_key_len + chainlen + 2)) == NULL) {
		errbuf_set(err, errlen, "no memory");
		goto out;
	}
	v->len = 0;
	pem_clean_append(v->pem, &v->len, v->in_key, v->in_key_len);
	pem_clean_append(v->pem, &v->len, chain, chainlen);
	v->pem[v->len] = '\0';
	rc = 0;
out:
	crypto_key_free(k);
	crypto_chain_free(&ch);
	crypto_cert_info_free(&ci);
	free(chain);
	return rc;
}

/* ---- files ------------------------------------------------------------- */

/* fchown only when the new file differs (uid -1: keep ours): most deploys
 * make no chown call at all (hacme.service allows @chown for the others). */
static void
keep_owner(int fd, uid_t uid, gid_t gid)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || ((uid == (uid_t)-1 || st.st_uid == uid) && st.st_gid == gid))
		return;
	if (fchown(fd, uid, gid) < 0 && uid != (uid_t)-1)
		(void)fchown(fd, (uid_t)-1, gid);
}

/* Reads what each variant's file holds now (for op_restore) and writes
 * the new PEM to a temp file beside it, not yet synced: the batch syncs
 * all temp files at once, then renames them (deploy_commit_files). */
static int
op_write_tmps(struct dp_op *op, char *err, size_t errlen)
{
	struct stat st;
	struct dp_var *v;
	ssize_t w;
	size_t i, off;
	int rc, fd;

	for (i = 0; i < op->nvar; i++) {
		v = &op->var[i];
		rc = file_read(v->path, STORE_FILE_MAX, &v->prev, &v->prevlen);
		if (rc < 0 && errno != ENOENT) {
			errbuf_set(err, errlen, "%s: %s", v->path, strerror(errno));
			return -1;
		}
		if (rc < 0)
			v->prev = NULL;
		if (v->prev != NULL && v->prevlen == v->len && memcmp(v->prev, v->pem, v->len) == 0) {
			if (op->kind == DP_CHECK)
				continue;	/* as stored: nothing to write */
		} else if (v->prev != NULL && !hfiles_owned(op->d->cfg->state_dir, v->path)) {
			errbuf_set(err, errlen, "%s exists and hacme did not write it: not "
			    "replacing it (move it away, or take it over with `hacme import "
			    "certbot`)", v->path);
			return -1;
		}
		if (asprintf(&v->tmp, "%s.tmp.%ld", v->path, (long)getpid()) < 0) {
			v->tmp = NULL;
			errbuf_set(err, errlen, "no memory");
			return -1;
		}
		(void)unlink(v->tmp);	/* a leftover of a crashed run with our pid */
		if ((fd = open(v->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
			errbuf_set(err, errlen, "%s: %s", v->tmp, strerror(errno));
			free(v->tmp);
			v->tmp = NULL;
			return -1;
		}
		if (v->prev != NULL && stat(v->path, &st) == 0) {
			/* keep the owner (as root), group and mode the file had */
			keep_owner(fd, geteuid() == 0 ? st.st_uid : (uid_t)-1, st.st_gid);
			if ((st.st_mode & 07777) != 0600)
				(void)fchmod(fd, st.st_mode & 07777);
		} else if (geteuid() == 0 && stat(op->d->cert_dir, &st) == 0) {
			/* `sudo hacme ...`: the file belongs to the cert dir's owner (the
			 * service's user), who must read it back at the next deploy */
			keep_owner(fd, st.st_uid, st.st_gid);
		}
		for (off = 0, w = 0; off < v->len && w >= 0; off += (size_t)(w > 0 ? w : 0))
			if ((w = write(fd, v->pem + off, v->len - off)) < 0 && errno == EINTR)
				w = 0;
		if (close(fd) < 0 || w < 0) {
			errbuf_set(err, errlen, "%s: %s", v->tmp, strerror(errno));
			return -1;	/* var_fini removes the temp file */
		}
	}
	return 0;
}

/* The temp files of a batch are on disk (one syncfs for them all, instead
 * of two fsyncs per file): rename them into place. */
static int
op_rename_tmps(struct dp_op *op, char *err, size_t errlen)
{
	for (size_t i = 0; i < op->nvar; i++) {
		struct dp_var *v = &op->var[i];
		if (v->tmp == NULL)
			continue;
		if (rename(v->tmp, v->path) < 0) {
			errbuf_set(err, errlen, "%s: %s", v->path, strerror(errno));
			return -1;
		}
		free(v->tmp);
		v->tmp = NULL;
		v->wrote_file = true;
		if (v->prev == NULL && hfiles_own(op->d->cfg->state_dir, v->path) < 0)
			log_warn("%s: recording it in %s/haproxy-files: %s", v->path,
			    op->d->cfg->state_dir, strerror(errno));
	}
	return 0;
}

/* Puts the files back as the batch found them. */
static void
op_restore(struct dp_op *op)
{
	char err[DEPLOY_ERR_MAX];
	bool had;

	for (size_t i = 0; i < op->nvar; i++) {
		struct dp_var *v = &op->var[i];
		const char *path = v->path;
		if (v->wrote_line && cl_change(op->d, &path, 1, true, &had, NULL, err,
		    sizeof(err)) < 0)
			log_warn("%s: restoring the crt-list: %s", op->name, err);
		if (v->wrote_file && v->prev != NULL &&
		    atomic_write(v->path, v->prev, v->prevlen, 0600) < 0)
			log_warn("%s: restoring %s: %s", op->name, v->path, strerror(errno));
		if (v->wrote_file && v->prev == NULL && unlink(v->path) < 0 && errno != ENOENT)
			log_warn("%s: removing %s: %s", op->name, v->path, strerror(errno));
		v->wrote_file = v->wrote_line = false;
	}
	op->restored = true;
}

/* ---- one target -------------------------------------------------------- */

static void
tg_vfail(struct dp_target *t, const char *fmt, va_list ap)
{
	char why[DEPLOY_ERR_MAX];

	t->failed = true;
	if (t->err[0] != '\0')
		return;	/* the first failure is the one to report */
	vsnprintf(why, sizeof(why), fmt, ap);
	if (strncmp(why, "HAProxy ", 8) == 0)
		snprintf(t->err, sizeof(t->err), "%s", why);
	else
		snprintf(t->err, sizeof(t->err), "HAProxy %s: %s", runtime_name(t->rt), why);
}

static void __attribute__((format(printf, 2, 3)))
tg_fail(struct dp_target *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tg_vfail(t, fmt, ap);
	va_end(ap);
}

static void tg_abandon(struct dp_target *);

/* A push step failed: say why, then abort and undo. */
static void __attribute__((format(printf, 2, 3)))
tg_giveup(struct dp_target *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tg_vfail(t, fmt, ap);
	va_end(ap);
	tg_abandon(t);
}

static const char *
tg_path(const struct dp_target *t)
{
	return t->op->var[t->v].path;
}

static void
tg_finish(struct dp_target *t)
{
	struct dp_op *op = t->op;

	if (t->failed)
		t->listing->valid = false;	/* taken before an undo, or never */
	if (t->locked)
		runtime_unlock(t->rt, t);
	t->locked = false;
	t->step = TS_DONE;
	t->done = true;
	if (--op->tpending == 0)
		op_targets_done(op);
}

/* The next variant to undo, or the end of the turn. */
static void
tg_undo_next(struct dp_target *t)
{
	struct dp_op *op = t->op;

	for (t->v = 0; t->v < op->nvar; t->v++) {
		struct dp_tvar *tv = &t->tv[t->v];
		if (tv->undone || !(tv->created || tv->pushed))
			continue;
		if (!t->locked && !tv->created && op->var[t->v].prev != NULL) {
			/* set + commit need the turn, given back after the last commit */
			t->undoing = true;
			t->step = TS_LOCK;
			tg_go(t);
			return;
		}
		tv->undone = true;
		if (tv->added)
			t->step = TS_UNDO_DELLIST;
		else if (tv->created)
			t->step = TS_UNDO_DELCERT;
		else if (op->var[t->v].prev != NULL)
			t->step = TS_UNDO_SET;
		else {
			tg_fail(t, "%s: cannot put the previous certificate back: no previous "
			    "file", tg_path(t));
			continue;
		}
		tg_go(t);
		return;
	}
	tg_finish(t);
}

/* A push failed: abort an open transaction, then undo what was done. */
static void
tg_abandon(struct dp_target *t)
{
	t->failed = true;
	if (t->tx_open) {
		t->step = TS_ABORT;
		tg_go(t);
		return;
	}
	tg_undo_next(t);
}

/* The first command for variant t->v: remove asks; a push guesses from
 * the crt-list (a line there: HAProxy loaded the file) and HAProxy's reply
 * corrects the guess, one command fewer per certificate. */
static enum tg_step
tg_first(const struct dp_target *t)
{
	const struct dp_var *v = &t->op->var[t->v];

	if (t->mode == M_REMOVE)
		return TS_RM_SHOW;
	if (t->op->d->list == NULL || (v->had_line && v->prev != NULL))
		return TS_SET;
	return TS_NEW;
}

static void
tg_next_variant(struct dp_target *t)
{
	struct dp_op *op = t->op;

	if (++t->v < op->nvar) {
		t->step = tg_first(t);
		tg_go(t);
		return;
	}
	tg_finish(t);
}

static bool
tg_matches(const struct dp_target *t, const struct runtime_cert *c)
{
	const struct dp_var *v = &t->op->var[t->v];

	return c->found && strcmp(c->serial, v->serial) == 0;
}

/* The listing is in: a pending transaction (its file in t->other) stops
 * the push, unless it is a stale one on a file of ours; else the first
 * variant goes. */
static void
tg_listed(struct dp_target *t, bool tx)
{
	struct dp_op *op = t->op;

	if (tx) {
		size_t cd = strlen(op->d->cert_dir), ol = strlen(t->other);
		/* A file of cert-dir hacme writes: not the fallback. */
		bool ours = strncmp(t->other, op->d->cert_dir, cd) == 0 &&
		    t->other[cd] == '/' && strchr(t->other + cd + 1, '/') == NULL &&
		    ol > 4 && strcmp(t->other + ol - 4, ".pem") == 0 &&
		    op->fallback[0] != '\0' && strcmp(t->other, op->fallback) != 0;
		if (ours && !t->list_retried) {
			/* We hold the turn and the flock: a hacme died mid-transaction. */
			log_warn("HAProxy %s: aborting a stale transaction for %s",
			    runtime_name(t->rt), t->other);
			t->list_retried = true;
			t->step = TS_ABORT_STALE;
			tg_go(t);
			return;
		}
		tg_fail(t, "a transaction for %s is pending (another client is changing "
		    "certificates): not touching it; if it is stale, send `abort ssl cert "
		    "%s`", t->other, t->other);
		tg_finish(t);
		return;
	}
	t->v = 0;
	t->step = tg_first(t);
	tg_go(t);
}

static void
tg_locked(void *arg, const char *err)
{
	struct dp_target *t = arg;

	if (err != NULL) {
		tg_fail(t, "%s", err);
		if (t->undoing)
			tg_undo_next(t);	/* the next one may not need the turn */
		else
			tg_finish(t);
		return;
	}
	t->locked = true;
	if (t->undoing) {
		t->undoing = false;
		tg_undo_next(t);
		return;
	}
	t->v = 0;
	for (size_t k = 0; t->mode == M_PUSH && k < t->op->nvar; k++)
		t->tv[k].ok = false;	/* a precheck's verdict: the push decides now */
	if (t->mode == M_UNDO) {
		t->listing->valid = false;
		tg_undo_next(t);
		return;
	}
	if (t->mode == M_PUSH && t->listing->valid &&
	    t->listing->epoch == runtime_turn_epoch(t->rt)) {
		/* The previous holder's last request listed for us. */
		t->listing->valid = false;
		snprintf(t->other, sizeof(t->other), "%s", t->listing->name);
		tg_listed(t, t->listing->tx);
		return;
	}
	t->listing->valid = false;
	t->step = TS_LIST;
	tg_go(t);
}

/* The precheck of one variant (deploy_check, or after a reload). */
static void
tg_precheck_reply(struct dp_target *t, const char *reply, size_t len)
{
	struct dp_tvar *tv = &t->tv[t->v];
	struct runtime_cert c;

	runtime_parse_cert(reply, len, &c);
	snprintf(tv->serial, sizeof(tv->serial), "%s", c.serial);
	tv->ok = tg_matches(t, &c) && strcmp(c.status, "Used") == 0;
	if (++t->v < t->op->nvar) {
		tg_go(t);
		return;
	}
	for (t->v = 0; t->v < t->op->nvar; t->v++)
		if (!t->tv[t->v].ok)
			break;
	if (t->v < t->op->nvar && t->mode == M_RECHECK &&
	    ev_now(t->op->d->loop) < t->op->settle_until) {
		ev_timer_set(&t->retry, DP_RETRY, 0.);	/* the old worker may still answer */
		ev_timer_start(t->op->d->loop, &t->retry);
		return;
	}
	if (t->v == t->op->nvar || t->mode == M_RECHECK) {
		tg_finish(t);
		return;
	}
	t->step = TS_LOCK;
	tg_go(t);
}

static void
tg_recheck_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dp_target *t = w->data;

	t->v = 0;
	t->step = TS_PRECHECK;
	tg_go(t);
}

static void
tg_reply(void *arg, const char *err, const char *reply, size_t len)
{
	struct dp_target *t = arg;
	struct dp_op *op = t->op;
	struct dp_var *v = &op->var[t->v];
	struct dp_tvar *tv = &t->tv[t->v];
	char text[DP_TEXT_MAX + 64], want[PATH_MAX + 64], want2[PATH_MAX + 64];
	struct runtime_cert c;
	const char *f = v->path, *tl;
	size_t at;

	if (err != NULL) {
		if (t->mode == M_RECHECK && ev_now(op->d->loop) < op->settle_until) {
			ev_timer_set(&t->retry, DP_RETRY, 0.);
			ev_timer_start(op->d->loop, &t->retry);
			return;	/* the reloaded HAProxy may not listen yet */
		}
		tg_fail(t, "%s", err);
		/* No reply: whether the command ran is unknown; undo what we know. */
		if (t->step >= TS_SET && t->step <= TS_VERIFY) {
			tg_abandon(t);
			return;
		}
		if (t->step >= TS_UNDO_SET && t->step <= TS_UNDO_DELCERT) {
			tg_undo_next(t);
			return;
		}
		tg_finish(t);
		return;
	}
	hap_text(text, sizeof(text), reply, len);
	switch (t->step) {
	case TS_PRECHECK:
		tg_precheck_reply(t, reply, len);
		return;
	case TS_LIST:
		tg_listed(t, runtime_parse_transaction(reply, len, t->other, sizeof(t->other)));
		return;
	case TS_ABORT_STALE:
		t->step = TS_LIST;
		break;
	case TS_NEW:	/* chained: new ssl cert F;set ssl cert F << */
		snprintf(want, sizeof(want), "New empty certificate store '%s'!", f);
		if (runtime_reply_has(reply, len, want, NULL)) {
			tv->created = true;
		} else if (strstr(reply, "already exists") != NULL && tv->set_refused) {
			tg_giveup(t, "HAProxy has %s but refuses to update it (HAProxy 2.6 cannot "
			    "update a '.crt' file, and crt-base must not apply: use absolute .pem "
			    "paths)", f);
			return;
		} else if (strstr(reply, "already exists") != NULL) {
			tv->known = true;	/* loaded without a crt-list line of ours */
		} else {
			tg_giveup(t, "new ssl cert %s: %s", f, text);
			return;
		}
		__attribute__((fallthrough));	/* the set's reply follows */
	case TS_SET:
		snprintf(want, sizeof(want), "Transaction created for certificate %s!", f);
		snprintf(want2, sizeof(want2), "Transaction updated for certificate %s!", f);
		if (runtime_reply_has(reply, len, want, NULL) ||
		    runtime_reply_has(reply, len, want2, NULL)) {
			t->tx_open = true;
			t->step = TS_SHOWTX;
			break;
		}
		tl = strncmp(reply, "Transaction ", 12) == 0 ? reply : strstr(reply, "\nTransaction ");
		if (tl != NULL && sscanf(tl + (*tl == '\n'), "Transaction %*s for certificate "
		    "%4095[^\n]", t->other) == 1) {
			/* HAProxy 2.6 merged it into another file's transaction. */
			size_t ol = strlen(t->other);
			if (ol > 0 && t->other[ol - 1] == '!')
				t->other[ol - 1] = '\0';
			tg_fail(t, "set ssl cert %s went into the pending transaction of %s "
			    "(another client is changing certificates; HAProxy < 3.1 merges "
			    "them): aborted that transaction", f, t->other);
			t->step = TS_ABORT_MERGED;
			break;
		}
		if (strstr(reply, "not referenced by the configuration") != NULL &&
		    !tv->created && !tv->set_refused) {
			if (op->d->list == NULL) {
				tg_giveup(t, "%s is new to HAProxy and no crt-list is configured: "
				    "HAProxy serves a new name only from a crt-list (set `crt-list` "
				    "in hacme's global section)", f);
				return;
			}
			tv->set_refused = true;	/* not loaded: a new store */
			t->step = TS_NEW;
			break;
		}
		tg_giveup(t, "set ssl cert %s: %s", f, text);
		return;
	case TS_ABORT_MERGED:
		tg_abandon(t);
		return;
	case TS_SHOWTX:
		runtime_parse_cert(reply, len, &c);
		if (!tg_matches(t, &c) || c.not_after != v->not_after) {
			tg_giveup(t, "the transaction for %s shows serial %s, not ours (%s): "
			    "aborted", f, c.serial[0] ? c.serial : "none", v->serial);
			return;
		}
		t->step = TS_COMMIT;
		break;
	case TS_ABORT:
		t->tx_open = false;
		tg_undo_next(t);
		return;
	case TS_COMMIT:
		/* chained: commit ssl cert F;[add ssl crt-list L F;]show ssl cert F.
		 * After a failed commit the add finds an empty store and refuses,
		 * the show only reads. The commit's output ends at its empty line. */
		tl = strstr(reply, "\n\n");
		at = tl != NULL ? (size_t)(tl - reply) : len;
		if (!runtime_reply_has(reply, at, "Success!", NULL)) {
			/* tx_open still: the abort ends what a failed commit left */
			hap_text(text, sizeof(text), reply, at);
			tg_giveup(t, "commit ssl cert %s: %s", f, text);
			return;
		}
		t->tx_open = false;
		tv->pushed = tv->pushed_now = true;
		if (t->chained_list) {
			/* The listing is last; no earlier output has '#' lines. */
			struct dp_listing *l = t->listing;
			l->tx = runtime_parse_transaction(reply, len, l->name, sizeof(l->name));
			l->epoch = runtime_turn_epoch(t->rt);
			l->valid = true;
		}
		if (!tv->created)
			goto verify;
		reply += at + 2;
		len -= at + 2;
		__attribute__((fallthrough));	/* the add's reply follows */
	case TS_ADD:	/* chained: add ssl crt-list L F;show ssl cert F */
		snprintf(want, sizeof(want), "Filename: %s", f);
		if (!runtime_reply_has(reply, len, want, &at))
			at = len;
		if (!runtime_reply_has(reply, at, "Success!", NULL)) {
			hap_text(text, sizeof(text), reply, at);
			tg_giveup(t, "add ssl crt-list %s %s: %s", op->d->list, f, text);
			return;
		}
		tv->added = tv->created;
		tv->add_tried = true;
		__attribute__((fallthrough));	/* the show's reply follows */
	case TS_VERIFY:
	verify:
		runtime_parse_cert(reply, len, &c);
		snprintf(tv->serial, sizeof(tv->serial), "%s", c.serial);
		if (tg_matches(t, &c) && strcmp(c.status, "Used") != 0 && !tv->add_tried &&
		    op->d->list != NULL) {
			t->step = TS_ADD;	/* a store in no crt-list (a run cut short) */
			break;
		}
		if (!tg_matches(t, &c) || strcmp(c.status, "Used") != 0) {
			tg_giveup(t, "after commit, %s shows serial %s, status %s (want %s, Used)",
			    f, c.serial[0] ? c.serial : "none", c.status[0] ? c.status : "none",
			    v->serial);
			return;
		}
		tv->ok = true;
		tg_next_variant(t);
		return;
	case TS_UNDO_SET:
		snprintf(want, sizeof(want), "Transaction created for certificate %s!", f);
		if (!runtime_reply_ends(reply, len, want)) {
			tg_fail(t, "putting the previous %s back: set: %s", f, text);
			t->step = strstr(reply, "Transaction") ? TS_UNDO_ABORT : TS_IDLE;
			if (t->step == TS_IDLE) {
				tg_undo_next(t);
				return;
			}
			break;
		}
		t->step = TS_UNDO_COMMIT;
		break;
	case TS_UNDO_COMMIT:
		if (!runtime_reply_ends(reply, len, "Success!")) {
			tg_fail(t, "putting the previous %s back: commit: %s", f, text);
			t->step = TS_UNDO_ABORT;
			break;
		}
		snprintf(tv->serial, sizeof(tv->serial), "%s", "");
		tg_undo_next(t);
		return;
	case TS_UNDO_ABORT:
		tg_undo_next(t);
		return;
	case TS_UNDO_DELLIST:
		t->step = TS_UNDO_DELCERT;
		break;
	case TS_UNDO_DELCERT:
		tg_undo_next(t);
		return;
	case TS_RM_SHOW:
		runtime_parse_cert(reply, len, &c);
		if (!c.found) {
			tv->ok = true;
			tg_next_variant(t);
			return;
		}
		tv->known = true;
		snprintf(tv->serial, sizeof(tv->serial), "%s", c.serial);
		t->step = op->d->list != NULL ? TS_RM_DELLIST : TS_RM_DELCERT;
		break;
	case TS_RM_DELLIST:
		if (strstr(reply, "deleted in crtlist") == NULL &&
		    strstr(reply, "can't be found in crt-list") == NULL) {
			tg_fail(t, "del ssl crt-list %s %s: %s", op->d->list, f, text);
			tg_next_variant(t);
			return;
		}
		t->step = TS_RM_DELCERT;
		break;
	case TS_RM_DELCERT:
		snprintf(want, sizeof(want), "Certificate '%s' deleted!", f);
		if (!runtime_reply_ends(reply, len, want) && strstr(reply, "doesn't exist") == NULL) {
			tg_fail(t, "del ssl cert %s: %s", f, text);
			tg_next_variant(t);
			return;
		}
		tv->ok = true;
		tv->pushed_now = true;
		tv->serial[0] = '\0';
		tg_next_variant(t);
		return;
	case TS_IDLE:
	case TS_LOCK:
	case TS_DONE:
		return;
	}
	tg_go(t);
}

/* Sends the command of t->step. */
static void
tg_go(struct dp_target *t)
{
	struct dp_op *op = t->op;
	struct dp_var *v = &op->var[t->v];
	char cmd[PATH_MAX * 2 + 64];
	const char *payload = NULL, *list = op->d->list;
	size_t plen = 0;
	int rc;

	switch (t->step) {
	case TS_PRECHECK:
	case TS_VERIFY:
	case TS_RM_SHOW:
		snprintf(cmd, sizeof(cmd), "show ssl cert %s", v->path);
		break;
	case TS_LOCK:
		if (runtime_lock(t->rt, tg_locked, t) < 0) {
			tg_fail(t, "write turn: %s", strerror(errno));
			tg_finish(t);
		}
		return;
	case TS_LIST:
		/* Read to the end, see TS_COMMIT. */
		if (runtime_cmd(t->rt, "show ssl cert", NULL, 0, tg_reply, t) < 0) {
			tg_fail(t, "show ssl cert: %s", strerror(errno));
			tg_finish(t);
		}
		return;
	case TS_ABORT_STALE:
	case TS_ABORT_MERGED:
		snprintf(cmd, sizeof(cmd), "abort ssl cert %s", t->other);
		break;
	case TS_NEW:
		snprintf(cmd, sizeof(cmd), "new ssl cert %s;set ssl cert %s", v->path, v->path);
		payload = v->pem;
		plen = v->len;
		break;
	case TS_SET:
		snprintf(cmd, sizeof(cmd), "set ssl cert %s", v->path);
		payload = v->pem;
		plen = v->len;
		break;
	case TS_UNDO_SET:
		snprintf(cmd, sizeof(cmd), "set ssl cert %s", v->path);
		payload = v->prev;
		plen = v->prevlen;
		break;
	case TS_SHOWTX:
		snprintf(cmd, sizeof(cmd), "show ssl cert *%s", v->path);
		break;
	case TS_ABORT:
	case TS_UNDO_ABORT:
		snprintf(cmd, sizeof(cmd), "abort ssl cert %s", v->path);
		break;
	case TS_COMMIT:
		/* The turn is kept through add: a write of the next holder would
		 * meet HAProxy's global lock ("currently locked") in mid-chain. */
		if (t->tv[t->v].created)
			snprintf(cmd, sizeof(cmd), "commit ssl cert %s;add ssl crt-list %s %s;"
			    "show ssl cert %s", v->path, list, v->path, v->path);
		else
			snprintf(cmd, sizeof(cmd), "commit ssl cert %s;show ssl cert %s", v->path,
			    v->path);
		/* The last request of this turn lists for the next holder, read
		 * to its end: `show ssl cert` holds HAProxy's certificate lock
		 * until its dump is over, a reader that leaves early makes the
		 * next writer meet "currently locked". */
		t->chained_list = t->mode == M_PUSH && t->v + 1 == op->nvar &&
		    strlen(cmd) + 16 < sizeof(cmd);
		if (t->chained_list)
			strcat(cmd, ";show ssl cert");
		break;
	case TS_UNDO_COMMIT:
		snprintf(cmd, sizeof(cmd), "commit ssl cert %s", v->path);
		break;
	case TS_ADD:
		snprintf(cmd, sizeof(cmd), "add ssl crt-list %s %s;show ssl cert %s", list, v->path,
		    v->path);
		break;
	case TS_UNDO_DELLIST:
	case TS_RM_DELLIST:
		snprintf(cmd, sizeof(cmd), "del ssl crt-list %s %s", list, v->path);
		break;
	case TS_UNDO_DELCERT:
	case TS_RM_DELCERT:
		snprintf(cmd, sizeof(cmd), "del ssl cert %s", v->path);
		break;
	case TS_IDLE:
	case TS_DONE:
		return;
	}
	rc = runtime_cmd(t->rt, cmd, payload, plen, tg_reply, t);
	if (rc < 0) {
		/* EINVAL: a previous file HAProxy could not take (blank line...) */
		tg_fail(t, "%s: %s", cmd, errno == EINVAL ? "not a valid command or payload" :
		    strerror(errno));
		if (t->step >= TS_UNDO_SET)
			tg_undo_next(t);
		else if (t->step >= TS_SET)
			tg_abandon(t);
		else
			tg_finish(t);
	}
}

static void
tg_start(struct dp_target *t, enum dp_mode mode)
{
	struct dp_op *op = t->op;

	t->mode = mode;
	t->done = t->tx_open = t->list_retried = false;
	t->locked = false;
	if (mode == M_PUSH || mode == M_REMOVE) {
		t->failed = false;
		t->err[0] = '\0';
	}
	t->v = 0;
	op->tpending++;
	switch (mode) {
	case M_PUSH:
		t->step = op->kind == DP_CHECK ? TS_PRECHECK : TS_LOCK;
		break;
	case M_RECHECK:
		t->step = TS_PRECHECK;
		break;
	case M_UNDO:
	case M_REMOVE:
		t->step = TS_LOCK;
		break;
	}
	tg_go(t);
}

/* ---- TLS checks -------------------------------------------------------- */

static void
probe_end(struct dp_probe *p)
{
	struct dp_op *op = p->op;

	ev_io_stop(op->d->loop, &p->io);
	ev_timer_stop(op->d->loop, &p->timer);
	crypto_tls_probe_free(p->tls);
	p->tls = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (p->done)
		return;
	p->done = true;
	if (--op->ppending == 0) {
		op->tls_ok = true;
		for (size_t i = 0; i < op->nprobes; i++)
			if (!op->probes[i].match) {
				op->tls_ok = false;
				if (op->tls_err[0] == '\0')
					snprintf(op->tls_err, sizeof(op->tls_err), "%s",
					    op->probes[i].err);
			}
		op_targets_done(op);
	}
}

static void probe_start(struct dp_probe *p);

static void
probe_result(struct dp_probe *p, const char *why)
{
	struct dp_op *op = p->op;
	struct dp_var *v = &op->var[p->var];

	p->match = why == NULL && strcmp(p->serial, v->serial) == 0;
	if (!p->match && op->phase == PH_SETTLE && ev_now(op->d->loop) < op->settle_until) {
		/* After a reload the new worker may still be starting. */
		ev_io_stop(op->d->loop, &p->io);
		crypto_tls_probe_free(p->tls);
		p->tls = NULL;
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
		ev_timer_stop(op->d->loop, &p->timer);
		ev_timer_set(&p->timer, DP_RETRY, 0.);
		ev_timer_start(op->d->loop, &p->timer);
		p->connected = false;
		return;
	}
	if (why != NULL)
		snprintf(p->err, sizeof(p->err), "tls-check %s (SNI %s): %s", p->addr->text,
		    v->sni, why);
	else if (!p->match)
		snprintf(p->err, sizeof(p->err), "tls-check %s (SNI %s%s): serves serial %s, "
		    "not ours (%s)", p->addr->text, v->sni, v->suffix ? ", RSA" : "", p->serial,
		    v->serial);
	probe_end(p);
}

static void
probe_step(struct dp_probe *p)
{
	char why[CRYPTO_ERR_MAX];
	enum crypto_tls_status st;

	st = crypto_tls_probe_step(p->tls, p->serial, why, sizeof(why));
	switch (st) {
	case CRYPTO_TLS_DONE:
		probe_result(p, NULL);
		return;
	case CRYPTO_TLS_ERROR:
		probe_result(p, why);
		return;
	case CRYPTO_TLS_WANT_READ:
	case CRYPTO_TLS_WANT_WRITE:
		ev_io_stop(p->op->d->loop, &p->io);
		ev_io_set(&p->io, p->fd, st == CRYPTO_TLS_WANT_READ ? EV_READ : EV_WRITE);
		ev_io_start(p->op->d->loop, &p->io);
		return;
	}
}

static void
probe_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dp_probe *p = w->data;
	struct dp_var *v = &p->op->var[p->var];
	char why[CRYPTO_ERR_MAX];
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (!p->connected) {
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr != 0) {
			snprintf(why, sizeof(why), "connect: %s", strerror(soerr));
			probe_result(p, why);
			return;
		}
		p->connected = true;
		if ((p->tls = crypto_tls_probe_new(p->fd, v->sni, v->key, why,
		    sizeof(why))) == NULL) {
			probe_result(p, why);
			return;
		}
	}
	probe_step(p);
}

static void
probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dp_probe *p = w->data;
	char why[64];

	if (p->fd < 0) {	/* a retry after a reload */
		probe_start(p);
		return;
	}
	snprintf(why, sizeof(why), "no handshake within %g s", p->op->d->opts.tls_timeout);
	probe_result(p, why);
}

static void
probe_start(struct dp_probe *p)
{
	struct ev_loop *loop = p->op->d->loop;
	char why[128];

	p->connected = false;
	if ((p->fd = addr_connect(p->addr, true)) < 0) {
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		probe_result(p, why);
		return;
	}
	ev_io_init(&p->io, probe_io_cb, p->fd, EV_WRITE);
	p->io.data = p;
	ev_io_start(loop, &p->io);
	ev_timer_stop(loop, &p->timer);
	ev_timer_set(&p->timer, p->op->d->opts.tls_timeout, 0.);
	ev_timer_start(loop, &p->timer);
}

/* A probe per tls-check address and variant with a DNS name. */
static void
op_tls_start(struct dp_op *op)
{
	struct deploy *d = op->d;
	size_t i, k, n = 0;

	op->tls_ok = true;
	op->tls_started = true;
	op->tls_err[0] = '\0';
	free(op->probes);
	op->probes = NULL;
	op->nprobes = op->ppending = 0;
	if (d->nchecks == 0) {
		snprintf(op->warning, sizeof(op->warning), "no tls-check configured: the "
		    "certificate served was not checked over TLS");
		op_targets_done(op);
		return;
	}
	for (k = 0; k < op->nvar; k++)
		if (op->var[k].sni[0] == '\0')
			snprintf(op->warning, sizeof(op->warning), "%s has no DNS name to send "
			    "as SNI: not checked over TLS", op->var[k].path);
	if ((op->probes = calloc(d->nchecks * op->nvar, sizeof(*op->probes))) == NULL) {
		op->tls_ok = false;
		snprintf(op->tls_err, sizeof(op->tls_err), "no memory for the TLS checks");
		op_targets_done(op);
		return;
	}
	for (i = 0; i < d->nchecks; i++) {
		for (k = 0; k < op->nvar; k++) {
			struct dp_probe *p = &op->probes[n];
			if (op->var[k].sni[0] == '\0')
				continue;
			p->op = op;
			p->addr = &d->checks[i];
			p->var = k;
			p->fd = -1;
			ev_timer_init(&p->timer, probe_timer_cb, 0., 0.);
			p->timer.data = p;
			ev_io_init(&p->io, probe_io_cb, -1, 0);
			p->io.data = p;
			n++;
		}
	}
	op->nprobes = op->ppending = n;
	if (n == 0) {
		op_targets_done(op);
		return;
	}
	/* probe_start may end probes at once: count them all first */
	for (i = 0; i < n; i++)
		probe_start(&op->probes[i]);
}

static void
op_probes_stop(struct dp_op *op)
{
	for (size_t i = 0; i < op->nprobes; i++) {
		struct dp_probe *p = &op->probes[i];
		ev_io_stop(op->d->loop, &p->io);
		ev_timer_stop(op->d->loop, &p->timer);
		crypto_tls_probe_free(p->tls);
		p->tls = NULL;
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
	}
}

/* ---- reload-command ---------------------------------------------------- */

static void op_reload_done(struct dp_op *op);

static void
reload_read(struct dp_op *op)
{
	char chunk[1024];
	ssize_t n;

	while ((n = read(op->out_fd, chunk, sizeof(chunk))) > 0) {
		if (op->out.len + (size_t)n > DP_OUT_MAX)
			buf_consume(&op->out, op->out.len + (size_t)n - DP_OUT_MAX < op->out.len ?
			    op->out.len + (size_t)n - DP_OUT_MAX : op->out.len);
		(void)buf_append(&op->out, chunk, (size_t)n > DP_OUT_MAX ? DP_OUT_MAX : (size_t)n);
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		ev_io_stop(op->d->loop, &op->cio);
		close(op->out_fd);
		op->out_fd = -1;
	}
}

static void
reload_out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	reload_read(w->data);
}

static void
reload_exited(struct dp_op *op, int status)
{
	struct ev_loop *loop = op->d->loop;
	char last[200] = "", esc[256];
	size_t e, b;

	if (op->child_exited)
		return;
	op->child_exited = true;
	op->child = 0;
	ev_timer_stop(loop, &op->ctimer);
	if (ev_is_active(&op->cw))
		ev_child_stop(loop, &op->cw);
	if (op->out_fd >= 0)
		reload_read(op);
	/* The last line of its output goes into an error. */
	e = op->out.len;
	while (e > 0 && (op->out.p[e - 1] == '\n' || op->out.p[e - 1] == '\r'))
		e--;
	for (b = e; b > 0 && op->out.p[b - 1] != '\n'; b--)
		;
	snprintf(last, sizeof(last), "%.*s", (int)(e - b), (const char *)op->out.p + b);
	log_escape(esc, sizeof(esc), last, strlen(last));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		op->reload_ok = true;
	else if (WIFEXITED(status))
		errbuf_set(op->reload_err, sizeof(op->reload_err), "reload-command exited with "
		    "status %d%s%s", WEXITSTATUS(status), esc[0] ? ": " : "", esc);
	else
		errbuf_set(op->reload_err, sizeof(op->reload_err), "reload-command killed by "
		    "signal %d%s%s", WTERMSIG(status), esc[0] ? ": " : "", esc);
	op_reload_done(op);
}

static void
reload_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	reload_exited(w->data, w->rstatus);
}

/* Timeout, or (not the default loop: no ev_child) polling waitpid. */
static void
reload_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dp_op *op = w->data;
	int status;

	if (op->child > 0 && !ev_is_active(&op->cw) &&
	    waitpid(op->child, &status, WNOHANG) == op->child) {
		reload_exited(op, status);
		return;
	}
	if (ev_now(loop) < op->reload_deadline) {
		ev_timer_set(w, 0.05, 0.);
		ev_timer_start(loop, w);
		return;
	}
	log_warn("%s: reload-command still running after %g s: killing it", op->name,
	    op->d->opts.reload_timeout);
	(void)kill(-op->child, SIGKILL);	/* its own process group */
	if (!ev_is_active(&op->cw)) {
		(void)waitpid(op->child, &status, 0);
		reload_exited(op, status);
	}
	/* else ev_child reports the death */
}

static void
op_reload_start(struct dp_op *op)
{
	struct deploy *d = op->d;
	int pfd[2] = { -1, -1 }, devnull;
	pid_t pid;

	op->phase = PH_RELOAD;
	op->reloaded = true;
	op->tls_started = false;
	op->child_exited = false;
	op->out_fd = -1;
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0 || (pid = fork()) < 0) {
		errbuf_set(op->reload_err, sizeof(op->reload_err), "reload-command: %s",
		    strerror(errno));
		if (pfd[0] >= 0) {
			close(pfd[0]);
			close(pfd[1]);
		}
		op_reload_done(op);
		return;
	}
	if (pid == 0) {
		(void)setsid();
		devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			(void)dup2(devnull, 0);
		(void)dup2(pfd[1], 1);
		(void)dup2(pfd[1], 2);
		execl("/bin/sh", "sh", "-c", d->cfg->reload_command, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	op->child = pid;
	op->out_fd = pfd[0];
	ev_io_init(&op->cio, reload_out_cb, op->out_fd, EV_READ);
	op->cio.data = op;
	ev_io_start(d->loop, &op->cio);
	/* ev_child only works on the default loop, which then reaps every child:
	 * there it must be used; elsewhere waitpid(pid) is polled. */
	ev_child_init(&op->cw, reload_child_cb, pid, 0);
	op->cw.data = op;
	if (ev_is_default_loop(d->loop))
		ev_child_start(d->loop, &op->cw);
	op->reload_deadline = ev_now(d->loop) + d->opts.reload_timeout;
	ev_timer_init(&op->ctimer, reload_timer_cb,
	    ev_is_default_loop(d->loop) ? d->opts.reload_timeout : 0.05, 0.);
	op->ctimer.data = op;
	ev_timer_start(d->loop, &op->ctimer);
	log_info("%s: running reload-command: %s", op->name, d->cfg->reload_command);
}

/* After the reload: ask each failed HAProxy again, and check over TLS. */
static void
op_reload_done(struct dp_op *op)
{
	op->phase = PH_SETTLE;
	if (!op->reload_ok || op->kind == DP_REMOVE) {
		op_targets_done(op);
		return;
	}
	op->settle_until = ev_now(op->d->loop) + op->d->opts.reload_settle;
	op->tpending++;	/* held while the rechecks start */
	for (size_t i = 0; i < op->nt; i++) {
		struct dp_target *t = &op->t[i];
		bool all = true;
		for (size_t k = 0; k < op->nvar; k++)
			all &= t->tv[k].ok;
		if (!all)
			tg_start(t, M_RECHECK);
	}
	if (--op->tpending == 0)
		op_targets_done(op);
}

/* ---- the operation ----------------------------------------------------- */

static bool
op_targets_ok(const struct dp_op *op, size_t *nok)
{
	bool all = true;

	*nok = 0;
	for (size_t i = 0; i < op->nt; i++) {
		bool ok = true;
		for (size_t k = 0; k < op->nvar; k++)
			ok &= op->t[i].tv[k].ok;
		*nok += ok;
		all &= ok;
	}
	return all;
}

static bool
op_files_changed(const struct dp_op *op)
{
	for (size_t k = 0; k < op->nvar; k++)
		if (op->var[k].wrote_file || op->var[k].wrote_line)
			return true;
	return false;
}

/* True while a push of d is writing files or talking to a HAProxy: TLS
 * checks then wait, their handshakes would slow every round trip of the
 * write turn (HAProxy serves both on the same threads). */
static bool
deploy_pushing(const struct deploy *d)
{
	const struct dp_op *op;

	LIST_FOREACH(op, &d->ops, entry)
		if (op->kind != DP_REMOVE && (op->phase == PH_FILES || op->phase == PH_RUNTIME))
			return true;
	return false;
}

static void
deploy_tls_kick(struct deploy *d)
{
	if (!ev_is_active(&d->tls_kick) && !TAILQ_EMPTY(&d->tls_waiting)) {
		ev_timer_set(&d->tls_kick, 0., 0.);
		ev_timer_start(d->loop, &d->tls_kick);
	}
}

/* Starts the TLS checks waiting, as many as allowed. */
static void
deploy_tls_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct deploy *d = w->data;
	struct dp_op *op;
	bool pushing = deploy_pushing(d);

	while (d->tls_running < DP_TLS_OPS && (op = TAILQ_FIRST(&d->tls_waiting)) != NULL) {
		if (pushing && ev_now(loop) - op->tls_since < DP_TLS_WAIT)
			break;
		TAILQ_REMOVE(&d->tls_waiting, op, filing);
		op->in_list = DP_IN_NONE;
		op->tls_slot = true;
		d->tls_running++;
		op->phase = PH_TLS;
		op_tls_start(op);
	}
	if (!TAILQ_EMPTY(&d->tls_waiting) && d->tls_running < DP_TLS_OPS) {
		ev_timer_set(w, 0.05, 0.);	/* the pushes may end, or DP_TLS_WAIT pass */
		ev_timer_start(loop, w);
	}
}

static void
op_tls_queue(struct dp_op *op)
{
	struct deploy *d = op->d;

	op->phase = PH_TLS_WAIT;
	op->tls_since = ev_now(d->loop);
	op->in_list = DP_IN_TLS;
	TAILQ_INSERT_TAIL(&d->tls_waiting, op, filing);
	deploy_tls_kick(d);
}

static void
op_tls_slot_free(struct dp_op *op)
{
	if (!op->tls_slot)
		return;
	op->tls_slot = false;
	op->d->tls_running--;
	deploy_tls_kick(op->d);
}

/* Every target of this phase is done (and every probe): what next. */
static void
op_targets_done(struct dp_op *op)
{
	struct deploy *d = op->d;
	size_t nok, i;
	bool all;

	if (op->tpending > 0 || op->ppending > 0)
		return;
	all = op_targets_ok(op, &nok);
	if (op->phase == PH_RUNTIME)
		deploy_tls_kick(d);	/* checks waiting on pushes may go soon */
	switch (op->phase) {
	case PH_RUNTIME:
		if (op->kind == DP_REMOVE) {
			if (d->cfg->reload_command != NULL && (op->nt == 0 || !all))
				op_reload_start(op);
			else
				op_finish(op);
			return;
		}
		if (op->nt > 0 && all) {
			bool pushed = false;
			for (i = 0; i < op->nt; i++)
				for (size_t k = 0; k < op->nvar; k++)
					pushed |= op->t[i].tv[k].pushed_now;
			if (!pushed) {	/* deploy_check: all served already */
				op_finish(op);
				return;
			}
			op_tls_queue(op);
			deploy_tls_kick(d);	/* this push is over: maybe the last */
			return;
		}
		if (op->nt == 0 && op->kind == DP_CHECK && !op_files_changed(op)) {
			/* Only TLS can tell whether a reload is needed. */
			if (d->nchecks > 0) {
				op_tls_queue(op);
			} else {
				snprintf(op->warning, sizeof(op->warning), "no runtime-api and no "
				    "tls-check: cannot tell what HAProxy serves");
				op_finish(op);
			}
			return;
		}
		if (d->cfg->reload_command != NULL) {
			op_reload_start(op);
			return;
		}
		if (op->nt == 0)
			snprintf(op->error, sizeof(op->error), "no runtime-api and no "
			    "reload-command configured: the files are written, HAProxy was not "
			    "told (reload it)");
		if (nok == 0 && op->nt > 0 && op->kind == DP_DEPLOY)
			op_restore(op);
		op_finish(op);
		return;
	case PH_TLS:
		op_tls_slot_free(op);
		if (op->tls_ok) {
			op_finish(op);
			return;
		}
		if (op->nt == 0 && d->cfg->reload_command != NULL) {
			op->tls_err[0] = '\0';	/* deploy_check: a reload fixes it */
			op_reload_start(op);
			return;
		}
		if (op->kind != DP_DEPLOY) {
			op_finish(op);
			return;
		}
		/* HAProxy took it but does not serve it: everyone back. */
		log_warn("%s: %s: putting the previous certificate back", op->name, op->tls_err);
		op->phase = PH_UNDO;
		op->tpending++;
		for (i = 0; i < op->nt; i++)
			tg_start(&op->t[i], M_UNDO);
		if (--op->tpending == 0)
			op_targets_done(op);
		return;
	case PH_UNDO:
		op_restore(op);
		op_finish(op);
		return;
	case PH_RELOAD:
		return;	/* op_reload_done moves on */
	case PH_SETTLE:
		if (op->kind == DP_REMOVE) {
			op_finish(op);
			return;
		}
		if (op->reload_ok && !op->tls_started && d->nchecks > 0) {
			op_tls_start(op);	/* rechecks done: now over TLS */
			return;
		}
		if (op->reload_ok && d->nchecks == 0 && op->warning[0] == '\0')
			snprintf(op->warning, sizeof(op->warning), "no tls-check configured: "
			    "the certificate served after reload-command was not checked");
		if (!op->reload_ok && nok == 0 && op->kind == DP_DEPLOY)
			op_restore(op);
		op_finish(op);
		return;
	case PH_FILES:
	case PH_TLS_WAIT:
	case PH_FINISHED:
		return;
	}
}

static void
op_free(struct dp_op *op)
{
	struct deploy *d = op->d;

	for (size_t i = 0; i < op->nt; i++) {
		runtime_cancel(op->t[i].rt, &op->t[i]);
		ev_timer_stop(d->loop, &op->t[i].retry);
	}
	op_probes_stop(op);
	if (op->child > 0) {
		if (ev_is_active(&op->cw))
			ev_child_stop(d->loop, &op->cw);
		(void)kill(-op->child, SIGTERM);
		(void)waitpid(op->child, NULL, WNOHANG);
	}
	ev_timer_stop(d->loop, &op->ctimer);
	ev_io_stop(d->loop, &op->cio);
	if (op->out_fd >= 0)
		close(op->out_fd);
	buf_fini(&op->out);
	for (size_t k = 0; k < op->nvar; k++)
		var_fini(&op->var[k]);
	if (op->in_list == DP_IN_FILING)
		TAILQ_REMOVE(&d->filing, op, filing);
	if (op->in_list == DP_IN_PREPARED) {
		TAILQ_REMOVE(&d->prepared, op, filing);
		d->nprepared--;
	}
	if (op->in_list == DP_IN_TLS)
		TAILQ_REMOVE(&d->tls_waiting, op, filing);
	op_tls_slot_free(op);
	LIST_REMOVE(op, entry);
	d->nops--;
	free(op->probes);
	free(op->t);
	free(op->name);
	free(op);
}

static void
op_finish(struct dp_op *op)
{
	struct deploy *d = op->d;

	if (op->phase == PH_FINISHED)
		return;
	op->phase = PH_FINISHED;
	op_probes_stop(op);
	TAILQ_INSERT_TAIL(&d->finished, op, done);
	if (!ev_is_active(&d->kick)) {
		ev_timer_set(&d->kick, 0., 0.);
		ev_timer_start(d->loop, &d->kick);
	}
}

/* Builds the report of op and hands it to the caller. */
static void
op_report(struct dp_op *op)
{
	struct deploy_result *res;
	struct deploy_report r;
	size_t n = 0, nres = op->nt * op->nvar + (op->reloaded ? op->nvar : 0);
	bool tls_bad = op->tls_started && !op->tls_ok && op->tls_err[0] != '\0';

	memset(&r, 0, sizeof(r));
	r.name = op->name;
	r.ok = true;
	if ((res = calloc(nres ? nres : 1, sizeof(*res))) == NULL) {
		r.ok = false;
		r.error = "no memory for the report";
		op->cb(op->arg, &r);
		return;
	}
	for (size_t i = 0; i < op->nt; i++) {
		struct dp_target *t = &op->t[i];
		for (size_t k = 0; k < op->nvar; k++) {
			struct deploy_result *x = &res[n++];
			x->runtime_api = runtime_name(t->rt);
			x->variant = op->var[k].suffix;
			x->file = op->var[k].path;
			snprintf(x->serial, sizeof(x->serial), "%s", t->tv[k].serial);
			x->ok = t->tv[k].ok && !(tls_bad && op->kind == DP_DEPLOY);
			x->pushed = t->tv[k].pushed_now;
			if (!x->ok)
				x->error = t->err[0] ? t->err : tls_bad ? op->tls_err : op->error[0] ?
				    op->error : "not deployed";
		}
	}
	for (size_t k = 0; op->reloaded && k < op->nvar; k++) {
		struct deploy_result *x = &res[n++];
		x->runtime_api = DEPLOY_RELOAD;
		x->variant = op->var[k].suffix;
		x->file = op->var[k].path;
		x->ok = op->reload_ok && !tls_bad;
		x->pushed = op->reload_ok;
		if (x->ok)
			snprintf(x->serial, sizeof(x->serial), "%s", op->var[k].serial);
		else
			x->error = op->reload_err[0] ? op->reload_err : op->tls_err;
	}
	for (size_t i = 0; i < n; i++) {
		if (res[i].ok)
			continue;
		/* A HAProxy that failed is fine after a successful reload that
		 * the recheck confirmed: its recheck set ok; others stay failed. */
		r.ok = false;
		if (r.error == NULL)
			r.error = res[i].error;
	}
	if (op->error[0] != '\0' || tls_bad) {
		r.ok = false;
		if (r.error == NULL)
			r.error = op->error[0] ? op->error : op->tls_err;
	}
	if (n == 0 && op->error[0] == '\0' && op->kind != DP_REMOVE && r.ok)
		r.warning = "nothing to deploy to";
	r.results = res;
	r.n = n;
	if (op->warning[0] != '\0')
		r.warning = op->warning;
	r.restored = op->restored;
	op->cb(op->arg, &r);
	free(res);
}

static void
deploy_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct deploy *d = w->data;
	struct dp_op *op;

	d->dispatching++;
	while (!d->free_pending && (op = TAILQ_FIRST(&d->finished)) != NULL) {
		TAILQ_REMOVE(&d->finished, op, done);
		op_report(op);
		op_free(op);
	}
	d->dispatching--;
	if (d->dispatching == 0 && d->free_pending)
		deploy_free(d);
}

static struct dp_op *
op_find(struct deploy *d, const char *name)
{
	struct dp_op *op;

	LIST_FOREACH(op, &d->ops, entry)
		if (strcmp(op->name, name) == 0 && op->phase != PH_FINISHED)
			return op;
	return NULL;
}

static struct dp_op *
op_new(struct deploy *d, enum dp_kind kind, const char *name, deploy_cb *cb, void *arg,
    char *err, size_t errlen)
{
	struct dp_op *op;

	if (name == NULL || cb == NULL || !config_cert_name_valid(name, NULL, 0)) {
		errbuf_set(err, errlen, "'%s': not a certificate name", name ? name : "(null)");
		errno = EINVAL;
		return NULL;
	}
	if (op_find(d, name) != NULL) {
		errbuf_set(err, errlen, "%s: already being deployed or removed", name);
		errno = EBUSY;
		return NULL;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL || (op->name = strdup(name)) == NULL ||
	    (d->nrts > 0 && (op->t = calloc(d->nrts, sizeof(*op->t))) == NULL)) {
		if (op != NULL)
			free(op->name);
		free(op);
		errbuf_set(err, errlen, "no memory");
		errno = ENOMEM;
		return NULL;
	}
	op->d = d;
	op->kind = kind;
	op->cb = cb;
	op->arg = arg;
	op->out_fd = -1;
	buf_init(&op->out, DP_OUT_MAX + 1024);
	op->nt = d->nrts;
	for (size_t i = 0; i < op->nt; i++) {
		op->t[i].op = op;
		op->t[i].rt = d->rts[i];
		op->t[i].listing = &d->listings[i];
		ev_timer_init(&op->t[i].retry, tg_recheck_retry_cb, 0., 0.);
		op->t[i].retry.data = &op->t[i];
	}
	LIST_INSERT_HEAD(&d->ops, op, entry);
	d->nops++;
	return op;
}

/* Starts every target, or goes straight on when there is none. */
static void
op_run(struct dp_op *op, enum dp_mode mode)
{
	op->phase = PH_RUNTIME;
	op->tpending++;	/* held while starting: a target cannot end the phase */
	for (size_t i = 0; i < op->nt; i++)
		tg_start(&op->t[i], mode);
	if (--op->tpending == 0)
		op_targets_done(op);
}

/* fsync of a file by name. */
static int
fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Makes the prepared operations' files durable and theirs: one syncfs
 * for all the temp files (fsync each where it fails), the renames, one
 * fsync of cert-dir, one crt-list edit for all their lines (rewritten per
 * name, the crt-list would cost O(n^2) and an fsync each); then their
 * runtime phases start. */
static void
deploy_commit_files(struct deploy *d)
{
	TAILQ_HEAD(, dp_op) batch = TAILQ_HEAD_INITIALIZER(batch);
	char err[DEPLOY_ERR_MAX], fallback[PATH_MAX] = "";
	const char **paths = NULL;
	struct dp_op *op;
	bool *had = NULL;
	size_t n = 0, k;
	int dfd;

	TAILQ_CONCAT(&batch, &d->prepared, filing);
	d->nprepared = 0;
	TAILQ_FOREACH(op, &batch, filing)
		op->in_list = DP_IN_NONE;
	if ((dfd = open(d->cert_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || syncfs(dfd) < 0)
		TAILQ_FOREACH(op, &batch, filing)
			for (k = 0; k < op->nvar; k++)
				if (op->var[k].tmp != NULL && fsync_path(op->var[k].tmp) < 0 &&
				    op->error[0] == '\0')
					errbuf_set(op->error, sizeof(op->error), "%s: %s",
					    op->var[k].tmp, strerror(errno));
	TAILQ_FOREACH(op, &batch, filing)
		if (op->error[0] == '\0' && op_rename_tmps(op, op->error, sizeof(op->error)) == 0)
			n += op->nvar;
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	if (d->list != NULL && n > 0) {
		err[0] = '\0';
		if ((paths = calloc(n, sizeof(*paths))) == NULL ||
		    (had = calloc(n, sizeof(*had))) == NULL)
			errbuf_set(err, sizeof(err), "no memory");
		n = 0;
		TAILQ_FOREACH(op, &batch, filing)
			for (k = 0; paths != NULL && op->error[0] == '\0' && k < op->nvar; k++)
				paths[n++] = op->var[k].path;
		if (err[0] == '\0')
			(void)cl_change(d, paths, n, false, had, fallback, err, sizeof(err));
		n = 0;
		TAILQ_FOREACH(op, &batch, filing) {
			if (op->error[0] != '\0')
				continue;
			snprintf(op->error, sizeof(op->error), "%s", err);
			snprintf(op->fallback, sizeof(op->fallback), "%s", fallback);
			for (k = 0; k < op->nvar; k++, n++) {
				op->var[k].had_line = had != NULL && had[n];
				op->var[k].wrote_line = err[0] == '\0' && !op->var[k].had_line;
			}
		}
	}
	free(paths);
	free(had);
	while ((op = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, op, filing);
		if (op->error[0] != '\0') {
			op_restore(op);
			op_finish(op);
		} else {
			op_run(op, M_PUSH);
		}
	}
}

/* When the loop has nothing else to do (ev_idle): one operation is checked
 * (OpenSSL's decoding costs a millisecond or more) and its PEMs written to
 * temp files; every DP_GROUP of them, or when none is left, they become
 * durable and their pushes start. So the checks of a long batch fill the
 * waits for HAProxy's replies instead of delaying the first push. */
static void
deploy_prep_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct deploy *d = w->data;
	struct dp_op *op;
	size_t k;

	if ((op = TAILQ_FIRST(&d->filing)) != NULL) {
		TAILQ_REMOVE(&d->filing, op, filing);
		for (k = 0; k < op->nvar && op->error[0] == '\0'; k++) {
			char label[CONFIG_NAME_MAX + DP_SUFFIX_MAX + 8];
			snprintf(label, sizeof(label), "%s%s%s", op->name, op->var[k].suffix ?
			    "/" : "", op->var[k].suffix ? op->var[k].suffix : "");
			(void)var_load(&op->var[k], label, op->error, sizeof(op->error));
		}
		if (op->error[0] == '\0')
			(void)op_write_tmps(op, op->error, sizeof(op->error));
		TAILQ_INSERT_TAIL(&d->prepared, op, filing);
		op->in_list = DP_IN_PREPARED;
		d->nprepared++;
	}
	if (TAILQ_EMPTY(&d->filing))
		ev_idle_stop(loop, w);
	if (d->nprepared >= DP_GROUP || (TAILQ_EMPTY(&d->filing) && d->nprepared > 0))
		deploy_commit_files(d);
}

static int
op_push(struct deploy *d, enum dp_kind kind, const char *name,
    const struct store_cert *const variants[], const char *const variant_names[], size_t n,
    deploy_cb *cb, void *arg, char *err, size_t errlen)
{
	struct dp_op *op;
	size_t i, k;

	if (n < 1 || n > DEPLOY_VARIANTS_MAX || variants == NULL) {
		errbuf_set(err, errlen, "%s: 1 or 2 variants, not %zu", name ? name : "", n);
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *s = variant_names ? variant_names[i] : NULL;
		if (s != NULL && !suffix_valid(s)) {
			errbuf_set(err, errlen, "%s: variant '%s': use [a-z0-9]{1,16}", name, s);
			errno = EINVAL;
			return -1;
		}
		for (k = 0; k < i; k++) {
			const char *o = variant_names ? variant_names[k] : NULL;
			if ((s == NULL && o == NULL) || (s && o && strcmp(s, o) == 0)) {
				errbuf_set(err, errlen, "%s: the same variant twice", name);
				errno = EINVAL;
				return -1;
			}
		}
	}
	if ((op = op_new(d, kind, name, cb, arg, err, errlen)) == NULL)
		return -1;
	op->nvar = n;
	for (i = 0; i < n; i++) {
		const char *s = variant_names ? variant_names[i] : NULL;
		if (var_path(d, &op->var[i], name, s) < 0) {
			errbuf_set(err, errlen, "no memory");
			errno = ENOMEM;
			goto fail;
		}
		if (var_copy(&op->var[i], variants[i]) < 0) {
			errbuf_set(err, errlen, "no memory");
			errno = ENOMEM;
			goto fail;
		}
	}
	op->phase = PH_FILES;
	op->in_list = DP_IN_FILING;
	TAILQ_INSERT_TAIL(&d->filing, op, filing);
	if (!ev_is_active(&d->prep))
		ev_idle_start(d->loop, &d->prep);
	return 0;
fail:
	op_free(op);
	return -1;
}

int
deploy_cert(struct deploy *d, const char *name, const struct store_cert *const variants[],
    const char *const variant_names[], size_t n, deploy_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return op_push(d, DP_DEPLOY, name, variants, variant_names, n, cb, arg, err, errlen);
}

int
deploy_check(struct deploy *d, const char *name, const struct store_cert *const variants[],
    const char *const variant_names[], size_t n, deploy_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return op_push(d, DP_CHECK, name, variants, variant_names, n, cb, arg, err, errlen);
}

int
deploy_remove(struct deploy *d, const char *name, deploy_cb *cb, void *arg,
    char *err, size_t errlen)
{
	static const char *const suffixes[DEPLOY_VARIANTS_MAX] = { NULL, "rsa" };
	const char *paths[DEPLOY_VARIANTS_MAX];
	bool had[DEPLOY_VARIANTS_MAX];
	struct dp_op *op;

	if ((op = op_new(d, DP_REMOVE, name, cb, arg, err, errlen)) == NULL)
		return -1;
	op->nvar = DEPLOY_VARIANTS_MAX;
	for (size_t i = 0; i < op->nvar; i++) {
		if (var_path(d, &op->var[i], name, suffixes[i]) < 0) {
			errbuf_set(err, errlen, "no memory");
			errno = ENOMEM;
			goto fail;
		}
		paths[i] = op->var[i].path;
	}
	/* Off the crt-list first: a reload from now on goes without it. */
	if (d->list != NULL &&
	    cl_change(d, paths, op->nvar, true, had, op->fallback, err, errlen) < 0) {
		errno = EIO;
		goto fail;
	}
	op_run(op, M_REMOVE);
	/* The files go now: HAProxy keeps what it loaded until told. */
	for (size_t i = 0; i < op->nvar; i++) {
		if (unlink(op->var[i].path) < 0 && errno != ENOENT)
			log_warn("%s: %s: %s", name, op->var[i].path, strerror(errno));
		else
			(void)hfiles_disown(d->cfg->state_dir, op->var[i].path);
	}
	return 0;
fail:
	op_free(op);
	return -1;
}

size_t
deploy_pending(const struct deploy *d)
{
	return d->nops;
}

/* ---- the object -------------------------------------------------------- */

struct deploy *
deploy_new(struct ev_loop *loop, const struct config *cfg, const struct deploy_opts *opts,
    char *err, size_t errlen)
{
	struct runtime_opts ro;
	struct deploy *d;
	size_t i;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		errbuf_set(err, errlen, "no memory");
		return NULL;
	}
	d->loop = loop;
	d->cfg = cfg;
	LIST_INIT(&d->ops);
	TAILQ_INIT(&d->finished);
	ev_timer_init(&d->kick, deploy_kick_cb, 0., 0.);
	d->kick.data = d;
	TAILQ_INIT(&d->filing);
	TAILQ_INIT(&d->prepared);
	ev_idle_init(&d->prep, deploy_prep_cb);
	d->prep.data = d;
	TAILQ_INIT(&d->tls_waiting);
	ev_timer_init(&d->tls_kick, deploy_tls_kick_cb, 0., 0.);
	d->tls_kick.data = d;
	if (opts != NULL)
		d->opts = *opts;
	if (d->opts.tls_timeout <= 0)
		d->opts.tls_timeout = DP_TLS_TIMEOUT;
	if (d->opts.reload_timeout <= 0)
		d->opts.reload_timeout = DP_RELOAD_TIMEOUT;
	if (d->opts.reload_settle <= 0)
		d->opts.reload_settle = DP_RELOAD_SETTLE;
	d->cert_dir = hfiles_cert_dir(cfg);
	d->list = hfiles_list(cfg, &d->list_dir);
	if (d->cert_dir == NULL || (cfg->crt_list != NULL && d->list == NULL) ||
	    asprintf(&d->list_lock, "%s/crt-list.lock",
	    cfg->state_dir) < 0) {
		d->list_lock = NULL;
		errbuf_set(err, errlen, "no memory");
		goto fail;
	}
	if (mkdir_p(cfg->state_dir, 0700) < 0) {
		errbuf_set(err, errlen, "state-dir %s: %s", cfg->state_dir, strerror(errno));
		goto fail;
	}
	if (mkdir_p(d->cert_dir, 0750) < 0) {
		errbuf_set(err, errlen, "cert-dir %s: %s", d->cert_dir, strerror(errno));
		goto fail;
	}
	if (strpbrk(d->cert_dir, " \t\n#[;") != NULL) {
		errbuf_set(err, errlen, "cert-dir '%s': a crt-list or HAProxy command cannot hold "
		    "this path (no blanks, '#', '[' or ';')", d->cert_dir);
		goto fail;
	}
	if (d->list_dir && !hfiles_same_dir(d->cert_dir, d->list)) {
		errbuf_set(err, errlen, "crt-list %s is a directory: HAProxy adds only files "
		    "inside it, so cert-dir must be that directory (remove the cert-dir line)",
		    d->list);
		goto fail;
	}
	if (cfg->crt_list != NULL && strpbrk(cfg->crt_list, " \t\n;") != NULL) {
		errbuf_set(err, errlen, "crt-list '%s': a HAProxy command cannot hold this path "
		    "(no blanks or ';')", cfg->crt_list);
		goto fail;
	}
	memset(&ro, 0, sizeof(ro));
	ro.timeout = d->opts.timeout;
	ro.lock_timeout = d->opts.lock_timeout;
	ro.lock_dir = cfg->state_dir;
	if (cfg->nruntime_apis > 0 &&
	    ((d->rts = calloc(cfg->nruntime_apis, sizeof(*d->rts))) == NULL ||
	    (d->listings = calloc(cfg->nruntime_apis, sizeof(*d->listings))) == NULL)) {
		errbuf_set(err, errlen, "no memory");
		goto fail;
	}
	for (i = 0; i < cfg->nruntime_apis; i++) {
		if ((d->rts[i] = runtime_new(loop, cfg->runtime_apis[i], &ro, err, errlen)) == NULL)
			goto fail;
		d->nrts++;
	}
	if (cfg->ntls_checks > 0 &&
	    (d->checks = calloc(cfg->ntls_checks, sizeof(*d->checks))) == NULL) {
		errbuf_set(err, errlen, "no memory");
		goto fail;
	}
	for (i = 0; i < cfg->ntls_checks; i++) {
		if (addr_parse(&d->checks[i], cfg->tls_checks[i], err, errlen) < 0)
			goto fail;
		if (addr_is_unix(&d->checks[i])) {
			errbuf_set(err, errlen, "tls-check %s: a TLS check needs a tcp address",
			    cfg->tls_checks[i]);
			goto fail;
		}
		d->nchecks++;
	}
	return d;
fail:
	deploy_free(d);
	return NULL;
}

void
deploy_free(struct deploy *d)
{
	struct dp_op *op;

	if (d == NULL)
		return;
	if (d->dispatching > 0) {
		d->free_pending = true;
		return;
	}
	while ((op = LIST_FIRST(&d->ops)) != NULL)
		op_free(op);
	for (size_t i = 0; i < d->nrts; i++)
		runtime_free(d->rts[i]);
	ev_timer_stop(d->loop, &d->kick);
	ev_idle_stop(d->loop, &d->prep);
	ev_timer_stop(d->loop, &d->tls_kick);
	free(d->rts);
	free(d->listings);
	free(d->checks);
	free(d->cert_dir);
	free(d->list);
	free(d->list_lock);
	free(d);
}
