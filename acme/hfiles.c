/* hfiles.c - see hfiles.h. */
#include "acme/hfiles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/atomicfile.h"

#define HF_NAME "haproxy-files"
#define HF_MAX (16 * 1024 * 1024)

char *
hfiles_list(const struct config *cfg, bool *is_dir)
{
	struct stat st;
	char *p;
	size_t n;

	*is_dir = false;
	if (cfg->crt_list == NULL)
		return NULL;
	if ((p = strdup(cfg->crt_list)) == NULL)
		return NULL;
	if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
		*is_dir = true;
		/* HAProxy keys a `crt DIR` list by the path without trailing '/' */
		for (n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
			p[n - 1] = '\0';
	}
	return p;
}

char *
hfiles_cert_dir(const struct config *cfg)
{
	char *dir = NULL;
	bool is_dir;

	if (cfg->cert_dir != NULL)
		return strdup(cfg->cert_dir);
	if ((dir = hfiles_list(cfg, &is_dir)) != NULL && is_dir)
		return dir;
	free(dir);
	if (asprintf(&dir, "%s/haproxy", cfg->state_dir) < 0)
		return NULL;
	return dir;
}

bool
hfiles_same_dir(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

/* The record, read (NULL with errno ENOENT when there is none). */
static char *
hf_read(const char *state_dir, char **file, size_t *len)
{
	char *text = NULL;

	*file = NULL;
	if (asprintf(file, "%s/" HF_NAME, state_dir) < 0) {
		*file = NULL;
		errno = ENOMEM;
		return NULL;
	}
	if (file_read(*file, HF_MAX, &text, len) < 0)
		return NULL;
	return text;
}

/* The line of path in text, or NULL. */
static char *
hf_find(char *text, const char *path)
{
	size_t pl = strlen(path);

	for (char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, path, pl) == 0 && (p[pl] == '\n' || p[pl] == '\0'))
			return p;
	return NULL;
}

bool
hfiles_owned(const char *state_dir, const char *path)
{
	char *file, *text;
	size_t len;
	bool r;

	text = hf_read(state_dir, &file, &len);
	r = text != NULL && hf_find(text, path) != NULL;
	free(text);
	free(file);
	return r;
}

/* Adds (add) or removes path, under a flock of the record's lock file. */
static int
hf_change(const char *state_dir, const char *path, bool add)
{
	char *file = NULL, *lock = NULL, *text = NULL, *out = NULL, *at;
	size_t len = 0, pl = strlen(path), ol;
	int fd = -1, rc = -1, e;

	if (strchr(path, '\n') != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (asprintf(&lock, "%s/" HF_NAME ".lock", state_dir) < 0) {
		lock = NULL;
		errno = ENOMEM;
		goto out;
	}
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(fd, LOCK_EX) < 0)
		goto out;
	if ((text = hf_read(state_dir, &file, &len)) == NULL) {
		if (errno != ENOENT || file == NULL)
			goto out;
		len = 0;
	}
	at = text != NULL ? hf_find(text, path) : NULL;
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
		memcpy(out + ol, path, pl);
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
	free(file);
	free(text);
	free(out);
	errno = e;
	return rc;
}

int
hfiles_own(const char *state_dir, const char *path)
{
	return hf_change(state_dir, path, true);
}

int
hfiles_disown(const char *state_dir, const char *path)
{
	return hf_change(state_dir, path, false);
}
