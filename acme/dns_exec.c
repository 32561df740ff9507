/* dns_exec.c - TXT records through a program, with lego's exec contract:
 * `PROGRAM present FQDN. VALUE` and `PROGRAM cleanup FQDN. VALUE` (the
 * FQDN with its final dot), exit 0 on success. Bounded in time (killed
 * after EXEC_TIMEOUT), its output (stdout and stderr, the last bytes)
 * kept for the error. No shell: the command is a program path. */
#include "acme/dns_provider.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "acme/config.h"
#include "common/log.h"

#define EXEC_TIMEOUT 120.0	/* seconds a run may take */
#define OUT_KEEP 600		/* bytes of output kept for the error */

struct dexec {
	struct dns_provider p;		/* first */
	struct ev_loop *loop;
	char *command;
	struct run *runs;
};

struct run {
	struct dexec *x;
	struct run *next, **pprev;
	pid_t pid;
	int fd;
	bool exited, eof;
	int status;
	char what[16];			/* "present", "cleanup" */
	char fqdn[260];
	char out[OUT_KEEP + 1];
	size_t outlen;
	double deadline;
	ev_io io;
	ev_child cw;
	ev_timer timer;
	solver_cb *cb;
	void *arg;
};

static void
run_free(struct run *u)
{
	struct ev_loop *loop = u->x->loop;

	if (u->pprev != NULL) {
		*u->pprev = u->next;
		if (u->next != NULL)
			u->next->pprev = u->pprev;
	}
	ev_io_stop(loop, &u->io);
	ev_child_stop(loop, &u->cw);
	ev_timer_stop(loop, &u->timer);
	if (u->fd >= 0)
		close(u->fd);
	if (!u->exited && u->pid > 0) {
		kill(-u->pid, SIGKILL);
		(void)waitpid(u->pid, NULL, 0);
	}
	free(u);
}

/* The output's last line, escaped for one log line. */
static void
last_line(const struct run *u, char *out, size_t len)
{
	size_t e = u->outlen, b;

	while (e > 0 && (u->out[e - 1] == '\n' || u->out[e - 1] == '\r'))
		e--;
	b = e;
	while (b > 0 && u->out[b - 1] != '\n')
		b--;
	log_escape(out, len, u->out + b, e - b);
}

static void
run_maybe_done(struct run *u)
{
	char err[SOLVER_ERR_MAX] = "", line[OUT_KEEP * 2];
	solver_cb *cb = u->cb;
	void *arg = u->arg;

	if (!u->exited || !u->eof)
		return;
	last_line(u, line, sizeof line);
	if (WIFEXITED(u->status) && WEXITSTATUS(u->status) == 0) {
		log_info("dns: %s %s %s: ok", u->x->command, u->what, u->fqdn);
	} else if (WIFEXITED(u->status) && WEXITSTATUS(u->status) == 127 && u->outlen == 0) {
		snprintf(err, sizeof err, "`%s %s`: could not run the program: check `command` "
		    "(a path to an executable)", u->x->command, u->what);
	} else if (WIFEXITED(u->status)) {
		snprintf(err, sizeof err, "`%s %s %s`: exit %d%s%s%s: fix the program or what it "
		    "updates", u->x->command, u->what, u->fqdn, WEXITSTATUS(u->status),
		    line[0] ? " (\"" : "", line, line[0] ? "\")" : "");
	} else {
		snprintf(err, sizeof err, "`%s %s %s`: killed by signal %d%s: it must finish "
		    "within %.0f s", u->x->command, u->what, u->fqdn, WTERMSIG(u->status),
		    u->deadline <= ev_now(u->x->loop) ? " (timeout)" : "", EXEC_TIMEOUT);
	}
	run_free(u);
	if (cb != NULL)
		cb(arg, err[0] ? err : NULL);
	else if (err[0])
		log_warn("dns: %s", err);
}

