/* schedule.h - when to renew, when to poll ARI, when to retry after a
 * failure. Pure: no I/O, no clock, no random source of its own -- the
 * caller passes the time (now) and one uniformly random 64-bit value (rnd)
 * per call, so that tests are deterministic.
 *
 * Every result is a time >= now. Arithmetic saturates: no time or count,
 * however large, overflows.
 *
 * Renewal (schedule_renewal):
 *   - expired (notAfter <= now): now.
 *   - ARI (RFC 9773 section 4.2), when the suggestedWindow is usable
 *     (start < end, and start before notAfter; its end is cut to the
 *     safety limit, see below): a window still ahead: a uniform moment in
 *     [start, end); a window that has begun: a uniform moment in [now,
 *     end); a window that has passed: now. A window with end <= start is
 *     invalid (RFC 9773 section 4.2) and treated as no ARI at all. A
 *     window that starts after the safety limit gives the limit
 *     (SCHEDULE_MARGIN).
 *   - otherwise the lifetime rule: when 1/3 of the lifetime (notAfter -
 *     notBefore) is left, or 1/2 for a lifetime of 10 days or less, minus a
 *     jitter of 0..lifetime/100, at most SCHEDULE_JITTER_MAX; jitter only
 *     ever moves renewal earlier. A moment already past gives now.
 *   - never later than the safety limit, notAfter - schedule_margin():
 *     time for the failure backoff to try several times before expiry.
 * Choose once when the certificate or its ARI window changes and store the
 * result (store_meta.renew_at, renew_reason): drawing again at every
 * wake-up would keep pushing an open ARI window's moment towards its end. */
#ifndef HACME_SCHEDULE_H
#define HACME_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SCHEDULE_SHORT_LIFETIME (10 * 86400)	/* <= this: renew at 1/2 */
#define SCHEDULE_JITTER_MAX 86400	/* cap on the lifetime rule's jitter */

/* Safety margin before notAfter: one day, at most a quarter of the
 * lifetime. A day of failure backoff (60 s doubling to 6 h) is about ten
 * attempts. */
#define SCHEDULE_MARGIN_MAX 86400

/* A CA's Retry-After on a failed order is honoured up to a day, and up to
 * a quarter of the certificate's remaining lifetime (never below
 * SCHEDULE_BACKOFF_BASE): a Retry-After: 99999999 cannot postpone a
 * renewal past expiry. */
#define SCHEDULE_RETRY_AFTER_MAX 86400

/* ARI polling: Retry-After clamped to [MIN, MAX]; without one (absent,
 * invalid, or the fetch failed for good) MAX. RFC 9773 section 4.3 asks for
 * limits and gives 1 min .. 1 day as an example; 6 h is the time its own
 * example gives clients to fetch RenewalInfo after a CA learns of a problem,
 * and the interval it gives for retrying after a long-term error. */
#define SCHEDULE_ARI_POLL_MIN 60
#define SCHEDULE_ARI_POLL_MAX (6 * 3600)

/* Failure backoff: BASE doubled per consecutive failure up to CAP, minus
 * a jitter of up to a quarter. A 6 h cap still gives a 160-hour
 * (shortlived) certificate, renewed with 80 h left, a dozen attempts. */
#define SCHEDULE_BACKOFF_BASE 60
#define SCHEDULE_BACKOFF_CAP (6 * 3600)

/* Failed validations: at most LIMIT per identifier per WINDOW seconds
 * (Let's Encrypt: 5 authorization failures per identifier per account per
 * hour). A sliding window of 5 per hour never exceeds LE's token bucket. */
#define SCHEDULE_FAIL_LIMIT 5
#define SCHEDULE_FAIL_WINDOW 3600

enum schedule_reason {
	SCHEDULE_ARI,		/* "ari window" */
	SCHEDULE_ARI_OPEN,	/* "ari window (open)": the window has begun */
	SCHEDULE_ARI_PASSED,	/* "ari window passed": renew now */
	SCHEDULE_THIRD,		/* "1/3 of lifetime left" */
	SCHEDULE_HALF,		/* "1/2 of lifetime left" */
	SCHEDULE_EXPIRED,	/* "expired" */
	SCHEDULE_BAD_DATES,	/* "no valid lifetime": notAfter <= notBefore */
	SCHEDULE_BACKOFF,	/* "backoff after failure" */
	SCHEDULE_RETRY_AFTER,	/* "CA Retry-After" */
	SCHEDULE_FAIL_LIMIT_HIT,	/* "failed-validation limit" */
	SCHEDULE_MARGIN,	/* "safety margin before expiry" */
};

