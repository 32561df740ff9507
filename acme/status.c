/* status.c - `hacme status [--json]`: rows from the config and the store,
 * the renewal plan of each, what every HAProxy serves, then a table or
 * JSON. Reads only: the state dir is not locked (store.h reads a set that a
 * writer is staging as it will be). */
#include "acme/status.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "acme/config.h"
#include "acme/hfiles.h"
#include "acme/sniprobe.h"
#include "acme/proto.h"
#include "acme/runtime.h"
#include "acme/schedule.h"
#include "acme/store.h"
#include "acme/worker.h"
#include "common/atomicfile.h"
#include "common/log.h"

#define ST_SCHED_FILE "schedule.json"	/* hacme run's renewal state */
#define ST_SCHED_MAX (16 * 1024 * 1024)
#define ST_ERR_SHOWN 400	/* bytes of an error in the table */
#define ST_MAX_CONNS 8		/* queries in flight per HAProxy */

/* What one HAProxy serves for one row. */
struct st_dep {
	char serial[RUNTIME_SERIAL_MAX];	/* "" none */
	bool done, ok;
	char *err;			/* malloc'd; NULL when it answered */
};

struct st_row {
	char id[CONFIG_NAME_MAX + 8];	/* NAME or NAME/rsa */
	char *name;
	const char *variant;		/* NULL or "rsa" */
	const struct config_cert *cc;	/* NULL: not in config */
	enum keytype key;		/* the config's; KEYTYPE_NONE when not in it */
	bool have;			/* meta is the stored certificate's */
	struct store_meta meta;
	char *file;			/* the HAProxy-side file */
	time_t next;			/* 0: none */
	bool estimated;			/* next is the rule's, not a chosen moment */
	char reason[64];
	char *error;			/* malloc'd, one line; NULL: none */
	struct st_dep *dep;		/* one per runtime-api */
};

struct st_query {
	struct status *s;
	size_t row, hap;
};

struct status {
	struct config *cfg;
	struct store st;
	char *cert_dir;
	time_t now;
	double timeout;
	struct st_row *rows;
	size_t n, cap;
	/* the HAProxies */
	struct ev_loop *loop;
	struct runtime **rts;		/* NULL once failed */
	struct st_query *q;		/* n x nrts */
	size_t outstanding;
	ev_timer deadline;
};

