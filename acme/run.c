/* run.c - `hacme run`: the daemon that keeps every certificate of the
 * config valid and served.
 *
 * One libev loop: a timer per certificate (variant) fires at its renewal
 * moment (acme/schedule.h: ARI window first, else the lifetime rule) or
 * when its backoff ends; orders run through the CA clients of the worker,
 * at most `concurrency` at once; a new certificate is stored and deployed
 * (acme/deploy.h). Every 15 s the stored certificates are compared with
 * what each HAProxy serves (a restarted HAProxy gets them again) and with
 * what this process believes (the CLI may have renewed or revoked one).
 * The local agent child is restarted with backoff when it dies; the agents
 * get every pending token again by themselves (acme/agentctl.h).
 *
 * Renewal state that must survive a restart (failures, backoff, the
 * failed-validation budget, the chosen moment, the ARI window) lives in
 * <state-dir>/schedule.json, written atomically on every change. */
#include "acme/run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "acme/acme.h"
#include "acme/agentctl.h"
#include "acme/backend.h"
#include "acme/cluster.h"
#include "acme/solver.h"
#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/deploy.h"
#include "acme/http.h"
#include "acme/proto.h"
#include "acme/schedule.h"
#include "acme/store.h"
#include "acme/validity.h"
#include "acme/worker.h"
#include "acme/metrics.h"
#include "acme/notify.h"
#include "acme/hfiles.h"
#include "acme/serialfmt.h"
#include "acme/cliname.h"
#include "common/addr.h"
#include "common/atomicfile.h"
#include "common/buf.h"
#include "common/log.h"

#define CHECK_INTERVAL 15.0	/* seconds between store + HAProxy checks */
#define CHILD_BACKOFF_MIN 0.5
#define CHILD_BACKOFF_MAX 30.0
#define CHILD_STABLE 60.0	/* a child that lived this long resets the backoff */
#define STOP_GRACE 3.0		/* seconds to flush DELs to external agents */
#define NAMES_RETRY_MAX 5.0	/* seconds between tries of a name that does not resolve */
#define NAMES_LOG_EVERY 60.0	/* and between two messages about it */
#define SCHED_FILE_MAX (16 * 1024 * 1024)

struct run;

struct rcert {
	struct run *r;
	const struct config_cert *cert;
	int ki;
	enum keytype key;
	const char *variant;	/* NULL or "rsa" */
	char id[CONFIG_NAME_MAX + 8];	/* "name" or "name/rsa" */
	struct ca_ctx *ca;
	ev_timer timer;
	bool queued;		/* due, waiting for a slot or the CA */
	struct acme_order *o;
	struct backend_lock *lk;	/* asking the backend for the lock */
	uint64_t fence;		/* > 0: the lock is held (one order per certificate) */
	struct crypto_key *reuse;	/* reuse-key: lent to the order */
	double started;
	/* the stored certificate, as far as it matches the config */
	bool have;
	char serial[CRYPTO_SERIAL_MAX];
	time_t not_before, not_after;
	char ari_id[256];
	/* schedule (persisted) */
	time_t renew_at;
	char reason[64];
	time_t ari_start, ari_end, ari_next_poll;
	bool ari_polling;
	unsigned failures;
	time_t next_attempt;
	char last_error[ACME_ERR_MAX];
	struct schedule_budget budget;
	/* counters for metrics */
	unsigned long orders[ACME_FAIL_LOCAL + 1];	/* by outcome */
};

/* The last deploy result of one certificate variant on one HAProxy. */
struct dstate {
	char name[CONFIG_NAME_MAX + 1];
	char variant[8];
	char api[160];
	char serial[CRYPTO_SERIAL_MAX];
	bool ok;
};

#define AGENT_STATS_MAX 16	/* STATS keys kept per agent */

struct astats {
	char key[AGENT_STATS_MAX][32];
	double value[AGENT_STATS_MAX];
	size_t n;
	bool up;
};

struct run {
	struct worker w;
	struct backend *be;	/* where state is shared (acme/backend.h) */
	struct solver *solver;	/* cluster mode: http-01 through every node */
	bool synced;		/* the backend's state is in the state dir: CAs may start */
	struct config *cfg;
	const char *cfgpath;
	struct rcert *rc;
	size_t nrc;
	struct rcert *kept;	/* SIGHUP: the old rcerts, adopted by rcerts_build */
	size_t nkept;
	struct deploy *deploy;
	int run_lock;
	unsigned running;
	bool stopping, failed;
	ev_signal sighup, sigterm, sigint;
	ev_child childw;
	ev_timer child_restart, check, stop_timer, names;
	double names_retry, names_logged;
	double child_backoff, child_started;
	unsigned long child_restarts;
	uint64_t rnd_state;
	struct metrics *metrics;
	struct dstate *dep;
	size_t ndep;
	struct astats agent_stats[WORKER_AGENTS_MAX];
};

static void rc_plan(struct rcert *c);
static void rc_unlock(struct rcert *c);
static void dispatch(struct run *r);
static void deploy_name(struct run *r, const char *name, bool check);

