/* main.c - the hacme command line: hacme -c FILE <verb> ...
 *
 * Every verb that talks to a CA runs one libev loop: the CA clients
 * (acme/acme.h) over one HTTP client each, the agents' control sockets
 * (acme/agentctl.h), and as many orders at once as `concurrency` allows.
 * Exit codes (DESIGN.md): 0 ok, 1 usage or config, 2 ACME, 3 deploy. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "acme/serialfmt.h"
#include "acme/acme.h"
#include "acme/agentctl.h"
#include "acme/checks.h"
#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/deploy.h"
#include "acme/http.h"
#include "acme/cliname.h"
#include "acme/hfiles.h"
#include "acme/import.h"
#include "acme/notify.h"
#include "acme/jws.h"
#include "acme/proto.h"
#include "acme/store.h"
#include "acme/run.h"
#include "acme/schedule.h"
#include "acme/status.h"
#include "acme/validity.h"
#include "acme/solver.h"
#include "acme/worker.h"
#include "common/addr.h"
#include "common/log.h"

#ifndef HACME_VERSION
#define HACME_VERSION "0"
#endif

#define EXIT_USAGE 1
#define EXIT_ACME 2
#define EXIT_DEPLOY 3
#define DEFAULT_CONFIG "/etc/hacme/hacme.cfg"

static const char usage_text[] =
    "usage: hacme [-c FILE] [-v|-q] VERB [ARGS]\n"
    "       hacme {-h|--help|help} | {-V|--version}\n"
    "  run                          keep every certificate valid (daemon)\n"
    "  check [--offline]            validate the configuration, then what deploys\n"
    "                               (dirs, crt-list, HAProxy runtime API) unless --offline\n"
    "  issue [--no-preflight] [--allow-worse] NAME...  obtain what is missing, deploy\n"
    "  renew [--force] [--no-preflight] [--allow-worse] [NAME...]  renew what is due\n"
    "                               (or all, forced); --allow-worse: store a certificate\n"
    "                               that expires before the stored one, or is not valid\n"
    "                               by this host's clock\n"
    "  deploy [NAME...]             push stored certificates to HAProxy again\n"
    "  revoke NAME [--reason R] [--cert-key]\n"
    "  remove NAME                  take a certificate out of HAProxy and off disk\n"
    "  status [--json] [--nodes]    --nodes: each cluster node and what it serves\n"
    "  account {show|rollover|deactivate} [CA]\n"
    "  import certbot [--config-dir DIR]  take over certbot's certificates, no new order\n"
    "  help                         this text\n"
    "  dns-persist NAME...          print the dns-persist-01 TXT record to publish\n"
    "NAME is a `cert` section, or a domain name (a one-name certificate).\n"
    "See hacme(8) and hacme.conf(5).\n"
    "-c FILE: the configuration (default " DEFAULT_CONFIG "); -v: debug log; -q: warnings only;\n"
    "verbs print notices and above, `run` its log-level (default info)\n";

/* ---- the worker: CA clients, agents, orders ---- */

struct worker;

struct job {
	struct cli *w;
	const struct config_cert *cert;
	enum keytype key;
	const char *variant;	/* NULL or "rsa" */
	struct ca_ctx *ca;
	bool order;		/* needs an order */
	bool issued;		/* ordered and stored now */
	bool running, done;
	struct acme_order *o;
	struct crypto_key *reuse;
	double started;
};

#define PERSIST_RECS_MAX 256

struct cli {
	struct worker w;
	struct job *jobs;
	size_t njobs;
	unsigned running, left;
	int rc;
	bool no_preflight;
	bool allow_worse;	/* store a certificate the validity checks refuse */
	bool agents_ok;
	bool persist;		/* hacme dns-persist: print the records, order nothing */
	struct persist_rec {
		char fqdn[256], value[512];
	} *precs;
	size_t nprecs;
};

static void jobs_dispatch(struct cli *w);

static void
set_rc(struct cli *w, int rc)
{
	if (rc > w->rc)
		w->rc = rc;
}

/* ---- jobs ---- */

static void
job_finish(struct job *j)
{
	struct cli *w = j->w;

	j->done = true;
	if (j->running) {
		j->running = false;
		w->running--;
	}
	if (--w->left == 0)
		ev_break(w->w.loop, EVBREAK_ONE);
	else
		jobs_dispatch(w);
}

static void
meta_from(struct store_meta *m, const struct job *j, const struct crypto_cert_info *ci,
    const struct acme_order_result *r)
{
	memset(m, 0, sizeof *m);
	m->names = j->cert->domains;
	m->nnames = j->cert->ndomains;
	m->key_type = (char *)keytype_name(j->key);
	m->serial = (char *)ci->serial;
	m->not_before = ci->not_before;
	m->not_after = ci->not_after;
	m->issuer = (char *)ci->issuer_cn;
	m->ca = j->cert->ca->name;
	m->directory = j->cert->ca->directory;
	m->order_url = (char *)r->order_url;
	m->cert_url = (char *)r->cert_url;
	m->ari_id = (char *)ci->ari_id;
	m->issued = time(NULL);
}

static const char *
fail_name(enum acme_fail f)
{
	switch (f) {
	case ACME_OK: return "ok";
	case ACME_FAIL_PREFLIGHT: return "pre-flight";
	case ACME_FAIL_AGENT: return "agent";
	case ACME_FAIL_VALIDATION: return "validation";
	case ACME_FAIL_CA: return "ca";
	case ACME_FAIL_NETWORK: return "network";
	case ACME_FAIL_LOCAL: return "local";
	case ACME_FAIL_SETUP: return "setup";
	}
	return "?";
}

/* A setup the checks refused before newOrder is the user's to fix (1); the
 * rest failed at or with the CA (2). */
static int
fail_rc(enum acme_fail f)
{
	return f == ACME_FAIL_SETUP ? EXIT_USAGE : EXIT_ACME;
}

