/* b64url.h - base64url without padding (RFC 4648 section 5), as ACME uses it. */
#ifndef HACME_B64URL_H
#define HACME_B64URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode n bytes, not counting the NUL. */
#define B64URL_ENCLEN(n) (((n) * 4 + 2) / 3)

/* Encodes n bytes into dst, which holds B64URL_ENCLEN(n) + 1 bytes;
 * NUL-terminates and returns the length. */
size_t b64url_encode(char *dst, const uint8_t *src, size_t n);

/* Decodes n characters (no padding, no white space). Returns the number of
 * bytes written, or -1 when a character is outside the alphabet, the length
 * is impossible (n % 4 == 1), unused trailing bits are set, or it does not
 * fit in dstcap. */
long b64url_decode(uint8_t *dst, size_t dstcap, const char *src, size_t n);

/* True when every one of the n bytes is in [A-Za-z0-9_-]. */
bool b64url_alphabet(const char *p, size_t n);

#endif
