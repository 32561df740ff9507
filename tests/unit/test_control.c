/* test_control.c - the control protocol: every verb, every error, CRLF,
 * pipelined requests, back-pressure and exact replies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "spoa/control.h"
#include "tap.h"

static struct tokens *tab;
static struct control_stats st;
static char reply[65536];

/* Feeds r[0..n) as one read at now_ms, out capped at out_max bytes; the
 * reply is left as a string in `reply`. */
static enum control_rc
feed(const char *r, size_t n, uint64_t now_ms, size_t out_max,
    size_t out_high, size_t *consumed)
{
	struct buf out;
	enum control_rc rc;
	size_t used;

	buf_init(&out, out_max);
	rc = control_feed(tab, &st, now_ms, (const uint8_t *)r, n, &out,
	    out_high, &used);
	memcpy(reply, out.p ? (char *)out.p : "", out.len);
	reply[out.len] = '\0';
	buf_fini(&out);
	if (consumed)
		*consumed = used;
	return rc;
}

static void
is_reply(const char *r, uint64_t now_ms, const char *want, const char *what)
{
	size_t used = 0;
	enum control_rc rc;

	rc = feed(r, strlen(r), now_ms, sizeof(reply) - 1, sizeof(reply), &used);
	is_str(reply, want, "%s", what);
	if (rc != CONTROL_OK || used != strlen(r))
		ok(0, "%s: whole request consumed without close", what);
}

static int
line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* LIST comes in table order: compare its lines sorted. */
static void
is_list(uint64_t now_ms, const char *want_sorted, const char *what)
{
	char *lines[64], sorted[65536], *p, *save;
	size_t n = 0, len = 0;

	feed("LIST\n", 5, now_ms, sizeof(reply) - 1, sizeof(reply), NULL);
	len = strlen(reply);
	if (len < 4 || strcmp(reply + len - 4, "END\n") != 0) {
		ok(0, "%s: ends with END (got '%s')", what, reply);
		return;
	}
	reply[len - 4] = '\0';
	for (p = strtok_r(reply, "\n", &save); p && n < 64; p = strtok_r(NULL, "\n", &save))
		lines[n++] = p;
	qsort(lines, n, sizeof(*lines), line_cmp);
	sorted[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(sorted, lines[i]);
		strcat(sorted, "\n");
	}
	is_str(sorted, want_sorted, "%s", what);
}

/* The STATS reply for the counters test_verbs sets. */
static const char *
stats_want(int tokens)
{
	static char b[512];

	snprintf(b, sizeof(b),
	    "tokens %d\n"
	    "max_tokens 3\n"
	    "connections_total 7\n"
	    "connections_active 2\n"
	    "notifies 12\n"
	    "hits 3\n"
	    "misses 4\n"
	    "invalid 5\n"
	    "protocol_errors 1\n"
	    "closed_max_connections 6\n"
	    "closed_hello_timeout 7\n"
	    "closed_idle_timeout 8\n"
	    "closed_buffer_memory 9\n"
	    "buffer_bytes 10\n"
	    "END\n", tokens);
	return b;
}

static void
test_verbs(void)
{
	is_reply("PING\n", 0, "PONG\n", "PING");
	is_reply("PING\r\n", 0, "PONG\n", "PING with CRLF");
	is_reply("LIST\n", 0, "END\n", "LIST of an empty table");
	is_reply("ADD tok1 tok1.thumb 60\n", 0, "OK\n", "ADD without host");
	is_reply("ADD tok2 tok2.thumb 86400 WWW.Example.COM.\r\n", 0, "OK\n",
	    "ADD with host, CRLF, ttl 86400");
	is_reply("ADD  tok3\ttok3.t   1   [::1]\n", 0, "OK\n",
	    "ADD with runs of spaces and tabs, IPv6 host");
	is_list(500,
	    "tok1 tok1.thumb 60\n"
	    "tok2 tok2.thumb 86400 www.example.com\n"
	    "tok3 tok3.t 1 ::1\n",
	    "LIST: token, key authorization, seconds left (rounded up), host");
	is_list(1000,
	    "tok1 tok1.thumb 59\n"
	    "tok2 tok2.thumb 86399 www.example.com\n",
	    "LIST one second later: the ttl-1 token is gone");
	is_reply("ADD tok1 tok1.other 120\n", 1000, "OK\n", "ADD replaces");
	is_list(1000,
	    "tok1 tok1.other 120\n"
	    "tok2 tok2.thumb 86399 www.example.com\n",
	    "LIST shows the replacement");
	is_reply("DEL tok1\n", 1000, "OK\n", "DEL known");
	is_reply("DEL tok1\n", 1000, "OK\n", "DEL unknown is OK too");
	is_list(1000, "tok2 tok2.thumb 86399 www.example.com\n", "LIST after DEL");

	st.connections_total = 7;
	st.connections_active = 2;
	st.hits = 3;
	st.misses = 4;
	st.invalid = 5;
	st.spop.notifies = 12;
	st.spop.protocol_errors = 1;
	st.closed_cap = 6;
	st.closed_hello = 7;
	st.closed_idle = 8;
	st.closed_budget = 9;
	st.buffer_bytes = 10;
	is_reply("STATS\n", 1000, stats_want(1), "STATS: every key, then END");
	is_reply("STATS\n", 86400 * 1000, stats_want(0),
	    "STATS counts live tokens only");
}

