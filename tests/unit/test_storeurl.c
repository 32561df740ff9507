/* test_storeurl.c - the `store` setting: redis:// and sentinel:// URLs,
 * defaults, limits, and errors that never echo the password. */
#include "acme/storeurl.h"
#include "tap.h"

static void
good(void)
{
	struct storeurl u;
	char why[256];

	ok(storeurl_parse("redis://127.0.0.1", &u, why, sizeof why) == 0, "redis://HOST");
	is_str(u.hosts[0].host, "127.0.0.1", "host");
	is_int(u.hosts[0].port, 6379, "default port 6379");
	is_int(u.db, 0, "default db 0");
	ok(!u.sentinel && u.nhosts == 1 && u.user[0] == '\0' && u.password[0] == '\0',
	    "no sentinel, no user, no password");
	ok(storeurl_parse("redis://hacme:s3cr@t@10.0.0.1:6380/3", &u, why, sizeof why) == 0,
	    "user:password@ with '@' in the password");
	is_str(u.user, "hacme", "user");
	is_str(u.password, "s3cr@t", "password up to the last '@'");
	is_int(u.hosts[0].port, 6380, "port");
	is_int(u.db, 3, "db");
	ok(storeurl_parse("redis://[::1]:7000/0", &u, why, sizeof why) == 0, "[IPv6]:PORT");
	is_str(u.hosts[0].host, "::1", "IPv6 host without brackets");
	ok(storeurl_parse("sentinel://127.0.0.2:26379,127.0.0.3,s3.example:26380/mymaster",
	    &u, why, sizeof why) == 0, "sentinel:// with three sentinels");
	ok(u.sentinel && u.nhosts == 3, "three hosts");
	is_int(u.hosts[1].port, 26379, "sentinel default port 26379");
	is_int(u.hosts[2].port, 26380, "third port");
	is_str(u.master, "mymaster", "master name");
}

static void
bad(const char *url, const char *want, const char *what)
{
	struct storeurl u;
	char why[256] = "";

	ok(storeurl_parse(url, &u, why, sizeof why) < 0 && strstr(why, want) != NULL &&
	    strstr(why, "hunter2") == NULL, "%s: %s", what, why);
}

int
main(void)
{
	good();
	bad("rediss://h:1", "unknown scheme", "TLS scheme refused");
	bad("http://x", "unknown scheme", "other scheme");
	bad("redis://", "no host", "no host");
	bad("redis://u:hunter2@", "no host", "no host, password not echoed");
	bad("redis://u:hunter2@h:0/1", "HOST:PORT", "port 0, password not echoed");
	bad("redis://h:65536", "HOST:PORT", "port too big");
	bad("redis://h:12x", "HOST:PORT", "port not a number");
	bad("redis://h/16", "0..15", "db 16");
	bad("redis://h/-1", "0..15", "db -1");
	bad("redis://a:1,b:2/0", "one host", "redis:// with two hosts");
	bad("sentinel://a:1,b:2", "master", "sentinel without master");
	bad("sentinel://a:1/", "master", "sentinel with empty master");
	bad("sentinel://a:1/m m", "master name", "master name with a space");
	bad("sentinel://a,b,c,d,e,f,g,h,i/m", "more than 8", "nine sentinels");
	bad("redis://h o:1", "HOST:PORT", "space in host");
	return tap_done();
}
