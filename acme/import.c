/* import.c - `hacme import certbot`: see import.h. */
#include "acme/import.h"

#include <dirent.h>
#include <ftw.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "acme/crypto.h"
#include "acme/hfiles.h"
#include "acme/jws.h"
#include "acme/serialfmt.h"
#include "acme/store.h"
#include "acme/worker.h"
#include "common/atomicfile.h"
#include "common/b64url.h"
#include "common/buf.h"

#define IM_FILE_MAX (256 * 1024)
#define IM_MAX 1000		/* lineages */

struct im_lineage {
	char *name;
	char *ca;		/* ca section name */
	bool new_ca;		/* ca section written by this import */
	char *server;
	char **names;
	size_t nnames;
	enum keytype key;
	char *serial;
	time_t not_after;
	bool stored;		/* certificate and key in the state dir */
};

/* ---- certbot's INI files ---- */

/* The value of key in [section] ("" for the lines before any section),
 * heap, or NULL. certbot writes `key = value`. */
static char *
ini_get(const char *text, const char *section, const char *key)
{
	const char *p = text, *eol;
	char cur[128] = "";
	size_t kl = strlen(key);

	for (; *p != '\0'; p = *eol ? eol + 1 : eol) {
		const char *s = p, *e;
		if ((eol = strchr(p, '\n')) == NULL)
			eol = p + strlen(p);
		while (s < eol && (*s == ' ' || *s == '\t'))
			s++;
		e = eol;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (s < e && *s == '[' && e[-1] == ']') {
			snprintf(cur, sizeof(cur), "%.*s", (int)(e - s - 2), s + 1);
			continue;
		}
		if (strcmp(cur, section) != 0 || (size_t)(e - s) <= kl ||
		    strncmp(s, key, kl) != 0)
			continue;
		const char *v = s + kl;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		if (v >= e || *v != '=')
			continue;
		v++;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		return strndup(v, (size_t)(e - v));
	}
	return NULL;
}

static char *
read_text(const char *path, size_t *len)
{
	char *t = NULL;
	size_t l = 0;

	if (file_read(path, IM_FILE_MAX, &t, &l) < 0)
		return NULL;
	if (len != NULL)
		*len = l;
	return t;
}

/* path if it exists, else DIR/live/NAME/file (a copied config dir keeps
 * the original absolute paths). Heap. */
static char *
lineage_file(const char *conf_value, const char *dir, const char *name, const char *file)
{
	char *p = NULL;

	if (conf_value != NULL && access(conf_value, R_OK) == 0)
		return strdup(conf_value);
	if (asprintf(&p, "%s/live/%s/%s", dir, name, file) < 0)
		return NULL;
	return p;
}

/* ---- certbot's account: a JWK (RSA) ---- */

static BIGNUM *
jwk_bn(const cJSON *jwk, const char *member)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(jwk, member);
	uint8_t buf[1024];
	long n;

	if (!cJSON_IsString(v) || (n = b64url_decode(buf, sizeof(buf), v->valuestring,
	    strlen(v->valuestring))) <= 0)
		return NULL;
	return BN_bin2bn(buf, (int)n, NULL);
}

/* The private key of certbot's private_key.json as PEM (heap), or NULL. */
static char *
jwk_rsa_pem(const char *json, size_t *pemlen)
{
	static const char *const mem[] = { "n", "e", "d", "p", "q", "dp", "dq", "qi" };
	static const char *const par[] = {
		OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_D,
		OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
		OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
		OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
	};
	BIGNUM *bn[8] = { 0 };
	cJSON *jwk = cJSON_Parse(json);
	const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *pem = NULL, *data;
	long n;

	if (!cJSON_IsString(kty) || strcmp(kty->valuestring, "RSA") != 0)
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	for (size_t i = 0; i < 8; i++)
		if ((bn[i] = jwk_bn(jwk, mem[i])) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, par[i], bn[i]))
			goto out;
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0)
		goto out;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0 || (pem = malloc((size_t)n + 1)) == NULL)
		goto out;
	memcpy(pem, data, (size_t)n);
	pem[n] = '\0';
	*pemlen = (size_t)n;
out:
	for (size_t i = 0; i < 8; i++)
		BN_clear_free(bn[i]);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	cJSON_Delete(jwk);
	return pem;
}

