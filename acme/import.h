/* import.h - `hacme import certbot [--config-dir DIR]`: take over certbot's
 * lineages without ordering anything.
 *
 * For each DIR/renewal/NAME.conf: the live certificate and key (symlinks
 * into archive/ followed), checked against each other; one `cert NAME`
 * section appended to hacme's config (names from the certificate, key type
 * from the key, `ca` from renewalparams' server: an existing `ca` section
 * with that directory, else a new one), the certificate and key stored in
 * the state dir as if hacme had ordered them (so no order until renewal is
 * due), certbot's account key imported when hacme has none for that CA,
 * the PEM the recipe's post-hook wrote into the cert dir taken over, and
 * everything deployed. Prints what the admin must still do. */
#ifndef HACME_IMPORT_H
#define HACME_IMPORT_H

#include "acme/config.h"

/* deploy(cfg, n, names): the `deploy` verb, run on the new config. */
typedef int import_deploy_fn(struct config *cfg, int argc, char **argv);

/* argv: what follows `import`. Exit code (0, 1 usage/config, 3 deploy). */
int import_main(const char *cfgpath, int argc, char **argv, import_deploy_fn *deploy);

#endif
