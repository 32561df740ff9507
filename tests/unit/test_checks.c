/* test_checks.c - acme/checks.c without HAProxy: the crt-list listing
 * match, directory checks, a runtime-api nobody listens on, results shared
 * and reused, cancel. (With a real HAProxy: tests/integration/test_checks.py.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "acme/checks.h"
#include "acme/config.h"
#include "tap.h"

static char dir[] = "/tmp/hacme-test-checks-XXXXXX";
static char err[CONFIG_ERR_MAX];

struct got {
	int calls;
	char error[CHECKS_ERR_MAX];
	size_t n, warns;
	struct ev_loop *loop;
	int stop_after;
};

static void
got_cb(void *arg, const struct checks_report *r)
{
	struct got *g = arg;

	g->calls++;
	snprintf(g->error, sizeof g->error, "%s", r->error != NULL ? r->error : "");
	g->n = r->n;
	g->warns = 0;
	for (size_t i = 0; i < r->n; i++)
		g->warns += r->findings[i].level == CHECKS_WARN;
	if (g->calls >= g->stop_after)
		ev_break(g->loop, EVBREAK_ONE);
}

static int
load(struct config *c, const char *text)
{
	int rc = config_parse(c, "t.cfg", text, strlen(text), err, sizeof err);

	if (rc < 0)
		printf("# config: %s\n", err);
	return rc;
}

static void
test_listed(void)
{
	char list[512], link[512], other[512], reply[2048];
	FILE *f;

	snprintf(list, sizeof list, "%s/certs.list", dir);
	snprintf(link, sizeof link, "%s/link.list", dir);
	snprintf(other, sizeof other, "%s/other.list", dir);
	ok((f = fopen(list, "w")) != NULL, "crt-list written");
	if (f != NULL)
		fclose(f);
	ok((f = fopen(other, "w")) != NULL, "another crt-list written");
	if (f != NULL)
		fclose(f);
	ok(symlink(list, link) == 0, "a symlink to it");

	snprintf(reply, sizeof reply, "/etc/haproxy/x.list\n%s\n", list);
	ok(checks_crtlist_listed(reply, strlen(reply), list), "listed by its path");
	snprintf(reply, sizeof reply, "%s  \r\n", list);
	ok(checks_crtlist_listed(reply, strlen(reply), list), "trailing blanks and CR ignored");
	snprintf(reply, sizeof reply, "%s\n", link);
	ok(checks_crtlist_listed(reply, strlen(reply), list),
	    "HAProxy names it through a symlink: same device and inode");
	snprintf(reply, sizeof reply, "%s\n", dir);
	ok(checks_crtlist_listed(reply, strlen(reply), dir), "a directory bound with `crt DIR`");
	snprintf(reply, sizeof reply, "%s\n/nonexistent.list\n", other);
	ok(!checks_crtlist_listed(reply, strlen(reply), list), "another crt-list: not listed");
	ok(!checks_crtlist_listed("", 0, list), "no crt-list at all: not listed");
	snprintf(reply, sizeof reply, "# %s\n", list);
	ok(!checks_crtlist_listed(reply, strlen(reply), list), "a comment line is no entry");
	snprintf(reply, sizeof reply, "%s", list);
	ok(checks_crtlist_listed(reply, strlen(reply) - 1, list) == false,
	    "a cut reply does not match a longer path");
}

static void
test_runs(void)
{
	struct ev_loop *loop = ev_default_loop(0);
	struct checks *k = checks_new(loop, &(struct checks_opts){ .timeout = 2, .ttl = 60 });
	struct config good = { 0 }, bad = { 0 }, sock = { 0 };
	struct got a = { .loop = loop, .stop_after = 1 }, b = { .loop = loop, .stop_after = 1 };
	char text[2048], file[512];
	FILE *f;

	ok(k != NULL, "checks_new");
	snprintf(text, sizeof text, "global\n  state-dir %s/state\nca x\n  directory https://x.example/d\n",
	    dir);
	ok(load(&good, text) == 0, "config without HAProxy");
	ok(checks_run(k, &good, got_cb, &a) == 0, "checks_run");
	ok(a.calls == 0, "no callback inside checks_run");
	ok(checks_run(k, &good, got_cb, &a) == -1, "the same arg twice: EBUSY");
	ev_run(loop, 0);
	is_int(a.calls, 1, "one callback");
	is_str(a.error, "", "state-dir (to be made) writable: no error");
	ok(a.warns == 1, "a warning: nothing deploys (no runtime-api, no reload-command)");

	/* the state dir's parent becomes a file: the cached result still says ok
	 * for the same config within ttl, a new config sees it */
	snprintf(file, sizeof file, "%s/blocker", dir);
	ok((f = fopen(file, "w")) != NULL, "a file where a directory should be");
	if (f != NULL)
		fclose(f);
	snprintf(text, sizeof text, "global\n  state-dir %s/state\n  cert-dir %s/sub\n"
	    "ca x\n  directory https://x.example/d\n", dir, file);
	ok(load(&bad, text) == 0, "config with cert-dir under a file");
	a.calls = 0;
	ok(checks_run(k, &good, got_cb, &a) == 0, "the same config again");
	ev_run(loop, 0);
	is_int(a.calls, 1, "answered from the last result");
	is_str(a.error, "", "cached within ttl: no error");
	ok(checks_run(k, &bad, got_cb, &b) == 0, "another config");
	ev_run(loop, 0);
	if (!ok(strstr(b.error, "cert-dir") != NULL && strstr(b.error, "Not a directory") != NULL,
	    "the new config is checked: cert-dir under a file"))
		printf("# got '%s'\n", b.error);

	/* a runtime-api nobody listens on; cancel one of two waiters */
	snprintf(text, sizeof text, "global\n  state-dir %s/state\n  runtime-api unix@%s/none.sock\n"
	    "ca x\n  directory https://x.example/d\n", dir, dir);
	ok(load(&sock, text) == 0, "config with a dead runtime-api");
	a.calls = b.calls = 0;
	a.stop_after = 1;
	ok(checks_run(k, &sock, got_cb, &a) == 0 && checks_run(k, &sock, got_cb, &b) == 0,
	    "two waiters on one run");
	checks_cancel(k, &b);
	ev_run(loop, 0);
	is_int(a.calls, 1, "the waiter got the result");
	is_int(b.calls, 0, "the cancelled waiter got nothing");
	ok(strstr(a.error, "connect: No such file or directory") != NULL &&
	    strstr(a.error, "is HAProxy running") != NULL, "dead runtime-api named: '%s'", a.error);
	checks_free(k);
	config_free(&good);
	config_free(&bad);
	config_free(&sock);
	unlink(file);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_listed();
	test_runs();
	tap_rmtree(dir);
	return tap_done();
}
