/* main.c - the hacme command line: hacme -c FILE <verb> ...
 *
 * Every verb that talks to a CA runs one libev loop: the CA clients
 * (acme/acme.h) over one HTTP client each, the agents' control sockets
 * (acme/agentctl.h), and as many orders at once as `concurrency` allows.
 * Exit codes (DESIGN.md): 0 ok, 1 usage or config, 2 ACME, 3 deploy. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
#include "common/addr.h"
#include "common/log.h"

#ifndef HACME_VERSION
#define HACME_VERSION "0"
#endif

#define EXIT_USAGE 1
#define EXIT_ACME 2
#define EXIT_DEPLOY 3
#define DEFAULT_CONFIG "/etc/hacme/hacme.cfg"
#define AGENT_WAIT 5.0		/* seconds for a child agent's control socket */

extern char **environ;

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

enum ca_state { CA_IDLE = 0, CA_STARTING, CA_UP, CA_FAILED };

struct ca_ctx {
	struct worker *w;
	const struct config_ca *ca;
	struct http_client *http;
	struct acme *acme;
	struct crypto_key *key;
	enum ca_state state;
	char err[ACME_ERR_MAX];
	bool stored_url;	/* account.json matched: nothing to save */
};

struct job {
	struct worker *w;
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

struct worker {
	struct ev_loop *loop;
	struct config *cfg;
	struct store st;
	struct agentctl *agents;
	bool agents_ok;
	pid_t child;
	char *child_sock;
	struct ca_ctx *cas;
	size_t ncas;
	struct job *jobs;
	size_t njobs;
	unsigned running, left;
	int rc;
	bool no_preflight;
	char *hacme_spoa;	/* path of the agent binary */
};

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
fmt_time(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
set_rc(struct worker *w, int rc)
{
	if (rc > w->rc)
		w->rc = rc;
}

static struct ca_ctx *
ca_of(struct worker *w, const struct config_ca *ca)
{
	for (size_t i = 0; i < w->ncas; i++)
		if (w->cas[i].ca == ca)
			return &w->cas[i];
	return NULL;
}

/* The agent binary: beside our own, else on PATH. */
static char *
find_hacme_spoa(void)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, sizeof path, "%s/hacme-spoa", self);
			if (access(path, X_OK) == 0)
				return strdup(path);
			/* the build tree: acme/hacme beside spoa/hacme-spoa */
			snprintf(path, sizeof path, "%s/../spoa/hacme-spoa", self);
			if (access(path, X_OK) == 0)
				return strdup(path);
		}
	}
	return strdup("hacme-spoa");	/* posix_spawnp searches PATH */
}

static bool
sock_answers(const char *spec)
{
	struct addr a;
	char err[256];
	int fd;

	if (addr_parse(&a, spec, err, sizeof err) < 0)
		return false;
	if ((fd = addr_connect(&a, false)) < 0)
		return false;
	close(fd);
	return true;
}

/* Starts a local hacme-spoa on spoa-listen with its control socket in the
 * state dir, unless one already answers there (`hacme run` is up). */
static int
local_agent(struct worker *w, char *spec, size_t speclen)
{
	char ctl[PATH_MAX + 16];
	const char *listen = w->cfg->spoa_listen;

	snprintf(w->child_sock, PATH_MAX + 8, "%s/agent.sock", w->cfg->state_dir);
	snprintf(spec, speclen, "unix@%s", w->child_sock);
	if (sock_answers(spec))
		return 0;
	snprintf(ctl, sizeof ctl, "unix:%s", w->child_sock);
	char *argv[] = { w->hacme_spoa, "--listen", (char *)listen, "--control", ctl, NULL };
	int e = posix_spawnp(&w->child, w->hacme_spoa, NULL, NULL, argv, environ);
	if (e != 0) {
		fprintf(stderr, "hacme: cannot start the agent %s: %s (install hacme-spoa beside "
		    "hacme, or add `agent` lines to the config)\n", w->hacme_spoa, strerror(e));
		w->child = 0;
		return -1;
	}
	for (double t0 = now_mono(); now_mono() - t0 < AGENT_WAIT;) {
		int st;
		if (waitpid(w->child, &st, WNOHANG) == w->child) {
			fprintf(stderr, "hacme: the agent %s exited at start (is %s already in "
			    "use?)\n", w->hacme_spoa, listen);
			w->child = 0;
			return -1;
		}
		if (sock_answers(spec)) {
			log_info("started hacme-spoa (pid %d) on %s", (int)w->child, listen);
			return 0;
		}
		usleep(10000);
	}
	fprintf(stderr, "hacme: the agent did not open %s in %.0f s\n", w->child_sock, AGENT_WAIT);
	return -1;
}

