/* redis.c - see redis.h. */
#include "acme/redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include <hiredis/adapters/libev.h>
#pragma GCC diagnostic pop

#include "acme/crypto.h"
#include "acme/storeurl.h"
#include "common/log.h"

#define BACKOFF_MIN 0.2
#define BACKOFF_MAX 5.0
#define WATCH_EVERY 0.25

enum rstate { R_IDLE, R_SENTINEL, R_HANDSHAKE, R_UP };

struct redis {
	struct ev_loop *loop;
	struct storeurl url;
	char *password_file, *client_name, *channel;
	double timeout;
	void (*message)(void *, const char *, size_t);
	void (*state)(void *, bool, const char *);
	void *arg;

	enum rstate st;
	redisAsyncContext *ac;		/* the master (or NULL) */
	redisAsyncContext *sac;		/* a sentinel being asked (or NULL) */
	size_t sentinel;		/* the next one to ask */
	unsigned gen;			/* of ac: stale callbacks are told apart */
	char where[STOREURL_HOST_MAX + 16];
	char err[REDIS_ERR_MAX];
	double backoff, since, progress;
	unsigned pending;		/* replies awaited on ac */
	unsigned handshake;		/* handshake replies still to come */
	char told[REDIS_ERR_MAX];	/* the last reason given to state() */
	unsigned long ncmd;
	ev_timer retry, watch;
};

struct rreq {
	struct redis *r;
	unsigned gen;
	redis_cb *cb;
	void *arg;
};

static void connect_next(struct redis *r);

static double
mono(void)
{
	return ev_time();
}

static void
set_down(struct redis *r, const char *why)
{
	bool was = r->st == R_UP;

	if (why != NULL && why[0] != '\0')
		snprintf(r->err, sizeof r->err, "%s", why);
	r->st = R_IDLE;
	r->pending = r->handshake = 0;
	if (r->ac != NULL) {
		redisAsyncContext *ac = r->ac;
		r->ac = NULL;
		ac->data = NULL;
		redisAsyncFree(ac);	/* pending callbacks get NULL replies */
	}
	if (r->sac != NULL) {
		redisAsyncContext *ac = r->sac;
		r->sac = NULL;
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	r->gen++;
	/* every change of reason is told once, not every retry */
	if ((was || strcmp(r->err, r->told) != 0) && r->state != NULL) {
		snprintf(r->told, sizeof r->told, "%s", r->err);
		r->state(r->arg, false, r->err);
	}
	ev_timer_stop(r->loop, &r->retry);
	ev_timer_set(&r->retry, r->backoff, 0.);
	ev_timer_start(r->loop, &r->retry);
	r->backoff = r->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : r->backoff * 2;
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	connect_next(w->data);
}

/* Closes a connection that takes too long to connect or to answer. */
static void
watch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct redis *r = w->data;
	double now = mono();
	char why[REDIS_ERR_MAX];

	if ((r->st == R_SENTINEL || r->st == R_HANDSHAKE) && now - r->since > r->timeout) {
		snprintf(why, sizeof why, "store: %s: no answer in %.0f s", r->where, r->timeout);
		set_down(r, why);
	} else if (r->st == R_UP && r->pending > 0 && now - r->progress > r->timeout) {
		snprintf(why, sizeof why, "store: %s: a reply is %.0f s late", r->where,
		    now - r->progress);
		set_down(r, why);
	}
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	char why[REDIS_ERR_MAX];

	(void)status;
	if (r == NULL)
		return;
	if (ac == r->ac) {
		r->ac = NULL;	/* hiredis frees it */
		snprintf(why, sizeof why, "store: %s: connection lost%s%s", r->where,
		    ac->errstr[0] ? ": " : "", ac->errstr);
		set_down(r, why);
	} else if (ac == r->sac) {
		r->sac = NULL;
	}
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	char why[REDIS_ERR_MAX];

	if (r == NULL || status == REDIS_OK)
		return;
	snprintf(why, sizeof why, "store: %s: %s", ac == r->sac ? "sentinel" : r->where,
	    ac->errstr);
	if (ac == r->ac)
		r->ac = NULL;	/* hiredis frees it */
	else if (ac == r->sac) {
		r->sac = NULL;
		/* the next sentinel, at once */
		snprintf(r->err, sizeof r->err, "%s", why);
		if (r->sentinel < r->url.nhosts) {
			r->st = R_IDLE;
			connect_next(r);
			return;
		}
	}
	set_down(r, why);
}

