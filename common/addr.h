/* addr.h - the address syntax shared by every flag and config keyword:
 *   unix@PATH  ipv4@HOST:PORT  ipv6@[HOST]:PORT  unix:PATH  tcp:HOST:PORT
 *   HOST:PORT (ipv4/tcp)      master@unix@PATH (HAProxy master CLI)
 */
#ifndef HACME_ADDR_H
#define HACME_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	bool master;		/* master@...: commands need the "@1 " prefix */
	char text[128];		/* as given, for messages (cut if longer) */
};

/* Parses s. 0, or -1 with a one-line reason in err. Host names are
 * resolved here (once, blocking): call it at start-up, not in the loop. */
int addr_parse(struct addr *a, const char *s, char *err, size_t errlen);

bool addr_is_unix(const struct addr *a);
bool addr_is_loopback(const struct addr *a);	/* unix counts as local */

/* A non-blocking, close-on-exec listening socket; a stale unix socket file
 * is replaced, and a unix socket gets unix_mode. fd, or -1 with errno. */
int addr_listen(const struct addr *a, int backlog, mode_t unix_mode);

/* A connected socket (blocking connect), or -1 with errno; with nonblock the
 * connect is started and may still be in progress (EINPROGRESS is not an
 * error then). */
int addr_connect(const struct addr *a, bool nonblock);

/* The tcp port of an ipv4/ipv6 address, 0 for unix. */
unsigned addr_port(const struct addr *a);

/* Why addr_accept returned no connection. */
enum addr_accept_stop {
	ADDR_ACCEPT_DRAINED,	/* none waiting (EAGAIN) */
	ADDR_ACCEPT_PAUSE,	/* out of fds or memory: the socket stays readable,
				 * so stop watching it a moment or the loop spins */
	ADDR_ACCEPT_ERROR,	/* anything else */
};

/* One connection from a listening socket, non-blocking and close-on-exec;
 * EINTR, ECONNABORTED and EPROTO are retried. fd, or -1 with *stop set
 * and errno kept. */
int addr_accept(int lfd, enum addr_accept_stop *stop);

#endif
