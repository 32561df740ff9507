/* cluster.h - what cluster mode (`store redis://` or `sentinel://`) adds
 * beside the state backend (acme/backend.h, backend_redis.c): the nodes and
 * their heartbeats, and http-01 tokens that every live node answers.
 *
 * Keys (prefix hacme:):
 *   node:<name>      this node's heartbeat, JSON, expires after
 *                    CLUSTER_HEARTBEAT_TTL (a node is live while it exists)
 *   nodes            set of node names ever seen (pruned when not live)
 *   tok:<token>      "<keyauth> <host|*>", expires with the token
 *   toks             zset token -> expiry (ms): what a (re)connecting node reads
 *   ack:<token>      set of the nodes whose agents hold the token
 *   lock:<id>        "<node> <fence>", PX CLUSTER_LOCK_TTL, renewed while held
 *   fence:<id>       INCR counter of grants
 *   cert:<id>        hash: fence serial not_before meta chain key (sealed) by
 *   sched            hash id -> schedule.json member
 *   acct:<ca>        the account key, sealed
 * Channel hacme:ev: "tok T", "ack T NODE", "untok T", "cert NAME". */
#ifndef HACME_CLUSTER_H
#define HACME_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

struct backend;
struct agentctl;
struct cluster;
struct solver;
struct ev_loop;

#define CLUSTER_HEARTBEAT 2.0		/* seconds between heartbeats */
#define CLUSTER_HEARTBEAT_TTL 6000	/* ms a heartbeat lives */
#define CLUSTER_LOCK_TTL 15000		/* ms; renewed every third of it */
#define CLUSTER_ACK_WAIT 10.0		/* seconds to wait for every live node */

/* The cluster of a Redis backend, NULL for another backend. */
struct cluster *backend_cluster(struct backend *b);

/* The agents this node adds published tokens to (borrowed; NULL: none). */
void cluster_set_agents(struct cluster *cl, struct agentctl *agents);

/* Writes the token (label: the order's, for messages), publishes it and calls cb once every live node's
 * agents hold it (err NULL), or after CLUSTER_ACK_WAIT with a warning
 * naming the nodes that did not (err NULL too: the CA may still reach the
 * others); err when Redis is down. 0, or -1 with err (no callback). */
int cluster_token_publish(struct cluster *cl, const char *label, const char *token,
    const char *keyauth, unsigned ttl, const char *host,
    void (*cb)(void *arg, const char *err), void *arg, char *err, size_t errlen);
/* No callback for arg any more. */
void cluster_token_cancel(struct cluster *cl, void *arg);
/* Deletes it everywhere (this node's agents at once). */
void cluster_token_withdraw(struct cluster *cl, const char *token);

/* Node name, Redis commands sent, certificates taken from the store, up. */
const char *cluster_node(const struct cluster *cl);
unsigned long cluster_commands(const struct cluster *cl);
unsigned long cluster_pulls(const struct cluster *cl);
bool cluster_up(const struct cluster *cl);

/* http-01 for a cluster (solver_cluster.c): prepare as inner does, present
 * through cluster_token_publish, cleanup withdraws. inner is borrowed. */
struct solver *solver_cluster_new(struct cluster *cl, struct solver *inner);

#endif
