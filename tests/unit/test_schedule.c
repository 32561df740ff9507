/* test_schedule.c - renewal moments (ARI window, 1/3 and 1/2 rules, jitter),
 * ARI poll clamping, failure backoff, Retry-After, the failed-validation
 * budget, saturation at the ends of time_t, profile lifetimes. */
#include <limits.h>
#include <stdint.h>

#include "acme/schedule.h"
#include "tap.h"

#define DAY 86400L
#define T_MAX ((time_t)(((uint64_t)1 << (sizeof(time_t) * CHAR_BIT - 1)) - 1))
#define T_MIN (-T_MAX - 1)

static const time_t T0 = 1800000000;	/* 2027-01-15 */

/* splitmix64: a fixed sequence of random values. */
static uint64_t
rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct schedule_cert
cert(time_t not_before, long life, time_t ari_start, time_t ari_end)
{
	struct schedule_cert c = { not_before, not_before + life, ari_start, ari_end };

	return c;
}

static void
test_reasons(void)
{
	int bad = 0;

	for (int i = SCHEDULE_ARI; i <= SCHEDULE_MARGIN; i++) {
		const char *a = schedule_reason_name((enum schedule_reason)i);

		if (strcmp(a, "?") == 0)
			bad++;
		for (int j = SCHEDULE_ARI; j < i; j++)
			if (strcmp(a, schedule_reason_name((enum schedule_reason)j)) == 0)
				bad++;
	}
	is_int(bad, 0, "every reason has its own name");
	is_str(schedule_reason_name(SCHEDULE_THIRD), "1/3 of lifetime left", "1/3 name");
	is_str(schedule_reason_name(SCHEDULE_ARI), "ari window", "ari name");
	is_str(schedule_reason_name((enum schedule_reason)99), "?", "unknown reason");
}

