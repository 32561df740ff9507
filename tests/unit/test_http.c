/* test_http.c - acme/http.c against real servers on loopback: a Python
 * http.server (HTTP/1.1, keep-alive) started by the test, plain and behind
 * TLS with a CA and a leaf certificate made here with the openssl CLI. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "acme/http.h"
#include "common/log.h"
#include "tap.h"

static const char server_py[] =
"import sys, time, threading, ssl, json\n"
"from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler\n"
"lock = threading.Lock()\n"
"state = {'in': 0, 'max': 0}\n"
"class H(BaseHTTPRequestHandler):\n"
"    protocol_version = 'HTTP/1.1'\n"
"    def log_message(self, *a): pass\n"
"    def reply(self, code, body=b'', hdrs=()):\n"
"        self.send_response(code)\n"
"        for k, v in hdrs: self.send_header(k, v)\n"
"        self.send_header('Content-Length', str(len(body)))\n"
"        self.end_headers()\n"
"        if self.command != 'HEAD': self.wfile.write(body)\n"
"    def any(self):\n"
"        path, _, q = self.path.partition('?')\n"
"        n = int(self.headers.get('Content-Length') or 0)\n"
"        data = self.rfile.read(n) if n else b''\n"
"        if path == '/ok':\n"
"            self.reply(200, b'hello', [('Content-Type', 'text/plain')])\n"
"        elif path == '/acme':\n"
"            self.reply(201, b'{\"status\":\"pending\"}', [('Location', '/order/1'),\n"
"                ('replay-nonce', 'nonce-abc_123'), ('Link', '<https://x/dir>;rel=\"index\"'),\n"
"                ('LINK', '<https://x/alt/1>;rel=\"alternate\"'), ('Retry-After', ' 7 '),\n"
"                ('Content-Type', 'application/json')])\n"
"        elif path == '/echo':\n"
"            h = self.headers\n"
"            self.reply(200, json.dumps({'method': self.command, 'host': h.get('Host'),\n"
"                'ctype': h.get('Content-Type'), 'ua': h.get('User-Agent'),\n"
"                'x': h.get('X-Test'), 'body': data.decode()}).encode())\n"
"        elif path == '/big':\n"
"            self.reply(200, b'a' * int(q))\n"
"        elif path == '/chunked':\n"
"            self.send_response(200)\n"
"            self.send_header('Transfer-Encoding', 'chunked')\n"
"            self.end_headers()\n"
"            left = int(q)\n"
"            while left > 0:\n"
"                k = min(left, 1000); left -= k\n"
"                self.wfile.write(b'%x\\r\\n' % k + b'b' * k + b'\\r\\n'); self.wfile.flush()\n"
"            self.wfile.write(b'0\\r\\n\\r\\n')\n"
"        elif path == '/slow':\n"
"            with lock:\n"
"                state['in'] += 1; state['max'] = max(state['max'], state['in'])\n"
"            time.sleep(int(q) / 1000)\n"
"            with lock: state['in'] -= 1\n"
"            self.reply(200, b'slow')\n"
"        elif path == '/maxin':\n"
"            self.reply(200, str(state['max']).encode())\n"
"        else:\n"
"            self.reply(404, b'not found')\n"
"    do_GET = do_POST = do_HEAD = any\n"
"class S(ThreadingHTTPServer):\n"
"    daemon_threads = True\n"
"    request_queue_size = 1024\n"
"    def handle_error(self, *a): pass\n"
"srv = S(('127.0.0.1', 0), H)\n"
"if len(sys.argv) > 2:\n"
"    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
"    ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
"    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
"print(srv.server_address[1], flush=True)\n"
"srv.serve_forever()\n";

static struct ev_loop *loop;
static char tmpdir[] = "/tmp/hacme-test-http-XXXXXX";

struct result {
	int done;
	int result;
	long status;
	char error[HTTP_ERR_MAX];
	char body[8192];
	size_t body_len;
	char nonce[256], location[256], ctype[256], retry[64];
	char links[HTTP_LINKS_MAX][256];
	size_t nlinks;
	long new_connections;
	bool nonce_set, location_set;
};

static int total_done;

static void
copy_opt(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

static void
on_done(void *arg, const struct http_resp *r)
{
	struct result *res = arg;

	res->done++;
	total_done++;
	res->result = r->result;
	res->status = r->status;
	copy_opt(res->error, sizeof(res->error), r->error);
	res->body_len = r->body_len;
	snprintf(res->body, sizeof(res->body), "%s", (const char *)r->body);
	copy_opt(res->nonce, sizeof(res->nonce), r->replay_nonce);
	copy_opt(res->location, sizeof(res->location), r->location);
	copy_opt(res->ctype, sizeof(res->ctype), r->content_type);
	copy_opt(res->retry, sizeof(res->retry), r->retry_after);
	res->nonce_set = r->replay_nonce != NULL;
	res->location_set = r->location != NULL;
	res->nlinks = r->nlinks;
	for (size_t i = 0; i < r->nlinks; i++)
		copy_opt(res->links[i], sizeof(res->links[i]), r->links[i]);
	res->new_connections = r->new_connections;
}

static void
guard_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	*(int *)w->data = 1;
	ev_break(l, EVBREAK_ONE);
}

static void
stop_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	int *target = w->data;

	log_flush();
	if (total_done >= *target)
		ev_break(l, EVBREAK_ONE);
}

/* Runs the loop until total_done reaches target or secs pass. */
static bool
run_until(int target, double secs)
{
	ev_timer guard;
	ev_prepare check;	/* runs before the loop would block */
	int expired = 0;

	ev_timer_init(&guard, guard_cb, secs, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	ev_prepare_init(&check, stop_cb);
	check.data = &target;
	ev_prepare_start(loop, &check);
	while (total_done < target && !expired)
		ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
	ev_prepare_stop(loop, &check);
	return total_done >= target;
}

/* Runs the loop for secs, whatever happens. */
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

/* Starts the Python server; its port, or 0. */
static int
start_server(pid_t *pid, const char *cert, const char *key)
{
	int pfd[2];
	char line[32];
	ssize_t n;
	size_t got = 0;

	if (pipe(pfd) < 0)
		return 0;
	if ((*pid = fork()) == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		if (cert)
			execlp("python3", "python3", "-c", server_py, cert, key, (char *)NULL);
		else
			execlp("python3", "python3", "-c", server_py, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	/* The port line is the readiness signal: the socket is bound then. */
	while (got < sizeof(line) - 1 && (n = read(pfd[0], line + got, sizeof(line) - 1 - got)) > 0) {
		got += (size_t)n;
		if (memchr(line, '\n', got))
			break;
	}
	close(pfd[0]);
	line[got] = '\0';
	return atoi(line);
}

static void
stop_server(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
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
	close(fd);	/* nobody listens there now */
	return port;
}

static struct http_call *
get(struct http_client *c, const char *url, struct result *res)
{
	struct http_req r = { .method = HTTP_GET, .url = url, .cb = on_done, .arg = res };

	return http_submit(c, &r);
}

static struct http_call *
post(struct http_client *c, const char *url, const char *body,
    const char *const *hdrs, size_t nhdrs, struct result *res)
{
	struct http_req r = { .method = HTTP_POST, .url = url, .body = body,
	    .body_len = strlen(body), .content_type = "application/jose+json",
	    .headers = hdrs, .nheaders = nhdrs, .cb = on_done, .arg = res };

	memset(res, 0, sizeof(*res));
	return http_submit(c, &r);
}

static int
sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool
make_pki(void)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
	    "cd %s && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout ca.key -out ca.pem -days 2 -subj /CN=hacme-test-ca "
	    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
	    "2>/dev/null && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout leaf.key -out leaf.csr -subj /CN=localhost 2>/dev/null && "
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n"
	    "extendedKeyUsage=serverAuth\\n' > leaf.ext && "
	    "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "-days 2 -extfile leaf.ext -out leaf.pem 2>/dev/null", tmpdir);
	return sh(cmd) == 0;
}

static void
test_basic(struct http_client *c, int port)
{
	char url[256];
	struct result r1, r2, r3;
	int before;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	before = total_done;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
	ok(get(c, url, &r1) != NULL, "GET /ok submitted");
	is_int(r1.done, 0, "no callback from inside http_submit");
	is_int(http_inflight(c), 1, "one request in flight");
	ok(run_until(before + 1, 10), "GET /ok finished");
	is_int(r1.done, 1, "callback ran once");
	is_int(r1.result, 0, "GET /ok: no transport error");
	is_str(r1.error, "", "GET /ok: empty error text");
	is_int(r1.status, 200, "GET /ok: status 200");
	is_str(r1.body, "hello", "GET /ok: body");
	is_int(r1.body_len, 5, "GET /ok: body length");
	is_str(r1.ctype, "text/plain", "GET /ok: Content-Type captured");
	ok(!r1.nonce_set && !r1.location_set, "GET /ok: absent headers are NULL");
	is_int(r1.new_connections, 1, "first request opened a connection");
	is_int(http_inflight(c), 0, "nothing in flight");

	/* The pooled connection is reused. */
	ok(get(c, url, &r2) != NULL, "second GET /ok submitted");
	ok(run_until(before + 2, 10), "second GET /ok finished");
	is_int(r2.status, 200, "second GET /ok: 200");
	is_int(r2.new_connections, 0, "second request reused the connection");

	memset(&r3, 0, sizeof(r3));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nothing-here", port);
	ok(get(c, url, &r3) != NULL, "GET 404 submitted");
	ok(run_until(before + 3, 10), "GET 404 finished");
	is_int(r3.result, 0, "404: not a transport error");
	is_int(r3.status, 404, "404: status");
	is_str(r3.body, "not found", "404: body");
}

static void
test_headers(struct http_client *c, int port)
{
	char url[256];
	struct result r;
	int before = total_done;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/acme", port);
	ok(post(c, url, "{\"protected\":\"x\",\"payload\":\"\",\"signature\":\"y\"}",
	    NULL, 0, &r) != NULL, "POST /acme submitted");
	ok(run_until(before + 1, 10), "POST /acme finished");
	is_int(r.status, 201, "POST /acme: 201");
	is_str(r.location, "/order/1", "Location captured");
	is_str(r.nonce, "nonce-abc_123", "Replay-Nonce captured (sent as replay-nonce)");
	is_str(r.retry, "7", "Retry-After captured and trimmed");
	is_str(r.ctype, "application/json", "Content-Type captured");
	is_int(r.nlinks, 2, "two Link headers captured (Link and LINK)");
	is_str(r.links[0], "<https://x/dir>;rel=\"index\"", "first Link value");
	is_str(r.links[1], "<https://x/alt/1>;rel=\"alternate\"", "second Link value");
	is_str(r.body, "{\"status\":\"pending\"}", "POST /acme: body");
}

static void
test_echo(struct http_client *c, int port)
{
	char url[256], cto[128];
	const char *hdrs[] = { "X-Test: 42" };
	struct result r1, r2, r3;
	struct http_req req;
	cJSON *j;
	int before = total_done;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", port);
	ok(post(c, url, "payload-bytes", hdrs, 1, &r1) != NULL, "POST /echo submitted");
	ok(run_until(before + 1, 10), "POST /echo finished");
	j = cJSON_Parse(r1.body);
	ok(j != NULL, "echo: JSON came back");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "method")), "POST", "echo: method POST");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "body")), "payload-bytes", "echo: body sent");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "ctype")), "application/jose+json",
	    "echo: Content-Type sent");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "ua")), "hacme/test", "echo: User-Agent");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "x")), "42", "echo: extra header sent");
	cJSON_Delete(j);

	/* HEAD: status and headers, no body. */
	memset(&r2, 0, sizeof(r2));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
	req = (struct http_req){ .method = HTTP_HEAD, .url = url, .cb = on_done, .arg = &r2 };
	ok(http_submit(c, &req) != NULL, "HEAD /ok submitted");
	ok(run_until(before + 2, 10), "HEAD /ok finished");
	is_int(r2.status, 200, "HEAD: 200");
	is_int(r2.body_len, 0, "HEAD: no body");
	is_str(r2.ctype, "text/plain", "HEAD: headers captured");

	/* connect-to: a name that does not resolve reaches 127.0.0.1, Host kept. */
	memset(&r3, 0, sizeof(r3));
	snprintf(url, sizeof(url), "http://acme.invalid:%d/echo", port);
	snprintf(cto, sizeof(cto), "acme.invalid:%d:127.0.0.1:%d", port, port);
	req = (struct http_req){ .method = HTTP_GET, .url = url, .connect_to = cto,
	    .cb = on_done, .arg = &r3 };
	ok(http_submit(c, &req) != NULL, "connect-to GET submitted");
	ok(run_until(before + 3, 10), "connect-to GET finished");
	is_int(r3.status, 200, "connect-to: reached the server");
	j = cJSON_Parse(r3.body);
	snprintf(cto, sizeof(cto), "acme.invalid:%d", port);
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "host")), cto, "connect-to: Host header kept");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "method")), "GET", "connect-to: GET");
	cJSON_Delete(j);
}

