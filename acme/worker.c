/* worker.c - the state dir, the CA clients, the agents and the local
 * agent child, shared by the CLI verbs and `hacme run`. */
#include "acme/worker.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "acme/agentctl.h"
#include "acme/checks.h"
#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/http.h"
#include "acme/jws.h"
#include "acme/solver.h"
#include "acme/tokjournal.h"
#include "common/addr.h"
#include "common/log.h"

#define AGENT_WAIT 5.0		/* seconds for a child agent's control socket */

extern char **environ;

double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
fmt_time(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
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

int
worker_child_spawn(struct worker *w)
{
	char ctl[PATH_MAX + 16], spec[PATH_MAX + 16];
	const char *listen = w->cfg->spoa_listen;
	int e;

	snprintf(ctl, sizeof ctl, "unix:%s", w->child_sock);
	snprintf(spec, sizeof spec, "unix@%s", w->child_sock);
	char *argv[] = { w->hacme_spoa, "--listen", (char *)listen, "--control", ctl, NULL };
	if ((e = posix_spawnp(&w->child, w->hacme_spoa, NULL, NULL, argv, environ)) != 0) {
		log_err("cannot start the agent %s: %s (install hacme-spoa beside hacme, or "
		    "add `agent` lines to the config)", w->hacme_spoa, strerror(e));
		w->child = 0;
		return -1;
	}
	for (double t0 = now_mono(); now_mono() - t0 < AGENT_WAIT;) {
		int st;
		if (waitpid(w->child, &st, WNOHANG) == w->child) {
			log_err("the agent %s exited at start (is %s already in use?)",
			    w->hacme_spoa, listen);
			w->child = 0;
			return -1;
		}
		if (sock_answers(spec)) {
			log_info("started hacme-spoa (pid %d) on %s, control %s", (int)w->child,
			    listen, w->child_sock);
			return 0;
		}
		usleep(10000);
	}
	log_err("the agent did not open %s in %.0f s", w->child_sock, AGENT_WAIT);
	worker_child_stop(w);
	return -1;
}

void
worker_child_stop(struct worker *w)
{
	int st;

	if (w->child <= 0)
		return;
	kill(w->child, SIGTERM);
	waitpid(w->child, &st, 0);
	w->child = 0;
}

static void
orphan_withdrawn(void *arg, const char *err)
{
	(void)arg;
	if (err != NULL)
		log_warn("withdrawing a token an earlier run left: %s", err);
}

static void
orphan_withdraw(void *arg, const char *token)
{
	struct worker *w = arg;

	if (agentctl_unpublish(w->agents, token, orphan_withdrawn, NULL) < 0)
		log_warn("could not withdraw token %.8s...: %s", token, strerror(errno));
}

/* Once per process: what an earlier hacme that did not exit cleanly left
 * published is withdrawn, then this process records its own tokens. */
static int
agents_journal(struct worker *w)
{
	char err[TOKJOURNAL_ERR_MAX];
	int n;

	if (w->journal == NULL) {
		if ((n = tokjournal_orphans(w->st.dir, orphan_withdraw, w, err, sizeof err)) < 0)
			log_warn("%s", err);
		else if (n > 0)
			log_notice("withdrawing %d challenge token%s that an earlier hacme left "
			    "published (it did not exit cleanly)", n, n == 1 ? "" : "s");
		if ((w->journal = tokjournal_open(w->st.dir, err, sizeof err)) == NULL)
			log_warn("%s: tokens published now are not recorded", err);
	}
	agentctl_journal(w->agents, w->journal);
	return 0;
}

int
worker_agents(struct worker *w, bool spawn)
{
	char err[256], spec[PATH_MAX + 32];
	struct addr a;

	struct solver_http_opts ho = { .preflight_port = w->cfg->preflight_port,
	    .preflight_connect = w->cfg->preflight_connect };

	w->nagent = 0;
	if ((w->agents = agentctl_new(w->loop, NULL)) == NULL)
		return -1;
	ho.agents = w->agents;
	if ((w->http01 = solver_http_new(w->loop, &ho)) == NULL)
		return -1;
	if (w->cfg->nagents == 0) {
		snprintf(spec, sizeof spec, "unix@%s", w->child_sock);
		if (spawn && !sock_answers(spec) && worker_child_spawn(w) < 0)
			return -1;
		if (addr_parse(&a, spec, err, sizeof err) < 0 ||
		    (w->agent[w->nagent++] = agentctl_add(w->agents, &a)) == NULL) {
			log_err("agent %s: %s", spec, err);
			return -1;
		}
		return agents_journal(w);
	}
	for (size_t i = 0; i < w->cfg->nagents; i++) {
		if (addr_parse(&a, w->cfg->agents[i], err, sizeof err) < 0) {
			log_err("agent %s: %s", w->cfg->agents[i], err);
			return -1;
		}
		if (w->nagent == WORKER_AGENTS_MAX ||
		    (w->agent[w->nagent++] = agentctl_add(w->agents, &a)) == NULL)
			return -1;
	}
	return agents_journal(w);
}

void
worker_agents_free(struct worker *w)
{
	/* the agents first: their callbacks into the solver are dropped */
	agentctl_free(w->agents);
	w->agents = NULL;
	w->nagent = 0;
	solver_free(w->http01);
	w->http01 = NULL;
	for (size_t i = 0; i < w->nsolvers; i++) {
		solver_free(w->dns01[i]);
		solver_free(w->persist[i]);
	}
	free(w->dns01);
	free(w->persist);
	solver_free(w->persist_any);
	w->dns01 = w->persist = NULL;
	w->persist_any = NULL;
	w->nsolvers = 0;
}

void
worker_solvers_remap(struct worker *w, const struct config *nc)
{
	struct solver **dns01 = calloc(nc->ndnss + 1, sizeof *dns01);
	struct solver **persist = calloc(nc->ndnss + 1, sizeof *persist);

	for (size_t i = 0; i < w->nsolvers; i++) {
		const struct config_dns *od = &w->cfg->dnss[i];
		const struct config_dns *nd = config_find_dns(nc, od->name);
		size_t j = nd != NULL ? (size_t)(nd - nc->dnss) : 0;
		if (nd != NULL && dns01 != NULL && persist != NULL && config_dns_same(od, nd)) {
			dns01[j] = w->dns01[i];
			persist[j] = w->persist[i];
		} else {
			solver_free(w->dns01[i]);
			solver_free(w->persist[i]);
		}
	}
	if (dns01 == NULL || persist == NULL) {	/* no memory: made again at first use */
		free(dns01);
		free(persist);
		dns01 = persist = NULL;
	}
	free(w->dns01);
	free(w->persist);
	w->dns01 = dns01;
	w->persist = persist;
	w->nsolvers = dns01 != NULL ? nc->ndnss : 0;
}

int
worker_cert_solvers(struct worker *w, const struct config_cert *c, struct solver **out,
    char *err, size_t errlen)
{
	size_t di = c->dns != NULL ? (size_t)(c->dns - w->cfg->dnss) : 0;

	if (w->dns01 == NULL && w->cfg->ndnss > 0) {
		if ((w->dns01 = calloc(w->cfg->ndnss, sizeof *w->dns01)) == NULL ||
		    (w->persist = calloc(w->cfg->ndnss, sizeof *w->persist)) == NULL) {
			free(w->dns01);
			w->dns01 = NULL;
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		w->nsolvers = w->cfg->ndnss;
	}
	for (size_t i = 0; i < c->ndomains; i++) {
		switch (config_cert_challenge(c, i)) {
		case CHALL_HTTP01:
			out[i] = w->http01;
			break;
		case CHALL_DNS01:
			if (c->dns == NULL || di >= w->nsolvers) {
				snprintf(err, errlen, "cert %s: dns-01 without a dns section",
				    c->name);
				return -1;
			}
			if (w->dns01[di] == NULL &&
			    (w->dns01[di] = solver_dns_new(w->loop, c->dns, w->cfg->state_dir,
			    err, errlen)) == NULL)
				return -1;
			out[i] = w->dns01[di];
			break;
		case CHALL_DNSPERSIST01: {
			struct solver **sp = c->dns != NULL && di < w->nsolvers ? &w->persist[di] :
			    &w->persist_any;
			if (*sp == NULL && (*sp = solver_persist_new(w->loop, c->dns,
			    w->persist_print, w->persist_print_arg, err, errlen)) == NULL)
				return -1;
			out[i] = *sp;
			break;
		}
		}
		if (out[i] == NULL) {
			snprintf(err, errlen, "cert %s: no agents for http-01", c->name);
			return -1;
		}
	}
	return 0;
}

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

void
worker_ca_done(struct ca_ctx *c, const char *err)
{
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
			else
				c->stored_url = true;
		}
	}
}