static redisAsyncContext *
open_ctx(struct redis *r, const char *host, int port)
{
	redisAsyncContext *ac = redisAsyncConnect(host, port);

	if (ac == NULL)
		return NULL;
	if (ac->err) {
		snprintf(r->err, sizeof r->err, "store: %s:%d: %s", host, port, ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = r;
	redisLibevAttach(r->loop, ac);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

static void handshake_reply(redisAsyncContext *ac, void *reply, void *priv);
static void message_reply(redisAsyncContext *ac, void *reply, void *priv);

static void
master_connect(struct redis *r, const char *host, int port)
{
	bool ipv6 = strchr(host, ':') != NULL;

	snprintf(r->where, sizeof r->where, "%s%s%s:%d", ipv6 ? "[" : "", host, ipv6 ? "]" : "",
	    port);
	r->st = R_HANDSHAKE;
	r->since = mono();
	if ((r->ac = open_ctx(r, host, port)) == NULL) {
		set_down(r, r->err);
		return;
	}
	r->handshake = 0;
	/* pipelined: written once connected, answered in order */
	if (r->url.password[0] != '\0') {
		if (r->url.user[0] != '\0')
			redisAsyncCommand(r->ac, handshake_reply, (void *)"AUTH", "AUTH %s %s",
			    r->url.user, r->url.password);
		else
			redisAsyncCommand(r->ac, handshake_reply, (void *)"AUTH", "AUTH %s",
			    r->url.password);
		r->handshake++;
	}
	if (!r->url.sentinel && r->url.db != 0) {
		redisAsyncCommand(r->ac, handshake_reply, (void *)"SELECT", "SELECT %d", r->url.db);
		r->handshake++;
	}
	if (r->url.sentinel) {
		redisAsyncCommand(r->ac, handshake_reply, (void *)"ROLE", "ROLE");
		r->handshake++;
	}
	if (r->client_name != NULL) {
		redisAsyncCommand(r->ac, handshake_reply, (void *)"SETNAME",
		    "CLIENT SETNAME %s", r->client_name);
		r->handshake++;
	}
	if (r->channel != NULL) {
		redisAsyncCommand(r->ac, message_reply, NULL, "SUBSCRIBE %s", r->channel);
		r->handshake++;
	} else {
		redisAsyncCommand(r->ac, handshake_reply, (void *)"PING", "PING");
		r->handshake++;
	}
}

static void
went_up(struct redis *r)
{
	r->st = R_UP;
	r->backoff = BACKOFF_MIN;
	r->progress = mono();
	r->err[0] = '\0';
	r->told[0] = '\0';
	r->state(r->arg, true, NULL);
}

static void
handshake_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *r = ac->data;
	redisReply *rr = reply;
	const char *what = priv;
	char why[REDIS_ERR_MAX];

	if (r == NULL || ac != r->ac || rr == NULL)
		return;
	if (rr->type == REDIS_REPLY_ERROR) {
		if (strcmp(what, "AUTH") == 0)
			snprintf(why, sizeof why, "store: %s refused the password%s%s (%.80s): "
			    "check store-password-file%s%s and the user in `store`", r->where,
			    r->url.user[0] ? " of user " : "", r->url.user, rr->str,
			    r->password_file ? " " : "", r->password_file ? r->password_file : "");
		else if (strncmp(rr->str, "NOAUTH", 6) == 0)
			snprintf(why, sizeof why, "store: %s asks for a password (NOAUTH): set "
			    "store-password-file", r->where);
		else
			snprintf(why, sizeof why, "store: %s: %s: %.200s", r->where, what, rr->str);
		set_down(r, why);
		return;
	}
	if (strcmp(what, "ROLE") == 0 && (rr->type != REDIS_REPLY_ARRAY || rr->elements < 1 ||
	    rr->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(rr->element[0]->str, "master") != 0)) {
		snprintf(why, sizeof why, "store: %s is not the master (yet): asking the "
		    "sentinels again", r->where);
		set_down(r, why);
		return;
	}
	if (--r->handshake == 0 && r->channel == NULL)
		went_up(r);
}

static void
message_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *r = ac->data;
	redisReply *rr = reply;

	(void)priv;
	if (r == NULL || ac != r->ac || rr == NULL)
		return;
	if (rr->type == REDIS_REPLY_ERROR) {
		char why[REDIS_ERR_MAX];
		snprintf(why, sizeof why, "store: %s: SUBSCRIBE: %.200s", r->where, rr->str);
		set_down(r, why);
		return;
	}
	if (rr->type != REDIS_REPLY_ARRAY || rr->elements < 3 ||
	    rr->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(rr->element[0]->str, "subscribe") == 0) {
		if (--r->handshake == 0)
			went_up(r);
	} else if (strcmp(rr->element[0]->str, "message") == 0 &&
	    rr->element[2]->type == REDIS_REPLY_STRING) {
		r->message(r->arg, rr->element[2]->str, rr->element[2]->len);
	}
}

static void
sentinel_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *r = ac->data;
	redisReply *rr = reply;
	char host[STOREURL_HOST_MAX + 1];
	long port;

	(void)priv;
	if (r == NULL || ac != r->sac)
		return;
	r->sac = NULL;
	ac->data = NULL;
	redisAsyncDisconnect(ac);
	if (rr == NULL || rr->type != REDIS_REPLY_ARRAY || rr->elements != 2 ||
	    rr->element[0]->type != REDIS_REPLY_STRING ||
	    rr->element[1]->type != REDIS_REPLY_STRING || rr->element[0]->len > STOREURL_HOST_MAX) {
		snprintf(r->err, sizeof r->err, "store: sentinel %s:%d does not know master '%s'",
		    r->url.hosts[r->sentinel - 1].host, r->url.hosts[r->sentinel - 1].port,
		    r->url.master);
		r->st = R_IDLE;
		if (r->sentinel < r->url.nhosts)
			connect_next(r);
		else
			set_down(r, r->err);
		return;
	}
	snprintf(host, sizeof host, "%s", rr->element[0]->str);
	port = strtol(rr->element[1]->str, NULL, 10);
	r->sentinel = 0;	/* next time, from the first one again */
	master_connect(r, host, (int)port);
}