static void
test_errors(void)
{
	static const struct {
		const char *req, *reply, *what;
	} cases[] = {
		{ "\n", "ERR empty line\n", "empty line" },
		{ "   \r\n", "ERR empty line\n", "blank line" },
		{ "FOO\n", "ERR unknown verb (ADD DEL LIST STATS PING)\n", "unknown verb" },
		{ "ping\n", "ERR verbs are upper-case\n", "lower-case verb" },
		{ "Add a a.b 1\n", "ERR verbs are upper-case\n", "mixed-case verb" },
		{ "PINGX\n", "ERR unknown verb (ADD DEL LIST STATS PING)\n", "verb prefix" },
		{ "PING x\n", "ERR usage: PING\n", "PING with an argument" },
		{ "LIST x\n", "ERR usage: LIST\n", "LIST with an argument" },
		{ "STATS x\n", "ERR usage: STATS\n", "STATS with an argument" },
		{ "DEL\n", "ERR usage: DEL <token>\n", "DEL without token" },
		{ "DEL a b\n", "ERR usage: DEL <token>\n", "DEL with two" },
		{ "DEL a/b\n", "ERR bad token (base64url, 1..128 characters)\n", "DEL bad token" },
		{ "ADD\n", "ERR usage: ADD <token> <key-authorization> <ttl-seconds> [<host>]\n", "ADD alone" },
		{ "ADD t t.x\n", "ERR usage: ADD <token> <key-authorization> <ttl-seconds> [<host>]\n", "ADD without ttl" },
		{ "ADD t t.x 1 h x\n", "ERR usage: ADD <token> <key-authorization> <ttl-seconds> [<host>]\n", "ADD with 5 args" },
		{ "ADD a b c d e f g h i\n", "ERR too many words\n", "too many words" },
		{ "ADD t=x t=x.y 1\n", "ERR bad token (base64url, 1..128 characters)\n", "ADD token with '='" },
		{ "ADD t t.x= 1\n", "ERR bad key authorization (want <token>.<base64url thumbprint>)\n", "keyauth with '='" },
		{ "ADD t u.x 1\n", "ERR bad key authorization (want <token>.<base64url thumbprint>)\n", "keyauth of another token" },
		{ "ADD t t. 1\n", "ERR bad key authorization (want <token>.<base64url thumbprint>)\n", "keyauth without thumbprint" },
		{ "ADD t t 1\n", "ERR bad key authorization (want <token>.<base64url thumbprint>)\n", "keyauth without dot" },
		{ "ADD t t.x 0\n", "ERR ttl out of range (1..86400)\n", "ttl 0" },
		{ "ADD t t.x 86401\n", "ERR ttl out of range (1..86400)\n", "ttl 86401" },
		{ "ADD t t.x 99999999999999999999\n", "ERR ttl out of range (1..86400)\n", "ttl huge" },
		{ "ADD t t.x -1\n", "ERR bad ttl (seconds, 1..86400)\n", "ttl negative" },
		{ "ADD t t.x 1s\n", "ERR bad ttl (seconds, 1..86400)\n", "ttl with unit" },
		{ "ADD t t.x 1 bad/host\n", "ERR bad host (a DNS name or an IP address, at most 253 characters)\n", "host with '/'" },
		{ "ADD t t.x 1 host:80\n", "ERR bad host (a DNS name or an IP address, at most 253 characters)\n", "host with port" },
		{ "ADD t t.x 1 a\x01""b\n", "ERR bad host (a DNS name or an IP address, at most 253 characters)\n", "host with a control byte" },
	};
	char tok[200], line[600];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_reply(cases[i].req, 0, cases[i].reply, cases[i].what);

	memset(tok, 'A', 129);
	tok[129] = '\0';
	snprintf(line, sizeof(line), "ADD %s %s.x 1\n", tok, tok);
	is_reply(line, 0, "ERR bad token (base64url, 1..128 characters)\n",
	    "129-character token");
	tok[128] = '\0';
	snprintf(line, sizeof(line), "ADD %s %s.x 1\n", tok, tok);
	is_reply(line, 0, "OK\n", "128-character token");
	{
		size_t used = 99;
		enum control_rc rc = feed("PING\nPI", 7, 0, 1000, 1000, &used);
		is_str(reply, "PONG\n", "one whole line answered");
		is_int(used, 5, "the partial line is left for later");
		is_int(rc, CONTROL_OK, "no close");
	}
}

