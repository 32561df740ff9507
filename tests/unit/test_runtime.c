/* test_runtime.c - acme/runtime.c: the reply parsers on real HAProxy 2.6.12
 * texts, and the client against a scripted stand-in for HAProxy's CLI (a
 * forked process on a unix socket: one request per connection, each
 * request appended to a log file the test reads back). The real HAProxy is
 * exercised by tests/integration/test_deploy.py. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "acme/runtime.h"
#include "common/log.h"
#include "fakecli.h"
#include "tap.h"

static struct ev_loop *loop;
static char tmpdir[] = "/tmp/hacme-test-runtime-XXXXXX";
static char sock_path[100], log_path[200];

/* ---- the stand-in ------------------------------------------------------ */

struct fake {
	size_t bufsize;		/* requests longer than bufsize - 1 hang; 0: none */
	bool master;		/* expects "@1 " and "quit\n" */
	bool hide;		/* no "Pool buffer" line in show pools */
};

static int busy_left;		/* replies of "busy" still to refuse */
static int busymid_left;	/* ... of "busymid" */

static void
fake_reply(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;
	ssize_t w;

	while (off < n && (w = write(fd, s + off, n - off)) > 0)
		off += (size_t)w;
}

/* Reads one whole request; its length, or -1 when the client went away. */
static ssize_t
fake_read(int fd, char *buf, size_t max, const struct fake *f)
{
	size_t len = 0;
	ssize_t n;

	for (;;) {
		char *nl;
		bool payload;
		if (len == max)
			return -2;	/* like 2.6: a full buffer, no reply */
		n = read(fd, buf + len, max - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if ((nl = memchr(buf, '\n', len)) == NULL)
			continue;
		payload = nl - buf >= 3 && memcmp(nl - 3, " <<", 3) == 0;
		if (payload && strstr(buf, "\n\n") == NULL)
			continue;
		if (f->master && strstr(buf, "quit\n") == NULL)
			continue;
		return (ssize_t)len;
	}
}

static void
fake_serve(int fd, const struct fake *f)
{
	char buf[70000], out[80000], *cmd = buf;
	size_t max = f->bufsize ? f->bufsize - 1 : sizeof(buf) - 1;
	ssize_t len = fake_read(fd, buf, max, f);
	FILE *log;

	if (len == -2) {	/* oversized: HAProxy 2.6 waits, then we close */
		sleep(2);
		return;
	}
	if (len < 0)
		return;
	if ((log = fopen(log_path, "a")) != NULL) {
		fprintf(log, "%s\x1e", buf);
		fclose(log);
	}
	if (f->master) {
		if (strncmp(buf, "@1 ", 3) != 0) {
			fake_reply(fd, "Unknown command (not @1)\n\n");
			return;
		}
		cmd += 3;
	}
	if (strncmp(cmd, "show pools\n", 11) == 0) {
		snprintf(out, sizeof(out), "Dumping pools usage.\n"
		    "  - Pool trash (8224 bytes) : 1 allocated\n%s"
		    "Total: 2 pools\n\n", f->bufsize && !f->hide ?
		    "  - Pool buffer (1024 bytes) : 2 allocated (2048 bytes)\n" : "");
		if (f->bufsize && !f->hide && f->bufsize != 1024) {
			snprintf(out, sizeof(out), "  - Pool buffer (%zu bytes) : 2 allocated\n\n",
			    f->bufsize);
		}
		fake_reply(fd, out);
	} else if (strncmp(cmd, "echo ", 5) == 0) {
		snprintf(out, sizeof(out), "%.*s\n\n", (int)(strchr(cmd, '\n') - cmd - 5), cmd + 5);
		fake_reply(fd, out);
	} else if (strncmp(cmd, "set ", 4) == 0) {
		char *p = strchr(cmd, '\n') + 1, *end = strstr(p, "\n\n");
		snprintf(out, sizeof(out), "got %d bytes:\n%.*s\n\n", (int)(end - p),
		    (int)(end - p), p);
		fake_reply(fd, out);
	} else if (strncmp(cmd, "busymid\n", 8) == 0) {
		if (busymid_left-- > 0)
			fake_reply(fd, "New empty certificate store '/x'!\n\n"
			    "Operations on certificates are currently locked!\n\n");
		else
			fake_reply(fd, "New empty certificate store '/x'!\n\nSuccess!\n\n");
	} else if (strncmp(cmd, "busy\n", 5) == 0) {
		if (busy_left-- > 0)
			fake_reply(fd, "Operations on certificates are currently locked!\n\n");
		else
			fake_reply(fd, "Committing x\nSuccess!\n\n");
	} else if (strncmp(cmd, "sleep\n", 6) == 0) {
		sleep(3);
	} else if (strncmp(cmd, "close\n", 6) == 0) {
		/* nothing */
	} else if (strncmp(cmd, "list\n", 5) == 0) {
		fake_reply(fd, "# transaction\n*/etc/x.pem\n# filename\n");
		for (int i = 0; i < 2000; i++) {
			snprintf(out, sizeof(out), "/etc/haproxy/certs/name-%d.pem\n", i);
			fake_reply(fd, out);
		}
		fake_reply(fd, "\n");
	} else {
		fake_reply(fd, "Unknown command.\n\n");
	}
}

static void
fake_serve_close(int fd, const void *f)
{
	fake_serve(fd, f);
	close(fd);
}

static pid_t
fake_start(const struct fake *f, int busy)
{
	unlink(sock_path);
	unlink(log_path);
	busy_left = busymid_left = busy;	/* what the forked child counts down */
	return fakecli_start(sock_path, fake_serve_close, f);
}

/* The requests the stand-in saw, separated by \x1e. */
static char *
fake_log(void)
{
	static char buf[200000];
	FILE *f = fopen(log_path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay++;
	}
	return n;
}

/* ---- the client side --------------------------------------------------- */

struct res {
	int calls;
	bool err;
	char text[100000];
	size_t len;
};

static void
on_reply(void *arg, const char *err, const char *reply, size_t len)
{
	struct res *r = arg;

	r->calls++;
	r->err = err != NULL;
	if (err != NULL) {
		snprintf(r->text, sizeof(r->text), "%s", err);
		r->len = strlen(r->text);
	} else {
		r->len = len < sizeof(r->text) - 1 ? len : sizeof(r->text) - 1;
		memcpy(r->text, reply, r->len);
		r->text[r->len] = '\0';
		ok(reply[len] == '\0', "reply is NUL-terminated");
	}
}

static void
run_until(int *counter, int want, double secs)
{
	ev_tstamp end = ev_time() + secs;

	while (*counter < want && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
}

static struct runtime *
rt_open(const char *prefix, const struct runtime_opts *o)
{
	char addr[300], err[RUNTIME_ERR_MAX];
	struct runtime *rt;

	snprintf(addr, sizeof(addr), "%s%s", prefix, sock_path);
	rt = runtime_new(loop, addr, o, err, sizeof(err));
	if (rt == NULL)
		printf("# runtime_new: %s\n", err);
	return rt;
}

static void
test_parsers(void)
{
	static const char pools[] =
	    "Dumping pools usage. Use SIGQUIT to flush them.\n"
	    "  - Pool hpack_tbl (4096 bytes) : 0 allocated (0 bytes), 0 used\n"
	    "  - Pool buffer (8192 bytes) : 2 allocated (16384 bytes), 2 used (~0 by thread caches)\n"
	    "  - Pool trash (8224 bytes) : 1 allocated (8224 bytes), 1 used\n"
	    "Total: 19 pools, 73416 bytes allocated\n";
	static const char listing[] =
	    "# transaction\n*/tmp/hx/certs/a.example.pem\n# filename\n"
	    "/tmp/hx/certs/a.example.pem\n/tmp/hx/certs/fallback.pem\n";
	static const char show[] =
	    "Filename: */tmp/hx/certs/a.example.pem\nStatus: Unused\n"
	    "Serial: 00472CCF2E67697CE0\nnotBefore: Nov 26 23:29:40 2026 GMT\n"
	    "notAfter: Dec  3 23:29:40 2026 GMT\nSubject Alternative Name: DNS:a.example\n"
	    "Algorithm: EC256\nSHA1 FingerPrint: 46166F64CA4F83C81297E3FDB229E33C39F36FF2\n"
	    "Subject: /CN=a.example\nIssuer: /CN=testca\nOCSP Response Key: \n";
	struct runtime_cert c;
	char name[256];

	is_int(runtime_parse_bufsize(pools, sizeof(pools) - 1), 8192, "bufsize from show pools");
	is_int(runtime_parse_bufsize("  - Pool trash (8224 bytes) : 1\n", 32), 0,
	    "no buffer pool: 0");
	is_int(runtime_parse_bufsize("  - Pool buffer (abc bytes)\n", 27), 0, "garbage size: 0");
	ok(runtime_parse_transaction(listing, sizeof(listing) - 1, name, sizeof(name)),
	    "pending transaction found");
	is_str(name, "/tmp/hx/certs/a.example.pem", "its name, without '*'");
	ok(!runtime_parse_transaction("# filename\n/a.pem\n", 18, name, sizeof(name)),
	    "no transaction");
	ok(!runtime_parse_transaction(listing, sizeof(listing) - 1, name, 10),
	    "a name that does not fit: false");
	ok(!runtime_parse_transaction("# filename\n*/odd.pem\n", 21, name, sizeof(name)),
	    "'*' outside '# transaction' is not a transaction");
	ok(runtime_parse_cert(show, sizeof(show) - 1, &c), "show ssl cert parses");
	is_str(c.status, "Unused", "status");
	is_str(c.serial, "472CCF2E67697CE0", "serial, leading zeros dropped");
	is_int(c.not_after, 1796340580, "notAfter (Dec  3 23:29:40 2026 GMT)");
	ok(!runtime_parse_cert("Can't display the certificate: Not found or the certificate "
	    "is a bundle!\n", 70, &c) && !c.found, "unknown certificate: not found");
	ok(runtime_parse_cert("Filename: /x.pem\nStatus: Empty\nOCSP Response Key: \n", 50, &c) &&
	    strcmp(c.status, "Empty") == 0 && c.serial[0] == '\0' && c.not_after == 0,
	    "an empty store: no serial, no notAfter");
	is_int(runtime_parse_time("Jan  1 00:00:00 1970 GMT", 24), 0, "epoch");
	is_int(runtime_parse_time("Feb 29 12:00:00 2028 GMT", 24), 1835438400, "leap day");
	is_int(runtime_parse_time("Feb 29 12:00:00.5 2028 GMT", 26), 1835438400,
	    "fractional seconds");
	is_int(runtime_parse_time("Foo 29 12:00:00 2028 GMT", 24), -1, "bad month");
	is_int(runtime_parse_time("Feb 29 12:00:00 2028 UTC", 24), -1, "not GMT");
	is_int(runtime_parse_time("Feb 29 25:00:00 2028 GMT", 24), -1, "bad hour");
	is_int(runtime_parse_time("Feb", 3), -1, "short");
	ok(runtime_reply_ends("Committing /x.pem\n.\nSuccess!\n", 29, "Success!"),
	    "reply ends with Success!");
	ok(!runtime_reply_ends("Committing /x.pem\nNoSuccess!\n", 29, "Success!"),
	    "only a whole last line counts");
	ok(runtime_reply_ends("Success!", 8, "Success!"), "a one-line reply");
	{
		static const char chain[] = "Committing /a.pem\nSuccess!\n\nFilename: /a.pem\nStatus: Used";
		size_t at = 0;
		ok(runtime_reply_has(chain, sizeof(chain) - 1, "Filename: /a.pem", &at) && at == 28,
		    "reply_has: a line in the middle, and where");
		ok(runtime_reply_has(chain, sizeof(chain) - 1, "Status: Used", NULL),
		    "reply_has: the last line without LF");
		ok(!runtime_reply_has(chain, sizeof(chain) - 1, "Success", NULL) &&
		    !runtime_reply_has(chain, sizeof(chain) - 1, "Status: Use", NULL),
		    "reply_has: only whole lines");
	}
}

static void
test_commands(void)
{
	struct fake f = { 0, false, false };
	struct runtime *rt;
	struct res r;
	pid_t pid = fake_start(&f, 2);
	int n;

	rt = rt_open("unix@", NULL);
	ok(rt != NULL, "runtime_new unix@");
	{
		char want[300];
		snprintf(want, sizeof(want), "unix@%s", sock_path);
		is_str(runtime_name(rt), want, "runtime_name is the address as given");
	}

	memset(&r, 0, sizeof(r));
	n = runtime_cmd(rt, "echo hello world", NULL, 0, on_reply, &r);
	is_int(n, 0, "runtime_cmd accepted");
	is_int(r.calls, 0, "no callback inside the call");
	run_until(&r.calls, 1, 5);
	ok(r.calls == 1 && !r.err, "reply arrived");
	is_str(r.text, "hello world", "reply text, without the empty line");

	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "set ssl cert /x.pem", "line1\r\nline2\n\n", 14, on_reply, &r);
	run_until(&r.calls, 1, 5);
	is_str(r.text, "got 11 bytes:\nline1\nline2", "payload sent without CRs and trailing LFs");
	ok(strstr(fake_log(), "show pools\n") != NULL, "tune.bufsize asked for first");
	ok(strstr(fake_log(), "set ssl cert /x.pem <<\nline1\nline2\n\n") != NULL,
	    "request is 'cmd <<\\npayload\\n\\n'");
	is_int(runtime_bufsize(rt), 0, "this HAProxy shows no buffer pool: unknown");

	errno = 0;
	ok(runtime_cmd(rt, "set ssl cert /x.pem", "a\n\nb", 4, on_reply, &r) < 0 && errno == EINVAL,
	    "payload with an empty line refused");
	ok(runtime_cmd(rt, "set ssl cert /x.pem", "a\n\r\nb", 5, on_reply, &r) < 0,
	    "payload with a CR-only line refused");
	ok(runtime_cmd(rt, "set ssl cert /x.pem", "a\0b", 3, on_reply, &r) < 0,
	    "payload with a NUL refused");
	ok(runtime_cmd(rt, "set ssl cert /x.pem", "\n\n", 2, on_reply, &r) < 0,
	    "empty payload refused");
	ok(runtime_cmd(rt, "show\nquit", NULL, 0, on_reply, &r) < 0, "command with LF refused");
	ok(runtime_cmd(rt, "", NULL, 0, on_reply, &r) < 0, "empty command refused");

	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "busy", NULL, 0, on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(!r.err && runtime_reply_ends(r.text, r.len, "Success!"),
	    "'currently locked' retried until it went through");
	ok(strstr(fake_log(), "busy\n\x1e" "busy\n\x1e" "busy\n") != NULL, "three attempts");

	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "busymid", NULL, 0, on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(!r.err && runtime_reply_ends(r.text, r.len, "Success!"),
	    "'currently locked' in the middle of a chained reply: retried too");
	is_int(count(fake_log(), "busymid\n"), 3, "busymid: three attempts");

	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "close", NULL, 0, on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(r.err && strstr(r.text, "closed the connection without a reply"),
	    "closed without reply: error");
	ok(strstr(r.text, "HAProxy unix@") == r.text, "error names the HAProxy: %s", r.text);

	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "set ssl cert /y.pem", "data", 4, on_reply, &r);
	runtime_cancel(rt, &r);
	runtime_cmd(rt, "echo after", NULL, 0, on_reply, &r);
	run_until(&r.calls, 1, 5);
	is_str(r.text, "after", "a cancelled command gives no callback");

	memset(&r, 0, sizeof(r));
	runtime_cmd_head(rt, "list", "# filename", on_reply, &r);
	run_until(&r.calls, 1, 5);
	is_str(r.text, "# transaction\n*/etc/x.pem", "head: stops before the stop line");

	runtime_free(rt);
	fakecli_stop(pid);
}

