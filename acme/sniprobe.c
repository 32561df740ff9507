/* sniprobe.c - see sniprobe.h. */
#include "acme/sniprobe.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
sniprobe(const char *address, const char *sni, enum keytype only, double timeout,
    char serial[CRYPTO_SERIAL_MAX], char *err, size_t errlen)
{
	struct crypto_tls_probe *p = NULL;
	double end = mono() + timeout;
	struct addr a;
	struct pollfd pfd;
	int fd = -1, rc = -1;
	char why[256];

	if (addr_parse(&a, address, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "tls-check %s: %s", address, why);
		return -1;
	}
	if ((fd = addr_connect(&a, true)) < 0) {
		snprintf(err, errlen, "tls-check %s: %s", address, strerror(errno));
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;	/* the connect, then what the handshake wants */
	for (;;) {
		double left = end - mono();
		int n;
		if (left <= 0) {
			snprintf(err, errlen, "tls-check %s: no handshake within %.0f s", address,
			    timeout);
			goto out;
		}
		if ((n = poll(&pfd, 1, (int)(left * 1000) + 1)) < 0 && errno != EINTR) {
			snprintf(err, errlen, "tls-check %s: %s", address, strerror(errno));
			goto out;
		}
		if (n <= 0)
			continue;
		if (p == NULL) {
			int e = 0;
			socklen_t el = sizeof(e);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e != 0) {
				snprintf(err, errlen, "tls-check %s: %s", address, strerror(e ? e : errno));
				goto out;
			}
			if ((p = crypto_tls_probe_new(fd, sni, only, why, sizeof(why))) == NULL) {
				snprintf(err, errlen, "tls-check %s: %s", address, why);
				goto out;
			}
		}
		switch (crypto_tls_probe_step(p, serial, why, sizeof(why))) {
		case CRYPTO_TLS_DONE:
			rc = 0;
			goto out;
		case CRYPTO_TLS_WANT_READ:
			pfd.events = POLLIN;
			break;
		case CRYPTO_TLS_WANT_WRITE:
			pfd.events = POLLOUT;
			break;
		case CRYPTO_TLS_ERROR:
			snprintf(err, errlen, "tls-check %s, SNI %s: %s", address, sni, why);
			goto out;
		}
	}
out:
	crypto_tls_probe_free(p);
	close(fd);
	return rc;
}
