/* test_common.c - base64url, token checks, control-line framing, atomic write,
 * addresses. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/atomicfile.h"
#include "common/b64url.h"
#include "common/buf.h"
#include "common/ctl.h"
#include "common/errbuf.h"
#include "common/log.h"
#include "common/token.h"
#include "tap.h"

static void
test_b64url(void)
{
	/* RFC 4648 section 10 vectors, unpadded. */
	static const char *vec[][2] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
	};
	char enc[64];
	uint8_t dec[64];
	const uint8_t bin[] = { 0xfb, 0xff, 0xfe };

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		b64url_encode(enc, (const uint8_t *)vec[i][0], strlen(vec[i][0]));
		is_str(enc, vec[i][1], "b64url encode '%s'", vec[i][0]);
		long n = b64url_decode(dec, sizeof(dec), vec[i][1], strlen(vec[i][1]));
		is_mem(dec, n, vec[i][0], strlen(vec[i][0]), "b64url decode '%s'", vec[i][1]);
	}
	b64url_encode(enc, bin, 3);
	is_str(enc, "-__-", "b64url uses - and _");
	is_int(b64url_decode(dec, sizeof(dec), "Zm9v=", 5), -1, "padding refused");
	is_int(b64url_decode(dec, sizeof(dec), "Zm+v", 4), -1, "'+' refused");
	is_int(b64url_decode(dec, sizeof(dec), "Z", 1), -1, "impossible length refused");
	is_int(b64url_decode(dec, sizeof(dec), "Zh", 2), -1, "non-zero trailing bits refused");
	is_int(b64url_decode(dec, 2, "Zm9v", 4), -1, "output bound respected");
}

static void
test_token(void)
{
	char big[TOKEN_MAX + 2];

	ok(token_valid("abc-_XYZ09", 10), "token: base64url accepted");
	ok(!token_valid("", 0), "token: empty refused");
	ok(!token_valid("ab/c", 4), "token: slash refused");
	ok(!token_valid("ab.c", 4), "token: dot refused");
	ok(!token_valid("ab\0c", 4), "token: NUL refused");
	memset(big, 'a', sizeof(big));
	ok(token_valid(big, TOKEN_MAX), "token: 128 characters accepted");
	ok(!token_valid(big, TOKEN_MAX + 1), "token: 129 characters refused");
	ok(keyauth_valid("tok", 3, "tok.abc_-", 9), "keyauth: token.thumbprint");
	ok(!keyauth_valid("tok", 3, "tox.abc", 7), "keyauth: other token refused");
	ok(!keyauth_valid("tok", 3, "tok.", 4), "keyauth: empty thumbprint refused");
	ok(!keyauth_valid("tok", 3, "tok.a.b", 7), "keyauth: second dot refused");
	ok(!keyauth_valid("tok", 3, "tokabc", 6), "keyauth: missing dot refused");
}

static void
test_ctl(void)
{
	const char *in = "ADD  tok\tka 30\r\nPING\n";
	size_t linelen, used;
	struct ctl_word w[CTL_WORDS_MAX];
	uint8_t big[CTL_LINE_MAX + 10];

	is_int(ctl_line((const uint8_t *)in, strlen(in), &linelen, &used), CTL_OK, "ctl: first line");
	is_int(linelen, 14, "ctl: CR dropped");
	is_int(used, 16, "ctl: LF consumed");
	is_int(ctl_split(in, linelen, w, CTL_WORDS_MAX), 4, "ctl: four words");
	ok(ctl_word_is(&w[0], "ADD") && ctl_word_is(&w[1], "tok") &&
	    ctl_word_is(&w[2], "ka") && ctl_word_is(&w[3], "30"), "ctl: words split on runs of blanks");
	is_int(ctl_split(in, linelen, w, 2), 3, "ctl: too many words reported");
	is_int(ctl_line((const uint8_t *)"PIN", 3, &linelen, &used), CTL_NEED_MORE, "ctl: partial line");
	memset(big, 'A', sizeof(big));
	is_int(ctl_line(big, CTL_LINE_MAX, &linelen, &used), CTL_TOO_LONG, "ctl: 1024 bytes without LF");
	big[CTL_LINE_MAX - 1] = '\n';
	is_int(ctl_line(big, sizeof(big), &linelen, &used), CTL_OK, "ctl: LF at byte 1024 accepted");
}

