/* hapconf.c - a running HAProxy's stats sockets and SPOE agents, from its
 * own files. See hapconf.h. Only what hacme checks is parsed: every other
 * line is skipped, so a keyword this reader does not know costs nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme/hapconf.h"

#define HC_FILE_MAX (4u << 20)	/* bytes of one file */
#define HC_WORDS_MAX 64
#define HC_LINE_MAX 4096
#define HC_FILES_MAX 256	/* -f arguments and files of -f DIR */

struct env {
	char **kv;		/* "K=V" */
	size_t n;
};

struct filter {
	char *engine;		/* NULL: the whole file */
	char *file;
};

struct spoe_sec {
	int kind;		/* 1 agent, 2 group */
	char *scope;		/* NULL: none */
	char *name;
	int line;
	char **msgs, **groups;
	size_t nmsgs, ngroups;
	bool set_on_error, timeout_processing;
	char *backend;
};

/* one SPOE file being read */
struct spoe_rd {
	struct spoe_sec *v;
	size_t n;
	char *scope;
	bool in_sec;
};

struct rd {
	struct hapconf *h;
	bool in_global;		/* haproxy.cfg: in the global section */
	struct spoe_rd sp;
	struct env env;
	const char *cwd;
	struct filter *filters;
	size_t nfilters;
	bool oom;
};

static void __attribute__((format(printf, 2, 3)))
note(struct rd *r, const char *fmt, ...)
{
	va_list ap;

	if (r->h->warn[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(r->h->warn, sizeof r->h->warn, fmt, ap);
	va_end(ap);
}

static int
read_all(const char *path, char **out, size_t *len)
{
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || buf == NULL) {
		int e = errno;
		free(buf);
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	for (;;) {
		ssize_t got;

		if (n == cap) {
			char *q;
			if (cap >= HC_FILE_MAX || (q = realloc(buf, 2 * cap + 1)) == NULL) {
				free(buf);
				close(fd);
				errno = cap >= HC_FILE_MAX ? EFBIG : ENOMEM;
				return -1;
			}
			buf = q;
			cap *= 2;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* ---- environment ---- */

static const char *
env_get(const struct env *e, const char *k, size_t klen)
{
	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->kv[i], k, klen) == 0 && e->kv[i][klen] == '=')
			return e->kv[i] + klen + 1;
	return NULL;
}

static void
env_unset(struct env *e, const char *k)
{
	size_t klen = strlen(k);

	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->kv[i], k, klen) == 0 && e->kv[i][klen] == '=') {
			free(e->kv[i]);
			e->kv[i] = e->kv[--e->n];
			return;
		}
}

static void
env_set(struct rd *r, const char *k, const char *v, bool keep)
{
	char *kv, **q;

	if (env_get(&r->env, k, strlen(k)) != NULL) {
		if (keep)
			return;
		env_unset(&r->env, k);
	}
	if (asprintf(&kv, "%s=%s", k, v) < 0) {
		r->oom = true;
		return;
	}
	if ((q = realloc(r->env.kv, (r->env.n + 1) * sizeof(*q))) == NULL) {
		free(kv);
		r->oom = true;
		return;
	}
	r->env.kv = q;
	q[r->env.n++] = kv;
}

static void
env_free(struct env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->kv[i]);
	free(e->kv);
	e->kv = NULL;
	e->n = 0;
}

/* ---- lines ---- */

/* HAProxy's word rules: blanks split, '#' starts a comment, "..." keeps
 * blanks and expands $VAR / ${VAR}, '...' is literal, \ escapes. Words go
 * into buf (HC_LINE_MAX * 2). False when a variable is unknown or the line
 * does not fit (the line is then skipped). */