/* The CA forgot the account and the client registered the key again. */
static void
ca_account_changed(void *arg, const char *url)
{
	struct ca_ctx *c = arg;

	(void)url;
	c->stored_url = false;
	worker_ca_done(c, NULL);	/* saves account.json with the new URL */
}

void
worker_ca_reset(struct ca_ctx *c)
{
	acme_free(c->acme);
	c->acme = NULL;
	http_client_free(c->http);
	c->http = NULL;
	crypto_key_free(c->key);
	c->key = NULL;
	c->state = CA_IDLE;
}

void
worker_ca_moved(struct ca_ctx *c)
{
	if (c->acme != NULL)
		acme_on_account(c->acme, ca_account_changed, c);
}

static void
ca_started(void *arg, const char *err)
{
	struct ca_ctx *c = arg;

	worker_ca_done(c, err);
	if (c->w->ca_ready != NULL)
		c->w->ca_ready(c->w, c);
}

/* Loads the account key, then fetches the directory and finds or creates
 * the account; cb (NULL: ca_started) runs when done. */
int
worker_ca_start(struct worker *w, struct ca_ctx *c, bool only_existing,
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
	acme_on_account(c->acme, ca_account_changed, c);
	if (cb == NULL)
		acme_start(c->acme, ca_started, c);
	else
		acme_start(c->acme, cb, arg);
	return 0;
fail:
	c->state = CA_FAILED;
	return -1;
}

