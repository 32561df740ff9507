/* notify.c - see notify.h. */
#include "acme/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acme/serialfmt.h"
#include "common/log.h"

extern char **environ;

#define NOTIFY_ARGS_MAX 64
#define NOTIFY_SEEN_MAX 4096

char **
notify_split(const char *cmd, const char **why)
{
	char **argv = calloc(NOTIFY_ARGS_MAX + 1, sizeof(*argv));
	char *word = malloc(strlen(cmd) + 1);
	size_t n = 0, o = 0;
	bool inword = false;
	const char *p = cmd;

	*why = "no memory";
	if (argv == NULL || word == NULL)
		goto fail;
	for (;; p++) {
		char c = *p;
		if (c == '\0' || c == ' ' || c == '\t') {
			if (inword) {
				if (n == NOTIFY_ARGS_MAX) {
					*why = "more than 64 words";
					goto fail;
				}
				if ((argv[n++] = strndup(word, o)) == NULL)
					goto fail;
				o = 0;
				inword = false;
			}
			if (c == '\0')
				break;
			continue;
		}
		inword = true;
		if (c == '\'') {
			while (*++p != '\'' && *p != '\0')
				word[o++] = *p;
			if (*p == '\0') {
				*why = "a single quote is not closed";
				goto fail;
			}
		} else if (c == '"') {
			while (*++p != '"' && *p != '\0') {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
					p++;
				word[o++] = *p;
			}
			if (*p == '\0') {
				*why = "a double quote is not closed";
				goto fail;
			}
		} else if (c == '\\' && p[1] != '\0') {
			word[o++] = *++p;
		} else {
			word[o++] = c;
		}
	}
	free(word);
	if (n == 0) {
		*why = "the command is empty";
		notify_argv_free(argv);
		return NULL;
	}
	return argv;
fail:
	free(word);
	notify_argv_free(argv);
	return NULL;
}

void
notify_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (size_t i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

/* environ + the event's variables (heap array of heap strings). */
static char **
event_env(const struct notify_event *ev)
{
	size_t n = 0, k = 0, dl = 1;
	char **env, *doms, na[32] = "";

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 7, sizeof(*env))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "HACME_", 6) != 0)
			env[k++] = strdup(environ[i]);
	for (size_t i = 0; i < ev->ndomains; i++)
		dl += strlen(ev->domains[i]) + 1;
	if ((doms = calloc(1, dl)) != NULL)
		for (size_t i = 0; i < ev->ndomains; i++) {
			if (i > 0)
				strcat(doms, " ");
			strcat(doms, ev->domains[i]);
		}
	if (ev->not_after > 0) {
		struct tm tm;
		gmtime_r(&ev->not_after, &tm);
		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (asprintf(&env[k++], "HACME_EVENT=%s", ev->event) < 0 ||
	    asprintf(&env[k++], "HACME_NAME=%s", ev->name ? ev->name : "") < 0 ||
	    asprintf(&env[k++], "HACME_DOMAINS=%s", doms ? doms : "") < 0 ||
	    asprintf(&env[k++], "HACME_SERIAL=%s", ev->serial ? serial_show(ev->serial) : "") < 0 ||
	    asprintf(&env[k++], "HACME_NOT_AFTER=%s", na) < 0 ||
	    asprintf(&env[k++], "HACME_ERROR=%s", ev->error ? ev->error : "") < 0)
		env[k - 1] = NULL;
	free(doms);
	return env;
}

/* In the supervisor: only async-signal-safe calls (the parent may have
 * threads: libcurl's resolver). */
static void
supervise(char **argv, char **envp, const char *label, int timeout)
{
	int status = 0, dn;
	pid_t pid, w = 0;
	char msg[512];

	(void)setsid();
	if ((pid = fork()) < 0)
		_exit(1);
	if (pid == 0) {
		if ((dn = open("/dev/null", O_RDONLY)) >= 0) {
			dup2(dn, 0);
			if (dn > 0)
				close(dn);
		}
		(void)setpgid(0, 0);	/* its own group: a timeout ends all of it */
		if (strchr(argv[0], '/') != NULL)
			execve(argv[0], argv, envp);
		else
			execvpe(argv[0], argv, envp);	/* on PATH */
		_exit(127);
	}
	for (int ticks = 0; ticks < timeout * 10 + 30; ticks++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		if ((w = waitpid(pid, &status, WNOHANG)) != 0)
			break;
		if (ticks == timeout * 10)
			(void)kill(-pid, SIGTERM);
		nanosleep(&ts, NULL);
	}
	if (w == 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
		snprintf(msg, sizeof(msg), "hacme: notify-command (%s) killed after %d s\n",
		    label, timeout);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		_exit(0);
	} else if (WIFEXITED(status)) {
		snprintf(msg, sizeof(msg), "hacme: notify-command (%s) exited %d%s\n", label,
		    WEXITSTATUS(status), WEXITSTATUS(status) == 127 ? " (not found?)" : "");
	} else {
		snprintf(msg, sizeof(msg), "hacme: notify-command (%s) killed by signal %d\n",
		    label, WTERMSIG(status));
	}
	(void)!write(2, msg, strlen(msg));
	_exit(1);
}

int
notify(const struct config *cfg, const struct notify_event *ev)
{
	const char *why = NULL;
	char **argv = NULL, **envp = NULL, label[300];
	const char *t = getenv("HACME_NOTIFY_TIMEOUT");
	int timeout = t != NULL && atoi(t) > 0 && atoi(t) <= 3600 ? atoi(t) : NOTIFY_TIMEOUT;
	pid_t pid;
	int rc = -1;

	if (cfg == NULL || cfg->notify_command == NULL)
		return 0;
	if ((argv = notify_split(cfg->notify_command, &why)) == NULL) {
		log_err("notify-command: %s", why);
		return -1;
	}
	if ((envp = event_env(ev)) == NULL) {
		log_err("notify-command: no memory");
		goto out;
	}
	snprintf(label, sizeof(label), "%s %s", ev->event, ev->name ? ev->name : "");
	log_flush();
	fflush(stdout);
	if ((pid = fork()) < 0) {
		log_err("notify-command (%s): fork: %s", label, strerror(errno));
		goto out;
	}
	if (pid == 0)
		supervise(argv, envp, label, timeout);
	log_info("notify-command: %s", label);
	rc = 0;
out:
	notify_argv_free(argv);
	notify_argv_free(envp);
	return rc;
}

bool
notify_expiring_first(const char *name, const char *serial)
{
	static char *seen[NOTIFY_SEEN_MAX];
	static size_t nseen;
	char *key;

	if (asprintf(&key, "%s %s", name, serial) < 0)
		return false;
	for (size_t i = 0; i < nseen; i++)
		if (strcmp(seen[i], key) == 0) {
			free(key);
			return false;
		}
	if (nseen < NOTIFY_SEEN_MAX)
		seen[nseen++] = key;
	else
		free(key);
	return true;
}
