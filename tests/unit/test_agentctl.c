/* test_agentctl.c - acme/agentctl.c against the real hacme-spoa: two agents
 * (unix and tcp control sockets) started by the test from the build tree
 * ($HACME_BUILD/spoa/hacme-spoa, else ../../spoa/hacme-spoa beside this
 * program). What agentctl published is checked with agentctl_list and with
 * a plain LIST on a socket of the test's own. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "acme/agentctl.h"
#include "common/addr.h"
#include "common/log.h"
#include "tap.h"

#define THUMB "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"

static struct ev_loop *loop;
static char tmpdir[] = "/tmp/hacme-test-agentctl-XXXXXX";
static char spoa_bin[PATH_MAX];

struct agent {
	pid_t pid;
	char control[160];	/* as given to --control */
	char listen[64];
	struct addr addr;
};

struct res {
	int done;
	bool failed;
	char err[2048];
	size_t n;
	char lines[64][300];	/* LIST: "token keyauth secs [host]"; STATS: "key value" */
};

static void
on_done(void *arg, const char *err)
{
	struct res *r = arg;

	r->done++;
	r->failed = err != NULL;
	snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
}

static void
on_list(void *arg, const char *err, const struct agentctl_entry *e, size_t n)
{
	struct res *r = arg;

	on_done(arg, err);
	r->n = n;
	for (size_t i = 0; i < n && i < 64; i++)
		snprintf(r->lines[i], sizeof(r->lines[i]), "%s %s %ld%s%s", e[i].token,
		    e[i].keyauth, e[i].seconds_left, e[i].host ? " " : "", e[i].host ? e[i].host : "");
}

static void
on_stats(void *arg, const char *err, const struct agentctl_kv *kv, size_t n)
{
	struct res *r = arg;

	on_done(arg, err);
	r->n = n;
	for (size_t i = 0; i < n && i < 64; i++)
		snprintf(r->lines[i], sizeof(r->lines[i]), "%s %s", kv[i].key, kv[i].value);
}

static void
guard_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	*(int *)w->data = 1;
	ev_break(l, EVBREAK_ONE);
}

static bool (*wait_pred)(void *);
static void *wait_arg;

static void
pred_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	log_flush();
	if (wait_pred(wait_arg))
		ev_break(l, EVBREAK_ONE);
}

