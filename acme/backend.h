/* backend.h - where hacme's state is shared (DESIGN.md "Seams"): accounts,
 * certificates, schedule and the lock that makes one order per
 * certificate. Each node keeps its own state dir (acme/store.h) as the
 * copy it serves from; a backend says how that copy is shared.
 *
 *   directory (backend_dir.c): the state dir alone. Locks are granted at
 *     once (`hacme run` holds <state-dir>/run.lock: one daemon per dir),
 *     nothing is shared, the schedule is the dir's schedule.json.
 *   redis (backend_redis.c, `store redis://...` or `sentinel://...`):
 *     certificates, account keys and schedule entries in Redis, a lock per
 *     certificate with a fencing token, changes published to every node.
 *
 * Every call is made on the loop; callbacks run from the loop, never from
 * inside the call that started them. */
#ifndef HACME_BACKEND_H
#define HACME_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct config;
struct store;
struct backend;
struct backend_lock;

#define BACKEND_ERR_MAX 512

/* What a lock request gets. Strings live until the callback returns. */
struct backend_grant {
	const char *err;	/* NULL: held */
	const char *held_by;	/* another node holds it (err says so), or NULL */
	uint64_t fence;		/* > 0 when held: grows with every grant of this
				 * lock; a store under a lower fence than the last
				 * one is refused */
	const char *sched;	/* the shared schedule entry of id (schedule.json's
				 * member, a JSON object), NULL: none shared */
	bool pulled;		/* a newer certificate was put in the local store */
};

typedef void backend_lock_cb(void *arg, const struct backend_grant *g);

struct backend_ops {
	const char *kind;	/* "directory", "redis" */
	void (*free)(struct backend *b);
	/* The shared state into the local store before anything is ordered
	 * (account keys, certificates); cb err: could not (the node goes on
	 * with what it has). 0: cb comes; 1: nothing to do, no callback. */
	int (*sync)(struct backend *b, void (*cb)(void *arg, const char *err), void *arg);
	/* Takes id's lock ("name" or "name/rsa"); the grant brings the shared
	 * schedule entry and, first, a newer shared certificate into the local
	 * store. NULL on no memory. */
	struct backend_lock *(*lock)(struct backend *b, const char *id, backend_lock_cb *cb,
	    void *arg);
	/* A lock request not answered yet: no callback; a lock it got is released. */
	void (*lock_cancel)(struct backend_lock *l);
	/* Releases id's lock if fence still holds it (compare-and-delete). */
	void (*unlock)(struct backend *b, const char *id, uint64_t fence);
	/* certs/<name>[/variant] was saved in the local store under fence: share it. */
	void (*cert_saved)(struct backend *b, const char *name, const char *variant,
	    uint64_t fence);
	/* id's renewal state changed (failures, backoff, budget, moment): the
	 * schedule.json member as JSON, shared for the next holder's grant. */
	void (*sched_put)(struct backend *b, const char *id, const char *json);
};

struct backend {
	const struct backend_ops *ops;
	struct ev_loop *loop;
	struct store *st;	/* the local copy (borrowed) */
	const struct config *cfg;	/* the owner keeps it current (SIGHUP) */
	/* set by the owner: a certificate that another node stored is now in
	 * the local store: deploy it. */
	void (*changed)(void *owner, const char *name);
	/* what this node serves, a JSON array (malloc'd), for its heartbeat */
	char *(*serving)(void *owner);
	void *owner;
};

/* The backend the config asks for: the directory one without `store`.
 * NULL with err naming the setting. */
struct backend *backend_new(struct ev_loop *loop, const struct config *cfg, struct store *st,
    char *err, size_t errlen);
struct backend *backend_dir_new(struct ev_loop *loop, struct store *st);
/* backend_redis.c; NULL with err. */
struct backend *backend_redis_new(struct ev_loop *loop, const struct config *cfg,
    struct store *st, char *err, size_t errlen);

static inline void
backend_free(struct backend *b)
{
	if (b != NULL)
		b->ops->free(b);
}

#endif