static bool
split(struct rd *r, const char *file, int lineno, const char *s, size_t len, char *buf,
    char **w, size_t *nw)
{
	size_t i = 0, o = 0, cap = HC_LINE_MAX * 2;

	*nw = 0;
	while (i < len) {
		char q = 0;

		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == len || s[i] == '#')
			break;
		if (*nw == HC_WORDS_MAX)
			return false;
		w[(*nw)++] = buf + o;
		while (i < len && (q != 0 || (s[i] != ' ' && s[i] != '\t' && s[i] != '#'))) {
			char ch = s[i];

			if (ch == '\\' && q != '\'' && i + 1 < len) {
				ch = s[i + 1];
				i += 2;
			} else if ((ch == '"' || ch == '\'') && (q == 0 || q == ch)) {
				q = q == 0 ? ch : 0;
				i++;
				continue;
			} else if (ch == '$' && q != '\'') {
				size_t st = i + 1, end;
				bool brace = st < len && s[st] == '{';
				const char *v;

				if (brace)
					st++;
				for (end = st; end < len && (s[end] == '_' ||
				    (s[end] >= 'A' && s[end] <= 'Z') || (s[end] >= 'a' && s[end] <= 'z') ||
				    (s[end] >= '0' && s[end] <= '9')); end++)
					;
				if (end == st || (brace && (end >= len || s[end] != '}'))) {
					i++;
					if (o + 1 >= cap)
						return false;
					buf[o++] = '$';
					continue;
				}
				if ((v = env_get(&r->env, s + st, end - st)) == NULL) {
					note(r, "%s:%d: '%.*s' is not set in HAProxy's environment as "
					    "hacme can see it", file, lineno, (int)(end - st), s + st);
					return false;
				}
				if (o + strlen(v) + 1 >= cap)
					return false;
				memcpy(buf + o, v, strlen(v));
				o += strlen(v);
				i = end + (brace ? 1 : 0);
				continue;
			} else {
				i++;
			}
			if (o + 1 >= cap)
				return false;
			buf[o++] = ch;
		}
		if (o + 1 >= cap)
			return false;
		buf[o++] = '\0';
	}
	return true;
}

typedef void line_fn(struct rd *r, const char *file, int lineno, char **w, size_t nw);

static void
each_line(struct rd *r, const char *file, const char *text, size_t len, line_fn *fn)
{
	char buf[HC_LINE_MAX * 2];
	char *w[HC_WORDS_MAX];
	const char *p = text, *end = text + len;
	int lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		size_t nw;

		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n < HC_LINE_MAX && split(r, file, lineno, p, n, buf, w, &nw) && nw > 0)
			fn(r, file, lineno, w, nw);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

/* ---- haproxy.cfg ---- */

static const char *const sections[] = {
	"global", "defaults", "frontend", "backend", "listen", "peers", "resolvers",
	"userlist", "program", "http-errors", "ring", "mailers", "cache", "fcgi-app",
	"crt-store", "traces", "log-forward", "dynamic-update", NULL,
};

static char *
path_at(struct rd *r, const char *p)
{
	char *out;

	if (p[0] == '/' || r->cwd == NULL)
		out = strdup(p);
	else if (asprintf(&out, "%s/%s", r->cwd, p) < 0)
		out = NULL;
	if (out == NULL)
		r->oom = true;
	return out;
}

static void
strv_add(struct rd *r, char ***v, size_t *n, const char *s)
{
	char **q, *d = strdup(s);

	if (d == NULL || (q = realloc(*v, (*n + 1) * sizeof(*q))) == NULL) {
		free(d);
		r->oom = true;
		return;
	}
	*v = q;
	q[(*n)++] = d;
}