/* Runs the loop until pred(arg) holds or secs pass. */
static bool
run_until(bool (*pred)(void *), void *arg, double secs)
{
	ev_timer guard;
	ev_prepare prep;	/* runs before the loop would block */
	int expired = 0;

	wait_pred = pred;
	wait_arg = arg;
	ev_timer_init(&guard, guard_cb, secs, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	ev_prepare_init(&prep, pred_cb);
	ev_prepare_start(loop, &prep);
	while (!pred(arg) && !expired)
		ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
	ev_prepare_stop(loop, &prep);
	return pred(arg);
}

static bool
is_done(void *arg)
{
	return ((struct res *)arg)->done > 0;
}

static bool
is_up(void *arg)
{
	return agentctl_agent_up(arg);
}

static bool
wait_done(struct res *r)
{
	return run_until(is_done, r, 15);
}

static void
run_for(double secs)
{
	ev_timer guard;
	int expired = 0;

	ev_timer_init(&guard, guard_cb, secs, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	while (!expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
}

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Starts the agent and waits until its control socket accepts. */
static bool
agent_start(struct agent *ag)
{
	char err[256];
	int fd = -1;

	if ((ag->pid = fork()) == 0) {
		execl(spoa_bin, spoa_bin, "--listen", ag->listen, "--control", ag->control,
		    "--log-level", "warning", (char *)NULL);
		_exit(127);
	}
	if (ag->pid < 0 || addr_parse(&ag->addr, ag->control, err, sizeof(err)) < 0)
		return false;
	for (int i = 0; i < 500; i++) {
		if ((fd = addr_connect(&ag->addr, false)) >= 0)
			break;
		if (waitpid(ag->pid, NULL, WNOHANG) == ag->pid) {
			ag->pid = 0;
			return false;
		}
		usleep(10000);	/* polling the socket for readiness */
	}
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void
agent_stop(struct agent *ag)
{
	if (ag->pid > 0) {
		kill(ag->pid, SIGKILL);
		waitpid(ag->pid, NULL, 0);
	}
	ag->pid = 0;
}

/* LIST over a socket of our own: the agent's table, not agentctl's view. */
static size_t
raw_list(struct agent *ag, char *out, size_t outlen)
{
	int fd = addr_connect(&ag->addr, false);
	size_t got = 0;
	ssize_t n;

	out[0] = '\0';
	if (fd < 0)
		return 0;
	if (write(fd, "LIST\n", 5) != 5) {
		close(fd);
		return 0;
	}
	while (got < outlen - 1 && (n = read(fd, out + got, outlen - 1 - got)) > 0) {
		got += (size_t)n;
		out[got] = '\0';
		if ((got >= 4 && strcmp(out + got - 4, "END\n") == 0))
			break;
	}
	close(fd);
	return got;
}

static bool
has_line_prefix(const struct res *r, const char *prefix)
{
	for (size_t i = 0; i < r->n && i < 64; i++)
		if (strncmp(r->lines[i], prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

static long
secs_left(const struct res *r, const char *token)
{
	size_t tl = strlen(token);

	for (size_t i = 0; i < r->n && i < 64; i++)
		if (strncmp(r->lines[i], token, tl) == 0 && r->lines[i][tl] == ' ') {
			const char *sp = strchr(r->lines[i] + tl + 1, ' ');
			return sp ? strtol(sp + 1, NULL, 10) : -1;
		}
	return -1;
}

static void
list_of(struct agentctl_agent *a, struct res *r)
{
	memset(r, 0, sizeof(*r));
	if (agentctl_list(a, on_list, r) < 0)
		r->failed = true;
	else
		wait_done(r);
}

static bool
find_spoa(const char *argv0)
{
	const char *b = getenv("HACME_BUILD");
	char self[PATH_MAX];

	if (b != NULL)
		snprintf(spoa_bin, sizeof(spoa_bin), "%s/spoa/hacme-spoa", b);
	else {
		snprintf(self, sizeof(self), "%s", argv0);
		snprintf(spoa_bin, sizeof(spoa_bin), "%s/../../spoa/hacme-spoa", dirname(self));
	}
	return access(spoa_bin, X_OK) == 0;
}

static void
test_refusals(struct agentctl *set)
{
	struct res r;

	memset(&r, 0, sizeof(r));
	errno = 0;
	ok(agentctl_publish(set, "tok en", "tok en." THUMB, 60, NULL, on_done, &r) < 0 &&
	    errno == EINVAL, "token with a space refused");
	ok(agentctl_publish(set, "tok\nPING", "x." THUMB, 60, NULL, on_done, &r) < 0 &&
	    errno == EINVAL, "token with a newline refused");
	ok(agentctl_publish(set, "tokA", "tokB." THUMB, 60, NULL, on_done, &r) < 0 &&
	    errno == EINVAL, "key authorization of another token refused");
	ok(agentctl_publish(set, "tokA", "tokA." THUMB " x", 60, NULL, on_done, &r) < 0 &&
	    errno == EINVAL, "key authorization with a space refused");
	ok(agentctl_publish(set, "tokA", "tokA." THUMB, 0, NULL, on_done, &r) < 0 &&
	    errno == EINVAL, "TTL 0 refused");
	ok(agentctl_publish(set, "tokA", "tokA." THUMB, 86401, NULL, on_done, &r) < 0 &&
	    errno == EINVAL, "TTL 86401 refused");
	ok(agentctl_publish(set, "tokA", "tokA." THUMB, 60, "a b", on_done, &r) < 0 &&
	    errno == EINVAL, "host with a space refused");
	ok(agentctl_unpublish(set, "a/b", on_done, &r) < 0 && errno == EINVAL,
	    "DEL of a token with a slash refused");
	run_for(0.05);
	is_int(r.done, 0, "refused calls: no callback");
	is_int(agentctl_published(set), 0, "refused calls: nothing remembered");
}

int
main(int argc, char **argv)
{
	struct agent A, B;
	struct agentctl_opts o = { .timeout = 1.0, .backoff_min = 0.05, .backoff_max = 0.4,
	    .ping_interval = 0.3 };
	struct agentctl *set;
	struct agentctl_agent *aa, *ab;
	struct res r, r2;
	char raw[8192], want[512];
	int portb;
	ev_tstamp t0;

	log_init("test_agentctl", getenv("TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(0);
	if (!ok(find_spoa(argv[0]), "hacme-spoa found at %s", spoa_bin))
		return tap_done();
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
	snprintf(A.control, sizeof(A.control), "unix@%s/a.sock", tmpdir);
	snprintf(A.listen, sizeof(A.listen), "127.0.0.1:%d", free_port());
	portb = free_port();
	snprintf(B.control, sizeof(B.control), "tcp:127.0.0.1:%d", portb);
	snprintf(B.listen, sizeof(B.listen), "127.0.0.1:%d", free_port());
	ok(agent_start(&A), "agent A started (control %s)", A.control);
	ok(agent_start(&B), "agent B started (control %s)", B.control);

	set = agentctl_new(loop, &o);
	test_refusals(set);
	aa = agentctl_add(set, &A.addr);
	ab = agentctl_add(set, &B.addr);
	is_str(agentctl_agent_name(aa), A.control, "agent name is its address");

	/* PING both. */
	memset(&r, 0, sizeof(r));
	ok(agentctl_ping(set, on_done, &r) == 0, "ping submitted");
	is_int(r.done, 0, "no callback from inside agentctl_ping");
	ok(wait_done(&r) && !r.failed, "both agents answered PING (%s)", r.err);
	ok(agentctl_agent_up(aa) && agentctl_agent_up(ab), "both agents up");

	/* Publish: both agents get the token. */
	memset(&r, 0, sizeof(r));
	memset(&r2, 0, sizeof(r2));
	ok(agentctl_publish(set, "tok-1", "tok-1." THUMB, 300, NULL, on_done, &r) == 0,
	    "publish tok-1");
	ok(agentctl_publish(set, "tok_2", "tok_2." THUMB, 120, "Example.COM", on_done, &r2) == 0,
	    "publish tok_2 for one host");
	ok(wait_done(&r) && !r.failed, "tok-1: every agent answered OK (%s)", r.err);
	ok(wait_done(&r2) && !r2.failed, "tok_2: every agent answered OK (%s)", r2.err);
	is_int(agentctl_published(set), 2, "two tokens remembered");
	list_of(aa, &r);
	ok(!r.failed, "LIST of A");
	is_int(r.n, 2, "A holds two tokens");
	ok(has_line_prefix(&r, "tok-1 tok-1." THUMB " "), "A has tok-1 with its key authorization");
	ok(has_line_prefix(&r, "tok_2 tok_2." THUMB " "), "A has tok_2");
	ok(secs_left(&r, "tok-1") > 290 && secs_left(&r, "tok-1") <= 300, "tok-1 TTL about 300 (%ld)",
	    secs_left(&r, "tok-1"));
	list_of(ab, &r);
	is_int(r.n, 2, "B holds two tokens");
	ok(has_line_prefix(&r, "tok-1 tok-1." THUMB " "), "B has tok-1");
	raw_list(&B, raw, sizeof(raw));
	ok(strstr(raw, "tok_2 tok_2." THUMB " ") != NULL, "B's own LIST shows tok_2");
	ok(strstr(raw, "tok_2 tok_2." THUMB " 1") != NULL && strcasestr(raw, "example.com") != NULL,
	    "B's own LIST shows tok_2's host");

	/* STATS. */
	memset(&r, 0, sizeof(r));
	ok(agentctl_stats(aa, on_stats, &r) == 0, "STATS submitted");
	ok(wait_done(&r) && !r.failed, "STATS of A");
	ok(has_line_prefix(&r, "tokens 2"), "STATS: tokens 2");
	ok(has_line_prefix(&r, "connections_total ") && has_line_prefix(&r, "hits ") &&
	    has_line_prefix(&r, "protocol_errors "), "STATS: the documented keys");

	/* Unpublish. */
	memset(&r, 0, sizeof(r));
	ok(agentctl_unpublish(set, "tok_2", on_done, &r) == 0, "unpublish tok_2");
	ok(wait_done(&r) && !r.failed, "tok_2: every agent answered OK to DEL");
	is_int(agentctl_published(set), 1, "one token remembered");
	raw_list(&A, raw, sizeof(raw));
	ok(strstr(raw, "tok_2") == NULL && strstr(raw, "tok-1") != NULL, "A's own LIST: tok-1 only");

	/* Agent A killed: publishing fails naming A, B still gets the token. */
	agent_stop(&A);
	memset(&r, 0, sizeof(r));
	ok(agentctl_publish(set, "tok3", "tok3." THUMB, 200, NULL, on_done, &r) == 0,
	    "publish tok3 with A down");
	is_int(r.done, 0, "no callback from inside agentctl_publish, even with A down");
	ok(wait_done(&r) && r.failed, "tok3: failure reported");
	snprintf(want, sizeof(want), "agent %s: ", A.control);
	ok(strstr(r.err, want) != NULL, "the error names agent A: %s", r.err);
	snprintf(want, sizeof(want), "agent %s", B.control);
	ok(strstr(r.err, want) == NULL, "the error does not name agent B");
	ok(!agentctl_agent_up(aa), "A is down");
	raw_list(&B, raw, sizeof(raw));
	ok(strstr(raw, "tok3 tok3.") != NULL, "B got tok3 meanwhile");

	/* A restarted (empty table): agentctl re-adds tok-1 and tok3. */
	ok(agent_start(&A), "agent A restarted");
	ok(run_until(is_up, aa, 10), "A is up again");
	list_of(aa, &r);
	ok(has_line_prefix(&r, "tok-1 tok-1." THUMB " "), "restarted A got tok-1 again");
	ok(has_line_prefix(&r, "tok3 tok3." THUMB " "), "restarted A got tok3, whose publish failed");
	ok(secs_left(&r, "tok-1") > 0 && secs_left(&r, "tok-1") <= 300,
	    "re-added with the TTL left (%ld)", secs_left(&r, "tok-1"));
	ok(!has_line_prefix(&r, "tok_2 "), "restarted A did not get the unpublished tok_2");

	/* B hangs (SIGSTOP): the request times out, naming B; after SIGCONT B
	 * is reconnected and gets the token. */
	kill(B.pid, SIGSTOP);
	memset(&r, 0, sizeof(r));
	ev_now_update(loop);
	t0 = ev_now(loop);
	agentctl_publish(set, "tok4", "tok4." THUMB, 100, NULL, on_done, &r);
	ok(wait_done(&r) && r.failed, "tok4 with B stopped: failure reported");
	snprintf(want, sizeof(want), "agent %s: no reply within 1 s", B.control);
	ok(strstr(r.err, want) != NULL, "the error names B and the timeout: %s", r.err);
	ev_now_update(loop);
	ok(ev_now(loop) - t0 < 3, "the timeout took %.2f s", ev_now(loop) - t0);
	kill(B.pid, SIGCONT);
	ok(run_until(is_up, ab, 10), "B is up again after SIGCONT");
	raw_list(&B, raw, sizeof(raw));
	ok(strstr(raw, "tok4 tok4.") != NULL, "B got tok4 after coming back");

	/* An unreachable agent gives an error naming its address. */
	{
		struct addr c1, c2;
		char err[256], a1[64], a2[200];
		snprintf(a1, sizeof(a1), "127.0.0.1:%d", free_port());
		snprintf(a2, sizeof(a2), "unix@%s/nobody.sock", tmpdir);
		addr_parse(&c1, a1, err, sizeof(err));
		addr_parse(&c2, a2, err, sizeof(err));
		agentctl_add(set, &c1);
		agentctl_add(set, &c2);
		memset(&r, 0, sizeof(r));
		agentctl_ping(set, on_done, &r);
		ok(wait_done(&r) && r.failed, "PING with two unreachable agents fails");
		snprintf(want, sizeof(want), "agent %s: connect: Connection refused", a1);
		ok(strstr(r.err, want) != NULL, "tcp agent: '%s' in: %s", want, r.err);
		snprintf(want, sizeof(want), "agent %s: connect: No such file or directory", a2);
		ok(strstr(r.err, want) != NULL, "unix agent: '%s'", want);
		ok(strstr(r.err, A.control) == NULL && strstr(r.err, B.control) == NULL,
		    "the error does not name the agents that answered");
	}
	agentctl_free(set);

	/* Many tokens pipelined on a fresh set; TTL expiry forgets a token. */
	{
		enum { N = 500 };
		static struct res rs[N];
		char tok[32], ka[128];
		int good = 0;
		struct agentctl *s2 = agentctl_new(loop, &o);
		struct agentctl_agent *a2 = agentctl_add(s2, &A.addr);

		memset(rs, 0, sizeof(rs));
		ev_now_update(loop);
		t0 = ev_now(loop);
		for (int i = 0; i < N; i++) {
			snprintf(tok, sizeof(tok), "many-%d", i);
			snprintf(ka, sizeof(ka), "%s." THUMB, tok);
			agentctl_publish(s2, tok, ka, 600, NULL, on_done, &rs[i]);
		}
		ok(wait_done(&rs[N - 1]), "500 publishes answered");
		ev_now_update(loop);
		for (int i = 0; i < N; i++)
			good += rs[i].done == 1 && !rs[i].failed;
		is_int(good, N, "500 publishes: all OK");
		printf("# 500 publishes pipelined to one agent: %.3f s\n", ev_now(loop) - t0);
		{
			static char big[128 * 1024];
			int count = 0;
			raw_list(&A, big, sizeof(big));
			for (char *p = big; (p = strstr(p, "\nmany-")) != NULL; p++)
				count++;
			count += strncmp(big, "many-", 5) == 0;
			is_int(count, N, "the agent's own LIST shows the 500 tokens");
		}
		memset(&r, 0, sizeof(r));
		agentctl_stats(a2, on_stats, &r);
		wait_done(&r);
		ok(has_line_prefix(&r, "tokens 503"), "STATS: 500 + tok-1, tok3, tok4");

		memset(&r, 0, sizeof(r));
		agentctl_publish(s2, "short", "short." THUMB, 1, NULL, on_done, &r);
		wait_done(&r);
		is_int(agentctl_published(s2), N + 1, "short-lived token remembered");
		run_for(1.1);
		is_int(agentctl_published(s2), N, "expired token forgotten");

		/* Free with requests pending: no callback. */
		memset(&r, 0, sizeof(r));
		agentctl_ping(s2, on_done, &r);
		agentctl_free(s2);
		run_for(0.1);
		is_int(r.done, 0, "agentctl_free: pending callbacks not called");
	}

	/* No agent configured. */
	{
		struct agentctl *s3 = agentctl_new(loop, &o);
		memset(&r, 0, sizeof(r));
		agentctl_publish(s3, "t", "t." THUMB, 10, NULL, on_done, &r);
		ok(wait_done(&r) && r.failed, "publish with no agent fails");
		is_str(r.err, "no agent configured", "no agent: error text");
		agentctl_free(s3);
	}

	agent_stop(&A);
	agent_stop(&B);
	tap_rmtree(tmpdir);
	log_flush();
	return tap_done();
}
