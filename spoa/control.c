/* control.c - control protocol requests -> replies (see control.h). */
#include "spoa/control.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/ctl.h"
#include "common/token.h"

#define CONTROL_MAX_WORDS CTL_WORDS_MAX	/* more than any verb takes: usage errors */

static const char *const control_verbs[] = {
	"ADD", "DEL", "LIST", "STATS", "PING",
};

static int
control_reply(struct buf *out, const char *s)
{
	return buf_append(out, s, strlen(s));
}

struct control_list {
	struct buf *out;
	uint64_t now_ms;
	int failed;
};

static void
control_list_one(void *ctx, const struct tokens_view *v)
{
	struct control_list *l = ctx;
	char num[32];
	uint64_t left;
	int n;

	if (l->failed)
		return;
	left = (v->expires_ms - l->now_ms + 999) / 1000;
	n = snprintf(num, sizeof(num), " %" PRIu64, left);
	if (buf_append(l->out, v->token, v->token_len) < 0 ||
	    buf_append(l->out, " ", 1) < 0 ||
	    buf_append(l->out, v->keyauth, v->keyauth_len) < 0 ||
	    buf_append(l->out, num, (size_t)n) < 0 ||
	    (v->host_len > 0 && (buf_append(l->out, " ", 1) < 0 ||
	    buf_append(l->out, v->host, v->host_len) < 0)) ||
	    buf_append(l->out, "\n", 1) < 0)
		l->failed = 1;
}

static int
control_list(struct tokens *t, uint64_t now_ms, struct buf *out)
{
	struct control_list l = { out, now_ms, 0 };

	tokens_sweep(t, now_ms);
	tokens_foreach(t, now_ms, control_list_one, &l);
	if (l.failed)
		return -1;
	return control_reply(out, "END\n");
}

static int
control_stats(struct tokens *t, const struct control_stats *st,
    uint64_t now_ms, struct buf *out)
{
	char b[1024];
	int n;

	tokens_sweep(t, now_ms);
	n = snprintf(b, sizeof(b),
	    "tokens %zu\n"
	    "max_tokens %zu\n"
	    "connections_total %" PRIu64 "\n"
	    "connections_active %" PRIu64 "\n"
	    "notifies %" PRIu64 "\n"
	    "hits %" PRIu64 "\n"
	    "misses %" PRIu64 "\n"
	    "invalid %" PRIu64 "\n"
	    "protocol_errors %" PRIu64 "\n"
	    "closed_max_connections %" PRIu64 "\n"
	    "closed_hello_timeout %" PRIu64 "\n"
	    "closed_idle_timeout %" PRIu64 "\n"
	    "closed_buffer_memory %" PRIu64 "\n"
	    "buffer_bytes %" PRIu64 "\n"
	    "END\n",
	    tokens_count(t), tokens_max(t),
	    st->connections_total, st->connections_active,
	    st->spop.notifies, st->hits, st->misses, st->invalid,
	    st->spop.protocol_errors, st->closed_cap, st->closed_hello,
	    st->closed_idle, st->closed_budget, st->buffer_bytes);
	return buf_append(out, b, (size_t)n);
}

/* ttl: 1..CONTROL_TTL_MAX decimal seconds. NULL when fine, else the reply. */
static const char *
control_ttl(const struct ctl_word *w, uint64_t *ttl)
{
	uint64_t v = 0;

	if (w->n == 0 || w->n > 10)
		return w->n ? "ERR ttl out of range (1..86400)\n" : "ERR bad ttl\n";
	for (size_t i = 0; i < w->n; i++) {
		if (w->p[i] < '0' || w->p[i] > '9')
			return "ERR bad ttl (seconds, 1..86400)\n";
		v = v * 10 + (uint64_t)(w->p[i] - '0');
	}
	if (v < 1 || v > CONTROL_TTL_MAX)
		return "ERR ttl out of range (1..86400)\n";
	*ttl = v;
	return NULL;
}

