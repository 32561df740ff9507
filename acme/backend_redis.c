/* backend_redis.c - the Redis (Valkey) backend: hacme on a cluster.
 * Keys and messages: acme/cluster.h. Two connections (acme/redis.h): one
 * for commands, one subscribed to hacme:ev.
 *
 * Each node keeps its own state dir as the copy it serves from; Redis holds
 * the shared copy. A certificate goes to Redis after the ordering node
 * checked and stored it (run.c), under its lock's fence (a Lua script
 * refuses a fence not above the stored one, or a lock now held by another);
 * every node pulls it (chain parsed, names as configured, not expired, the
 * sealed key opens and matches the leaf), saves it in its own state dir and
 * deploys it through run.c. After Redis comes back, each configured
 * certificate is compared: the newer copy (notBefore) wins, a local one is
 * pushed under a fresh lock. */
#include "acme/backend.h"
#include "acme/cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <ev.h>
#include <hiredis/hiredis.h>

#include "acme/agentctl.h"
#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/redis.h"
#include "acme/seal.h"
#include "acme/store.h"
#include "acme/storeurl.h"
#include "acme/worker.h"
#include "common/atomicfile.h"
#include "common/log.h"
#include "common/token.h"

#define CHANNEL "hacme:ev"
#define ID_MAX (CONFIG_NAME_MAX + 8)
#define SYNC_WAIT 5.0		/* seconds a starting node waits for Redis */
#define ACK_POLL 0.25		/* seconds between checks of the live nodes' acks */

/* KEYS: lock fence sched cert; ARGV: node ttl id -> {fence, holder, sched, serial} */
static const char LOCK_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then return {0, cur} end\n"
    "local f = redis.call('INCR', KEYS[2])\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. f, 'PX', ARGV[2])\n"
    "return {f, '', redis.call('HGET', KEYS[3], ARGV[3]) or '',\n"
    "  redis.call('HGET', KEYS[4], 'serial') or ''}\n";
/* KEYS: lock; ARGV: value [ttl]: compare-and-delete, or compare-and-renew */
static const char UNLOCK_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";
static const char RENEW_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
    "return 0\n";
/* KEYS: cert lock; ARGV: fence lockvalue serial not_before meta chain key node name */
static const char PUT_LUA[] =
    "local cur = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')\n"
    "if tonumber(ARGV[1]) <= cur then return 0 end\n"
    "local h = redis.call('GET', KEYS[2])\n"
    "if h and h ~= ARGV[2] then return -1 end\n"
    "redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'serial', ARGV[3], 'not_before', ARGV[4],\n"
    "  'meta', ARGV[5], 'chain', ARGV[6], 'key', ARGV[7], 'by', ARGV[8])\n"
    "redis.call('PUBLISH', '" CHANNEL "', 'cert ' .. ARGV[9])\n"
    "return 1\n";
/* KEYS: tok toks ack; ARGV: token value ttl_ms expiry_ms */
static const char TOK_LUA[] =
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])\n"
    "redis.call('DEL', KEYS[3])\n"
    "return redis.call('PUBLISH', '" CHANNEL "', 'tok ' .. ARGV[1])\n";
static const char UNTOK_LUA[] =
    "redis.call('DEL', KEYS[1], KEYS[3])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "return redis.call('PUBLISH', '" CHANNEL "', 'untok ' .. ARGV[1])\n";
/* KEYS: ack; ARGV: token node ttl_ms */
static const char ACK_LUA[] =
    "redis.call('SADD', KEYS[1], ARGV[2])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "return redis.call('PUBLISH', '" CHANNEL "', 'ack ' .. ARGV[1] .. ' ' .. ARGV[2])\n";
/* KEYS: nodes ack -> the live nodes that have not acknowledged */
static const char MISSING_LUA[] =
    "local missing = {}\n"
    "for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  if redis.call('EXISTS', 'hacme:node:' .. n) == 1 then\n"
    "    if redis.call('SISMEMBER', KEYS[2], n) == 0 then table.insert(missing, n) end\n"
    "  end\n"
    "end\n"
    "return missing\n";

struct cluster;

struct held {			/* a lock this node holds */
	struct held *next;
	char id[ID_MAX];
	char value[96];
	uint64_t fence;
};

struct backend_lock {
	struct backend_lock *next;
	struct cluster *cl;
	char id[ID_MAX];
	backend_lock_cb *cb;
	void *arg;
	bool cancelled;
	uint64_t fence;
	char holder[96];
	char *sched;
	bool pulled;
	ev_timer later;		/* an error told from the loop */
	char err[BACKEND_ERR_MAX];
};

struct pres {			/* a token waiting for every live node */
	struct pres *next;
	struct cluster *cl;
	char token[TOKEN_MAX + 1];
	char label[64];		/* the order's, for messages */
	char value[800];	/* "<keyauth> <host|*>" */
	unsigned ttl;
	double expires;		/* the token's, ev_time() */
	void (*cb)(void *, const char *);
	void *arg;
	double deadline, last_deadline;	/* the wait, and how far a reconnect extends it */
	ev_timer poll;
	bool asking;
	bool gone;		/* answered or cancelled: freed by the reply */
};

struct cluster {
	struct backend b;
	struct redis *cmd, *sub;
	struct seal_keys keys;
	char node[CONFIG_NAME_MAX + 1];
	struct agentctl *agents;
	struct held *held;
	struct backend_lock *locks;
	struct pres *pres;
	ev_timer heartbeat, renew, sync_timer;
	void (*sync_cb)(void *, const char *);
	void *sync_arg;
	unsigned sync_pending;
	bool synced_once;
	unsigned long pulls;
};

static struct cluster *
CL(struct backend *b)
{
	return (struct cluster *)b;
}

static void
ignore_reply(void *arg, redisReply *reply, const char *err)
{
	(void)reply;
	if (err != NULL && arg != NULL)
		log_warn("%s: %s", (const char *)arg, err);
}