char *
status_fmt_left(long long secs, char *buf, size_t len)
{
	if (secs <= 0)
		snprintf(buf, len, "expired");
	else if (secs >= 86400)
		snprintf(buf, len, "%lldd%lldh", secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		snprintf(buf, len, "%lldh%lldm", secs / 3600, secs % 3600 / 60);
	else if (secs >= 60)
		snprintf(buf, len, "%lldm", secs / 60);
	else
		snprintf(buf, len, "%llds", secs);
	return buf;
}

/* ---- rows ------------------------------------------------------------- */

static struct st_row *
row_add(struct status *s, const char *name, const char *variant,
    const struct config_cert *cc, enum keytype key)
{
	struct st_row *r;

	if (s->n == s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 16;
		struct st_row *nr = realloc(s->rows, ncap * sizeof(*nr));
		if (nr == NULL)
			return NULL;
		s->rows = nr;
		s->cap = ncap;
	}
	r = &s->rows[s->n];
	memset(r, 0, sizeof(*r));
	r->variant = variant;
	r->cc = cc;
	r->key = key;
	snprintf(r->id, sizeof(r->id), "%s%s%s", name, variant ? "/" : "", variant ? variant : "");
	if ((r->name = strdup(name)) == NULL ||
	    asprintf(&r->file, "%s/%s%s%s.pem", s->cert_dir, name, variant ? "." : "",
	    variant ? variant : "") < 0) {
		free(r->name);
		return NULL;
	}
	s->n++;
	return r;
}

static void
row_fini(struct st_row *r, size_t ndep)
{
	free(r->name);
	free(r->file);
	free(r->error);
	store_meta_free(&r->meta);
	for (size_t i = 0; r->dep != NULL && i < ndep; i++)
		free(r->dep[i].err);
	free(r->dep);
}

static void
row_drop_last(struct status *s)
{
	row_fini(&s->rows[--s->n], 0);
}

/* Reads the stored certificate. False when it is not stored (ENOENT); a
 * store that cannot be read is a row with its error. */
static bool
row_load(struct status *s, struct st_row *r)
{
	struct store_cert sc;
	char err[STORE_ERR_MAX];

	if (store_cert_load(&s->st, r->name, r->variant, &sc, err, sizeof(err)) < 0) {
		if (errno == ENOENT)
			return false;
		free(r->error);
		r->error = strdup(err);
		return true;
	}
	r->meta = sc.meta;	/* the key and files are not kept */
	memset(&sc.meta, 0, sizeof(sc.meta));
	store_cert_free(&sc);
	r->have = true;
	return true;
}

/* The config's certificates, then the stored ones it does not name (an
 * RSA half its cert section no longer asks for included). -1: the store
 * cannot be listed (logged). */
static int
collect(struct status *s)
{
	const struct config *cfg = s->cfg;
	char err[STORE_ERR_MAX], **names = NULL;
	int n = 0, rc = -1;
	struct st_row *r;

	for (size_t i = 0; i < cfg->ncerts; i++) {
		const struct config_cert *cc = &cfg->certs[i];
		bool rsa = false;
		for (size_t k = 0; k < cc->nkeys; k++) {
			const char *v = worker_variant(cc, (int)k);
			if ((r = row_add(s, cc->name, v, cc, cc->keys[k])) == NULL)
				goto nomem;
			row_load(s, r);
			rsa |= v != NULL;
		}
		if (!rsa) {
			if ((r = row_add(s, cc->name, "rsa", NULL, KEYTYPE_NONE)) == NULL)
				goto nomem;
			if (!row_load(s, r))
				row_drop_last(s);
		}
	}
	if ((n = store_cert_list(&s->st, &names, err, sizeof(err))) < 0) {
		log_err("%s", err);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		size_t first = s->n;
		if (config_find_cert(cfg, names[i]) != NULL)
			continue;
		for (int v = 0; v < 2; v++) {
			if ((r = row_add(s, names[i], v ? "rsa" : NULL, NULL, KEYTYPE_NONE)) == NULL)
				goto nomem;
			if (!row_load(s, r))
				row_drop_last(s);
		}
		/* a directory without a certificate still shows */
		if (s->n == first && row_add(s, names[i], NULL, NULL, KEYTYPE_NONE) == NULL)
			goto nomem;
	}
	rc = 0;
	goto out;
nomem:
	log_err("status: out of memory");
out:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* ---- the renewal plan ------------------------------------------------- */

/* Renewal state from meta.json, or from hacme run's schedule.json. */
struct st_plan {
	time_t renew_at, ari_start, ari_end, next_attempt;
	const char *reason, *last_error;
};

static cJSON *
sched_load(const struct status *s)
{
	char *path = NULL, *text = NULL;
	size_t len;
	cJSON *root = NULL;

	if (asprintf(&path, "%s/" ST_SCHED_FILE, s->cfg->state_dir) < 0)
		return NULL;
	if (file_read(path, ST_SCHED_MAX, &text, &len) == 0 &&
	    (root = cJSON_ParseWithLength(text, len)) == NULL)
		log_warn("%s: not JSON: ignored", path);
	free(path);
	free(text);
	return root;
}

static void
sched_time(const cJSON *o, const char *k, time_t *t)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	time_t x;

	if (cJSON_IsString(v) && proto_rfc3339_parse(v->valuestring, strlen(v->valuestring), &x) == 0)
		*t = x;
}

static const char *
sched_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) && v->valuestring[0] != '\0' ? v->valuestring : NULL;
}