static void
test_limits(int port)
{
	struct http_opts o = { .user_agent = "hacme/test", .max_body = 1000 };
	struct http_client *c = http_client_new(loop, &o);
	char url[256];
	struct result r[5];
	int before = total_done;

	memset(r, 0, sizeof(r));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big?1000", port);
	get(c, url, &r[0]);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big?1001", port);
	get(c, url, &r[1]);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/chunked?50000", port);
	get(c, url, &r[2]);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", free_port());
	get(c, url, &r[3]);
	ok(run_until(before + 4, 10), "limit requests finished");
	is_int(r[0].status, 200, "body of exactly max_body: accepted");
	is_int(r[0].body_len, 1000, "body of exactly max_body: all bytes");
	ok(r[1].result != 0, "Content-Length over max_body: error");
	is_str(r[1].error, "response body over 1000 bytes", "Content-Length over max_body: error text");
	ok(r[2].result != 0, "chunked body over max_body: transfer aborted");
	is_str(r[2].error, "response body over 1000 bytes", "chunked over max_body: error text");
	ok(r[3].result != 0, "nobody listening: error");
	is_str(r[3].error, "connection refused", "nobody listening: 'connection refused'");
	is_int(r[3].status, 0, "nobody listening: no status");

	/* Timeout of the whole transfer. */
	{
		struct http_req req = { .method = HTTP_GET, .url = url, .timeout_ms = 300,
		    .cb = on_done, .arg = &r[4] };
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow?3000", port);
		ok(http_submit(c, &req) != NULL, "slow request submitted");
		ok(run_until(before + 5, 10), "slow request finished");
		is_str(r[4].error, "timeout", "slow request: 'timeout'");
		ok(r[4].done == 1 && r[4].status == 0, "slow request: no status");
	}
	http_client_free(c);
}

