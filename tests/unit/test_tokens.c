/* test_tokens.c - the pending-challenge table: add, replace, delete, expiry,
 * host matching, the bound and the lazy sweep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spoa/tokens.h"
#include "tap.h"

#define S(x) (x), strlen(x)

static enum tokens_match
look(struct tokens *t, const char *tok, const char *host, uint64_t now,
    const char **ka, size_t *kalen)
{
	return tokens_lookup(t, tok, strlen(tok), host, host ? strlen(host) : 0,
	    now, ka, kalen);
}

static void
count_cb(void *ctx, const struct tokens_view *v)
{
	(*(size_t *)ctx)++;
}

static void
test_basic(void)
{
	struct tokens *t = tokens_new(10, 1);
	const char *ka = NULL;
	size_t kalen = 0;

	ok(t != NULL, "new");
	is_int(tokens_count(t), 0, "empty");
	is_int(tokens_max(t), 10, "max");
	is_int(look(t, "abc", NULL, 0, &ka, &kalen), TOKENS_MISS, "unknown: miss");
	is_int(tokens_add(t, S("abc"), S("abc.thumb"), NULL, 0, 5000, 0),
	    TOKENS_OK, "add");
	is_int(tokens_count(t), 1, "one entry");
	is_int(look(t, "abc", NULL, 100, &ka, &kalen), TOKENS_HIT, "hit");
	is_mem(ka, kalen, "abc.thumb", 9, "key authorization returned");
	is_int(look(t, "abc", "any.example", 100, &ka, &kalen), TOKENS_HIT,
	    "no host published: any Host matches");
	is_int(look(t, "ab", NULL, 100, &ka, &kalen), TOKENS_MISS, "prefix: miss");
	is_int(look(t, "abcd", NULL, 100, &ka, &kalen), TOKENS_MISS, "longer: miss");
	is_int(look(t, "ABC", NULL, 100, &ka, &kalen), TOKENS_MISS,
	    "tokens are case-sensitive");

	/* Replace: new key authorization, new expiry, new host. */
	is_int(tokens_add(t, S("abc"), S("abc.other"), S("Example.COM"), 9000, 10),
	    TOKENS_OK, "replace");
	is_int(tokens_count(t), 1, "replace keeps one entry");
	is_int(look(t, "abc", "example.com", 6000, &ka, &kalen), TOKENS_HIT,
	    "replaced entry lives past the old expiry");
	is_mem(ka, kalen, "abc.other", 9, "replaced key authorization");
	is_int(look(t, "abc", "other.example", 6000, &ka, &kalen),
	    TOKENS_WRONG_HOST, "replaced entry has the new host");

	ok(tokens_del(t, S("abc")), "del known");
	ok(!tokens_del(t, S("abc")), "del again: not held");
	is_int(tokens_count(t), 0, "empty after del");
	is_int(look(t, "abc", "example.com", 6000, &ka, &kalen), TOKENS_MISS,
	    "deleted: miss");

	/* Refused input. */
	is_int(tokens_add(t, S("abc"), S("abd.thumb"), NULL, 0, 5000, 0),
	    TOKENS_INVAL, "keyauth of another token refused");
	is_int(tokens_add(t, S("a/c"), S("a/c.thumb"), NULL, 0, 5000, 0),
	    TOKENS_INVAL, "token outside base64url refused");
	is_int(tokens_add(t, S("abc"), S("abc.th=mb"), NULL, 0, 5000, 0),
	    TOKENS_INVAL, "thumbprint outside base64url refused");
	is_int(tokens_add(t, S("abc"), S("abc.thumb"), S("bad host"), 5000, 0),
	    TOKENS_INVAL, "bad host refused");
	is_int(tokens_count(t), 0, "nothing added by refused ADDs");
	tokens_free(t);
	tokens_free(NULL);
	ok(tokens_new(0, 1) == NULL, "max 0 refused");
}