static void
test_timeouts(void)
{
	struct fake f = { 0, false, false };
	struct runtime_opts o = { .timeout = 0.5 };
	struct runtime *rt;
	struct res r;
	pid_t pid = fake_start(&f, 0);

	rt = rt_open("unix@", &o);
	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "sleep", NULL, 0, on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(r.err && strstr(r.text, "no reply within 0.5 s"), "timeout: %s", r.text);

	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "set ssl cert /x.pem", "x", 1, on_reply, &r);
	fakecli_stop(pid);
	run_until(&r.calls, 1, 5);
	ok(r.err && (strstr(r.text, "connect:") || strstr(r.text, "without a reply") ||
	    strstr(r.text, "no reply")), "HAProxy gone: %s", r.text);
	runtime_free(rt);

	unlink(sock_path);
	rt = rt_open("unix@", &o);
	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "echo x", NULL, 0, on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(r.err && strstr(r.text, "connect: No such file or directory"), "no socket: %s", r.text);
	runtime_free(rt);
}

static void
test_bufsize(void)
{
	struct fake f = { 1024, false, false };
	struct runtime_opts o = { .timeout = 1 };
	struct runtime *rt;
	struct res r;
	char big[1100];
	pid_t pid = fake_start(&f, 0);

	/* "set ssl cert /x.pem <<\n" + payload + "\n\n" = 23 + n + 2 */
	memset(big, 'A', sizeof(big));
	rt = rt_open("unix@", &o);
	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "set ssl cert /x.pem", big, 1023 - 25, on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(!r.err && strstr(r.text, "got 998 bytes"), "a request of bufsize - 1 bytes goes through");
	is_int(runtime_bufsize(rt), 1024, "bufsize learned from show pools");

	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "set ssl cert /x.pem", big, 1024 - 25, on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(r.err && strstr(r.text, "tune.bufsize"), "one byte more: refused, naming tune.bufsize");
	ok(strstr(r.text, "1024 bytes, HAProxy's buffer holds 1023") != NULL, "with both sizes: %s", r.text);
	is_int(count(fake_log(), "set ssl cert"), 1, "the refused request was never sent");
	runtime_free(rt);
	fakecli_stop(pid);

	/* Size unknown: HAProxy 2.6 just waits; the timeout names tune.bufsize. */
	f.hide = true;
	pid = fake_start(&f, 0);
	rt = rt_open("unix@", &o);
	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "set ssl cert /x.pem", big, sizeof(big), on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(r.err && strstr(r.text, "no reply") && strstr(r.text, "tune.bufsize"),
	    "size unknown: a payload without reply names tune.bufsize");
	runtime_free(rt);
	fakecli_stop(pid);
}