static uint64_t
rnd64(struct run *r)
{
	/* xorshift64*, seeded from the CSPRNG: spreading renewals needs no more */
	uint64_t x = r->rnd_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->rnd_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* ---- schedule.json ---- */

static char *
sched_path(const struct run *r)
{
	size_t n = strlen(r->cfg->state_dir) + 32;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/schedule.json", r->cfg->state_dir);
	return p;
}

static void
json_time(cJSON *o, const char *k, time_t t)
{
	char buf[32];

	if (t <= 0)
		return;
	fmt_time(t, buf, sizeof buf);
	cJSON_AddStringToObject(o, k, buf);
}

static time_t
json_get_time(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	time_t t = 0;

	if (cJSON_IsString(v) && proto_rfc3339_parse(v->valuestring, strlen(v->valuestring), &t) == 0)
		return t;
	return 0;
}

/* c's member of schedule.json (also what is shared through the backend). */
static cJSON *
sched_entry(const struct rcert *c)
{
	cJSON *o = cJSON_CreateObject(), *b;

	if (o == NULL)
		return NULL;
	json_time(o, "renew_at", c->renew_at);
	if (c->reason[0] != '\0')
		cJSON_AddStringToObject(o, "renew_reason", c->reason);
	if (c->serial[0] != '\0')
		cJSON_AddStringToObject(o, "serial", c->serial);
	json_time(o, "ari_window_start", c->ari_start);
	json_time(o, "ari_window_end", c->ari_end);
	json_time(o, "ari_next_poll", c->ari_next_poll);
	cJSON_AddNumberToObject(o, "failures", c->failures);
	json_time(o, "next_attempt", c->next_attempt);
	if (c->last_error[0] != '\0')
		cJSON_AddStringToObject(o, "last_error", c->last_error);
	if ((b = cJSON_AddArrayToObject(o, "validation_failures")) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	for (size_t k = 0; k < SCHEDULE_FAIL_LIMIT; k++)
		if (c->budget.fail[k] > 0) {
			char buf[32];
			fmt_time(c->budget.fail[k], buf, sizeof buf);
			cJSON_AddItemToArray(b, cJSON_CreateString(buf));
		}
	return o;
}

static void
sched_save(struct run *r)
{
	cJSON *root = cJSON_CreateObject();
	char *text = NULL, *path = sched_path(r);

	if (root == NULL || path == NULL)
		goto out;
	for (size_t i = 0; i < r->nrc; i++) {
		cJSON *o = sched_entry(&r->rc[i]);
		if (o == NULL)
			goto out;
		cJSON_AddItemToObject(root, r->rc[i].id, o);
	}
	if ((text = cJSON_Print(root)) == NULL)
		goto out;
	if (atomic_write(path, text, strlen(text), 0600) < 0)
		log_warn("%s: %s", path, strerror(errno));
out:
	cJSON_Delete(root);
	free(text);
	free(path);
}

/* c's renewal state to the other nodes (the directory backend: nothing). */
static void
sched_share(struct rcert *c)
{
	cJSON *o = sched_entry(c);
	char *text = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

	if (text != NULL)
		c->r->be->ops->sched_put(c->r->be, c->id, text);
	cJSON_Delete(o);
	free(text);
}

/* Takes c's state from its schedule.json member (or a shared one). */
static void
sched_apply(struct rcert *c, const cJSON *o)
{
	const cJSON *v, *e;

	v = cJSON_GetObjectItemCaseSensitive(o, "serial");
	/* a moment chosen for another certificate is chosen again */
	if (cJSON_IsString(v) && strcmp(v->valuestring, c->serial) == 0) {
		c->renew_at = json_get_time(o, "renew_at");
		v = cJSON_GetObjectItemCaseSensitive(o, "renew_reason");
		if (cJSON_IsString(v))
			snprintf(c->reason, sizeof c->reason, "%s", v->valuestring);
		c->ari_start = json_get_time(o, "ari_window_start");
		c->ari_end = json_get_time(o, "ari_window_end");
		c->ari_next_poll = json_get_time(o, "ari_next_poll");
	}
	v = cJSON_GetObjectItemCaseSensitive(o, "failures");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e6)
		c->failures = (unsigned)v->valuedouble;
	c->next_attempt = json_get_time(o, "next_attempt");
	v = cJSON_GetObjectItemCaseSensitive(o, "last_error");
	c->last_error[0] = '\0';
	if (cJSON_IsString(v))
		snprintf(c->last_error, sizeof c->last_error, "%s", v->valuestring);
	v = cJSON_GetObjectItemCaseSensitive(o, "validation_failures");
	memset(&c->budget, 0, sizeof c->budget);
	cJSON_ArrayForEach(e, v) {
		time_t t = 0;
		if (cJSON_IsString(e) &&
		    proto_rfc3339_parse(e->valuestring, strlen(e->valuestring), &t) == 0)
			schedule_budget_add(&c->budget, t);
	}
}

static void
sched_load(struct run *r)
{
	char *path = sched_path(r), *text = NULL;
	size_t len;
	cJSON *root = NULL;

	if (path == NULL || file_read(path, SCHED_FILE_MAX, &text, &len) < 0)
		goto out;
	if ((root = cJSON_ParseWithLength(text, len)) == NULL) {
		log_warn("%s: not JSON: starting with a fresh schedule", path);
		goto out;
	}
	for (size_t i = 0; i < r->nrc; i++) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, r->rc[i].id);
		if (cJSON_IsObject(o))
			sched_apply(&r->rc[i], o);
	}
out:
	cJSON_Delete(root);
	free(text);
	free(path);
}

/* ---- the stored certificate ---- */

/* Reads what the store holds for c. True when it changed since last time. */
static bool
rc_refresh(struct rcert *c)
{
	struct store_cert sc = { 0 };
	char err[STORE_ERR_MAX];
	bool had = c->have;
	char old[CRYPTO_SERIAL_MAX];

	snprintf(old, sizeof old, "%s", c->serial);
	c->have = false;
	if (store_cert_load(&c->r->w.st, c->cert->name, c->variant, &sc, err, sizeof err) == 0 &&
	    sc.meta.key_type != NULL && keytype_parse(sc.meta.key_type) == c->key &&
	    worker_same_names(&sc.meta, c->cert) && sc.meta.serial != NULL) {
		c->have = true;
		snprintf(c->serial, sizeof c->serial, "%s", sc.meta.serial);
		c->not_before = sc.meta.not_before;
		c->not_after = sc.meta.not_after;
		snprintf(c->ari_id, sizeof c->ari_id, "%s", sc.meta.ari_id != NULL ? sc.meta.ari_id : "");
	} else {
		c->serial[0] = '\0';
	}
	store_cert_free(&sc);
	return had != c->have || strcmp(old, c->serial) != 0;
}

/* ---- ARI ---- */

static void
ari_result(void *arg, const char *err, time_t start, time_t end, long retry_after)
{
	struct rcert *c = arg;
	time_t now = time(NULL);

	c->ari_polling = false;
	if (c->r->stopping)
		return;
	c->ari_next_poll = schedule_ari_poll(now, retry_after);
	if (err != NULL) {
		log_info("%s: renewalInfo: %s", c->id, err);
	} else if (start != c->ari_start || end != c->ari_end) {
		char s[32], e[32];
		fmt_time(start, s, sizeof s);
		fmt_time(end, e, sizeof e);
		log_info("%s: ARI window %s .. %s", c->id, s, e);
		c->ari_start = start;
		c->ari_end = end;
		c->renew_at = 0;	/* choose again inside the new window */
	}
	sched_save(c->r);
	rc_plan(c);
}

static bool
ari_offered(const struct rcert *c)
{
	const struct proto_directory *d;

	return c->ca->state == CA_UP && (d = acme_directory(c->ca->acme)) != NULL &&
	    d->renewal_info != NULL && c->ari_id[0] != '\0';
}

/* ---- orders ---- */

/* An order that worked but whose certificate cannot count as renewed:
 * a failure like any other, with backoff, so that it is not ordered again
 * at once. */
static void
rc_fail_after(struct rcert *c, time_t now, const char *why)
{
	enum schedule_reason r;
	char until[32];

	c->failures++;
	snprintf(c->last_error, sizeof c->last_error, "%s", why);
	c->next_attempt = schedule_retry(now, c->failures, -1, &c->budget, rnd64(c->r), &r);
	fmt_time(c->next_attempt, until, sizeof until);
	log_err("%s: %s (%u failures in a row, next attempt %s)", c->id, why, c->failures,
	    until);
}

static void
run_notify(const struct rcert *c, const char *event, const char *serial, time_t not_after,
    const char *error)
{
	struct notify_event ev = { event, c->id, (const char *const *)c->cert->domains,
	    c->cert->ndomains, serial, not_after, error };

	(void)notify(c->r->cfg, &ev);
}

