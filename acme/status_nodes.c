/* status_nodes.c - `hacme status --nodes`: the cluster's nodes from their
 * heartbeats in the store (acme/cluster.h), and what each one's HAProxy
 * serves as that node last checked. A short synchronous hiredis session:
 * the master from the sentinels when sentinel://, AUTH, SELECT, then
 * SMEMBERS hacme:nodes and GET/PTTL of each heartbeat. */
#include "acme/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "acme/cluster.h"
#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/storeurl.h"
#include "common/atomicfile.h"

#define TIMEOUT_MS 3000

static redisContext *
open_at(const char *host, int port)
{
	struct timeval tv = { TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000 };
	redisContext *c = redisConnectWithTimeout(host, port, tv);

	if (c != NULL && c->err == 0)
		redisSetTimeout(c, tv);
	return c;
}

/* The master's connection, authenticated, or NULL with err. */
static redisContext *
connect_store(const struct config *cfg, char *err, size_t errlen)
{
	struct storeurl u;
	char why[CONFIG_ERR_MAX], host[STOREURL_HOST_MAX + 1], *pw = NULL;
	int port = 0;
	size_t pwlen = 0;
	redisContext *c = NULL;
	redisReply *r;

	if (storeurl_parse(cfg->store, &u, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s", why);
		return NULL;
	}
	snprintf(host, sizeof host, "%s", u.hosts[0].host);
	port = u.hosts[0].port;
	for (size_t i = 0; u.sentinel && i < u.nhosts; i++) {
		redisContext *s = open_at(u.hosts[i].host, u.hosts[i].port);
		r = s != NULL && s->err == 0 ? redisCommand(s, "SENTINEL get-master-addr-by-name %s",
		    u.master) : NULL;
		bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2;
		if (ok) {
			snprintf(host, sizeof host, "%s", r->element[0]->str);
			port = atoi(r->element[1]->str);
		}
		freeReplyObject(r);
		if (s != NULL)
			redisFree(s);
		if (ok)
			break;
		port = 0;
	}
	if (port == 0) {
		snprintf(err, errlen, "store: no sentinel knows master '%s'", u.master);
		goto out;
	}
	c = open_at(host, port);
	if (c == NULL || c->err) {
		snprintf(err, errlen, "store %s:%d: %s", host, port, c ? c->errstr : "out of memory");
		goto fail;
	}
	if (cfg->store_password_file != NULL) {
		if (file_read(cfg->store_password_file, 4096, &pw, &pwlen) < 0) {
			snprintf(err, errlen, "store-password-file %s: %s", cfg->store_password_file,
			    strerror(errno));
			goto fail;
		}
		pw[strcspn(pw, "\r\n")] = '\0';
		snprintf(u.password, sizeof u.password, "%s", pw);
	}
	if (u.password[0] != '\0') {
		r = u.user[0] ? redisCommand(c, "AUTH %s %s", u.user, u.password) :
		    redisCommand(c, "AUTH %s", u.password);
		bool bad = r == NULL || r->type == REDIS_REPLY_ERROR;
		freeReplyObject(r);
		if (bad) {
			snprintf(err, errlen, "store %s:%d refused the password: check "
			    "store-password-file%s%s", host, port, cfg->store_password_file ? " " : "",
			    cfg->store_password_file ? cfg->store_password_file : "");
			goto fail;
		}
	}
	if (!u.sentinel && u.db != 0) {
		r = redisCommand(c, "SELECT %d", u.db);
		freeReplyObject(r);
	}
	goto out;
fail:
	if (c != NULL)
		redisFree(c);
	c = NULL;
out:
	if (pw != NULL)
		crypto_wipe_free(pw, pwlen);
	crypto_wipe(&u, sizeof u);
	return c;
}

int
status_nodes_main(struct config *cfg, bool json, FILE *out)
{
	char err[CONFIG_ERR_MAX];
	redisContext *c;
	redisReply *names;
	cJSON *arr = cJSON_CreateArray();
	int rc = 0;

	if (cfg->store == NULL) {
		fprintf(stderr, "hacme: status --nodes: no `store` in the global section "
		    "(cluster mode is off)\n");
		cJSON_Delete(arr);
		return 1;
	}
	if ((c = connect_store(cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "hacme: %s\n", err);
		cJSON_Delete(arr);
		return 2;
	}
	names = redisCommand(c, "SMEMBERS hacme:nodes");
	if (!json)
		fprintf(out, "%-20s %-6s %-10s %-9s %s\n", "NODE", "STATE", "HEARTBEAT", "KEY-ID",
		    "SERVES");
	for (size_t i = 0; names != NULL && names->type == REDIS_REPLY_ARRAY &&
	    i < names->elements; i++) {
		const char *n = names->element[i]->str;
		redisReply *v = redisCommand(c, "GET hacme:node:%s", n);
		cJSON *hb = v != NULL && v->type == REDIS_REPLY_STRING ? cJSON_Parse(v->str) : NULL;
		const cJSON *tm = cJSON_GetObjectItemCaseSensitive(hb, "time");
		const cJSON *kid = cJSON_GetObjectItemCaseSensitive(hb, "key_id");
		const cJSON *sv = cJSON_GetObjectItemCaseSensitive(hb, "serves"), *e;
		bool live = hb != NULL;
		double age = cJSON_IsNumber(tm) ? (double)time(NULL) - tm->valuedouble : -1;
		char serves[1024] = "";
		size_t len = 0, nok = 0, nall = 0;
		cJSON_ArrayForEach(e, sv) {
			const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
			const cJSON *ok = cJSON_GetObjectItemCaseSensitive(e, "ok");
			const cJSON *se = cJSON_GetObjectItemCaseSensitive(e, "serial");
			nall++;
			if (cJSON_IsTrue(ok))
				nok++;
			if (cJSON_IsString(nm) && len < sizeof serves - 80)
				len += (size_t)snprintf(serves + len, sizeof serves - len, "%s%s:%s%s",
				    len ? " " : "", nm->valuestring,
				    cJSON_IsString(se) ? se->valuestring : "-", cJSON_IsTrue(ok) ? "" : "!");
		}
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "node", n);
			cJSON_AddBoolToObject(o, "live", live);
			if (age >= 0)
				cJSON_AddNumberToObject(o, "heartbeat_age", age);
			if (cJSON_IsString(kid))
				cJSON_AddStringToObject(o, "key_id", kid->valuestring);
			cJSON_AddItemToObject(o, "serves", sv != NULL ? cJSON_Duplicate(sv, 1) :
			    cJSON_CreateArray());
			cJSON_AddItemToArray(arr, o);
		} else {
			char hbuf[32] = "-";
			if (age >= 0)
				snprintf(hbuf, sizeof hbuf, "%.0f s ago", age);
			fprintf(out, "%-20s %-6s %-10s %-9s %zu/%zu ok %s\n", n, live ? "live" : "gone",
			    hbuf, cJSON_IsString(kid) ? kid->valuestring : "-", nok, nall, serves);
		}
		cJSON_Delete(hb);
		freeReplyObject(v);
	}
	if (names == NULL) {
		fprintf(stderr, "hacme: store: %s\n", c->errstr);
		rc = 2;
	}
	if (json) {
		char *text = cJSON_Print(arr);
		if (text != NULL)
			fprintf(out, "%s\n", text);
		free(text);
	}
	freeReplyObject(names);
	cJSON_Delete(arr);
	redisFree(c);
	return rc;
}