static void
test_master(void)
{
	struct fake f = { 16384, true, false };
	struct runtime *rt;
	struct res r;
	pid_t pid = fake_start(&f, 0);

	rt = rt_open("master@unix@", NULL);
	ok(rt != NULL, "runtime_new master@unix@");
	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "echo via master", NULL, 0, on_reply, &r);
	run_until(&r.calls, 1, 5);
	is_str(r.text, "via master", "master CLI: reply");
	ok(strstr(fake_log(), "@1 echo via master\nquit\n") != NULL, "sent as '@1 cmd' + quit");
	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "echo a;echo b;set ssl cert /c.pem", "P", 1, on_reply, &r);
	run_until(&r.calls, 1, 5);
	ok(strstr(fake_log(), "@1 echo a;@1 echo b;@1 set ssl cert /c.pem <<\nP\n\nquit\n") != NULL,
	    "chained commands: each gets its @1");
	memset(&r, 0, sizeof(r));
	runtime_cmd(rt, "set ssl cert /x.pem", "P1\nP2", 5, on_reply, &r);
	run_until(&r.calls, 1, 5);
	is_str(r.text, "got 5 bytes:\nP1\nP2", "master CLI: payload");
	ok(strstr(fake_log(), "@1 show pools\nquit\n") != NULL, "bufsize asked through @1");
	ok(strstr(fake_log(), "@1 set ssl cert /x.pem <<\nP1\nP2\n\nquit\n") != NULL,
	    "payload then quit");
	is_int(runtime_bufsize(rt), 16384, "bufsize of the worker");
	runtime_free(rt);
	fakecli_stop(pid);
}

