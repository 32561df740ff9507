/* tokens.c - pending-challenge table (see tokens.h). */
#include "spoa/tokens.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/token.h"

#define TOKENS_MIN_BUCKETS	16
#define TOKENS_SWEEP_STEP	4	/* buckets swept per add */
#define TOKENS_NORM_MAX		(TOKENS_HOST_MAX + 1)

/* One allocation: data = token '.' thumbprint host, no NUL. */
struct tokens_entry {
	struct tokens_entry *next;
	uint64_t expires_ms;
	uint32_t hash;
	uint8_t token_len;	/* 1..TOKEN_MAX */
	uint8_t thumb_len;	/* 1..THUMBPRINT_MAX */
	uint8_t host_len;	/* 0..TOKENS_HOST_MAX */
	char data[];
};

struct tokens {
	struct tokens_entry **buckets;
	size_t nbuckets;	/* a power of two */
	size_t count;
	size_t max;
	size_t sweep_at;	/* next bucket the lazy sweep visits */
	uint64_t seed;
};

static uint32_t
tokens_hash(const struct tokens *t, const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ t->seed;

	/* FNV-1a with a seed, finished with a murmur-style mix. */
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

struct tokens *
tokens_new(size_t max, uint64_t seed)
{
	struct tokens *t;

	if (max == 0)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->nbuckets = TOKENS_MIN_BUCKETS;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		free(t);
		return NULL;
	}
	t->max = max;
	t->seed = seed;
	return t;
}

void
tokens_free(struct tokens *t)
{
	struct tokens_entry *e, *next;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->buckets);
	free(t);
}

size_t
tokens_count(const struct tokens *t)
{
	return t->count;
}

size_t
tokens_max(const struct tokens *t)
{
	return t->max;
}

static bool
tokens_expired(const struct tokens_entry *e, uint64_t now_ms)
{
	return now_ms >= e->expires_ms;
}

/* The slot pointing at tok's entry, or at the NULL ending its chain. */
static struct tokens_entry **
tokens_slot(const struct tokens *t, const char *tok, size_t tok_len,
    uint32_t h)
{
	struct tokens_entry **pe = &t->buckets[h & (t->nbuckets - 1)];

	for (; *pe != NULL; pe = &(*pe)->next) {
		if ((*pe)->hash == h && (*pe)->token_len == tok_len &&
		    memcmp((*pe)->data, tok, tok_len) == 0)
			break;
	}
	return pe;
}

static void
tokens_unlink(struct tokens *t, struct tokens_entry **pe)
{
	struct tokens_entry *e = *pe;

	*pe = e->next;
	free(e);
	t->count--;
}

static size_t
tokens_sweep_bucket(struct tokens *t, size_t i, uint64_t now_ms)
{
	struct tokens_entry **pe = &t->buckets[i];
	size_t n = 0;

	while (*pe != NULL) {
		if (tokens_expired(*pe, now_ms)) {
			tokens_unlink(t, pe);
			n++;
		} else {
			pe = &(*pe)->next;
		}
	}
	return n;
}

size_t
tokens_sweep(struct tokens *t, uint64_t now_ms)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nbuckets; i++)
		n += tokens_sweep_bucket(t, i, now_ms);
	return n;
}

/* Doubling keeps chains short; a failed allocation only costs speed. */
static void
tokens_grow(struct tokens *t)
{
	size_t nb = t->nbuckets * 2;
	struct tokens_entry **nbk, *e, *next;

	if ((nbk = calloc(nb, sizeof(*nbk))) == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nbk[e->hash & (nb - 1)];
			nbk[e->hash & (nb - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = nbk;
	t->nbuckets = nb;
	t->sweep_at = 0;
}

static char
tokens_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Lower case, one trailing dot dropped, an IPv6 literal (brackets already
 * removed) in its canonical text form. false when it cannot be one. */
static bool
tokens_host_norm(const char *h, size_t n, char out[TOKENS_NORM_MAX],
    size_t *out_len)
{
	char tmp[TOKENS_NORM_MAX];
	struct in6_addr a6;

	if (n > 0 && h[n - 1] == '.')
		n--;
	if (n == 0 || n > TOKENS_HOST_MAX)
		return false;
	if (memchr(h, ':', n) == NULL) {
		for (size_t i = 0; i < n; i++)
			out[i] = tokens_lower(h[i]);
		*out_len = n;
		return true;
	}
	if (n >= INET6_ADDRSTRLEN)
		return false;
	memcpy(tmp, h, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET6, tmp, &a6) != 1 ||
	    inet_ntop(AF_INET6, &a6, out, TOKENS_NORM_MAX) == NULL)
		return false;
	*out_len = strlen(out);
	return true;
}

static bool
tokens_dns_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool
tokens_host_valid(const char *h, size_t n)
{
	char norm[TOKENS_NORM_MAX];
	size_t nl, label = 0;

	if (n == 0 || n > TOKENS_HOST_MAX)
		return false;
	if (h[0] == '[') {
		if (n < 3 || h[n - 1] != ']' || memchr(h + 1, ':', n - 2) == NULL)
			return false;
		return tokens_host_norm(h + 1, n - 2, norm, &nl);
	}
	if (memchr(h, ':', n) != NULL)
		return tokens_host_norm(h, n, norm, &nl);
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '.') {
			/* Empty labels are refused, except after a final dot. */
			if (label == 0)
				return false;
			label = 0;
		} else if (tokens_dns_char(h[i])) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* The host part of a Host header value: [v6]:port, v6 (bare), name:port. */
static void
tokens_host_strip(const char *r, size_t n, const char **h, size_t *hn)
{
	const char *colon;

	if (n > 0 && r[0] == '[') {
		const char *close = memchr(r, ']', n);
		*h = r + 1;
		*hn = close ? (size_t)(close - r - 1) : n - 1;
		return;
	}
	*h = r;
	*hn = n;
	colon = memchr(r, ':', n);
	if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon - r) - 1) == NULL)
		*hn = (size_t)(colon - r);
}

