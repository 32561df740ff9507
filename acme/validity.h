/* validity.h - may a certificate that the CA just issued be stored?
 * Pure: the caller passes the clock. Checked before anything is written,
 * by `hacme run` and by the issue/renew verbs alike:
 *   - its lifetime is positive (notAfter after notBefore);
 *   - it is valid now by the local clock: notBefore at most
 *     VALIDITY_SKEW seconds ahead, notAfter not passed (else the message
 *     names clock skew between this host and the CA);
 *   - it does not expire before the certificate it replaces.
 * allow_worse (renew/issue --allow-worse) skips all but the first. */
#ifndef HACME_VALIDITY_H
#define HACME_VALIDITY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define VALIDITY_SKEW 300	/* seconds a notBefore may lie ahead of our clock */
#define VALIDITY_WHY_MAX 400

enum validity {
	VALIDITY_OK = 0,
	VALIDITY_NO_LIFETIME,	/* notAfter <= notBefore */
	VALIDITY_NOT_YET,	/* notBefore > now + VALIDITY_SKEW: clock skew */
	VALIDITY_EXPIRED,	/* notAfter <= now: clock skew or an expired leaf */
	VALIDITY_EARLIER,	/* expires before the stored certificate */
};

/* stored_not_after: notAfter of the certificate it replaces, 0 when none.
 * On anything but VALIDITY_OK, why holds one line without the name. */
enum validity validity_check(time_t not_before, time_t not_after, time_t stored_not_after,
    time_t now, bool allow_worse, char *why, size_t whylen);

/* One line for a certificate stored but already due for renewal at
 * renew_at <= now (clock skew, or a CA issuing very short leaves). */
void validity_due_why(time_t not_before, time_t not_after, time_t now, char *why,
    size_t whylen);

#endif