struct turn {
	int calls;
	bool err;
	char text[RUNTIME_ERR_MAX];
	int order;
};

static int turn_seq;

static void
on_turn(void *arg, const char *err)
{
	struct turn *t = arg;

	t->calls++;
	t->err = err != NULL;
	t->order = ++turn_seq;
	snprintf(t->text, sizeof(t->text), "%s", err ? err : "");
}

/* The one runtime-*.lock in tmpdir. */
static int
lock_file(char *path, size_t len)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int rc = -1;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "runtime-", 8) == 0) {
			snprintf(path, len, "%s/%s", tmpdir, e->d_name);
			rc = 0;
		}
	}
	if (d != NULL)
		closedir(d);
	return rc;
}

static void
test_turns(void)
{
	struct runtime_opts o = { .lock_dir = tmpdir, .lock_timeout = 0.4 };
	struct runtime *rt, *rt2;
	struct turn a, b, c;
	char lock[400];
	int fd, pipefd[2];
	pid_t pid;

	rt = rt_open("unix@", &o);
	rt2 = rt_open("unix@", &o);	/* same HAProxy, as a second process would */
	ok(rt != NULL && rt2 != NULL, "runtimes with a lock dir");
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	is_int(runtime_lock(rt, on_turn, &a), 0, "turn asked (a)");
	is_int(runtime_lock(rt, on_turn, &b), 0, "turn asked (b)");
	ok(runtime_lock(rt, on_turn, &a) < 0 && errno == EBUSY, "a second ask by a: EBUSY");
	is_int(a.calls + b.calls, 0, "no callback inside the call");
	run_until(&a.calls, 1, 2);
	ok(a.calls == 1 && !a.err, "a holds the turn");
	ev_run(loop, EVRUN_NOWAIT);
	is_int(b.calls, 0, "b waits while a holds it");
	runtime_lock(rt2, on_turn, &c);
	run_until(&c.calls, 1, 2);
	ok(c.calls == 1 && c.err && strstr(c.text, "another process holds"),
	    "the flock keeps another holder of the same HAProxy out: %s", c.text);
	{
		uint64_t e = runtime_turn_epoch(rt);
		runtime_unlock(rt, &a);
		run_until(&b.calls, 1, 2);
		ok(b.calls == 1 && !b.err && b.order > a.order,
		    "b gets the turn after a gives it back");
		is_int(runtime_turn_epoch(rt), e, "handed from a to b: the same hold (epoch)");
	}
	runtime_cancel(rt, &b);	/* releases the held turn */
	memset(&c, 0, sizeof(c));
	runtime_lock(rt2, on_turn, &c);
	run_until(&c.calls, 1, 2);
	ok(c.calls == 1 && !c.err, "cancel released the turn and its flock");
	{
		uint64_t e = runtime_turn_epoch(rt2);
		struct turn d2;
		memset(&d2, 0, sizeof(d2));
		runtime_unlock(rt2, &c);	/* nobody waits: the flock goes */
		runtime_lock(rt2, on_turn, &d2);
		run_until(&d2.calls, 1, 2);
		ok(d2.calls == 1 && !d2.err && runtime_turn_epoch(rt2) == e + 1,
		    "a turn after a free moment: a new hold (epoch + 1)");
		runtime_unlock(rt2, &d2);
	}

	/* A second process holds the flock for a while: we wait for it. */
	if (lock_file(lock, sizeof(lock)) < 0 || pipe(pipefd) < 0)
		return;
	if ((pid = fork()) == 0) {
		if ((fd = open(lock, O_RDWR)) < 0 || flock(fd, LOCK_EX) < 0 ||
		    write(pipefd[1], "x", 1) != 1)
			_exit(1);
		usleep(250000);
		/* "y" goes before the flock is let go: whoever gets it after sees "y" */
		if (write(pipefd[1], "y", 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(pipefd[1]);
	{
		char x;
		ok(read(pipefd[0], &x, 1) == 1, "another process holds the flock");
	}
	memset(&a, 0, sizeof(a));
	o.lock_timeout = 5;
	runtime_free(rt2);
	rt2 = rt_open("unix@", &o);
	{
		char y = 0;
		runtime_lock(rt2, on_turn, &a);
		run_until(&a.calls, 1, 5);
		ok(a.calls == 1 && !a.err, "granted once the other process let go");
		(void)fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
		ok(read(pipefd[0], &y, 1) == 1 && y == 'y', "and not before");
		close(pipefd[0]);
	}
	waitpid(pid, NULL, 0);
	runtime_unlock(rt2, &a);
	runtime_free(rt);
	runtime_free(rt2);
}

static struct runtime *free_me;

static void
on_reply_free(void *arg, const char *err, const char *reply, size_t len)
{
	struct res *r = arg;

	r->calls++;
	runtime_free(free_me);	/* from inside a callback */
}

static void
test_free_in_callback(void)
{
	struct fake f = { 0, false, false };
	struct res r, r2;
	pid_t pid = fake_start(&f, 0);

	free_me = rt_open("unix@", NULL);
	memset(&r, 0, sizeof(r));
	memset(&r2, 0, sizeof(r2));
	runtime_cmd(free_me, "close", NULL, 0, on_reply_free, &r);
	runtime_cmd(free_me, "close", NULL, 0, on_reply_free, &r2);
	run_until(&r.calls, 1, 5);
	ev_run(loop, EVRUN_NOWAIT);
	is_int(r.calls + r2.calls, 1, "freed from a callback: no later callback, no crash");
	fakecli_stop(pid);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test_runtime", LOG_LVL_WARNING);
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	snprintf(sock_path, sizeof(sock_path), "%s/h.sock", tmpdir);
	snprintf(log_path, sizeof(log_path), "%s/requests.log", tmpdir);
	loop = ev_default_loop(0);

	test_parsers();
	test_commands();
	test_timeouts();
	test_bufsize();
	test_master();
	test_turns();
	test_free_in_callback();

	if (!tap_rmtree(tmpdir))
		ok(0, "cleanup");
	return tap_done();
}