static void
test_refuse(struct http_client *c)
{
	struct result r;
	struct http_req req = { .method = HTTP_GET, .cb = on_done, .arg = &r };
	const char *bad[] = { "X-Bad: a\r\nX-Injected: b" };

	req.url = "http://127.0.0.1:1/a b";
	errno = 0;
	ok(http_submit(c, &req) == NULL && errno == EINVAL, "URL with a space refused");
	req.url = "ftp://127.0.0.1/x";
	ok(http_submit(c, &req) == NULL && errno == EINVAL, "ftp:// refused");
	req.url = "http://127.0.0.1:1/x";
	req.headers = bad;
	req.nheaders = 1;
	ok(http_submit(c, &req) == NULL && errno == EINVAL, "header with CR LF refused");
	req.headers = NULL;
	req.nheaders = 0;
	req.connect_to = "a:1:b\n:2";
	ok(http_submit(c, &req) == NULL && errno == EINVAL, "connect-to with LF refused");
	is_int(http_inflight(c), 0, "refused requests are not in flight");
}

static struct http_client *chain_client;
static struct result chain_r2;
static char chain_url[256];

static void
chain_first(void *arg, const struct http_resp *resp)
{
	on_done(arg, resp);
	ok(get(chain_client, chain_url, &chain_r2) != NULL, "submit from a callback");
}

