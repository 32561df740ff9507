/* solver.c - the calls of solver.h, for solvers that leave an operation
 * out. */
#include "acme/solver.h"

int
solver_prepare(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	if (s->ops->prepare == NULL)
		return 1;
	return s->ops->prepare(s, c, cb, arg, err, errlen);
}

int
solver_present(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	if (s->ops->present == NULL)
		return 1;
	return s->ops->present(s, c, cb, arg, err, errlen);
}

int
solver_cleanup(struct solver *s, const struct solver_chall *c, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	if (s->ops->cleanup == NULL)
		return 1;
	return s->ops->cleanup(s, c, cb, arg, err, errlen);
}

void
solver_cancel(struct solver *s, void *arg)
{
	if (s->ops->cancel != NULL)
		s->ops->cancel(s, arg);
}

void
solver_free(struct solver *s)
{
	if (s != NULL)
		s->ops->free(s);
}