static void
rc_order_done(void *arg, const struct acme_order_result *res)
{
	struct rcert *c = arg;
	struct run *r = c->r;
	struct crypto_cert_info ci = { 0 };
	struct store_meta m;
	char err[STORE_ERR_MAX], cerr[CRYPTO_ERR_MAX], until[32], vwhy[VALIDITY_WHY_MAX];
	time_t now = time(NULL);
	enum schedule_reason why;
	bool due;

	c->o = NULL;
	crypto_key_free(c->reuse);
	c->reuse = NULL;
	r->running--;
	c->orders[res->fail <= ACME_FAIL_LOCAL ? res->fail : ACME_FAIL_LOCAL]++;
	if (res->fail != ACME_OK) {
		c->failures++;
		if (res->fail == ACME_FAIL_VALIDATION)
			schedule_budget_add(&c->budget, now);
		snprintf(c->last_error, sizeof c->last_error, "%s", res->err);
		c->next_attempt = schedule_retry(now, c->failures,
		    schedule_retry_after_cap(res->retry_after, now, c->have ? c->not_after : 0),
		    &c->budget, rnd64(r), &why);
		fmt_time(c->next_attempt, until, sizeof until);
		log_err("%s: order failed (%u in a row), next attempt %s (%s): %s", c->id,
		    c->failures, until, schedule_reason_name(why), res->err);
		run_notify(c, "failed", c->have ? c->serial : NULL, c->have ? c->not_after : 0,
		    res->err);
		goto out;
	}
	if (crypto_cert_info(res->chain_pem, res->chain_len, &ci, cerr, sizeof cerr) < 0) {
		snprintf(c->last_error, sizeof c->last_error, "%s", cerr);
		c->failures++;
		c->next_attempt = schedule_retry(now, c->failures, -1, &c->budget, rnd64(r), &why);
		goto out;
	}
	/* nothing worse than what is stored, nothing the clock calls invalid */
	if (validity_check(ci.not_before, ci.not_after, c->have ? c->not_after : 0, now, false,
	    vwhy, sizeof vwhy) != VALIDITY_OK) {
		rc_fail_after(c, now, vwhy);
		goto out;
	}
	memset(&m, 0, sizeof m);
	m.names = c->cert->domains;
	m.nnames = c->cert->ndomains;
	m.key_type = (char *)keytype_name(c->key);
	m.serial = ci.serial;
	m.not_before = ci.not_before;
	m.not_after = ci.not_after;
	m.issuer = ci.issuer_cn;
	m.ca = c->cert->ca->name;
	m.directory = c->cert->ca->directory;
	m.order_url = (char *)res->order_url;
	m.cert_url = (char *)res->cert_url;
	m.ari_id = ci.ari_id;
	m.issued = now;
	if (store_lock(&r->w.st, true, err, sizeof err) < 0 ||
	    store_cert_save(&r->w.st, c->cert->name, c->variant, &m, res->key_pem, res->key_len,
	    res->chain_pem, res->chain_len, err, sizeof err) < 0) {
		store_unlock(&r->w.st);
		snprintf(c->last_error, sizeof c->last_error, "%s", err);
		log_err("%s: %s", c->id, err);
		c->failures++;
		c->next_attempt = schedule_retry(now, c->failures, -1, &c->budget, rnd64(r), &why);
		goto out;
	}
	store_unlock(&r->w.st);
	r->be->ops->cert_saved(r->be, c->cert->name, c->variant, c->fence);
	{	/* served, but due at once: counted as a failure (backoff grows) */
		struct schedule_cert sc = { ci.not_before, ci.not_after, 0, 0 };
		due = schedule_renewal(&sc, now, 0, NULL) <= now;
	}
	const char *event = c->have ? "renewed" : "issued";
	c->failures = due ? c->failures : 0;
	c->next_attempt = 0;
	c->last_error[0] = '\0';
	c->renew_at = 0;
	c->ari_start = c->ari_end = c->ari_next_poll = 0;
	rc_refresh(c);
	fmt_time(ci.not_after, until, sizeof until);
	log_notice("%s: new certificate, serial %s, valid until %s (%.2f s)", c->id,
	    serial_show(ci.serial), until, now_mono() - c->started);
	run_notify(c, event, ci.serial, ci.not_after, NULL);
	deploy_name(r, c->cert->name, false);
	if (due) {
		validity_due_why(ci.not_before, ci.not_after, now, vwhy, sizeof vwhy);
		rc_fail_after(c, now, vwhy);
	}
out:
	crypto_cert_info_free(&ci);
	sched_save(r);
	sched_share(c);
	rc_unlock(c);
	rc_plan(c);
	dispatch(r);
}

static void
rc_unlock(struct rcert *c)
{
	if (c->fence > 0)
		c->r->be->ops->unlock(c->r->be, c->id, c->fence);
	c->fence = 0;
}

/* The lock is held: order. */
static void
rc_order(struct rcert *c)
{
	struct run *r = c->r;
	struct acme_order_req req = {
		.label = c->id,
		.names = (const char *const *)c->cert->domains,
		.nnames = c->cert->ndomains,
		.key = c->key,
		.profile = c->cert->profile,
		.preferred_chain = c->cert->preferred_chain,
		.solver = r->solver != NULL ? r->solver : r->w.http01,
		.preflight = c->cert->preflight,
		.timeout = r->cfg->order_timeout,
		.checks = r->w.checks,
		.checks_cfg = r->cfg,
	};
	char err[ACME_ERR_MAX], where[CONFIG_NAME_MAX + 64];
	struct solver *sv[CONFIG_DOMAINS_MAX];

	snprintf(where, sizeof where, "%s:%d", r->cfg->file, c->cert->line);
	req.where = where;
	if (c->have && ari_offered(c))
		req.replaces = c->ari_id;
	if (c->cert->reuse_key && c->have) {
		struct store_cert sc = { 0 };
		char serr[STORE_ERR_MAX], cerr[CRYPTO_ERR_MAX];
		if (store_cert_load(&r->w.st, c->cert->name, c->variant, &sc, serr, sizeof serr) == 0)
			c->reuse = crypto_key_from_pem(sc.key_pem, sc.key_len, cerr, sizeof cerr);
		store_cert_free(&sc);
		req.reuse_key = c->reuse;
	}
	log_info("%s: ordering (%s%s%s)", c->id, c->have ? c->reason : "not issued yet",
	    req.replaces != NULL ? ", replaces " : "", req.replaces != NULL ? req.replaces : "");
	c->started = now_mono();
	c->o = NULL;
	if (!hfiles_foreign(r->cfg, c->cert->name, c->variant, err, sizeof err) &&
	    worker_cert_solvers(&r->w, c->cert, sv, err, sizeof err) == 0) {
		/* cluster mode: http-01 goes through every node */
		for (size_t i = 0; r->solver != NULL && i < c->cert->ndomains; i++)
			if (sv[i] == r->w.http01)
				sv[i] = r->solver;
		req.solvers = sv;
		c->o = acme_order(c->ca->acme, &req, rc_order_done, c, err, sizeof err);
	}
	if (c->o == NULL) {
		crypto_key_free(c->reuse);
		c->reuse = NULL;
		snprintf(c->last_error, sizeof c->last_error, "%s", err);
		log_err("%s: %s", c->id, err);
		c->failures++;
		c->next_attempt = schedule_retry(time(NULL), c->failures, -1, &c->budget,
		    rnd64(r), NULL);
		r->running--;
		sched_save(r);
		sched_share(c);
		rc_unlock(c);
		rc_plan(c);
		return;
	}
}

#define LOCK_BUSY_RETRY 5	/* seconds before asking again for a lock held elsewhere */
#define LOCK_STORE_RETRY 5	/* seconds before asking a store that was down */

static void
rc_locked(void *arg, const struct backend_grant *g)
{
	struct rcert *c = arg;
	struct run *r = c->r;
	time_t now = time(NULL);

	c->lk = NULL;
	if (g->err != NULL) {
		r->running--;
		if (g->held_by != NULL) {
			/* another node orders it: its certificate comes through the backend */
			log_info("%s: %s", c->id, g->err);
			c->next_attempt = now + LOCK_BUSY_RETRY;
		} else {
			/* the store is down: the CA was not asked, no failure counted;
			 * said once per outage, not at every retry */
			if (strncmp(c->last_error, "store ", 6) != 0)
				log_err("%s: %s", c->id, g->err);
			snprintf(c->last_error, sizeof c->last_error, "%s", g->err);
			c->next_attempt = now + LOCK_STORE_RETRY;
		}
		rc_plan(c);
		dispatch(r);
		return;
	}
	c->fence = g->fence;
	bool changed = g->pulled && rc_refresh(c);
	if (changed) {
		c->renew_at = 0;
		c->ari_start = c->ari_end = c->ari_next_poll = 0;
		deploy_name(r, c->cert->name, false);
	}
	if (g->sched != NULL) {
		cJSON *o = cJSON_Parse(g->sched);
		if (cJSON_IsObject(o))
			sched_apply(c, o);
		cJSON_Delete(o);
	}
	/* another node renewed it, or failed with it and set a backoff */
	if ((c->have && (changed || c->renew_at > now)) || c->next_attempt > now) {
		log_info("%s: renewed or deferred by another node: not ordering", c->id);
		r->running--;
		rc_unlock(c);
		sched_save(r);
		rc_plan(c);
		dispatch(r);
		return;
	}
	rc_order(c);
}

