/* linefile.c - see linefile.h. */
#include "acme/linefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/atomicfile.h"

#define LF_MAX (16 * 1024 * 1024)

/* The line in text, or NULL. */
static char *
lf_find(char *text, const char *line)
{
	size_t pl = strlen(line);

	for (char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, pl) == 0 && (p[pl] == '\n' || p[pl] == '\0'))
			return p;
	return NULL;
}

bool
linefile_has(const char *file, const char *line)
{
	char *text = NULL;
	size_t len;
	bool r;

	r = file_read(file, LF_MAX, &text, &len) == 0 && lf_find(text, line) != NULL;
	free(text);
	return r;
}

int
linefile_change(const char *file, const char *line, bool add)
{
	char *lock = NULL, *text = NULL, *out = NULL, *at;
	size_t len = 0, pl = strlen(line), ol;
	int fd = -1, rc = -1, e;

	if (strchr(line, '\n') != NULL || pl == 0) {
		errno = EINVAL;
		return -1;
	}
	if (asprintf(&lock, "%s.lock", file) < 0) {
		lock = NULL;
		errno = ENOMEM;
		goto out;
	}
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(fd, LOCK_EX) < 0)
		goto out;
	if (file_read(file, LF_MAX, &text, &len) < 0) {
		if (errno != ENOENT)
			goto out;
		text = NULL;
		len = 0;
	}
	at = text != NULL ? lf_find(text, line) : NULL;
	if ((at != NULL) == add) {
		rc = 0;		/* already as wanted */
		goto out;
	}
	if ((out = malloc(len + pl + 2)) == NULL)
		goto out;
	if (add) {
		memcpy(out, text != NULL ? text : "", len);
		ol = len;
		if (ol > 0 && out[ol - 1] != '\n')
			out[ol++] = '\n';
		memcpy(out + ol, line, pl);
		ol += pl;
		out[ol++] = '\n';
	} else {
		size_t before = (size_t)(at - text), skip = pl + (at[pl] == '\n');
		memcpy(out, text, before);
		memcpy(out + before, at + skip, len - before - skip);
		ol = len - skip;
	}
	rc = atomic_write(file, out, ol, 0600);
out:
	e = errno;
	if (fd >= 0)
		close(fd);
	free(lock);
	free(text);
	free(out);
	errno = e;
	return rc;
}

char **
linefile_read(const char *file, size_t *n)
{
	char *text = NULL, **lines = NULL, *line, *save = NULL;
	size_t len = 0, cap = 1;

	*n = 0;
	if (file_read(file, LF_MAX, &text, &len) < 0)
		return NULL;
	for (size_t i = 0; i < len; i++)
		cap += text[i] == '\n';
	if ((lines = calloc(cap + 1, sizeof(*lines))) == NULL)
		goto fail;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		if ((lines[(*n)++] = strdup(line)) == NULL)
			goto fail;
	free(text);
	return lines;
fail:
	free(text);
	linefile_free(lines);
	errno = ENOMEM;
	return NULL;
}

void
linefile_free(char **lines)
{
	if (lines == NULL)
		return;
	for (size_t i = 0; lines[i] != NULL; i++)
		free(lines[i]);
	free(lines);
}
