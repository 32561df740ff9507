/* serialfmt.h - serials as people compare them: as `openssl x509 -serial`
 * prints them (whole bytes: a leading 0 kept), so a grep across tools
 * matches. hacme keeps serials without leading zeros internally (meta.json,
 * comparisons); only what it prints for people goes through here. */
#ifndef HACME_SERIALFMT_H
#define HACME_SERIALFMT_H

/* serial ("" and NULL pass through) in whole bytes. The result lives in
 * one of 8 rotating static buffers: up to 8 per printf. */
const char *serial_show(const char *serial);

#endif
