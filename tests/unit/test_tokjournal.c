/* test_tokjournal.c - the published-token journal: what a process that is
 * gone left published is found (added, not removed), a journal whose
 * process lives (its lock held) is left alone, a cut last line and junk
 * are ignored, a clean close leaves nothing. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme/tokjournal.h"
#include "tap.h"

static char seen[16][160];
static int nseen;

static void
collect(void *arg, const char *token)
{
	(void)arg;
	if (nseen < 16)
		snprintf(seen[nseen++], sizeof seen[0], "%s", token);
}

static int
has(const char *token)
{
	for (int i = 0; i < nseen; i++)
		if (strcmp(seen[i], token) == 0)
			return 1;
	return 0;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

int
main(void)
{
	char dir[] = "/tmp/hacme-test-tokjournal-XXXXXX", path[512], err[TOKJOURNAL_ERR_MAX];
	char buf[128] = "";
	struct tokjournal *j;
	struct stat sb;
	ssize_t r;
	int n, fd;

	if (mkdtemp(dir) == NULL)
		return 1;
	nseen = 0;
	is_int(tokjournal_orphans(dir, collect, NULL, err, sizeof err), 0,
	    "no tokens/ directory: nothing to withdraw");

	/* a dead process's journal: A and C live, B withdrawn, junk, a cut line */
	snprintf(path, sizeof path, "%s/tokens", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/tokens/4242.journal", dir);
	write_file(path, "+ tokA\n+ tokB\n+ tokC\n- tokB\n+ tokA\n+ bad token!\n* tokD\n+ to");
	nseen = 0;
	n = tokjournal_orphans(dir, collect, NULL, err, sizeof err);
	is_int(n, 3, "a dead process's journal: 3 tokens left published (A, C, the cut 'to')");
	ok(has("tokA") && has("tokC") && !has("tokB"), "A and C, not the withdrawn B");
	ok(!has("bad token!") && !has("tokD"), "junk lines ignored");
	ok(access(path, F_OK) != 0, "the dead process's journal is removed");

	/* a live process's journal (its lock held) is left alone */
	j = tokjournal_open(dir, err, sizeof err);
	ok(j != NULL, "open this process's journal (%s)", j == NULL ? err : "ok");
	tokjournal_add(j, "live1");
	tokjournal_add(j, "live2");
	tokjournal_del(j, "live1");
	is_int(tokjournal_lines(j), 3, "3 lines written");
	nseen = 0;
	is_int(tokjournal_orphans(dir, collect, NULL, err, sizeof err), 0,
	    "a journal whose process lives is not touched");
	snprintf(path, sizeof path, "%s/tokens/%ld.journal", dir, (long)getpid());
	ok(access(path, F_OK) == 0, "and stays");
	fd = open(path, O_RDONLY);
	r = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (r > 0)
		buf[r] = '\0';
	if (fd >= 0)
		close(fd);
	is_str(buf, "+ live1\n+ live2\n- live1\n", "the journal's lines");
	tokjournal_reset(j);
	is_int(tokjournal_lines(j), 0, "reset: empty");
	tokjournal_add(j, "again");
	ok(stat(path, &sb) == 0 && sb.st_size == 8, "after reset, one line from offset 0");
	tokjournal_close(j);
	ok(access(path, F_OK) != 0, "a clean close removes the journal");
	snprintf(path, sizeof path, "%s/tokens", dir);
	rmdir(path);
	rmdir(dir);
	return tap_done();
}