static void
plan_get(const struct st_row *r, const cJSON *sched, struct st_plan *p)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(sched, r->id);
	const char *serial;

	p->renew_at = r->meta.renew_at;
	p->reason = r->meta.renew_reason;
	p->ari_start = r->meta.ari_window_start;
	p->ari_end = r->meta.ari_window_end;
	p->next_attempt = r->meta.next_attempt;
	p->last_error = r->meta.last_error;
	if (!cJSON_IsObject(o))
		return;
	/* a moment chosen for another certificate is not this one's */
	serial = sched_str(o, "serial");
	if (serial != NULL && r->meta.serial != NULL && strcmp(serial, r->meta.serial) == 0) {
		sched_time(o, "renew_at", &p->renew_at);
		if (sched_str(o, "renew_reason") != NULL)
			p->reason = sched_str(o, "renew_reason");
		sched_time(o, "ari_window_start", &p->ari_start);
		sched_time(o, "ari_window_end", &p->ari_end);
	}
	p->next_attempt = 0;
	sched_time(o, "next_attempt", &p->next_attempt);
	p->last_error = sched_str(o, "last_error");
}

/* The stored certificate is what the cert section asks for. */
static bool
row_matches(const struct st_row *r)
{
	const struct store_meta *m = &r->meta;

	return m->key_type != NULL && keytype_parse(m->key_type) == r->key &&
	    m->serial != NULL && worker_same_names(m, r->cc);
}

static void
row_plan(struct status *s, struct st_row *r, const cJSON *sched)
{
	struct st_plan p;
	enum schedule_reason why;

	plan_get(r, sched, &p);
	if (p.last_error != NULL && r->error == NULL)
		r->error = strdup(p.last_error);
	if (r->cc == NULL) {
		snprintf(r->reason, sizeof(r->reason), "not in config");
		return;
	}
	if (!r->have) {
		snprintf(r->reason, sizeof(r->reason), "not issued");
		r->next = p.next_attempt > s->now ? p.next_attempt : 0;
		return;
	}
	if (!row_matches(r)) {
		snprintf(r->reason, sizeof(r->reason), "config changed");
		r->next = p.next_attempt > s->now ? p.next_attempt : s->now;
		return;
	}
	if (p.renew_at > 0) {
		r->next = p.renew_at;
		snprintf(r->reason, sizeof(r->reason), "%s", p.reason ? p.reason : "scheduled");
	} else {
		/* rnd 0: the rule's moment without jitter, the ARI window's start */
		struct schedule_cert sc = { r->meta.not_before, r->meta.not_after,
		    p.ari_start, p.ari_end };
		r->next = schedule_renewal(&sc, s->now, 0, &why);
		r->estimated = true;
		snprintf(r->reason, sizeof(r->reason), "%s", schedule_reason_name(why));
	}
	if (p.next_attempt > r->next) {
		r->next = p.next_attempt;
		r->estimated = false;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    schedule_reason_name(SCHEDULE_BACKOFF));
	}
}

/* ---- what each HAProxy serves ----------------------------------------- */

static bool
serial_eq(const char *a, const char *b)
{
	while (*a == '0' && a[1] != '\0')
		a++;
	while (*b == '0' && b[1] != '\0')
		b++;
	return strcasecmp(a, b) == 0;
}

static void
query_done(struct status *s, struct st_dep *d, const char *err)
{
	d->done = true;
	if (err != NULL)
		d->err = strdup(err);
	if (--s->outstanding == 0)
		ev_break(s->loop, EVBREAK_ALL);
}

/* A HAProxy that failed one query is not asked the rest: a dead one would
 * otherwise cost a timeout per certificate. */
static void
hap_fail(struct status *s, size_t h, const char *err)
{
	runtime_free(s->rts[h]);
	s->rts[h] = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (!s->rows[i].dep[h].done)
			query_done(s, &s->rows[i].dep[h], err);
}