static struct http_client *free_client;

static void
free_in_cb(void *arg, const struct http_resp *resp)
{
	on_done(arg, resp);
	http_client_free(free_client);
}

static void
test_lifecycle(struct http_client *c, int port)
{
	char url[256];
	struct result r1, r3, r4, r5, r6;
	struct http_call *h;
	struct http_req req = { .method = HTTP_GET, .url = url, .cb = chain_first, .arg = &r1 };
	struct http_opts o = { .user_agent = "hacme/test" };
	int before = total_done;

	memset(&r1, 0, sizeof(r1));
	memset(&chain_r2, 0, sizeof(chain_r2));
	chain_client = c;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
	snprintf(chain_url, sizeof(chain_url), "http://127.0.0.1:%d/acme", port);
	ok(http_submit(c, &req) != NULL, "chained request submitted");
	ok(run_until(before + 2, 10), "chained requests finished");
	is_int(chain_r2.status, 201, "request submitted from a callback completed");

	/* Cancel: the callback never runs, the client stays usable. */
	memset(&r3, 0, sizeof(r3));
	memset(&r4, 0, sizeof(r4));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow?300", port);
	h = get(c, url, &r3);
	run_for(0.05);
	http_cancel(h);
	is_int(http_inflight(c), 0, "cancelled request left the client");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
	get(c, url, &r4);
	before = total_done;
	ok(run_until(before + 1, 10), "request after a cancel finished");
	run_for(0.5);
	is_int(r3.done, 0, "cancelled request: no callback");
	is_int(r4.status, 200, "request after a cancel: 200");

	/* Free with requests in flight: no callbacks. */
	memset(&r5, 0, sizeof(r5));
	free_client = http_client_new(loop, &o);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow?2000", port);
	get(free_client, url, &r5);
	get(free_client, url, &r5);
	run_for(0.1);
	is_int(http_inflight(free_client), 2, "two requests in flight before free");
	http_client_free(free_client);
	run_for(0.1);
	is_int(r5.done, 0, "freed client: no callback for requests in flight");

	/* Free from inside a callback: the other request's callback never runs. */
	memset(&r6, 0, sizeof(r6));
	memset(&r5, 0, sizeof(r5));
	free_client = http_client_new(loop, &o);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
	req = (struct http_req){ .method = HTTP_GET, .url = url, .cb = free_in_cb, .arg = &r6 };
	http_submit(free_client, &req);
	snprintf(chain_url, sizeof(chain_url), "http://127.0.0.1:%d/slow?1000", port);
	get(free_client, chain_url, &r5);
	before = total_done;
	ok(run_until(before + 1, 10), "callback that frees its client ran");
	run_for(0.2);
	is_int(r6.status, 200, "free in callback: own response intact");
	is_int(r5.done, 0, "free in callback: other request never called back");
}