static void
test_ari(void)
{
	/* 90-day certificate issued at T0; window days 60..62 from issuance. */
	time_t ws = T0 + 60 * DAY, we = T0 + 62 * DAY, at, lo, hi;
	struct schedule_cert c = cert(T0, 90 * DAY, ws, we);
	enum schedule_reason why;
	uint64_t s = 1;
	int out = 0;

	at = schedule_renewal(&c, T0 + DAY, 0, &why);
	is_int(at, ws, "window ahead, rnd 0: its start");
	is_int(why, SCHEDULE_ARI, "reason: ari window");
	is_int(schedule_renewal(&c, T0 + DAY, (uint64_t)(2 * DAY - 1), NULL), we - 1,
	    "window ahead, rnd span-1: the last second before its end");
	is_int(schedule_renewal(&c, T0 + DAY, (uint64_t)(2 * DAY), NULL), ws,
	    "window ahead, rnd span: wraps to its start (end excluded)");
	lo = we;
	hi = ws;
	for (int i = 0; i < 10000; i++) {
		at = schedule_renewal(&c, T0 + DAY, rnd_next(&s), &why);
		if (at < ws || at >= we || why != SCHEDULE_ARI)
			out++;
		lo = at < lo ? at : lo;
		hi = at > hi ? at : hi;
	}
	is_int(out, 0, "10000 draws all inside [start, end)");
	ok(lo < ws + DAY / 10 && hi > we - DAY / 10,
	    "draws spread over the window (%ld..%ld s in)", (long)(lo - ws), (long)(hi - ws));

	/* The window has begun: [now, end). */
	at = schedule_renewal(&c, ws + DAY, 0, &why);
	is_int(at, ws + DAY, "open window, rnd 0: now");
	is_int(why, SCHEDULE_ARI_OPEN, "reason: ari window (open)");
	is_int(schedule_renewal(&c, ws + DAY, (uint64_t)(DAY - 1), NULL), we - 1,
	    "open window, rnd max: before its end");
	out = 0;
	for (int i = 0; i < 1000; i++) {
		at = schedule_renewal(&c, ws + 3600, rnd_next(&s), NULL);
		if (at < ws + 3600 || at >= we)
			out++;
	}
	is_int(out, 0, "open window: 1000 draws all in [now, end)");
	at = schedule_renewal(&c, ws, 0, &why);
	is_int(why, SCHEDULE_ARI_OPEN, "now == start: the window is open");

	/* The window has passed: now. */
	at = schedule_renewal(&c, we, 12345, &why);
	is_int(at, we, "now == end: renew now");
	is_int(why, SCHEDULE_ARI_PASSED, "reason: ari window passed");
	is_int(schedule_renewal(&c, we + 3 * DAY, 777, NULL), we + 3 * DAY,
	    "window long past: now");

	/* Degenerate and reversed windows are invalid (RFC 9773 4.2). */
	c = cert(T0, 90 * DAY, ws, ws);
	at = schedule_renewal(&c, T0 + DAY, 0, &why);
	is_int(why, SCHEDULE_THIRD, "start == end: no ARI, lifetime rule");
	is_int(at, T0 + 60 * DAY, "start == end: at 1/3 left");
	c = cert(T0, 90 * DAY, we, ws);
	schedule_renewal(&c, T0 + DAY, 0, &why);
	is_int(why, SCHEDULE_THIRD, "end before start: lifetime rule");
	c = cert(T0, 90 * DAY, 0, 0);
	schedule_renewal(&c, T0 + DAY, 0, &why);
	is_int(why, SCHEDULE_THIRD, "no window (0, 0): lifetime rule");

	/* Windows reaching past notAfter: cut a safety margin (1 day here)
	 * before it, so that a failed order can be retried. */
	c = cert(T0, 90 * DAY, T0 + 80 * DAY, T0 + 95 * DAY);
	is_int(schedule_renewal(&c, T0 + DAY, (uint64_t)(9 * DAY - 1), NULL), T0 + 89 * DAY - 1,
	    "window end cut to notAfter - 1 day");
	is_int(schedule_renewal(&c, T0 + DAY, (uint64_t)(9 * DAY), NULL), T0 + 80 * DAY,
	    "cut window: rnd = new span wraps to start");
	c = cert(T0, 90 * DAY, T0 + 89 * DAY + 3600, T0 + 95 * DAY);
	at = schedule_renewal(&c, T0 + DAY, UINT64_MAX, &why);
	is_int(at, T0 + 89 * DAY, "window starting inside the margin: the margin's start");
	is_int(why, SCHEDULE_MARGIN, "reason: safety margin before expiry");
	at = schedule_renewal(&c, T0 + 89 * DAY + 7200, 99, &why);
	is_int(at, T0 + 89 * DAY + 7200, "... already inside the margin: now");
	c = cert(T0, 90 * DAY, T0 + 90 * DAY, T0 + 95 * DAY);
	schedule_renewal(&c, T0 + DAY, 0, &why);
	is_int(why, SCHEDULE_THIRD, "window starting at notAfter: ignored");
	/* pebble 2.10: a 7-day certificate, window from 2 h before notAfter to
	 * a day after it; every draw leaves at least a day. */
	c = cert(T0, 7 * DAY, T0 + 7 * DAY - 7200, T0 + 8 * DAY);
	out = 0;
	for (int i = 0; i < 1000; i++) {
		at = schedule_renewal(&c, T0 + 3600, rnd_next(&s), NULL);
		if (at > T0 + 6 * DAY)
			out++;
	}
	is_int(out, 0, "window past notAfter: 1000 draws all >= 1 day before it");
	/* a 60-second certificate: a margin of a quarter of it */
	c = cert(T0, 60, T0 + 50, T0 + 120);
	at = schedule_renewal(&c, T0 + 1, UINT64_MAX, &why);
	is_int(at, T0 + 45, "60 s certificate, window past notAfter: 15 s margin");

	/* Expired wins over everything. */
	c = cert(T0, 90 * DAY, ws, we);
	at = schedule_renewal(&c, T0 + 90 * DAY, 5, &why);
	is_int(at, T0 + 90 * DAY, "expired (now == notAfter): now");
	is_int(why, SCHEDULE_EXPIRED, "reason: expired");
}