bool
worker_same_names(const struct store_meta *m, const struct config_cert *c)
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

size_t
worker_load_variants(struct worker *w, const char *name, struct store_cert sc[2],
    const char *vn[2])
{
	static const char *const variants[2] = { NULL, "rsa" };
	char err[STORE_ERR_MAX];
	size_t n = 0;

	for (size_t k = 0; k < 2; k++) {
		memset(&sc[n], 0, sizeof sc[n]);
		if (store_cert_load(&w->st, name, variants[k], &sc[n], err, sizeof err) == 0)
			vn[n++] = variants[k];
		else if (errno != ENOENT)
			log_warn("%s: %s", name, err);
	}
	return n;
}

struct ca_ctx *
worker_ca(struct worker *w, const struct config_ca *ca)
{
	for (size_t i = 0; i < w->ncas; i++)
		if (w->cas[i].ca == ca)
			return &w->cas[i];
	return NULL;
}

const char *
worker_variant(const struct config_cert *c, int k)
{
	return c->nkeys == 2 && keytype_is_rsa(c->keys[k]) ? "rsa" : NULL;
}

static void
flush_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	(void)loop;
	(void)p;
	(void)revents;
	log_flush();
}

int
worker_init(struct worker *w, struct config *cfg, struct ev_loop *loop, bool wait)
{
	char err[STORE_ERR_MAX];

	memset(w, 0, sizeof *w);
	w->cfg = cfg;
	w->loop = loop;
	ev_prepare_init(&w->flush, flush_cb);
	ev_prepare_start(loop, &w->flush);
	ev_unref(loop);		/* the flusher alone does not keep the loop running */
	w->st.lock_fd = -1;
	if (store_open(&w->st, cfg->state_dir, err, sizeof err) < 0 ||
	    store_lock(&w->st, wait, err, sizeof err) < 0) {
		log_err("%s", err);
		return -1;
	}
	if ((w->child_sock = calloc(1, PATH_MAX + 16)) == NULL ||
	    (w->hacme_spoa = find_hacme_spoa()) == NULL)
		return -1;
	snprintf(w->child_sock, PATH_MAX + 16, "%s/agent.sock", cfg->state_dir);
	if ((w->cas = calloc(cfg->ncas + 1, sizeof *w->cas)) == NULL ||
	    (w->checks = checks_new(loop, NULL)) == NULL)
		return -1;
	w->ncas = cfg->ncas;
	for (size_t i = 0; i < cfg->ncas; i++) {
		w->cas[i].w = w;
		w->cas[i].ca = &cfg->cas[i];
	}
	return 0;
}

void
worker_fini(struct worker *w)
{
	if (w->loop != NULL && ev_is_active(&w->flush)) {
		ev_ref(w->loop);
		ev_prepare_stop(w->loop, &w->flush);
	}
	worker_agents_free(w);
	for (size_t i = 0; i < w->ncas; i++)
		worker_ca_reset(&w->cas[i]);
	free(w->cas);
	w->cas = NULL;
	w->ncas = 0;
	checks_free(w->checks);	/* after the orders that waited on it */
	w->checks = NULL;
	worker_child_stop(w);
	tokjournal_close(w->journal);
	w->journal = NULL;
	if (w->st.dir != NULL)
		store_close(&w->st);
	free(w->child_sock);
	free(w->hacme_spoa);
	w->child_sock = w->hacme_spoa = NULL;
}