static void
test_expiry(void)
{
	struct tokens *t = tokens_new(10, 2);
	const char *ka;
	size_t kalen, n = 0;

	tokens_add(t, S("tok1"), S("tok1.x"), NULL, 0, 1000, 0);
	tokens_add(t, S("tok2"), S("tok2.x"), NULL, 0, 2000, 0);
	is_int(look(t, "tok1", NULL, 999, &ka, &kalen), TOKENS_HIT,
	    "1 ms before expiry: hit");
	is_int(look(t, "tok1", NULL, 1000, &ka, &kalen), TOKENS_MISS,
	    "at expiry: miss");
	is_int(tokens_count(t), 1, "the expired entry met by the lookup is gone");
	tokens_foreach(t, 2000, count_cb, &n);
	is_int(n, 0, "foreach skips expired entries");
	is_int(tokens_count(t), 1, "foreach does not remove");
	is_int(tokens_sweep(t, 2000), 1, "sweep removes the expired one");
	is_int(tokens_count(t), 0, "empty after sweep");
	tokens_free(t);
}

static void
test_bound(void)
{
	struct tokens *t = tokens_new(3, 3);
	const char *ka;
	size_t kalen;

	tokens_add(t, S("a1"), S("a1.x"), NULL, 0, 1000, 0);
	tokens_add(t, S("a2"), S("a2.x"), NULL, 0, 5000, 0);
	tokens_add(t, S("a3"), S("a3.x"), NULL, 0, 5000, 0);
	is_int(tokens_add(t, S("a4"), S("a4.x"), NULL, 0, 5000, 10),
	    TOKENS_FULL, "full: add refused");
	is_int(tokens_add(t, S("a2"), S("a2.y"), NULL, 0, 6000, 10),
	    TOKENS_OK, "full: replacing an existing token still works");
	is_int(tokens_count(t), 3, "count stays at the bound");
	is_int(tokens_add(t, S("a4"), S("a4.x"), NULL, 0, 5000, 1000),
	    TOKENS_OK, "full of one dead token: the add sweeps and succeeds");
	is_int(tokens_count(t), 3, "the dead token made room");
	is_int(look(t, "a1", NULL, 1000, &ka, &kalen), TOKENS_MISS, "dead one gone");
	is_int(look(t, "a4", NULL, 1000, &ka, &kalen), TOKENS_HIT, "new one held");
	tokens_free(t);
}

/* Many entries: growth and the lazy sweep. */
static void
test_many(void)
{
	struct tokens *t = tokens_new(100000, 4);
	char tok[32], ka[64];
	const char *k;
	size_t kalen, bad = 0;
	int i;

	for (i = 0; i < 20000; i++) {
		snprintf(tok, sizeof(tok), "tok%d", i);
		snprintf(ka, sizeof(ka), "tok%d.thumb%d", i, i);
		if (tokens_add(t, S(tok), S(ka), NULL, 0, 1000, 0) != TOKENS_OK)
			bad++;
	}
	is_int(bad, 0, "20000 adds");
	is_int(tokens_count(t), 20000, "20000 held");
	for (i = 0; i < 20000; i++) {
		snprintf(tok, sizeof(tok), "tok%d", i);
		snprintf(ka, sizeof(ka), "tok%d.thumb%d", i, i);
		if (look(t, tok, NULL, 500, &k, &kalen) != TOKENS_HIT ||
		    kalen != strlen(ka) || memcmp(k, ka, kalen) != 0)
			bad++;
	}
	is_int(bad, 0, "every one found with its own key authorization");
	/* All expire; fresh adds sweep the dead ones a few buckets at a time. */
	for (i = 0; i < 20000; i++) {
		snprintf(tok, sizeof(tok), "new%d", i);
		snprintf(ka, sizeof(ka), "new%d.t", i);
		tokens_add(t, S(tok), S(ka), NULL, 0, 9000, 2000);
	}
	ok(tokens_count(t) < 40000, "lazy sweep dropped dead tokens (%zu held)",
	    tokens_count(t));
	tokens_sweep(t, 2000);
	is_int(tokens_count(t), 20000, "after a full sweep only the new ones");
	tokens_free(t);
}