static void
stop_child(struct worker *w)
{
	int st;

	if (w->child <= 0)
		return;
	kill(w->child, SIGTERM);
	waitpid(w->child, &st, 0);
	w->child = 0;
}

static int
agents_setup(struct worker *w)
{
	char err[256], spec[PATH_MAX + 32];
	struct addr a;

	if ((w->agents = agentctl_new(w->loop, NULL)) == NULL)
		return -1;
	if (w->cfg->nagents == 0) {
		if (local_agent(w, spec, sizeof spec) < 0)
			return -1;
		if (addr_parse(&a, spec, err, sizeof err) < 0 || agentctl_add(w->agents, &a) == NULL) {
			fprintf(stderr, "hacme: agent %s: %s\n", spec, err);
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < w->cfg->nagents; i++) {
		if (addr_parse(&a, w->cfg->agents[i], err, sizeof err) < 0) {
			fprintf(stderr, "hacme: agent %s: %s\n", w->cfg->agents[i], err);
			return -1;
		}
		if (agentctl_add(w->agents, &a) == NULL)
			return -1;
	}
	return 0;
}

/* ---- CA clients ---- */

static void jobs_dispatch(struct worker *w);

static int
ca_load_key(struct worker *w, struct ca_ctx *c)
{
	char err[STORE_ERR_MAX], cerr[CRYPTO_ERR_MAX];
	char *pem = NULL;
	size_t len = 0;

	if (store_account_key_load(&w->st, c->ca->name, &pem, &len, err, sizeof err) == 0) {
		c->key = crypto_key_from_pem(pem, len, cerr, sizeof cerr);
		crypto_wipe_free(pem, len);
		if (c->key == NULL) {
			snprintf(c->err, sizeof c->err, "ca %s: account key: %s", c->ca->name, cerr);
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(c->err, sizeof c->err, "ca %s: %s", c->ca->name, err);
		return -1;
	}
	if ((c->key = crypto_key_generate(c->ca->account_key, cerr, sizeof cerr)) == NULL ||
	    (pem = crypto_key_pem(c->key, &len)) == NULL) {
		snprintf(c->err, sizeof c->err, "ca %s: account key: %s", c->ca->name, cerr);
		return -1;
	}
	int rc = store_account_key_save(&w->st, c->ca->name, pem, len, err, sizeof err);
	crypto_wipe_free(pem, len);
	if (rc < 0) {
		snprintf(c->err, sizeof c->err, "ca %s: %s", c->ca->name, err);
		return -1;
	}
	log_info("ca %s: new %s account key", c->ca->name, keytype_name(c->ca->account_key));
	return 0;
}

static void
ca_started(void *arg, const char *err)
{
	struct ca_ctx *c = arg;
	struct worker *w = c->w;
	char serr[STORE_ERR_MAX];

	if (err != NULL) {
		c->state = CA_FAILED;
		snprintf(c->err, sizeof c->err, "%s", err);
	} else {
		c->state = CA_UP;
		if (!c->stored_url) {
			struct store_account sa = {
				.url = (char *)acme_account_url(c->acme),
				.directory = c->ca->directory,
				.key_type = (char *)keytype_name(crypto_key_type(c->key)),
				.thumbprint = (char *)acme_thumbprint(c->acme),
				.created = time(NULL),
			};
			if (store_account_save(&w->st, c->ca->name, &sa, serr, sizeof serr) < 0)
				log_warn("ca %s: %s", c->ca->name, serr);
		}
	}
	jobs_dispatch(w);
}

/* Loads the account key, then fetches the directory and finds or creates
 * the account; cb (NULL: ca_started) runs when done. */
static int
ca_start(struct worker *w, struct ca_ctx *c, bool only_existing,
    void (*cb)(void *, const char *), void *arg)
{
	struct http_opts ho = { .ca_bundle = c->ca->ca_bundle };
	struct store_account sa = { 0 };
	char err[STORE_ERR_MAX];
	struct acme_opts ao = { 0 };
	char name[CONFIG_NAME_MAX + 8];

	if (c->state != CA_IDLE)
		return 0;
	c->state = CA_STARTING;
	if (ca_load_key(w, c) < 0)
		goto fail;
	if ((c->http = http_client_new(w->loop, &ho)) == NULL) {
		snprintf(c->err, sizeof c->err, "ca %s: cannot set up HTTP (ca-bundle %s?)",
		    c->ca->name, c->ca->ca_bundle != NULL ? c->ca->ca_bundle : "default");
		goto fail;
	}
	if (store_account_load(&w->st, c->ca->name, &sa, err, sizeof err) == 0 &&
	    sa.url != NULL && sa.directory != NULL && strcmp(sa.directory, c->ca->directory) == 0)
		c->stored_url = true;
	snprintf(name, sizeof name, "ca %s", c->ca->name);
	ao.ca_name = name;
	ao.directory = c->ca->directory;
	ao.contact = (const char *const *)c->ca->contact;
	ao.ncontact = c->ca->ncontact;
	ao.eab_kid = c->ca->eab_kid;
	ao.eab_hmac_key = c->ca->eab_hmac_key;
	ao.account_key = c->key;
	ao.account_url = c->stored_url ? sa.url : NULL;
	ao.only_existing = only_existing;
	c->acme = acme_new(w->loop, c->http, &ao, c->err, sizeof c->err);
	store_account_free(&sa);
	if (c->acme == NULL)
		goto fail;
	if (cb == NULL)
		acme_start(c->acme, ca_started, c);
	else
		acme_start(c->acme, cb, arg);
	return 0;
fail:
	c->state = CA_FAILED;
	return -1;
}

/* ---- jobs ---- */

static void
job_finish(struct job *j)
{
	struct worker *w = j->w;

	j->done = true;
	if (j->running) {
		j->running = false;
		w->running--;
	}
	if (--w->left == 0)
		ev_break(w->loop, EVBREAK_ONE);
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
	struct worker *w = j->w;
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
	if (store_cert_save(&w->st, j->cert->name, j->variant, &m, r->key_pem, r->key_len,
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
	struct worker *w = j->w;
	const struct config_cert *c = j->cert;
	struct acme_order_req req = {
		.label = c->name,
		.names = (const char *const *)c->domains,
		.nnames = c->ndomains,
		.key = j->key,
		.reuse_key = j->reuse,
		.profile = c->profile,
		.preferred_chain = c->preferred_chain,
		.agents = w->agents,
		.preflight = c->preflight && !w->no_preflight,
		.preflight_port = w->cfg->preflight_port,
		.preflight_connect = w->cfg->preflight_connect,
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
jobs_dispatch(struct worker *w)
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
		if (w->running >= w->cfg->concurrency)
			break;
		job_start(j);
	}
}

static void
agents_pinged(void *arg, const char *err)
{
	struct worker *w = arg;

	if (err != NULL) {
		fprintf(stderr, "hacme: %s: check that hacme-spoa runs there (or remove the "
		    "`agent` line)\n", err);
		set_rc(w, EXIT_ACME);
		for (size_t i = 0; i < w->njobs; i++)
			if (!w->jobs[i].done) {
				w->jobs[i].done = true;
				w->left--;
			}
		ev_break(w->loop, EVBREAK_ONE);
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

static int
worker_init(struct worker *w, struct config *cfg)
{
	char err[STORE_ERR_MAX];

	memset(w, 0, sizeof *w);
	w->cfg = cfg;
	w->loop = ev_default_loop(0);
	if (store_open(&w->st, cfg->state_dir, err, sizeof err) < 0 ||
	    store_lock(&w->st, true, err, sizeof err) < 0) {
		fprintf(stderr, "hacme: %s\n", err);
		return -1;
	}
	if ((w->child_sock = calloc(1, PATH_MAX + 16)) == NULL ||
	    (w->hacme_spoa = find_hacme_spoa()) == NULL)
		return -1;
	w->ncas = cfg->ncas;
	if ((w->cas = calloc(cfg->ncas + 1, sizeof *w->cas)) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->ncas; i++) {
		w->cas[i].w = w;
		w->cas[i].ca = &cfg->cas[i];
	}
	return 0;
}

static void
worker_fini(struct worker *w)
{
	for (size_t i = 0; i < w->njobs; i++) {
		acme_order_cancel(w->jobs[i].o);
		crypto_key_free(w->jobs[i].reuse);
	}
	free(w->jobs);
	agentctl_free(w->agents);
	for (size_t i = 0; i < w->ncas; i++) {
		acme_free(w->cas[i].acme);
		http_client_free(w->cas[i].http);
		crypto_key_free(w->cas[i].key);
	}
	free(w->cas);
	stop_child(w);
	store_close(&w->st);
	free(w->child_sock);
	free(w->hacme_spoa);
}

/* The variant directory of key k in cert c: the RSA half of a dual
 * certificate lives under rsa/. */
static const char *
variant_of(const struct config_cert *c, enum keytype k)
{
	return c->nkeys == 2 && keytype_is_rsa(k) ? "rsa" : NULL;
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
needs_order(struct worker *w, const struct config_cert *c, enum keytype k, enum want want,
    struct job *j)
{
	struct store_cert sc = { 0 };
	char err[STORE_ERR_MAX], until[32];
	const char *variant = variant_of(c, k);
	time_t now = time(NULL);
	bool order = true;

	if (store_cert_load(&w->st, c->name, variant, &sc, err, sizeof err) < 0) {
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

static int
verb_order(struct config *cfg, int argc, char **argv, enum want want, bool no_preflight)
{
	struct worker w;
	char err[CONFIG_ERR_MAX];
	size_t n = 0, cap;
	int rc = 0;

	if (worker_init(&w, cfg) < 0) {
		worker_fini(&w);
		return EXIT_USAGE;
	}
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
			j->variant = variant_of(c, c->keys[k]);
			j->ca = ca_of(&w, c->ca);
			if (!needs_order(&w, c, c->keys[k], want, j)) {
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
		if (agents_setup(&w) < 0) {
			rc = EXIT_ACME;
			goto out;
		}
		agentctl_ping(w.agents, agents_pinged, &w);
		for (size_t i = 0; i < n; i++)
			ca_start(&w, w.jobs[i].ca, false, NULL, NULL);
		jobs_dispatch(&w);
		if (w.left > 0)
			ev_run(w.loop, 0);
		rc = w.rc;
	}
	/* TODO(issue 4): deploy what is stored to every runtime-api. */
out:
	worker_fini(&w);
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

	ca_started(x->c, err);
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
	if (worker_init(&w, cfg) < 0) {
		worker_fini(&w);
		return EXIT_USAGE;
	}
	x.w = &w;
	x.c = ca_of(&w, ca);
	x.what = argv[0];
	x.rc = 0;
	if (ca_start(&w, x.c, strcmp(argv[0], "show") != 0, acct_started, &x) < 0) {
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