static void
test_atomic(void)
{
	char dir[] = "/tmp/hacme-test-XXXXXX";
	char path[256], *data = NULL;
	size_t len = 0;
	struct stat st;

	ok(mkdtemp(dir) != NULL, "atomic: temp dir");
	snprintf(path, sizeof(path), "%s/a/b/key.pem", dir);
	*strrchr(path, '/') = '\0';
	is_int(mkdir_p(path, 0700), 0, "atomic: mkdir_p");
	strcat(path, "/key.pem");
	is_int(atomic_write(path, "one", 3, 0600), 0, "atomic: first write");
	is_int(atomic_write(path, "second", 6, 0600), 0, "atomic: replace");
	is_int(file_read(path, 100, &data, &len), 0, "atomic: read back");
	is_str(data, "second", "atomic: new content");
	free(data);
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "atomic: mode 0600 kept");
	ok(file_read(path, 3, &data, &len) < 0 && errno == EFBIG, "atomic: size bound");
	snprintf(path, sizeof(path), "%s/missing/x", dir);
	ok(atomic_write(path, "x", 1, 0600) < 0, "atomic: missing directory fails");
	tap_rmtree(dir);
}

static void
test_errbuf(void)
{
	char err[8] = "unset";

	errbuf_set(err, sizeof err, "%s %d", "code", 42);
	is_str(err, "code 42", "errbuf: formatted");
	errbuf_set(err, sizeof err, "%s", "a longer message");
	is_str(err, "a longe", "errbuf: cut to the buffer, terminated");
	errbuf_set(err, 0, "%s", "x");
	is_str(err, "a longe", "errbuf: errlen 0 leaves the buffer alone");
	errbuf_set(NULL, 8, "%s", "x");
	ok(1, "errbuf: a NULL buffer is no message");
}

static void
test_addr(void)
{
	struct addr a;
	char err[256];

	is_int(addr_parse(&a, "127.0.0.1:8080", err, sizeof(err)), 0, "addr: HOST:PORT");
	ok(!addr_is_unix(&a) && addr_is_loopback(&a) && addr_port(&a) == 8080, "addr: loopback 8080");
	is_int(addr_parse(&a, "ipv4@10.1.2.3:1", err, sizeof(err)), 0, "addr: ipv4@");
	ok(!addr_is_loopback(&a), "addr: 10.1.2.3 is not loopback");
	is_int(addr_parse(&a, "ipv6@[::1]:99", err, sizeof(err)), 0, "addr: ipv6@");
	ok(addr_is_loopback(&a) && addr_port(&a) == 99, "addr: ::1 loopback");
	is_int(addr_parse(&a, "tcp:127.0.0.1:5", err, sizeof(err)), 0, "addr: tcp:");
	is_int(addr_parse(&a, "unix@/run/x.sock", err, sizeof(err)), 0, "addr: unix@");
	ok(addr_is_unix(&a) && !a.master, "addr: unix");
	is_int(addr_parse(&a, "unix:/run/x.sock", err, sizeof(err)), 0, "addr: unix:");
	is_int(addr_parse(&a, "master@unix@/run/m.sock", err, sizeof(err)), 0, "addr: master@unix@");
	ok(a.master && addr_is_unix(&a), "addr: master flag");
	ok(addr_parse(&a, "127.0.0.1", err, sizeof(err)) < 0 && strstr(err, "HOST:PORT"), "addr: missing port named");
	ok(addr_parse(&a, "127.0.0.1:70000", err, sizeof(err)) < 0 && strstr(err, "port"), "addr: port range named");
	ok(addr_parse(&a, "/run/x.sock", err, sizeof(err)) < 0 && strstr(err, "unix@"), "addr: bare path explained");
	ok(addr_parse(&a, "master@127.0.0.1:1", err, sizeof(err)) < 0, "addr: master over tcp refused");
}

