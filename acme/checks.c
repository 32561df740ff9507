/* checks.c - before an order: could its certificate be stored and served?
 * See checks.h. Local checks (directories) run inside checks_run; each
 * HAProxy is asked on its runtime API, all of them at once, one command
 * after the other on each. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <ev.h>

#include "acme/checks.h"
#include "acme/config.h"
#include "acme/runtime.h"
#include "common/log.h"

#define CK_TIMEOUT 5.0
#define CK_TTL 10.0
#define CK_INODES_MIN 16
#define CK_LIST_SHOW 300	/* bytes of HAProxy's crt-lists quoted in a message */
/* what HAProxy commands and crt-list lines cannot carry unquoted (config.c
 * refuses them in an explicit cert-dir or crt-list) */
#define CK_PATH_BAD " \t#[;\\\"'"

struct waiter {
	TAILQ_ENTRY(waiter) e;
	checks_cb *cb;
	void *arg;
	unsigned long seq;	/* waiters up to a result's seq get that result */
};
TAILQ_HEAD(waiters, waiter);

struct krun;

/* One HAProxy. */
struct krt {
	struct krun *run;
	struct runtime *rt;
	const char *addr;	/* the run's copy */
	int step;
};

struct krun {
	struct checks *k;
	const struct config *key;	/* which config this result is for */
	char *crt_list;
	char **addrs;
	struct krt *rts;
	size_t nrt;
	unsigned pending;
	struct checks_finding *f;
	size_t nf, capf;
	int first_fail;			/* index in f, or -1 */
	bool oom;
};

struct checks {
	struct ev_loop *loop;
	struct checks_opts opts;
	struct krun *cur;		/* in flight */
	struct krun *last;		/* the last finished */
	double last_at;
	struct waiters waiting;
	unsigned long seq;
	struct krun *delivering;	/* its report is in the callbacks' hands */
	struct krun *zombie;		/* replaced while delivering: freed after */
	ev_timer deliver;		/* answers from last, from the loop */
};

static void run_finish(struct krun *r);

/* ---- findings ---- */

static void __attribute__((format(printf, 3, 4)))
add(struct krun *r, enum checks_level level, const char *fmt, ...)
{
	char buf[CHECKS_ERR_MAX];
	va_list ap;
	char *s;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (r->nf == r->capf) {
		size_t cap = r->capf ? 2 * r->capf : 16;
		struct checks_finding *q = realloc(r->f, cap * sizeof(*q));
		if (q == NULL) {
			r->oom = true;
			return;
		}
		r->f = q;
		r->capf = cap;
	}
	if ((s = strdup(buf)) == NULL) {
		r->oom = true;
		return;
	}
	if (level == CHECKS_FAIL && r->first_fail < 0)
		r->first_fail = (int)r->nf;
	r->f[r->nf].level = level;
	r->f[r->nf].text = s;
	r->nf++;
}

static void
run_free(struct krun *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nrt; i++)
		runtime_free(r->rts[i].rt);
	free(r->rts);
	for (size_t i = 0; i < r->nrt; i++)
		free(r->addrs[i]);
	free(r->addrs);
	free(r->crt_list);
	for (size_t i = 0; i < r->nf; i++)
		free((char *)r->f[i].text);
	free(r->f);
	free(r);
}

/* ---- local: directories ---- */

