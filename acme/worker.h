/* worker.h - what every hacme verb that talks to a CA shares: the state
 * dir (locked), one client per `ca` section (account key, HTTP client,
 * acme.h client), the agents' control sockets, and the local hacme-spoa
 * child when the config names no agent. */
#ifndef HACME_WORKER_H
#define HACME_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <ev.h>

#include "acme/acme.h"
#include "acme/store.h"

struct ev_loop;
struct config;
struct config_ca;
struct config_cert;
struct http_client;
struct agentctl;
struct solver;
struct solver_chall;
struct crypto_key;
struct worker;

#define WORKER_AGENTS_MAX 64	/* as config.c allows `agent` lines */

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

struct worker {
	struct ev_loop *loop;
	struct config *cfg;
	struct store st;
	struct agentctl *agents;
	struct agentctl_agent *agent[WORKER_AGENTS_MAX];	/* for STATS */
	size_t nagent;
	struct solver *http01;	/* http-01 on the agents (acme/solver.h) */
	struct checks *checks;	/* before each order: could it be deployed? */
	struct tokjournal *journal;	/* tokens published (acme/tokjournal.h) */
	/* dns-01 and dns-persist-01 per dns section (index in cfg->dnss),
	 * made at first use; persist_any: dns-persist-01 without a section */
	struct solver **dns01, **persist, *persist_any;
	size_t nsolvers;
	/* hacme dns-persist: the persist solvers hand records here */
	void (*persist_print)(void *arg, const struct solver_chall *c, const char *fqdn,
	    const char *value);
	void *persist_print_arg;
	pid_t child;		/* the local hacme-spoa, 0 when none */
	char *child_sock;	/* <state-dir>/agent.sock */
	char *hacme_spoa;	/* the agent binary */
	struct ca_ctx *cas;
	size_t ncas;
	/* after a CA started or failed (worker_ca_start without a callback) */
	void (*ca_ready)(struct worker *w, struct ca_ctx *c);
	void *owner;
	ev_prepare flush;	/* log lines go out before the loop sleeps */
};

/* Opens and locks the state dir (wait: block for another hacme, else fail
 * at once), one ca_ctx per ca section. On failure the reason was printed
 * and worker_fini is still needed. */
int worker_init(struct worker *w, struct config *cfg, struct ev_loop *loop, bool wait);
void worker_fini(struct worker *w);

struct ca_ctx *worker_ca(struct worker *w, const struct config_ca *ca);
/* Loads (or makes and stores) the account key, then finds or creates the
 * account; cb NULL: store account.json and call w->ca_ready. */
int worker_ca_start(struct worker *w, struct ca_ctx *c, bool only_existing,
    void (*cb)(void *arg, const char *err), void *arg);

/* Frees c's ACME client, HTTP client and account key: c is CA_IDLE, ready
 * for worker_ca_start again. */
void worker_ca_reset(struct ca_ctx *c);

/* c was copied to a new place (SIGHUP kept a started CA): its client's
 * callbacks follow it. Only for a CA in state CA_UP. */
void worker_ca_moved(struct ca_ctx *c);

/* What the default callback does first: records the CA's state and saves
 * account.json when the account is new. For callers with their own cb. */
void worker_ca_done(struct ca_ctx *c, const char *err);

/* The agents of the config, or the local one at <state-dir>/agent.sock:
 * when nothing answers there and spawn is set, hacme-spoa is started on
 * spoa-listen. */
int worker_agents(struct worker *w, bool spawn);
/* Frees the agents and every solver. */
void worker_agents_free(struct worker *w);
/* The solver of each of c's domains into out[c->ndomains]; 0, or -1 with
 * err (a dns section whose TSIG secret cannot be read...). */
int worker_cert_solvers(struct worker *w, const struct config_cert *c, struct solver **out,
    char *err, size_t errlen);
/* A new config (SIGHUP, agents kept): the DNS solvers of dns sections
 * unchanged in nc move to their new place, the others are freed (the
 * orders that used them were cancelled: config_cert_same). Before w->cfg
 * becomes nc. */
void worker_solvers_remap(struct worker *w, const struct config *nc);
/* Starts the local hacme-spoa and waits (up to 5 s) for its control
 * socket. 0 or -1 (printed). */
int worker_child_spawn(struct worker *w);
void worker_child_stop(struct worker *w);

/* The variant directory of key k in cert c: the RSA half of a dual
 * certificate lives under rsa/. */
const char *worker_variant(const struct config_cert *c, int k);

/* True when the stored meta names exactly c's domains (any order, case). */
bool worker_same_names(const struct store_meta *m, const struct config_cert *c);
/* Loads every stored variant of name (NULL, then "rsa") into sc[], their
 * names into vn[]: the count (0: nothing stored). Free each sc[i]. */
size_t worker_load_variants(struct worker *w, const char *name, struct store_cert sc[2],
    const char *vn[2]);

double now_mono(void);
void fmt_time(time_t t, char *out, size_t len);	/* RFC 3339 UTC */

#endif
