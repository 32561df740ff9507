/* sniprobe.h - what a client gets: one blocking TLS handshake with SNI to a
 * `tls-check` address, the served leaf's serial (for `hacme status`). */
#ifndef HACME_SNIPROBE_H
#define HACME_SNIPROBE_H

#include <stddef.h>

#include "acme/crypto.h"
#include "acme/keytype.h"

/* only: KEYTYPE_NONE for any, else offer only that family's signature
 * algorithms (the ECDSA or the RSA half of a dual certificate). 0 with
 * serial, or -1 with err. At most timeout seconds. */
int sniprobe(const char *address, const char *sni, enum keytype only, double timeout,
    char serial[CRYPTO_SERIAL_MAX], char *err, size_t errlen);

#endif
