/* deploy_driver.c - acme/deploy.c from the command line, for the
 * integration tests and the benchmark (the real `hacme deploy` lives in
 * acme/main.c).
 *
 *   deploy_driver -c CONFIG import NAME KEY CHAIN [VARIANT]
 *       stores KEY + CHAIN (PEM files) as certs/NAME[/VARIANT] in state-dir,
 *       through store_cert_save, as hacme does after an order
 *   deploy_driver -c CONFIG [-j N] deploy|check|remove NAME...
 *       loads each NAME from the store (its "rsa" variant too, when stored),
 *       runs deploy_cert / deploy_check / deploy_remove on one loop with at
 *       most N operations at once (default: all), and prints per name:
 *         result<TAB>NAME<TAB>RUNTIME<TAB>VARIANT<TAB>SERIAL<TAB>ok|fail<TAB>pushed|-<TAB>ERROR
 *         report<TAB>NAME<TAB>ok|fail<TAB>restored|-<TAB>ERROR<TAB>WARNING
 *       and on stderr: "loaded <n> names from the store in <s> s" (done
 *       before the clock below starts) and "<verb> <n> names in <s> s
 *       (<rate>/s)".
 * Exit: 0 all ok, 1 usage/config, 2 a name could not be started, 3 a
 * deploy failed (as hacme's exit codes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "acme/config.h"
#include "acme/crypto.h"
#include "acme/deploy.h"
#include "acme/store.h"
#include "common/atomicfile.h"
#include "common/log.h"

struct job {
	const char *name;
	struct store_cert c[2];
	const struct store_cert *v[2];
	const char *vn[2];
	size_t n;
	bool started, done, ok;
	char err[STORE_ERR_MAX];	/* a load that failed */
};

static struct job *jobs;
static size_t njobs, next_job, running, max_running, failed;
static struct deploy *dep;
static const char *verb;
static struct store st;

static void start_more(void);

static const char *
dash(const char *s)
{
	return s && s[0] ? s : "-";
}

static void
on_done(void *arg, const struct deploy_report *r)
{
	struct job *j = arg;

	for (size_t i = 0; i < r->n; i++) {
		const struct deploy_result *x = &r->results[i];
		printf("result\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r->name, x->runtime_api,
		    x->variant ? x->variant : "main", dash(x->serial), x->ok ? "ok" : "fail",
		    x->pushed ? "pushed" : "-", dash(x->error));
	}
	printf("report\t%s\t%s\t%s\t%s\t%s\n", r->name, r->ok ? "ok" : "fail",
	    r->restored ? "restored" : "-", dash(r->error), dash(r->warning));
	fflush(stdout);
	j->done = true;
	j->ok = r->ok;
	if (!r->ok)
		failed++;
	running--;
	start_more();
}

static int
job_load(struct job *j, char *err, size_t errlen)
{
	char rsa_err[STORE_ERR_MAX];

	if (store_cert_load(&st, j->name, NULL, &j->c[0], err, errlen) < 0)
		return -1;
	j->v[0] = &j->c[0];
	j->vn[0] = NULL;
	j->n = 1;
	if (store_cert_load(&st, j->name, "rsa", &j->c[1], rsa_err, sizeof(rsa_err)) == 0) {
		j->v[1] = &j->c[1];
		j->vn[1] = "rsa";
		j->n = 2;
	} else if (errno != ENOENT) {
		snprintf(err, errlen, "%s", rsa_err);
		return -1;
	}
	return 0;
}

static void
start_more(void)
{
	char err[DEPLOY_ERR_MAX];
	int rc;

	while (next_job < njobs && running < max_running) {
		struct job *j = &jobs[next_job++];
		if (strcmp(verb, "remove") == 0) {
			rc = deploy_remove(dep, j->name, on_done, j, err, sizeof(err));
		} else if (j->err[0] != '\0') {
			snprintf(err, sizeof(err), "%s", j->err);
			rc = -1;
		} else if (strcmp(verb, "deploy") == 0) {
			rc = deploy_cert(dep, j->name, j->v, j->vn, j->n, on_done, j, err,
			    sizeof(err));
		} else {
			rc = deploy_check(dep, j->name, j->v, j->vn, j->n, on_done, j, err,
			    sizeof(err));
		}
		if (rc < 0) {
			printf("report\t%s\tfail\t-\t%s\t-\n", j->name, err);
			j->done = true;
			failed++;
			continue;
		}
		j->started = true;
		running++;
	}
}