static void
job_order_done(void *arg, const struct acme_order_result *r)
{
	struct job *j = arg;
	struct cli *w = j->w;
	struct crypto_cert_info ci = { 0 };
	struct store_meta m;
	char err[STORE_ERR_MAX], cerr[CRYPTO_ERR_MAX], until[32];
	const char *label = j->cert->name;

	j->o = NULL;
	if (w->persist) {	/* the records came to persist_record; the order stopped */
		if (r->fail != ACME_OK && strstr(r->err, "record printed") == NULL) {
			fprintf(stderr, "hacme: %s\n", r->err);
			set_rc(w, fail_rc(r->fail));
		}
		goto out;
	}
	if (r->fail != ACME_OK) {
		struct notify_event ev = { "failed", label, (const char *const *)j->cert->domains,
		    j->cert->ndomains, NULL, 0, r->err };
		fprintf(stderr, "hacme: %s\n", r->err);
		(void)notify(w->w.cfg, &ev);
		log_info("%s: order failed (%s) after %.2f s", label, fail_name(r->fail),
		    now_mono() - j->started);
		set_rc(w, fail_rc(r->fail));
		goto out;
	}
	if (crypto_cert_info(r->chain_pem, r->chain_len, &ci, cerr, sizeof cerr) < 0) {
		fprintf(stderr, "hacme: %s: %s\n", label, cerr);
		set_rc(w, EXIT_ACME);
		goto out;
	}
	{
		struct store_cert old = { 0 };
		char vwhy[VALIDITY_WHY_MAX];
		time_t stored = 0;
		if (store_cert_load(&w->w.st, j->cert->name, j->variant, &old, err, sizeof err) == 0 &&
		    old.meta.key_type != NULL && keytype_parse(old.meta.key_type) == j->key &&
		    worker_same_names(&old.meta, j->cert))
			stored = old.meta.not_after;
		store_cert_free(&old);
		if (validity_check(ci.not_before, ci.not_after, stored, time(NULL), w->allow_worse,
		    vwhy, sizeof vwhy) != VALIDITY_OK) {
			fprintf(stderr, "hacme: %s%s%s: %s\n", label, j->variant != NULL ? "/" : "",
			    j->variant != NULL ? j->variant : "", vwhy);
			set_rc(w, EXIT_ACME);
			goto out;
		}
	}
	meta_from(&m, j, &ci, r);
	char *had = store_cert_path(&w->w.st, j->cert->name, j->variant, "meta.json");
	const char *event = had != NULL && access(had, F_OK) == 0 ? "renewed" : "issued";
	free(had);
	if (store_cert_save(&w->w.st, j->cert->name, j->variant, &m, r->key_pem, r->key_len,
	    r->chain_pem, r->chain_len, err, sizeof err) < 0) {
		fprintf(stderr, "hacme: %s: %s\n", label, err);
		set_rc(w, EXIT_ACME);
		goto out;
	}
	fmt_time(ci.not_after, until, sizeof until);
	printf("%s%s%s: issued, serial %s, valid until %s (%.2f s, %u of %u authorizations "
	    "reused)\n", label, j->variant != NULL ? "/" : "", j->variant != NULL ? j->variant : "",
	    serial_show(ci.serial), until, now_mono() - j->started, r->authz_reused,
	    r->authz_total);
	fflush(stdout);
	{
		struct schedule_cert sc = { ci.not_before, ci.not_after, 0, 0 };
		char vwhy[VALIDITY_WHY_MAX];
		time_t now = time(NULL);
		if (schedule_renewal(&sc, now, 0, NULL) <= now) {
			validity_due_why(ci.not_before, ci.not_after, now, vwhy, sizeof vwhy);
			fprintf(stderr, "hacme: %s: warning: %s\n", label, vwhy);
		}
	}
	j->issued = true;
	struct notify_event ev = { event, label, (const char *const *)j->cert->domains,
	    j->cert->ndomains, ci.serial, ci.not_after, NULL };
	(void)notify(w->w.cfg, &ev);
out:
	crypto_cert_info_free(&ci);
	job_finish(j);
}

static void
job_start(struct job *j)
{
	struct cli *w = j->w;
	const struct config_cert *c = j->cert;
	struct acme_order_req req = {
		.label = c->name,
		.names = (const char *const *)c->domains,
		.nnames = c->ndomains,
		.key = j->key,
		.reuse_key = j->reuse,
		.profile = c->profile,
		.preferred_chain = c->preferred_chain,
		.solver = w->w.http01,
		.preflight = w->persist || (c->preflight && !w->no_preflight),
		.timeout = w->w.cfg->order_timeout,
		.checks = w->w.checks,
		.checks_cfg = w->w.cfg,
	};
	char err[ACME_ERR_MAX], where[CONFIG_NAME_MAX + 64];
	struct solver *sv[CONFIG_DOMAINS_MAX];

	snprintf(where, sizeof where, "%s:%d", w->w.cfg->file, c->line);
	req.where = c->implicit ? NULL : where;
	j->running = true;
	w->running++;
	j->started = now_mono();
	j->o = NULL;
	if (worker_cert_solvers(&w->w, c, sv, err, sizeof err) == 0) {
		req.solvers = sv;
		j->o = acme_order(j->ca->acme, &req, job_order_done, j, err, sizeof err);
	}
	if (j->o == NULL) {
		/* refused before anything was sent: the config asks for what the
		 * CA does not offer (a profile) */
		fprintf(stderr, "hacme: %s\n", err);
		set_rc(w, EXIT_USAGE);
		job_finish(j);
	}
}

static void
jobs_dispatch(struct cli *w)
{
	for (size_t i = 0; i < w->njobs; i++) {
		struct job *j = &w->jobs[i];
		if (j->done || j->running)
			continue;
		if (j->ca->state == CA_FAILED) {
			fprintf(stderr, "hacme: %s: %s\n", j->cert->name, j->ca->err);
			set_rc(w, EXIT_ACME);
			job_finish(j);	/* may dispatch again: the loop continues safely */
			continue;
		}
		if (j->ca->state != CA_UP || !w->agents_ok)
			continue;
		if (w->running >= w->w.cfg->concurrency)
			break;
		job_start(j);
	}
}

static void
agents_pinged(void *arg, const char *err)
{
	struct cli *w = arg;

	if (err != NULL) {
		fprintf(stderr, "hacme: %s: check that hacme-spoa runs there (or remove the "
		    "`agent` line)\n", err);
		set_rc(w, EXIT_USAGE);	/* nothing was ordered: the setup's to fix */
		for (size_t i = 0; i < w->njobs; i++)
			if (!w->jobs[i].done) {
				w->jobs[i].done = true;
				w->left--;
			}
		ev_break(w->w.loop, EVBREAK_ONE);
		return;
	}
	w->agents_ok = true;
	jobs_dispatch(w);
}

/* ---- common set-up ---- */