static void
rc_start(struct rcert *c)
{
	struct run *r = c->r;

	c->queued = false;
	r->running++;
	if ((c->lk = r->be->ops->lock(r->be, c->id, rc_locked, c)) == NULL) {
		r->running--;
		c->next_attempt = time(NULL) + 1;
		rc_plan(c);
	}
}

static void
dispatch(struct run *r)
{
	if (r->stopping)
		return;
	for (size_t i = 0; i < r->nrc && r->running < r->cfg->concurrency; i++) {
		struct rcert *c = &r->rc[i];
		if (c->queued && c->o == NULL && c->lk == NULL && c->ca->state == CA_UP)
			rc_start(c);
	}
}

/* A name of `hacme issue` that `hacme remove` forgot meanwhile: left
 * alone until the next SIGHUP drops it. */
static bool
rc_forgotten(const struct rcert *c)
{
	return c->cert->implicit && !cliname_has(c->r->cfg->state_dir, c->cert->name);
}

static void
rc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct rcert *c = w->data;
	time_t now = time(NULL);

	if (rc_forgotten(c))
		return;
	/* woken for an ARI poll, not for the renewal itself */
	if (c->have && c->renew_at > now && (c->next_attempt == 0 || c->next_attempt <= now) &&
	    ari_offered(c) && c->ari_next_poll <= now) {
		rc_plan(c);
		return;
	}
	c->queued = true;
	dispatch(c->r);
}

/* Sets c's timer to its next renewal (or retry) and polls ARI when due. */
static void
rc_plan(struct rcert *c)
{
	struct run *r = c->r;
	time_t now = time(NULL), due;
	enum schedule_reason why;

	ev_timer_stop(r->w.loop, &c->timer);
	if (r->stopping || c->o != NULL || c->lk != NULL || c->fence > 0)
		return;
	if (!c->have) {
		due = now;
		snprintf(c->reason, sizeof c->reason, "not issued");
	} else {
		if (c->renew_at == 0) {
			struct schedule_cert sc = { c->not_before, c->not_after, c->ari_start,
			    c->ari_end };
			c->renew_at = schedule_renewal(&sc, now, rnd64(r), &why);
			snprintf(c->reason, sizeof c->reason, "%s", schedule_reason_name(why));
			char buf[32];
			fmt_time(c->renew_at, buf, sizeof buf);
			log_info("%s: renewal at %s (%s)", c->id, buf, c->reason);
			sched_save(r);
		}
		due = c->renew_at;
		if (ari_offered(c) && !c->ari_polling && c->ari_next_poll <= now) {
			c->ari_polling = true;
			acme_renewal_info(c->ca->acme, c->ari_id, ari_result, c);
		}
	}
	if (c->next_attempt > due)
		due = c->next_attempt;
	if (c->have && ari_offered(c) && c->ari_next_poll > now && c->ari_next_poll < due)
		due = c->ari_next_poll;	/* wake for the next renewalInfo poll */
	ev_timer_set(&c->timer, due > now ? (double)(due - now) : 0., 0.);
	ev_timer_start(r->w.loop, &c->timer);
}

static void
run_ca_ready(struct worker *w, struct ca_ctx *ca)
{
	struct run *r = w->owner;

	if (ca->state == CA_FAILED) {
		log_err("%s: retrying in 60 s", ca->err);
		for (size_t i = 0; i < r->nrc; i++)
			if (r->rc[i].ca == ca)
				snprintf(r->rc[i].last_error, sizeof r->rc[i].last_error, "%s", ca->err);
		/* a CA that could not start is tried again by the check timer */
		return;
	}
	for (size_t i = 0; i < r->nrc; i++)
		if (r->rc[i].ca == ca)
			rc_plan(&r->rc[i]);
	dispatch(r);
}

/* ---- deploy ---- */

static void
dstate_set(struct run *r, const char *name, const struct deploy_result *d)
{
	const char *v = d->variant != NULL ? d->variant : "";
	struct dstate *s = NULL;

	for (size_t i = 0; i < r->ndep && s == NULL; i++)
		if (strcmp(r->dep[i].name, name) == 0 && strcmp(r->dep[i].variant, v) == 0 &&
		    strcmp(r->dep[i].api, d->runtime_api) == 0)
			s = &r->dep[i];
	if (s == NULL) {
		struct dstate *n = realloc(r->dep, (r->ndep + 1) * sizeof *n);
		if (n == NULL)
			return;
		r->dep = n;
		s = &r->dep[r->ndep++];
		snprintf(s->name, sizeof s->name, "%s", name);
		snprintf(s->variant, sizeof s->variant, "%s", v);
		snprintf(s->api, sizeof s->api, "%s", d->runtime_api);
	}
	s->ok = d->ok;
	snprintf(s->serial, sizeof s->serial, "%s", d->serial);
}

static void
deployed(void *arg, const struct deploy_report *rep)
{
	struct run *r = arg;

	for (size_t i = 0; i < rep->n; i++) {
		const struct deploy_result *d = &rep->results[i];
		dstate_set(r, rep->name, d);
		if (!d->ok)
			log_err("%s%s%s: deploy to %s: %s", rep->name, d->variant ? "/" : "",
			    d->variant ? d->variant : "", d->runtime_api, d->error);
		else if (d->pushed)
			log_notice("%s%s%s: deployed to %s (serial %s)", rep->name,
			    d->variant ? "/" : "", d->variant ? d->variant : "", d->runtime_api,
			    serial_show(d->serial));
	}
	if (rep->warning != NULL)
		log_warn("%s: %s", rep->name, rep->warning);
}

/* Pushes (check: only where missing or stale) every stored variant of
 * name to every HAProxy. */
static void
deploy_name(struct run *r, const char *name, bool check)
{
	struct store_cert sc[DEPLOY_VARIANTS_MAX];
	const struct store_cert *v[DEPLOY_VARIANTS_MAX] = { &sc[0], &sc[1] };
	const char *vn[DEPLOY_VARIANTS_MAX];
	char err[DEPLOY_ERR_MAX];
	size_t n;
	int rc;

	if (r->deploy == NULL)
		return;
	n = worker_load_variants(&r->w, name, sc, vn);
	if (n > 0) {
		rc = check ? deploy_check(r->deploy, name, v, vn, n, deployed, r, err, sizeof err) :
		    deploy_cert(r->deploy, name, v, vn, n, deployed, r, err, sizeof err);
		if (rc < 0 && errno != EBUSY)
			log_err("%s: deploy: %s", name, err);
	}
	for (size_t k = 0; k < n; k++)
		store_cert_free(&sc[k]);
}

static void
removed(void *arg, const struct deploy_report *rep)
{
	struct run *r = arg;
	struct notify_event ev = { .event = "removed", .name = rep->name };

	if (rep->ok) {
		log_notice("%s: taken out of HAProxy", rep->name);
		(void)notify(r->cfg, &ev);
	}
	if (!rep->ok)
		log_err("%s: removing from HAProxy: %s", rep->name, rep->error);
}

/* ---- metrics ---- */

struct astats_req {
	struct run *r;
	size_t i;
};

