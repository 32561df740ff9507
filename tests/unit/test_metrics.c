/* test_metrics.c - acme/metrics.c: the request judge and the exposition
 * helpers as pure functions, then the HTTP server on a loopback port in
 * this process, fetched with plain sockets. One thread: the client's
 * sockets are non-blocking and every wait runs the server's loop. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "acme/metrics.h"
#include "common/addr.h"
#include "common/buf.h"
#include "common/log.h"
#include "tap.h"

static struct ev_loop *loop;
static int renders;
static int render_mode;		/* 0: a small text, 1: fail, 2: big */
static char big[2 << 20];

static int
render(void *arg, struct buf *out)
{
	const char *const labels[] = { "name", "a\"b", NULL };

	renders++;
	if (render_mode == 1) {
		errno = EIO;
		return -1;
	}
	if (render_mode == 2)
		return buf_append(out, big, sizeof(big));
	if (metrics_family(out, "hacme_up", "gauge", "1 when up") < 0 ||
	    metrics_sample(out, "hacme_up", labels, 1) < 0)
		return -1;
	return 0;
}

static const char small_body[] = "# HELP hacme_up 1 when up\n# TYPE hacme_up gauge\n"
    "hacme_up{name=\"a\\\"b\"} 1\n";

/* ---- the client ------------------------------------------------------- */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Lets the server work for a moment (ms of waiting on fd, or just once). */
static void
pump(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	ev_run(loop, EVRUN_NOWAIT);
	if (fd >= 0 && ms > 0)
		(void)poll(&p, 1, ms);
	else if (ms > 0)
		usleep((useconds_t)ms * 1000);
	ev_run(loop, EVRUN_NOWAIT);
}

