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
#include "acme/hapconf.h"
#include "acme/hfiles.h"
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
	struct hapconf hc;	/* its files, once read */
	size_t agent;		/* hc.agents[agent]: the backend being asked for */
};

struct krun {
	struct checks *k;
	const struct config *key;	/* which config this result is for */
	char *crt_list;
	char *spoa_listen;	/* NULL: external agents (their SPOP address is not known) */
	bool http01;		/* some name is validated through the agents */
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
	for (size_t i = 0; i < r->nrt; i++) {
		runtime_free(r->rts[i].rt);
		hapconf_free(&r->rts[i].hc);
	}
	free(r->rts);
	for (size_t i = 0; i < r->nrt; i++)
		free(r->addrs[i]);
	free(r->addrs);
	free(r->crt_list);
	free(r->spoa_listen);
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
	char *cert_dir = hfiles_cert_dir(cfg);	/* cert-dir, crt DIR, <state-dir>/haproxy */
	struct stat st;

	dir_check(r, "state-dir", cfg->state_dir, "make it writable for the user hacme runs as");
	if (cert_dir == NULL)
		add(r, CHECKS_FAIL, "cert-dir: out of memory");
	else if (strpbrk(cert_dir, CK_PATH_BAD) != NULL)
		add(r, CHECKS_FAIL, "cert-dir %s: HAProxy commands cannot carry blanks, '#', '[', "
		    "';', '\\' or quotes in a path: set `cert-dir` to a plain path", cert_dir);
	else
		dir_check(r, "cert-dir", cert_dir, "hacme writes <name>.pem there for HAProxy: "
		    "make it writable for hacme, or set `cert-dir` to a directory it can write "
		    "and HAProxy reads");
	free(cert_dir);
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

enum { ST_LEVEL, ST_CRTLIST, ST_INFO, ST_SERVERS, ST_DONE };

/* "HOST:PORT" of spoa-listen (prefixes ipv4@, ipv6@, tcp: dropped,
 * brackets too). False for a unix socket or a shape not understood. */
static bool
listen_split(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;

	if (strncmp(s, "ipv4@", 5) == 0 || strncmp(s, "ipv6@", 5) == 0)
		s += 5;
	else if (strncmp(s, "tcp:", 4) == 0)
		s += 4;
	else if (strchr(s, '@') != NULL || s[0] == '/' || strncmp(s, "unix:", 5) == 0)
		return false;
	if ((colon = strrchr(s, ':')) == NULL)
		return false;
	snprintf(port, portlen, "%s", colon + 1);
	if (s[0] == '[' && colon > s && colon[-1] == ']')
		snprintf(host, hostlen, "%.*s", (int)(colon - s - 2), s + 1);
	else
		snprintf(host, hostlen, "%.*s", (int)(colon - s), s);
	return true;
}

/* Whether a `show servers state` reply has a server where hacme-spoa
 * listens; *list gets "ADDR:PORT, ..." for the message. */
static bool
servers_reach(const char *reply, size_t len, const char *listen, char *list, size_t listlen)
{
	char host[300], port[16], line[1024], *w[40];
	const char *p = reply, *end = reply + len;
	int addr_col = 4, port_col = 18;
	bool any_host, found = false;
	size_t o = 0;

	list[0] = '\0';
	if (!listen_split(listen, host, sizeof host, port, sizeof port))
		return true;	/* a unix socket: not compared */
	any_host = host[0] == '\0' || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
	    strcmp(host, "::") == 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p), nw = 0;
		char *save = NULL, *tok;