static void
on_reply(void *arg, const char *err, const char *reply, size_t len)
{
	struct st_query *q = arg;
	struct status *s = q->s;
	struct st_row *r = &s->rows[q->row];
	struct st_dep *d = &r->dep[q->hap];
	struct runtime_cert c;
	char msg[RUNTIME_ERR_MAX], esc[200];
	const char *nl;

	if (err != NULL) {
		hap_fail(s, q->hap, err);
		return;
	}
	if (!runtime_parse_cert(reply, len, &c)) {
		static const char unknown[] = "Can't display";
		if (len >= sizeof(unknown) - 1 && memcmp(reply, unknown, sizeof(unknown) - 1) == 0) {
			query_done(s, d, NULL);		/* it does not know the file */
			return;
		}
		nl = memchr(reply, '\n', len);
		log_escape(esc, sizeof(esc), reply, nl ? (size_t)(nl - reply) : len);
		snprintf(msg, sizeof(msg), "HAProxy %s: show ssl cert: %s",
		    runtime_name(s->rts[q->hap]), esc);
		query_done(s, d, msg);
		return;
	}
	snprintf(d->serial, sizeof(d->serial), "%s", c.serial);
	d->ok = r->have && r->meta.serial != NULL && serial_eq(c.serial, r->meta.serial) &&
	    strcmp(c.status, "Used") == 0;
	query_done(s, d, NULL);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct status *s = w->data;
	char msg[RUNTIME_ERR_MAX];

	for (size_t h = 0; h < s->cfg->nruntime_apis; h++) {
		if (s->rts[h] == NULL)
			continue;
		snprintf(msg, sizeof(msg), "HAProxy %s: no reply within %.0f s",
		    runtime_name(s->rts[h]), STATUS_DEADLINE);
		hap_fail(s, h, msg);
	}
}

static void
ask(struct status *s)
{
	size_t nh = s->cfg->nruntime_apis;
	struct runtime_opts o = { .timeout = s->timeout, .max_conns = ST_MAX_CONNS };
	char err[RUNTIME_ERR_MAX], cmd[RUNTIME_CMD_MAX + 1];

	if (nh == 0)
		return;
	for (size_t i = 0; i < s->n; i++)
		if ((s->rows[i].dep = calloc(nh, sizeof(struct st_dep))) == NULL)
			goto nomem;
	if ((s->rts = calloc(nh, sizeof(*s->rts))) == NULL ||
	    (s->q = calloc(s->n * nh, sizeof(*s->q))) == NULL)
		goto nomem;
	if ((s->loop = ev_loop_new(EVFLAG_AUTO)) == NULL) {
		log_err("status: no event loop");
		return;
	}
	s->outstanding = s->n * nh;
	for (size_t h = 0; h < nh; h++) {
		if ((s->rts[h] = runtime_new(s->loop, s->cfg->runtime_apis[h], &o, err,
		    sizeof(err))) == NULL) {
			hap_fail(s, h, err);
			continue;
		}
		for (size_t i = 0; i < s->n && s->rts[h] != NULL; i++) {
			struct st_query *q = &s->q[i * nh + h];
			*q = (struct st_query){ s, i, h };
			if ((size_t)snprintf(cmd, sizeof(cmd), "show ssl cert %s",
			    s->rows[i].file) >= sizeof(cmd) ||
			    runtime_cmd(s->rts[h], cmd, NULL, 0, on_reply, q) < 0) {
				snprintf(err, sizeof(err), "HAProxy %s: show ssl cert %s: %s",
				    s->cfg->runtime_apis[h], s->rows[i].file,
				    errno == EINVAL ? "path too long" : strerror(errno));
				query_done(s, &s->rows[i].dep[h], err);
			}
		}
	}
	if (s->outstanding > 0) {
		ev_timer_init(&s->deadline, deadline_cb, STATUS_DEADLINE, 0.);
		s->deadline.data = s;
		ev_timer_start(s->loop, &s->deadline);
		ev_run(s->loop, 0);
		ev_timer_stop(s->loop, &s->deadline);
	}
	return;
nomem:
	log_err("status: out of memory");
}

/* What clients get: with tls-check, a HAProxy counts as serving a row only
 * when a handshake by SNI at every tls-check address shows the stored
 * serial too (`show ssl cert` can say "ours" while another certificate,
 * e.g. from a directory listed first, answers the name). */