static int
load_config(struct config *cfg, const char *path)
{
	char err[CONFIG_ERR_MAX];

	if (config_load(cfg, path, err, sizeof err) < 0) {
		fprintf(stderr, "hacme: %s\n", err);
		return -1;
	}
	cliname_adopt_all(cfg);	/* names issued from the command line */
	if (cfg->log_level != NULL && log_threshold != LOG_LVL_DEBUG) {
		enum log_level l;
		if (log_parse_level(cfg->log_level, &l))
			log_threshold = l;
	}
	return 0;
}

enum want { WANT_MISSING, WANT_DUE, WANT_ALL };

/* Whether the stored certificate for (c, k) must be ordered again. */
static bool
needs_order(struct cli *w, const struct config_cert *c, int ki, enum want want, struct job *j)
{
	enum keytype k = c->keys[ki];
	struct store_cert sc = { 0 };
	char err[STORE_ERR_MAX], until[32];
	const char *variant = worker_variant(c, ki);
	time_t now = time(NULL);
	bool order = true;

	if (store_cert_load(&w->w.st, c->name, variant, &sc, err, sizeof err) < 0) {
		if (errno != ENOENT)
			log_warn("%s: %s: ordering a new one", c->name, err);
		goto out;
	}
	if (c->reuse_key && sc.key_pem != NULL) {
		char cerr[CRYPTO_ERR_MAX];
		j->reuse = crypto_key_from_pem(sc.key_pem, sc.key_len, cerr, sizeof cerr);
	}
	if (want == WANT_ALL)
		goto out;
	if (sc.meta.key_type == NULL || keytype_parse(sc.meta.key_type) != k ||
	    !worker_same_names(&sc.meta, c) || sc.meta.not_after <= now)
		goto out;
	if (want == WANT_DUE) {
		time_t life = sc.meta.not_after - sc.meta.not_before;
		time_t left = sc.meta.not_after - now;
		if (left <= (life <= 10 * 86400 ? life / 2 : life / 3))
			goto out;
	}
	fmt_time(sc.meta.not_after, until, sizeof until);
	printf("%s%s%s: valid until %s (serial %s)\n", c->name, variant != NULL ? "/" : "",
	    variant != NULL ? variant : "", until, sc.meta.serial != NULL ?
	    serial_show(sc.meta.serial) : "?");
	order = false;
out:
	store_cert_free(&sc);
	return order;
}

/* ---- deploy ---- */

struct dctx {
	struct ev_loop *loop;
	unsigned left;
	int rc;
};

static void
cli_deployed(void *arg, const struct deploy_report *rep)
{
	struct dctx *x = arg;

	for (size_t i = 0; i < rep->n; i++) {
		const struct deploy_result *d = &rep->results[i];
		const char *slash = d->variant != NULL ? "/" : "", *v = d->variant ? d->variant : "";
		if (!d->ok)
			fprintf(stderr, "hacme: %s%s%s: %s\n", rep->name, slash, v,
			    d->error != NULL ? d->error : "deploy failed");
		else if (d->pushed)
			printf("%s%s%s: deployed to %s (serial %s)\n", rep->name, slash, v,
			    d->runtime_api, serial_show(d->serial));
		else
			printf("%s%s%s: served by %s already (serial %s)\n", rep->name, slash, v,
			    d->runtime_api, serial_show(d->serial));
	}
	if (rep->warning != NULL)
		fprintf(stderr, "hacme: %s: warning: %s\n", rep->name, rep->warning);
	if (!rep->ok) {
		if (rep->n == 0 && rep->error != NULL)
			fprintf(stderr, "hacme: %s: %s\n", rep->name, rep->error);
		x->rc = EXIT_DEPLOY;
	}
	fflush(stdout);
	if (--x->left == 0)
		ev_break(x->loop, EVBREAK_ONE);
}

/* Puts the stored certificates of names into every HAProxy: force[i]
 * pushes, else only where HAProxy lacks it. 0 or EXIT_DEPLOY. */
static int
cli_deploy(struct worker *w, const char *const *names, const bool *force, size_t n)
{
	struct dctx x = { .loop = w->loop };
	char err[DEPLOY_ERR_MAX];
	struct deploy *d;

	if (n == 0)
		return 0;
	if (w->cfg->nruntime_apis == 0 && w->cfg->reload_command == NULL) {
		log_info("no runtime-api and no reload-command: not deploying");
		return 0;
	}
	if ((d = deploy_new(w->loop, w->cfg, NULL, err, sizeof err)) == NULL) {
		fprintf(stderr, "hacme: %s\n", err);
		return EXIT_DEPLOY;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_cert sc[DEPLOY_VARIANTS_MAX];
		const struct store_cert *v[DEPLOY_VARIANTS_MAX] = { &sc[0], &sc[1] };
		const char *vn[DEPLOY_VARIANTS_MAX];
		size_t nv = worker_load_variants(w, names[i], sc, vn);
		int rc;
		if (nv == 0) {
			fprintf(stderr, "hacme: %s: nothing stored to deploy (issue it first)\n",
			    names[i]);
			x.rc = EXIT_DEPLOY;
			continue;
		}
		rc = force[i] ? deploy_cert(d, names[i], v, vn, nv, cli_deployed, &x, err, sizeof err) :
		    deploy_check(d, names[i], v, vn, nv, cli_deployed, &x, err, sizeof err);
		if (rc < 0) {
			fprintf(stderr, "hacme: %s: %s\n", names[i], err);
			x.rc = EXIT_DEPLOY;
		} else {
			x.left++;
		}
		for (size_t k = 0; k < nv; k++)
			store_cert_free(&sc[k]);
	}
	if (x.left > 0)
		ev_run(w->loop, 0);
	deploy_free(d);
	return x.rc;
}

static void
cli_ca_ready(struct worker *ww, struct ca_ctx *c)
{
	(void)c;
	jobs_dispatch(ww->owner);
}

static int verb_remove(struct config *cfg, int argc, char **argv);

/* hacme dns-persist: the record of each dns-persist-01 name, once per
 * owner name (a wildcard's record, with policy=wildcard, serves its base
 * name too). */
static void
persist_record(void *arg, const struct solver_chall *c, const char *fqdn, const char *value)
{
	struct cli *w = arg;
	struct persist_rec *p = NULL;

	for (size_t i = 0; i < w->nprecs && p == NULL; i++)
		if (strcmp(w->precs[i].fqdn, fqdn) == 0)
			p = &w->precs[i];
	if (p == NULL && w->nprecs < PERSIST_RECS_MAX) {
		p = &w->precs[w->nprecs++];
		snprintf(p->fqdn, sizeof p->fqdn, "%s", fqdn);
	} else if (p == NULL || !c->wildcard) {
		return;
	}
	snprintf(p->value, sizeof p->value, "%s", value);
}

