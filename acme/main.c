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

#include "acme/acme.h"
#include "acme/agentctl.h"
#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/http.h"
#include "acme/jws.h"
#include "acme/proto.h"
#include "acme/store.h"
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
    "  run                          keep every certificate valid (daemon)\n"
    "  check                        validate the configuration\n"
    "  issue [--no-preflight] NAME...  obtain what is missing, deploy\n"
    "  renew [--force] [--no-preflight] [NAME...]  renew what is due (or all, forced)\n"
    "  deploy [NAME...]             push stored certificates to HAProxy again\n"
    "  revoke NAME [--reason R] [--cert-key]\n"
    "  remove NAME                  take a certificate out of HAProxy and off disk\n"
    "  status [--json]\n"
    "  account {show|rollover|deactivate} [CA]\n"
    "NAME is a `cert` section, or a domain name (a one-name certificate).\n"
    "-c FILE: the configuration (default " DEFAULT_CONFIG "); -v: debug log; -q: warnings only\n";

/* ---- the worker: CA clients, agents, orders ---- */

struct worker;

struct job {
	struct cli *w;
	const struct config_cert *cert;
	enum keytype key;
	const char *variant;	/* NULL or "rsa" */
	struct ca_ctx *ca;
	bool order;		/* needs an order */
	bool running, done;
	struct acme_order *o;
	struct crypto_key *reuse;
	double started;
};

struct cli {
	struct worker w;
	struct job *jobs;
	size_t njobs;
	unsigned running, left;
	int rc;
	bool no_preflight;
	bool agents_ok;
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
	}
	return "?";
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
	if (r->fail != ACME_OK) {
		fprintf(stderr, "hacme: %s\n", r->err);
		log_info("%s: order failed (%s) after %.2f s", label, fail_name(r->fail),
		    now_mono() - j->started);
		set_rc(w, EXIT_ACME);
		goto out;
	}
	if (crypto_cert_info(r->chain_pem, r->chain_len, &ci, cerr, sizeof cerr) < 0) {
		fprintf(stderr, "hacme: %s: %s\n", label, cerr);
		set_rc(w, EXIT_ACME);
		goto out;
	}
	meta_from(&m, j, &ci, r);
	if (store_cert_save(&w->w.st, j->cert->name, j->variant, &m, r->key_pem, r->key_len,
	    r->chain_pem, r->chain_len, err, sizeof err) < 0) {
		fprintf(stderr, "hacme: %s: %s\n", label, err);
		set_rc(w, EXIT_ACME);
		goto out;
	}
	fmt_time(ci.not_after, until, sizeof until);
	printf("%s%s%s: issued, serial %s, valid until %s (%.2f s, %u of %u authorizations "
	    "reused)\n", label, j->variant != NULL ? "/" : "", j->variant != NULL ? j->variant : "",
	    ci.serial, until, now_mono() - j->started, r->authz_reused, r->authz_total);
	fflush(stdout);
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
		.agents = w->w.agents,
		.preflight = c->preflight && !w->no_preflight,
		.preflight_port = w->w.cfg->preflight_port,
		.preflight_connect = w->w.cfg->preflight_connect,
	};
	char err[ACME_ERR_MAX];

	j->running = true;
	w->running++;
	j->started = now_mono();
	if ((j->o = acme_order(j->ca->acme, &req, job_order_done, j, err, sizeof err)) == NULL) {
		fprintf(stderr, "hacme: %s\n", err);
		set_rc(w, EXIT_ACME);
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
		set_rc(w, EXIT_ACME);
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
	if (cfg->log_level != NULL && log_threshold != LOG_LVL_DEBUG) {
		enum log_level l;
		if (log_parse_level(cfg->log_level, &l))
			log_threshold = l;
	}
	return 0;
}

static bool
same_names(const struct store_meta *m, const struct config_cert *c)
{
	if (m->nnames != c->ndomains)
		return false;
	for (size_t i = 0; i < c->ndomains; i++) {
		bool found = false;
		for (size_t k = 0; k < m->nnames && !found; k++)
			found = strcasecmp(m->names[k], c->domains[i]) == 0;
		if (!found)
			return false;
	}
	return true;
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
	    !same_names(&sc.meta, c) || sc.meta.not_after <= now)
		goto out;
	if (want == WANT_DUE) {
		time_t life = sc.meta.not_after - sc.meta.not_before;
		time_t left = sc.meta.not_after - now;
		if (left <= (life <= 10 * 86400 ? life / 2 : life / 3))
			goto out;
	}
	fmt_time(sc.meta.not_after, until, sizeof until);
	printf("%s%s%s: valid until %s (serial %s)\n", c->name, variant != NULL ? "/" : "",
	    variant != NULL ? variant : "", until, sc.meta.serial != NULL ? sc.meta.serial : "?");
	order = false;
out:
	store_cert_free(&sc);
	return order;
}

static void
cli_ca_ready(struct worker *ww, struct ca_ctx *c)
{
	(void)c;
	jobs_dispatch(ww->owner);
}