static void
test_lifetime(void)
{
	struct schedule_cert c;
	enum schedule_reason why;
	time_t at;

	c = cert(T0, 90 * DAY, 0, 0);
	at = schedule_renewal(&c, T0, 0, &why);
	is_int(at, T0 + 60 * DAY, "90 days, rnd 0: exactly 30 days before notAfter");
	is_int(why, SCHEDULE_THIRD, "90 days: 1/3 rule");

	/* The 10-day boundary. */
	c = cert(T0, 10 * DAY, 0, 0);
	at = schedule_renewal(&c, T0, 0, &why);
	is_int(why, SCHEDULE_HALF, "exactly 10 days: 1/2 rule");
	is_int(at, T0 + 5 * DAY, "exactly 10 days: 5 days before notAfter");
	c = cert(T0, 10 * DAY + 1, 0, 0);
	at = schedule_renewal(&c, T0, 0, &why);
	is_int(why, SCHEDULE_THIRD, "10 days + 1 s: 1/3 rule");
	is_int(at, T0 + 10 * DAY + 1 - (10 * DAY + 1) / 3, "10 days + 1 s: 1/3 left");
	c = cert(T0, 10 * DAY - 1, 0, 0);
	schedule_renewal(&c, T0, 0, &why);
	is_int(why, SCHEDULE_HALF, "10 days - 1 s: 1/2 rule");

	/* shortlived: 160 h, renew with 80 h left. */
	c = cert(T0, 160 * 3600, 0, 0);
	at = schedule_renewal(&c, T0, 0, &why);
	is_int(at, T0 + 80 * 3600, "160 h: 80 h before notAfter");
	is_int(why, SCHEDULE_HALF, "160 h: 1/2 rule");

	/* Rule moment already past: now, same reason. */
	c = cert(T0, 90 * DAY, 0, 0);
	at = schedule_renewal(&c, T0 + 70 * DAY, 0, &why);
	is_int(at, T0 + 70 * DAY, "past the 1/3 mark: now");
	is_int(why, SCHEDULE_THIRD, "past the 1/3 mark: reason kept");

	/* Dates that make no lifetime. */
	c.not_before = c.not_after = T0 + DAY;
	at = schedule_renewal(&c, T0, 0, &why);
	is_int(at, T0, "notAfter == notBefore: now");
	is_int(why, SCHEDULE_BAD_DATES, "reason: no valid lifetime");
	c.not_before = T0 + 2 * DAY;
	schedule_renewal(&c, T0, 0, &why);
	is_int(why, SCHEDULE_BAD_DATES, "notAfter < notBefore: no valid lifetime");
}

/* All draws within [rule - jitter, rule], not all equal, both ends reached. */
static void
jitter_check(const char *what, long life, long left, long jitter)
{
	struct schedule_cert c = cert(T0, life, 0, 0);
	time_t rule = T0 + life - left, lo = T_MAX, hi = T_MIN, at;
	uint64_t s = (uint64_t)life;
	int out = 0;

	for (int i = 0; i < 20000; i++) {
		at = schedule_renewal(&c, T0, rnd_next(&s), NULL);
		if (at < rule - jitter || at > rule)
			out++;
		lo = at < lo ? at : lo;
		hi = at > hi ? at : hi;
	}
	is_int(out, 0, "%s: 20000 draws in [rule - %ld s, rule]", what, jitter);
	if (jitter > 0)
		ok(lo < hi, "%s: draws not all equal", what);
	else
		ok(lo == rule && hi == rule, "%s: no jitter, all at the rule", what);
	ok(rule - hi < jitter / 100 + 1 && lo - (rule - jitter) < jitter / 100 + 1,
	    "%s: draws reach both ends (%ld..%ld s early)", what, (long)(rule - hi),
	    (long)(rule - lo));
	is_int(schedule_renewal(&c, T0, (uint64_t)jitter, NULL), rule - jitter,
	    "%s: rnd = jitter: earliest", what);
	is_int(schedule_renewal(&c, T0, (uint64_t)jitter + 1, NULL), rule,
	    "%s: rnd = jitter + 1: wraps to the rule itself", what);
}

static void
test_jitter(void)
{
	jitter_check("90 days", 90 * DAY, 30 * DAY, 90 * DAY / 100);
	jitter_check("45 days", 45 * DAY, 15 * DAY, 45 * DAY / 100);
	jitter_check("160 h", 160 * 3600, 80 * 3600, 160 * 36);
	/* One year: lifetime/100 would be 3.65 days; capped at one day. */
	jitter_check("365 days (capped)", 365 * DAY, 365 * DAY / 3, SCHEDULE_JITTER_MAX);
	/* 99 s: lifetime/100 is 0: no jitter at all. */
	jitter_check("99 s", 99, 49, 0);
}