static int
verb_order_as(struct cli *wp, struct config *cfg, int argc, char **argv, enum want want,
    bool no_preflight);

static int
verb_order(struct config *cfg, int argc, char **argv, enum want want, bool no_preflight,
    bool allow_worse)
{
	struct cli w = { 0 };

	w.allow_worse = allow_worse;
	return verb_order_as(&w, cfg, argc, argv, want, no_preflight);
}

static int
verb_dns_persist(struct config *cfg, int argc, char **argv)
{
	struct cli w = { 0 };
	char err[CONFIG_ERR_MAX];
	int rc;

	for (int i = 0; i < argc; i++) {
		const struct config_cert *c = config_cert_for_name(cfg, argv[i], err, sizeof err);
		bool any = false;
		if (c == NULL) {
			fprintf(stderr, "hacme: %s\n", err);
			return EXIT_USAGE;
		}
		for (size_t k = 0; k < c->ndomains; k++)
			any |= config_cert_challenge(c, k) == CHALL_DNSPERSIST01;
		if (!any) {
			fprintf(stderr, "hacme: cert %s validates no name with dns-persist-01: add "
			    "`challenge dns-persist-01` to it\n", c->name);
			return EXIT_USAGE;
		}
	}
	if ((w.precs = calloc(PERSIST_RECS_MAX, sizeof *w.precs)) == NULL)
		return EXIT_USAGE;
	w.persist = true;
	rc = verb_order_as(&w, cfg, argc, argv, WANT_ALL, false);
	for (size_t i = 0; i < w.nprecs; i++)
		printf("%s. IN TXT \"%s\"\n", w.precs[i].fqdn, w.precs[i].value);
	if (w.nprecs == 0 && rc == 0) {
		fprintf(stderr, "hacme: the CA offered no dns-persist-01 challenge to read its "
		    "issuer name from (its authorizations are valid already): run it again "
		    "when they expire\n");
		rc = EXIT_ACME;
	}
	free(w.precs);
	return rc;
}

static int
verb_order_as(struct cli *wp, struct config *cfg, int argc, char **argv, enum want want,
    bool no_preflight)
{
	char err[CONFIG_ERR_MAX];
	size_t n = 0, cap;
	int rc = 0;

	if (worker_init(&wp->w, cfg, ev_default_loop(0), true) < 0) {
		worker_fini(&wp->w);
		return EXIT_USAGE;
	}
	wp->w.owner = wp;
	wp->w.ca_ready = cli_ca_ready;
	if (wp->persist) {	/* worker_init cleared the worker */
		wp->w.persist_print = persist_record;
		wp->w.persist_print_arg = wp;
	}
	wp->no_preflight = no_preflight;
	cap = (size_t)(argc > 0 ? argc : (int)cfg->ncerts) * CONFIG_KEYS_MAX;
	if ((wp->jobs = calloc(cap + 1, sizeof *wp->jobs)) == NULL) {
		rc = EXIT_USAGE;
		goto out;
	}
	for (int i = 0; i < (argc > 0 ? argc : (int)cfg->ncerts); i++) {
		const struct config_cert *c = argc > 0 ?
		    config_cert_for_name(cfg, argv[i], err, sizeof err) : &cfg->certs[i];
		if (c == NULL) {
			fprintf(stderr, "hacme: %s\n", err);
			rc = EXIT_USAGE;
			goto out;
		}
		for (size_t k = 0; k < c->nkeys; k++) {
			struct job *j = &wp->jobs[n];
			j->w = wp;
			j->cert = c;
			j->key = c->keys[k];
			j->variant = worker_variant(c, (int)k);
			j->ca = worker_ca(&wp->w, c->ca);
			if (hfiles_foreign(cfg, c->name, j->variant, err, sizeof err)) {
				fprintf(stderr, "hacme: %s\n", err);
				memset(j, 0, sizeof *j);
				continue;	/* no order: the deploy would refuse the file */
			}
			if (!needs_order(wp, c, (int)k, want, j)) {
				crypto_key_free(j->reuse);
				memset(j, 0, sizeof *j);
				continue;
			}
			n++;
		}
	}
	wp->njobs = n;
	wp->left = (unsigned)n;
	if (n > 0) {
		if (worker_agents(&wp->w, true) < 0) {
			rc = EXIT_USAGE;	/* no agent started: nothing ordered */
			goto out;
		}
		agentctl_ping(wp->w.agents, agents_pinged, wp);
		for (size_t i = 0; i < n; i++)
			worker_ca_start(&wp->w, wp->jobs[i].ca, false, NULL, NULL);
		jobs_dispatch(wp);
		if (wp->left > 0)
			ev_run(wp->w.loop, 0);
		rc = wp->rc;
	}
	/* deploy: what was issued now is pushed, what was valid already goes
	 * only where HAProxy lacks it */
	{
		const char **names = calloc(cap + 1, sizeof *names);
		bool *force = calloc(cap + 1, sizeof *force);
		size_t nn = 0;
		int argn = argc > 0 ? argc : (int)cfg->ncerts;
		for (int i = 0; names != NULL && force != NULL && i < argn; i++) {
			const struct config_cert *c = argc > 0 ?
			    config_cert_for_name(cfg, argv[i], err, sizeof err) : &cfg->certs[i];
			bool dup = false, issued = false, failed = false;
			for (size_t k = 0; k < nn && !dup; k++)
				dup = strcmp(names[k], c->name) == 0;
			for (size_t k = 0; k < wp->njobs; k++)
				if (wp->jobs[k].cert == c) {
					issued |= wp->jobs[k].issued;
					failed |= !wp->jobs[k].issued;
				}
			if (dup || (failed && !issued))
				continue;
			/* a name without a cert section: kept, renewed by `hacme run` */
			if (c->implicit && cliname_add(cfg->state_dir, c->name) < 0)
				fprintf(stderr, "hacme: %s: recording it in %s/cli-names: %s\n",
				    c->name, cfg->state_dir, strerror(errno));
			names[nn] = c->name;
			force[nn++] = issued;
		}
		int drc = names != NULL && force != NULL ?
		    cli_deploy(&wp->w, names, force, nn) : EXIT_DEPLOY;
		if (rc == 0)
			rc = drc;
		free(names);
		free(force);
	}
out:
	for (size_t i = 0; i < wp->njobs; i++) {
		acme_order_cancel(wp->jobs[i].o);
		crypto_key_free(wp->jobs[i].reuse);
	}
	free(wp->jobs);
	worker_fini(&wp->w);
	log_flush();
	return rc;
}

