/* addr.c - address parsing and sockets. */
#include "common/addr.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The value is echoed escaped: the reason stays one line. */
static int
addr_err(char *err, size_t errlen, const char *fmt, const char *s)
{
	char esc[160];

	snprintf(err, errlen, fmt, log_escape(esc, sizeof(esc), s, strlen(s)));
	return -1;
}

static int
addr_unix(struct addr *a, const char *path, const char *s, char *err, size_t errlen)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
	size_t n = strlen(path);

	if (n == 0)
		return addr_err(err, errlen, "'%s': empty unix socket path", s);
	if (n >= sizeof(sun->sun_path))
		return addr_err(err, errlen, "'%s': unix socket path too long (max 107 bytes)", s);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

static int
addr_inet(struct addr *a, int family, const char *hostport, const char *s,
    char *err, size_t errlen)
{
	char host[256];
	const char *colon, *port, *h = hostport;
	size_t hlen;
	struct addrinfo hints, *res = NULL;
	char *end;
	long pn;
	int rc;

	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (close == NULL || close[1] != ':')
			return addr_err(err, errlen, "'%s': expected [HOST]:PORT", s);
		h++;
		hlen = (size_t)(close - h);
		port = close + 2;
		if (family == AF_UNSPEC)
			family = AF_INET6;
	} else {
		colon = strrchr(h, ':');
		if (colon == NULL)
			return addr_err(err, errlen, "'%s': expected HOST:PORT", s);
		hlen = (size_t)(colon - h);
		port = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return addr_err(err, errlen, "'%s': missing or too long host", s);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	pn = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || errno || pn < 1 || pn > 65535)
		return addr_err(err, errlen, "'%s': port must be 1..65535", s);
	if (strcmp(host, "*") == 0)
		strcpy(host, family == AF_INET6 ? "::" : "0.0.0.0");

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family == AF_UNSPEC ? AF_INET : family;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		char esc[160], hesc[160];

		snprintf(err, errlen, "'%s': cannot resolve '%s': %s",
		    log_escape(esc, sizeof(esc), s, strlen(s)),
		    log_escape(hesc, sizeof(hesc), host, strlen(host)),
		    rc ? gai_strerror(rc) : "no address");
		return -1;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
addr_parse(struct addr *a, const char *s, char *err, size_t errlen)
{
	const char *p = s;

	memset(a, 0, sizeof(*a));
	snprintf(a->text, sizeof(a->text), "%s", s);
	if (strncmp(p, "master@", 7) == 0) {
		a->master = true;
		p += 7;
	}
	if (strncmp(p, "unix@", 5) == 0)
		return addr_unix(a, p + 5, s, err, errlen);
	if (strncmp(p, "unix:", 5) == 0)
		return addr_unix(a, p + 5, s, err, errlen);
	if (a->master)
		return addr_err(err, errlen, "'%s': the master CLI address is master@unix@PATH", s);
	if (strncmp(p, "ipv4@", 5) == 0)
		return addr_inet(a, AF_INET, p + 5, s, err, errlen);
	if (strncmp(p, "ipv6@", 5) == 0)
		return addr_inet(a, AF_INET6, p + 5, s, err, errlen);
	if (strncmp(p, "tcp:", 4) == 0)
		return addr_inet(a, AF_UNSPEC, p + 4, s, err, errlen);
	if (*p == '/')
		return addr_err(err, errlen, "'%s': write a unix socket as unix@PATH", s);
	return addr_inet(a, AF_UNSPEC, p, s, err, errlen);
}

bool
addr_is_unix(const struct addr *a)
{
	return a->ss.ss_family == AF_UNIX;
}

bool
addr_is_loopback(const struct addr *a)
{
	if (a->ss.ss_family == AF_UNIX)
		return true;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

unsigned
addr_port(const struct addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

int
addr_listen(const struct addr *a, int backlog, mode_t unix_mode)
{
	int fd, one = 1, saved;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (a->ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
		struct stat st;
		/* Replace a stale socket, never a regular file someone put there. */
		if (lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
			(void)unlink(sun->sun_path);
	} else {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (a->ss.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail;
	if (a->ss.ss_family == AF_UNIX &&
	    chmod(((const struct sockaddr_un *)&a->ss)->sun_path, unix_mode) < 0)
		goto fail;
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
addr_connect(const struct addr *a, bool nonblock)
{
	int fd, saved, one = 1;
	int flags = SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);

	fd = socket(a->ss.ss_family, flags, 0);
	if (fd < 0)
		return -1;
	if (a->ss.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    !(nonblock && errno == EINPROGRESS)) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
addr_accept(int lfd, enum addr_accept_stop *stop)
{
	int fd;

	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			return fd;
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EAGAIN:
#if EAGAIN != EWOULDBLOCK
		case EWOULDBLOCK:
#endif
			*stop = ADDR_ACCEPT_DRAINED;
			return -1;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			*stop = ADDR_ACCEPT_PAUSE;
			return -1;
		default:
			*stop = ADDR_ACCEPT_ERROR;
			return -1;
		}
	}
}