static void
test_ari_poll(void)
{
	is_int(schedule_ari_poll(T0, -1), T0 + 6 * 3600, "no Retry-After: 6 h");
	is_int(schedule_ari_poll(T0, 0), T0 + 60, "Retry-After 0: 1 min");
	is_int(schedule_ari_poll(T0, 59), T0 + 60, "Retry-After 59: 1 min");
	is_int(schedule_ari_poll(T0, 60), T0 + 60, "Retry-After 60 kept");
	is_int(schedule_ari_poll(T0, 3600), T0 + 3600, "Retry-After 1 h kept");
	is_int(schedule_ari_poll(T0, 6 * 3600), T0 + 6 * 3600, "Retry-After 6 h kept");
	is_int(schedule_ari_poll(T0, 6 * 3600 + 1), T0 + 6 * 3600, "Retry-After 6 h + 1: 6 h");
	is_int(schedule_ari_poll(T0, LONG_MAX), T0 + 6 * 3600, "Retry-After huge: 6 h");
}

static void
test_backoff(void)
{
	static const long want[] = { 60, 60, 120, 240, 480, 960, 1920, 3840, 7680,
	    15360, 21600, 21600 };
	uint64_t s = 7;
	long d, lo = LONG_MAX, hi = 0;
	int bad = 0, out = 0;

	for (unsigned n = 0; n < sizeof(want) / sizeof(want[0]); n++)
		if (schedule_backoff_delay(n, 0) != want[n]) {
			printf("#   failures %u: %ld, want %ld\n", n,
			    schedule_backoff_delay(n, 0), want[n]);
			bad++;
		}
	is_int(bad, 0, "rnd 0: 60 s doubling per failure (0 counts as 1)");
	is_int(schedule_backoff_delay(10, 0), SCHEDULE_BACKOFF_CAP, "10 failures: at the cap");
	is_int(schedule_backoff_delay(64, 0), SCHEDULE_BACKOFF_CAP, "64 failures: cap");
	is_int(schedule_backoff_delay(UINT_MAX, 0), SCHEDULE_BACKOFF_CAP, "UINT_MAX failures: cap");
	is_int(schedule_backoff_delay(1, 15), 45, "1 failure, rnd 15: 45 s (a quarter off)");
	is_int(schedule_backoff_delay(1, 16), 60, "1 failure, rnd 16: wraps to 60 s");
	is_int(schedule_backoff_delay(UINT_MAX, UINT64_MAX), 21600 - (long)(UINT64_MAX % 5401),
	    "cap with rnd UINT64_MAX");
	for (int i = 0; i < 10000; i++) {
		d = schedule_backoff_delay(4, rnd_next(&s));
		if (d < 360 || d > 480)
			out++;
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	is_int(out, 0, "4 failures: 10000 draws in [360, 480] s");
	ok(lo < hi, "4 failures: draws not all equal (%ld..%ld)", lo, hi);
	out = 0;
	for (int i = 0; i < 10000; i++) {
		d = schedule_backoff_delay(30, rnd_next(&s));
		if (d < SCHEDULE_BACKOFF_CAP * 3 / 4 || d > SCHEDULE_BACKOFF_CAP)
			out++;
	}
	is_int(out, 0, "30 failures: 10000 draws in [3/4 cap, cap]");
}

static void
test_retry(void)
{
	enum schedule_reason why;
	time_t at;

	at = schedule_retry(T0, 3, -1, NULL, 0, &why);
	is_int(at, T0 + 240, "3 failures, no Retry-After: backoff 240 s");
	is_int(why, SCHEDULE_BACKOFF, "reason: backoff after failure");
	at = schedule_retry(T0, 3, 3600, NULL, 0, &why);
	is_int(at, T0 + 3600, "Retry-After 1 h later than backoff: wins");
	is_int(why, SCHEDULE_RETRY_AFTER, "reason: CA Retry-After");
	at = schedule_retry(T0, 3, 10, NULL, 0, &why);
	is_int(at, T0 + 240, "Retry-After 10 s earlier than backoff: backoff");
	is_int(why, SCHEDULE_BACKOFF, "reason: backoff");
	at = schedule_retry(T0, 3, 240, NULL, 0, &why);
	is_int(why, SCHEDULE_RETRY_AFTER, "tie: Retry-After named");
	at = schedule_retry(T0, 30, 2 * DAY, NULL, 0, &why);
	is_int(at, T0 + 2 * DAY, "Retry-After beyond the backoff cap still wins");
}

static void
test_retry_after_cap(void)
{
	time_t at;

	is_int(schedule_retry_after_cap(-1, T0, T0 + 60 * DAY), -1, "none stays none");
	is_int(schedule_retry_after_cap(600, T0, T0 + 60 * DAY), 600, "10 min: honoured");
	is_int(schedule_retry_after_cap(99999999, T0, T0 + 60 * DAY), DAY,
	    "Retry-After 99999999 with 60 days left: 1 day");
	is_int(schedule_retry_after_cap(99999999, T0, 0), DAY, "no certificate: 1 day");
	is_int(schedule_retry_after_cap(99999999, T0, T0 - 5), DAY, "expired: 1 day");
	is_int(schedule_retry_after_cap(99999999, T0, T0 + 2 * DAY), DAY / 2,
	    "2 days left: a quarter of them");
	is_int(schedule_retry_after_cap(99999999, T0, T0 + 100), SCHEDULE_BACKOFF_BASE,
	    "100 s left: never below the backoff base (no loop)");
	is_int(schedule_retry_after_cap(LONG_MAX, T0, T0 + 4 * DAY), DAY, "LONG_MAX: 1 day");
	/* as run.c uses it: the renewal is postponed at most a day */
	at = schedule_retry(T0, 1, schedule_retry_after_cap(99999999, T0, T0 + 30 * DAY),
	    NULL, 0, NULL);
	is_int(at, T0 + DAY, "retry after a huge Retry-After: 1 day later, not a year");
}

static void
test_budget(void)
{
	struct schedule_budget b = { { 0 } }, r = { { 0 } };
	enum schedule_reason why;
	time_t at;

	is_int(schedule_budget_next(&b, T0), T0, "empty budget: now");
	is_int(schedule_budget_count(&b, T0), 0, "empty budget: count 0");
	for (int i = 0; i < 4; i++)
		schedule_budget_add(&b, T0 + i * 60);
	is_int(schedule_budget_count(&b, T0 + 300), 4, "4 failures counted");
	is_int(schedule_budget_next(&b, T0 + 300), T0 + 300, "4 failures in the hour: now");
	schedule_budget_add(&b, T0 + 240);
	is_int(schedule_budget_count(&b, T0 + 300), 5, "5 failures counted");
	is_int(schedule_budget_next(&b, T0 + 300), T0 + 3600,
	    "5 failures: next when the oldest is 1 h old");
	is_int(schedule_budget_next(&b, T0 + 3599), T0 + 3600, "1 s before: still refused");
	is_int(schedule_budget_count(&b, T0 + 3600), 4, "oldest 1 h old: out of the window");
	is_int(schedule_budget_next(&b, T0 + 3600), T0 + 3600, "oldest 1 h old: allowed now");

	at = schedule_retry(T0 + 300, 5, 60, &b, 0, &why);
	is_int(at, T0 + 3600, "retry: the budget beats backoff and Retry-After");
	is_int(why, SCHEDULE_FAIL_LIMIT_HIT, "reason: failed-validation limit");
	at = schedule_retry(T0 + 300, 5, 7200, &b, 0, &why);
	is_int(at, T0 + 300 + 7200, "retry: a later Retry-After beats the budget");
	is_int(why, SCHEDULE_RETRY_AFTER, "reason: CA Retry-After");

	/* A sixth failure pushes the oldest out; the next oldest rules. */
	schedule_budget_add(&b, T0 + 3000);
	is_int(schedule_budget_next(&b, T0 + 3000), T0 + 60 + 3600,
	    "6 failures: the second one decides");
	schedule_budget_add(&b, T0 - DAY);
	is_int(schedule_budget_next(&b, T0 + 3000), T0 + 60 + 3600,
	    "a failure older than all kept is dropped");

	/* Persist: the non-zero entries, restored in another order. */
	for (int i = SCHEDULE_FAIL_LIMIT - 1; i >= 0; i--)
		schedule_budget_add(&r, b.fail[i]);
	is_int(schedule_budget_next(&r, T0 + 3000), schedule_budget_next(&b, T0 + 3000),
	    "restored budget gives the same answer");
	schedule_budget_add(&r, 0);
	schedule_budget_add(&r, -5);
	is_int(schedule_budget_count(&r, T0 + 3000), 5, "0 and negative times ignored");

	/* The clock went back a day: entries "in the future" count as now. */
	b = (struct schedule_budget){ { 0 } };
	for (int i = 0; i < 5; i++)
		schedule_budget_add(&b, T0 + DAY + i);
	is_int(schedule_budget_count(&b, T0), 5, "future entries count");
	is_int(schedule_budget_next(&b, T0), T0 + 3600, "clock went back: at most 1 h");
}

static void
test_huge(void)
{
	struct schedule_cert c;
	struct schedule_budget b = { { 0 } };
	enum schedule_reason why;
	time_t at;
	uint64_t s = 3;
	int out = 0;

	c = (struct schedule_cert){ T_MIN, T_MAX, 0, 0 };
	at = schedule_renewal(&c, 0, UINT64_MAX, &why);
	is_int(why, SCHEDULE_THIRD, "lifetime of all time_t: 1/3 rule");
	ok(at > 0 && at <= T_MAX - (time_t)((((uint64_t)T_MAX - (uint64_t)T_MIN) / 3)) &&
	    at >= T_MAX - (time_t)((((uint64_t)T_MAX - (uint64_t)T_MIN) / 3)) - SCHEDULE_JITTER_MAX,
	    "lifetime of all time_t: 1/3 left minus at most a day");
	c = (struct schedule_cert){ T_MIN, T_MAX, T_MIN + 1, T_MAX };
	for (int i = 0; i < 1000; i++) {
		at = schedule_renewal(&c, T_MIN, rnd_next(&s), &why);
		if (why != SCHEDULE_ARI || at < T_MIN + 1 || at >= T_MAX)
			out++;
	}
	is_int(out, 0, "window of all time_t: draws inside");
	c = (struct schedule_cert){ T_MAX - 10, T_MAX, 0, 0 };
	is_int(schedule_renewal(&c, T_MAX - 1, UINT64_MAX, NULL), T_MAX - 1,
	    "near the end of time: now");
	is_int(schedule_renewal(&c, T_MAX, 0, &why), T_MAX, "now == T_MAX: expired, now");
	is_int(why, SCHEDULE_EXPIRED, "now == T_MAX: reason expired");
	is_int(schedule_ari_poll(T_MAX - 5, 3600), T_MAX, "ari poll saturates");
	is_int(schedule_retry(T_MAX - 5, UINT_MAX, LONG_MAX, NULL, UINT64_MAX, NULL), T_MAX,
	    "retry saturates");
	for (int i = 0; i < 5; i++)
		schedule_budget_add(&b, T_MAX - i);
	is_int(schedule_budget_next(&b, T_MAX), T_MAX, "budget next saturates");
	is_int(schedule_budget_count(&b, T_MIN), 5, "budget at T_MIN: future entries count");
	is_int(schedule_budget_next(&b, T_MIN), T_MIN + 3600, "budget at T_MIN: 1 h");
}

static void
test_profiles(void)
{
	is_int(schedule_profile_lifetime("shortlived", T0), 160 * 3600, "shortlived 160 h");
	is_int(schedule_profile_lifetime("tlsserver", T0), 45 * DAY, "tlsserver 45 days");
	is_int(schedule_profile_lifetime("classic", T0), 90 * DAY, "classic 90 days in Jan 2027");
	is_int(schedule_profile_lifetime("classic", 1802217600), 64 * DAY,
	    "classic 64 days from 2027-02-10");
	is_int(schedule_profile_lifetime("classic", 1834272000 - 1), 64 * DAY,
	    "classic 64 days until 2028-02-16");
	is_int(schedule_profile_lifetime("classic", 1834272000), 45 * DAY,
	    "classic 45 days from 2028-02-16");
	is_int(schedule_profile_lifetime(NULL, T0), 0, "no profile: unknown");
	is_int(schedule_profile_lifetime("", T0), 0, "empty profile: unknown");
	is_int(schedule_profile_lifetime("Classic", T0), 0, "names are case sensitive");
}

int
main(void)
{
	test_reasons();
	test_ari();
	test_lifetime();
	test_jitter();
	test_ari_poll();
	test_backoff();
	test_retry();
	test_retry_after_cap();
	test_budget();
	test_huge();
	test_profiles();
	return tap_done();
}