/* ---- account ---- */

struct acct_ctx {
	struct worker *w;
	struct ca_ctx *c;
	const char *what;
	int rc;
	struct crypto_key *newk;
};

static void
acct_printed(void *arg, const char *err, const char *json)
{
	struct acct_ctx *x = arg;
	struct proto_account acc = { 0 };
	char why[PROTO_WHY_MAX];
	static const char *const st[] = { "valid", "deactivated", "revoked" };

	if (err != NULL) {
		fprintf(stderr, "hacme: %s\n", err);
		x->rc = EXIT_ACME;
	} else if (proto_account_parse(&acc, json, strlen(json), why, sizeof why) < 0) {
		fprintf(stderr, "hacme: ca %s: the CA's account document: %s\n", x->c->ca->name, why);
		x->rc = EXIT_ACME;
	} else {
		printf("ca:          %s\n", x->c->ca->name);
		printf("directory:   %s\n", x->c->ca->directory);
		printf("account:     %s\n", acme_account_url(x->c->acme));
		printf("status:      %s\n", st[acc.status]);
		for (size_t i = 0; i < acc.ncontact; i++)
			printf("contact:     %s\n", acc.contact[i]);
		printf("key:         %s\n", keytype_name(crypto_key_type(x->c->key)));
		printf("thumbprint:  %s\n", acme_thumbprint(x->c->acme));
	}
	proto_account_free(&acc);
	ev_break(x->w->loop, EVBREAK_ONE);
}

static void
acct_done(void *arg, const char *err)
{
	struct acct_ctx *x = arg;
	char serr[STORE_ERR_MAX];

	if (err != NULL) {
		fprintf(stderr, "hacme: %s\n", err);
		x->rc = EXIT_ACME;
	} else if (x->newk != NULL) {
		size_t len;
		char *pem = crypto_key_pem(x->newk, &len);
		if (pem == NULL || store_account_key_save(&x->w->st, x->c->ca->name, pem, len,
		    serr, sizeof serr) < 0) {
			fprintf(stderr, "hacme: ca %s: the CA now knows the new key but it could "
			    "not be saved: %s\n", x->c->ca->name, pem == NULL ? "encode" : serr);
			x->rc = EXIT_ACME;
		} else {
			printf("ca %s: account key rolled over to a new %s key\n", x->c->ca->name,
			    keytype_name(crypto_key_type(x->newk)));
		}
		if (pem != NULL)
			crypto_wipe_free(pem, len);
	} else {
		printf("ca %s: account %s deactivated\n", x->c->ca->name,
		    acme_account_url(x->c->acme));
	}
	ev_break(x->w->loop, EVBREAK_ONE);
}

static void
acct_started(void *arg, const char *err)
{
	struct acct_ctx *x = arg;
	char cerr[CRYPTO_ERR_MAX];

	worker_ca_done(x->c, err);
	if (err != NULL) {
		fprintf(stderr, "hacme: %s\n", err);
		x->rc = EXIT_ACME;
		ev_break(x->w->loop, EVBREAK_ONE);
		return;
	}
	if (strcmp(x->what, "show") == 0) {
		acme_account_fetch(x->c->acme, acct_printed, x);
	} else if (strcmp(x->what, "rollover") == 0) {
		x->newk = crypto_key_generate(crypto_key_type(x->c->key), cerr, sizeof cerr);
		if (x->newk == NULL) {
			fprintf(stderr, "hacme: ca %s: new key: %s\n", x->c->ca->name, cerr);
			x->rc = EXIT_ACME;
			ev_break(x->w->loop, EVBREAK_ONE);
			return;
		}
		acme_key_change(x->c->acme, x->newk, acct_done, x);
	} else {
		acme_deactivate(x->c->acme, acct_done, x);
	}
}

static int
verb_account(struct config *cfg, int argc, char **argv)
{
	struct worker w;
	struct acct_ctx x = { 0 };
	const struct config_ca *ca = NULL;

	if (argc < 1 || argc > 2 || (strcmp(argv[0], "show") != 0 &&
	    strcmp(argv[0], "rollover") != 0 && strcmp(argv[0], "deactivate") != 0)) {
		fprintf(stderr, "hacme: usage: account {show|rollover|deactivate} [CA]\n");
		return EXIT_USAGE;
	}
	if (argc == 2 && (ca = config_find_ca(cfg, argv[1])) == NULL) {
		fprintf(stderr, "hacme: no `ca %s` section in %s\n", argv[1], cfg->file);
		return EXIT_USAGE;
	}
	if (ca == NULL && cfg->ncas != 1) {
		fprintf(stderr, "hacme: %zu ca sections: name one (account %s CA)\n", cfg->ncas,
		    argv[0]);
		return EXIT_USAGE;
	}
	if (ca == NULL)
		ca = &cfg->cas[0];
	if (worker_init(&w, cfg, ev_default_loop(0), true) < 0) {
		worker_fini(&w);
		return EXIT_USAGE;
	}
	x.w = &w;
	x.c = worker_ca(&w, ca);
	x.what = argv[0];
	x.rc = 0;
	if (worker_ca_start(&w, x.c, strcmp(argv[0], "show") != 0, acct_started, &x) < 0) {
		fprintf(stderr, "hacme: %s\n", x.c->err);
		x.rc = EXIT_ACME;
	} else {
		ev_run(w.loop, 0);
	}
	worker_fini(&w);
	crypto_key_free(x.newk);
	log_flush();
	return x.rc;
}

/* ---- deploy ---- */

static int
verb_deploy(struct config *cfg, int argc, char **argv)
{
	struct worker w = { 0 };
	char err[CONFIG_ERR_MAX];
	size_t n = argc > 0 ? (size_t)argc : cfg->ncerts;
	const char **names = calloc(n + 1, sizeof *names);
	bool *force = calloc(n + 1, sizeof *force);
	int rc = 0;

	if (names == NULL || force == NULL || worker_init(&w, cfg, ev_default_loop(0), true) < 0) {
		free(names);
		free(force);
		worker_fini(&w);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		const struct config_cert *c = argc > 0 ?
		    config_cert_for_name(cfg, argv[i], err, sizeof err) : &cfg->certs[i];
		if (c == NULL) {
			fprintf(stderr, "hacme: %s\n", err);
			rc = EXIT_USAGE;
			goto out;
		}
		names[i] = c->name;
		force[i] = true;
	}
	if (cfg->nruntime_apis == 0 && cfg->reload_command == NULL) {
		fprintf(stderr, "hacme: deploy: no runtime-api and no reload-command in %s\n",
		    cfg->file);
		rc = EXIT_USAGE;
		goto out;
	}
	rc = cli_deploy(&w, names, force, n);
out:
	free(names);
	free(force);
	worker_fini(&w);
	log_flush();
	return rc;
}