static int
eval(struct cluster *cl, redis_cb *cb, void *arg, const char *script, int nkeys,
    const char *const *args, int nargs)
{
	const char *argv[16];
	size_t lens[16];
	char nk[8];
	int n = 0;

	if (nargs + 3 > 16)
		return -1;
	snprintf(nk, sizeof nk, "%d", nkeys);
	argv[n++] = "EVAL";
	argv[n++] = script;
	argv[n++] = nk;
	for (int i = 0; i < nargs; i++)
		argv[n++] = args[i];
	for (int i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	return redis_cmd(cl->cmd, cb, arg, n, argv, lens);
}

static void
key_of(char *out, size_t len, const char *kind, const char *id)
{
	snprintf(out, len, "hacme:%s:%s", kind, id);
}

static void
id_of(char *out, size_t len, const char *name, const char *variant)
{
	snprintf(out, len, "%s%s%s", name, variant ? "/" : "", variant ? variant : "");
}

/* ---- pulling and pushing certificates ---- */

static const struct config_cert *
cert_of(struct cluster *cl, const char *id, const char **variant)
{
	const struct config *cfg = cl->b.cfg;
	char name[ID_MAX];
	const char *slash;

	snprintf(name, sizeof name, "%s", id);
	slash = strchr(id, '/');
	if (slash != NULL)
		name[slash - id] = '\0';
	*variant = slash != NULL ? slash + 1 : NULL;
	if (*variant != NULL && strcmp(*variant, "rsa") != 0)
		return NULL;
	return cfg != NULL ? config_find_cert(cfg, name) : NULL;
}

struct pull {
	struct cluster *cl;
	char id[ID_MAX];
	void (*done)(struct pull *p, bool changed);
	void *arg;
};

/* The shared copy of p->id into the local store, when it is good and newer.
 * rr: HMGET serial not_before meta chain key. True when it was saved. */
static bool
pull_apply(struct cluster *cl, const char *id, redisReply *rr)
{
	const char *variant;
	const struct config_cert *c = cert_of(cl, id, &variant);
	struct crypto_cert_info ci = { 0 };
	struct store_cert cur = { 0 };
	struct crypto_key *k = NULL;
	struct store_meta m = { 0 };
	char cerr[CRYPTO_ERR_MAX], serr[STORE_ERR_MAX], key[ID_MAX + 16];
	char *pem = NULL;
	size_t pemlen = 0;
	bool old = false, saved = false;

	if (c == NULL || rr == NULL || rr->type != REDIS_REPLY_ARRAY || rr->elements != 5)
		return false;
	for (size_t i = 0; i < 5; i++)
		if (rr->element[i]->type != REDIS_REPLY_STRING)
			return false;	/* nothing shared yet */
	key_of(key, sizeof key, "cert", id);
	if (store_cert_load(cl->b.st, c->name, variant, &cur, serr, sizeof serr) == 0 &&
	    cur.meta.serial != NULL && strcmp(cur.meta.serial, rr->element[0]->str) == 0)
		goto out;	/* the same one */
	const char *chain = rr->element[3]->str;
	size_t chainlen = rr->element[3]->len;
	if (crypto_cert_info(chain, chainlen, &ci, cerr, sizeof cerr) < 0) {
		log_err("%s: shared certificate: %s", key, cerr);
		goto out;
	}
	if (strcmp(ci.serial, rr->element[0]->str) != 0 || !worker_same_names(&(struct store_meta){ .names = ci.names, .nnames = ci.nnames }, c) ||
	    ci.not_after <= time(NULL) || ci.key != c->keys[variant != NULL ? 1 : 0]) {
		log_err("%s: shared certificate %s does not match cert %s as configured here "
		    "(names, key type or dates): not taken", key, ci.serial, c->name);
		goto out;
	}
	if (cur.meta.serial != NULL && cur.meta.not_before > ci.not_before)
		goto out;	/* ours is newer: pushed by sync */
	if (unseal(&cl->keys, rr->element[4]->str, key, &pem, &pemlen, &old, cerr,
	    sizeof cerr) < 0) {
		log_err("%s", cerr);
		goto out;
	}
	if ((k = crypto_key_from_pem(pem, pemlen, cerr, sizeof cerr)) == NULL ||
	    !crypto_cert_matches_key(chain, chainlen, k)) {
		log_err("%s: the shared key does not match the certificate: not taken", key);
		goto out;
	}
	m.names = c->domains;
	m.nnames = c->ndomains;
	m.key_type = (char *)keytype_name(ci.key);
	m.serial = ci.serial;
	m.not_before = ci.not_before;
	m.not_after = ci.not_after;
	m.issuer = ci.issuer_cn;
	m.ca = c->ca->name;
	m.directory = c->ca->directory;
	m.ari_id = ci.ari_id;
	m.issued = time(NULL);
	cJSON *meta = cJSON_Parse(rr->element[2]->str);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, "order_url");
	if (cJSON_IsString(v))
		m.order_url = v->valuestring;
	v = cJSON_GetObjectItemCaseSensitive(meta, "cert_url");
	if (cJSON_IsString(v))
		m.cert_url = v->valuestring;
	if (store_lock(cl->b.st, true, serr, sizeof serr) < 0 ||
	    store_cert_save(cl->b.st, c->name, variant, &m, pem, pemlen, chain, chainlen, serr,
	    sizeof serr) < 0)
		log_err("%s: %s", key, serr);
	else
		saved = true;
	store_unlock(cl->b.st);
	cJSON_Delete(meta);
	if (saved) {
		cl->pulls++;
		log_info("%s: certificate %s taken from the store", id, ci.serial);
	}
	if (saved && old) {
		/* sealed with an old key: seal it again with the first one */
		char *blob = seal(&cl->keys, pem, pemlen, key);
		const char *a[] = { key, "key", blob };
		if (blob != NULL)
			redis_cmd(cl->cmd, ignore_reply, NULL, 4,
			    (const char *[]){ "HSET", a[0], a[1], a[2] },
			    (const size_t[]){ 4, strlen(a[0]), 3, strlen(blob) });
		free(blob);
	}
out:
	if (pem != NULL)
		crypto_wipe_free(pem, pemlen);
	crypto_key_free(k);
	crypto_cert_info_free(&ci);
	store_cert_free(&cur);
	return saved;
}

static void
pull_reply(void *arg, redisReply *rr, const char *err)
{
	struct pull *p = arg;
	bool changed = false;

	if (err != NULL)
		log_warn("%s: %s", p->id, err);
	else
		changed = pull_apply(p->cl, p->id, rr);
	p->done(p, changed);
	free(p);
}

static int
pull_start(struct cluster *cl, const char *id, void (*done)(struct pull *, bool), void *arg)
{
	struct pull *p = calloc(1, sizeof *p);
	char key[ID_MAX + 16];

	if (p == NULL)
		return -1;
	p->cl = cl;
	snprintf(p->id, sizeof p->id, "%s", id);
	p->done = done;
	p->arg = arg;
	key_of(key, sizeof key, "cert", id);
	if (redis_cmdf(cl->cmd, pull_reply, p, "HMGET %s serial not_before meta chain key",
	    key) < 0) {
		free(p);
		return -1;
	}
	return 0;
}