static void
test_buf_log(void)
{
	struct buf b;
	char esc[16];

	buf_init(&b, 8);
	is_int(buf_append(&b, "12345", 5), 0, "buf: append");
	ok(buf_append(&b, "6789", 4) < 0 && errno == ENOBUFS, "buf: bound enforced");
	buf_consume(&b, 2);
	is_mem(b.p, b.len, "345", 3, "buf: consume");
	buf_fini(&b);
	is_str(log_escape(esc, sizeof(esc), "a\nb\\", 4), "a\\x0ab\\x5c", "log: control bytes escaped");
	is_str(log_escape(esc, 8, "abcdefghij", 10), "abcd...", "log: cut with ...");
}

/* Runs fn with stderr (where log lines go) captured into out. */
static void
capture_stderr(void (*fn)(void *), void *arg, char *out, size_t outlen)
{
	char path[] = "/tmp/hacme-test-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	ssize_t n;

	out[0] = '\0';
	if (fd < 0 || saved < 0)
		return;
	unlink(path);
	dup2(fd, STDERR_FILENO);
	fn(arg);
	log_flush();
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
}

static size_t
count_str(const char *s, const char *needle)
{
	size_t n = 0;

	for (; (s = strstr(s, needle)) != NULL; s++)
		n++;
	return n;
}

static struct log_limit test_lim = LOG_LIMIT_INIT("test flood");
static uint64_t test_now;

static void
flood(void *arg)
{
	unsigned n = *(unsigned *)arg;

	for (unsigned i = 0; i < n; i++)
		if (log_limit_pass_at(&test_lim, LOG_LVL_WARNING, test_now))
			log_msg(LOG_LVL_WARNING, "flood line");
}

static void
tick(void *arg)
{
	*(bool *)arg = log_limit_tick_at(test_now);
}

static void
test_log_limit(void)
{
	static char out[64 * 1024];
	unsigned n = 10000;
	bool pending;

	log_init("test", LOG_LVL_NOTICE);
	test_now = 1000000;
	capture_stderr(flood, &n, out, sizeof(out));
	is_int(count_str(out, "flood line"), LOG_LIMIT_BURST,
	    "log limit: 10,000 lines of one cause, %d logged", LOG_LIMIT_BURST);
	is_int(count_str(out, "suppressed"), 0, "log limit: no summary inside the window");
	test_now += LOG_LIMIT_WINDOW_MS - 1;
	capture_stderr(tick, &pending, out, sizeof(out));
	ok(pending && out[0] == '\0', "log limit: tick before the window ends: nothing yet, still pending");
	test_now += 1;
	capture_stderr(tick, &pending, out, sizeof(out));
	ok(!pending && strstr(out, "warning: 9990 similar messages suppressed: test flood\n") != NULL,
	    "log limit: tick after the window: one summary line with the count and the cause");
	capture_stderr(tick, &pending, out, sizeof(out));
	ok(!pending && out[0] == '\0', "log limit: the summary is given once");
	n = 12;
	capture_stderr(flood, &n, out, sizeof(out));
	ok(count_str(out, "flood line") == LOG_LIMIT_BURST && count_str(out, "suppressed") == 0,
	    "log limit: a new window logs a new burst");
	test_now += LOG_LIMIT_WINDOW_MS;
	n = 1;
	capture_stderr(flood, &n, out, sizeof(out));
	ok(strstr(out, "2 similar messages suppressed: test flood\n") != NULL &&
	    count_str(out, "flood line") == 1 &&
	    strstr(out, "suppressed") < strstr(out, "flood line"),
	    "log limit: the next line of the cause after the window brings the summary first");
	capture_stderr(tick, &pending, out, sizeof(out));
	ok(!pending && out[0] == '\0', "log limit: nothing left to tick");
}

int
main(void)
{
	test_b64url();
	test_token();
	test_ctl();
	test_atomic();
	test_errbuf();
	test_addr();
	test_buf_log();
	test_log_limit();
	return tap_done();
}