static int
verb_order(struct config *cfg, int argc, char **argv, enum want want, bool no_preflight)
{
	struct cli w = { 0 };
	char err[CONFIG_ERR_MAX];
	size_t n = 0, cap;
	int rc = 0;

	if (worker_init(&w.w, cfg, ev_default_loop(0), true) < 0) {
		worker_fini(&w.w);
		return EXIT_USAGE;
	}
	w.w.owner = &w;
	w.w.ca_ready = cli_ca_ready;
	w.no_preflight = no_preflight;
	cap = (size_t)(argc > 0 ? argc : (int)cfg->ncerts) * CONFIG_KEYS_MAX;
	if ((w.jobs = calloc(cap + 1, sizeof *w.jobs)) == NULL) {
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
			struct job *j = &w.jobs[n];
			j->w = &w;
			j->cert = c;
			j->key = c->keys[k];
			j->variant = worker_variant(c, (int)k);
			j->ca = worker_ca(&w.w, c->ca);
			if (!needs_order(&w, c, (int)k, want, j)) {
				crypto_key_free(j->reuse);
				memset(j, 0, sizeof *j);
				continue;
			}
			n++;
		}
	}
	w.njobs = n;
	w.left = (unsigned)n;
	if (n > 0) {
		if (worker_agents(&w.w, true) < 0) {
			rc = EXIT_ACME;
			goto out;
		}
		agentctl_ping(w.w.agents, agents_pinged, &w);
		for (size_t i = 0; i < n; i++)
			worker_ca_start(&w.w, w.jobs[i].ca, false, NULL, NULL);
		jobs_dispatch(&w);
		if (w.left > 0)
			ev_run(w.w.loop, 0);
		rc = w.rc;
	}
	/* TODO(issue 4): deploy what is stored to every runtime-api. */
out:
	for (size_t i = 0; i < w.njobs; i++) {
		acme_order_cancel(w.jobs[i].o);
		crypto_key_free(w.jobs[i].reuse);
	}
	free(w.jobs);
	worker_fini(&w.w);
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

/* ---- check ---- */

static int
verb_check(struct config *cfg)
{
	size_t names = 0;

	for (size_t i = 0; i < cfg->ncerts; i++)
		names += cfg->certs[i].ndomains;
	printf("%s: configuration OK (%zu ca, %zu cert, %zu names, %zu runtime-api, %s)\n",
	    cfg->file, cfg->ncas, cfg->ncerts, names, cfg->nruntime_apis,
	    cfg->nagents > 0 ? "external agents" : "local agent");
	return 0;
}

int
main(int argc, char **argv)
{
	const char *cfgpath = DEFAULT_CONFIG;
	enum log_level level = LOG_LVL_INFO;
	struct config cfg = { 0 };
	int i, rc;

	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			cfgpath = argv[++i];
		} else if (strcmp(argv[i], "-v") == 0) {
			level = LOG_LVL_DEBUG;
		} else if (strcmp(argv[i], "-q") == 0) {
			level = LOG_LVL_WARNING;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("hacme %s\n", HACME_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else {
			fprintf(stderr, "hacme: unknown option '%s'\n%s", argv[i], usage_text);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	log_init("hacme", level);
	const char *verb = argv[i++];
	if (load_config(&cfg, cfgpath) < 0) {
		config_free(&cfg);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "check") == 0) {
		rc = verb_check(&cfg);
	} else if (strcmp(verb, "issue") == 0 || strcmp(verb, "renew") == 0) {
		bool renew = verb[0] == 'r', force = false, nopf = false;
		int first = i;
		for (; i < argc && argv[i][0] == '-'; i++) {
			if (renew && strcmp(argv[i], "--force") == 0)
				force = true;
			else if (strcmp(argv[i], "--no-preflight") == 0)
				nopf = true;
			else
				break;
		}
		if (i < argc && argv[i][0] == '-') {
			fprintf(stderr, "hacme: %s: unknown option '%s'\n", verb, argv[i]);
			rc = EXIT_USAGE;
		} else if (!renew && i == argc) {
			fprintf(stderr, "hacme: usage: issue [--no-preflight] NAME...\n");
			rc = EXIT_USAGE;
		} else {
			(void)first;
			rc = verb_order(&cfg, argc - i, argv + i,
			    !renew ? WANT_MISSING : force ? WANT_ALL : WANT_DUE, nopf);
		}
	} else if (strcmp(verb, "account") == 0) {
		rc = verb_account(&cfg, argc - i, argv + i);
	} else if (strcmp(verb, "run") == 0 || strcmp(verb, "deploy") == 0 ||
	    strcmp(verb, "revoke") == 0 || strcmp(verb, "remove") == 0 ||
	    strcmp(verb, "status") == 0) {
		fprintf(stderr, "hacme: %s: not built yet in this version\n", verb);
		rc = EXIT_USAGE;
	} else {
		fprintf(stderr, "hacme: unknown verb '%s'\n%s", verb, usage_text);
		rc = EXIT_USAGE;
	}
	config_free(&cfg);
	log_flush();
	return rc;
}
