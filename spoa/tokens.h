/* tokens.h - the agent's table of pending http-01 challenges:
 * token -> key authorization, expiry, optional host. Pure: no I/O, no clock
 * (the caller passes the monotonic time in milliseconds).
 *
 * Bounded (ADD fails when full), one allocation per entry (token, key
 * authorization and host share it: the key authorization is stored once and
 * the token is its prefix), chained hash with a seeded hash function.
 * Expired entries are dropped when a lookup meets them, a few buckets are
 * swept on every add, and everything is swept before an add is refused.
 */
#ifndef HACME_SPOA_TOKENS_H
#define HACME_SPOA_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKENS_DEFAULT_MAX	100000
#define TOKENS_HOST_MAX		253	/* characters of a DNS name */

struct tokens;

enum tokens_rc {
	TOKENS_OK = 0,
	TOKENS_FULL,		/* max entries held, none expired */
	TOKENS_NOMEM,
	TOKENS_INVAL,		/* bad token, key authorization or host */
};

enum tokens_match {
	TOKENS_HIT = 0,
	TOKENS_MISS,		/* unknown or expired */
	TOKENS_WRONG_HOST,	/* pending, but published for another host */
};

/* A borrowed view of one entry, valid until the table is next changed. */
struct tokens_view {
	const char *token;
	size_t token_len;
	const char *keyauth;	/* starts with the token */
	size_t keyauth_len;
	const char *host;	/* lower case, no brackets, no port; may be empty */
	size_t host_len;
	uint64_t expires_ms;	/* monotonic */
};

/* max: entries held at most (>= 1). seed: for the hash (random in the
 * agent, fixed in tests). NULL when out of memory. */
struct tokens *tokens_new(size_t max, uint64_t seed);
void tokens_free(struct tokens *t);

/* Adds or replaces token. host may be NULL/0 (any Host). The host is
 * stored normalized (see tokens_host_match). expires_ms is absolute. */
enum tokens_rc tokens_add(struct tokens *t, const char *tok, size_t tok_len,
    const char *keyauth, size_t keyauth_len, const char *host,
    size_t host_len, uint64_t expires_ms, uint64_t now_ms);

/* True when token was held (expired or not). */
bool tokens_del(struct tokens *t, const char *tok, size_t tok_len);

/* The key authorization for tok when it is pending at now_ms and, if it
 * was published for a host, reqhost (the Host header: case, port, brackets
 * and one trailing dot ignored; NULL when the request had none) names it.
 * On TOKENS_HIT, *ka and *ka_len view the entry until the table next changes.
 * An expired entry met here is removed. */
enum tokens_match tokens_lookup(struct tokens *t, const char *tok,
    size_t tok_len, const char *reqhost, size_t reqhost_len,
    uint64_t now_ms, const char **ka, size_t *ka_len);

/* Entries held, including expired ones not swept yet. */
size_t tokens_count(const struct tokens *t);
size_t tokens_max(const struct tokens *t);

/* Removes every entry expired at now_ms; returns how many. */
size_t tokens_sweep(struct tokens *t, uint64_t now_ms);

/* Calls fn for every entry pending at now_ms (in table order). fn must not
 * change the table. */
void tokens_foreach(const struct tokens *t, uint64_t now_ms,
    void (*fn)(void *ctx, const struct tokens_view *v), void *ctx);

/* A host as ADD accepts it: a DNS name (letters, digits, '-', '_', dots
 * between non-empty labels, one trailing dot allowed), an IPv4 literal, or
 * an IPv6 literal with or without brackets; 1..253 characters. */
bool tokens_host_valid(const char *h, size_t n);

/* published: a normalized host (as stored); reqhost: a Host header value. */
bool tokens_host_match(const char *published, size_t plen,
    const char *reqhost, size_t rlen);

#endif
