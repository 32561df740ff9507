/* tap.h - a header-only TAP producer for the unit tests.
 *   ok(cond, "what");  is_int(a, b, "what");  is_mem(p, n, q, m, "what");
 *   tap_rmtree(tmpdir);  return tap_done();
 * Each check prints one "ok N - what" / "not ok N - what" line; meson reads
 * them (protocol: 'tap') and tests/summary.py counts them. */
#ifndef HACME_TAP_H
#define HACME_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int __attribute__((format(printf, 2, 3)))
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

#define is_int(a, b, ...) do { \
	long long tap_a_ = (long long)(a), tap_b_ = (long long)(b); \
	if (!ok(tap_a_ == tap_b_, __VA_ARGS__)) \
		printf("#   got %lld, expected %lld (%s:%d)\n", tap_a_, tap_b_, __FILE__, __LINE__); \
} while (0)

#define is_str(a, b, ...) do { \
	const char *tap_a_ = (a), *tap_b_ = (b); \
	if (!ok(tap_a_ && tap_b_ && strcmp(tap_a_, tap_b_) == 0, __VA_ARGS__)) \
		printf("#   got '%s', expected '%s' (%s:%d)\n", tap_a_ ? tap_a_ : "(null)", \
		    tap_b_ ? tap_b_ : "(null)", __FILE__, __LINE__); \
} while (0)

#define is_mem(p, n, q, m, ...) do { \
	size_t tap_n_ = (size_t)(n), tap_m_ = (size_t)(m); \
	if (!ok(tap_n_ == tap_m_ && memcmp((p), (q), tap_n_) == 0, __VA_ARGS__)) \
		printf("#   got %zu bytes, expected %zu (%s:%d)\n", tap_n_, tap_m_, __FILE__, __LINE__); \
} while (0)

/* rm -rf dir (the test's mkdtemp directory); false, after a "#" line, when
 * that failed. */
static inline int
tap_rmtree(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		printf("# could not remove %s\n", dir);
		return 0;
	}
	return 1;
}

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
