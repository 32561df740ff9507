/* test_hapconf.c - reading a HAProxy configuration as the running process
 * sees it: environment (process env, presetenv, setenv, unsetenv), quoting,
 * SPOE engines and scopes, groups, -f directories, relative paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme/hapconf.h"
#include "tap.h"

static char dir[] = "/tmp/hacme-test-hapconf-XXXXXX";

static void
put(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "w")) != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

static const struct hapconf_agent *
agent(const struct hapconf *h, const char *name)
{
	for (size_t i = 0; i < h->nagents; i++)
		if (strcmp(h->agents[i].name, name) == 0)
			return &h->agents[i];
	return NULL;
}

static void
test_shipped_shape(void)
{
	struct hapconf h;
	const struct hapconf_agent *a;
	char err[HAPCONF_ERR_MAX], sock[600];
	const char *files[] = { "haproxy.cfg" };
	const char *env[] = { "SOCK_FROM_ENV=/run/from-env.sock", "HACME_SPOE_CONF=spoe.conf" };

	put("haproxy.cfg",
	    "global\n"
	    "    presetenv HACME_STATS_SOCKET \"/run/haproxy/admin.sock\"\n"
	    "    presetenv HACME_SPOE_CONF \"/etc/haproxy/spoe-acme.conf\"   # env wins\n"
	    "    setenv    OTHER \"/run/other.sock\"\n"
	    "    stats socket \"${HACME_STATS_SOCKET}\" mode 600 level admin\n"
	    "    stats socket ${SOCK_FROM_ENV} level admin\n"
	    "    stats socket '${OTHER}' level operator\n"
	    "    unsetenv OTHER\n"
	    "defaults\n"
	    "    mode http\n"
	    "frontend fe_http\n"
	    "    bind :80\n"
	    "    filter spoe engine acme config \"${HACME_SPOE_CONF}\"\n"
	    "    filter spoe engine other config spoe.conf\n"
	    "backend b\n"
	    "    stats socket /not/global.sock   # not in global: ignored\n");
	put("spoe.conf",
	    "[acme]\n"
	    "spoe-agent acme-agent\n"
	    "    messages acme-challenge\n"
	    "    option var-prefix acme\n"
	    "    option set-on-error err\n"
	    "    timeout processing 500ms\n"
	    "    use-backend be_acme_agent\n"
	    "spoe-message acme-challenge\n"
	    "    args path=path\n"
	    "[other]\n"
	    "spoe-agent grouped\n"
	    "    groups g1\n"
	    "    use-backend be_other\n"
	    "spoe-group g1\n"
	    "    messages acme-challenge\n"
	    "spoe-agent unrelated\n"
	    "    messages something-else\n"
	    "    option set-on-error e\n");
	ok(hapconf_read(&h, files, 1, env, 2, dir, err, sizeof err) == 0, "read: %s", err);
	is_int(h.nsockets, 3, "three global stats sockets");
	if (h.nsockets == 3) {
		is_str(h.sockets[0], "/run/haproxy/admin.sock", "presetenv used when the env lacks it");
		is_str(h.sockets[1], "/run/from-env.sock", "unquoted ${VAR} from the process env");
		is_str(h.sockets[2], "${OTHER}", "single quotes: no expansion");
	}
	is_int(h.nfilters, 2, "two `filter spoe` lines");
	is_str(h.warn, "", "nothing left unread");
	a = agent(&h, "acme-agent");
	ok(a != NULL && a->acme && a->set_on_error && a->timeout_processing &&
	    a->backend != NULL && strcmp(a->backend, "be_acme_agent") == 0,
	    "engine acme: acme-agent sends acme-challenge, set-on-error, timeout, backend");
	snprintf(sock, sizeof sock, "%s/spoe.conf", dir);
	ok(a != NULL && strcmp(a->file, sock) == 0 && a->line == 2,
	    "the env's relative SPOE path (presetenv did not override) at cwd, line 2");
	a = agent(&h, "grouped");
	ok(a != NULL && a->acme && !a->set_on_error, "engine other: acme-challenge through a group, "
	    "no set-on-error");
	a = agent(&h, "unrelated");
	ok(a != NULL && !a->acme, "an agent of other messages is no hacme agent");
	is_int(h.nagents, 3, "agents of their own engine's scope only");
	ok(hapconf_has_socket(&h, "/run/from-env.sock"), "has_socket: by path");
	ok(hapconf_has_socket(&h, "/run/haproxy/admin.sock"), "has_socket: presetenv one");
	ok(!hapconf_has_socket(&h, "/not/global.sock"), "has_socket: not from a backend");
	hapconf_free(&h);
}

static void
test_dirs_and_vars(void)
{
	struct hapconf h;
	char err[HAPCONF_ERR_MAX], sub[512];
	const char *files[] = { "conf.d" };

	snprintf(sub, sizeof sub, "%s/conf.d", dir);
	ok(mkdir(sub, 0700) == 0, "conf.d");
	put("conf.d/20-b.cfg", "global\n    stats socket /run/b.sock\n");
	put("conf.d/10-a.cfg", "global\n    stats socket /run/a.sock\n"
	    "    stats socket \"${NOT_SET}\"\n");
	put("conf.d/30-c.txt", "global\n    stats socket /run/c.sock\n");
	ok(hapconf_read(&h, files, 1, NULL, 0, dir, err, sizeof err) == 0, "read a -f directory");
	is_int(h.nsockets, 2, "*.cfg only, an unknown variable's line skipped");
	if (h.nsockets == 2) {
		is_str(h.sockets[0], "/run/a.sock", "in name order: 10-a first");
		is_str(h.sockets[1], "/run/b.sock", "then 20-b");
	}
	ok(strstr(h.warn, "NOT_SET") != NULL && strstr(h.warn, "10-a.cfg:3") != NULL,
	    "the unknown variable is noted with file:line: '%s'", h.warn);
	hapconf_free(&h);

	files[0] = "/nonexistent/haproxy.cfg";
	ok(hapconf_read(&h, files, 1, NULL, 0, NULL, err, sizeof err) == 0 &&
	    strstr(h.warn, "No such file") != NULL && h.nsockets == 0,
	    "a missing file: noted, nothing read");
	hapconf_free(&h);
	ok(hapconf_read_pid(&h, (long)getpid(), err, sizeof err) == -1 &&
	    strstr(err, "no -f") != NULL, "a process without -f: '%s'", err);
	hapconf_free(&h);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_shipped_shape();
	test_dirs_and_vars();
	tap_rmtree(dir);
	return tap_done();
}