static void
test_hosts(void)
{
	struct tokens *t = tokens_new(10, 5);
	const char *ka;
	size_t kalen;

	ok(tokens_host_valid(S("example.com")), "valid: name");
	ok(tokens_host_valid(S("Ex-am_ple.COM.")), "valid: trailing dot, case");
	ok(tokens_host_valid(S("192.0.2.1")), "valid: IPv4");
	ok(tokens_host_valid(S("::1")), "valid: IPv6");
	ok(tokens_host_valid(S("[2001:db8::1]")), "valid: bracketed IPv6");
	ok(!tokens_host_valid(S("")), "invalid: empty");
	ok(!tokens_host_valid(S(".example.com")), "invalid: leading dot");
	ok(!tokens_host_valid(S("a..b")), "invalid: empty label");
	ok(!tokens_host_valid(S("exa mple")), "invalid: space");
	ok(!tokens_host_valid(S("example.com:80")), "invalid: port");
	ok(!tokens_host_valid(S("[::1]:80")), "invalid: bracket with port");
	ok(!tokens_host_valid(S("[example.com]")), "invalid: brackets around a name");
	ok(!tokens_host_valid(S("::g")), "invalid: bad IPv6");
	ok(!tokens_host_valid(S("*.example.com")), "invalid: wildcard");
	{
		char h[300];
		memset(h, 'a', sizeof(h));
		for (int i = 60; i < 300; i += 61)
			h[i] = '.';
		ok(tokens_host_valid(h, 253), "valid: 253 characters");
		ok(!tokens_host_valid(h, 254), "invalid: 254 characters");
		memset(h, 'a', 64);
		ok(!tokens_host_valid(h, 64), "invalid: a 64-character label");
	}

	ok(tokens_host_match(S("example.com"), S("EXAMPLE.com")), "match: case");
	ok(tokens_host_match(S("example.com"), S("example.com:8080")), "match: port");
	ok(tokens_host_match(S("example.com"), S("example.com.")), "match: trailing dot");
	ok(!tokens_host_match(S("example.com"), S("www.example.com")), "no match: other");
	ok(!tokens_host_match(S("example.com"), S("example.co")), "no match: shorter");
	ok(!tokens_host_match(S("example.com"), NULL, 0), "no match: no Host");
	ok(tokens_host_match(S("::1"), S("[::1]:80")), "match: [::1]:80");
	ok(tokens_host_match(S("::1"), S("[::1]")), "match: [::1]");
	ok(tokens_host_match(S("::1"), S("[0:0::1]")), "match: another spelling of ::1");
	ok(!tokens_host_match(S("::1"), S("[::2]:80")), "no match: [::2]");

	tokens_add(t, S("h1"), S("h1.x"), S("WWW.Example.com."), 5000, 0);
	tokens_add(t, S("h6"), S("h6.x"), S("[::1]"), 5000, 0);
	tokens_add(t, S("h7"), S("h7.x"), S("2001:DB8::1"), 5000, 0);
	is_int(look(t, "h1", "www.example.com:80", 1, &ka, &kalen), TOKENS_HIT,
	    "published with case and dot, requested with a port");
	is_int(look(t, "h1", "example.com", 1, &ka, &kalen), TOKENS_WRONG_HOST,
	    "parent domain refused");
	is_int(look(t, "h1", NULL, 1, &ka, &kalen), TOKENS_WRONG_HOST,
	    "no Host header refused for a host-bound token");
	is_int(look(t, "h6", "[::1]:80", 1, &ka, &kalen), TOKENS_HIT,
	    "IPv6 literal with port");
	is_int(look(t, "h7", "[2001:db8:0::1]", 1, &ka, &kalen), TOKENS_HIT,
	    "IPv6 stored canonical, matched in another spelling");
	is_int(look(t, "h7", "2001:db8::1", 1, &ka, &kalen), TOKENS_HIT,
	    "bare IPv6 Host");
	tokens_free(t);
}

int
main(void)
{
	test_basic();
	test_expiry();
	test_bound();
	test_many();
	test_hosts();
	return tap_done();
}