static void
pulled_notify(struct pull *p, bool changed)
{
	struct cluster *cl = p->cl;
	char name[ID_MAX];

	if (!changed || cl->b.changed == NULL)
		return;
	snprintf(name, sizeof name, "%s", p->id);
	char *slash = strchr(name, '/');
	if (slash != NULL)
		*slash = '\0';
	cl->b.changed(cl->b.owner, name);
}

/* Seals the local certificate of id and stores it under fence/value. */
static void
push(struct cluster *cl, const char *id, uint64_t fence, const char *value,
    redis_cb *cb, void *arg)
{
	const char *variant;
	const struct config_cert *c = cert_of(cl, id, &variant);
	struct store_cert sc = { 0 };
	char serr[STORE_ERR_MAX], key[ID_MAX + 16], lock[ID_MAX + 16], f[24], nb[24];
	char *blob = NULL, *meta = NULL;
	cJSON *mj = NULL;

	if (c == NULL || store_cert_load(cl->b.st, c->name, variant, &sc, serr, sizeof serr) < 0 ||
	    sc.meta.serial == NULL) {
		cb(arg, NULL, "not stored here");
		goto out;
	}
	key_of(key, sizeof key, "cert", id);
	key_of(lock, sizeof lock, "lock", id);
	snprintf(f, sizeof f, "%llu", (unsigned long long)fence);
	snprintf(nb, sizeof nb, "%lld", (long long)sc.meta.not_before);
	if ((mj = cJSON_CreateObject()) == NULL ||
	    (blob = seal(&cl->keys, sc.key_pem, sc.key_len, key)) == NULL) {
		cb(arg, NULL, "out of memory");
		goto out;
	}
	cJSON_AddStringToObject(mj, "serial", sc.meta.serial);
	if (sc.meta.order_url != NULL)
		cJSON_AddStringToObject(mj, "order_url", sc.meta.order_url);
	if (sc.meta.cert_url != NULL)
		cJSON_AddStringToObject(mj, "cert_url", sc.meta.cert_url);
	cJSON_AddStringToObject(mj, "by", cl->node);
	meta = cJSON_PrintUnformatted(mj);
	const char *args[] = { key, lock, f, value, sc.meta.serial, nb, meta ? meta : "{}",
	    sc.chain_pem, blob, cl->node, c->name };
	if (eval(cl, cb, arg, PUT_LUA, 2, args, 11) < 0)
		cb(arg, NULL, "store down");
out:
	free(blob);
	free(meta);
	cJSON_Delete(mj);
	store_cert_free(&sc);
}

/* ---- locks ---- */

static struct held *
held_find(struct cluster *cl, const char *id, struct held ***pp)
{
	struct held **p = &cl->held;

	for (; *p != NULL; p = &(*p)->next)
		if (strcmp((*p)->id, id) == 0) {
			if (pp != NULL)
				*pp = p;
			return *p;
		}
	return NULL;
}

static void
lock_unlink(struct backend_lock *l)
{
	for (struct backend_lock **p = &l->cl->locks; *p != NULL; p = &(*p)->next)
		if (*p == l) {
			*p = l->next;
			break;
		}
}

static void
lock_finish(struct backend_lock *l, const char *err, const char *held_by)
{
	struct backend_grant g = { .err = err, .held_by = held_by,
	    .fence = err == NULL ? l->fence : 0, .sched = l->sched, .pulled = l->pulled };

	lock_unlink(l);
	if (!l->cancelled)
		l->cb(l->arg, &g);
	free(l->sched);
	free(l);
}

static void redis_unlock(struct backend *b, const char *id, uint64_t fence);

static void
lock_pulled(struct pull *p, bool changed)
{
	struct backend_lock *l = p->arg;

	l->pulled = changed;
	if (l->cancelled) {
		redis_unlock(&l->cl->b, l->id, l->fence);
		lock_unlink(l);
		free(l->sched);
		free(l);
		return;
	}
	lock_finish(l, NULL, NULL);
}

static void
lock_reply(void *arg, redisReply *rr, const char *err)
{
	struct backend_lock *l = arg;
	struct cluster *cl = l->cl;
	char msg[BACKEND_ERR_MAX];

	if (err != NULL || rr->type != REDIS_REPLY_ARRAY || rr->elements < 2 ||
	    rr->element[0]->type != REDIS_REPLY_INTEGER) {
		snprintf(msg, sizeof msg, "%s", err != NULL ? err : "store: unexpected reply to the lock");
		lock_finish(l, msg, NULL);
		return;
	}
	if (rr->element[0]->integer == 0) {
		char who[96];
		snprintf(who, sizeof who, "%s", rr->element[1]->type == REDIS_REPLY_STRING ?
		    rr->element[1]->str : "?");
		char *sp = strrchr(who, ' ');
		if (sp != NULL)
			*sp = '\0';
		snprintf(msg, sizeof msg, "node %s holds the lock (ordering it): waiting for it",
		    who);
		lock_finish(l, msg, who);
		return;
	}
	l->fence = (uint64_t)rr->element[0]->integer;
	struct held *h = calloc(1, sizeof *h);
	if (h != NULL) {
		snprintf(h->id, sizeof h->id, "%s", l->id);
		snprintf(h->value, sizeof h->value, "%s %llu", cl->node,
		    (unsigned long long)l->fence);
		h->fence = l->fence;
		h->next = cl->held;
		cl->held = h;
	}
	if (rr->elements >= 4 && rr->element[2]->type == REDIS_REPLY_STRING &&
	    rr->element[2]->len > 0)
		l->sched = strdup(rr->element[2]->str);
	/* a shared certificate: take it first when it is not ours */
	if (rr->elements >= 4 && rr->element[3]->type == REDIS_REPLY_STRING &&
	    rr->element[3]->len > 0 && pull_start(cl, l->id, lock_pulled, l) == 0)
		return;
	if (l->cancelled) {
		lock_pulled(&(struct pull){ .cl = cl, .arg = l }, false);
		return;
	}
	lock_finish(l, NULL, NULL);
}

static void
lock_later(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct backend_lock *l = w->data;

	lock_finish(l, l->err, NULL);
}

static struct backend_lock *
redis_lock(struct backend *b, const char *id, backend_lock_cb *cb, void *arg)
{
	struct cluster *cl = CL(b);
	struct backend_lock *l = calloc(1, sizeof *l);
	char lk[ID_MAX + 16], fk[ID_MAX + 16], ck[ID_MAX + 16], ttl[16];

	if (l == NULL)
		return NULL;
	l->cl = cl;
	snprintf(l->id, sizeof l->id, "%s", id);
	l->cb = cb;
	l->arg = arg;
	l->next = cl->locks;
	cl->locks = l;
	key_of(lk, sizeof lk, "lock", id);
	key_of(fk, sizeof fk, "fence", id);
	key_of(ck, sizeof ck, "cert", id);
	snprintf(ttl, sizeof ttl, "%d", CLUSTER_LOCK_TTL);
	const char *args[] = { lk, fk, "hacme:sched", ck, cl->node, ttl, id };
	if (eval(cl, lock_reply, l, LOCK_LUA, 4, args, 7) < 0) {
		const char *why = redis_error(cl->cmd);
		snprintf(l->err, sizeof l->err, "store %s is down (%s): retrying", redis_where(cl->cmd),
		    why[0] != '\0' ? why : "not connected");
		ev_timer_init(&l->later, lock_later, 0., 0.);
		l->later.data = l;
		ev_timer_start(b->loop, &l->later);
	}
	return l;
}