static void
agent_stats_cb(void *arg, const char *err, const struct agentctl_kv *kv, size_t n)
{
	struct astats_req *q = arg;
	struct astats *s = &q->r->agent_stats[q->i];

	s->up = err == NULL;
	s->n = 0;
	for (size_t i = 0; err == NULL && i < n && s->n < AGENT_STATS_MAX; i++) {
		char *end;
		double v = strtod(kv[i].value, &end);
		if (*end != '\0' || !metrics_name_valid(kv[i].key) || strlen(kv[i].key) >= 32)
			continue;
		snprintf(s->key[s->n], sizeof s->key[s->n], "%s", kv[i].key);
		s->value[s->n++] = v;
	}
	free(q);
}

static void
agent_stats_poll(struct run *r)
{
	for (size_t i = 0; i < r->w.nagent; i++) {
		struct astats_req *q = malloc(sizeof *q);
		if (q == NULL)
			return;
		q->r = r;
		q->i = i;
		if (agentctl_stats(r->w.agent[i], agent_stats_cb, q) < 0)
			free(q);
	}
}

static const char *const outcome[ACME_FAIL_LOCAL + 1] = { "ok", "preflight", "agent",
    "validation", "ca", "network", "local" };

static int
render(void *arg, struct buf *b)
{
	struct run *r = arg;
	int rc = 0;

#define FAM(n, t, h) rc |= metrics_family(b, n, t, h)
#define SAMPLE(n, l, v) rc |= metrics_sample(b, n, l, (double)(v))
	FAM("hacme_certificate_not_after_seconds", "gauge",
	    "notAfter of the stored certificate, Unix time (0: none)");
	for (size_t i = 0; i < r->nrc; i++) {
		const char *l[] = { "name", r->rc[i].id, NULL };
		SAMPLE("hacme_certificate_not_after_seconds", l, r->rc[i].have ? r->rc[i].not_after : 0);
	}
	FAM("hacme_certificate_next_renewal_seconds", "gauge",
	    "when hacme renews it next (renewal moment or retry), Unix time");
	for (size_t i = 0; i < r->nrc; i++) {
		const struct rcert *c = &r->rc[i];
		time_t due = c->have ? c->renew_at : time(NULL);
		if (c->next_attempt > due)
			due = c->next_attempt;
		const char *l[] = { "name", c->id, "reason", c->reason, NULL };
		SAMPLE("hacme_certificate_next_renewal_seconds", l, due);
	}
	FAM("hacme_certificate_failures", "gauge", "consecutive failed orders");
	for (size_t i = 0; i < r->nrc; i++) {
		const char *l[] = { "name", r->rc[i].id, NULL };
		SAMPLE("hacme_certificate_failures", l, r->rc[i].failures);
	}
	FAM("hacme_orders_total", "counter", "orders finished since start, by outcome");
	for (size_t i = 0; i < r->nrc; i++)
		for (size_t k = 0; k <= ACME_FAIL_LOCAL; k++) {
			const char *l[] = { "name", r->rc[i].id, "outcome", outcome[k], NULL };
			SAMPLE("hacme_orders_total", l, r->rc[i].orders[k]);
		}
	FAM("hacme_deploy_ok", "gauge",
	    "1 when the HAProxy serves the stored certificate, as last checked");
	for (size_t i = 0; i < r->ndep; i++) {
		char id[CONFIG_NAME_MAX + 8];
		snprintf(id, sizeof id, "%s%s%s", r->dep[i].name, r->dep[i].variant[0] ? "/" : "",
		    r->dep[i].variant);
		const char *l[] = { "name", id, "runtime_api", r->dep[i].api, "serial",
		    r->dep[i].serial, NULL };
		SAMPLE("hacme_deploy_ok", l, r->dep[i].ok ? 1 : 0);
	}
	FAM("hacme_agent_up", "gauge", "1 when the agent answered its last STATS");
	for (size_t i = 0; i < r->w.nagent; i++) {
		const char *l[] = { "agent", agentctl_agent_name(r->w.agent[i]), NULL };
		SAMPLE("hacme_agent_up", l, r->agent_stats[i].up ? 1 : 0);
	}
	/* the agents' own counters: hits, misses, invalid, protocol_errors... */
	static const char *const keys[] = { "tokens", "connections_total", "connections_active",
	    "notifies", "hits", "misses", "invalid", "protocol_errors" };
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
		char name[64];
		bool counter = strcmp(keys[k], "tokens") != 0 && strcmp(keys[k], "connections_active") != 0;
		snprintf(name, sizeof name, "hacme_agent_%s%s", keys[k], counter &&
		    strstr(keys[k], "_total") == NULL ? "_total" : "");
		FAM(name, counter ? "counter" : "gauge", "from the agent's STATS");
		for (size_t i = 0; i < r->w.nagent; i++)
			for (size_t j = 0; j < r->agent_stats[i].n; j++)
				if (strcmp(r->agent_stats[i].key[j], keys[k]) == 0) {
					const char *l[] = { "agent",
					    agentctl_agent_name(r->w.agent[i]), NULL };
					SAMPLE(name, l, r->agent_stats[i].value[j]);
				}
	}
	FAM("hacme_agent_restarts_total", "counter", "restarts of the local hacme-spoa child");
	SAMPLE("hacme_agent_restarts_total", NULL, r->child_restarts);
#ifdef HACME_REDIS
	struct cluster *cl = backend_cluster(r->be);
	if (cl != NULL) {
		const char *l[] = { "node", cluster_node(cl), NULL };
		FAM("hacme_cluster_store_up", "gauge", "1 while this node is connected to the store");
		SAMPLE("hacme_cluster_store_up", l, cluster_up(cl) ? 1 : 0);
		FAM("hacme_cluster_redis_commands_total", "counter", "commands this node sent");
		SAMPLE("hacme_cluster_redis_commands_total", l, cluster_commands(cl));
		FAM("hacme_cluster_pulls_total", "counter",
		    "certificates this node took from the store");
		SAMPLE("hacme_cluster_pulls_total", l, cluster_pulls(cl));
	}
#endif
#undef FAM
#undef SAMPLE
	return rc < 0 ? -1 : 0;
}

static int
metrics_setup(struct run *r)
{
	struct addr a;
	char err[METRICS_ERR_MAX];

	metrics_free(r->metrics);
	r->metrics = NULL;
	if (r->cfg->metrics_listen == NULL)
		return 0;
	if (addr_parse(&a, r->cfg->metrics_listen, err, sizeof err) < 0 ||
	    (r->metrics = metrics_new(r->w.loop, &a, NULL, render, r, err, sizeof err)) == NULL) {
		log_err("metrics-listen %s: %s", r->cfg->metrics_listen, err);
		return -1;
	}
	log_info("metrics on http://%s/metrics", r->cfg->metrics_listen);
	return 0;
}

/* ---- periodic check ---- */

static void
check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct run *r = w->data;

	for (size_t i = 0; i < r->w.ncas; i++) {
		struct ca_ctx *ca = &r->w.cas[i];
		bool used = false;
		for (size_t k = 0; k < r->nrc && !used; k++)
			used = r->rc[k].ca == ca;
		if (used && ca->state == CA_FAILED) {
			worker_ca_reset(ca);
			worker_ca_start(&r->w, ca, false, NULL, NULL);
		}
	}
	for (size_t i = 0; i < r->nrc; i++) {
		struct rcert *c = &r->rc[i];
		if (c->o != NULL || c->lk != NULL || c->fence > 0 || rc_forgotten(c))
			continue;
		if (rc_refresh(c)) {	/* the CLI renewed, revoked or removed it */
			log_info("%s: the stored certificate changed (serial %s)", c->id,
			    c->have ? c->serial : "none");
			c->renew_at = 0;
			c->ari_start = c->ari_end = c->ari_next_poll = 0;
			sched_save(r);
		}
		rc_plan(c);
		/* within 1/6 of its lifetime of expiry and not renewed: once */
		if (c->have && c->not_after - time(NULL) < (c->not_after - c->not_before) / 6 &&
		    notify_expiring_first(c->id, c->serial))
			run_notify(c, "expiring", c->serial, c->not_after, c->last_error[0] ?
			    c->last_error : NULL);
	}
	for (size_t i = 0; i < r->cfg->ncerts; i++)
		deploy_name(r, r->cfg->certs[i].name, true);
	agent_stats_poll(r);
}

