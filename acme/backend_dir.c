/* backend_dir.c - the directory backend: the state dir alone, as hacme
 * has always kept it. Nothing is shared: the lock is granted at once (a
 * second `hacme run` on the same dir is kept out by run.lock), the
 * schedule is schedule.json (written by run.c for every backend). */
#include "acme/backend.h"

#include <stdio.h>
#include <stdlib.h>

#include <ev.h>

#include "acme/config.h"

struct backend_lock {
	struct backend *b;
	ev_timer t;		/* the grant, from the loop */
	backend_lock_cb *cb;
	void *arg;
	uint64_t fence;
};

struct dir_backend {
	struct backend b;
	uint64_t fence;
};

static void
dir_free(struct backend *b)
{
	free(b);
}

static int
dir_sync(struct backend *b, void (*cb)(void *, const char *), void *arg)
{
	(void)b;
	(void)cb;
	(void)arg;
	return 1;		/* nothing to pull: done now, no callback */
}

static void
dir_granted(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct backend_lock *l = w->data;
	backend_lock_cb *cb = l->cb;
	void *arg = l->arg;
	uint64_t fence = l->fence;

	struct backend_grant g = { .fence = fence };

	free(l);
	cb(arg, &g);
}

static struct backend_lock *
dir_lock(struct backend *b, const char *id, backend_lock_cb *cb, void *arg)
{
	struct dir_backend *d = (struct dir_backend *)b;
	struct backend_lock *l = calloc(1, sizeof *l);

	(void)id;
	if (l == NULL)
		return NULL;
	l->b = b;
	l->cb = cb;
	l->arg = arg;
	l->fence = ++d->fence;
	ev_timer_init(&l->t, dir_granted, 0., 0.);
	l->t.data = l;
	ev_timer_start(b->loop, &l->t);
	return l;
}

static void
dir_lock_cancel(struct backend_lock *l)
{
	if (l == NULL)
		return;
	ev_timer_stop(l->b->loop, &l->t);
	free(l);
}

static void
dir_unlock(struct backend *b, const char *id, uint64_t fence)
{
	(void)b;
	(void)id;
	(void)fence;
}

static void
dir_cert_saved(struct backend *b, const char *name, const char *variant, uint64_t fence)
{
	(void)b;
	(void)name;
	(void)variant;
	(void)fence;
}

static void
dir_sched_put(struct backend *b, const char *id, const char *json)
{
	(void)b;
	(void)id;
	(void)json;
}

static const struct backend_ops dir_ops = {
	.kind = "directory",
	.free = dir_free,
	.sync = dir_sync,
	.lock = dir_lock,
	.lock_cancel = dir_lock_cancel,
	.unlock = dir_unlock,
	.cert_saved = dir_cert_saved,
	.sched_put = dir_sched_put,
};

struct backend *
backend_dir_new(struct ev_loop *loop, struct store *st)
{
	struct dir_backend *d = calloc(1, sizeof *d);

	if (d == NULL)
		return NULL;
	d->b.ops = &dir_ops;
	d->b.loop = loop;
	d->b.st = st;
	return &d->b;
}

struct backend *
backend_new(struct ev_loop *loop, const struct config *cfg, struct store *st, char *err,
    size_t errlen)
{
	struct backend *b;

	if (cfg->store != NULL) {
#ifdef HACME_REDIS
		return backend_redis_new(loop, cfg, st, err, errlen);
#else
		snprintf(err, errlen, "store: this hacme was built without hiredis: "
		    "apt-get install libhiredis-dev and build again, or remove `store`");
		return NULL;
#endif
	}
	if ((b = backend_dir_new(loop, st)) == NULL)
		snprintf(err, errlen, "out of memory");
	else
		b->cfg = cfg;
	return b;
}