/* dir, or its nearest existing ancestor (deploy creates the rest) into out. */
static int
existing_ancestor(const char *dir, char *out, size_t outlen, struct stat *st)
{
	if (snprintf(out, outlen, "%s", dir) >= (int)outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (;;) {
		char *slash;

		if (stat(out, st) == 0)
			return 0;
		if (errno != ENOENT)
			return -1;
		if ((slash = strrchr(out, '/')) == NULL) {
			snprintf(out, outlen, ".");
			continue;
		}
		if (slash == out)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
}

/* A file created, written and removed in dir (or where it will be made),
 * and room beside it. what: "state-dir", "cert-dir", ... */
static void
dir_check(struct krun *r, const char *what, const char *dir, const char *fix)
{
	char at[PATH_MAX], probe[PATH_MAX + 64];
	struct statvfs vfs;
	struct stat st;
	int fd, e;

	if (existing_ancestor(dir, at, sizeof at, &st) < 0) {
		add(r, CHECKS_FAIL, "%s %s: %s: %s", what, dir, strerror(errno), fix);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		add(r, CHECKS_FAIL, "%s %s: %s is not a directory: %s", what, dir, at, fix);
		return;
	}
	snprintf(probe, sizeof probe, "%s/.hacme-check.%ld", at, (long)getpid());
	(void)unlink(probe);	/* a leftover of a crashed earlier run with our pid */
	if ((fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		add(r, CHECKS_FAIL, "%s %s: cannot create a file in %s: %s: %s", what, dir, at,
		    strerror(errno), fix);
		return;
	}
	e = write(fd, "x", 1) == 1 ? 0 : errno;
	close(fd);
	(void)unlink(probe);
	if (e != 0) {
		add(r, CHECKS_FAIL, "%s %s: cannot write a file in %s: %s: %s", what, dir, at,
		    strerror(e), fix);
		return;
	}
	if (statvfs(at, &vfs) == 0) {
		unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;

		if (avail < CHECKS_FREE_MIN) {
			add(r, CHECKS_FAIL, "%s %s: only %llu KiB free on its file system (at "
			    "least %u KiB needed): free some space", what, dir, avail / 1024,
			    CHECKS_FREE_MIN / 1024);
			return;
		}
		if (vfs.f_files > 0 && vfs.f_favail < CK_INODES_MIN) {
			add(r, CHECKS_FAIL, "%s %s: no free inodes on its file system: remove "
			    "some files", what, dir);
			return;
		}
		add(r, CHECKS_OK, "%s %s: writable, %llu MiB free", what, dir, avail >> 20);
		return;
	}
	add(r, CHECKS_OK, "%s %s: writable", what, dir);
}

static void
local_checks(struct krun *r, const struct config *cfg)
{
	char def[PATH_MAX];
	const char *cert_dir = cfg->cert_dir;
	struct stat st;

	dir_check(r, "state-dir", cfg->state_dir, "make it writable for the user hacme runs as");
	if (cert_dir == NULL) {
		snprintf(def, sizeof def, "%s/haproxy", cfg->state_dir);
		cert_dir = def;
	}
	if (strpbrk(cert_dir, CK_PATH_BAD) != NULL)
		add(r, CHECKS_FAIL, "cert-dir %s (<state-dir>/haproxy): HAProxy commands cannot "
		    "carry blanks, '#', '[', ';', '\\' or quotes in a path: set `cert-dir` "
		    "to a plain path", cert_dir);
	else
		dir_check(r, "cert-dir", cert_dir, "hacme writes <name>.pem there for HAProxy: "
		    "make it writable for hacme, or set `cert-dir` to a directory it can write "
		    "and HAProxy reads");
	if (cfg->crt_list == NULL) {
		if (cfg->nruntime_apis > 0)
			add(r, CHECKS_WARN, "no crt-list: a name HAProxy has never served cannot "
			    "be added at runtime (set `crt-list` to the one bound on :443)");
		return;
	}
	if (stat(cfg->crt_list, &st) < 0) {
		add(r, CHECKS_FAIL, "crt-list %s: %s: create it with a fallback certificate on "
		    "its first line (haproxy-conf/make-fallback-cert.sh) and bind it "
		    "(`bind :443 ssl crt-list %s`)", cfg->crt_list, strerror(errno),
		    cfg->crt_list);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		dir_check(r, "crt-list directory", cfg->crt_list, "hacme adds files there: make "
		    "it writable for hacme");
	} else if (S_ISREG(st.st_mode)) {
		char dir[PATH_MAX], *slash;

		snprintf(dir, sizeof dir, "%s", cfg->crt_list);
		if ((slash = strrchr(dir, '/')) == NULL)
			snprintf(dir, sizeof dir, ".");
		else if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		dir_check(r, "the crt-list's directory", dir, "hacme replaces the crt-list by "
		    "write-temp + rename there: make it writable for hacme");
	} else {
		add(r, CHECKS_FAIL, "crt-list %s: neither a file nor a directory", cfg->crt_list);
	}
}

/* ---- HAProxy ---- */

bool
checks_crtlist_listed(const char *reply, size_t len, const char *path)
{
	const char *p = reply, *end = reply + len;
	struct stat want, got;
	bool have_want = stat(path, &want) == 0;
	char line[PATH_MAX];

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 0 && n < sizeof line && p[0] != '#') {
			memcpy(line, p, n);
			line[n] = '\0';
			if (strcmp(line, path) == 0)
				return true;
			if (have_want && stat(line, &got) == 0 && got.st_dev == want.st_dev &&
			    got.st_ino == want.st_ino)
				return true;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return false;
}

/* The reply's lines joined with ", ", escaped, cut. */
static const char *
show_lines(char *buf, size_t cap, const char *reply, size_t len)
{
	char flat[CK_LIST_SHOW + 1];
	size_t o = 0;

	for (size_t i = 0; i < len && o < CK_LIST_SHOW; i++) {
		if (reply[i] == '\r')
			continue;
		if (reply[i] == '\n') {
			if (o > 0 && i + 1 < len && reply[i + 1] != '\n' && o + 2 < CK_LIST_SHOW) {
				flat[o++] = ',';
				flat[o++] = ' ';
			}
			continue;
		}
		flat[o++] = reply[i];
	}
	while (o > 0 && (flat[o - 1] == ' ' || flat[o - 1] == ','))
		o--;
	if (o == 0) {
		snprintf(buf, cap, "none");
		return buf;
	}
	return log_escape(buf, cap, flat, o);
}

enum { ST_LEVEL, ST_CRTLIST, ST_DONE };

static void rt_step(struct krt *t);

static void
rt_done(struct krt *t)
{
	struct krun *r = t->run;

	t->step = ST_DONE;
	if (--r->pending == 0)
		run_finish(r);
}

static void
rt_reply(void *arg, const char *err, const char *reply, size_t len)
{
	struct krt *t = arg;
	struct krun *r = t->run;
	char show[CK_LIST_SHOW * 4 + 8], lvl[32];
	size_t n;

	if (err != NULL) {
		add(r, CHECKS_FAIL, "%s: is HAProxy running, and is this its `stats socket` "
		    "(runtime-api %s, `level admin`)?", err, t->addr);
		rt_done(t);
		return;
	}
	switch (t->step) {
	case ST_LEVEL:
		for (n = len; n > 0 && (reply[n - 1] == '\n' || reply[n - 1] == ' '); n--)
			;
		if (n == 5 && memcmp(reply, "admin", 5) == 0) {
			add(r, CHECKS_OK, "HAProxy %s: reachable, level admin", t->addr);
			t->step = ST_CRTLIST;
			rt_step(t);
			return;
		}
		if ((n == 8 && memcmp(reply, "operator", 8) == 0) ||
		    (n == 4 && memcmp(reply, "user", 4) == 0)) {
			memcpy(lvl, reply, n);
			lvl[n] = '\0';
			add(r, CHECKS_FAIL, "HAProxy %s: the socket is at level %s, hacme needs "
			    "level admin: write `level admin` on its `stats socket` line in "
			    "haproxy.cfg and reload HAProxy", t->addr, lvl);
		} else {
			add(r, CHECKS_FAIL, "HAProxy %s: `show cli level` answered '%s': hacme "
			    "needs HAProxy 2.1 or later on a socket at level admin", t->addr,
			    log_escape(show, sizeof show, reply, n < 64 ? n : 64));
		}
		rt_done(t);
		return;
	case ST_CRTLIST:
		if (checks_crtlist_listed(reply, len, r->crt_list)) {
			add(r, CHECKS_OK, "HAProxy %s: crt-list %s is bound", t->addr, r->crt_list);
		} else {
			add(r, CHECKS_FAIL, "crt-list %s: HAProxy %s does not use it (its crt-lists: "
			    "%s): bind it on the TLS frontend (`bind :443 ssl crt-list %s`) and "
			    "reload HAProxy, or set `crt-list` to the one it uses", r->crt_list,
			    t->addr, show_lines(show, sizeof show, reply, len), r->crt_list);
		}
		rt_done(t);
		return;
	}
	rt_done(t);
}

static void
rt_step(struct krt *t)
{
	const char *cmd = NULL;

	if (t->step == ST_CRTLIST && t->run->crt_list == NULL)
		t->step = ST_DONE;
	switch (t->step) {
	case ST_LEVEL:
		cmd = "show cli level";
		break;
	case ST_CRTLIST:
		cmd = "show ssl crt-list";
		break;
	default:
		rt_done(t);
		return;
	}
	if (runtime_cmd(t->rt, cmd, NULL, 0, rt_reply, t) < 0) {
		add(t->run, CHECKS_FAIL, "HAProxy %s: %s: %s", t->addr, cmd, strerror(errno));
		rt_done(t);
	}
}

/* ---- runs ---- */

static void
deliver(struct checks *k, struct krun *r)
{
	unsigned long upto = k->seq;
	struct checks_report rep = {
		.error = r->oom ? "out of memory" :
		    r->first_fail >= 0 ? r->f[r->first_fail].text : NULL,
		.findings = r->f,
		.n = r->nf,
	};
	struct waiter *w;

	k->delivering = r;
	/* one at a time from the list: a callback may cancel another waiter,
	 * or wait again (then it is after upto, for the next result) */
	while ((w = TAILQ_FIRST(&k->waiting)) != NULL && w->seq <= upto) {
		checks_cb *cb = w->cb;
		void *arg = w->arg;

		TAILQ_REMOVE(&k->waiting, w, e);
		free(w);
		cb(arg, &rep);
	}
	k->delivering = NULL;
	run_free(k->zombie);
	k->zombie = NULL;
}

static void
run_finish(struct krun *r)
{
	struct checks *k = r->k;

	for (size_t i = 0; i < r->nrt; i++) {
		runtime_free(r->rts[i].rt);
		r->rts[i].rt = NULL;
	}
	if (k->cur == r)
		k->cur = NULL;
	if (k->last != NULL && k->last == k->delivering)
		k->zombie = k->last;
	else
		run_free(k->last);
	k->last = r;
	k->last_at = ev_now(k->loop);
	ev_timer_stop(k->loop, &k->deliver);
	ev_timer_set(&k->deliver, 0., 0.);
	ev_timer_start(k->loop, &k->deliver);
}

static void
deliver_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct checks *k = w->data;

	(void)loop;
	(void)revents;
	if (k->cur == NULL && k->last != NULL)
		deliver(k, k->last);
}

static int
run_start(struct checks *k, const struct config *cfg)
{
	struct runtime_opts ro = { .timeout = k->opts.timeout };
	char err[RUNTIME_ERR_MAX];
	struct krun *r;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return -1;
	r->k = k;
	r->key = cfg;
	r->first_fail = -1;
	if ((cfg->crt_list != NULL && (r->crt_list = strdup(cfg->crt_list)) == NULL) ||
	    (cfg->nruntime_apis > 0 &&
	    ((r->addrs = calloc(cfg->nruntime_apis, sizeof(*r->addrs))) == NULL ||
	    (r->rts = calloc(cfg->nruntime_apis, sizeof(*r->rts))) == NULL))) {
		run_free(r);
		return -1;
	}
	for (; r->nrt < cfg->nruntime_apis; r->nrt++)
		if ((r->addrs[r->nrt] = strdup(cfg->runtime_apis[r->nrt])) == NULL) {
			run_free(r);
			return -1;
		}
	k->cur = r;
	local_checks(r, cfg);
	if (r->nrt == 0 && cfg->reload_command == NULL)
		add(r, CHECKS_WARN, "no runtime-api and no reload-command: certificates are "
		    "stored, not deployed");
	r->pending = 1;		/* held until every HAProxy is asked */
	for (size_t i = 0; i < r->nrt; i++) {
		struct krt *t = &r->rts[i];

		t->run = r;
		t->addr = r->addrs[i];
		if ((t->rt = runtime_new(k->loop, t->addr, &ro, err, sizeof err)) == NULL) {
			add(r, CHECKS_FAIL, "runtime-api %s: %s", t->addr, err);
			continue;
		}
		r->pending++;
		rt_step(t);
	}
	if (--r->pending == 0)
		run_finish(r);
	return 0;
}

struct checks *
checks_new(struct ev_loop *loop, const struct checks_opts *opts)
{
	struct checks *k = calloc(1, sizeof *k);

	if (k == NULL)
		return NULL;
	k->loop = loop;
	if (opts != NULL)
		k->opts = *opts;
	if (k->opts.timeout <= 0)
		k->opts.timeout = CK_TIMEOUT;
	if (k->opts.ttl <= 0)
		k->opts.ttl = CK_TTL;
	TAILQ_INIT(&k->waiting);
	ev_timer_init(&k->deliver, deliver_cb, 0., 0.);
	k->deliver.data = k;
	return k;
}

void
checks_free(struct checks *k)
{
	struct waiter *w;

	if (k == NULL)
		return;
	ev_timer_stop(k->loop, &k->deliver);
	while ((w = TAILQ_FIRST(&k->waiting)) != NULL) {
		TAILQ_REMOVE(&k->waiting, w, e);
		free(w);
	}
	run_free(k->cur);
	run_free(k->last);
	run_free(k->zombie);
	free(k);
}

int
checks_run(struct checks *k, const struct config *cfg, checks_cb *cb, void *arg)
{
	struct waiter *w;

	TAILQ_FOREACH(w, &k->waiting, e)
		if (w->arg == arg) {
			errno = EBUSY;
			return -1;
		}
	if ((w = calloc(1, sizeof *w)) == NULL)
		return -1;
	w->cb = cb;
	w->arg = arg;
	w->seq = ++k->seq;
	TAILQ_INSERT_TAIL(&k->waiting, w, e);
	if (k->cur != NULL)
		return 0;
	if (k->last != NULL && k->last->key == cfg &&
	    ev_now(k->loop) - k->last_at < k->opts.ttl) {
		if (!ev_is_active(&k->deliver)) {
			ev_timer_set(&k->deliver, 0., 0.);
			ev_timer_start(k->loop, &k->deliver);
		}
		return 0;
	}
	if (run_start(k, cfg) < 0) {
		TAILQ_REMOVE(&k->waiting, w, e);
		free(w);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
checks_cancel(struct checks *k, void *arg)
{
	struct waiter *w;

	if (k == NULL)
		return;
	TAILQ_FOREACH(w, &k->waiting, e)
		if (w->arg == arg) {
			TAILQ_REMOVE(&k->waiting, w, e);
			free(w);
			return;
		}
}