/* accounts/<host[:port]>/<path>/<id>/ of a server URL, heap. */
static char *
account_dir(const char *dir, const char *server, const char *id)
{
	const char *p = strstr(server, "://");
	char *r = NULL;

	p = p != NULL ? p + 3 : server;
	if (asprintf(&r, "%s/accounts/%s/%s", dir, p, id) < 0)
		return NULL;
	return r;
}

/* certbot's account for lineage l into account/<ca>/ when hacme has none
 * for that CA. Prints what it did. */
static void
import_account(struct store *st, const char *dir, const struct im_lineage *l,
    const char *id)
{
	char *adir = NULL, *path = NULL, *json = NULL, *pem = NULL, *regr = NULL;
	char err[STORE_ERR_MAX], cerr[CRYPTO_ERR_MAX], tp[JWS_THUMBPRINT_LEN + 1];
	size_t len = 0, pemlen = 0;
	struct crypto_key *k = NULL;
	char *have = NULL;
	size_t havelen = 0;
	cJSON *r = NULL;

	if (store_account_key_load(st, l->ca, &have, &havelen, err, sizeof(err)) == 0) {
		crypto_wipe_free(have, havelen);
		goto out;	/* hacme has its own account there: keep it */
	}
	if (id == NULL || (adir = account_dir(dir, l->server, id)) == NULL)
		goto none;
	if (asprintf(&path, "%s/private_key.json", adir) < 0) {
		path = NULL;
		goto none;
	}
	if ((json = read_text(path, &len)) == NULL || (pem = jwk_rsa_pem(json, &pemlen)) == NULL ||
	    (k = crypto_key_from_pem(pem, pemlen, cerr, sizeof(cerr))) == NULL)
		goto none;
	if (store_account_key_save(st, l->ca, pem, pemlen, err, sizeof(err)) < 0) {
		printf("ca %s: could not keep certbot's account key: %s\n", l->ca, err);
		goto out;
	}
	free(path);
	if (asprintf(&path, "%s/regr.json", adir) >= 0 && (regr = read_text(path, NULL)) != NULL &&
	    (r = cJSON_Parse(regr)) != NULL && jws_thumbprint(k, tp) == 0) {
		const cJSON *uri = cJSON_GetObjectItemCaseSensitive(r, "uri");
		struct store_account sa = {
			.url = cJSON_IsString(uri) ? uri->valuestring : NULL,
			.directory = l->server,
			.key_type = (char *)keytype_name(crypto_key_type(k)),
			.thumbprint = tp,
			.created = time(NULL),
		};
		if (sa.url != NULL)
			(void)store_account_save(st, l->ca, &sa, err, sizeof(err));
	}
	printf("ca %s: certbot's account %s imported (the same account orders from now on)\n",
	    l->ca, id);
	goto out;
none:
	printf("ca %s: certbot's account could not be read (%s): hacme registers its own "
	    "account at the first order\n", l->ca, path != NULL ? path : "no account id");
out:
	crypto_key_free(k);
	if (pem != NULL)
		crypto_wipe_free(pem, pemlen);
	if (json != NULL)
		crypto_wipe_free(json, len);
	cJSON_Delete(r);
	free(regr);
	free(path);
	free(adir);
}

/* ---- ca sections ---- */

/* A ca section name for a directory URL: letsencrypt[-staging], else the
 * host with dots as dashes. Unique among cfg's and the new ones. */