static void
test_full(void)
{
	is_reply("ADD a1 a1.x 10\nADD a2 a2.x 10\nADD a3 a3.x 10\n", 0,
	    "OK\nOK\nOK\n", "pipelined: three replies in order");
	is_reply("ADD a4 a4.x 10\n", 0, "ERR table full\n", "table full");
	is_reply("ADD a3 a3.y 10\n", 0, "OK\n", "full table: replace still OK");
	is_reply("DEL a1\nADD a4 a4.x 10\n", 0, "OK\nOK\n", "DEL makes room");
	is_list(0, "a2 a2.x 10\na3 a3.y 10\na4 a4.x 10\n", "LIST of the full table");
}

static void
test_limits(void)
{
	char big[CTL_LINE_MAX + 10];
	size_t used = 0;
	enum control_rc rc;

	memset(big, 'A', sizeof(big));
	rc = feed(big, CTL_LINE_MAX - 1, 0, 1000, 1000, &used);
	is_int(rc, CONTROL_OK, "1023 bytes without LF: wait for more");
	is_int(used, 0, "nothing consumed");
	is_str(reply, "", "no reply yet");
	rc = feed(big, CTL_LINE_MAX, 0, 1000, 1000, &used);
	is_int(rc, CONTROL_CLOSE, "1024 bytes without LF: close");
	is_str(reply, "ERR line too long\n", "ERR line too long");
	memcpy(big, "PING\n", 5);
	rc = feed(big, sizeof(big), 0, 1000, 1000, &used);
	is_int(rc, CONTROL_CLOSE, "a good line, then a too-long one: close");
	is_str(reply, "PONG\nERR line too long\n", "the good line is answered first");
	memset(big, 'A', sizeof(big));
	big[CTL_LINE_MAX - 1] = '\n';
	rc = feed(big, CTL_LINE_MAX, 0, 1000, 1000, &used);
	is_int(rc, CONTROL_OK, "1023 bytes + LF is a line");
	is_str(reply, "ERR unknown verb (ADD DEL LIST STATS PING)\n",
	    "and gets an ordinary answer");

	rc = feed("PING\nPING\nPING\n", 15, 0, 1000, 0, &used);
	is_str(reply, "PONG\n", "back-pressure: stops once out is above the mark");
	is_int(used, 5, "the rest is left unconsumed");
	rc = feed("LIST\n", 5, 0, 30, 1000, &used);
	is_str(reply, "ERR reply too large\n", "a reply that cannot fit: ERR, never half");
	ok(control_line(tab, &st, 0, "PING", 4, &(struct buf){ 0 }) == -1,
	    "control_line: -1 when out cannot take the reply");
}

int
main(void)
{
	tab = tokens_new(3, 7);
	test_verbs();
	test_errors();
	tokens_free(tab);
	tab = tokens_new(3, 7);
	test_full();
	test_limits();
	tokens_free(tab);
	return tap_done();
}