/* Asks the next sentinel, or connects to the redis:// host. */
static void
connect_next(struct redis *r)
{
	if (r->st != R_IDLE)
		return;
	if (!r->url.sentinel) {
		master_connect(r, r->url.hosts[0].host, r->url.hosts[0].port);
		return;
	}
	if (r->sentinel >= r->url.nhosts)
		r->sentinel = 0;
	const struct storeurl_host *h = &r->url.hosts[r->sentinel++];
	r->st = R_SENTINEL;
	r->since = mono();
	if ((r->sac = open_ctx(r, h->host, h->port)) == NULL ||
	    redisAsyncCommand(r->sac, sentinel_reply, NULL, "SENTINEL get-master-addr-by-name %s",
	    r->url.master) != REDIS_OK) {
		if (r->sentinel < r->url.nhosts) {
			r->st = R_IDLE;
			connect_next(r);
		} else {
			set_down(r, r->err);
		}
	}
}

struct redis *
redis_new(struct ev_loop *loop, const struct redis_opts *o)
{
	struct redis *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->loop = loop;
	r->url = *o->url;
	if (o->password != NULL)
		snprintf(r->url.password, sizeof r->url.password, "%s", o->password);
	r->password_file = o->password_file ? strdup(o->password_file) : NULL;
	r->client_name = o->client_name ? strdup(o->client_name) : NULL;
	r->channel = o->channel ? strdup(o->channel) : NULL;
	r->timeout = o->timeout > 0 ? o->timeout : 3.0;
	r->message = o->message;
	r->state = o->state;
	r->arg = o->arg;
	r->backoff = BACKOFF_MIN;
	snprintf(r->where, sizeof r->where, "%s:%d", r->url.hosts[0].host, r->url.hosts[0].port);
	ev_timer_init(&r->retry, retry_cb, 0., 0.);
	r->retry.data = r;
	ev_timer_init(&r->watch, watch_cb, WATCH_EVERY, WATCH_EVERY);
	r->watch.data = r;
	ev_timer_start(loop, &r->watch);
	ev_unref(loop);		/* the watchdog alone keeps no loop running */
	connect_next(r);
	return r;
}