static void
cfg_line(struct rd *r, const char *file, int lineno, char **w, size_t nw)
{
	struct hapconf *h = r->h;

	(void)file;
	(void)lineno;
	for (size_t i = 0; sections[i] != NULL; i++)
		if (strcmp(w[0], sections[i]) == 0) {
			r->in_global = i == 0;
			return;
		}
	if (r->in_global) {
		if ((strcmp(w[0], "setenv") == 0 || strcmp(w[0], "presetenv") == 0) && nw >= 3)
			env_set(r, w[1], w[2], w[0][0] == 'p');
		else if (strcmp(w[0], "unsetenv") == 0)
			for (size_t i = 1; i < nw; i++)
				env_unset(&r->env, w[i]);
		else if (strcmp(w[0], "resetenv") == 0)
			for (size_t i = 0; i < r->env.n;) {
				bool keep = false;
				for (size_t j = 1; j < nw; j++)
					keep = keep || (strncmp(r->env.kv[i], w[j], strlen(w[j])) == 0 &&
					    r->env.kv[i][strlen(w[j])] == '=');
				if (keep) {
					i++;
				} else {
					free(r->env.kv[i]);
					r->env.kv[i] = r->env.kv[--r->env.n];
				}
			}
		else if (strcmp(w[0], "stats") == 0 && nw >= 3 && strcmp(w[1], "socket") == 0)
			strv_add(r, &h->sockets, &h->nsockets, w[2]);
		return;
	}
	if (strcmp(w[0], "filter") == 0 && nw >= 2 && strcmp(w[1], "spoe") == 0) {
		struct filter f = { 0 }, *q;

		for (size_t i = 2; i + 1 < nw; i++) {
			if (strcmp(w[i], "engine") == 0) {
				free(f.engine);
				f.engine = strdup(w[++i]);
			} else if (strcmp(w[i], "config") == 0) {
				free(f.file);
				f.file = path_at(r, w[++i]);
			}
		}
		h->nfilters++;
		if (f.file == NULL || (q = realloc(r->filters, (r->nfilters + 1) * sizeof(*q))) == NULL) {
			if (f.file != NULL)
				r->oom = true;
			free(f.engine);
			free(f.file);
			return;
		}
		r->filters = q;
		q[r->nfilters++] = f;
	}
}

/* ---- SPOE files ---- */

static void
spoe_line(struct rd *r, const char *file, int lineno, char **w, size_t nw)
{
	struct spoe_sec *s, *q;

	(void)file;
	if (w[0][0] == '[') {
		size_t n = strlen(w[0]);
		free(r->sp.scope);
		r->sp.scope = n > 2 && w[0][n - 1] == ']' ? strndup(w[0] + 1, n - 2) : NULL;
		r->sp.in_sec = false;
		return;
	}
	if (strcmp(w[0], "spoe-agent") == 0 || strcmp(w[0], "spoe-group") == 0 ||
	    strcmp(w[0], "spoe-message") == 0) {
		r->sp.in_sec = false;
		if (w[0][5] == 'm' || nw < 2)
			return;
		if ((q = realloc(r->sp.v, (r->sp.n + 1) * sizeof(*q))) == NULL) {
			r->oom = true;
			return;
		}
		r->sp.v = q;
		s = &r->sp.v[r->sp.n++];
		memset(s, 0, sizeof(*s));
		s->kind = w[0][5] == 'a' ? 1 : 2;
		s->name = strdup(w[1]);
		s->scope = r->sp.scope != NULL ? strdup(r->sp.scope) : NULL;
		s->line = lineno;
		r->sp.in_sec = true;
		return;
	}
	if (!r->sp.in_sec || r->sp.n == 0)
		return;
	s = &r->sp.v[r->sp.n - 1];
	if (strcmp(w[0], "messages") == 0)
		for (size_t i = 1; i < nw; i++)
			strv_add(r, &s->msgs, &s->nmsgs, w[i]);
	else if (strcmp(w[0], "groups") == 0)
		for (size_t i = 1; i < nw; i++)
			strv_add(r, &s->groups, &s->ngroups, w[i]);
	else if (strcmp(w[0], "option") == 0 && nw >= 3 && strcmp(w[1], "set-on-error") == 0)
		s->set_on_error = true;
	else if (strcmp(w[0], "timeout") == 0 && nw >= 3 && strcmp(w[1], "processing") == 0)
		s->timeout_processing = true;
	else if (strcmp(w[0], "use-backend") == 0 && nw >= 2) {
		free(s->backend);
		s->backend = strdup(w[1]);
	}
}

