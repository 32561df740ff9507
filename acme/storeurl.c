/* storeurl.c - see storeurl.h. */
#include "acme/storeurl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMS "redis://[USER:PASSWORD@]HOST:PORT/DB or " \
	"sentinel://HOST:PORT,HOST:PORT/MASTERNAME"

static bool
host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
}

/* One HOST[:PORT] of len bytes. */
static int
host_parse(const char *p, size_t len, int defport, struct storeurl_host *h, char *why,
    size_t whylen)
{
	const char *end = p + len, *colon = NULL, *hs = p, *he;

	if (len > 0 && *p == '[') {
		const char *rb = memchr(p, ']', len);
		if (rb == NULL)
			goto bad;
		hs = p + 1;
		he = rb;
		for (const char *q = hs; q < he; q++)
			if (!host_char_ok(*q) && *q != ':')
				goto bad;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				goto bad;
			colon = rb + 1;
		}
	} else {
		colon = memchr(p, ':', len);
		he = colon != NULL ? colon : end;
		for (const char *q = hs; q < he; q++)
			if (!host_char_ok(*q))
				goto bad;
	}
	if (he == hs || (size_t)(he - hs) > STOREURL_HOST_MAX)
		goto bad;
	memcpy(h->host, hs, (size_t)(he - hs));
	h->host[he - hs] = '\0';
	h->port = defport;
	if (colon != NULL) {
		long v = 0;
		const char *q = colon + 1;
		if (q == end)
			goto bad;
		for (; q < end; q++) {
			if (*q < '0' || *q > '9' || v > 65535)
				goto bad;
			v = v * 10 + (*q - '0');
		}
		if (v < 1 || v > 65535)
			goto bad;
		h->port = (int)v;
	}
	return 0;
bad:
	snprintf(why, whylen, "store: '%.*s' is not HOST:PORT (use %s)", (int)(len > 80 ? 80 : len),
	    p, FORMS);
	return -1;
}

int
storeurl_parse(const char *s, struct storeurl *u, char *why, size_t whylen)
{
	const char *p, *at, *slash, *end;
	int defport;

	memset(u, 0, sizeof *u);
	if (strncmp(s, "redis://", 8) == 0) {
		p = s + 8;
		defport = 6379;
	} else if (strncmp(s, "sentinel://", 11) == 0) {
		p = s + 11;
		u->sentinel = true;
		defport = 26379;
	} else {
		snprintf(why, whylen, "store: unknown scheme (use %s; rediss:// and TLS "
		    "need hiredis 1.0)", FORMS);
		return -1;
	}
	end = p + strlen(p);
	slash = memchr(p, '/', (size_t)(end - p));
	at = memchr(p, '@', (size_t)((slash != NULL ? slash : end) - p));
	if (at != NULL) {
		/* the last '@' before the path: a password may hold '@' */
		for (const char *q = at; q < (slash != NULL ? slash : end); q++)
			if (*q == '@')
				at = q;
		const char *colon = memchr(p, ':', (size_t)(at - p));
		size_t ul = (size_t)((colon != NULL ? colon : at) - p);
		size_t pl = colon != NULL ? (size_t)(at - colon - 1) : 0;
		if (ul > STOREURL_NAME_MAX || pl > STOREURL_NAME_MAX) {
			snprintf(why, whylen, "store: user or password longer than %d bytes",
			    STOREURL_NAME_MAX);
			return -1;
		}
		memcpy(u->user, p, ul);
		if (colon != NULL)
			memcpy(u->password, colon + 1, pl);
		p = at + 1;
	}
	const char *hend = slash != NULL ? slash : end;
	if (hend == p) {
		snprintf(why, whylen, "store: no host (use %s)", FORMS);
		return -1;
	}
	while (p < hend) {
		const char *comma = memchr(p, ',', (size_t)(hend - p));
		const char *e = comma != NULL ? comma : hend;
		if (u->nhosts == (u->sentinel ? STOREURL_HOSTS_MAX : 1)) {
			snprintf(why, whylen, u->sentinel ? "store: more than %d sentinels" :
			    "store: redis:// takes one host (%d); list sentinels with sentinel://",
			    u->sentinel ? STOREURL_HOSTS_MAX : 1);
			return -1;
		}
		if (host_parse(p, (size_t)(e - p), defport, &u->hosts[u->nhosts++], why,
		    whylen) < 0)
			return -1;
		p = comma != NULL ? comma + 1 : hend;
	}
	if (!u->sentinel) {
		if (slash != NULL && slash[1] != '\0') {
			char *e2;
			long db = strtol(slash + 1, &e2, 10);
			if (*e2 != '\0' || db < 0 || db > 15 || slash[1] < '0' || slash[1] > '9') {
				snprintf(why, whylen, "store: database '%.16s' is not 0..15", slash + 1);
				return -1;
			}
			u->db = (int)db;
		}
		return 0;
	}
	if (slash == NULL || slash[1] == '\0') {
		snprintf(why, whylen, "store: sentinel:// needs the master's name: "
		    "sentinel://HOST:PORT,HOST:PORT/MASTERNAME");
		return -1;
	}
	if (strlen(slash + 1) > STOREURL_NAME_MAX) {
		snprintf(why, whylen, "store: master name longer than %d bytes", STOREURL_NAME_MAX);
		return -1;
	}
	for (const char *q = slash + 1; *q; q++)
		if (!host_char_ok(*q)) {
			snprintf(why, whylen, "store: master name: use [A-Za-z0-9._-]");
			return -1;
		}
	snprintf(u->master, sizeof u->master, "%s", slash + 1);
	return 0;
}
