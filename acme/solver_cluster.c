/* solver_cluster.c - http-01 on a cluster: the token goes through the
 * store to every node's agents (acme/cluster.h), and the CA is asked to
 * validate only once every live node acknowledged it (or after
 * CLUSTER_ACK_WAIT, with a warning naming the nodes that did not). The
 * pre-flight self-check is the inner http-01 solver's, on this node. */
#include "acme/solver.h"

#include <stdlib.h>

#include "acme/cluster.h"

#define TOKEN_TTL 3600

struct solver_cluster {
	struct solver s;	/* first */
	struct cluster *cl;
	struct solver *inner;	/* borrowed: http-01 on this node's agents */
};

static int
cl_prepare(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg, char *err,
    size_t errlen)
{
	return solver_prepare(((struct solver_cluster *)s)->inner, c, cb, arg, err, errlen);
}

static int
cl_present(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg, char *err,
    size_t errlen)
{
	struct solver_cluster *x = (struct solver_cluster *)s;

	return cluster_token_publish(x->cl, c->label, c->token, c->keyauth, TOKEN_TTL, c->name, cb, arg,
	    err, errlen) < 0 ? -1 : 0;
}

static int
cl_cleanup(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg, char *err,
    size_t errlen)
{
	(void)cb;
	(void)arg;
	(void)err;
	(void)errlen;
	cluster_token_withdraw(((struct solver_cluster *)s)->cl, c->token);
	return 1;
}

static void
cl_cancel(struct solver *s, void *arg)
{
	struct solver_cluster *x = (struct solver_cluster *)s;

	cluster_token_cancel(x->cl, arg);
	solver_cancel(x->inner, arg);
}

static void
cl_free(struct solver *s)
{
	free(s);
}

static const struct solver_ops cluster_ops = {
	.type = "http-01",
	.needs_token = true,
	.prepare = cl_prepare,
	.present = cl_present,
	.cleanup = cl_cleanup,
	.cancel = cl_cancel,
	.free = cl_free,
};

struct solver *
solver_cluster_new(struct cluster *cl, struct solver *inner)
{
	struct solver_cluster *x = calloc(1, sizeof *x);

	if (x == NULL)
		return NULL;
	x->s.ops = &cluster_ops;
	x->cl = cl;
	x->inner = inner;
	return &x->s;
}