static void
sni_check(struct status *s)
{
	size_t nh = s->cfg->nruntime_apis;
	char serial[CRYPTO_SERIAL_MAX], err[RUNTIME_ERR_MAX];

	for (size_t i = 0; i < s->n && nh > 0; i++) {
		struct st_row *r = &s->rows[i];
		const char *sni = NULL;
		bool any = false;
		if (!r->have || r->cc == NULL || r->dep == NULL || r->meta.serial == NULL)
			continue;
		for (size_t h = 0; h < nh; h++)
			any |= r->dep[h].ok;
		for (size_t k = 0; k < r->meta.nnames && sni == NULL; k++)
			if (r->meta.names[k][0] != '*' && strchr(r->meta.names[k], ':') == NULL &&
			    strspn(r->meta.names[k], "0123456789.") != strlen(r->meta.names[k]))
				sni = r->meta.names[k];
		if (!any || sni == NULL)
			continue;
		for (size_t c = 0; c < s->cfg->ntls_checks; c++) {
			const char *why = NULL;
			char msg[RUNTIME_ERR_MAX + 64];
			if (sniprobe(s->cfg->tls_checks[c], sni, r->key, 2.0, serial, err,
			    sizeof(err)) < 0) {
				why = err;
			} else if (!serial_eq(serial, r->meta.serial)) {
				snprintf(msg, sizeof(msg), "tls-check %s serves serial %s for %s, not "
				    "the stored one", s->cfg->tls_checks[c], serial, sni);
				why = msg;
			}
			if (why == NULL)
				continue;
			for (size_t h = 0; h < nh; h++) {
				r->dep[h].ok = false;
				if (r->dep[h].err == NULL)
					r->dep[h].err = strdup(why);
			}
			if (r->error == NULL)
				r->error = strdup(why);
			break;
		}
	}
}

/* ---- output ----------------------------------------------------------- */

static const char *
row_key(const struct st_row *r)
{
	if (r->have && r->meta.key_type != NULL)
		return r->meta.key_type;
	return r->key != KEYTYPE_NONE ? keytype_name(r->key) : NULL;
}

static size_t
row_deployed(const struct st_row *r, size_t nh)
{
	size_t k = 0;

	for (size_t h = 0; h < nh && r->dep != NULL; h++)
		k += r->dep[h].ok;
	return k;
}

static bool
j_str(cJSON *o, const char *k, const char *v)
{
	return (v != NULL ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)) != NULL;
}

static bool
j_time(cJSON *o, const char *k, time_t t)
{
	char buf[32];

	if (t <= 0)
		return cJSON_AddNullToObject(o, k) != NULL;
	fmt_time(t, buf, sizeof(buf));
	return cJSON_AddStringToObject(o, k, buf) != NULL;
}

/* The challenge types of r's names: "dns-01", "dns-01,http-01"; "-" when
 * not in the config. */
static void
row_challenge(const struct st_row *r, char *out, size_t len)
{
	size_t n = 0;

	snprintf(out, len, "-");
	if (r->cc == NULL)
		return;
	for (int t = 0; t < CHALL_COUNT; t++) {
		bool used = false;
		for (size_t i = 0; i < r->cc->ndomains && !used; i++)
			used = config_cert_challenge(r->cc, i) == (enum challenge)t;
		if (used && n < len)
			n += (size_t)snprintf(out + n, len - n, "%s%s", n > 0 ? "," : "",
			    config_challenge_name((enum challenge)t));
	}
}