void
redis_free(struct redis *r)
{
	if (r == NULL)
		return;
	ev_timer_stop(r->loop, &r->retry);
	ev_ref(r->loop);
	ev_timer_stop(r->loop, &r->watch);
	r->state = NULL;
	if (r->ac != NULL) {
		redisAsyncContext *ac = r->ac;
		r->ac = NULL;
		redisAsyncFree(ac);	/* cmd callbacks: NULL reply, r still valid */
	}
	if (r->sac != NULL) {
		redisAsyncContext *ac = r->sac;
		r->sac = NULL;
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	crypto_wipe(&r->url, sizeof r->url);
	free(r->password_file);
	free(r->client_name);
	free(r->channel);
	free(r);
}

bool
redis_up(const struct redis *r)
{
	return r != NULL && r->st == R_UP;
}

const char *
redis_where(const struct redis *r)
{
	return r->where;
}

const char *
redis_error(const struct redis *r)
{
	return r->err;
}

unsigned long
redis_commands(const struct redis *r)
{
	return r->ncmd;
}

static void
cmd_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rreq *q = priv;
	struct redis *r = q->r;
	redisReply *rr = reply;
	char why[REDIS_ERR_MAX];

	if (r != NULL && q->gen == r->gen && r->ac == ac) {
		if (r->pending > 0)
			r->pending--;
		r->progress = mono();
	}
	if (rr == NULL) {
		snprintf(why, sizeof why, "store: %s: connection lost",
		    r != NULL ? r->where : "redis");
		q->cb(q->arg, NULL, why);
	} else if (rr->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof why, "store: %s: %.300s", r->where, rr->str);
		q->cb(q->arg, rr, why);
		/* a demoted master: find the new one */
		if (strncmp(rr->str, "READONLY", 8) == 0 && r->ac == ac && q->gen == r->gen)
			set_down(r, why);
	} else {
		q->cb(q->arg, rr, NULL);
	}
	free(q);
}

/* After hiredis took (rc REDIS_OK) or refused a command. */
static int
sent(struct redis *r, struct rreq *q, int rc)
{
	if (rc != REDIS_OK) {
		free(q);
		return -1;
	}
	if (r->pending++ == 0)
		r->progress = mono();
	r->ncmd++;
	return 0;
}

int
redis_cmd(struct redis *r, redis_cb *cb, void *arg, int argc, const char **argv,
    const size_t *argvlen)
{
	struct rreq *q;

	if (!redis_up(r) || (q = malloc(sizeof *q)) == NULL)
		return -1;
	*q = (struct rreq){ r, r->gen, cb, arg };
	return sent(r, q, redisAsyncCommandArgv(r->ac, cmd_reply, q, argc, argv, argvlen));
}

int
redis_cmdf(struct redis *r, redis_cb *cb, void *arg, const char *fmt, ...)
{
	struct rreq *q;
	va_list ap;
	int rc;

	if (!redis_up(r) || (q = malloc(sizeof *q)) == NULL)
		return -1;
	*q = (struct rreq){ r, r->gen, cb, arg };
	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, cmd_reply, q, fmt, ap);
	va_end(ap);
	return sent(r, q, rc);
}
