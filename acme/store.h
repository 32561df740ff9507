/* store.h - hacme's state directory (DESIGN.md "On disk").
 *
 *   <state-dir>/            0700
 *     lock                  flock: one writer (a second hacme waits or fails)
 *     account/<ca>/key.pem  0600, account.json
 *     certs/<name>/key.pem  0600, chain.pem, haproxy.pem, meta.json
 *     certs/<name>/rsa/...  the RSA half of a dual certificate
 *
 * Every file is written with write-temp + fsync + rename (common/
 * atomicfile.h). A certificate is a set of four files that must change
 * together: store_cert_save stages the new set in certs/<name>/.new/
 * (meta.json written last marks it complete), then renames each file into
 * place; store_cert_load first finishes a complete staged set or removes an
 * incomplete one. So after a crash at any point a load sees either the
 * whole old certificate or the whole new one.
 *
 * Names (ca, certificate) are checked: [A-Za-z0-9._-], no leading '.',
 * at most 253 chars -- never a path. Errors: -1 with errno and a one-line
 * reason in err naming the file. ENOENT means "not stored". */
#ifndef HACME_STORE_H
#define HACME_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define STORE_ERR_MAX 512
#define STORE_FILE_MAX (1024 * 1024)	/* bytes of any file we read back */

struct store {
	char *dir;		/* state dir */
	int lock_fd;		/* -1 when not locked */
};

/* Creates the state dir (0700, and account/, certs/) when missing. */
int store_open(struct store *s, const char *state_dir, char *err, size_t errlen);
void store_close(struct store *s);	/* releases the lock */
/* flock(LOCK_EX) on <state-dir>/lock; wait false: fail with EWOULDBLOCK
 * ("another hacme holds <state-dir>/lock") instead of waiting. */
int store_lock(struct store *s, bool wait, char *err, size_t errlen);

/* Releases the lock taken by store_lock (a long-running `hacme run` holds
 * it only while it writes, so that the CLI verbs can work beside it). */
void store_unlock(struct store *s);

/* ---- account ---- */
struct store_account {
	char *url;		/* the account URL (kid) */
	char *directory;	/* the CA directory it belongs to */
	char *key_type;		/* keytype_name() */
	char *thumbprint;
	time_t created;
};
void store_account_free(struct store_account *a);
/* key.pem: *pem malloc'd (caller wipes and frees). */
int store_account_key_load(struct store *s, const char *ca, char **pem, size_t *len,
    char *err, size_t errlen);
int store_account_key_save(struct store *s, const char *ca, const char *pem, size_t len,
    char *err, size_t errlen);
int store_account_load(struct store *s, const char *ca, struct store_account *a,
    char *err, size_t errlen);
int store_account_save(struct store *s, const char *ca, const struct store_account *a,
    char *err, size_t errlen);

/* ---- certificates ---- */

/* meta.json: what the certificate is, and its renewal state. Unknown
 * members in the file are ignored; absent ones are zero / NULL. */
struct store_meta {
	char **names;		/* the SANs ordered, in config order */
	size_t nnames;
	char *key_type;		/* keytype_name() */
	char *serial;		/* upper-case hex */
	time_t not_before, not_after;
	char *issuer;		/* issuer CN */
	char *ca;		/* ca section name */
	char *directory;	/* the CA's directory URL */
	char *order_url, *cert_url;
	char *ari_id;		/* RFC 9773 certificate identifier, "" or NULL: none */
	/* renewal state (issue 5) */
	time_t renew_at;	/* chosen moment, 0: not chosen yet */
	char *renew_reason;	/* "ari", "lifetime", ... */
	time_t ari_window_start, ari_window_end, ari_next_poll;
	unsigned failures;	/* consecutive failed orders */
	time_t next_attempt;	/* not before this (backoff / Retry-After) */
	char *last_error;	/* one line, NULL when the last order worked */
	time_t issued;		/* when hacme stored it */
};
void store_meta_free(struct store_meta *m);

/* A stored certificate. key_pem is wiped on free. */
struct store_cert {
	struct store_meta meta;
	char *key_pem;		/* key.pem */
	size_t key_len;
	char *chain_pem;	/* chain.pem: leaf first */
	size_t chain_len;
	char *haproxy_pem;	/* haproxy.pem: key, leaf, chain, no blank line */
	size_t haproxy_len;
};
void store_cert_free(struct store_cert *c);

/* variant: NULL for certs/<name>/, "rsa" for certs/<name>/rsa/. */
int store_cert_load(struct store *s, const char *name, const char *variant,
    struct store_cert *c, char *err, size_t errlen);
/* Writes key.pem (0600), chain.pem, haproxy.pem (= key + chain, blank
 * lines removed, each block "\n"-terminated) and meta.json as one set. */
int store_cert_save(struct store *s, const char *name, const char *variant,
    const struct store_meta *m, const char *key_pem, size_t key_len,
    const char *chain_pem, size_t chain_len, char *err, size_t errlen);
/* meta.json alone (renewal state changes); the certificate must exist. */
int store_meta_save(struct store *s, const char *name, const char *variant,
    const struct store_meta *m, char *err, size_t errlen);
/* Removes certs/<name>/ entirely. 0 also when absent. */
int store_cert_remove(struct store *s, const char *name, char *err, size_t errlen);
/* Names of stored certificates (directories under certs/), sorted,
 * malloc'd (free each and the array). Returns the count or -1. */
int store_cert_list(struct store *s, char ***names, char *err, size_t errlen);

/* Path helpers: "<dir>/certs/<name>[/<variant>]/<file>", malloc'd. */
char *store_cert_path(const struct store *s, const char *name, const char *variant,
    const char *file);

#endif