static void
test_concurrency(struct http_client *c, int port)
{
	enum { N = 200 };
	static struct result rs[N];
	char url[256];
	struct result m;
	int before = total_done, good = 0, submitted = 0;
	ev_tstamp t0;

	memset(rs, 0, sizeof(rs));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow?300", port);
	ev_now_update(loop);
	t0 = ev_now(loop);
	for (int i = 0; i < N; i++)
		submitted += get(c, url, &rs[i]) != NULL;
	is_int(submitted, N, "200 requests submitted");
	is_int(http_inflight(c), N, "200 requests in flight");
	ok(run_until(before + N, 30), "200 concurrent requests finished");
	ev_now_update(loop);
	for (int i = 0; i < N; i++)
		good += rs[i].done == 1 && rs[i].status == 200 && strcmp(rs[i].body, "slow") == 0;
	is_int(good, N, "200 concurrent requests: all 200 with the body");
	memset(&m, 0, sizeof(m));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/maxin", port);
	get(c, url, &m);
	ok(run_until(before + N + 1, 10), "server's high-water mark fetched");
	/* Each request holds the server 300 ms: overlap proves concurrency. */
	ok(atoi(m.body) >= N / 2, "server saw %s requests at once (>= %d)", m.body, N / 2);
	printf("# 200 requests of 300 ms each on one loop: %.2f s, %s at once\n",
	    ev_now(loop) - t0, m.body);
}

