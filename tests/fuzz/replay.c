/* replay.c - main() for the fuzz harnesses in a normal build: runs every file
 * of the corpus directories given on the command line through
 * LLVMFuzzerTestOneInput, one TAP line per file. A crash or a sanitizer report
 * fails the test; with -Dfuzzing=true the harnesses link libFuzzer instead. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		char **names = NULL;
		size_t count = 0;

		if (d == NULL) {
			printf("not ok %d - cannot open corpus %s\n", ++n, argv[i]);
			continue;
		}
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			names = realloc(names, (count + 1) * sizeof(*names));
			names[count++] = strdup(e->d_name);
		}
		closedir(d);
		qsort(names, count, sizeof(*names), replay_cmp);
		for (size_t k = 0; k < count; k++) {
			char path[4096];
			char *data;
			size_t len;

			snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]);
			if (file_read(path, 1 << 20, &data, &len) < 0) {
				printf("not ok %d - cannot read %s\n", ++n, path);
				free(names[k]);
				continue;
			}
			/* An exact-size copy, so ASan sees a read past the end. */
			uint8_t *exact = malloc(len ? len : 1);
			memcpy(exact, data, len);
			LLVMFuzzerTestOneInput(exact, len);
			free(exact);
			free(data);
			printf("ok %d - %s\n", ++n, path);
			free(names[k]);
		}
		free(names);
	}
	printf("1..%d\n", n);
	return 0;
}