static bool
j_row(const struct status *s, const struct st_row *r, cJSON *o)
{
	size_t nh = s->cfg->nruntime_apis;
	char *const *names = r->have && r->meta.nnames ? r->meta.names :
	    r->cc ? r->cc->domains : NULL;
	size_t nnames = r->have && r->meta.nnames ? r->meta.nnames : r->cc ? r->cc->ndomains : 0;
	cJSON *a, *d;
	char chall[64];
	bool ok;

	row_challenge(r, chall, sizeof chall);
	ok = j_str(o, "name", r->id) && (a = cJSON_AddArrayToObject(o, "domains")) != NULL;
	for (size_t i = 0; ok && i < nnames; i++)
		ok = cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
	ok = ok && j_str(o, "key", row_key(r)) &&
	    j_str(o, "challenge", r->cc != NULL ? chall : NULL) &&
	    j_str(o, "serial", r->have ? r->meta.serial : NULL) &&
	    j_str(o, "issuer", r->have ? r->meta.issuer : NULL) &&
	    j_time(o, "not_after", r->have ? r->meta.not_after : 0) &&
	    j_time(o, "next_renewal", r->next) &&
	    j_str(o, "renewal_reason", r->reason[0] ? r->reason : NULL) &&
	    j_str(o, "last_error", r->error) &&
	    (a = cJSON_AddArrayToObject(o, "deployed")) != NULL;
	for (size_t h = 0; ok && h < nh; h++) {
		const struct st_dep *dp = r->dep ? &r->dep[h] : NULL;
		ok = (d = cJSON_CreateObject()) != NULL && cJSON_AddItemToArray(a, d) &&
		    j_str(d, "runtime_api", s->cfg->runtime_apis[h]) &&
		    j_str(d, "serial", dp && dp->serial[0] ? dp->serial : NULL) &&
		    cJSON_AddBoolToObject(d, "ok", dp && dp->ok) != NULL &&
		    j_str(d, "error", dp ? dp->err : "not asked");
	}
	return ok && cJSON_AddBoolToObject(o, "in_config", r->cc != NULL) != NULL &&
	    cJSON_AddBoolToObject(o, "from_cli", r->cc != NULL && r->cc->implicit) != NULL &&
	    cJSON_AddBoolToObject(o, "next_renewal_estimated", r->estimated) != NULL;
}

static int
print_json(const struct status *s, FILE *out)
{
	cJSON *arr = cJSON_CreateArray(), *o;
	char *text = NULL;
	int rc = -1;

	for (size_t i = 0; arr != NULL && i < s->n; i++)
		if ((o = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, o) ||
		    !j_row(s, &s->rows[i], o))
			goto out;
	if (arr == NULL || (text = cJSON_Print(arr)) == NULL)
		goto out;
	fprintf(out, "%s\n", text);
	rc = 0;
out:
	if (rc < 0)
		log_err("status: out of memory");
	cJSON_Delete(arr);
	free(text);
	return rc;
}

enum { C_NAME, C_KEY, C_CHALLENGE, C_NOTAFTER, C_LEFT, C_NEXT, C_REASON, C_DEPLOYED, C_ERROR,
    C_N };

struct st_line {
	const char *cell[C_N];
	char challenge[64];
	char notafter[32], left[STATUS_LEFT_MAX], next[40], deployed[48], error[ST_ERR_SHOWN];
	char reason[96];
};

