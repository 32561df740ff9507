/* fuzz_control.c - arbitrary bytes through the control protocol with a
 * small table (4 tokens), as a shell would deliver them: the first byte
 * picks the split point between two reads and the clock step between them.
 * Checks: never more consumed than given, every reply ends in LF, a close
 * only after "ERR line too long", and the table never exceeds its bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "spoa/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds in[0..n) as far as it goes; returns the bytes left unconsumed. */
static size_t
fuzz_feed(struct tokens *t, const struct control_stats *st, uint64_t now,
    const uint8_t *in, size_t n, struct buf *out, int *closed)
{
	size_t used;

	while (n > 0 && !*closed) {
		if (control_feed(t, st, now, in, n, out, 4096, &used) ==
		    CONTROL_CLOSE) {
			*closed = 1;
			if (out->len < 18 || memcmp(out->p + out->len - 18,
			    "ERR line too long\n", 18) != 0)
				__builtin_trap();
		}
		if (used > n)
			__builtin_trap();
		if (used == 0)
			break;
		in += used;
		n -= used;
		if (out->len > 0 && out->p[out->len - 1] != '\n')
			__builtin_trap();
		buf_consume(out, out->len);	/* "written" */
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_stats st;
	struct tokens *t;
	struct buf out, in;
	size_t split, left;
	uint64_t now = 1000;
	int closed = 0;

	if (size < 1)
		return 0;
	memset(&st, 0, sizeof(st));
	if ((t = tokens_new(4, 42)) == NULL)
		return 0;
	split = size > 1 ? data[0] % size : 0;
	buf_init(&out, 1 << 20);
	buf_init(&in, 1 << 20);
	data++;
	size--;
	if (split > size)
		split = size;
	/* Read one: the unconsumed tail is kept, as the shell keeps it. */
	left = fuzz_feed(t, &st, now, data, split, &out, &closed);
	if (buf_append(&in, data + split - left, left) < 0 ||
	    buf_append(&in, data + split, size - split) < 0)
		goto out;
	now += (uint64_t)data[-1] * 1000;
	(void)fuzz_feed(t, &st, now, in.p, in.len, &out, &closed);
	if (tokens_count(t) > 4)
		__builtin_trap();
	tokens_sweep(t, now + 86400 * 1000 + 1);
	if (tokens_count(t) != 0)
		__builtin_trap();
out:
	buf_fini(&in);
	buf_fini(&out);
	tokens_free(t);
	return 0;
}
