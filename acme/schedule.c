/* schedule.c - renewal, ARI poll and retry times. Pure; see schedule.h.
 *
 * Spans between two times are computed as uint64_t: b - a of any two
 * time_t values with a <= b fits, and modular arithmetic gives it exactly.
 * Sums saturate at the ends of time_t. */
#include "acme/schedule.h"

#include <limits.h>
#include <string.h>

#define T_MAX ((time_t)(((uint64_t)1 << (sizeof(time_t) * CHAR_BIT - 1)) - 1))
#define T_MIN (-T_MAX - 1)

#define CLASSIC_64D_FROM 1802217600	/* 2027-02-10T00:00:00Z */
#define CLASSIC_45D_FROM 1834272000	/* 2028-02-16T00:00:00Z */

/* b - a for a <= b. */
static uint64_t
span(time_t a, time_t b)
{
	return (uint64_t)b - (uint64_t)a;
}

static time_t
t_add(time_t t, uint64_t d)
{
	if (d > span(t, T_MAX))
		return T_MAX;
	return (time_t)((uint64_t)t + d);
}

static time_t
t_sub(time_t t, uint64_t d)
{
	if (d > span(T_MIN, t))
		return T_MIN;
	return (time_t)((uint64_t)t - d);
}

/* A moment in [lo, hi), lo < hi. The modulo bias is at most
 * (hi - lo) / 2^64: nothing next to a lifetime in seconds. */
static time_t
pick(time_t lo, time_t hi, uint64_t rnd)
{
	return t_add(lo, rnd % span(lo, hi));
}

static time_t
later(time_t a, time_t b)
{
	return a > b ? a : b;
}

const char *
schedule_reason_name(enum schedule_reason r)
{
	switch (r) {
	case SCHEDULE_ARI:
		return "ari window";
	case SCHEDULE_ARI_OPEN:
		return "ari window (open)";
	case SCHEDULE_ARI_PASSED:
		return "ari window passed";
	case SCHEDULE_THIRD:
		return "1/3 of lifetime left";
	case SCHEDULE_HALF:
		return "1/2 of lifetime left";
	case SCHEDULE_EXPIRED:
		return "expired";
	case SCHEDULE_BAD_DATES:
		return "no valid lifetime";
	case SCHEDULE_BACKOFF:
		return "backoff after failure";
	case SCHEDULE_RETRY_AFTER:
		return "CA Retry-After";
	case SCHEDULE_FAIL_LIMIT_HIT:
		return "failed-validation limit";
	case SCHEDULE_MARGIN:
		return "safety margin before expiry";
	}
	return "?";
}

/* The lifetime rule: 1/3 (1/2 when short) left, minus 0..jitter. */
static time_t
lifetime_moment(const struct schedule_cert *c, uint64_t rnd,
    enum schedule_reason *why)
{
	uint64_t life, left, jitter;

	life = span(c->not_before, c->not_after);
	if (life <= SCHEDULE_SHORT_LIFETIME) {
		left = life / 2;
		*why = SCHEDULE_HALF;
	} else {
		left = life / 3;
		*why = SCHEDULE_THIRD;
	}
	jitter = life / 100;
	if (jitter > SCHEDULE_JITTER_MAX)
		jitter = SCHEDULE_JITTER_MAX;
	/* left + jitter < life: the result stays after notBefore. */
	return t_sub(c->not_after, left + rnd % (jitter + 1));
}

uint64_t
schedule_margin(time_t not_before, time_t not_after)
{
	uint64_t m;

	if (not_after <= not_before)
		return 0;
	m = span(not_before, not_after) / 4;
	return m < SCHEDULE_MARGIN_MAX ? m : SCHEDULE_MARGIN_MAX;
}

long
schedule_retry_after_cap(long retry_after, time_t now, time_t not_after)
{
	long cap = SCHEDULE_RETRY_AFTER_MAX;

	if (retry_after < 0)
		return retry_after;
	if (not_after > now) {
		uint64_t q = span(now, not_after) / 4;
		if (q < (uint64_t)cap)
			cap = (long)q;
		if (cap < SCHEDULE_BACKOFF_BASE)
			cap = SCHEDULE_BACKOFF_BASE;
	}
	return retry_after < cap ? retry_after : cap;
}

time_t
schedule_renewal(const struct schedule_cert *c, time_t now, uint64_t rnd,
    enum schedule_reason *why)
{
	enum schedule_reason r;
	time_t at, end, limit;