/* ---- the local agent ---- */

static void child_cb(struct ev_loop *loop, ev_child *w, int revents);

static void
child_watch(struct run *r)
{
	ev_child_stop(r->w.loop, &r->childw);
	if (r->w.child > 0) {
		ev_child_set(&r->childw, r->w.child, 0);
		ev_child_start(r->w.loop, &r->childw);
		r->child_started = now_mono();
	}
}

static void
child_restart_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct run *r = w->data;

	if (r->stopping)
		return;
	if (worker_child_spawn(&r->w) < 0) {
		r->child_backoff = r->child_backoff * 2 > CHILD_BACKOFF_MAX ? CHILD_BACKOFF_MAX :
		    r->child_backoff * 2;
		ev_timer_set(&r->child_restart, r->child_backoff, 0.);
		ev_timer_start(r->w.loop, &r->child_restart);
		return;
	}
	r->child_restarts++;
	child_watch(r);
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)loop;
	(void)revents;
	struct run *r = w->data;

	ev_child_stop(r->w.loop, w);
	r->w.child = 0;
	if (r->stopping)
		return;
	if (now_mono() - r->child_started > CHILD_STABLE)
		r->child_backoff = CHILD_BACKOFF_MIN;
	log_err("the agent hacme-spoa exited (status %d): restarting it in %.1f s",
	    w->rstatus, r->child_backoff);
	ev_timer_set(&r->child_restart, r->child_backoff, 0.);
	ev_timer_start(r->w.loop, &r->child_restart);
	r->child_backoff = r->child_backoff * 2 > CHILD_BACKOFF_MAX ? CHILD_BACKOFF_MAX :
	    r->child_backoff * 2;
}

/* ---- configuration ---- */

/* Stops everything c has in flight: its order is cancelled. */
static void
rc_stop(struct rcert *c)
{
	struct run *r = c->r;

	ev_timer_stop(r->w.loop, &c->timer);
	acme_order_cancel(c->o);
	c->o = NULL;
	if (c->lk != NULL)
		r->be->ops->lock_cancel(c->lk);
	c->lk = NULL;
	rc_unlock(c);
	crypto_key_free(c->reuse);
	c->reuse = NULL;
}

/* SIGHUP: what no new rcert adopted is stopped. */
static void
kept_drop(struct run *r)
{
	for (size_t k = 0; k < r->nkept; k++)
		if (r->kept[k].r != NULL)
			rc_stop(&r->kept[k]);
	free(r->kept);
	r->kept = NULL;
	r->nkept = 0;
}

static void
rcerts_free(struct run *r)
{
	for (size_t i = 0; i < r->nrc; i++)
		rc_stop(&r->rc[i]);
	free(r->rc);
	r->rc = NULL;
	r->nrc = 0;
	r->running = 0;
}

/* SIGHUP: c (new) takes over what k (the same unchanged section before)
 * had in flight -- its order, its lock -- and its renewal state. */
static void
rc_adopt(struct rcert *c, struct rcert *k)
{
	c->queued = k->queued;
	c->o = k->o;
	c->fence = k->fence;
	c->reuse = k->reuse;
	c->started = k->started;
	c->renew_at = k->renew_at;
	snprintf(c->reason, sizeof c->reason, "%s", k->reason);
	c->ari_start = k->ari_start;
	c->ari_end = k->ari_end;
	c->ari_next_poll = k->ari_next_poll;
	c->failures = k->failures;
	c->next_attempt = k->next_attempt;
	snprintf(c->last_error, sizeof c->last_error, "%s", k->last_error);
	c->budget = k->budget;
	memcpy(c->orders, k->orders, sizeof c->orders);
	if (c->o != NULL) {
		acme_order_set_arg(c->o, c);
		c->r->running++;
	}
}

static int
rcerts_build(struct run *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->cfg->ncerts; i++)
		n += r->cfg->certs[i].nkeys;
	if ((r->rc = calloc(n + 1, sizeof *r->rc)) == NULL)
		return -1;
	for (size_t i = 0; i < r->cfg->ncerts; i++) {
		const struct config_cert *cc = &r->cfg->certs[i];
		for (size_t k = 0; k < cc->nkeys; k++) {
			struct rcert *c = &r->rc[r->nrc++];
			c->r = r;
			c->cert = cc;
			c->ki = (int)k;
			c->key = cc->keys[k];
			c->variant = worker_variant(cc, (int)k);
			snprintf(c->id, sizeof c->id, "%s%s%s", cc->name, c->variant ? "/" : "",
			    c->variant ? c->variant : "");
			c->ca = worker_ca(&r->w, cc->ca);
			ev_timer_init(&c->timer, rc_timer_cb, 0., 0.);
			c->timer.data = c;
			rc_refresh(c);
		}
	}
	sched_load(r);
	for (size_t i = 0; i < r->nrc; i++)
		for (size_t k = 0; k < r->nkept; k++)
			if (r->kept[k].r != NULL && strcmp(r->kept[k].id, r->rc[i].id) == 0) {
				rc_adopt(&r->rc[i], &r->kept[k]);
				r->kept[k].r = NULL;
			}
	kept_drop(r);
	return 0;
}

/* Cluster mode: this node's agents get every token; orders present
 * through the cluster. (Again after SIGHUP made new agents.) */
static void
cluster_attach(struct run *r)
{
#ifdef HACME_REDIS
	struct cluster *cl = backend_cluster(r->be);

	solver_free(r->solver);
	r->solver = NULL;
	if (cl == NULL)
		return;
	cluster_set_agents(cl, r->w.agents);
	if ((r->solver = solver_cluster_new(cl, r->w.http01)) == NULL)
		log_err("cluster: out of memory: tokens go to this node's agents only");
#else
	(void)r;
#endif
}

/* The backend's shared state is in the state dir (or could not be had). */
static void
run_synced(void *arg, const char *err)
{
	struct run *r = arg;

	if (err != NULL)
		log_warn("%s", err);
	r->synced = true;
	for (size_t i = 0; i < r->nrc; i++) {
		rc_refresh(&r->rc[i]);
		if (r->rc[i].ca->state == CA_IDLE)
			worker_ca_start(&r->w, r->rc[i].ca, false, NULL, NULL);
	}
	for (size_t i = 0; i < r->cfg->ncerts; i++)
		deploy_name(r, r->cfg->certs[i].name, true);
}

/* For the heartbeat: what each HAProxy of this node serves. */
static char *
run_serving(void *owner)
{
	struct run *r = owner;
	cJSON *a = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; a != NULL && i < r->ndep; i++) {
		cJSON *o = cJSON_CreateObject();
		if (o == NULL)
			break;
		cJSON_AddStringToObject(o, "name", r->dep[i].name);
		if (r->dep[i].variant[0] != '\0')
			cJSON_AddStringToObject(o, "variant", r->dep[i].variant);
		cJSON_AddStringToObject(o, "runtime_api", r->dep[i].api);
		cJSON_AddStringToObject(o, "serial", r->dep[i].serial);
		cJSON_AddBoolToObject(o, "ok", r->dep[i].ok);
		cJSON_AddItemToArray(a, o);
	}
	text = a != NULL ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	return text;
}