static void
redis_lock_cancel(struct backend_lock *l)
{
	if (l == NULL)
		return;
	if (ev_is_active(&l->later)) {
		ev_timer_stop(l->cl->b.loop, &l->later);
		lock_unlink(l);
		free(l);
		return;
	}
	l->cancelled = true;	/* the reply frees it (and releases a grant) */
}

static void
redis_unlock(struct backend *b, const char *id, uint64_t fence)
{
	struct cluster *cl = CL(b);
	struct held **pp, *h = held_find(cl, id, &pp);
	char lk[ID_MAX + 16];

	if (h == NULL || h->fence != fence)
		return;
	*pp = h->next;
	key_of(lk, sizeof lk, "lock", id);
	const char *args[] = { lk, h->value };
	eval(cl, ignore_reply, NULL, UNLOCK_LUA, 1, args, 2);
	free(h);
}

static void
renew_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct cluster *cl = w->data;
	char lk[ID_MAX + 16], ttl[16];

	snprintf(ttl, sizeof ttl, "%d", CLUSTER_LOCK_TTL);
	for (struct held *h = cl->held; h != NULL; h = h->next) {
		key_of(lk, sizeof lk, "lock", h->id);
		const char *args[] = { lk, h->value, ttl };
		eval(cl, ignore_reply, NULL, RENEW_LUA, 1, args, 3);
	}
}

/* ---- certificates, schedule ---- */

struct putq {
	struct cluster *cl;
	char id[ID_MAX];
};

static void
put_reply(void *arg, redisReply *rr, const char *err)
{
	struct putq *q = arg;

	if (err != NULL)
		log_warn("%s: not shared (%s): shared when the store is back", q->id, err);
	else if (rr->type == REDIS_REPLY_INTEGER && rr->integer == 0)
		log_warn("%s: the store holds a certificate of a later lock: ours is not shared",
		    q->id);
	else if (rr->type == REDIS_REPLY_INTEGER && rr->integer < 0)
		log_warn("%s: another node holds the lock now: ours is not shared", q->id);
	else
		log_info("%s: certificate shared", q->id);
	free(q);
}

static void
redis_cert_saved(struct backend *b, const char *name, const char *variant, uint64_t fence)
{
	struct cluster *cl = CL(b);
	struct putq *q = calloc(1, sizeof *q);
	struct held *h;

	if (q == NULL)
		return;
	q->cl = cl;
	id_of(q->id, sizeof q->id, name, variant);
	h = held_find(cl, q->id, NULL);
	push(cl, q->id, fence, h != NULL ? h->value : "", put_reply, q);
}

static void
redis_sched_put(struct backend *b, const char *id, const char *json)
{
	struct cluster *cl = CL(b);

	redis_cmdf(cl->cmd, ignore_reply, NULL, "HSET hacme:sched %s %s", id, json);
}

/* ---- sync: account keys and certificates ---- */

static void
sync_step_done(struct cluster *cl)
{
	if (cl->sync_pending > 0 && --cl->sync_pending == 0 && cl->sync_cb != NULL) {
		void (*cb)(void *, const char *) = cl->sync_cb;
		cl->sync_cb = NULL;
		ev_timer_stop(cl->b.loop, &cl->sync_timer);
		cb(cl->sync_arg, NULL);
	}
}

struct acct {
	struct cluster *cl;
	char ca[CONFIG_NAME_MAX + 1];
	enum keytype type;
	bool setnx;
};

static void
acct_path_unlink(struct cluster *cl, const char *ca)
{
	char path[4200];

	snprintf(path, sizeof path, "%s/account/%s/account.json", cl->b.st->dir, ca);
	unlink(path);
}

static void acct_reply(void *arg, redisReply *rr, const char *err);

/* The shared key wins: write it locally when it differs. */
static void
acct_take(struct acct *a, const char *blob)
{
	struct cluster *cl = a->cl;
	char key[CONFIG_NAME_MAX + 16], err[STORE_ERR_MAX], *pem = NULL, *cur = NULL;
	size_t len = 0, curlen = 0;
	bool old;

	key_of(key, sizeof key, "acct", a->ca);
	if (unseal(&cl->keys, blob, key, &pem, &len, &old, err, sizeof err) < 0) {
		log_err("%s", err);
		return;
	}
	if (old) {
		/* opened by an old key of store-key-file: sealed again with the first */
		char *blob2 = seal(&cl->keys, pem, len, key);
		if (blob2 != NULL)
			redis_cmdf(cl->cmd, ignore_reply, NULL, "SET %s %s XX", key, blob2);
		free(blob2);
	}
	if (store_account_key_load(cl->b.st, a->ca, &cur, &curlen, err, sizeof err) == 0 &&
	    curlen == len && memcmp(cur, pem, len) == 0)
		goto out;
	if (store_account_key_save(cl->b.st, a->ca, pem, len, err, sizeof err) < 0)
		log_err("ca %s: %s", a->ca, err);
	else {
		acct_path_unlink(cl, a->ca);
		log_notice("ca %s: account key taken from the store", a->ca);
	}
out:
	if (cur != NULL)
		crypto_wipe_free(cur, curlen);
	crypto_wipe_free(pem, len);
}

static void
acct_offer(struct acct *a)
{
	struct cluster *cl = a->cl;
	char key[CONFIG_NAME_MAX + 16], err[STORE_ERR_MAX], cerr[CRYPTO_ERR_MAX], *pem = NULL;
	size_t len = 0;
	struct crypto_key *k = NULL;

	key_of(key, sizeof key, "acct", a->ca);
	if (store_account_key_load(cl->b.st, a->ca, &pem, &len, err, sizeof err) < 0) {
		/* none here either: make the one every node will use */
		if ((k = crypto_key_generate(a->type, cerr, sizeof cerr)) == NULL ||
		    (pem = crypto_key_pem(k, &len)) == NULL ||
		    store_account_key_save(cl->b.st, a->ca, pem, len, err, sizeof err) < 0) {
			log_err("ca %s: account key: %s", a->ca, k == NULL ? cerr : err);
			goto fail;
		}
		acct_path_unlink(cl, a->ca);
	}
	char *blob = seal(&cl->keys, pem, len, key);
	a->setnx = true;
	if (blob == NULL || redis_cmdf(cl->cmd, acct_reply, a, "SET %s %s NX GET", key, blob) < 0) {
		free(blob);
		goto fail;
	}
	free(blob);
	crypto_wipe_free(pem, len);
	crypto_key_free(k);
	return;
fail:
	if (pem != NULL)
		crypto_wipe_free(pem, len);
	crypto_key_free(k);
	sync_step_done(cl);
	free(a);
}

