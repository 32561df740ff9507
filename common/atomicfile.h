/* atomicfile.h - files that are either the old or the new content, never half.
 * write-temp (same directory, O_EXCL) + fsync + rename + fsync(directory). */
#ifndef HACME_ATOMICFILE_H
#define HACME_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with len bytes of data, created with mode (not masked by
 * umask: a key file asked for 0600 is 0600). 0, or -1 with errno; on error
 * path is untouched and no temporary file is left behind. */
int atomic_write(const char *path, const void *data, size_t len, mode_t mode);

/* mkdir -p with mode for the directories it creates. 0 or -1 with errno. */
int mkdir_p(const char *path, mode_t mode);

/* Reads a whole regular file of at most max bytes into a NUL-terminated heap
 * buffer (*out, caller frees), *len without the NUL. 0, or -1 with errno
 * (EFBIG when larger than max). */
int file_read(const char *path, size_t max, char **out, size_t *len);

#endif
