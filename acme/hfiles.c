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

#include "acme/linefile.h"
#include "common/atomicfile.h"

#define HF_NAME "haproxy-files"

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

/* <state-dir>/haproxy-files, heap. */
static char *
hf_file(const char *state_dir)
{
	char *f = NULL;

	if (asprintf(&f, "%s/" HF_NAME, state_dir) < 0)
		return NULL;
	return f;
}

bool
hfiles_owned(const char *state_dir, const char *path)
{
	char *f = hf_file(state_dir);
	bool r = f != NULL && linefile_has(f, path);

	free(f);
	return r;
}

static int
hf_change(const char *state_dir, const char *path, bool add)
{
	char *f = hf_file(state_dir);
	int rc = f != NULL ? linefile_change(f, path, add) : (errno = ENOMEM, -1);

	free(f);
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

bool
hfiles_foreign(const struct config *cfg, const char *name, const char *variant,
    char *err, size_t errlen)
{
	char *dir = hfiles_cert_dir(cfg), *path = NULL, *stored = NULL, *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;
	bool foreign = false;

	if (dir == NULL || asprintf(&path, "%s/%s%s%s.pem", dir, name, variant ? "." : "",
	    variant ? variant : "") < 0 || asprintf(&stored, "%s/certs/%s%s%s/haproxy.pem",
	    cfg->state_dir, name, variant ? "/" : "", variant ? variant : "") < 0)
		goto out;
	if (access(path, F_OK) < 0 || hfiles_owned(cfg->state_dir, path))
		goto out;
	if (file_read(path, 1 << 20, &a, &al) == 0 && file_read(stored, 1 << 20, &b, &bl) == 0 &&
	    al == bl && memcmp(a, b, al) == 0)
		goto out;
	foreign = true;
	snprintf(err, errlen, "%s exists and hacme did not write it: not ordering %s%s%s for "
	    "it (move the file away, or take it over with `hacme import certbot`)", path, name,
	    variant ? "/" : "", variant ? variant : "");
out:
	free(dir);
	free(path);
	free(stored);
	free(a);
	free(b);
	return foreign;
}
