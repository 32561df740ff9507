# A stand-in for the official haproxy:2.6 image, which cannot be pulled here:
# Debian 12's haproxy package laid out like that image (config in
# /usr/local/etc/haproxy, entrypoint adding -W -db, user haproxy, SIGUSR1).
FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /usr/local/etc/haproxy /var/lib/haproxy \
    && ln -s /usr/sbin/haproxy /usr/local/sbin/haproxy \
    && printf '%s\n' '#!/bin/sh' 'set -e' \
        'if [ "${1#-}" != "$1" ]; then set -- haproxy "$@"; fi' \
        'if [ "$1" = haproxy ]; then shift; set -- haproxy -W -db "$@"; fi' \
        'exec "$@"' > /usr/local/bin/docker-entrypoint.sh \
    && chmod +x /usr/local/bin/docker-entrypoint.sh
USER haproxy
WORKDIR /var/lib/haproxy
STOPSIGNAL SIGUSR1
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
