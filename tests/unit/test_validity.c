/* test_validity.c - a new certificate's dates against the local clock and
 * the stored certificate: what is refused, and that the reason names clock
 * skew and stays one line. */
#include <string.h>

#include "acme/validity.h"
#include "tap.h"

#define DAY 86400L

static const time_t T0 = 1800000000;	/* 2027-01-15 */

static int
one_line(const char *s)
{
	return strchr(s, '\n') == NULL && strchr(s, '\r') == NULL && *s != '\0';
}

int
main(void)
{
	char why[VALIDITY_WHY_MAX];

	is_int(validity_check(T0, T0 + 90 * DAY, 0, T0 + 60, false, why, sizeof why), VALIDITY_OK,
	    "fresh 90-day certificate, nothing stored: ok");
	is_int(validity_check(T0, T0 + 90 * DAY, T0 + 30 * DAY, T0 + 60, false, why, sizeof why),
	    VALIDITY_OK, "expires after the stored one: ok");
	is_int(validity_check(T0, T0 + 90 * DAY, T0 + 90 * DAY, T0 + 60, false, why, sizeof why),
	    VALIDITY_OK, "same notAfter as the stored one: ok");
	is_int(validity_check(T0 + VALIDITY_SKEW, T0 + DAY, 0, T0, false, why, sizeof why),
	    VALIDITY_OK, "notBefore within the allowed skew: ok");

	is_int(validity_check(T0, T0, 0, T0, false, why, sizeof why), VALIDITY_NO_LIFETIME,
	    "notAfter == notBefore: no lifetime");
	ok(strstr(why, "no valid lifetime") != NULL && one_line(why), "... says so: %s", why);
	is_int(validity_check(T0, T0 - 1, 0, T0, true, why, sizeof why), VALIDITY_NO_LIFETIME,
	    "negative lifetime refused even with allow_worse");

	/* host clock 5 days behind the CA: notBefore in the future */
	is_int(validity_check(T0 + 5 * DAY, T0 + 95 * DAY, 0, T0, false, why, sizeof why),
	    VALIDITY_NOT_YET, "notBefore 5 days ahead: not yet valid");
	ok(strstr(why, "clock skew") != NULL && strstr(why, "5d 0h") != NULL && one_line(why),
	    "... names clock skew and the 5 days: %s", why);
	is_int(validity_check(T0 + VALIDITY_SKEW + 1, T0 + DAY, 0, T0, false, why, sizeof why),
	    VALIDITY_NOT_YET, "notBefore one second beyond the skew: refused");

	/* host clock 5 days ahead, 1-day certificates: expired on arrival */
	is_int(validity_check(T0, T0 + DAY, 0, T0 + 5 * DAY, false, why, sizeof why),
	    VALIDITY_EXPIRED, "notAfter 4 days in the past: expired");
	ok(strstr(why, "clock skew") != NULL && strstr(why, "expired") != NULL &&
	    strstr(why, "4d 0h") != NULL && one_line(why), "... names clock skew: %s", why);
	is_int(validity_check(T0 - DAY, T0, 0, T0, false, why, sizeof why), VALIDITY_EXPIRED,
	    "notAfter == now: expired");
	is_int(validity_check(T0, T0 + DAY, 0, T0 + 5 * DAY, true, why, sizeof why), VALIDITY_OK,
	    "expired but allow_worse: ok");

	/* never replace by one that expires earlier */
	is_int(validity_check(T0, T0 + 6 * DAY, T0 + 60 * DAY, T0 + 60, false, why, sizeof why),
	    VALIDITY_EARLIER, "6-day certificate replacing one with 60 days left: refused");
	ok(strstr(why, "before the stored one") != NULL && strstr(why, "--allow-worse") != NULL &&
	    one_line(why), "... names the flag: %s", why);
	is_int(validity_check(T0, T0 + 6 * DAY, T0 + 60 * DAY, T0 + 60, true, why, sizeof why),
	    VALIDITY_OK, "... stored with allow_worse");
	is_int(validity_check(T0, T0 + 6 * DAY, T0 - DAY, T0 + 60, false, why, sizeof why),
	    VALIDITY_OK, "replacing an expired one: ok");

	validity_due_why(T0, T0 + DAY, T0 + DAY - 60, why, sizeof why);
	ok(strstr(why, "already due") != NULL && strstr(why, "1m 0s left") != NULL &&
	    strstr(why, "clock skew") != NULL && one_line(why), "due: %s", why);
	/* extreme values do not crash or overflow */
	is_int(validity_check((time_t)-9e18, (time_t)9e18, 0, 0, false, why, sizeof why),
	    VALIDITY_OK, "extreme dates: ok, no overflow");
	is_int(validity_check((time_t)9e18, (time_t)9e18 + 1, 0, 0, false, why, sizeof why),
	    VALIDITY_NOT_YET, "notBefore at the end of time: not yet");
	ok(strstr(why, "ages ahead") != NULL && one_line(why), "... %s", why);
	is_int(validity_check(0, 1, 0, 0, false, why, 8), VALIDITY_OK, "tiny buffer: ok");
	is_int(validity_check(0, 0, 0, 0, false, why, 8), VALIDITY_NO_LIFETIME,
	    "tiny buffer: cut, terminated");
	is_int((long)strlen(why), 7, "... to 7 characters");
	return tap_done();
}
