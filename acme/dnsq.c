/* dnsq.c - one DNS exchange on libev: UDP, TCP on truncation. */
#include "acme/dnsq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "acme/dnsmsg.h"

#define UDP_TRIES 3

struct dnsq {
	struct ev_loop *loop;
	struct dnsq_server srv;
	uint8_t *wire;			/* for TCP: 2-byte length first */
	size_t len;
	uint16_t id;
	int fd;
	bool tcp;
	unsigned tries;
	double timeout;
	ev_io io;
	ev_timer try_timer, deadline;
	size_t sent;			/* TCP bytes written */
	uint8_t *rbuf;
	size_t rlen, rcap;
	dnsq_cb *cb;
	void *arg;
};

int
dnsq_server_parse(struct dnsq_server *s, const char *text, unsigned default_port)
{
	char host[DNSQ_ADDR_MAX];
	const char *port = NULL;
	unsigned long p = default_port;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&s->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&s->ss;

	memset(s, 0, sizeof *s);
	if (strlen(text) >= sizeof host)
		return -1;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL)
			return -1;
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
	} else {
		const char *colon = strchr(text, ':');
		snprintf(host, sizeof host, "%s", text);
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			host[colon - text] = '\0';
			port = colon + 1;
		}
	}
	if (port != NULL) {
		char *end;
		p = strtoul(port, &end, 10);
		if (*port == '\0' || *end != '\0' || p == 0 || p > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		s->len = sizeof *v4;
		snprintf(s->text, sizeof s->text, "%s:%lu", host, p);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		s->len = sizeof *v6;
		snprintf(s->text, sizeof s->text, "[%s]:%lu", host, p);
	} else {
		return -1;
	}
	return 0;
}

