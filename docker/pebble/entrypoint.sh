#!/bin/sh
# Makes, once, a CA (ca.pem: what hacme's ca-bundle names) and the TLS
# certificate of pebble's own listener (name `pebble`), then runs pebble.
set -eu
d=/var/lib/pebble
if [ ! -s "$d/ca.pem" ] || [ ! -s "$d/pebble.pem" ]; then
    umask 077
    t=$(mktemp -d "$d/.new.XXXXXX")
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -days 3650 -subj "/CN=hacme demo CA for pebble" \
        -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=pebble" -keyout "$t/pebble.key" -out "$t/pebble.csr" 2>/dev/null
    printf 'subjectAltName=DNS:pebble,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$t/ext"
    openssl x509 -req -in "$t/pebble.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
        -CAcreateserial -days 3650 -extfile "$t/ext" -out "$t/pebble.pem" 2>/dev/null
    chmod 644 "$t/ca.pem" "$t/pebble.pem"
    mv "$t/pebble.key" "$t/pebble.pem" "$d/"
    mv "$t/ca.pem" "$d/"        # last: its presence means the pair is complete
    rm -rf "$t"
    echo "pebble: wrote $d/ca.pem and the certificate of pebble:14000"
fi
exec pebble -config /etc/pebble/pebble-config.json "$@"