static void
out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct run *u = w->data;
	char buf[1024];
	ssize_t n = read(u->fd, buf, sizeof buf);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ev_io_stop(loop, &u->io);
		u->eof = true;
		run_maybe_done(u);
		return;
	}
	/* keep the last OUT_KEEP bytes */
	if ((size_t)n >= OUT_KEEP) {
		memcpy(u->out, buf + n - OUT_KEEP, OUT_KEEP);
		u->outlen = OUT_KEEP;
	} else {
		if (u->outlen + (size_t)n > OUT_KEEP) {
			size_t drop = u->outlen + (size_t)n - OUT_KEEP;
			memmove(u->out, u->out + drop, u->outlen - drop);
			u->outlen -= drop;
		}
		memcpy(u->out + u->outlen, buf, (size_t)n);
		u->outlen += (size_t)n;
	}
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	struct run *u = w->data;

	ev_child_stop(loop, w);
	u->exited = true;
	u->status = w->rstatus;
	run_maybe_done(u);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct run *u = w->data;

	if (!ev_is_default_loop(loop) && !u->exited && waitpid(u->pid, &u->status, WNOHANG) ==
	    u->pid) {
		u->exited = true;
		run_maybe_done(u);
		return;
	}
	if (ev_now(loop) >= u->deadline && !u->exited) {
		kill(-u->pid, SIGKILL);
		if (!u->eof) {	/* a grandchild may hold the pipe: stop reading it */
			ev_io_stop(loop, &u->io);
			u->eof = true;
		}
	}
	if (!u->exited) {
		ev_timer_set(w, ev_is_default_loop(loop) ? 1.0 : 0.05, 0.);
		ev_timer_start(loop, w);
	}
}

static int
x_run(struct dexec *x, const char *what, const struct dns_rec *rec, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	int pfd[2] = { -1, -1 };
	struct run *u;
	char fqdn[262];
	pid_t pid;

	if ((u = calloc(1, sizeof *u)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(fqdn, sizeof fqdn, "%s.", rec->fqdn);
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0 || (pid = fork()) < 0) {
		snprintf(err, errlen, "`%s %s`: %s", x->command, what, strerror(errno));
		if (pfd[0] >= 0) {
			close(pfd[0]);
			close(pfd[1]);
		}
		free(u);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		(void)setsid();
		if (devnull >= 0)
			(void)dup2(devnull, 0);
		(void)dup2(pfd[1], 1);
		(void)dup2(pfd[1], 2);
		execl(x->command, x->command, what, fqdn, rec->value, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	u->x = x;
	u->pid = pid;
	u->fd = pfd[0];
	u->cb = cb;
	u->arg = arg;
	snprintf(u->what, sizeof u->what, "%s", what);
	snprintf(u->fqdn, sizeof u->fqdn, "%s", fqdn);
	u->deadline = ev_now(x->loop) + EXEC_TIMEOUT;
	ev_io_init(&u->io, out_cb, u->fd, EV_READ);
	u->io.data = u;
	ev_io_start(x->loop, &u->io);
	/* ev_child only works on the default loop; elsewhere waitpid is polled */
	ev_child_init(&u->cw, child_cb, pid, 0);
	u->cw.data = u;
	if (ev_is_default_loop(x->loop))
		ev_child_start(x->loop, &u->cw);
	ev_timer_init(&u->timer, timer_cb, ev_is_default_loop(x->loop) ? 1.0 : 0.05, 0.);
	u->timer.data = u;
	ev_timer_start(x->loop, &u->timer);
	u->next = x->runs;
	if (x->runs != NULL)
		x->runs->pprev = &u->next;
	x->runs = u;
	u->pprev = &x->runs;
	return 0;
}

static int
x_check(struct dns_provider *p, const struct dns_rec *rec, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	struct dexec *x = (struct dexec *)p;

	(void)rec;
	(void)cb;
	(void)arg;
	if (access(x->command, X_OK) < 0) {
		snprintf(err, errlen, "command %s: %s: it must be an executable program, run as "
		    "`PROGRAM present|cleanup FQDN VALUE`", x->command, strerror(errno));
		return -1;
	}
	return 1;
}

static int
x_set(struct dns_provider *p, bool add, const struct dns_rec *rec, solver_cb *cb, void *arg,
    char *err, size_t errlen)
{
	return x_run((struct dexec *)p, add ? "present" : "cleanup", rec, cb, arg, err, errlen);
}

static void
x_cancel(struct dns_provider *p, void *arg)
{
	struct dexec *x = (struct dexec *)p;

	/* a run already started finishes (a cleanup must not be cut short) */
	for (struct run *u = x->runs; u != NULL; u = u->next)
		if (u->arg == arg)
			u->cb = NULL;
}

static void
x_free(struct dns_provider *p)
{
	struct dexec *x = (struct dexec *)p;

	while (x->runs != NULL)
		run_free(x->runs);
	free(x->command);
	free(x);
}

static const struct dns_provider_ops exec_ops = {
	.check = x_check, .set = x_set, .cancel = x_cancel, .free = x_free,
};

struct dns_provider *
dns_exec_new(struct ev_loop *loop, const struct config_dns *cfg, char *err, size_t errlen)
{
	struct dexec *x = calloc(1, sizeof *x);

	if (x == NULL || (x->command = strdup(cfg->command)) == NULL) {
		free(x);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	x->p.ops = &exec_ops;
	x->loop = loop;
	return &x->p;
}