static int
control_add(struct tokens *t, const struct ctl_word *w, size_t nw,
    uint64_t now_ms, struct buf *out)
{
	const char *err;
	uint64_t ttl = 0;

	if (nw < 4 || nw > 5)
		return control_reply(out,
		    "ERR usage: ADD <token> <key-authorization> <ttl-seconds> [<host>]\n");
	if (!token_valid(w[1].p, w[1].n))
		return control_reply(out, "ERR bad token (base64url, 1..128 characters)\n");
	if (!keyauth_valid(w[1].p, w[1].n, w[2].p, w[2].n))
		return control_reply(out,
		    "ERR bad key authorization (want <token>.<base64url thumbprint>)\n");
	if ((err = control_ttl(&w[3], &ttl)) != NULL)
		return control_reply(out, err);
	if (nw == 5 && !tokens_host_valid(w[4].p, w[4].n))
		return control_reply(out, "ERR bad host (a DNS name or an IP address, at most 253 characters)\n");
	switch (tokens_add(t, w[1].p, w[1].n, w[2].p, w[2].n,
	    nw == 5 ? w[4].p : NULL, nw == 5 ? w[4].n : 0,
	    now_ms + ttl * 1000, now_ms)) {
	case TOKENS_OK:
		return control_reply(out, "OK\n");
	case TOKENS_FULL:
		return control_reply(out, "ERR table full\n");
	case TOKENS_NOMEM:
		return control_reply(out, "ERR out of memory\n");
	case TOKENS_INVAL:
	default:
		return control_reply(out, "ERR bad token, key authorization or host\n");
	}
}

static int
control_dispatch(struct tokens *t, const struct control_stats *st,
    uint64_t now_ms, const struct ctl_word *w, size_t nw, struct buf *out)
{
	if (ctl_word_is(&w[0], "ADD"))
		return control_add(t, w, nw, now_ms, out);
	if (ctl_word_is(&w[0], "DEL")) {
		if (nw != 2)
			return control_reply(out, "ERR usage: DEL <token>\n");
		if (!token_valid(w[1].p, w[1].n))
			return control_reply(out, "ERR bad token (base64url, 1..128 characters)\n");
		(void)tokens_del(t, w[1].p, w[1].n);
		return control_reply(out, "OK\n");
	}
	if (ctl_word_is(&w[0], "LIST"))
		return nw != 1 ? control_reply(out, "ERR usage: LIST\n") :
		    control_list(t, now_ms, out);
	if (ctl_word_is(&w[0], "STATS"))
		return nw != 1 ? control_reply(out, "ERR usage: STATS\n") :
		    control_stats(t, st, now_ms, out);
	if (ctl_word_is(&w[0], "PING"))
		return nw != 1 ? control_reply(out, "ERR usage: PING\n") :
		    control_reply(out, "PONG\n");
	for (size_t i = 0; i < sizeof(control_verbs) / sizeof(control_verbs[0]); i++) {
		if (w[0].n == strlen(control_verbs[i]) &&
		    strncasecmp(w[0].p, control_verbs[i], w[0].n) == 0)
			return control_reply(out, "ERR verbs are upper-case\n");
	}
	return control_reply(out, "ERR unknown verb (ADD DEL LIST STATS PING)\n");
}

int
control_line(struct tokens *t, const struct control_stats *st,
    uint64_t now_ms, const char *line, size_t n, struct buf *out)
{
	struct ctl_word w[CONTROL_MAX_WORDS];
	size_t nw, start = out->len;
	int rc;

	if (n > 0 && line[n - 1] == '\r')
		n--;
	nw = ctl_split(line, n, w, CONTROL_MAX_WORDS);
	if (nw == 0)
		rc = control_reply(out, "ERR empty line\n");
	else if (nw > CONTROL_MAX_WORDS)
		rc = control_reply(out, "ERR too many words\n");
	else
		rc = control_dispatch(t, st, now_ms, w, nw, out);
	if (rc < 0) {
		/* Never half a reply: the client would lose its place. */
		out->len = start;
		(void)control_reply(out, "ERR reply too large\n");
		return -1;
	}
	return 0;
}

enum control_rc
control_feed(struct tokens *t, const struct control_stats *st,
    uint64_t now_ms, const uint8_t *in, size_t n, struct buf *out,
    size_t out_high, size_t *consumed)
{
	size_t off = 0, len, used;

	*consumed = 0;
	while (off < n && out->len <= out_high) {
		switch (ctl_line(in + off, n - off, &len, &used)) {
		case CTL_NEED_MORE:
			*consumed = off;
			return CONTROL_OK;
		case CTL_TOO_LONG:
			(void)control_reply(out, "ERR line too long\n");
			*consumed = n;
			return CONTROL_CLOSE;
		case CTL_OK:
			break;
		}
		(void)control_line(t, st, now_ms, (const char *)in + off, len, out);
		off += used;
	}
	*consumed = off;
	return CONTROL_OK;
}