static void
line_fill(const struct status *s, const struct st_row *r, struct st_line *l)
{
	size_t nh = s->cfg->nruntime_apis;
	const char *key = row_key(r);

	l->cell[C_NAME] = r->id;
	l->cell[C_KEY] = key ? key : "-";
	row_challenge(r, l->challenge, sizeof(l->challenge));
	l->cell[C_CHALLENGE] = l->challenge;
	snprintf(l->notafter, sizeof(l->notafter), "-");
	snprintf(l->left, sizeof(l->left), "-");
	if (r->have && r->meta.not_after > 0) {
		fmt_time(r->meta.not_after, l->notafter, sizeof(l->notafter));
		status_fmt_left((long long)r->meta.not_after - (long long)s->now, l->left,
		    sizeof(l->left));
	}
	if (r->next == 0)
		snprintf(l->next, sizeof(l->next), "-");
	else if (r->next <= s->now)
		snprintf(l->next, sizeof(l->next), "now");
	else {
		/* "~": the rule's moment, not one hacme run chose */
		l->next[0] = '~';
		fmt_time(r->next, l->next + (r->estimated ? 1 : 0), sizeof(l->next) - 1);
	}
	if (nh == 0)
		snprintf(l->deployed, sizeof(l->deployed), "-");
	else
		snprintf(l->deployed, sizeof(l->deployed), "%zu/%zu", row_deployed(r, nh), nh);
	if (r->error != NULL)
		log_escape(l->error, sizeof(l->error), r->error, strlen(r->error));
	else
		snprintf(l->error, sizeof(l->error), "-");
	l->cell[C_NOTAFTER] = l->notafter;
	l->cell[C_LEFT] = l->left;
	l->cell[C_NEXT] = l->next;
	l->cell[C_REASON] = r->reason[0] ? r->reason : "-";
	if (r->cc != NULL && r->cc->implicit) {	/* kept since `hacme issue NAME` */
		snprintf(l->reason, sizeof(l->reason), "%s (hacme issue)", l->cell[C_REASON]);
		l->cell[C_REASON] = l->reason;
	}
	l->cell[C_DEPLOYED] = l->deployed;
	l->cell[C_ERROR] = l->error;
}

static void
line_print(FILE *out, const char *const cell[C_N], const int width[C_N])
{
	for (int c = 0; c < C_ERROR; c++)
		fprintf(out, "%-*s  ", width[c], cell[c]);
	fprintf(out, "%s\n", cell[C_ERROR]);
}

static int
print_table(const struct status *s, FILE *out)
{
	static const char *const hdr[C_N] = { "NAME", "KEY", "CHALLENGE", "NOTAFTER", "LEFT",
	    "NEXT", "REASON", "DEPLOYED", "ERROR" };
	struct st_line *l = calloc(s->n ? s->n : 1, sizeof(*l));
	int width[C_N];

	if (l == NULL) {
		log_err("status: out of memory");
		return -1;
	}
	for (int c = 0; c < C_N; c++)
		width[c] = (int)strlen(hdr[c]);
	for (size_t i = 0; i < s->n; i++) {
		line_fill(s, &s->rows[i], &l[i]);
		for (int c = 0; c < C_N; c++)
			if ((int)strlen(l[i].cell[c]) > width[c])
				width[c] = (int)strlen(l[i].cell[c]);
	}
	line_print(out, hdr, width);
	for (size_t i = 0; i < s->n; i++)
		line_print(out, l[i].cell, width);
	free(l);
	return 0;
}

/* ---- the verb --------------------------------------------------------- */

int
status_report(struct config *cfg, bool json, FILE *out, time_t now, double timeout)
{
	struct status s;
	char err[STORE_ERR_MAX];
	cJSON *sched = NULL;
	int rc = 1;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.now = now;
	s.timeout = timeout;
	s.st.lock_fd = -1;
	if (store_open(&s.st, cfg->state_dir, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	s.cert_dir = hfiles_cert_dir(cfg);
	if (s.cert_dir == NULL) {
		log_err("status: out of memory");
		goto out;
	}
	if (collect(&s) < 0)
		goto out;
	sched = sched_load(&s);
	for (size_t i = 0; i < s.n; i++)
		row_plan(&s, &s.rows[i], sched);
	ask(&s);
	sni_check(&s);
	if ((json ? print_json(&s, out) : print_table(&s, out)) == 0)
		rc = 0;
out:
	for (size_t h = 0; s.rts != NULL && h < cfg->nruntime_apis; h++)
		runtime_free(s.rts[h]);
	free(s.rts);
	free(s.q);
	if (s.loop != NULL)
		ev_loop_destroy(s.loop);
	for (size_t i = 0; i < s.n; i++)
		row_fini(&s.rows[i], cfg->nruntime_apis);
	free(s.rows);
	free(s.cert_dir);
	cJSON_Delete(sched);
	store_close(&s.st);
	return rc;
}

int
status_main(struct config *cfg, bool json, FILE *out)
{
	return status_report(cfg, json, out, time(NULL), STATUS_TIMEOUT);
}