	limit = t_sub(c->not_after, schedule_margin(c->not_before, c->not_after));
	if (c->not_after <= now) {
		r = SCHEDULE_EXPIRED;
		at = now;
	} else if (c->ari_start < c->ari_end && c->ari_start < c->not_after &&
	    c->ari_start >= limit) {
		/* the CA suggests a moment too close to expiry to retry a failure */
		r = SCHEDULE_MARGIN;
		at = later(limit, now);
	} else if (c->ari_start < c->ari_end && c->ari_start < c->not_after) {
		/* Keep time before notAfter for retries: cut the window there. */
		end = c->ari_end < limit ? c->ari_end : limit;
		if (end <= now) {
			r = SCHEDULE_ARI_PASSED;
			at = now;
		} else if (c->ari_start <= now) {
			r = SCHEDULE_ARI_OPEN;
			at = pick(now, end, rnd);
		} else {
			r = SCHEDULE_ARI;
			at = pick(c->ari_start, end, rnd);
		}
	} else if (c->not_after <= c->not_before) {
		r = SCHEDULE_BAD_DATES;
		at = now;
	} else {
		at = lifetime_moment(c, rnd, &r);
		if (at > limit) {	/* not reached with margin <= life / 4 */
			at = limit;
			r = SCHEDULE_MARGIN;
		}
		at = later(at, now);
	}
	if (why != NULL)
		*why = r;
	return at;
}

time_t
schedule_ari_poll(time_t now, long retry_after)
{
	long d = retry_after;

	if (d < 0 || d > SCHEDULE_ARI_POLL_MAX)
		d = SCHEDULE_ARI_POLL_MAX;
	else if (d < SCHEDULE_ARI_POLL_MIN)
		d = SCHEDULE_ARI_POLL_MIN;
	return t_add(now, (uint64_t)d);
}

/* ---- failures ---- */

void
schedule_budget_add(struct schedule_budget *b, time_t when)
{
	size_t oldest = 0;

	if (when <= 0)
		return;
	for (size_t i = 1; i < SCHEDULE_FAIL_LIMIT; i++)
		if (b->fail[i] < b->fail[oldest])
			oldest = i;
	/* Empty slots (0) sort first; a negative one is junk: replace it too. */
	if (b->fail[oldest] > 0 && when < b->fail[oldest])
		return;		/* older than all we keep: cannot matter */
	b->fail[oldest] = when;
}

/* Counts the failures in the window; *first: the oldest of them. */
static unsigned
budget_scan(const struct schedule_budget *b, time_t now, time_t *first)
{
	unsigned n = 0;
	time_t t;

	*first = now;
	for (size_t i = 0; i < SCHEDULE_FAIL_LIMIT; i++) {
		if (b->fail[i] <= 0)
			continue;
		t = b->fail[i] < now ? b->fail[i] : now;
		if (span(t, now) >= SCHEDULE_FAIL_WINDOW)
			continue;
		n++;
		if (t < *first)
			*first = t;
	}
	return n;
}

unsigned
schedule_budget_count(const struct schedule_budget *b, time_t now)
{
	time_t first;

	return budget_scan(b, now, &first);
}

time_t
schedule_budget_next(const struct schedule_budget *b, time_t now)
{
	time_t first;

	if (budget_scan(b, now, &first) < SCHEDULE_FAIL_LIMIT)
		return now;
	return t_add(first, SCHEDULE_FAIL_WINDOW);
}

long
schedule_backoff_delay(unsigned failures, uint64_t rnd)
{
	long d = SCHEDULE_BACKOFF_BASE;

	/* Bounded: the cap is reached after a handful of doublings. */
	for (unsigned i = 1; i < failures && d < SCHEDULE_BACKOFF_CAP; i++)
		d *= 2;
	if (d > SCHEDULE_BACKOFF_CAP)
		d = SCHEDULE_BACKOFF_CAP;
	return d - (long)(rnd % (uint64_t)(d / 4 + 1));
}

time_t
schedule_retry(time_t now, unsigned failures, long retry_after,
    const struct schedule_budget *budget, uint64_t rnd,
    enum schedule_reason *why)
{
	enum schedule_reason r = SCHEDULE_BACKOFF;
	time_t at, t;

	at = t_add(now, (uint64_t)schedule_backoff_delay(failures, rnd));
	if (retry_after >= 0 &&
	    (t = t_add(now, (uint64_t)retry_after)) >= at) {
		at = t;
		r = SCHEDULE_RETRY_AFTER;
	}
	if (budget != NULL && (t = schedule_budget_next(budget, now)) >= at) {
		at = t;
		r = SCHEDULE_FAIL_LIMIT_HIT;
	}
	if (why != NULL)
		*why = r;
	return at;
}

/* ---- profiles ---- */

long
schedule_profile_lifetime(const char *profile, time_t now)
{
	if (profile == NULL)
		return 0;
	if (strcmp(profile, "shortlived") == 0)
		return 160L * 3600;
	if (strcmp(profile, "tlsserver") == 0)
		return 45L * 86400;
	if (strcmp(profile, "classic") == 0) {
		if (now >= CLASSIC_45D_FROM)
			return 45L * 86400;
		if (now >= CLASSIC_64D_FROM)
			return 64L * 86400;
		return 90L * 86400;
	}
	return 0;
}