static void
q_close(struct dnsq *q)
{
	ev_io_stop(q->loop, &q->io);
	ev_timer_stop(q->loop, &q->try_timer);
	ev_timer_stop(q->loop, &q->deadline);
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

void
dnsq_cancel(struct dnsq *q)
{
	if (q == NULL)
		return;
	q_close(q);
	free(q->wire);
	free(q->rbuf);
	free(q);
}

static void
q_finish(struct dnsq *q, const char *err, const uint8_t *reply, size_t len)
{
	dnsq_cb *cb = q->cb;
	void *arg = q->arg;

	q_close(q);
	cb(arg, err, reply, len);
	dnsq_cancel(q);
}

static int
q_socket(struct dnsq *q, int type)
{
	int fd = socket(q->srv.ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&q->srv.ss, q->srv.len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void tcp_start(struct dnsq *q);

static void
udp_readable(struct dnsq *q)
{
	uint8_t buf[DNSMSG_UDP_MAX + 512];
	ssize_t n;

	for (;;) {
		n = recv(q->fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			if (errno == ECONNREFUSED) {
				q_finish(q, "connection refused (nothing listens)", NULL, 0);
				return;
			}
			q_finish(q, strerror(errno), NULL, 0);
			return;
		}
		/* a reply to another id (a late one) is ignored */
		if (n < 12 || (uint16_t)(buf[0] << 8 | buf[1]) != q->id)
			continue;
		if (buf[2] & 0x02) {	/* TC: again over TCP */
			tcp_start(q);
			return;
		}
		q_finish(q, NULL, buf, (size_t)n);
		return;
	}
}

static void
udp_send(struct dnsq *q)
{
	if (send(q->fd, q->wire + 2, q->len - 2, 0) < 0 && errno != EAGAIN) {
		q_finish(q, errno == ECONNREFUSED ? "connection refused (nothing listens)" :
		    strerror(errno), NULL, 0);
		return;
	}
	q->tries++;
	ev_timer_set(&q->try_timer, q->timeout / UDP_TRIES, 0.);
	ev_timer_start(q->loop, &q->try_timer);
}

static void
tcp_io(struct dnsq *q, int revents)
{
	ssize_t n;

	if ((revents & EV_WRITE) && q->sent < q->len) {
		n = send(q->fd, q->wire + q->sent, q->len - q->sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			q_finish(q, errno == ECONNREFUSED ? "connection refused (nothing "
			    "listens)" : strerror(errno), NULL, 0);
			return;
		}
		if (n > 0)
			q->sent += (size_t)n;
		if (q->sent == q->len) {
			ev_io_stop(q->loop, &q->io);
			ev_io_set(&q->io, q->fd, EV_READ);
			ev_io_start(q->loop, &q->io);
		}
		return;
	}
	if (!(revents & EV_READ))
		return;
	if (q->rbuf == NULL) {
		q->rcap = 2 + DNSMSG_MAX;
		if ((q->rbuf = malloc(q->rcap)) == NULL) {
			q_finish(q, "out of memory", NULL, 0);
			return;
		}
	}
	n = recv(q->fd, q->rbuf + q->rlen, q->rcap - q->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		q_finish(q, n == 0 ? "the server closed the TCP connection" : strerror(errno),
		    NULL, 0);
		return;
	}
	q->rlen += (size_t)n;
	if (q->rlen >= 2) {
		size_t want = (size_t)(q->rbuf[0] << 8 | q->rbuf[1]);
		if (q->rlen >= 2 + want) {
			if (want < 12 || (uint16_t)(q->rbuf[2] << 8 | q->rbuf[3]) != q->id)
				q_finish(q, "the TCP reply is not for our query", NULL, 0);
			else
				q_finish(q, NULL, q->rbuf + 2, want);
		}
	}
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct dnsq *q = w->data;

	if (q->tcp)
		tcp_io(q, revents);
	else
		udp_readable(q);
}

static void
try_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct dnsq *q = w->data;

	if (q->tcp && q->fd < 0)
		tcp_start(q);
	else if (!q->tcp && q->tries < UDP_TRIES)
		udp_send(q);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct dnsq *q = w->data;
	char err[96];

	snprintf(err, sizeof err, "no answer in %.0f s%s", q->timeout, q->tcp ? " (TCP)" : "");
	q_finish(q, err, NULL, 0);
}

static void
tcp_start(struct dnsq *q)
{
	q_close(q);
	q->tcp = true;
	if ((q->fd = q_socket(q, SOCK_STREAM)) < 0) {
		q_finish(q, strerror(errno), NULL, 0);
		return;
	}
	q->sent = 0;
	ev_io_set(&q->io, q->fd, EV_WRITE);
	ev_io_start(q->loop, &q->io);
	ev_timer_set(&q->deadline, q->timeout, 0.);
	ev_timer_start(q->loop, &q->deadline);
}

struct dnsq *
dnsq_send(struct ev_loop *loop, const struct dnsq_server *server, const uint8_t *wire,
    size_t len, uint16_t id, double timeout, dnsq_cb *cb, void *arg)
{
	struct dnsq *q;

	if (len < 12 || len > DNSMSG_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((q = calloc(1, sizeof *q)) == NULL || (q->wire = malloc(len + 2)) == NULL) {
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	q->loop = loop;
	q->fd = -1;
	q->srv = *server;
	q->wire[0] = (uint8_t)(len >> 8);
	q->wire[1] = (uint8_t)len;
	memcpy(q->wire + 2, wire, len);
	q->len = len + 2;
	q->id = id;
	q->timeout = timeout > 0 ? timeout : 5.0;
	q->cb = cb;
	q->arg = arg;
	ev_init(&q->io, io_cb);
	q->io.data = q;
	ev_init(&q->try_timer, try_cb);
	q->try_timer.data = q;
	ev_init(&q->deadline, deadline_cb);
	q->deadline.data = q;
	ev_timer_set(&q->deadline, q->timeout, 0.);
	ev_timer_start(loop, &q->deadline);
	/* the first send from the loop: a failure is a callback, never inside this call */
	ev_timer_set(&q->try_timer, 0., 0.);
	ev_timer_start(loop, &q->try_timer);
	/* a message too big for UDP goes over TCP at once */
	if (len > 512) {
		q->fd = -1;
		q->tcp = true;
		return q;
	}
	if ((q->fd = q_socket(q, SOCK_DGRAM)) < 0) {
		int e = errno;
		q_close(q);
		free(q->wire);
		free(q);
		errno = e;
		return NULL;
	}
	ev_io_set(&q->io, q->fd, EV_READ);
	ev_io_start(loop, &q->io);
	return q;
}