static bool
has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static bool
same_scope(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
spoe_file(struct rd *r, const struct filter *f)
{
	struct hapconf *h = r->h;
	char *text;
	size_t len;

	if (read_all(f->file, &text, &len) < 0) {
		note(r, "SPOE config %s: %s", f->file, strerror(errno));
		return;
	}
	memset(&r->sp, 0, sizeof(r->sp));
	each_line(r, f->file, text, len, spoe_line);
	free(text);
	for (size_t i = 0; i < r->sp.n; i++) {
		struct spoe_sec *a = &r->sp.v[i];
		struct hapconf_agent *q, *x;
		bool acme;

		/* with an engine, only its scope; without, the file has no scope */
		if (a->kind != 1 || (f->engine != NULL && !same_scope(a->scope, f->engine)))
			continue;
		acme = has(a->msgs, a->nmsgs, HAPCONF_MESSAGE);
		for (size_t j = 0; j < r->sp.n && !acme; j++)
			acme = r->sp.v[j].kind == 2 && same_scope(r->sp.v[j].scope, a->scope) &&
			    has(a->groups, a->ngroups, r->sp.v[j].name) &&
			    has(r->sp.v[j].msgs, r->sp.v[j].nmsgs, HAPCONF_MESSAGE);
		if ((q = realloc(h->agents, (h->nagents + 1) * sizeof(*q))) == NULL) {
			r->oom = true;
			break;
		}
		h->agents = q;
		x = &h->agents[h->nagents++];
		memset(x, 0, sizeof(*x));
		x->name = a->name;
		a->name = NULL;
		x->file = strdup(f->file);
		x->line = a->line;
		x->acme = acme;
		x->set_on_error = a->set_on_error;
		x->timeout_processing = a->timeout_processing;
		x->backend = a->backend;
		a->backend = NULL;
	}
	for (size_t i = 0; i < r->sp.n; i++) {
		struct spoe_sec *a = &r->sp.v[i];
		for (size_t j = 0; j < a->nmsgs; j++)
			free(a->msgs[j]);
		for (size_t j = 0; j < a->ngroups; j++)
			free(a->groups[j]);
		free(a->msgs);
		free(a->groups);
		free(a->name);
		free(a->scope);
		free(a->backend);
	}
	free(r->sp.v);
	free(r->sp.scope);
	memset(&r->sp, 0, sizeof(r->sp));
}

/* ---- entry points ---- */

static int
cfg_compare(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int
cfg_only(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 4 && strcmp(d->d_name + n - 4, ".cfg") == 0;
}

static void
cfg_path(struct rd *r, const char *path)
{
	struct stat st;
	char *text;
	size_t len;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		struct dirent **ents;
		int n = scandir(path, &ents, cfg_only, cfg_compare);

		if (n < 0) {
			note(r, "%s: %s", path, strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			char *p;
			if (i < HC_FILES_MAX && asprintf(&p, "%s/%s", path, ents[i]->d_name) >= 0) {
				cfg_path(r, p);
				free(p);
			}
			free(ents[i]);
		}
		free(ents);
		return;
	}
	if (read_all(path, &text, &len) < 0) {
		note(r, "%s: %s", path, strerror(errno));
		return;
	}
	r->in_global = false;
	each_line(r, path, text, len, cfg_line);
	free(text);
}

int
hapconf_read(struct hapconf *h, const char *const *files, size_t nfiles,
    const char *const *env, size_t nenv, const char *cwd, char *err, size_t errlen)
{
	struct rd r = { .h = h, .cwd = cwd };
	int rc = -1;

	memset(h, 0, sizeof(*h));
	for (size_t i = 0; i < nenv; i++) {
		const char *eq = strchr(env[i], '=');
		char k[256];

		if (eq == NULL || (size_t)(eq - env[i]) >= sizeof k)
			continue;
		memcpy(k, env[i], (size_t)(eq - env[i]));
		k[eq - env[i]] = '\0';
		env_set(&r, k, eq + 1, false);
	}
	for (size_t i = 0; i < nfiles && i < HC_FILES_MAX; i++) {
		char *p = path_at(&r, files[i]);
		if (p != NULL)
			cfg_path(&r, p);
		free(p);
	}
	for (size_t i = 0; i < r.nfilters; i++)
		spoe_file(&r, &r.filters[i]);
	if (r.oom)
		snprintf(err, errlen, "out of memory");
	else
		rc = 0;
	for (size_t i = 0; i < r.nfilters; i++) {
		free(r.filters[i].engine);
		free(r.filters[i].file);
	}
	free(r.filters);
	env_free(&r.env);
	return rc;
}

int
hapconf_read_pid(struct hapconf *h, long pid, char *err, size_t errlen)
{
	char path[64], cwd[PATH_MAX], *argv = NULL, *envb = NULL;
	const char *files[HC_FILES_MAX], *env[4096], *master = NULL;
	size_t alen, elen = 0, nf = 0, ne = 0;
	ssize_t n;
	int rc;

	memset(h, 0, sizeof(*h));
	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	if (read_all(path, &argv, &alen) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
	n = readlink(path, cwd, sizeof cwd - 1);
	cwd[n > 0 ? n : 0] = '\0';
	snprintf(path, sizeof path, "/proc/%ld/environ", pid);
	if (read_all(path, &envb, &elen) < 0)
		envb = NULL;
	for (size_t i = 0; envb != NULL && i < elen && ne < sizeof env / sizeof env[0];
	    i += strlen(envb + i) + 1)
		env[ne++] = envb + i;
	{
		bool rest = false;
		size_t i = strlen(argv) + 1;	/* argv[0] */

		while (i < alen && nf < HC_FILES_MAX) {
			const char *a = argv + i;
			i += strlen(a) + 1;
			if (rest) {
				files[nf++] = a;
			} else if (strcmp(a, "--") == 0) {
				rest = true;
			} else if (strcmp(a, "-f") == 0 && i < alen) {
				files[nf++] = argv + i;
				i += strlen(argv + i) + 1;
			} else if (strcmp(a, "-S") == 0 && i < alen) {
				/* the master CLI: "-S PATH[,bind options]" */
				master = argv + i;
				i += strlen(argv + i) + 1;
			}
		}
	}
	if (nf == 0) {
		snprintf(err, errlen, "HAProxy's command line (%s) names no -f file", path);
		free(argv);
		free(envb);
		return -1;
	}
	rc = hapconf_read(h, files, nf, env, ne, cwd[0] != '\0' ? cwd : NULL, err, errlen);
	if (rc == 0 && master != NULL) {
		char **q = realloc(h->sockets, (h->nsockets + 1) * sizeof(*q));
		if (q != NULL) {
			h->sockets = q;
			if ((q[h->nsockets] = strndup(master, strcspn(master, ","))) != NULL)
				h->nsockets++;
		}
	}
	if (envb == NULL && h->warn[0] == '\0')
		snprintf(h->warn, sizeof h->warn, "/proc/%ld/environ: not readable", pid);
	free(argv);
	free(envb);
	return rc;
}

void
hapconf_free(struct hapconf *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->nsockets; i++)
		free(h->sockets[i]);
	free(h->sockets);
	for (size_t i = 0; i < h->nagents; i++) {
		free(h->agents[i].name);
		free(h->agents[i].file);
		free(h->agents[i].backend);
	}
	free(h->agents);
	memset(h, 0, sizeof(*h));
}

bool
hapconf_has_socket(const struct hapconf *h, const char *path)
{
	struct stat want, got;
	bool have = stat(path, &want) == 0;

	for (size_t i = 0; i < h->nsockets; i++) {
		const char *s = h->sockets[i];

		if (strncmp(s, "unix@", 5) == 0)
			s += 5;
		if (strcmp(s, path) == 0)
			return true;
		if (have && s[0] == '/' && stat(s, &got) == 0 && got.st_dev == want.st_dev &&
		    got.st_ino == want.st_ino)
			return true;
	}
	return false;
}
