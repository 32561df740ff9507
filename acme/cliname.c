/* cliname.c - see cliname.h. */
#include "acme/cliname.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/linefile.h"
#include "common/log.h"

#define CN_FILE "cli-names"

static int
cn_change(const char *state_dir, const char *name, bool add)
{
	char *f = NULL;
	int rc;

	if (asprintf(&f, "%s/" CN_FILE, state_dir) < 0) {
		errno = ENOMEM;
		return -1;
	}
	rc = linefile_change(f, name, add);
	free(f);
	return rc;
}

int
cliname_add(const char *state_dir, const char *name)
{
	return cn_change(state_dir, name, true);
}

int
cliname_remove(const char *state_dir, const char *name)
{
	return cn_change(state_dir, name, false);
}

bool
cliname_has(const char *state_dir, const char *name)
{
	char *f = NULL;
	bool r;

	if (asprintf(&f, "%s/" CN_FILE, state_dir) < 0)
		return false;
	r = linefile_has(f, name);
	free(f);
	return r;
}

void
cliname_adopt_all(struct config *cfg)
{
	char *f = NULL, **names, err[CONFIG_ERR_MAX];
	size_t n = 0;

	if (asprintf(&f, "%s/" CN_FILE, cfg->state_dir) < 0)
		return;
	if ((names = linefile_read(f, &n)) == NULL) {
		if (errno != ENOENT)
			log_warn("%s: %s", f, strerror(errno));
		free(f);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (config_adopt(cfg, names[i], err, sizeof(err)) < 0)
			log_warn("%s (from `hacme issue`, in %s): %s", names[i], f, err);
	linefile_free(names);
	free(f);
}
