/* storeurl.h - the `store` setting (DESIGN.md): where a cluster's shared
 * state lives. Pure: no I/O.
 *
 *   redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]     PORT 6379, DB 0..15 (0)
 *   sentinel://[USER[:PASSWORD]@]HOST[:PORT],HOST[:PORT].../MASTERNAME
 *                                                  PORT 26379, up to 8 sentinels
 * HOST is a name, an IPv4 address or [IPv6]. A password in the URL works,
 * but store-password-file keeps it out of the config (it wins over the
 * URL's). Errors never echo the password. */
#ifndef HACME_STOREURL_H
#define HACME_STOREURL_H

#include <stdbool.h>
#include <stddef.h>

#define STOREURL_HOSTS_MAX 8
#define STOREURL_HOST_MAX 255
#define STOREURL_NAME_MAX 128

struct storeurl_host {
	char host[STOREURL_HOST_MAX + 1];	/* without brackets */
	int port;
};

struct storeurl {
	bool sentinel;
	struct storeurl_host hosts[STOREURL_HOSTS_MAX];
	size_t nhosts;		/* 1 for redis:// */
	int db;			/* redis:// only */
	char master[STOREURL_NAME_MAX + 1];	/* sentinel:// only */
	char user[STOREURL_NAME_MAX + 1];	/* "" : none (the default user) */
	char password[STOREURL_NAME_MAX + 1];	/* "" : none; wipe after use */
};

/* 0, or -1 with why (one line naming the problem and the form). */
int storeurl_parse(const char *s, struct storeurl *u, char *why, size_t whylen);

#endif
