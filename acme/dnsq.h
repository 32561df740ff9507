/* dnsq.h - one DNS exchange with one server, on the worker's libev loop:
 * UDP (tries spread over the timeout), then TCP when the reply is
 * truncated. No blocking call: the socket is non-blocking, the server an IP
 * address. */
#ifndef HACME_DNSQ_H
#define HACME_DNSQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ev_loop;
struct dnsq;

#define DNSQ_ADDR_MAX 64	/* "[v6]:port" */

struct dnsq_server {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[DNSQ_ADDR_MAX];	/* "127.0.0.1:53", "[::1]:53" for messages */
};

/* "IP", "IP:PORT", "[IPV6]:PORT" (default port 53). 0 or -1. */
int dnsq_server_parse(struct dnsq_server *s, const char *text, unsigned default_port);

/* cb gets err NULL and the reply (lives until cb returns), or err
 * ("timeout", "connection refused"...). The reply's id matched. */
typedef void dnsq_cb(void *arg, const char *err, const uint8_t *reply, size_t len);

/* Sends wire (its id is id) to server; NULL with errno when it could not
 * start (then no callback). timeout: seconds for the whole exchange. */
struct dnsq *dnsq_send(struct ev_loop *loop, const struct dnsq_server *server,
    const uint8_t *wire, size_t len, uint16_t id, double timeout, dnsq_cb *cb, void *arg);
/* Stops it; its callback does not run. NULL is a no-op. */
void dnsq_cancel(struct dnsq *q);

#endif