static void
acct_reply(void *arg, redisReply *rr, const char *err)
{
	struct acct *a = arg;
	struct cluster *cl = a->cl;

	if (err != NULL) {
		log_warn("ca %s: account key: %s", a->ca, err);
	} else if (rr->type == REDIS_REPLY_STRING) {
		acct_take(a, rr->str);	/* shared before: it wins */
	} else if (!a->setnx) {
		acct_offer(a);	/* nothing shared: offer ours (SET NX) */
		return;
	}
	sync_step_done(cl);
	free(a);
}

static void
sync_pulled(struct pull *p, bool changed)
{
	pulled_notify(p, changed);
	sync_step_done(p->cl);
}

static void
sync_push_reply(void *arg, redisReply *rr, const char *err)
{
	put_reply(arg, rr, err);
}

/* After a lock granted for pushing a local certificate newer than Redis'. */
static void
sync_lock_granted(void *arg, const struct backend_grant *g)
{
	struct putq *q = arg;
	struct cluster *cl = q->cl;
	struct held *h;

	if (g->err == NULL && (h = held_find(cl, q->id, NULL)) != NULL) {
		char value[96];
		snprintf(value, sizeof value, "%s", h->value);
		uint64_t fence = g->fence;
		struct putq *p2 = calloc(1, sizeof *p2);
		if (p2 != NULL) {
			*p2 = *q;
			push(cl, q->id, fence, value, sync_push_reply, p2);
		}
		redis_unlock(&cl->b, q->id, fence);
	}
	free(q);
}

/* Every configured certificate: Redis' copy and ours, the newer wins. */
static void
sync_certs(struct cluster *cl)
{
	const struct config *cfg = cl->b.cfg;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->ncerts; i++)
		for (size_t k = 0; k < cfg->certs[i].nkeys; k++) {
			char id[ID_MAX];
			id_of(id, sizeof id, cfg->certs[i].name, k > 0 ? "rsa" : NULL);
			cl->sync_pending++;
			if (pull_start(cl, id, sync_pulled, NULL) < 0)
				cl->sync_pending--;
		}
}

/* Local certificates newer than the shared ones go up (after sync_certs). */
static void
push_newer_reply(void *arg, redisReply *rr, const char *err)
{
	struct putq *q = arg;
	struct cluster *cl = q->cl;
	const char *variant;
	const struct config_cert *c = cert_of(cl, q->id, &variant);
	struct store_cert sc = { 0 };
	char serr[STORE_ERR_MAX];

	if (err == NULL && c != NULL &&
	    store_cert_load(cl->b.st, c->name, variant, &sc, serr, sizeof serr) == 0 &&
	    sc.meta.serial != NULL &&
	    (rr->type != REDIS_REPLY_STRING || strtoll(rr->str, NULL, 10) < sc.meta.not_before)) {
		store_cert_free(&sc);
		if (redis_lock(&cl->b, q->id, sync_lock_granted, q) != NULL)
			return;
	}
	store_cert_free(&sc);
	free(q);
}

static void
push_newer(struct cluster *cl)
{
	const struct config *cfg = cl->b.cfg;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->ncerts; i++)
		for (size_t k = 0; k < cfg->certs[i].nkeys; k++) {
			struct putq *q = calloc(1, sizeof *q);
			char key[ID_MAX + 16];
			if (q == NULL)
				return;
			q->cl = cl;
			id_of(q->id, sizeof q->id, cfg->certs[i].name, k > 0 ? "rsa" : NULL);
			key_of(key, sizeof key, "cert", q->id);
			if (redis_cmdf(cl->cmd, push_newer_reply, q, "HGET %s not_before", key) < 0)
				free(q);
		}
}

static void
sync_run(struct cluster *cl)
{
	const struct config *cfg = cl->b.cfg;

	cl->sync_pending++;	/* held until everything is started */
	for (size_t i = 0; cfg != NULL && i < cfg->ncas; i++) {
		struct acct *a = calloc(1, sizeof *a);
		char key[CONFIG_NAME_MAX + 16];
		if (a == NULL)
			break;
		a->cl = cl;
		snprintf(a->ca, sizeof a->ca, "%s", cfg->cas[i].name);
		a->type = cfg->cas[i].account_key;
		key_of(key, sizeof key, "acct", a->ca);
		cl->sync_pending++;
		if (redis_cmdf(cl->cmd, acct_reply, a, "GET %s", key) < 0) {
			cl->sync_pending--;
			free(a);
		}
	}
	sync_certs(cl);
	push_newer(cl);
	sync_step_done(cl);
}

static void
sync_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct cluster *cl = w->data;
	char msg[BACKEND_ERR_MAX];

	if (cl->sync_cb == NULL)
		return;
	void (*cb)(void *, const char *) = cl->sync_cb;
	cl->sync_cb = NULL;
	snprintf(msg, sizeof msg, "store %s not reachable in %.0f s (%s): going on with the "
	    "local state dir", redis_where(cl->cmd), SYNC_WAIT, redis_error(cl->cmd));
	cb(cl->sync_arg, msg);
}

static int
redis_sync(struct backend *b, void (*cb)(void *, const char *), void *arg)
{
	struct cluster *cl = CL(b);

	cl->sync_cb = cb;
	cl->sync_arg = arg;
	ev_timer_set(&cl->sync_timer, SYNC_WAIT, 0.);
	ev_timer_start(b->loop, &cl->sync_timer);
	if (redis_up(cl->cmd) && redis_up(cl->sub)) {
		cl->synced_once = true;
		sync_run(cl);
	}
	return 0;
}

/* ---- tokens ---- */

static void
ack_reply(void *arg, redisReply *rr, const char *err)
{
	(void)rr;
	if (err != NULL)
		log_warn("token %s: acknowledging: %s", (char *)arg, err);
	free(arg);
}

struct tokadd {
	struct cluster *cl;
	char token[TOKEN_MAX + 1];
	long ttl_ms;
};