/* A static string for status and logs (see the enum); "?" when unknown. */
const char *schedule_reason_name(enum schedule_reason r);

struct schedule_cert {
	time_t not_before, not_after;
	time_t ari_start, ari_end;	/* suggestedWindow; end <= start: none */
};

/* The renewal moment (>= now) and, when why is not NULL, its reason. */
time_t schedule_renewal(const struct schedule_cert *c, time_t now,
    uint64_t rnd, enum schedule_reason *why);

/* Seconds kept between the renewal moment and notAfter: min(
 * SCHEDULE_MARGIN_MAX, lifetime / 4); 0 for a lifetime <= 0. */
uint64_t schedule_margin(time_t not_before, time_t not_after);

/* retry_after (seconds, < 0: none) bounded as SCHEDULE_RETRY_AFTER_MAX
 * says; not_after <= now (expired, or no certificate: pass 0): a day. */
long schedule_retry_after_cap(long retry_after, time_t now, time_t not_after);

/* When to fetch renewalInfo next: now + Retry-After clamped to
 * [SCHEDULE_ARI_POLL_MIN, SCHEDULE_ARI_POLL_MAX]; retry_after < 0 (none)
 * gives SCHEDULE_ARI_POLL_MAX. Stop polling once the certificate has
 * expired or been replaced (RFC 9773 section 4.3): that is the caller's. */
time_t schedule_ari_poll(time_t now, long retry_after);

/* ---- failures ---- */

/* Failed-validation times of one identifier: the latest SCHEDULE_FAIL_LIMIT,
 * unordered, 0 for an empty slot. Plain data: persist the non-zero entries
 * (e.g. a JSON array of numbers) and restore with schedule_budget_add. Keep
 * one per identifier (the CA counts per identifier and account); a
 * certificate may try again when every one of its names' budgets allows. */
struct schedule_budget {
	time_t fail[SCHEDULE_FAIL_LIMIT];
};

/* Records a failed validation at when (<= 0 is ignored); the oldest
 * entry makes room. */
void schedule_budget_add(struct schedule_budget *b, time_t when);
/* Failures counted in (now - SCHEDULE_FAIL_WINDOW, now]; an entry later
 * than now (the clock went back) counts as now. */
unsigned schedule_budget_count(const struct schedule_budget *b, time_t now);
/* now while fewer than SCHEDULE_FAIL_LIMIT count; else the moment the
 * oldest of them drops out (it is then SCHEDULE_FAIL_WINDOW old). */
time_t schedule_budget_next(const struct schedule_budget *b, time_t now);

/* The backoff delay in seconds after `failures` consecutive failures (0
 * counts as 1): SCHEDULE_BACKOFF_BASE * 2^(failures-1), at most
 * SCHEDULE_BACKOFF_CAP, minus 0..1/4 of it chosen by rnd (rnd 0: none). */
long schedule_backoff_delay(unsigned failures, uint64_t rnd);

/* When to try again after a failed order: the latest of now + backoff
 * delay (SCHEDULE_BACKOFF), now + retry_after from the CA when >= 0
 * (SCHEDULE_RETRY_AFTER) and, when budget is not NULL,
 * schedule_budget_next (SCHEDULE_FAIL_LIMIT_HIT); a tie goes to the
 * later in that list. Record the validation failure in the budget first. */
time_t schedule_retry(time_t now, unsigned failures, long retry_after,
    const struct schedule_budget *budget, uint64_t rnd,
    enum schedule_reason *why);

/* ---- profiles ---- */

/* The lifetime, in seconds, a profile's certificates are expected to have
 * at `now`, for display only (the certificate's own dates decide renewal):
 * "shortlived" 160 h, "tlsserver" 45 days, "classic" 90 days, then 64 days
 * from 2027-02-10 and 45 days from 2028-02-16 (Let's Encrypt's announced
 * plan). 0 for NULL, "" or another name: unknown, up to the CA. */
long schedule_profile_lifetime(const char *profile, time_t now);

#endif