		if (n < sizeof line) {
			memcpy(line, p, n);
			line[n] = '\0';
			for (tok = strtok_r(line, " ", &save); tok != NULL && nw < 40;
			    tok = strtok_r(NULL, " ", &save))
				w[nw++] = tok;
			if (nw > 1 && strcmp(w[0], "#") == 0) {
				for (size_t i = 1; i < nw; i++) {
					if (strcmp(w[i], "srv_addr") == 0)
						addr_col = (int)i - 1;
					if (strcmp(w[i], "srv_port") == 0)
						port_col = (int)i - 1;
				}
			} else if (nw > (size_t)port_col && nw > (size_t)addr_col) {
				const char *a = w[addr_col], *pt = w[port_col];

				if (o < listlen)
					o += (size_t)snprintf(list + o, listlen - o, "%s%s:%s",
					    o > 0 ? ", " : "", a, pt);
				if (strcmp(pt, port) == 0 && (any_host || strcmp(a, host) == 0 ||
				    /* a name in spoa-listen: HAProxy shows what it resolved */
				    strspn(host, "0123456789.:abcdefABCDEF") != strlen(host)))
					found = true;
			}
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (list[0] == '\0')
		snprintf(list, listlen, "none");
	return found;
}

/* The SPOE side of t's HAProxy from its own files: false when there is
 * nothing more to ask (failure or nothing to check). */
static bool
spoe_files(struct krt *t, long pid)
{
	struct krun *r = t->run;
	char err[HAPCONF_ERR_MAX];
	const char *path = t->addr;
	size_t acme = 0;

	if (strncmp(path, "master@", 7) == 0)
		path += 7;
	if (strncmp(path, "unix@", 5) == 0 || strncmp(path, "unix:", 5) == 0)
		path += 5;
	else if (path[0] != '/') {
		add(r, CHECKS_WARN, "HAProxy %s: SPOE config not checked (its files are found "
		    "through a unix stats socket only)", t->addr);
		return false;
	}
	if (hapconf_read_pid(&t->hc, pid, err, sizeof err) < 0) {
		add(r, CHECKS_WARN, "HAProxy %s: SPOE config not checked: %s", t->addr, err);
		return false;
	}
	if (!hapconf_has_socket(&t->hc, path)) {
		add(r, CHECKS_WARN, "HAProxy %s: SPOE config not checked: process %ld's files "
		    "declare no `stats socket %s` (another PID namespace?)%s%s", t->addr, pid,
		    path, t->hc.warn[0] ? "; " : "", t->hc.warn);
		return false;
	}
	if (t->hc.warn[0] != '\0')
		add(r, CHECKS_WARN, "HAProxy %s: part of its config not read: %s", t->addr,
		    t->hc.warn);
	for (size_t i = 0; i < t->hc.nagents; i++) {
		const struct hapconf_agent *a = &t->hc.agents[i];

		if (!a->acme)
			continue;
		acme++;
		if (!a->set_on_error)
			add(r, CHECKS_FAIL, "%s:%d: spoe-agent %s has no `option set-on-error`: add "
			    "`option set-on-error err` (and HAProxy's 503 rule on txn.acme.err, as in "
			    "haproxy-conf/), so a dead agent fails the challenge fast instead of "
			    "passing it to the application", a->file, a->line, a->name);
		else
			add(r, CHECKS_OK, "%s:%d: spoe-agent %s: option set-on-error", a->file,
			    a->line, a->name);
		if (!a->timeout_processing)
			add(r, CHECKS_WARN, "%s:%d: spoe-agent %s has no `timeout processing`: a "
			    "slow agent holds challenge requests (set 500ms)", a->file, a->line,
			    a->name);
		if (a->backend == NULL)
			add(r, CHECKS_FAIL, "%s:%d: spoe-agent %s has no `use-backend`: add the "
			    "backend of hacme-spoa", a->file, a->line, a->name);
	}
	if (acme == 0) {
		add(r, CHECKS_FAIL, "HAProxy %s: no SPOE agent of its config sends the message "
		    "%s (%zu `filter spoe` line%s): http-01 challenges would not reach hacme-spoa; "
		    "add the SPOE filter and spoe-acme.conf of haproxy-conf/", t->addr,
		    HAPCONF_MESSAGE, t->hc.nfilters, t->hc.nfilters == 1 ? "" : "s");
		return false;
	}
	t->agent = 0;
	return true;
}

/* The next hacme agent with a backend to ask about, from t->agent on. */
static const struct hapconf_agent *
next_backend(struct krt *t)
{
	for (; t->agent < t->hc.nagents; t->agent++)
		if (t->hc.agents[t->agent].acme && t->hc.agents[t->agent].backend != NULL)
			return &t->hc.agents[t->agent];
	return NULL;
}

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
		t->step = ST_INFO;
		rt_step(t);
		return;
	case ST_INFO: {
		const char *pid = NULL;
		size_t at;

		for (at = 0; at + 5 <= len; at++)
			if ((at == 0 || reply[at - 1] == '\n') && strncmp(reply + at, "Pid: ", 5) == 0) {
				pid = reply + at + 5;
				break;
			}
		if (pid == NULL) {
			add(r, CHECKS_WARN, "HAProxy %s: SPOE config not checked: `show info` "
			    "gave no Pid", t->addr);
		} else if (spoe_files(t, strtol(pid, NULL, 10))) {
			t->step = ST_SERVERS;
			rt_step(t);
			return;
		}
		rt_done(t);
		return;
	}
	case ST_SERVERS: {
		const struct hapconf_agent *a = &t->hc.agents[t->agent];
		char list[512];

		if (strncmp(reply, "Can't find backend", 18) == 0) {
			add(r, CHECKS_FAIL, "%s:%d: spoe-agent %s uses backend %s, which HAProxy %s "
			    "does not have: name the backend of hacme-spoa in `use-backend`",
			    a->file, a->line, a->name, a->backend, t->addr);
		} else if (r->spoa_listen == NULL) {
			add(r, CHECKS_OK, "HAProxy %s: backend %s of spoe-agent %s (external agents: "
			    "their SPOP address is not compared)", t->addr, a->backend, a->name);
		} else if (servers_reach(reply, len, r->spoa_listen, list, sizeof list)) {
			add(r, CHECKS_OK, "HAProxy %s: backend %s of spoe-agent %s reaches spoa-listen "
			    "%s", t->addr, a->backend, a->name, r->spoa_listen);
		} else {
			add(r, CHECKS_FAIL, "%s:%d: spoe-agent %s sends challenges to backend %s, "
			    "whose servers are %s (HAProxy %s), not hacme-spoa's spoa-listen %s: point "
			    "its server there, or set `spoa-listen` to its address", a->file, a->line,
			    a->name, a->backend, list, t->addr, r->spoa_listen);
		}
		t->agent++;
		rt_step(t);
		return;
	}
	}
	rt_done(t);
}