static void
tok_added(void *arg, const char *err)
{
	struct tokadd *t = arg;
	struct cluster *cl = t->cl;
	char ak[TOKEN_MAX + 16], ttl[24];

	if (err != NULL) {
		log_err("token %s: not acknowledged: this node's agents failed: %s", t->token, err);
		free(t);
		return;
	}
	key_of(ak, sizeof ak, "ack", t->token);
	snprintf(ttl, sizeof ttl, "%ld", t->ttl_ms > 0 ? t->ttl_ms : 60000);
	const char *args[] = { ak, t->token, cl->node, ttl };
	char *tok = strdup(t->token);
	if (tok == NULL || eval(cl, ack_reply, tok, ACK_LUA, 1, args, 4) < 0)
		free(tok);
	free(t);
}

/* GET tok + PTTL -> the agents -> ack */
static void
tok_value(void *arg, redisReply *rr, const char *err)
{
	struct tokadd *t = arg;
	struct cluster *cl = t->cl;

	if (err != NULL || rr->type != REDIS_REPLY_ARRAY || rr->elements != 2 ||
	    rr->element[0]->type != REDIS_REPLY_STRING ||
	    rr->element[1]->type != REDIS_REPLY_INTEGER || rr->element[1]->integer <= 0) {
		free(t);	/* gone (withdrawn or expired) */
		return;
	}
	char ka[600], host[AGENTCTL_HOST_MAX + 2];
	if (sscanf(rr->element[0]->str, "%599s %254s", ka, host) != 2) {
		free(t);
		return;
	}
	t->ttl_ms = (long)rr->element[1]->integer;
	unsigned ttl = (unsigned)((t->ttl_ms + 999) / 1000);
	if (cl->agents == NULL ||
	    agentctl_publish(cl->agents, t->token, ka, ttl > AGENTCTL_TTL_MAX ? AGENTCTL_TTL_MAX :
	    ttl, strcmp(host, "*") == 0 ? NULL : host, tok_added, t) < 0) {
		log_err("token %s: cannot add to this node's agents: %s", t->token,
		    cl->agents == NULL ? "no agent" : strerror(errno));
		free(t);
	}
}

static void
tok_fetch(struct cluster *cl, const char *token, size_t len)
{
	struct tokadd *t;
	char tk[TOKEN_MAX + 16];

	if (len == 0 || len > TOKEN_MAX || (t = calloc(1, sizeof *t)) == NULL)
		return;
	t->cl = cl;
	memcpy(t->token, token, len);
	if (!token_valid(t->token, len)) {
		free(t);
		return;
	}
	key_of(tk, sizeof tk, "tok", t->token);
	/* one round trip: value and time left */
	const char *script = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";
	const char *args[] = { tk };
	if (eval(cl, tok_value, t, script, 1, args, 1) < 0)
		free(t);
}

static void
toks_pending(void *arg, redisReply *rr, const char *err)
{
	struct cluster *cl = arg;

	if (err != NULL || rr->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i < rr->elements; i++)
		if (rr->element[i]->type == REDIS_REPLY_STRING)
			tok_fetch(cl, rr->element[i]->str, rr->element[i]->len);
}

static void pres_check(struct pres *p);

static void
pres_free(struct pres *p)
{
	struct cluster *cl = p->cl;

	for (struct pres **pp = &cl->pres; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	ev_timer_stop(cl->b.loop, &p->poll);
	free(p);
}

static void
pres_done(struct pres *p, const char *err)
{
	void (*cb)(void *, const char *) = p->cb;
	void *arg = p->arg;

	p->gone = true;
	ev_timer_stop(p->cl->b.loop, &p->poll);
	if (!p->asking)
		pres_free(p);
	if (cb != NULL)
		cb(arg, err);
}

/* The store went away after the token was given to it: the nodes that
 * were up had it; the CA is asked, as after any bounded wait. */
static void
pres_unchecked(struct pres *p, const char *why)
{
	log_warn("%s token %s: could not check the nodes' acknowledgements in %.0f s (%s): "
	    "asking the CA to validate anyway", p->label, p->token, CLUSTER_ACK_WAIT, why);
	pres_done(p, NULL);
}

static void
missing_reply(void *arg, redisReply *rr, const char *err)
{
	struct pres *p = arg;
	char names[512] = "";
	size_t len = 0;

	p->asking = false;
	if (p->gone) {
		pres_free(p);
		return;
	}
	if (err != NULL || rr->type != REDIS_REPLY_ARRAY) {
		if (ev_time() > p->deadline)
			pres_unchecked(p, err != NULL ? err : "unexpected reply");
		return;
	}
	if (rr->elements == 0) {
		log_info("%s token %s: every live node holds it (%.0f ms)", p->label, p->token,
		    (ev_time() - p->deadline + CLUSTER_ACK_WAIT) * 1000.);
		pres_done(p, NULL);
		return;
	}
	if (ev_time() <= p->deadline)
		return;		/* the next ack or poll asks again */
	for (size_t i = 0; i < rr->elements && len < sizeof names - 2; i++)
		if (rr->element[i]->type == REDIS_REPLY_STRING)
			len += (size_t)snprintf(names + len, sizeof names - len, "%s%s",
			    len > 0 ? ", " : "", rr->element[i]->str);
	log_warn("%s token %s: no acknowledgement in %.0f s from node%s %s: asking the CA to "
	    "validate anyway", p->label, p->token, CLUSTER_ACK_WAIT, rr->elements > 1 ? "s" : "",
	    names);
	pres_done(p, NULL);
}

static void
pres_check(struct pres *p)
{
	char ak[TOKEN_MAX + 16];

	if (p->asking || p->gone)
		return;
	key_of(ak, sizeof ak, "ack", p->token);
	const char *args[] = { "hacme:nodes", ak };
	if (eval(p->cl, missing_reply, p, MISSING_LUA, 2, args, 2) == 0)
		p->asking = true;
	else if (ev_time() > p->deadline)
		pres_unchecked(p, redis_error(p->cl->cmd));
}

static void
pres_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	pres_check(w->data);
}

