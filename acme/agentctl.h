/* agentctl.h - the worker's client for the agents' control sockets
 * (DESIGN.md "Control protocol"), on the worker's libev loop.
 *
 * A set holds any number of agents (hacme-spoa processes), one persistent
 * connection each, reconnected with exponential backoff when it drops.
 * Requests to an agent are pipelined and answered in order; each has a
 * deadline (opts.timeout): an agent that misses it is disconnected.
 *
 * The set remembers every token it published, until it is unpublished or
 * its TTL passes. Whenever a connection to an agent is (re)established and
 * the agent answers PING, every remembered token is ADDed to it again with
 * its remaining TTL: an agent that restarts, or comes back after failing,
 * answers every pending challenge again without the worker doing anything.
 *
 * Callbacks run from the loop only, never from inside the call that started
 * the request. Error texts are one line naming each agent that failed:
 *   "agent unix@/run/hacme/agent.sock: connect: No such file or directory"
 *   "agent 127.0.0.1:9000: ERR bad key authorization; agent ...: timeout"
 * Strings from the agents are escaped. */
#ifndef HACME_AGENTCTL_H
#define HACME_AGENTCTL_H

#include <stdbool.h>
#include <stddef.h>

struct ev_loop;
struct addr;
struct agentctl;
struct agentctl_agent;

#define AGENTCTL_HOST_MAX 253	/* bytes of a host name given to publish */
#define AGENTCTL_TTL_MAX 86400	/* seconds, as the agent accepts */

struct agentctl_opts {
	double timeout;		/* seconds for a reply, and for a connect; 0: 5 */
	double backoff_min;	/* first reconnect delay, seconds; 0: 0.2 */
	double backoff_max;	/* doubling up to this; 0: 30 */
	double ping_interval;	/* PING idle agents this often; 0: 30; < 0: never */
	size_t max_tokens;	/* tokens remembered at most; 0: 100000 */
};

struct agentctl_kv {		/* one STATS line */
	const char *key;
	const char *value;
};

struct agentctl_entry {		/* one LIST line */
	const char *token;
	const char *keyauth;
	long seconds_left;
	const char *host;	/* NULL when the token is for any host */
};

/* NULL on no memory. */
struct agentctl *agentctl_new(struct ev_loop *loop, const struct agentctl_opts *opts);

/* Closes every connection and frees the set. Callbacks of requests still
 * pending are NOT called. NULL is a no-op. May be called from a callback. */
void agentctl_free(struct agentctl *set);

/* Adds an agent (the address is copied) and starts connecting to it.
 * NULL on no memory. */
struct agentctl_agent *agentctl_add(struct agentctl *set, const struct addr *addr);

/* The agent's address as configured, for messages. */
const char *agentctl_agent_name(const struct agentctl_agent *a);

/* Connected and answered PING (the remembered tokens were re-added). */
bool agentctl_agent_up(const struct agentctl_agent *a);

/* ADDs token to every agent and remembers it for ttl seconds (1..86400);
 * host (NULL or "" for any) restricts it to that Host header. cb runs once:
 * err NULL when every agent answered OK, else the failures. The token stays
 * remembered also when some agent failed (it gets the token when it comes
 * back): call agentctl_unpublish to give up on it.
 * 0, or -1 without a callback: EINVAL (a token, key authorization, TTL or
 * host that is not valid: nothing is sent), ENOSPC (max_tokens reached),
 * ENOMEM. With no agent configured, cb gets an error. */
int agentctl_publish(struct agentctl *set, const char *token, const char *keyauth,
    unsigned ttl, const char *host, void (*cb)(void *arg, const char *err), void *arg);

/* DELs token from every agent and forgets it. As agentctl_publish. */
int agentctl_unpublish(struct agentctl *set, const char *token,
    void (*cb)(void *arg, const char *err), void *arg);

/* Every token published or withdrawn from now on is written to j
 * (acme/tokjournal.h; borrowed, outlives the set), so that a crash leaves
 * a record of what the next start must withdraw. */
struct tokjournal;
void agentctl_journal(struct agentctl *set, struct tokjournal *j);

/* PINGs every agent: err NULL when all answered PONG. */
int agentctl_ping(struct agentctl *set, void (*cb)(void *arg, const char *err), void *arg);

/* STATS of one agent. kv (n pairs) lives until cb returns; on error it is
 * NULL and err says why. */
int agentctl_stats(struct agentctl_agent *a,
    void (*cb)(void *arg, const char *err, const struct agentctl_kv *kv, size_t n),
    void *arg);

/* LIST of one agent, as agentctl_stats. */
int agentctl_list(struct agentctl_agent *a,
    void (*cb)(void *arg, const char *err, const struct agentctl_entry *e, size_t n),
    void *arg);

/* Tokens remembered now (expired ones are forgotten first). */
size_t agentctl_published(struct agentctl *set);

#endif