/* ---- revoke, remove ---- */

struct rv_ctx {
	struct worker *w;
	struct ca_ctx *c;
	const char *name;
	struct store_cert sc[DEPLOY_VARIANTS_MAX];
	const char *vn[DEPLOY_VARIANTS_MAX];
	size_t n, next;
	int reason;
	bool cert_key;
	struct crypto_key *ck;
	int rc;
};

static void rv_next(struct rv_ctx *x);

static void
rv_done(void *arg, const char *err)
{
	struct rv_ctx *x = arg;
	const struct store_cert *sc = &x->sc[x->next];
	const char *v = x->vn[x->next];

	crypto_key_free(x->ck);
	x->ck = NULL;
	if (err != NULL) {
		fprintf(stderr, "hacme: %s%s%s: %s\n", x->name, v ? "/" : "", v ? v : "", err);
		x->rc = EXIT_ACME;
	} else {
		printf("%s%s%s: revoked (serial %s)\n", x->name, v ? "/" : "", v ? v : "",
		    sc->meta.serial != NULL ? serial_show(sc->meta.serial) : "?");
		fflush(stdout);
		struct notify_event ev = { "revoked", x->name, (const char *const *)sc->meta.names,
		    sc->meta.nnames, sc->meta.serial, sc->meta.not_after, NULL };
		(void)notify(x->w->cfg, &ev);
	}
	x->next++;
	rv_next(x);
}

static void
rv_next(struct rv_ctx *x)
{
	char cerr[CRYPTO_ERR_MAX];

	if (x->next >= x->n) {
		ev_break(x->w->loop, EVBREAK_ONE);
		return;
	}
	const struct store_cert *sc = &x->sc[x->next];
	if (x->cert_key && (x->ck = crypto_key_from_pem(sc->key_pem, sc->key_len, cerr,
	    sizeof cerr)) == NULL) {
		rv_done(x, cerr);
		return;
	}
	acme_revoke(x->c->acme, sc->chain_pem, sc->chain_len, x->reason, x->ck, rv_done, x);
}

static void
rv_started(void *arg, const char *err)
{
	struct rv_ctx *x = arg;

	worker_ca_done(x->c, err);
	if (err != NULL) {
		fprintf(stderr, "hacme: %s\n", err);
		x->rc = EXIT_ACME;
		ev_break(x->w->loop, EVBREAK_ONE);
		return;
	}
	rv_next(x);
}

static int
verb_revoke(struct config *cfg, int argc, char **argv)
{
	struct worker w = { 0 };
	struct rv_ctx x = { .w = &w, .reason = -1 };
	char err[CONFIG_ERR_MAX], why[PROTO_WHY_MAX];
	const struct config_cert *c;
	const char *name = NULL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			if (proto_revoke_reason_parse(argv[++i], &x.reason, why, sizeof why) < 0) {
				fprintf(stderr, "hacme: revoke: --reason %s: %s\n", argv[i], why);
				return EXIT_USAGE;
			}
		} else if (strcmp(argv[i], "--cert-key") == 0) {
			x.cert_key = true;
		} else if (argv[i][0] != '-' && name == NULL) {
			name = argv[i];
		} else {
			fprintf(stderr, "hacme: usage: revoke NAME [--reason R] [--cert-key]\n");
			return EXIT_USAGE;
		}
	}
	if (name == NULL) {
		fprintf(stderr, "hacme: usage: revoke NAME [--reason R] [--cert-key]\n");
		return EXIT_USAGE;
	}
	if ((c = config_cert_for_name(cfg, name, err, sizeof err)) == NULL) {
		fprintf(stderr, "hacme: %s\n", err);
		return EXIT_USAGE;
	}
	x.name = c->name;
	if (worker_init(&w, cfg, ev_default_loop(0), true) < 0) {
		worker_fini(&w);
		return EXIT_USAGE;
	}
	x.n = worker_load_variants(&w, c->name, x.sc, x.vn);
	if (x.n == 0) {
		fprintf(stderr, "hacme: %s: no stored certificate to revoke\n", c->name);
		x.rc = EXIT_USAGE;
		goto out;
	}
	x.c = worker_ca(&w, c->ca);
	if (worker_ca_start(&w, x.c, false, rv_started, &x) < 0) {
		fprintf(stderr, "hacme: %s\n", x.c->err);
		x.rc = EXIT_ACME;
		goto out;
	}
	ev_run(w.loop, 0);
out:
	for (size_t k = 0; k < x.n; k++)
		store_cert_free(&x.sc[k]);
	worker_fini(&w);
	log_flush();
	if (x.rc != 0)
		return x.rc;
	/* a revoked certificate must not stay in service: a configured one is
	 * replaced at once, a one-name certificate of the command line removed */
	if (!c->implicit) {
		char *args[] = { (char *)c->name, NULL };
		printf("%s: ordering its replacement\n", c->name);
		fflush(stdout);
		return verb_order(cfg, 1, args, WANT_ALL, false, false);
	}
	char *args[] = { (char *)c->name, NULL };
	return verb_remove(cfg, 1, args);
}

struct rm_ctx {
	struct ev_loop *loop;
	int rc;
};

static void
rm_done(void *arg, const struct deploy_report *rep)
{
	struct rm_ctx *x = arg;

	for (size_t i = 0; i < rep->n; i++)
		if (!rep->results[i].ok) {
			fprintf(stderr, "hacme: %s: %s\n", rep->name, rep->results[i].error);
			x->rc = EXIT_DEPLOY;
		}
	if (!rep->ok && rep->n == 0) {
		fprintf(stderr, "hacme: %s: %s\n", rep->name, rep->error ? rep->error : "failed");
		x->rc = EXIT_DEPLOY;
	}
	ev_break(x->loop, EVBREAK_ONE);
}

