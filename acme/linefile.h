/* linefile.h - small record files of one entry a line (paths, names),
 * changed under a flock of FILE.lock with write-temp + rename. */
#ifndef HACME_LINEFILE_H
#define HACME_LINEFILE_H

#include <stdbool.h>
#include <stddef.h>

/* Whether file holds the line (a missing file holds none). */
bool linefile_has(const char *file, const char *line);

/* Adds (add) or removes line; idempotent. 0, or -1 with errno (EINVAL: a
 * line with '\n'). */
int linefile_change(const char *file, const char *line, bool add);

/* Every line (heap array of heap strings, NULL-terminated; *n lines). NULL
 * with errno (ENOENT: no file). */
char **linefile_read(const char *file, size_t *n);
void linefile_free(char **lines);

#endif
