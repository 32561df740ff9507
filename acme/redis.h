/* redis.h - one connection to the Redis (or Valkey) master of a `store`,
 * on the worker's libev loop (hiredis 0.14 and its libev adapter).
 *
 * The connection follows the master: with sentinel:// it asks each
 * sentinel in turn (SENTINEL get-master-addr-by-name), connects, and checks
 * ROLE; when the connection drops, a command gets READONLY (a demoted
 * master) or a reply is late (opts.timeout), it is closed and made again
 * with a backoff of 0.2 s doubling to 5 s. AUTH (user and password), SELECT
 * and CLIENT SETNAME go first; a refused password stops nothing but is
 * reported by state() as "store-password-file ...: Redis refused the
 * password" each time. The password is never logged.
 *
 * A subscriber (opts.channel) SUBSCRIBEs after each connect and hands each
 * message to opts.message; state(up=true) comes after the subscription is
 * confirmed, so a caller that then reads what it missed misses nothing.
 *
 * Callbacks run from the loop. A command's cb runs exactly once: with the
 * reply, or with err when the reply is an error or the connection was lost
 * first (then reply is NULL). */
#ifndef HACME_REDIS_H
#define HACME_REDIS_H

#include <stdbool.h>
#include <stddef.h>

struct ev_loop;
struct redis;
struct redisReply;
struct storeurl;

#define REDIS_ERR_MAX 512

struct redis_opts {
	const struct storeurl *url;	/* copied */
	const char *password;		/* wins over the URL's; copied; NULL: the URL's */
	const char *password_file;	/* for messages only */
	const char *client_name;	/* CLIENT SETNAME, or NULL */
	double timeout;			/* seconds for a connect or a reply; 0: 3 */
	const char *channel;		/* subscriber: this channel, NULL: commands */
	void (*message)(void *arg, const char *msg, size_t len);
	/* up: ready for commands (subscribed); down: err says why */
	void (*state)(void *arg, bool up, const char *err);
	void *arg;
};

typedef void redis_cb(void *arg, struct redisReply *reply, const char *err);

struct redis *redis_new(struct ev_loop *loop, const struct redis_opts *opts);
/* Pending callbacks are called with err "closed". NULL is a no-op. */
void redis_free(struct redis *r);

bool redis_up(const struct redis *r);
/* "HOST:PORT" of the master now (or last), for messages. */
const char *redis_where(const struct redis *r);
/* The last reason it was down, "" when none. */
const char *redis_error(const struct redis *r);
/* Commands sent since start. */
unsigned long redis_commands(const struct redis *r);

/* 0, or -1 (not up: nothing sent, no callback). */
int redis_cmd(struct redis *r, redis_cb *cb, void *arg, int argc, const char **argv,
    const size_t *argvlen);
/* As redis_cmd with hiredis' format (%s %b %d). */
int redis_cmdf(struct redis *r, redis_cb *cb, void *arg, const char *fmt, ...);

#endif