static void
test_tls(int plainport)
{
	char url[256], cert[256], key[256], ca[256], cto[128];
	struct http_opts o = { .user_agent = "hacme/test" };
	struct http_client *c, *sys;
	struct result r[5];
	struct http_req req = { .method = HTTP_GET, .url = url, .cb = on_done };
	pid_t pid = 0;
	int port, before = total_done;

	if (!ok(make_pki(), "openssl made a CA and a localhost certificate"))
		return;
	snprintf(cert, sizeof(cert), "%s/leaf.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/leaf.key", tmpdir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
	port = start_server(&pid, cert, key);
	if (!ok(port > 0, "HTTPS server started"))
		return;
	o.ca_bundle = ca;
	c = http_client_new(loop, &o);
	o.ca_bundle = NULL;
	sys = http_client_new(loop, &o);
	memset(r, 0, sizeof(r));
	snprintf(url, sizeof(url), "https://localhost:%d/ok", port);
	get(c, url, &r[0]);
	get(sys, url, &r[1]);
	req.ca_bundle = ca;
	req.arg = &r[2];
	http_submit(sys, &req);
	/* The name must match the certificate, also through connect-to. */
	snprintf(url, sizeof(url), "https://wrong.invalid:%d/ok", port);
	snprintf(cto, sizeof(cto), "wrong.invalid:%d:127.0.0.1:%d", port, port);
	req = (struct http_req){ .method = HTTP_GET, .url = url, .connect_to = cto,
	    .cb = on_done, .arg = &r[3] };
	http_submit(c, &req);
	/* Plain HTTP on the TLS port's neighbour: an https URL to a plain server fails. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", plainport);
	get(c, url, &r[4]);
	ok(run_until(before + 5, 20), "HTTPS requests finished");
	is_int(r[0].result, 0, "HTTPS with the test CA: no error");
	is_int(r[0].status, 200, "HTTPS with the test CA: 200");
	is_str(r[0].body, "hello", "HTTPS with the test CA: body");
	ok(r[1].result != 0 && r[1].status == 0, "HTTPS with the system CAs: refused");
	ok(strncmp(r[1].error, "TLS: certificate verification failed", 36) == 0,
	    "HTTPS with the system CAs: error text (%s)", r[1].error);
	is_int(r[2].status, 200, "per-request CA bundle overrides the client's");
	ok(r[3].result != 0 && r[3].status == 0, "certificate for another name: refused (%s)", r[3].error);
	ok(r[4].result != 0 && r[4].status == 0, "TLS to a plain HTTP server: error (%s)", r[4].error);
	http_client_free(c);
	http_client_free(sys);
	stop_server(pid);
}

int
main(void)
{
	struct http_opts o = { .user_agent = "hacme/test" };
	struct http_client *c;
	pid_t pid = 0;
	int port;

	log_init("test_http", getenv("TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	if (getenv("TEST_DEBUG"))
		o.verbose = true;
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(0);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	port = start_server(&pid, NULL, NULL);
	if (!ok(port > 0, "HTTP server started on port %d", port))
		return tap_done();
	c = http_client_new(loop, &o);
	ok(c != NULL, "client created");

	test_basic(c, port);
	test_headers(c, port);
	test_echo(c, port);
	test_limits(port);
	test_refuse(c);
	test_lifecycle(c, port);
	test_concurrency(c, port);
	test_tls(port);

	http_client_free(c);
	stop_server(pid);
	tap_rmtree(tmpdir);
	log_flush();
	return tap_done();
}