static int
c_connect(unsigned port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		perror("connect");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int
c_send(int fd, const char *s, size_t n)
{
	size_t off = 0;
	ssize_t w;
	double end = now() + 10;

	while (off < n && now() < end) {
		w = send(fd, s + off, n - off, MSG_NOSIGNAL);
		if (w > 0)
			off += (size_t)w;
		else if (w < 0 && errno != EAGAIN)
			return -1;
		else
			pump(-1, 1);
	}
	return off == n ? 0 : -1;
}

/* Everything until the server closes: the length, or -1 when it did not
 * close within 10 s. */
static ssize_t
c_read_all(int fd, char *buf, size_t max)
{
	size_t len = 0;
	ssize_t n;
	double end = now() + 10;

	while (now() < end) {
		n = read(fd, buf + len, max - len - 1);
		if (n > 0) {
			len += (size_t)n;
			if (len == max - 1)
				break;
			continue;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			buf[len] = '\0';
			return (ssize_t)len;
		}
		pump(fd, 5);
	}
	buf[len] = '\0';
	return -1;
}

static char resp[sizeof(big) + 4096];

/* One request on a new connection; the status code, -1 on failure. */
static int
fetch(unsigned port, const char *req, size_t reqlen)
{
	int fd = c_connect(port), st = -1;
	ssize_t n;

	if (fd < 0)
		return -1;
	if (c_send(fd, req, reqlen) == 0 && (n = c_read_all(fd, resp, sizeof(resp))) >= 12 &&
	    strncmp(resp, "HTTP/1.1 ", 9) == 0)
		st = atoi(resp + 9);
	close(fd);
	return st;
}

#define FETCH(port, lit) fetch(port, lit, sizeof(lit) - 1)

static const char *
body_of(const char *r)
{
	const char *p = strstr(r, "\r\n\r\n");

	return p ? p + 4 : "";
}

static long
content_length(const char *r)
{
	const char *p = strstr(r, "\r\nContent-Length: ");

	return p ? strtol(p + 18, NULL, 10) : -1;
}

/* "127.0.0.1:PORT" with a port free a moment ago (addresses need a port). */
static const char *
free_port(void)
{
	static char spec[32];
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		perror("free port");
	if (fd >= 0)
		close(fd);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u", ntohs(sin.sin_port));
	return spec;
}

static struct metrics *
start(const char *listen, const struct metrics_opts *o)
{
	struct addr a;
	char err[256];
	struct metrics *m;

	if (addr_parse(&a, listen, err, sizeof(err)) < 0) {
		printf("# %s\n", err);
		return NULL;
	}
	if ((m = metrics_new(loop, &a, o, render, NULL, err, sizeof(err))) == NULL)
		printf("# metrics_new: %s\n", err);
	return m;
}

/* ---- pure ------------------------------------------------------------- */

static int
judge(const char *s, bool *head)
{
	return metrics_http_judge(s, strlen(s), 8192, head);
}

static void
test_judge(void)
{
	bool head;
	char big_head[9000];

	is_int(judge("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &head), 200, "GET: 200");
	ok(!head, "GET is not HEAD");
	is_int(judge("HEAD /metrics HTTP/1.0\n\n", &head), 200, "HEAD, bare LFs: 200");
	ok(head, "HEAD is HEAD");
	is_int(judge("GET /metrics?x=1&y HTTP/1.1\r\n\r\n", &head), 200, "a query is ignored");
	is_int(judge("\r\nGET /metrics HTTP/1.1\r\n\r\n", &head), 200,
	    "an empty line before the request line is ignored");
	is_int(judge("GET /metrics HTTP/1.1\r\nHost: x\r\n", &head), 0,
	    "head not complete: need more");
	is_int(judge("GET /metr", &head), 0, "request line not complete: need more");
	is_int(judge("", &head), 0, "nothing yet: need more");
	is_int(judge("GET / HTTP/1.1\r\n\r\n", &head), 404, "/: 404");
	is_int(judge("GET /metricsx HTTP/1.1\r\n\r\n", &head), 404, "/metricsx: 404");
	is_int(judge("GET /metric HTTP/1.1\r\n\r\n", &head), 404, "/metric: 404");
	is_int(judge("GET http://h/metrics HTTP/1.1\r\n\r\n", &head), 404,
	    "absolute form: 404");
	is_int(judge("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", &head), 405,
	    "POST: 405");
	is_int(judge("DELETE /metrics HTTP/1.1\r\n\r\n", &head), 405, "DELETE: 405");
	is_int(judge("get /metrics HTTP/1.1\r\n\r\n", &head), 405,
	    "methods are case-sensitive: get is 405");
	is_int(judge("POST /other HTTP/1.1\r\n\r\n", &head), 404, "POST elsewhere: 404");
	is_int(judge("GET /metrics HTTP/2.0\r\n\r\n", &head), 505, "HTTP/2.0: 505");
	is_int(judge("GET /metrics HTTP/1.1 x\r\n", &head), 400,
	    "a bad request line is judged at once");
	is_int(metrics_http_judge("\x16\x03\x01\x02\x00\x01", 6, 8192, &head), 400,
	    "a TLS hello: 400 at once, without waiting for a line");
	is_int(judge("GE", &head), 0, "a method's start: need more");
	is_int(judge("GET /met\x01", &head), 0, "the target is judged once the line is whole");
	is_int(judge("GET  /metrics HTTP/1.1\r\n\r\n", &head), 400, "two spaces: 400");
	is_int(judge("GET /metrics\r\n\r\n", &head), 400, "HTTP/0.9: 400");
	is_int(judge("GET /metrics FTP/1.1\r\n\r\n", &head), 400, "not HTTP: 400");
	is_int(judge("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", &head), 400,
	    "a header line without ':': 400");
	is_int(judge("GET /metrics HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n", &head), 400,
	    "obsolete line folding: 400");
	memset(big_head, 'a', sizeof(big_head));
	memcpy(big_head, "GET /metrics HTTP/1.1\r\nX: ", 26);
	is_int(metrics_http_judge(big_head, 8192, 8192, &head), 431,
	    "8 KiB without the head's end: 431");
	is_int(metrics_http_judge(big_head, 8191, 8192, &head), 0, "one byte less: need more");
	memset(big_head, 'a', sizeof(big_head));
	memcpy(big_head, "GET /", 5);
	is_int(metrics_http_judge(big_head, 8192, 8192, &head), 431,
	    "a request line of 8 KiB: 431");
}

static void
test_exposition(void)
{
	struct buf b;
	const char *const l1[] = { "path", "C:\\dir \"x\"\nnext", "n", "", NULL };
	const char *const bad_label[] = { "0x", "v", NULL };
	const char *const odd[] = { "a", NULL };
	const char *const reserved_ok[] = { "__x", "v", NULL };

	buf_init(&b, 4096);
	ok(metrics_sample(&b, "m", l1, 3) == 0, "a sample with labels");
	is_str((char *)(buf_append(&b, "", 1) == 0 ? b.p : (uint8_t *)""),
	    "m{path=\"C:\\\\dir \\\"x\\\"\\nnext\",n=\"\"} 3\n",
	    "label values escaped: \\\\, \\\", \\n; an empty value kept");
	b.len = 0;
	ok(metrics_sample(&b, "hacme:cert_expiry_seconds", NULL, 1.5) == 0 &&
	    buf_append(&b, "", 1) == 0, "a sample without labels");
	is_str((char *)b.p, "hacme:cert_expiry_seconds 1.5\n", "no braces, %%g value");
	b.len = 0;
	metrics_sample(&b, "a", NULL, 1767225600);
	metrics_sample(&b, "b", NULL, -3);
	metrics_sample(&b, "c", NULL, NAN);
	metrics_sample(&b, "d", NULL, INFINITY);
	metrics_sample(&b, "e", NULL, -INFINITY);
	metrics_sample(&b, "f", NULL, 1e20);
	metrics_sample(&b, "g", NULL, 0.1);
	buf_append(&b, "", 1);
	is_str((char *)b.p, "a 1767225600\nb -3\nc NaN\nd +Inf\ne -Inf\nf 1e+20\n"
	    "g 0.10000000000000001\n", "values: integers exact, NaN, +Inf, -Inf, %%.17g");
	b.len = 0;
	errno = 0;
	ok(metrics_sample(&b, "9bad", NULL, 1) < 0 && errno == EINVAL && b.len == 0,
	    "a metric name starting with a digit: EINVAL, nothing written");
	ok(metrics_sample(&b, "a-b", NULL, 1) < 0 && b.len == 0, "'-' in a name: EINVAL");
	ok(metrics_sample(&b, "", NULL, 1) < 0, "empty name: EINVAL");
	ok(metrics_sample(&b, "m", bad_label, 1) < 0 && b.len == 0, "bad label name: EINVAL");
	ok(metrics_sample(&b, "m", odd, 1) < 0 && b.len == 0, "a label without value: EINVAL");
	ok(metrics_sample(&b, "m", reserved_ok, 1) == 0, "a label name with '_' first");
	ok(!metrics_label_valid("a:b") && metrics_name_valid("a:b"),
	    "':' in metric names only");
	b.len = 0;
	ok(metrics_family(&b, "hacme_x", "counter", "line1\nback\\slash \"q\"") == 0 &&
	    buf_append(&b, "", 1) == 0, "a family");
	is_str((char *)b.p, "# HELP hacme_x line1\\nback\\\\slash \"q\"\n# TYPE hacme_x counter\n",
	    "HELP escapes \\\\ and \\n only");
	b.len = 0;
	ok(metrics_family(&b, "hacme_x", "gauge", NULL) == 0 && buf_append(&b, "", 1) == 0 &&
	    strcmp((char *)b.p, "# TYPE hacme_x gauge\n") == 0, "no help: TYPE only");
	b.len = 0;
	ok(metrics_family(&b, "hacme_x", "bogus", "h") < 0 && errno == EINVAL && b.len == 0,
	    "an unknown type: EINVAL");
	ok(metrics_family(&b, "hacme x", "gauge", "h") < 0 && b.len == 0, "a bad name: EINVAL");
	buf_fini(&b);

	buf_init(&b, 20);
	ok(metrics_sample(&b, "m", NULL, 1) == 0 && b.len == 4, "fits");
	ok(metrics_sample(&b, "mmmmmmmmmm", l1, 1) < 0 && errno == ENOBUFS && b.len == 4,
	    "full: ENOBUFS and no half line");
	ok(metrics_family(&b, "mmmmmmmmmm", "gauge", "help") < 0 && b.len == 4,
	    "a family that does not fit: no half line");
	buf_fini(&b);
}

/* ---- the server ------------------------------------------------------- */

static void
test_requests(void)
{
	struct metrics_opts o = { .timeout = 5 };
	struct metrics *m = start(free_port(), &o);
	unsigned port = m ? metrics_port(m) : 0;
	int st, before, fd;
	ssize_t n;

	ok(m != NULL && port > 0, "listening on 127.0.0.1:%u (metrics_port)", port);
	if (m == NULL)
		return;
	render_mode = 0;
	before = renders;
	st = FETCH(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n");
	is_int(st, 200, "GET /metrics: 200");
	is_str(body_of(resp), small_body, "the body is what render wrote");
	is_int(content_length(resp), strlen(small_body), "Content-Length is the body's");
	ok(strstr(resp, "\r\nContent-Type: " METRICS_CONTENT_TYPE "\r\n") != NULL,
	    "Content-Type: the exposition format 0.0.4");
	ok(strstr(resp, "\r\nConnection: close\r\n") != NULL, "Connection: close");
	is_int(renders, before + 1, "rendered once");

	st = FETCH(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
	is_int(st, 200, "HEAD: 200");
	is_str(body_of(resp), "", "HEAD: no body");
	is_int(content_length(resp), strlen(small_body), "HEAD: the GET's Content-Length");

	before = renders;
	is_int(FETCH(port, "GET /nope HTTP/1.1\r\n\r\n"), 404, "another path: 404");
	is_int(FETCH(port, "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), 405,
	    "POST: 405");
	ok(strstr(resp, "\r\nAllow: GET, HEAD\r\n") != NULL, "405 says Allow: GET, HEAD");
	is_int(content_length(resp), strlen(body_of(resp)), "405: Content-Length matches");
	is_int(FETCH(port, "GET /metrics HTTP/3.0\r\n\r\n"), 505, "HTTP/3.0: 505");
	is_int(renders, before, "no render for an error");

	/* a bad request line gets its answer before any blank line */
	fd = c_connect(port);
	c_send(fd, "BAD LINE\r\n", 10);
	n = c_read_all(fd, resp, sizeof(resp));
	ok(n > 0 && strncmp(resp, "HTTP/1.1 400 ", 13) == 0,
	    "garbage: 400 at once, then closed");
	close(fd);

	/* byte by byte */
	{
		static const char req[] = "GET /metrics?from=test HTTP/1.1\r\nHost: a\r\n\r\n";
		fd = c_connect(port);
		for (size_t i = 0; i < sizeof(req) - 1; i++) {
			c_send(fd, req + i, 1);
			pump(-1, 0);
		}
		n = c_read_all(fd, resp, sizeof(resp));
		ok(n > 0 && strncmp(resp, "HTTP/1.1 200 ", 13) == 0 &&
		    strcmp(body_of(resp), small_body) == 0, "a request sent byte by byte: 200");
		close(fd);
	}

	/* a request bigger than 8 KiB */
	{
		static char req[9000];
		memset(req, 'a', sizeof(req));
		memcpy(req, "GET /metrics HTTP/1.1\r\nX-Big: ", 30);
		st = fetch(port, req, sizeof(req));
		is_int(st, 431, "a head over 8 KiB: 431, then closed");
	}

	render_mode = 1;
	is_int(FETCH(port, "GET /metrics HTTP/1.1\r\n\r\n"), 500, "render fails: 500");
	render_mode = 2;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	st = FETCH(port, "GET /metrics HTTP/1.1\r\n\r\n");
	ok(st == 200 && content_length(resp) == (long)sizeof(big) &&
	    memcmp(body_of(resp), big, sizeof(big)) == 0, "a 2 MiB body arrives whole");

	/* a client that goes away without reading: the server carries on */
	for (int i = 0; i < 3; i++) {
		fd = c_connect(port);
		c_send(fd, "GET /metrics HTTP/1.1\r\n\r\n", 25);
		pump(-1, 5);
		close(fd);
	}
	pump(-1, 20);
	render_mode = 0;
	is_int(FETCH(port, "GET /metrics HTTP/1.1\r\n\r\n"), 200,
	    "after clients left mid-answer: still serving");
	metrics_free(m);
	ok(c_connect(port) < 0, "metrics_free: nothing listens any more");
}

static void
test_timeouts(void)
{
	struct metrics_opts o = { .timeout = 0.3 };
	struct metrics *m = start(free_port(), &o);
	unsigned port = m ? metrics_port(m) : 0;
	int fd, idle, i;
	ssize_t n;
	bool closed = false;
	double t0;

	if (!ok(m != NULL, "server with a 0.3 s timeout"))
		return;
	/* slowloris: a head that never ends */
	fd = c_connect(port);
	c_send(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n", 32);
	t0 = now();
	n = c_read_all(fd, resp, sizeof(resp));
	ok(n == 0, "a head that never ends: closed without an answer");
	printf("# closed after %.2f s\n", now() - t0);
	close(fd);

	/* trickling bytes does not keep it open */
	fd = c_connect(port);
	c_send(fd, "GET /metrics HTTP/1.1\r\n", 23);
	for (i = 0; i < 200 && !closed; i++) {
		if (send(fd, "X", 1, MSG_NOSIGNAL) < 0) {
			closed = true;
			break;
		}
		pump(fd, 25);
		n = read(fd, resp, sizeof(resp));
		closed = n == 0 || (n < 0 && errno == ECONNRESET);
	}
	ok(closed, "a client trickling a byte every 25 ms is cut off (after %d bytes)", i);
	close(fd);

	/* a silent client does not hold up others */
	idle = c_connect(port);
	is_int(FETCH(port, "GET /metrics HTTP/1.1\r\n\r\n"), 200,
	    "a request while another client is silent: 200");
	n = c_read_all(idle, resp, sizeof(resp));
	ok(n == 0, "the silent client is closed later");
	close(idle);
	metrics_free(m);
}

static void
test_many(void)
{
	enum { N = 100 };
	struct metrics_opts o = { .max_clients = 4 };
	struct metrics *m = start(free_port(), &o);
	unsigned port = m ? metrics_port(m) : 0;
	int fds[N], good = 0, idle[4];

	if (!ok(m != NULL, "server with max_clients 4"))
		return;
	render_mode = 0;
	for (int i = 0; i < N; i++)
		fds[i] = c_connect(port);
	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			c_send(fds[i], "GET /metrics HTTP/1.1\r\n\r\n", 25);
	for (int i = N - 1; i >= 0; i--) {
		if (fds[i] >= 0 && c_read_all(fds[i], resp, sizeof(resp)) > 0 &&
		    strncmp(resp, "HTTP/1.1 200 ", 13) == 0 &&
		    strcmp(body_of(resp), small_body) == 0)
			good++;
		if (fds[i] >= 0)
			close(fds[i]);
	}
	is_int(good, N, "%d clients at once, 4 served at a time: all get 200", N);

	/* four silent clients fill it; a fifth waits in the backlog */
	for (int i = 0; i < 4; i++)
		idle[i] = c_connect(port);
	pump(-1, 10);
	fds[0] = c_connect(port);
	c_send(fds[0], "GET /metrics HTTP/1.1\r\n\r\n", 25);
	pump(fds[0], 50);
	ok(read(fds[0], resp, sizeof(resp)) < 0 && errno == EAGAIN,
	    "with 4 silent clients the 5th is not accepted yet");
	close(idle[0]);
	ok(c_read_all(fds[0], resp, sizeof(resp)) > 0 && strncmp(resp, "HTTP/1.1 200 ", 13) == 0,
	    "one leaves: the 5th is served");
	close(fds[0]);
	for (int i = 1; i < 4; i++)
		close(idle[i]);
	metrics_free(m);
}

static void
test_listen(void)
{
	char dir[] = "/tmp/hacme-test-metrics-XXXXXX", spec[200], path[100];
	struct metrics *m, *m2;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat stt;
	int fd;
	ssize_t n;

	m = start(free_port(), NULL);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u", m ? metrics_port(m) : 0);
	m2 = start(spec, NULL);
	ok(m != NULL && m2 == NULL, "a port in use: metrics_new fails with a reason");
	metrics_free(m);
	metrics_free(NULL);

	if (mkdtemp(dir) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/metrics.sock", dir);
	snprintf(spec, sizeof(spec), "unix@%s", path);
	m = start(spec, NULL);
	ok(m != NULL && metrics_port(m) == 0, "a unix socket: port 0");
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		fcntl(fd, F_SETFL, O_NONBLOCK);
		c_send(fd, "GET /metrics HTTP/1.1\r\n\r\n", 25);
		n = c_read_all(fd, resp, sizeof(resp));
		ok(n > 0 && strcmp(body_of(resp), small_body) == 0, "GET over the unix socket");
	} else {
		ok(0, "connect to the unix socket: %s", strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	metrics_free(m);
	ok(stat(path, &stt) < 0 && errno == ENOENT, "metrics_free removes the socket file");
	rmdir(dir);
}

int
main(void)
{
	log_init("test_metrics", LOG_LVL_WARNING);
	loop = ev_loop_new(EVFLAG_AUTO);
	test_judge();
	test_exposition();
	test_requests();
	test_timeouts();
	test_many();
	test_listen();
	ev_loop_destroy(loop);
	return tap_done();
}
