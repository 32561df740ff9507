/* tokjournal.c - the published-token journal; see tokjournal.h. */
#include "acme/tokjournal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/token.h"

#define JOURNAL_MAX (64 * 1024 * 1024)	/* bytes of a stale journal read */

struct tokjournal {
	int fd;
	char *path;
	size_t lines;
};

static char *
dir_path(const char *state_dir)
{
	size_t n = strlen(state_dir) + sizeof "/tokens";
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/tokens", state_dir);
	return p;
}

/* One stale journal: the tokens added and not removed. */
static int
replay(int fd, void (*fn)(void *, const char *), void *arg)
{
	struct stat sb;
	char *text = NULL, *line, *save = NULL;
	char **live = NULL;
	size_t nlive = 0, cap = 0, got = 0;
	int n = -1;

	if (fstat(fd, &sb) < 0 || sb.st_size > JOURNAL_MAX ||
	    (text = malloc((size_t)sb.st_size + 1)) == NULL)
		goto out;
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, text + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	text[got] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		const char *tok = line + 2;
		if ((line[0] != '+' && line[0] != '-') || line[1] != ' ' ||
		    !token_valid(tok, strlen(tok)))
			continue;	/* a line cut by the crash */
		size_t i;
		for (i = 0; i < nlive && strcmp(live[i], tok) != 0; i++)
			;
		if (line[0] == '-') {
			if (i < nlive)
				live[i] = live[--nlive];
			continue;
		}
		if (i < nlive)
			continue;
		if (nlive == cap) {
			char **nl = realloc(live, (cap = cap ? cap * 2 : 16) * sizeof *nl);
			if (nl == NULL)
				goto out;
			live = nl;
		}
		live[nlive++] = line + 2;
	}
	for (size_t i = 0; i < nlive; i++)
		fn(arg, live[i]);
	n = (int)nlive;
out:
	free(live);
	free(text);
	return n;
}

int
tokjournal_orphans(const char *state_dir, void (*fn)(void *, const char *), void *arg,
    char *err, size_t errlen)
{
	char *dir = dir_path(state_dir), path[4200];
	struct dirent *de;
	DIR *d = NULL;
	int total = 0;

	if (dir == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((d = opendir(dir)) == NULL) {
		free(dir);
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s/tokens: %s", state_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		int fd, k;
		if (n < 9 || strcmp(de->d_name + n - 8, ".journal") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			continue;
		/* held: its process lives; else it is gone and so is the lock */
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			continue;
		}
		if ((k = replay(fd, fn, arg)) >= 0) {
			total += k;
			unlink(path);
		}
		close(fd);
	}
	closedir(d);
	free(dir);
	return total;
}

struct tokjournal *
tokjournal_open(const char *state_dir, char *err, size_t errlen)
{
	struct tokjournal *j = calloc(1, sizeof *j);
	char *dir = dir_path(state_dir), tmp[4200];
	size_t n;

	if (j == NULL || dir == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	j->fd = -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	n = strlen(dir) + 32;
	if ((j->path = malloc(n)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	snprintf(j->path, n, "%s/%ld.journal", dir, (long)getpid());
	/* locked before it has its name: a scan never sees it unlocked */
	snprintf(tmp, sizeof tmp, "%s/%ld.new", dir, (long)getpid());
	if ((j->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
	    0600)) < 0 || flock(j->fd, LOCK_EX | LOCK_NB) < 0 || rename(tmp, j->path) < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto fail;
	}
	free(dir);
	return j;
fail:
	free(dir);
	tokjournal_close(j);
	return NULL;
}

void
tokjournal_close(struct tokjournal *j)
{
	if (j == NULL)
		return;
	if (j->fd >= 0) {
		unlink(j->path);
		close(j->fd);
	}
	free(j->path);
	free(j);
}

static void
put(struct tokjournal *j, char op, const char *token)
{
	char line[256];
	int n;

	if (j == NULL || j->fd < 0)
		return;
	n = snprintf(line, sizeof line, "%c %s\n", op, token);
	if (n <= 0 || (size_t)n >= sizeof line)
		return;
	/* one write: a crash leaves whole lines, or a cut last one (ignored) */
	if (write(j->fd, line, (size_t)n) == n)
		j->lines++;
}

void
tokjournal_add(struct tokjournal *j, const char *token)
{
	put(j, '+', token);
}

void
tokjournal_del(struct tokjournal *j, const char *token)
{
	put(j, '-', token);
}

size_t
tokjournal_lines(const struct tokjournal *j)
{
	return j != NULL ? j->lines : 0;
}

void
tokjournal_reset(struct tokjournal *j)
{
	if (j == NULL || j->fd < 0)
		return;
	if (ftruncate(j->fd, 0) == 0)
		j->lines = 0;
}
