#!/bin/sh
# make-fallback-cert.sh DIR [COMMON-NAME]
# Writes DIR/fallback.pem (a self-signed ECDSA key + certificate, 0600) and,
# when DIR/certs.list does not exist yet, a crt-list whose one line serves
# it. HAProxy refuses an empty crt-list and will not remove its first entry
# at runtime; hacme appends its certificates after this line and never
# touches it. Run once at install time (or in a container's entrypoint).
# Existing files are kept: running it again changes nothing.
set -eu

dir=${1:?usage: make-fallback-cert.sh DIR [COMMON-NAME]}
cn=${2:-hacme-fallback.invalid}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pem="$dir/fallback.pem"
list="$dir/certs.list"

if [ ! -s "$pem" ]; then
    umask 077
    tmp=$(mktemp -d "$dir/.fallback.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -days 3650 -subj "/CN=$cn" \
        -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>"$tmp/err" || {
        cat "$tmp/err" >&2; exit 1; }
    cat "$tmp/key.pem" "$tmp/cert.pem" > "$tmp/fallback.pem"
    chmod 600 "$tmp/fallback.pem"
    mv "$tmp/fallback.pem" "$pem"
    echo "wrote $pem"
fi
if [ ! -e "$list" ]; then
    printf '%s\n' "$pem" > "$list.tmp"
    chmod 644 "$list.tmp"
    mv "$list.tmp" "$list"
    echo "wrote $list"
fi