bool
tokens_host_match(const char *published, size_t plen, const char *reqhost,
    size_t rlen)
{
	char norm[TOKENS_NORM_MAX];
	const char *h;
	size_t hn, nl;

	if (reqhost == NULL)
		return false;
	tokens_host_strip(reqhost, rlen, &h, &hn);
	if (!tokens_host_norm(h, hn, norm, &nl))
		return false;
	return nl == plen && memcmp(norm, published, nl) == 0;
}

enum tokens_rc
tokens_add(struct tokens *t, const char *tok, size_t tok_len,
    const char *keyauth, size_t keyauth_len, const char *host,
    size_t host_len, uint64_t expires_ms, uint64_t now_ms)
{
	char norm[TOKENS_NORM_MAX];
	size_t norm_len = 0, thumb_len;
	struct tokens_entry *e, **pe;
	uint32_t h;

	if (!keyauth_valid(tok, tok_len, keyauth, keyauth_len))
		return TOKENS_INVAL;
	if (host != NULL && host_len > 0) {
		if (!tokens_host_valid(host, host_len))
			return TOKENS_INVAL;
		if (host[0] == '[')
			(void)tokens_host_norm(host + 1, host_len - 2, norm, &norm_len);
		else
			(void)tokens_host_norm(host, host_len, norm, &norm_len);
	}
	thumb_len = keyauth_len - tok_len - 1;

	/* A little sweeping on every add keeps dead tokens from piling up. */
	for (int i = 0; i < TOKENS_SWEEP_STEP; i++) {
		tokens_sweep_bucket(t, t->sweep_at, now_ms);
		t->sweep_at = (t->sweep_at + 1) & (t->nbuckets - 1);
	}

	h = tokens_hash(t, tok, tok_len);
	pe = tokens_slot(t, tok, tok_len, h);
	if (*pe == NULL && t->count >= t->max) {
		if (tokens_sweep(t, now_ms) == 0)
			return TOKENS_FULL;
		pe = tokens_slot(t, tok, tok_len, h);
	}
	e = malloc(sizeof(*e) + keyauth_len + norm_len);
	if (e == NULL)
		return TOKENS_NOMEM;
	e->expires_ms = expires_ms;
	e->hash = h;
	e->token_len = (uint8_t)tok_len;
	e->thumb_len = (uint8_t)thumb_len;
	e->host_len = (uint8_t)norm_len;
	memcpy(e->data, keyauth, keyauth_len);
	if (norm_len)
		memcpy(e->data + keyauth_len, norm, norm_len);
	if (*pe != NULL) {
		/* Replace in place: same chain position, same count. */
		e->next = (*pe)->next;
		free(*pe);
		*pe = e;
		return TOKENS_OK;
	}
	e->next = NULL;
	*pe = e;
	t->count++;
	if (t->count > t->nbuckets && t->nbuckets < ((size_t)1 << 30))
		tokens_grow(t);
	return TOKENS_OK;
}

bool
tokens_del(struct tokens *t, const char *tok, size_t tok_len)
{
	struct tokens_entry **pe;

	pe = tokens_slot(t, tok, tok_len, tokens_hash(t, tok, tok_len));
	if (*pe == NULL)
		return false;
	tokens_unlink(t, pe);
	return true;
}

static void
tokens_view_of(const struct tokens_entry *e, struct tokens_view *v)
{
	v->token = e->data;
	v->token_len = e->token_len;
	v->keyauth = e->data;
	v->keyauth_len = (size_t)e->token_len + 1 + e->thumb_len;
	v->host = e->data + v->keyauth_len;
	v->host_len = e->host_len;
	v->expires_ms = e->expires_ms;
}

enum tokens_match
tokens_lookup(struct tokens *t, const char *tok, size_t tok_len,
    const char *reqhost, size_t reqhost_len, uint64_t now_ms,
    const char **ka, size_t *ka_len)
{
	struct tokens_entry **pe;
	struct tokens_view v;

	if (tok_len == 0 || tok_len > TOKEN_MAX)
		return TOKENS_MISS;
	pe = tokens_slot(t, tok, tok_len, tokens_hash(t, tok, tok_len));
	if (*pe == NULL)
		return TOKENS_MISS;
	if (tokens_expired(*pe, now_ms)) {
		tokens_unlink(t, pe);
		return TOKENS_MISS;
	}
	tokens_view_of(*pe, &v);
	if (v.host_len > 0 &&
	    !tokens_host_match(v.host, v.host_len, reqhost, reqhost_len))
		return TOKENS_WRONG_HOST;
	*ka = v.keyauth;
	*ka_len = v.keyauth_len;
	return TOKENS_HIT;
}

void
tokens_foreach(const struct tokens *t, uint64_t now_ms,
    void (*fn)(void *ctx, const struct tokens_view *v), void *ctx)
{
	const struct tokens_entry *e;
	struct tokens_view v;

	for (size_t i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = e->next) {
			if (tokens_expired(e, now_ms))
				continue;
			tokens_view_of(e, &v);
			fn(ctx, &v);
		}
	}
}