static char *
ca_name_for(const struct config *cfg, struct im_lineage *ls, size_t n, const char *server)
{
	const char *h = strstr(server, "://");
	char base[64], *name = NULL;
	size_t o = 0;

	h = h != NULL ? h + 3 : server;
	if (strstr(h, "letsencrypt.org") != NULL)
		snprintf(base, sizeof(base), "%s", strstr(h, "staging") ? "letsencrypt-staging" :
		    "letsencrypt");
	else {
		for (; *h != '\0' && *h != '/' && o + 1 < sizeof(base); h++)
			base[o++] = (*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
			    (*h >= '0' && *h <= '9') || *h == '-' ? *h : '-';
		base[o] = '\0';
		if (o == 0)
			snprintf(base, sizeof(base), "certbot");
	}
	for (int i = 1; i < 100; i++) {
		bool taken;
		free(name);
		if ((i == 1 ? asprintf(&name, "%s", base) : asprintf(&name, "%s-%d", base, i)) < 0)
			return NULL;
		taken = config_find_ca(cfg, name) != NULL;
		for (size_t k = 0; k < n && !taken; k++)
			taken = ls[k].new_ca && strcmp(ls[k].ca, name) == 0 &&
			    strcmp(ls[k].server, server) != 0;
		if (!taken)
			return name;
	}
	free(name);
	return NULL;
}

static const char *
ca_for(const struct config *cfg, struct im_lineage *ls, size_t n, const char *server,
    bool *is_new)
{
	*is_new = false;
	for (size_t i = 0; i < cfg->ncas; i++)
		if (strcmp(cfg->cas[i].directory, server) == 0)
			return cfg->cas[i].name;
	for (size_t k = 0; k < n; k++)
		if (ls[k].new_ca && strcmp(ls[k].server, server) == 0)
			return ls[k].ca;
	*is_new = true;
	return NULL;
}

/* ---- one lineage ---- */

static void
lineage_free(struct im_lineage *l)
{
	free(l->name);
	free(l->ca);
	free(l->server);
	for (size_t i = 0; i < l->nnames; i++)
		free(l->names[i]);
	free(l->names);
	free(l->serial);
	memset(l, 0, sizeof(*l));
}

/* Reads DIR/renewal/<file> into l and stores its certificate. -1: skipped
 * (printed why). */
static int
lineage_import(const struct config *cfg, struct store *st, const char *dir, const char *file,
    struct im_lineage *ls, size_t n, struct im_lineage *l)
{
	char *conf = NULL, *fc = NULL, *pk = NULL, *fcp = NULL, *pkp = NULL, *id = NULL;
	char *chain = NULL, *key = NULL, *path = NULL, *auth = NULL;
	char cerr[CRYPTO_ERR_MAX], err[STORE_ERR_MAX], until[32];
	size_t chainlen = 0, keylen = 0, nl = strlen(file) - 5;
	struct crypto_cert_info ci = { 0 };
	struct crypto_chain ch = { 0 };
	struct crypto_key *k = NULL;
	struct store_cert old = { 0 };
	int rc = -1;
	bool is_new;

	memset(l, 0, sizeof(*l));
	l->name = strndup(file, nl);
	if (l->name == NULL || !config_section_name_valid(l->name)) {
		printf("%.*s: not a name hacme can use for a cert section: skipped\n", (int)nl, file);
		goto out;
	}
	if (config_find_cert(cfg, l->name) != NULL) {
		printf("%s: a cert section of that name exists: skipped\n", l->name);
		goto out;
	}
	if (asprintf(&path, "%s/renewal/%s", dir, file) < 0 || (conf = read_text(path, NULL)) == NULL) {
		printf("%s: %s: %s: skipped\n", l->name, path ? path : file, strerror(errno));
		goto out;
	}
	l->server = ini_get(conf, "renewalparams", "server");
	auth = ini_get(conf, "renewalparams", "authenticator");
	id = ini_get(conf, "renewalparams", "account");
	fc = ini_get(conf, "", "fullchain");
	pk = ini_get(conf, "", "privkey");
	if (l->server == NULL) {
		printf("%s: %s has no `server` in [renewalparams]: skipped\n", l->name, path);
		goto out;
	}
	fcp = lineage_file(fc, dir, l->name, "fullchain.pem");
	pkp = lineage_file(pk, dir, l->name, "privkey.pem");
	if (fcp == NULL || pkp == NULL || (chain = read_text(fcp, &chainlen)) == NULL ||
	    (key = read_text(pkp, &keylen)) == NULL) {
		printf("%s: %s: %s: skipped\n", l->name, chain == NULL ? fcp : pkp, strerror(errno));
		goto out;
	}
	if ((k = crypto_key_from_pem(key, keylen, cerr, sizeof(cerr))) == NULL ||
	    crypto_chain_parse(&ch, chain, chainlen, cerr, sizeof(cerr)) < 0 ||
	    crypto_cert_info(ch.pem[0], strlen(ch.pem[0]), &ci, cerr, sizeof(cerr)) < 0) {
		printf("%s: %s: skipped\n", l->name, cerr);
		goto out;
	}
	if (!crypto_cert_matches_key(ch.pem[0], strlen(ch.pem[0]), k)) {
		printf("%s: %s is not the key of %s: skipped\n", l->name, pkp, fcp);
		goto out;
	}
	if ((l->key = crypto_key_type(k)) == KEYTYPE_NONE) {
		printf("%s: a key type hacme does not order: skipped\n", l->name);
		goto out;
	}
	if (ci.nnames == 0 || (l->names = calloc(ci.nnames, sizeof(*l->names))) == NULL)
		goto out;
	for (size_t i = 0; i < ci.nnames; i++) {
		if (ci.names[i][0] == '*') {
			printf("%s: %s is a wildcard: hacme needs `challenge dns-01` for it; add the "
			    "section by hand: skipped\n", l->name, ci.names[i]);
			goto out;
		}
		if ((l->names[l->nnames++] = strdup(ci.names[i])) == NULL)
			goto out;
	}
	if (auth != NULL && strcmp(auth, "standalone") != 0 && strcmp(auth, "webroot") != 0)
		printf("%s: certbot validated it with `%s`; hacme answers http-01 through "
		    "HAProxy\n", l->name, auth);
	if ((l->ca = (char *)ca_for(cfg, ls, n, l->server, &is_new)) != NULL)
		l->ca = strdup(l->ca);
	else if ((l->ca = ca_name_for(cfg, ls, n, l->server)) != NULL)
		l->new_ca = true;
	if (l->ca == NULL || (l->serial = strdup(ci.serial)) == NULL)
		goto out;
	l->not_after = ci.not_after;
	fmt_time(ci.not_after, until, sizeof(until));
	if (ci.not_after <= time(NULL)) {
		printf("%s: expired %s: not imported; `hacme run` orders a new one\n", l->name, until);
		rc = 0;
		goto out;
	}
	if (store_cert_load(st, l->name, NULL, &old, err, sizeof(err)) == 0 &&
	    old.meta.not_after >= ci.not_after) {
		printf("%s: the state dir holds a certificate as new (serial %s): kept\n", l->name,
		    old.meta.serial ? serial_show(old.meta.serial) : "?");
		l->stored = true;
		rc = 0;
		goto out;
	}
	struct store_meta m = {
		.names = l->names, .nnames = l->nnames,
		.key_type = (char *)keytype_name(l->key),
		.serial = ci.serial, .not_before = ci.not_before, .not_after = ci.not_after,
		.issuer = ci.issuer_cn, .ca = l->ca, .directory = l->server,
		.ari_id = ci.ari_id, .issued = time(NULL),
	};
	if (store_cert_save(st, l->name, NULL, &m, key, keylen, chain, chainlen, err,
	    sizeof(err)) < 0) {
		printf("%s: %s: skipped\n", l->name, err);
		goto out;
	}
	l->stored = true;
	printf("%s: imported %s %s, serial %s, valid until %s\n", l->name, keytype_name(l->key),
	    l->names[0], serial_show(ci.serial), until);
	import_account(st, dir, l, id);
	rc = 0;
out:
	if (key != NULL)
		crypto_wipe_free(key, keylen);
	crypto_key_free(k);
	crypto_chain_free(&ch);
	crypto_cert_info_free(&ci);
	store_cert_free(&old);
	free(conf);
	free(fc);
	free(pk);
	free(fcp);
	free(pkp);
	free(id);
	free(auth);
	free(chain);
	free(path);
	return rc;
}

/* ---- the config ---- */

static void __attribute__((format(printf, 2, 3)))
buf_printf(struct buf *b, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		(void)buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* The sections to append, as text (heap). */
static char *
sections_text(const char *dir, struct im_lineage *ls, size_t n)
{
	struct buf b;
	char stamp[32];
	time_t now = time(NULL);

	buf_init(&b, 1 << 20);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d", gmtime(&now));
	buf_printf(&b, "\n# imported from certbot (%s) on %s by `hacme import certbot`\n",
	    dir, stamp);
	for (size_t i = 0; i < n; i++) {
		if (!ls[i].new_ca)
			continue;
		bool dup = false;
		for (size_t k = 0; k < i && !dup; k++)
			dup = ls[k].new_ca && strcmp(ls[k].ca, ls[i].ca) == 0;
		if (dup)
			continue;
		buf_printf(&b, "ca %s\n    directory       %s\n"
		    "    # ca-bundle     FILE   (only for a private CA)\n", ls[i].ca, ls[i].server);
	}
	for (size_t i = 0; i < n; i++) {
		buf_printf(&b, "cert %s\n    domains        ", ls[i].name);
		for (size_t k = 0; k < ls[i].nnames; k++)
			buf_printf(&b, " %s", ls[i].names[k]);
		buf_printf(&b, "\n    key             %s\n    ca              %s\n",
		    keytype_name(ls[i].key), ls[i].ca);
	}
	if (buf_append(&b, "", 1) < 0) {
		buf_fini(&b);
		return NULL;
	}
	return (char *)b.p;
}

/* Appends text to the config file (same mode), checks the result, and
 * puts the old file back when it does not load. */
static int
config_append(const char *cfgpath, const char *text)
{
	char *old = NULL, *neu = NULL, err[CONFIG_ERR_MAX];
	size_t oldlen = 0, tl = strlen(text);
	struct config c = { 0 };
	struct stat sb;
	int rc = -1;

	if (file_read(cfgpath, CONFIG_FILE_MAX, &old, &oldlen) < 0 || stat(cfgpath, &sb) < 0) {
		fprintf(stderr, "hacme: %s: %s\n", cfgpath, strerror(errno));
		goto out;
	}
	if ((neu = malloc(oldlen + tl + 2)) == NULL)
		goto out;
	memcpy(neu, old, oldlen);
	size_t o = oldlen;
	if (o > 0 && neu[o - 1] != '\n')
		neu[o++] = '\n';
	memcpy(neu + o, text, tl);
	o += tl;
	if (config_parse(&c, cfgpath, neu, o, err, sizeof(err)) < 0) {
		fprintf(stderr, "hacme: the imported sections do not load (%s): %s left as it "
		    "was\n", err, cfgpath);
		goto out;
	}
	if (atomic_write(cfgpath, neu, o, sb.st_mode & 07777) < 0) {
		fprintf(stderr, "hacme: %s: %s\n", cfgpath, strerror(errno));
		goto out;
	}
	if (chown(cfgpath, sb.st_uid, sb.st_gid) < 0 && errno != EPERM)
		fprintf(stderr, "hacme: %s: keeping its owner: %s\n", cfgpath, strerror(errno));
	rc = 0;
out:
	config_free(&c);
	free(old);
	free(neu);
	return rc;
}

static uid_t own_uid;
static gid_t own_gid;

static int
own_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if ((sb->st_uid != own_uid || sb->st_gid != own_gid) &&
	    lchown(path, own_uid, own_gid) < 0)
		fprintf(stderr, "hacme: %s: %s\n", path, strerror(errno));
	return 0;
}

/* Run as root (certbot's keys are root's), the import leaves the state dir
 * as its owner (the service's user) can use it. */
static void
state_owned(const char *state_dir)
{
	struct stat sb;

	if (geteuid() != 0 || stat(state_dir, &sb) < 0 || sb.st_uid == 0)
		return;
	own_uid = sb.st_uid;
	own_gid = sb.st_gid;
	(void)nftw(state_dir, own_one, 16, FTW_PHYS);
}

static int
renewal_filter(const struct dirent *d)
{
	size_t l = strlen(d->d_name);

	return d->d_name[0] != '.' && l > 5 && strcmp(d->d_name + l - 5, ".conf") == 0;
}

int
import_main(const char *cfgpath, int argc, char **argv, import_deploy_fn *deploy)
{
	const char *dir = "/etc/letsencrypt";
	struct config cfg = { 0 }, cfg2 = { 0 };
	struct im_lineage *ls = NULL;
	struct dirent **ents = NULL;
	char err[CONFIG_ERR_MAX], serr[STORE_ERR_MAX], *rdir = NULL, *text = NULL;
	char *cdir = NULL, **names = NULL;
	struct store st = { .lock_fd = -1 };
	int nents = -1, rc = 1, nn = 0;
	size_t n = 0;

	if (argc < 1 || strcmp(argv[0], "certbot") != 0) {
		fprintf(stderr, "hacme: usage: import certbot [--config-dir DIR]\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config-dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else {
			fprintf(stderr, "hacme: import certbot: unknown argument '%s' (usage: "
			    "import certbot [--config-dir DIR])\n", argv[i]);
			return 1;
		}
	}
	if (config_load(&cfg, cfgpath, err, sizeof(err)) < 0) {
		fprintf(stderr, "hacme: %s\n", err);
		return 1;
	}
	if (asprintf(&rdir, "%s/renewal", dir) < 0 ||
	    (nents = scandir(rdir, &ents, renewal_filter, alphasort)) < 0) {
		fprintf(stderr, "hacme: %s: %s (is certbot's --config-dir elsewhere? use "
		    "--config-dir DIR)\n", rdir ? rdir : dir, strerror(errno));
		goto out;
	}
	if (nents == 0) {
		printf("%s: no certbot lineage (no renewal/*.conf): nothing to import\n", dir);
		rc = 0;
		goto out;
	}
	if (store_open(&st, cfg.state_dir, serr, sizeof(serr)) < 0 ||
	    store_lock(&st, true, serr, sizeof(serr)) < 0) {
		fprintf(stderr, "hacme: %s\n", serr);
		goto out;
	}
	if ((ls = calloc((size_t)nents, sizeof(*ls))) == NULL ||
	    (names = calloc((size_t)nents + 1, sizeof(*names))) == NULL)
		goto out;
	for (int i = 0; i < nents && n < IM_MAX; i++) {
		if (lineage_import(&cfg, &st, dir, ents[i]->d_name, ls, n, &ls[n]) == 0)
			n++;
		else
			lineage_free(&ls[n]);
	}
	store_unlock(&st);
	state_owned(cfg.state_dir);
	if (n == 0) {
		printf("nothing imported\n");
		rc = 0;
		goto out;
	}
	if ((text = sections_text(dir, ls, n)) == NULL || config_append(cfgpath, text) < 0)
		goto out;
	printf("%s: %zu cert section%s added\n", cfgpath, n, n == 1 ? "" : "s");
	/* the PEMs the recipe's post-hook concatenated: hacme's from now on */
	cdir = hfiles_cert_dir(&cfg);
	for (size_t i = 0; i < n && cdir != NULL; i++) {
		char *p = NULL;
		if (asprintf(&p, "%s/%s.pem", cdir, ls[i].name) >= 0 && access(p, F_OK) == 0 &&
		    !hfiles_owned(cfg.state_dir, p)) {
			if (hfiles_own(cfg.state_dir, p) == 0)
				printf("%s: %s is hacme's from now on (it replaces it at renewal)\n",
				    ls[i].name, p);
		}
		free(p);
		if (ls[i].stored)
			names[nn++] = ls[i].name;
	}
	if (config_load(&cfg2, cfgpath, err, sizeof(err)) < 0) {
		fprintf(stderr, "hacme: %s\n", err);
		goto out;
	}
	rc = nn > 0 && deploy != NULL ? deploy(&cfg2, nn, names) : 0;
	state_owned(cfg.state_dir);	/* the deploy's lock and records too */
	printf("\nStill to do:\n"
	    "  1. stop certbot's renewals: `systemctl disable --now certbot.timer` and delete "
	    "the cron line that runs `certbot renew` (its --post-hook would overwrite hacme's "
	    "files)\n"
	    "  2. in haproxy.cfg, remove the side-port backend (the `server certbot "
	    "127.0.0.1:...` backend) and its use_backend lines; add hacme's lines (README, "
	    "\"Switching from certbot\"), then `haproxy -c` and reload once\n"
	    "  3. `hacme status`, then `systemctl enable --now hacme`: nothing is ordered "
	    "before renewal is due\n"
	    "  4. keep %s until hacme has renewed everything once; then `certbot delete` "
	    "is not needed, just remove the directory\n", dir);
out:
	for (size_t i = 0; i < n; i++)
		lineage_free(&ls[i]);
	free(ls);
	free(names);
	for (int i = 0; i < nents; i++)
		free(ents[i]);
	free(ents);
	free(rdir);
	free(text);
	free(cdir);
	store_close(&st);
	config_free(&cfg);
	config_free(&cfg2);
	return rc;
}