static void
on_message(void *arg, const char *msg, size_t len)
{
	struct cluster *cl = arg;

	if (len > 4 && memcmp(msg, "tok ", 4) == 0) {
		tok_fetch(cl, msg + 4, len - 4);
	} else if (len > 4 && memcmp(msg, "ack ", 4) == 0) {
		const char *sp = memchr(msg + 4, ' ', len - 4);
		size_t tl = sp != NULL ? (size_t)(sp - msg - 4) : 0;
		for (struct pres *p = cl->pres; p != NULL; p = p->next)
			if (!p->gone && strlen(p->token) == tl && memcmp(p->token, msg + 4, tl) == 0) {
				pres_check(p);
				break;
			}
	} else if (len > 6 && memcmp(msg, "untok ", 6) == 0) {
		char tok[TOKEN_MAX + 1];
		if (len - 6 <= TOKEN_MAX && cl->agents != NULL) {
			memcpy(tok, msg + 6, len - 6);
			tok[len - 6] = '\0';
			if (token_valid(tok, len - 6))
				agentctl_unpublish(cl->agents, tok, NULL, NULL);
		}
	} else if (len > 5 && memcmp(msg, "cert ", 5) == 0) {
		char name[CONFIG_NAME_MAX + 1];
		const struct config_cert *c;
		if (len - 5 > CONFIG_NAME_MAX || cl->b.cfg == NULL)
			return;
		memcpy(name, msg + 5, len - 5);
		name[len - 5] = '\0';
		if ((c = config_find_cert(cl->b.cfg, name)) == NULL)
			return;
		for (size_t k = 0; k < c->nkeys; k++) {
			char id[ID_MAX];
			id_of(id, sizeof id, c->name, k > 0 ? "rsa" : NULL);
			pull_start(cl, id, pulled_notify, NULL);
		}
	}
}

/* Writes and publishes p's token (again after a reconnect: the master
 * may be a replica that never saw it; the acknowledgements start over). */
static int
pres_publish(struct pres *p)
{
	char tk[TOKEN_MAX + 16], ak[TOKEN_MAX + 16], ms[24], exp[24];
	double left = p->expires - ev_time();

	if (left < 1)
		left = 1;
	key_of(tk, sizeof tk, "tok", p->token);
	key_of(ak, sizeof ak, "ack", p->token);
	snprintf(ms, sizeof ms, "%.0f", left * 1000.);
	snprintf(exp, sizeof exp, "%.0f", p->expires * 1000.);
	const char *args[] = { tk, "hacme:toks", ak, p->token, p->value, ms, exp };
	return eval(p->cl, ignore_reply, (void *)"token", TOK_LUA, 3, args, 7);
}