static int
verb_remove(struct config *cfg, int argc, char **argv)
{
	struct worker w = { 0 };
	struct rm_ctx x = { 0 };
	char err[DEPLOY_ERR_MAX], esc[200];
	struct deploy *d = NULL;
	const char *name;

	if (argc != 1 || argv[0][0] == '-') {
		fprintf(stderr, "hacme: usage: remove NAME\n");
		return EXIT_USAGE;
	}
	name = argv[0];
	if (!config_cert_name_valid(name, NULL, 0)) {
		fprintf(stderr, "hacme: remove: '%s' is not a certificate name\n",
		    log_escape(esc, sizeof esc, name, strlen(name)));
		return EXIT_USAGE;
	}
	if (worker_init(&w, cfg, ev_default_loop(0), true) < 0) {
		worker_fini(&w);
		return EXIT_USAGE;
	}
	x.loop = w.loop;
	if (cfg->nruntime_apis > 0 || cfg->reload_command != NULL) {
		if ((d = deploy_new(w.loop, cfg, NULL, err, sizeof err)) == NULL) {
			fprintf(stderr, "hacme: %s\n", err);
			x.rc = EXIT_DEPLOY;
			goto out;
		}
		if (deploy_remove(d, name, rm_done, &x, err, sizeof err) < 0) {
			fprintf(stderr, "hacme: %s: %s\n", name, err);
			x.rc = EXIT_DEPLOY;
			goto out;
		}
		ev_run(w.loop, 0);
	}
	if (x.rc == 0) {
		if (store_cert_remove(&w.st, name, err, sizeof err) < 0) {
			fprintf(stderr, "hacme: %s: %s\n", name, err);
			x.rc = EXIT_USAGE;
		} else {
			(void)cliname_remove(cfg->state_dir, name);
			struct notify_event ev = { .event = "removed", .name = name };
			(void)notify(cfg, &ev);
			printf("%s: removed%s\n", name, config_find_cert(cfg, name) != NULL ?
			    " (it is still in the config: `hacme run` would order it again; "
			    "delete its cert section)" : "");
		}
	}
out:
	deploy_free(d);
	worker_fini(&w);
	log_flush();
	return x.rc;
}

/* ---- check ---- */

struct check_ctx {
	struct ev_loop *loop;
	int rc;
};

static void
check_done(void *arg, const struct checks_report *rep)
{
	struct check_ctx *x = arg;
	size_t failed = 0;

	for (size_t i = 0; i < rep->n; i++) {
		const struct checks_finding *f = &rep->findings[i];
		if (f->level == CHECKS_FAIL) {
			fprintf(stderr, "hacme: %s\n", f->text);
			failed++;
		} else {
			printf("  %s %s\n", f->level == CHECKS_OK ? "ok  " : "warn", f->text);
		}
	}
	if (rep->error != NULL && failed == 0)
		fprintf(stderr, "hacme: %s\n", rep->error);
	if (rep->error != NULL) {
		fprintf(stderr, "hacme: %zu live check%s failed: nothing would be ordered "
		    "(`hacme check --offline` checks the file alone)\n", failed > 0 ? failed : 1,
		    failed == 1 ? "" : "s");
		x->rc = EXIT_USAGE;
	}
	ev_break(x->loop, EVBREAK_ONE);
}

/* hacme check, live: each dns-01 name's zone found and its update
 * authorized, as an order's pre-flight does before newOrder. */
struct dns_check {
	struct dns_check_run *x;
	const char *cert, *name;
};

struct dns_check_run {
	struct ev_loop *loop;
	unsigned left;
	int rc;
};

static void
dns_checked(void *arg, const char *err)
{
	struct dns_check *c = arg;

	if (err != NULL) {
		fprintf(stderr, "hacme: cert %s: %s: %s\n", c->cert, c->name, err);
		c->x->rc = EXIT_USAGE;
	} else {
		printf("  ok   cert %s: %s: DNS zone found, update authorized\n", c->cert, c->name);
	}
	if (--c->x->left == 0)
		ev_break(c->x->loop, EVBREAK_ONE);
}

static int
check_dns(struct config *cfg, struct ev_loop *loop)
{
	struct dns_check_run x = { .loop = loop };
	struct solver **sv = calloc(cfg->ndnss + 1, sizeof *sv);
	struct dns_check *c;
	size_t n = 0;

	for (size_t i = 0; i < cfg->ncerts; i++)
		n += cfg->certs[i].ndomains;
	if (sv == NULL || (c = calloc(n + 1, sizeof *c)) == NULL) {
		free(sv);
		return EXIT_USAGE;
	}
	n = 0;
	for (size_t i = 0; i < cfg->ncerts; i++) {
		const struct config_cert *ce = &cfg->certs[i];
		size_t d = ce->dns != NULL ? (size_t)(ce->dns - cfg->dnss) : 0;
		for (size_t k = 0; k < ce->ndomains; k++) {
			const char *name = ce->domains[k];
			bool wild = strncmp(name, "*.", 2) == 0;
			struct solver_chall ch = { .label = ce->name, .name = wild ? name + 2 : name,
			    .wildcard = wild };
			char err[SOLVER_ERR_MAX];
			if (config_cert_challenge(ce, k) != CHALL_DNS01 || ce->dns == NULL)
				continue;
			/* no state dir: the check leaves the journal to the next order */
			if (sv[d] == NULL && (sv[d] = solver_dns_new(loop, ce->dns, NULL, err,
			    sizeof err)) == NULL) {
				fprintf(stderr, "hacme: cert %s: %s\n", ce->name, err);
				x.rc = EXIT_USAGE;
				goto out;
			}
			c[n] = (struct dns_check){ .x = &x, .cert = ce->name, .name = name };
			switch (solver_prepare(sv[d], &ch, dns_checked, &c[n], err, sizeof err)) {
			case 0:
				x.left++;
				n++;
				break;
			case -1:
				fprintf(stderr, "hacme: cert %s: %s: %s\n", ce->name, name, err);
				x.rc = EXIT_USAGE;
				break;
			}
		}
	}
	if (x.left > 0)
		ev_run(loop, 0);
out:
	for (size_t i = 0; i < cfg->ndnss; i++)
		solver_free(sv[i]);
	free(sv);
	free(c);
	return x.rc;
}