/* Another node stored a certificate of name: it is in the local store now. */
static void
run_changed(void *owner, const char *name)
{
	struct run *r = owner;
	bool any = false;

	for (size_t i = 0; i < r->nrc; i++) {
		struct rcert *c = &r->rc[i];
		if (strcmp(c->cert->name, name) != 0 || c->o != NULL || !rc_refresh(c))
			continue;
		log_info("%s: new certificate from another node (serial %s)", c->id, c->serial);
		c->renew_at = 0;
		c->ari_start = c->ari_end = c->ari_next_poll = 0;
		c->failures = 0;
		c->next_attempt = 0;
		c->last_error[0] = '\0';
		any = true;
		rc_plan(c);
	}
	if (any) {
		sched_save(r);
		deploy_name(r, name, false);
	}
}

/* CA clients, agents, deploy and certificates for r->cfg. */
static int
run_setup(struct run *r)
{
	char err[DEPLOY_ERR_MAX];

	if (r->w.agents == NULL) {
		if (worker_agents(&r->w, r->w.child <= 0) < 0)
			return -1;
		cluster_attach(r);	/* (SIGHUP kept the agents: their solver stays) */
	}
	child_watch(r);
	if (r->cfg->nruntime_apis > 0 || r->cfg->reload_command != NULL) {
		if ((r->deploy = deploy_new(r->w.loop, r->cfg, NULL, err, sizeof err)) == NULL) {
			log_err("%s", err);
			return -1;
		}
	} else {
		log_warn("no runtime-api and no reload-command: certificates are stored in %s "
		    "but not put into HAProxy", r->cfg->state_dir);
	}
	if (rcerts_build(r) < 0 || metrics_setup(r) < 0)
		return -1;
	/* DNS solvers now: records an earlier run left are deleted at start */
	for (size_t i = 0; i < r->cfg->ncerts; i++) {
		struct solver *sv[CONFIG_DOMAINS_MAX];
		char serr[ACME_ERR_MAX];
		if (r->cfg->certs[i].dns != NULL &&
		    worker_cert_solvers(&r->w, &r->cfg->certs[i], sv, serr, sizeof serr) < 0)
			log_err("%s", serr);
	}
	free(r->dep);
	r->dep = NULL;
	r->ndep = 0;
	memset(r->agent_stats, 0, sizeof r->agent_stats);
	agent_stats_poll(r);
	for (size_t i = 0; i < r->nrc && r->synced; i++)
		if (r->rc[i].ca->state == CA_IDLE)
			worker_ca_start(&r->w, r->rc[i].ca, false, NULL, NULL);
	/* what is stored goes to HAProxy at once, before any CA answers */
	for (size_t i = 0; i < r->cfg->ncerts; i++)
		deploy_name(r, r->cfg->certs[i].name, true);
	log_notice("hacme run: %zu certificates (%zu with key variants), %zu ca, %s, "
	    "%zu runtime-api", r->cfg->ncerts, r->nrc, r->cfg->ncas,
	    r->cfg->nagents > 0 ? "external agents" : "local agent", r->cfg->nruntime_apis);
	return 0;
}

/* The first tcp address of the config (agent, tls-check, runtime-api) whose
 * host name does not resolve, with the reason in err; NULL when all do. */
static const char *
run_unresolved(const struct config *cfg, char *err, size_t errlen)
{
	const struct { char **v; size_t n; } lists[] = {
		{ cfg->agents, cfg->nagents },
		{ cfg->tls_checks, cfg->ntls_checks },
		{ cfg->runtime_apis, cfg->nruntime_apis },
	};
	struct addr a;

	for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
		for (size_t i = 0; i < lists[l].n; i++)
			if (addr_parse(&a, lists[l].v[i], err, errlen) < 0)
				return lists[l].v[i];
	return NULL;
}

/* In a container stack a name exists once its container runs: wait until
 * every name of the config resolves, then set up (the config was checked,
 * so what addr_parse refuses now is a name it cannot resolve yet). */
static void
names_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	struct run *r = t->data;
	char err[256];

	if (run_unresolved(r->cfg, err, sizeof err) != NULL) {
		if (r->names_logged == 0 || ev_now(loop) - r->names_logged >= NAMES_LOG_EVERY) {
			log_warn("%s: waiting for it to resolve (retrying every %g s at most)",
			    err, NAMES_RETRY_MAX);
			r->names_logged = ev_now(loop);
		}
		r->names_retry = r->names_retry * 2 > NAMES_RETRY_MAX ? NAMES_RETRY_MAX :
		    r->names_retry * 2;
		ev_timer_set(t, r->names_retry, 0.);
		ev_timer_start(loop, t);
		return;
	}
	if (r->names_logged != 0)
		log_notice("every name of the configuration resolves: starting");
	ev_now_update(loop);	/* the lookups blocked: timers set up now start from now */
	if (run_setup(r) < 0) {
		r->failed = true;
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	ev_timer_start(loop, &r->check);
}