static int
import(const char *name, const char *keyf, const char *chainf, const char *variant)
{
	struct crypto_cert_info ci;
	struct store_meta m;
	char *key = NULL, *chain = NULL, err[STORE_ERR_MAX];
	size_t klen, clen;
	int rc = 1;

	memset(&m, 0, sizeof(m));
	memset(&ci, 0, sizeof(ci));
	if (file_read(keyf, STORE_FILE_MAX, &key, &klen) < 0 ||
	    file_read(chainf, STORE_FILE_MAX, &chain, &clen) < 0) {
		fprintf(stderr, "import: %s\n", strerror(errno));
		goto out;
	}
	if (crypto_cert_info(chain, clen, &ci, err, sizeof(err)) < 0) {
		fprintf(stderr, "import: %s\n", err);
		goto out;
	}
	m.names = ci.names;
	m.nnames = ci.nnames;
	m.key_type = (char *)keytype_name(ci.key);
	m.serial = ci.serial;
	m.not_before = ci.not_before;
	m.not_after = ci.not_after;
	m.issuer = ci.issuer_cn;
	m.ca = "test";
	if (store_cert_save(&st, name, variant, &m, key, klen, chain, clen, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "import: %s\n", err);
		goto out;
	}
	rc = 0;
out:
	crypto_cert_info_free(&ci);
	if (key != NULL)
		crypto_wipe_free(key, klen);
	free(chain);
	return rc;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	const char *cfgfile = NULL;
	struct ev_loop *loop;
	ev_tstamp t0;
	int opt, rc = 0;

	log_init("deploy_driver", getenv("DRIVER_LOG") && strcmp(getenv("DRIVER_LOG"), "debug") ==
	    0 ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	while ((opt = getopt(argc, argv, "c:j:")) != -1) {
		switch (opt) {
		case 'c':
			cfgfile = optarg;
			break;
		case 'j':
			max_running = (size_t)strtoul(optarg, NULL, 10);
			break;
		default:
			return 1;
		}
	}
	if (cfgfile == NULL || optind + 2 > argc) {
		fprintf(stderr, "usage: deploy_driver -c CONFIG [-j N] "
		    "{import NAME KEY CHAIN [VARIANT] | deploy|check|remove NAME...}\n");
		return 1;
	}
	if (config_load(&cfg, cfgfile, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (store_open(&st, cfg.state_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return 1;
	}
	verb = argv[optind];
	if (strcmp(verb, "import") == 0) {
		if (optind + 4 > argc) {
			fprintf(stderr, "import NAME KEY CHAIN [VARIANT]\n");
			rc = 1;
		} else {
			rc = import(argv[optind + 1], argv[optind + 2], argv[optind + 3],
			    optind + 4 < argc ? argv[optind + 4] : NULL);
		}
		goto out;
	}
	if (strcmp(verb, "deploy") != 0 && strcmp(verb, "check") != 0 &&
	    strcmp(verb, "remove") != 0) {
		fprintf(stderr, "unknown verb '%s'\n", verb);
		rc = 1;
		goto out;
	}
	njobs = (size_t)(argc - optind - 1);
	if ((jobs = calloc(njobs, sizeof(*jobs))) == NULL) {
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < njobs; i++)
		jobs[i].name = argv[optind + 1 + i];
	if (max_running == 0)
		max_running = njobs;
	loop = ev_default_loop(0);
	if ((dep = deploy_new(loop, &cfg, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		rc = 1;
		goto out;
	}
	t0 = ev_time();
	for (size_t i = 0; strcmp(verb, "remove") != 0 && i < njobs; i++)
		if (job_load(&jobs[i], jobs[i].err, sizeof(jobs[i].err)) < 0 && jobs[i].err[0] == '\0')
			snprintf(jobs[i].err, sizeof(jobs[i].err), "%s", strerror(errno));
	fprintf(stderr, "loaded %zu names from the store in %.3f s\n", njobs, ev_time() - t0);
	t0 = ev_time();
	start_more();
	while (running > 0) {
		log_flush();
		ev_run(loop, EVRUN_ONCE);
	}
	log_flush();
	{
		double secs = ev_time() - t0;
		fprintf(stderr, "%s %zu names in %.3f s (%.1f/s)\n", verb, njobs, secs,
		    secs > 0 ? (double)njobs / secs : 0.);
	}
	deploy_free(dep);
	rc = failed ? 3 : 0;
out:
	for (size_t i = 0; jobs != NULL && i < njobs; i++) {
		store_cert_free(&jobs[i].c[0]);
		store_cert_free(&jobs[i].c[1]);
	}
	free(jobs);
	store_close(&st);
	config_free(&cfg);
	return rc;
}