static int
verb_check(struct config *cfg, bool offline)
{
	struct check_ctx x = { .loop = ev_default_loop(0) };
	struct checks *k;
	size_t names = 0;

	if (cfg->notify_command != NULL) {	/* run later, unattended: say it now */
		const char *why = NULL;
		char **a = notify_split(cfg->notify_command, &why);
		if (a != NULL && strchr(a[0], '/') != NULL && access(a[0], X_OK) < 0)
			why = strerror(errno);
		if (a == NULL || why != NULL) {
			fprintf(stderr, "hacme: %s: notify-command %s: %s\n", cfg->file,
			    a != NULL ? a[0] : "", why);
			notify_argv_free(a);
			return EXIT_USAGE;
		}
		notify_argv_free(a);
	}
	for (size_t i = 0; i < cfg->ncerts; i++)
		names += cfg->certs[i].ndomains;
	printf("%s: configuration OK (%zu ca, %zu cert, %zu names, %zu runtime-api, %s)\n",
	    cfg->file, cfg->ncas, cfg->ncerts, names, cfg->nruntime_apis,
	    cfg->nagents > 0 ? "external agents" : "local agent");
	if (offline)
		return 0;
	fflush(stdout);
	if ((k = checks_new(x.loop, NULL)) == NULL || checks_run(k, cfg, check_done, &x) < 0) {
		fprintf(stderr, "hacme: live checks: %s\n", strerror(errno));
		checks_free(k);
		return EXIT_USAGE;
	}
	ev_run(x.loop, 0);
	checks_free(k);
	if (cfg->ndnss > 0) {
		int drc = check_dns(cfg, x.loop);
		if (x.rc == 0)
			x.rc = drc;
	}
	return x.rc;
}

int
main(int argc, char **argv)
{
	const char *cfgpath = DEFAULT_CONFIG;
	enum log_level level = LOG_LVL_INFO;
	struct config cfg = { 0 };
	char esc[200];		/* a command-line word echoed in an error */
	int i, rc;

	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			cfgpath = argv[++i];
		} else if (strcmp(argv[i], "-v") == 0) {
			level = LOG_LVL_DEBUG;
		} else if (strcmp(argv[i], "-q") == 0) {
			level = LOG_LVL_WARNING;
		} else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("hacme %s\n", HACME_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else {
			fprintf(stderr, "hacme: unknown option '%s'\n%s",
			    log_escape(esc, sizeof esc, argv[i], strlen(argv[i])), usage_text);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	log_init("hacme", level);
	const char *verb = argv[i++];
	if (strcmp(verb, "help") == 0) {	/* needs no config */
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(verb, "import") == 0) {	/* writes the config: loads it itself */
		if (level == LOG_LVL_INFO)
			log_threshold = LOG_LVL_NOTICE;
		return import_main(cfgpath, argc - i, argv + i, verb_deploy);
	}
	if (load_config(&cfg, cfgpath) < 0) {
		config_free(&cfg);
		return EXIT_USAGE;
	}
	if (level == LOG_LVL_INFO && strcmp(verb, "run") != 0)
		log_threshold = LOG_LVL_NOTICE;	/* a verb's own output says enough; -v: more */
	if (strcmp(verb, "check") == 0) {
		bool offline = i < argc && strcmp(argv[i], "--offline") == 0;
		if (argc - i > (offline ? 1 : 0)) {
			fprintf(stderr, "hacme: usage: check [--offline]\n");
			rc = EXIT_USAGE;
		} else {
			rc = verb_check(&cfg, offline);
		}
	} else if (strcmp(verb, "issue") == 0 || strcmp(verb, "renew") == 0) {
		bool renew = verb[0] == 'r', force = false, nopf = false, worse = false;
		int first = i;
		for (; i < argc && argv[i][0] == '-'; i++) {
			if (renew && strcmp(argv[i], "--force") == 0)
				force = true;
			else if (strcmp(argv[i], "--no-preflight") == 0)
				nopf = true;
			else if (strcmp(argv[i], "--allow-worse") == 0)
				worse = true;
			else
				break;
		}
		if (i < argc && argv[i][0] == '-') {
			fprintf(stderr, "hacme: %s: unknown option '%s'\n", verb,
			    log_escape(esc, sizeof esc, argv[i], strlen(argv[i])));
			rc = EXIT_USAGE;
		} else if (!renew && i == argc) {
			fprintf(stderr, "hacme: usage: issue [--no-preflight] [--allow-worse] NAME...\n");
			rc = EXIT_USAGE;
		} else {
			(void)first;
			rc = verb_order(&cfg, argc - i, argv + i,
			    !renew ? WANT_MISSING : force ? WANT_ALL : WANT_DUE, nopf, worse);
		}
	} else if (strcmp(verb, "dns-persist") == 0) {
		if (i == argc) {
			fprintf(stderr, "hacme: usage: dns-persist NAME...\n");
			rc = EXIT_USAGE;
		} else {
			rc = verb_dns_persist(&cfg, argc - i, argv + i);
		}
	} else if (strcmp(verb, "account") == 0) {
		rc = verb_account(&cfg, argc - i, argv + i);
	} else if (strcmp(verb, "run") == 0) {
		rc = i == argc ? run_main(&cfg, cfgpath) : (fprintf(stderr,
		    "hacme: run takes no arguments\n"), EXIT_USAGE);
	} else if (strcmp(verb, "deploy") == 0) {
		rc = verb_deploy(&cfg, argc - i, argv + i);
	} else if (strcmp(verb, "revoke") == 0) {
		rc = verb_revoke(&cfg, argc - i, argv + i);
	} else if (strcmp(verb, "remove") == 0) {
		rc = verb_remove(&cfg, argc - i, argv + i);
	} else if (strcmp(verb, "status") == 0) {
		bool json = false, nodes = false, bad = false;
		for (int k = i; k < argc; k++)
			if (strcmp(argv[k], "--json") == 0)
				json = true;
			else if (strcmp(argv[k], "--nodes") == 0)
				nodes = true;
			else
				bad = true;
		if (bad) {
			fprintf(stderr, "hacme: usage: status [--json] [--nodes]\n");
			rc = EXIT_USAGE;
		} else if (nodes) {
#ifdef HACME_REDIS
			rc = status_nodes_main(&cfg, json, stdout);
#else
			fprintf(stderr, "hacme: status --nodes: built without hiredis\n");
			rc = EXIT_USAGE;
#endif
		} else {
			rc = status_main(&cfg, json, stdout);
		}
	} else {
		fprintf(stderr, "hacme: unknown verb '%s'\n%s",
		    log_escape(esc, sizeof esc, verb, strlen(verb)), usage_text);
		rc = EXIT_USAGE;
	}
	config_free(&cfg);
	log_flush();
	return rc;
}
