/* validity.c - checks on a new certificate's dates; see validity.h. */
#include "acme/validity.h"

#include <stdio.h>

static void
fmt(time_t t, char *out, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, len, "%lld", (long long)t);
}

/* "3d 4h", "5m 2s": a span for a human. */
static void
span(double secs, char *out, size_t len)
{
	long long s = secs < 0 ? (long long)-secs : (long long)secs;

	if (secs > 9e15 || secs < -9e15)
		snprintf(out, len, "ages");
	else if (s >= 86400)
		snprintf(out, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, len, "%lldm %llds", s / 60, s % 60);
	else
		snprintf(out, len, "%llds", s);
}

enum validity
validity_check(time_t not_before, time_t not_after, time_t stored_not_after, time_t now,
    bool allow_worse, char *why, size_t whylen)
{
	char a[32], b[32], d[48];

	fmt(not_before, b, sizeof b);
	fmt(not_after, a, sizeof a);
	if (not_after <= not_before) {
		snprintf(why, whylen, "the CA's certificate has no valid lifetime (notBefore %s, "
		    "notAfter %s): not stored", b, a);
		return VALIDITY_NO_LIFETIME;
	}
	if (allow_worse)
		return VALIDITY_OK;
	if (not_before > now && (double)not_before - (double)now > VALIDITY_SKEW) {
		span((double)not_before - (double)now, d, sizeof d);
		snprintf(why, whylen, "the CA's certificate is not valid before %s, %s ahead of "
		    "this host's clock: clock skew between this host and the CA (check NTP): "
		    "not stored", b, d);
		return VALIDITY_NOT_YET;
	}
	if (not_after <= now) {
		span((double)now - (double)not_after, d, sizeof d);
		snprintf(why, whylen, "the CA's certificate expired at %s, %s ago by this host's "
		    "clock: clock skew between this host and the CA (check NTP), or the CA "
		    "issues expired certificates: not stored", a, d);
		return VALIDITY_EXPIRED;
	}
	if (stored_not_after > 0 && not_after < stored_not_after) {
		char s[32];
		fmt(stored_not_after, s, sizeof s);
		snprintf(why, whylen, "the CA's certificate expires at %s, before the stored "
		    "one (%s): not stored (renew --force --allow-worse stores it anyway)", a, s);
		return VALIDITY_EARLIER;
	}
	return VALIDITY_OK;
}

void
validity_due_why(time_t not_before, time_t not_after, time_t now, char *why, size_t whylen)
{
	char l[48], left[48];

	span((double)not_after - (double)not_before, l, sizeof l);
	span((double)not_after - (double)now, left, sizeof left);
	snprintf(why, whylen, "the new certificate is already due for renewal (%s left of "
	    "a %s lifetime by this host's clock): counted as a failure; clock skew between "
	    "this host and the CA, or the CA issues leaves too short to renew", left, l);
}