int
cluster_token_publish(struct cluster *cl, const char *label, const char *token,
    const char *keyauth, unsigned ttl, const char *host, void (*cb)(void *, const char *),
    void *arg, char *err, size_t errlen)
{
	struct pres *p;

	if (strlen(token) > TOKEN_MAX || strlen(keyauth) > 600) {
		snprintf(err, errlen, "token too long");
		return -1;
	}
	if ((p = calloc(1, sizeof *p)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->cl = cl;
	snprintf(p->token, sizeof p->token, "%s", token);
	snprintf(p->label, sizeof p->label, "%s", label);
	p->cb = cb;
	p->arg = arg;
	p->deadline = ev_time() + CLUSTER_ACK_WAIT;
	p->last_deadline = ev_time() + 3 * CLUSTER_ACK_WAIT;
	p->ttl = ttl;
	p->expires = ev_time() + ttl;
	snprintf(p->value, sizeof p->value, "%s %s", keyauth, host != NULL && host[0] ? host : "*");
	if (pres_publish(p) < 0) {
		snprintf(err, errlen, "store %s is down (%s): cannot give the token to the "
		    "other nodes", redis_where(cl->cmd), redis_error(cl->cmd));
		free(p);
		return -1;
	}
	ev_timer_init(&p->poll, pres_poll, ACK_POLL, ACK_POLL);
	p->poll.data = p;
	ev_timer_start(cl->b.loop, &p->poll);
	p->next = cl->pres;
	cl->pres = p;
	return 0;
}

void
cluster_token_cancel(struct cluster *cl, void *arg)
{
	for (struct pres *p = cl->pres, *n; p != NULL; p = n) {
		n = p->next;
		if (p->arg == arg && !p->gone) {
			p->cb = NULL;
			p->gone = true;
			ev_timer_stop(cl->b.loop, &p->poll);
			if (!p->asking)
				pres_free(p);
		}
	}
}

void
cluster_token_withdraw(struct cluster *cl, const char *token)
{
	char tk[TOKEN_MAX + 16], ak[TOKEN_MAX + 16];

	if (cl->agents != NULL)
		agentctl_unpublish(cl->agents, token, NULL, NULL);
	key_of(tk, sizeof tk, "tok", token);
	key_of(ak, sizeof ak, "ack", token);
	const char *args[] = { tk, "hacme:toks", ak, token };
	eval(cl, ignore_reply, NULL, UNTOK_LUA, 3, args, 4);
}

/* ---- nodes ---- */

static void
heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct cluster *cl = w->data;
	cJSON *o = cJSON_CreateObject();
	char key[CONFIG_NAME_MAX + 16], ttl[16], *text = NULL, *serves = NULL;

	if (o == NULL)
		return;
	cJSON_AddStringToObject(o, "node", cl->node);
	cJSON_AddNumberToObject(o, "time", (double)time(NULL));
	cJSON_AddNumberToObject(o, "pid", (double)getpid());
	cJSON_AddStringToObject(o, "key_id", cl->keys.n > 0 ? cl->keys.id[0] : "");
	cJSON_AddNumberToObject(o, "redis_commands", (double)redis_commands(cl->cmd));
	cJSON_AddNumberToObject(o, "pulls", (double)cl->pulls);
	if (cl->b.serving != NULL && (serves = cl->b.serving(cl->b.owner)) != NULL) {
		cJSON *s = cJSON_Parse(serves);
		if (s != NULL)
			cJSON_AddItemToObject(o, "serves", s);
	}
	text = cJSON_PrintUnformatted(o);
	key_of(key, sizeof key, "node", cl->node);
	snprintf(ttl, sizeof ttl, "%d", CLUSTER_HEARTBEAT_TTL);
	if (text != NULL) {
		redis_cmdf(cl->cmd, ignore_reply, NULL, "SET %s %s PX %s", key, text, ttl);
		redis_cmdf(cl->cmd, ignore_reply, NULL, "SADD hacme:nodes %s", cl->node);
	}
	free(serves);
	free(text);
	cJSON_Delete(o);
}

static void
conn_state(void *arg, bool up, const char *err)
{
	struct cluster *cl = arg;

	if (!up) {
		log_err("%s", err);
		return;
	}
	if (!redis_up(cl->cmd) || !redis_up(cl->sub))
		return;
	log_notice("store %s: connected (node %s)", redis_where(cl->cmd), cl->node);
	heartbeat_cb(cl->b.loop, &cl->heartbeat, 0);
	/* every pending token first, then what changed while we were away */
	redis_cmdf(cl->cmd, ignore_reply, NULL, "ZREMRANGEBYSCORE hacme:toks -inf %.0f",
	    ev_time() * 1000.);
	redis_cmdf(cl->cmd, toks_pending, cl, "ZRANGE hacme:toks 0 -1");
	/* tokens still waiting for acknowledgements: written again (a promoted
	 * replica may not have them) and waited for a little longer */
	for (struct pres *p = cl->pres; p != NULL; p = p->next) {
		if (p->gone || pres_publish(p) < 0)
			continue;
		double d = ev_time() + CLUSTER_ACK_WAIT;
		p->deadline = d < p->last_deadline ? d : p->last_deadline;
	}
	/* account keys and certificates: Redis may have come back empty */
	cl->synced_once = true;
	sync_run(cl);
}

/* ---- the backend ---- */

static void
redis_free_backend(struct backend *b)
{
	struct cluster *cl = CL(b);

	cl->sync_cb = NULL;	/* replies cut short below must not start anything */
	ev_timer_stop(b->loop, &cl->heartbeat);
	ev_timer_stop(b->loop, &cl->renew);
	ev_timer_stop(b->loop, &cl->sync_timer);
	/* release what we hold: another node takes over at once */
	while (cl->held != NULL)
		redis_unlock(b, cl->held->id, cl->held->fence);
	for (struct backend_lock *l = cl->locks; l != NULL; l = l->next) {
		l->cancelled = true;
		ev_timer_stop(b->loop, &l->later);
	}
	for (struct pres *p = cl->pres; p != NULL; p = p->next) {
		p->cb = NULL;
		p->gone = true;
		ev_timer_stop(b->loop, &p->poll);
	}
	redis_free(cl->sub);
	redis_free(cl->cmd);	/* replies: NULL, freeing what waited */
	while (cl->pres != NULL)
		pres_free(cl->pres);
	seal_keys_wipe(&cl->keys);
	free(cl);
}

static const struct backend_ops redis_ops = {
	.kind = "redis",
	.free = redis_free_backend,
	.sync = redis_sync,
	.lock = redis_lock,
	.lock_cancel = redis_lock_cancel,
	.unlock = redis_unlock,
	.cert_saved = redis_cert_saved,
	.sched_put = redis_sched_put,
};

struct cluster *
backend_cluster(struct backend *b)
{
	return b != NULL && b->ops == &redis_ops ? CL(b) : NULL;
}

void
cluster_set_agents(struct cluster *cl, struct agentctl *agents)
{
	cl->agents = agents;
}

const char *
cluster_node(const struct cluster *cl)
{
	return cl->node;
}

unsigned long
cluster_commands(const struct cluster *cl)
{
	return redis_commands(cl->cmd) + redis_commands(cl->sub);
}

unsigned long
cluster_pulls(const struct cluster *cl)
{
	return cl->pulls;
}

bool
cluster_up(const struct cluster *cl)
{
	return redis_up(cl->cmd) && redis_up(cl->sub);
}

/* The password file: its first line. */
static int
read_password(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;

	if (file_read(path, 4096, &text, &len) < 0) {
		snprintf(err, errlen, "store-password-file %s: %s", path, strerror(errno));
		return -1;
	}
	size_t n = 0;
	while (n < len && text[n] != '\n' && text[n] != '\r')
		n++;
	if (n == 0 || n >= outlen) {
		crypto_wipe_free(text, len);
		snprintf(err, errlen, "store-password-file %s: %s", path, n == 0 ?
		    "empty first line (the password)" : "password longer than 128 bytes");
		return -1;
	}
	memcpy(out, text, n);
	out[n] = '\0';
	crypto_wipe_free(text, len);
	return 0;
}

struct backend *
backend_redis_new(struct ev_loop *loop, const struct config *cfg, struct store *st, char *err,
    size_t errlen)
{
	struct cluster *cl = calloc(1, sizeof *cl);
	struct storeurl u;
	char why[CONFIG_ERR_MAX], pw[STOREURL_NAME_MAX + 1] = "", host[256];

	if (cl == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cl->b.ops = &redis_ops;
	cl->b.loop = loop;
	cl->b.st = st;
	cl->b.cfg = cfg;
	if (storeurl_parse(cfg->store, &u, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	if (cfg->store_key_file == NULL) {
		snprintf(err, errlen, "store: private keys go to the store only sealed: set "
		    "store-key-file (a file with `openssl rand -hex 32`, the same on every node)");
		goto fail;
	}
	if (seal_keys_load(&cl->keys, cfg->store_key_file, err, errlen) < 0)
		goto fail;
	if (cfg->store_password_file != NULL &&
	    read_password(cfg->store_password_file, pw, sizeof pw, err, errlen) < 0)
		goto fail;
	if (cfg->node_name != NULL)
		snprintf(cl->node, sizeof cl->node, "%s", cfg->node_name);
	else if (gethostname(host, sizeof host) == 0 && host[0] != '\0') {
		host[sizeof host - 1] = '\0';
		snprintf(cl->node, sizeof cl->node, "%s", host);
	} else
		snprintf(cl->node, sizeof cl->node, "node-%ld", (long)getpid());
	for (char *q = cl->node; *q; q++)
		if (*q == ' ')
			*q = '_';
	struct redis_opts ro = {
		.url = &u,
		.password = pw[0] != '\0' ? pw : NULL,
		.password_file = cfg->store_password_file,
		.client_name = NULL,
		.state = conn_state,
		.arg = cl,
	};
	cl->cmd = redis_new(loop, &ro);
	ro.channel = CHANNEL;
	ro.message = on_message;
	cl->sub = redis_new(loop, &ro);
	crypto_wipe(pw, sizeof pw);
	crypto_wipe(&u, sizeof u);
	if (cl->cmd == NULL || cl->sub == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ev_timer_init(&cl->heartbeat, heartbeat_cb, CLUSTER_HEARTBEAT, CLUSTER_HEARTBEAT);
	cl->heartbeat.data = cl;
	ev_timer_start(loop, &cl->heartbeat);
	ev_timer_init(&cl->renew, renew_cb, CLUSTER_LOCK_TTL / 3000., CLUSTER_LOCK_TTL / 3000.);
	cl->renew.data = cl;
	ev_timer_start(loop, &cl->renew);
	ev_timer_init(&cl->sync_timer, sync_timeout, SYNC_WAIT, 0.);
	cl->sync_timer.data = cl;
	log_info("store %s: node %s, key id %s", cfg->store[0] == 's' ? "sentinel" : "redis",
	    cl->node, cl->keys.id[0]);
	return &cl->b;
fail:
	crypto_wipe(pw, sizeof pw);
	crypto_wipe(&u, sizeof u);
	redis_free(cl->sub);
	redis_free(cl->cmd);
	seal_keys_wipe(&cl->keys);
	free(cl);
	return NULL;
}