static void
rt_step(struct krt *t)
{
	const char *cmd = NULL;

	char buf[512];

	if (t->step == ST_CRTLIST && t->run->crt_list == NULL)
		t->step = ST_INFO;
	if (t->step == ST_INFO && !t->run->http01)
		t->step = ST_DONE;	/* no name goes through the agents */
	switch (t->step) {
	case ST_LEVEL:
		cmd = "show cli level";
		break;
	case ST_CRTLIST:
		cmd = "show ssl crt-list";
		break;
	case ST_INFO:
		cmd = "show info";
		break;
	case ST_SERVERS: {
		const struct hapconf_agent *a = next_backend(t);

		if (a == NULL) {
			rt_done(t);
			return;
		}
		if (strspn(a->backend, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789._:-") != strlen(a->backend)) {
			add(t->run, CHECKS_WARN, "%s:%d: backend '%.64s': not asked about (a name "
			    "HAProxy would not take)", a->file, a->line, a->backend);
			t->agent++;
			rt_step(t);
			return;
		}
		snprintf(buf, sizeof buf, "show servers state %s", a->backend);
		cmd = buf;
		break;
	}
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
	for (size_t i = 0; i < cfg->ncerts && !r->http01; i++)
		for (size_t j = 0; j < cfg->certs[i].ndomains; j++)
			r->http01 = r->http01 ||
			    config_cert_challenge(&cfg->certs[i], j) == CHALL_HTTP01;
	if (cfg->ncerts == 0)
		r->http01 = true;	/* names on the command line: http-01 */
	if (cfg->nagents == 0 && cfg->spoa_listen != NULL &&
	    (r->spoa_listen = strdup(cfg->spoa_listen)) == NULL) {
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