static bool
str_same(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The agents and the http-01 solver on them can stay through a SIGHUP:
 * the same agent lines, local agent and pre-flight settings. */
static bool
agents_same(const struct config *a, const struct config *b)
{
	if (a->nagents != b->nagents || !str_same(a->spoa_listen, b->spoa_listen) ||
	    !str_same(a->state_dir, b->state_dir) || a->preflight_port != b->preflight_port ||
	    !str_same(a->preflight_connect, b->preflight_connect))
		return false;
	for (size_t i = 0; i < a->nagents; i++)
		if (!str_same(a->agents[i], b->agents[i]))
			return false;
	return true;
}

static void
sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	struct run *r = w->data;
	struct config *nc = calloc(1, sizeof *nc), *old = r->cfg;
	char err[CONFIG_ERR_MAX];
	char **gone = NULL;
	size_t ngone = 0, kept = 0, inflight = 0;
	struct ca_ctx *ncas = NULL;
	bool keep_agents, *keepca = NULL;

	if (nc == NULL)
		return;
	if (config_load(nc, r->cfgpath, err, sizeof err) < 0) {
		log_err("SIGHUP: %s: keeping the running configuration", err);
		config_free(nc);
		free(nc);
		return;
	}
	cliname_adopt_all(nc);	/* names issued from the command line */
	/* names that leave the config leave HAProxy (their files stay in the
	 * state dir: adding them back re-orders nothing) */
	if ((gone = calloc(old->ncerts + 1, sizeof *gone)) == NULL) {
		config_free(nc);
		free(nc);
		return;
	}
	for (size_t i = 0; i < old->ncerts; i++)
		if (config_find_cert(nc, old->certs[i].name) == NULL)
			gone[ngone++] = strdup(old->certs[i].name);
	/* what an unchanged section runs goes on: same agents, same started
	 * CA, same section; everything else is stopped (its order cancelled) */
	keep_agents = r->w.agents != NULL && agents_same(old, nc);
	if ((keepca = calloc(r->w.ncas + 1, sizeof *keepca)) == NULL ||
	    (ncas = calloc(nc->ncas + 1, sizeof *ncas)) == NULL) {
		free(keepca);
		for (size_t i = 0; i < ngone; i++)
			free(gone[i]);
		free(gone);
		config_free(nc);
		free(nc);
		return;
	}
	for (size_t i = 0; i < r->w.ncas; i++) {
		const struct config_ca *na = config_find_ca(nc, r->w.cas[i].ca->name);
		keepca[i] = r->w.cas[i].state == CA_UP && na != NULL &&
		    config_ca_same(r->w.cas[i].ca, na);
	}
	for (size_t i = 0; i < r->nrc; i++) {
		struct rcert *c = &r->rc[i];
		const struct config_cert *nce = config_find_cert(nc, c->cert->name);
		bool keep = keep_agents && c->lk == NULL && c->ca != NULL &&
		    keepca[c->ca - r->w.cas] &&
		    nce != NULL && config_cert_same(c->cert, nce);
		if (!keep) {
			if (c->o != NULL)
				log_notice("%s: changed or removed: its order is cancelled", c->id);
			rc_stop(c);
			c->r = NULL;	/* not adopted */
			continue;
		}
		kept++;
		ev_timer_stop(r->w.loop, &c->timer);
		if (c->ari_polling)
			acme_renewal_info_cancel(c->ca->acme, c);
		c->ari_polling = false;
		if (c->o != NULL)
			inflight++;
	}
	r->kept = r->rc;
	r->nkept = r->nrc;
	r->rc = NULL;
	r->nrc = 0;
	r->running = 0;
	log_notice("SIGHUP: %s reloaded: %zu certificates, %zu removed; %zu unchanged "
	    "(%zu orders in flight go on)", r->cfgpath, nc->ncerts, ngone, kept, inflight);
	deploy_free(r->deploy);
	r->deploy = NULL;
	if (!keep_agents) {
		solver_free(r->solver);	/* before the http-01 solver it wraps */
		r->solver = NULL;
#ifdef HACME_REDIS
		if (backend_cluster(r->be) != NULL)
			cluster_set_agents(backend_cluster(r->be), NULL);
#endif
		worker_agents_free(&r->w);
	} else {
		worker_solvers_remap(&r->w, nc);
	}
	for (size_t j = 0; j < nc->ncas; j++) {
		ncas[j].w = &r->w;
		ncas[j].ca = &nc->cas[j];
		for (size_t i = 0; i < r->w.ncas; i++)
			if (keepca[i] && strcmp(r->w.cas[i].ca->name, nc->cas[j].name) == 0) {
				ncas[j] = r->w.cas[i];
				ncas[j].ca = &nc->cas[j];
				worker_ca_moved(&ncas[j]);
				keepca[i] = false;
				r->w.cas[i].acme = NULL;	/* moved */
				r->w.cas[i].http = NULL;
				r->w.cas[i].key = NULL;
			}
	}
	for (size_t i = 0; i < r->w.ncas; i++)
		worker_ca_reset(&r->w.cas[i]);	/* the ones not moved */
	free(r->w.cas);
	free(keepca);
	r->w.cas = ncas;
	r->w.ncas = nc->ncas;
	r->cfg = nc;
	r->w.cfg = nc;
	r->be->cfg = nc;
	config_free(old);
	free(old);
	/* still waiting for names: names_cb sets up with the new config */
	if (!ev_is_active(&r->names) && run_setup(r) < 0)
		log_err("SIGHUP: could not apply the new configuration");
	kept_drop(r);	/* what run_setup did not adopt */
	/* a CA that stayed up gives no ca_ready: plan its certificates here */
	for (size_t i = 0; i < r->nrc; i++)
		if (r->rc[i].ca != NULL && r->rc[i].ca->state == CA_UP)
			rc_plan(&r->rc[i]);
	dispatch(r);
	for (size_t i = 0; i < ngone; i++) {
		if (gone[i] != NULL && r->deploy != NULL &&
		    deploy_remove(r->deploy, gone[i], removed, r, err, sizeof err) < 0)
			log_err("%s: %s", gone[i], err);
		free(gone[i]);
	}
	free(gone);
}

static void
stop_done_cb(void *arg, const char *err)
{
	struct run *r = arg;

	(void)err;
	ev_break(r->w.loop, EVBREAK_ALL);
}

static void
stop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	(void)w;
	ev_break(loop, EVBREAK_ALL);
}

static void
sigterm_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	struct run *r = w->data;

	if (r->stopping) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_notice("signal %d: stopping (withdrawing pending tokens)", w->signum);
	r->stopping = true;
	rcerts_free(r);
	ev_timer_stop(loop, &r->check);
	ev_timer_stop(loop, &r->child_restart);
	/* a PING answered after the DELs means every DEL was taken */
	if (r->w.agents != NULL && agentctl_ping(r->w.agents, stop_done_cb, r) == 0) {
		ev_timer_set(&r->stop_timer, STOP_GRACE, 0.);
		ev_timer_start(loop, &r->stop_timer);
	} else {
		ev_break(loop, EVBREAK_ALL);
	}
}

int
run_main(struct config *cfg, const char *cfgpath)
{
	struct run *r = calloc(1, sizeof *r);
	struct ev_loop *loop = ev_default_loop(0);
	char path[4200];
	int rc = 1;

	if (r == NULL || (r->cfg = malloc(sizeof *r->cfg)) == NULL) {
		free(r);
		return 1;
	}
	/* take the config over: SIGHUP replaces it */
	*r->cfg = *cfg;
	memset(cfg, 0, sizeof *cfg);
	cfg = r->cfg;
	r->cfgpath = cfgpath;
	r->run_lock = -1;
	r->child_backoff = CHILD_BACKOFF_MIN;
	if (crypto_random(&r->rnd_state, sizeof r->rnd_state) < 0 || r->rnd_state == 0)
		r->rnd_state = (uint64_t)time(NULL) | 1;
	/* the store lock is taken per write; this one keeps a second `run` out */
	if (worker_init(&r->w, cfg, loop, true) < 0)
		goto out;
	store_unlock(&r->w.st);
	snprintf(path, sizeof path, "%s/run.lock", cfg->state_dir);
	if ((r->run_lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    flock(r->run_lock, LOCK_EX | LOCK_NB) < 0) {
		log_err("%s: %s", path, errno == EWOULDBLOCK ?
		    "another `hacme run` uses this state dir" : strerror(errno));
		goto out;
	}
	r->w.owner = r;
	r->w.ca_ready = run_ca_ready;
	if ((r->be = backend_new(loop, cfg, &r->w.st, path, sizeof path)) == NULL) {
		log_err("%s", path);
		goto out;
	}
	r->be->changed = run_changed;
	r->be->serving = run_serving;
	r->be->owner = r;
	r->synced = r->be->ops->sync(r->be, run_synced, r) != 0;
	ev_child_init(&r->childw, child_cb, 0, 0);
	r->childw.data = r;
	ev_timer_init(&r->child_restart, child_restart_cb, 0., 0.);
	r->child_restart.data = r;
	ev_timer_init(&r->stop_timer, stop_timer_cb, 0., 0.);
	ev_timer_init(&r->check, check_cb, CHECK_INTERVAL, CHECK_INTERVAL);
	r->check.data = r;
	ev_signal_init(&r->sighup, sighup_cb, SIGHUP);
	ev_signal_init(&r->sigterm, sigterm_cb, SIGTERM);
	ev_signal_init(&r->sigint, sigterm_cb, SIGINT);
	r->sighup.data = r->sigterm.data = r->sigint.data = r;
	ev_signal_start(loop, &r->sighup);
	ev_signal_start(loop, &r->sigterm);
	ev_signal_start(loop, &r->sigint);
	r->names_retry = 0.25;
	ev_timer_init(&r->names, names_cb, 0., 0.);
	r->names.data = r;
	ev_timer_start(loop, &r->names);
	ev_run(loop, 0);
	rc = r->failed ? 1 : 0;
out:
	rcerts_free(r);
	solver_free(r->solver);
	backend_free(r->be);
	deploy_free(r->deploy);
	metrics_free(r->metrics);
	free(r->dep);
	ev_child_stop(loop, &r->childw);
	worker_fini(&r->w);
	config_free(r->cfg);
	free(r->cfg);
	if (r->run_lock >= 0)
		close(r->run_lock);
	log_notice("hacme run: stopped");
	log_flush();
	free(r);
	return rc;
}
