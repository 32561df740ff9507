/* buf.h - a growable byte buffer with a hard upper bound. */
#ifndef HACME_BUF_H
#define HACME_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t len;	/* bytes held */
	size_t cap;	/* bytes allocated */
	size_t max;	/* never grows past this */
};

void buf_init(struct buf *b, size_t max);
void buf_fini(struct buf *b);
/* Room for n more bytes: 0, or -1 (ENOBUFS past max, ENOMEM). */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);

#endif
