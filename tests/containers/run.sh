#!/usr/bin/env bash
# make test-containers: docker/docker-compose.yml for real, as a user runs
# it, with Debian's docker engine and images made from Debian's packages (no
# image registry is reachable here):
#   base image    mmdebstrap --variant=minbase bookworm (mirror read from this
#                 machine's apt sources), `docker import` as debian:12(-slim);
#                 the tarball is cached in $HACME_CI_CACHE/containers
#   engine        Debian's dockerd on a private socket, data root and exec
#                 root; no iptables, NAT, ip_forward or docker0 bridge. The
#                 data root stays in $HACME_CI_CACHE/containers/engine between
#                 runs (the build cache: a rerun rebuilds from the COPY of the
#                 source on); HACME_CT_FRESH=1 starts from nothing.
#   images        haproxy:2.6 (a stand-in: Debian's haproxy laid out like the
#                 official image), hacme (docker/Dockerfile), hacme-pebble
#   stack         `--profile demo` (pebble on hacme's way to the CA and on
#                 HAProxy's front network), ports published on 127.0.0.1 only
# then: certificate served by SNI; only HAProxy shares a network with hacme
# (an internal one; pebble is on hacme's way out): the app resolves and
# reaches neither hacme nor its port 12345; TCP listeners: hacme 12345,
# HAProxy 80 and 443 (the runtime API and the control socket are unix
# sockets); hacme stopped -> :443 still served; HAProxy
# restarted while hacme is down -> starts and serves; hacme started with a new
# address -> challenges answered again without reloading HAProxy; renewal ->
# new serial served; `down -v`. Everything it started is stopped, the engine
# included. TAP lines; the last line is 'N passed, N failed'.
set -uo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
T0=$(date +%s)
CACHE=${HACME_CI_CACHE:-/var/cache/hacme-ci}/containers
DOCKER=/usr/bin/docker		# Debian's client, whatever else is on PATH
PROJECT=hacmeci$$
NAME=hacme.test			# the demo's name (docker/hacme-demo.cfg)
ENGINE=$CACHE/engine
W=
DOCKERD_PID=
BRIDGES_BEFORE=
UP=0
n=0 npass=0 nfail=0

say() { printf '# %4ds %s\n' $(( $(date +%s) - T0 )) "$*"; }
ok() { n=$((n + 1)) npass=$((npass + 1)); printf 'ok %d - %s (%ds)\n' $n "$*" $(( $(date +%s) - T0 )); }
notok() { n=$((n + 1)) nfail=$((nfail + 1)); printf 'not ok %d - %s (%ds)\n' $n "$*" $(( $(date +%s) - T0 )); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else notok "$what"; fi; }
# wait_for SECONDS CMD...: CMD until it succeeds, at most SECONDS
wait_for() {
	local end=$(( $(date +%s) + $1 )); shift
	while ! "$@"; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 1
	done
}
finish() {
	echo "$npass passed, $nfail failed"
	[ "$nfail" = 0 ]
	exit
}
bail() { notok "$*"; cleanup; finish; }

# apt_sources SUITE: this machine's "deb URI SUITE[-updates|-security] main"
# lines, from one-line and deb822 sources alike (no host name in the repo).
apt_sources() {
	local suite=$1 f
	{
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] && sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+\([^[:space:]]\+\).*/\2 \3/p' "$f"
		done
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] && awk '
			function flush(  n, m, i, j, U, S) {
				if (deb && !off) {
					n = split(uris, U, /[[:space:]]+/); m = split(suites, S, /[[:space:]]+/)
					for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print U[i], S[j]
				}
				deb = 0; off = 0; uris = ""; suites = ""
			}
			/^[[:space:]]*$/ { flush(); next }
			/^Types:/ { deb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/) }
			/^URIs:/ { uris = $0; sub(/^URIs:[[:space:]]*/, "", uris) }
			/^Suites:/ { suites = $0; sub(/^Suites:[[:space:]]*/, "", suites) }
			/^Enabled:[[:space:]]*no/ { off = 1 }
			END { flush() }' "$f"
		done
	} | awk -v s="$suite" '$1 != "" && ($2 == s || $2 == s "-updates" || $2 == s "-security") { print "deb " $1 " " $2 " main" }' | sort -u
}

# compose v2: sid's docker-compose 2.x (a Go binary that needs only libc),
# unpacked once into $CACHE/compose-v2 through a private apt configuration.
fetch_compose_v2() {
	local d=$CACHE/compose-v2 url
	[ -x "$d/docker-compose" ] && return 0
	url=$(apt_sources bookworm | awk '$3 == "bookworm" { print $2; exit }')
	[ -n "$url" ] || return 1
	rm -rf "$d.new" && mkdir -p "$d.new/lists/partial" "$d.new/cache/archives/partial" || return 1
	echo "deb $url sid main" >"$d.new/sources.list"
	local a=(-q -o "Dir::Etc::sourcelist=$d.new/sources.list" -o Dir::Etc::sourceparts=/dev/null
		-o "Dir::State::Lists=$d.new/lists" -o "Dir::Cache=$d.new/cache" -o Debug::NoLocking=1
		-o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
	apt-get "${a[@]}" update >"$d.new/apt.log" 2>&1 &&
		(cd "$d.new" && apt-get "${a[@]}" download docker-compose >>apt.log 2>&1) &&
		dpkg -x "$d.new"/docker-compose_2*.deb "$d.new/root" &&
		cp "$d.new/root/usr/libexec/docker/cli-plugins/docker-compose" "$d.new/docker-compose" ||
		return 1
	rm -rf "$d.new/lists" "$d.new/cache" "$d.new/root" "$d.new"/*.deb
	rm -rf "$d" && mv "$d.new" "$d"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

compose() {
	docker-compose -p "$PROJECT" -f "$SRC/docker/docker-compose.yml" \
		-f "$SRC/tests/containers/compose.ci.yml" --profile demo "$@"
}

# cert_field FIELD: serial / issuer of the certificate served for $NAME
served() {
	openssl s_client -connect "127.0.0.1:$P443" -servername "$NAME" </dev/null 2>/dev/null |
		openssl x509 -noout -serial -issuer -ext subjectAltName 2>/dev/null
}
served_serial() { served | sed -n 's/^serial=//p'; }
# a certificate from pebble for both names, with a serial other than $1
issued_cert() {
	local s
	s=$(served) || return 1
	grep -q '^issuer=.*Pebble' <<<"$s" && grep -q "DNS:$NAME" <<<"$s" &&
		grep -q "DNS:www.$NAME" <<<"$s" && ! grep -qx "serial=${1:-none}" <<<"$s"
}
serves_serial() { [ "$(served_serial)" = "$1" ]; }
# status of GET PATH on the published :80 with Host $NAME
http_status() {
	curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Host: $NAME" "http://127.0.0.1:$P80$1"
}
challenge_status_is() { [ "$(http_status /.well-known/acme-challenge/hacmeci-unknown-token)" = "$1" ]; }
app_answers() {
	curl -sk -m 5 --resolve "$NAME:$P443:127.0.0.1" "https://$NAME:$P443/" | grep -q "hello from app"
}
# the container of a service (docker's labels: no compose start-up per look-up)
cid() {
	$DOCKER ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
		--filter "label=com.docker.compose.service=$1" | head -n 1
}
# ip_on CONTAINER NETWORK: its address on that network
ip_on() { $DOCKER inspect -f "{{with index .NetworkSettings.Networks \"$2\"}}{{.IPAddress}}{{end}}" "$1" 2>/dev/null; }
# the networks of a container, one a line
networks_of() {
	$DOCKER inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{"\n"}}{{end}}' "$1" 2>/dev/null | grep .
}
shared_networks() { comm -12 <(networks_of "$1" | sort) <(networks_of "$2" | sort); }
# who else reaches hacme: "SERVICE:NETWORK[:internal]" for each running
# container of the project that shares a network with hacme, sorted, on one
# line; NETWORK without the project's prefix. The same format as
# hacme_neighbours_in, which reads it from a resolved compose file.
hacme_neighbours() {
	local h c s net
	h=$(cid hacme)
	for c in $($DOCKER ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
		[ "$c" = "$h" ] && continue
		s=$($DOCKER inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$c")
		for net in $(shared_networks "$h" "$c"); do
			if [ "$($DOCKER network inspect -f '{{.Internal}}' "$net")" = true ]; then
				echo "$s:${net#"${PROJECT}"_}:internal"
			else
				echo "$s:${net#"${PROJECT}"_}"
			fi
		done
	done | sort | tr '\n' ' '
}
hacme_neighbours_in() {
	python3 -c '
import sys, yaml
c = yaml.safe_load(sys.stdin)
nets = c.get("networks") or {}
def of(s):
    if s.get("network_mode"):
        return set()
    return set(s.get("networks") or {"default": None})
h = of(c["services"]["hacme"])
out = []
for name, s in c["services"].items():
    if name == "hacme":
        continue
    for n in sorted(of(s) & h):
        out.append(name + ":" + n + (":internal" if (nets.get(n) or {}).get("internal") else ""))
print(" ".join(sorted(out)), end=" ")' <<<"$1"
}
# what only HAProxy (and, in the demo, the CA on hacme's way out) may be
NEIGHBOURS="haproxy:agent:internal pebble:ca "
# from the app's container: NAME resolves / HOST:PORT accepts a connection.
# A name the stack's DNS does not know goes to the host's resolvers, which
# answer nothing here: one try of 1 s (RES_OPTIONS) instead of glibc's 2 x 5 s
# per search domain; a connect on a bridge takes well under 3 s.
app_resolves() { $DOCKER exec -e RES_OPTIONS='timeout:1 attempts:1' "$(cid app)" getent hosts "$1" >/dev/null 2>&1; }
app_connects() {
	$DOCKER exec -e RES_OPTIONS='timeout:1 attempts:1' "$(cid app)" \
		timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1
}
# the app resolves and reaches haproxy:80 (its exec, DNS and TCP work), not hacme
app_cannot_resolve_hacme() { app_resolves haproxy && ! app_resolves hacme; }
app_cannot_connect_hacme() { app_connects haproxy 80 && ! app_connects "$1" 12345; }
# the TCP ports a container listens on beyond its loopback (127/8, ::1),
# sorted, on one line; from /proc/net/tcp*, so no tool is needed in the image
# the IPv4 addresses (dotted) a container listens on for TCP port $2
listening_addrs() {
	$DOCKER exec "$1" cat /proc/net/tcp 2>/dev/null |
		awk -v p="$(printf '%04X' "$2")" '$4 == "0A" && $2 ~ (":" p "$") { print substr($2, 1, 8) }' |
		while read -r h; do
			printf '%d.%d.%d.%d ' "0x${h:6:2}" "0x${h:4:2}" "0x${h:2:2}" "0x${h:0:2}"
		done
}
listening_ports() {
	$DOCKER exec "$1" cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk '$4 == "0A" && $2 !~ /^[0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]7F:/ &&
			$2 !~ /^00000000000000000000000001000000:/ { sub(/.*:/, "", $2); print $2 }' |
		sort -u | while read -r h; do printf '%d ' "0x$h"; done
}
# the gateway of a container's default route (/proc/net/route: hex, little endian)
default_gateway() {
	local g
	g=$($DOCKER exec "$1" cat /proc/net/route 2>/dev/null | awk '$2 == "00000000" { print $3; exit }')
	[ ${#g} = 8 ] && printf '%d.%d.%d.%d' "0x${g:6:2}" "0x${g:4:2}" "0x${g:2:2}" "0x${g:0:2}"
}
network_gateway() { $DOCKER network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$1" 2>/dev/null; }
default_route_via() { [ -n "$(default_gateway "$1")" ] && [ "$(default_gateway "$1")" = "$(network_gateway "$2")" ]; }
running() { [ "$($DOCKER inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
healthy() { [ "$($DOCKER inspect -f '{{.State.Health.Status}}' "$(cid "$1")" 2>/dev/null)" = healthy ]; }
all_healthy() { healthy haproxy && healthy hacme && healthy app && healthy pebble; }
# HAProxy (master-worker) logs one "New worker" line per start or reload
haproxy_workers() { $DOCKER logs "$(cid haproxy)" 2>&1 | grep -c 'New worker'; }

# every published port of the resolved file is bound to 127.0.0.1
published_on_loopback_only() {
	local c=$1
	grep -q "127.0.0.1:$P80:80" <<<"$c" && grep -q "127.0.0.1:$P443:443" <<<"$c" &&
		! grep -E '^[[:space:]]+- (published:|[0-9]+:[0-9]|0\.0\.0\.0)' <<<"$c" | grep -q .
}
# the service names of a resolved compose file, sorted, on one line
services_of() {
	python3 -c 'import sys, yaml; print(" ".join(sorted(yaml.safe_load(sys.stdin)["services"])), end=" ")' <<<"$1"
}
# docker0 / br-* bridges that were not there before the engine started
new_bridges() {
	ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
		grep -E '^(docker0|br-)' | while read -r b; do
			case " $BRIDGES_BEFORE " in *" $b "*) ;; *) echo "$b" ;; esac
		done
}
restart_policies() {
	[ "$($DOCKER inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$(cid haproxy)" "$(cid hacme)" "$(cid app)" "$(cid pebble)" | sort -u)" = unless-stopped ]
}
stopped() { ! running "$1"; }
hacme_logged() { $DOCKER logs --since "$1" "$HACME_ID" 2>&1 | grep -qF "$2"; }
no_top_level_name() { ! grep -q '^name:' "$SRC/docker/docker-compose.yml"; }
not_published() { [ -z "$($DOCKER port "$1")" ]; }
started_after() { [ "$($DOCKER inspect -f '{{.State.StartedAt}}' "$1")" != "$2" ] && running "$1"; }
up() {
	compose up -d --no-build >"$W/up.log" 2>&1 || { tail -n 20 "$W/up.log"; return 1; }
}
down() {
	compose down -v >"$W/down.log" 2>&1 || { tail -n 20 "$W/down.log"; return 1; }
}
project_gone() {
	[ -z "$($DOCKER ps -aq --filter label=com.docker.compose.project=$PROJECT)" ] &&
	[ -z "$($DOCKER volume ls -q --filter label=com.docker.compose.project=$PROJECT)" ] &&
	[ -z "$($DOCKER network ls -q --filter label=com.docker.compose.project=$PROJECT)" ]
}
import_base() {
	$DOCKER import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'CMD ["bash"]' -c "LABEL hacme.base=$BASE_ID" "$BASE" debian:12 >/dev/null &&
		$DOCKER tag debian:12 debian:12-slim
}
engine_gone() { ! kill -0 "$1" 2>/dev/null && ! pgrep -f "$2/" >/dev/null; }
nothing_left() {
	[ -z "$(new_bridges)" ] && ! grep -qE "$1|$ENGINE" /proc/self/mounts && [ ! -e "$1" ]
}

cleanup() {
	local b m
	if [ "$UP" = 1 ]; then
		say "cleanup: compose down -v"
		$DOCKER ps -aq --filter "label=hacmeci.squatter=$PROJECT" | xargs -r $DOCKER rm -f >/dev/null 2>&1
		compose down -v --remove-orphans >/dev/null 2>&1
		UP=0
	fi
	if [ -n "$DOCKERD_PID" ]; then
		say "cleanup: stopping dockerd (pid $DOCKERD_PID)"
		kill -TERM "$DOCKERD_PID" 2>/dev/null
		for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
		kill -KILL "$DOCKERD_PID" 2>/dev/null
		wait "$DOCKERD_PID" 2>/dev/null
		DOCKERD_PID=
	fi
	if [ -n "$W" ]; then
		# bridges this engine made and left (docker0 if any, br-<network>)
		for b in $(new_bridges); do
			ip link delete "$b" 2>/dev/null
		done
		for m in $(awk -v w="$W" -v e="$ENGINE" 'index($2, w) == 1 || index($2, e) == 1 { print $2 }' /proc/self/mounts | sort -r); do
			umount -l "$m" 2>/dev/null
		done
		rm -rf "$W"
		W=
	fi
}
trap 'cleanup' EXIT
trap 'notok "interrupted"; cleanup; finish' INT TERM

# The steps, in one function: bash reads all of it before it runs any, so
# an edit of this file during a run does not change that run.
main() {
echo "TAP version 13"

# --- what this leg needs ----------------------------------------------------
say "packages: docker.io docker-compose mmdebstrap"
missing=$(for p in docker.io docker-compose mmdebstrap iproute2 openssl curl; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
done)
if [ -n "$missing" ]; then
	say "installing:" $missing
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null ||
		bail "install $missing"
fi
check "docker-compose $(docker-compose version --short 2>/dev/null) and Debian's docker client" \
	test -x $DOCKER -a -x /usr/sbin/dockerd

# --- the compose file as both compose versions read it ---------------------
export HACME_HTTP_PUBLISH HACME_HTTPS_PUBLISH
P80=$(free_port) P443=$(free_port)
HACME_HTTP_PUBLISH=127.0.0.1:$P80 HACME_HTTPS_PUBLISH=127.0.0.1:$P443
check "docker-compose 1.29 accepts docker/docker-compose.yml (config -q)" \
	docker-compose -f "$SRC/docker/docker-compose.yml" --profile demo config -q
check "no top-level name: (compose v1 refuses it)" \
	no_top_level_name
CONFIG=$(compose config)
check "services of --profile demo: init haproxy hacme app pebble" \
	test "$(services_of "$CONFIG")" = "app hacme haproxy init pebble "
check "ports published on 127.0.0.1 only" published_on_loopback_only "$CONFIG"
check "compose 1.29: only haproxy shares a network with hacme, an internal one (and pebble hacme's way to the CA)" \
	test "$(hacme_neighbours_in "$CONFIG")" = "$NEIGHBOURS"

# --- base image --------------------------------------------------------------
mkdir -p "$CACHE"
BASE=$CACHE/debian12-minbase-1.tar	# -N: the recipe below; change both together
exec 9>"$CACHE/engine.lock"
flock -w 900 9 || bail "another test-containers holds $CACHE/engine.lock"
if [ "${HACME_CT_FRESH:-0}" = 1 ]; then
	say "HACME_CT_FRESH=1: no base tarball, no build cache, no compose v2"
	rm -rf "$ENGINE" "$BASE" "$CACHE/compose-v2"
fi
# compose v2 is fetched meanwhile (the base, the engine, the images)
fetch_compose_v2 >/dev/null 2>&1 &
V2_FETCH=$!
if [ -s "$BASE" ] && [ -z "$(find "$BASE" -mtime +30)" ]; then
	say "base: cached $BASE"
else
	mapfile -t sources < <(apt_sources bookworm)
	[ ${#sources[@]} -gt 0 ] || bail "no bookworm source in /etc/apt/sources.list*"
	say "base: mmdebstrap --variant=minbase bookworm from this machine's mirror (${#sources[@]} sources)"
	rm -f "$CACHE"/debian12-minbase*.tar
	# dpkg without fsync and apt without translations, in the image too, as
	# the official debian images have them (/etc/dpkg/dpkg.cfg.d/docker-apt-speedup)
	if mmdebstrap --quiet --variant=minbase --format=tar --include=ca-certificates \
		--dpkgopt=force-unsafe-io --aptopt='Acquire::Languages "none"' bookworm \
		"$CACHE/debian12-minbase.new.tar" "${sources[@]}" >"$CACHE/mmdebstrap.log" 2>&1; then
		mv "$CACHE/debian12-minbase.new.tar" "$BASE"
	else
		tail -n 20 "$CACHE/mmdebstrap.log"
		bail "mmdebstrap bookworm (log: $CACHE/mmdebstrap.log)"
	fi
fi
ok "base tarball $(du -m "$BASE" | cut -f1) MB"

# --- a private engine ----------------------------------------------------------
W=$(mktemp -d /tmp/hacme-ct.XXXXXX)
BRIDGES_BEFORE=$(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | tr '\n' ' ')
export DOCKER_HOST=unix://$W/docker.sock
unset DOCKER_CONTEXT DOCKER_CONFIG DOCKER_TLS_VERIFY DOCKER_CERT_PATH
say "dockerd: socket $W/docker.sock, exec root $W/exec, data root $ENGINE"
/usr/sbin/dockerd --data-root "$ENGINE" --exec-root "$W/exec" -H "unix://$W/docker.sock" \
	--pidfile "$W/dockerd.pid" --iptables=false --ip-masq=false --ip-forward=false \
	--bridge=none >"$W/dockerd.log" 2>&1 &
DOCKERD_PID=$!
if ! wait_for 60 $DOCKER info >/dev/null 2>&1; then
	tail -n 20 "$W/dockerd.log"
	bail "dockerd answers on its socket"
fi
ok "dockerd $($DOCKER version -f '{{.Server.Version}}') on a private socket (pid $DOCKERD_PID)"

# what an interrupted run may have left in the data root
$DOCKER ps -aq | xargs -r $DOCKER rm -f >/dev/null 2>&1
$DOCKER network prune -f >/dev/null 2>&1
$DOCKER volume prune -f >/dev/null 2>&1
BASE_ID=$(stat -c '%s-%Y' "$BASE")
if [ "$($DOCKER image inspect -f '{{index .Config.Labels "hacme.base"}}' debian:12 2>/dev/null)" = "$BASE_ID" ] &&
	$DOCKER image inspect debian:12-slim >/dev/null 2>&1; then
	ok "debian:12 and debian:12-slim: imported from this tarball by an earlier run"
else
	check "docker import the base as debian:12 and debian:12-slim" import_base
fi

# --- images ------------------------------------------------------------------
say "images: haproxy:2.6 stand-in, hacme, hacme-pebble (docker build --network host)"
build() {
	local tag=$1 file=$2 ctx=$3 t=$(date +%s)
	if $DOCKER build -q --network host -t "$tag" -f "$file" "$ctx" >"$W/build-$tag.log" 2>&1; then
		echo "$tag $(( $(date +%s) - t ))s" >"$W/build-$tag.ok"
	fi
}
build haproxy:2.6 "$SRC/tests/containers/haproxy.Dockerfile" "$SRC/tests/containers" &
b1=$!
build hacme-pebble "$SRC/docker/pebble/Dockerfile" "$SRC/docker/pebble" &
b2=$!
build hacme "$SRC/docker/Dockerfile" "$SRC" &
b3=$!
wait $b1 $b2 $b3
built=1
for tag in haproxy:2.6 hacme-pebble hacme; do
	if [ -f "$W/build-$tag.ok" ]; then
		ok "docker build $(cat "$W/build-$tag.ok")"
	else
		tail -n 15 "$W/build-$tag.log"
		notok "docker build $tag"
		built=0
	fi
done
# (a failed check of the file above does not stop the run: only a build does)
[ "$built" = 1 ] || bail "images built"

# --- the compose file as compose v2 reads it ----------------------------------
if wait $V2_FETCH; then
	V2=$CACHE/compose-v2/docker-compose
	check "$($V2 version --short 2>/dev/null | sed 's/^/docker compose v/') accepts docker/docker-compose.yml (config -q)" \
		$V2 -f "$SRC/docker/docker-compose.yml" --profile demo config -q
	V2CONFIG=$($V2 -f "$SRC/docker/docker-compose.yml" --profile demo config)
	check "compose v2: services of --profile demo" \
		test "$(services_of "$V2CONFIG")" = "app hacme haproxy init pebble "
	check "compose v2: only haproxy shares a network with hacme, an internal one (and pebble hacme's way to the CA)" \
		test "$(hacme_neighbours_in "$V2CONFIG")" = "$NEIGHBOURS"
else
	notok "compose v2 from Debian's archive (log: $CACHE/compose-v2.new/apt.log)"
fi

# --- the stack -----------------------------------------------------------------
say "compose --profile demo up -d (project $PROJECT, :80 -> 127.0.0.1:$P80, :443 -> 127.0.0.1:$P443)"
UP=1
t=$(date +%s)
if up; then
	ok "compose --profile demo up -d"
else
	compose ps
	compose logs --no-color --tail 20
	bail "compose --profile demo up -d"
fi
if wait_for 180 issued_cert; then
	S1=$(served_serial)
	ok "certificate from pebble for $NAME and www.$NAME served by SNI on 127.0.0.1:$P443, $(( $(date +%s) - t )) s after up (serial $S1)"
else
	notok "certificate for $NAME served on 127.0.0.1:$P443"
	compose logs --no-color --tail 30 hacme haproxy pebble
	S1=none
fi
check "https://$NAME/ reaches the app through HAProxy" app_answers
check "unknown token on :80 -> 404 from the agent (SPOE up)" challenge_status_is 404
check "healthchecks: haproxy hacme app pebble healthy" wait_for 60 all_healthy
check "restart policy unless-stopped (haproxy hacme app pebble)" restart_policies
check "SPOP port 12345 not published on the host" not_published "$(cid hacme)"

# --- who reaches the agent ----------------------------------------------------
# HAProxy reaches hacme over the network they share (the challenges above
# and below are answered through it); the app, on HAProxy's other network,
# must not: no name, no route.
AGENT_NET=$(shared_networks "$(cid haproxy)" "$(cid hacme)" | head -n 1)
AGENT_IP=$(ip_on "$(cid hacme)" "$AGENT_NET")
say "HAProxy reaches hacme on ${AGENT_NET#"${PROJECT}"_} at $AGENT_IP"
N=$(hacme_neighbours)
check "running: only haproxy shares a network with hacme, an internal one (and pebble hacme's way to the CA): $N" \
	test "$N" = "$NEIGHBOURS"
check "the app resolves haproxy, not hacme" app_cannot_resolve_hacme
check "the app connects to haproxy:80, not to hacme:12345" app_cannot_connect_hacme hacme
# This engine has no iptables (no DOCKER-ISOLATION rules between networks):
# only a host that does not forward keeps the app from hacme's address.
if [ "$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)" = 0 ]; then
	check "the app connects to haproxy:80, not to hacme's address $AGENT_IP:12345" \
		app_cannot_connect_hacme "$AGENT_IP"
else
	say "not checked: the app to $AGENT_IP:12345 (this host forwards between bridges and the engine runs without iptables)"
fi
check "hacme's default route goes through the ca network, not the internal one" \
	default_route_via "$(cid hacme)" "${PROJECT}_ca"
# the runtime API and hacme's control socket are unix sockets (volumes run/, state/)
check "hacme's SPOP port listens on its address on the agent network only ($AGENT_IP), not on ca's" \
	test "$(listening_addrs "$(cid hacme)" 12345)" = "$AGENT_IP "
check "hacme listens on TCP beyond its loopback on 12345 only (control socket: unix)" \
	test "$(listening_ports "$(cid hacme)")" = "12345 "
check "haproxy listens on TCP on 80 and 443 only (runtime API: unix)" \
	test "$(listening_ports "$(cid haproxy)")" = "80 443 "
WORKERS=$(haproxy_workers)

# --- hacme stopped: :443 stays -------------------------------------------------
HACME_ID=$(cid hacme)
OLD_IP=$(ip_on "$HACME_ID" "$AGENT_NET")
say "stop hacme (address $OLD_IP)"
compose stop hacme >/dev/null 2>&1
check "hacme stopped" stopped "$HACME_ID"
check ":443 still serves serial $S1 with hacme down" serves_serial "$S1"
check "the app still answers with hacme down" app_answers
check "challenge path -> 503 at once with the agent down" wait_for 30 challenge_status_is 503

# --- HAProxy restarted while hacme is down ---------------------------------------
say "restart haproxy while hacme is stopped"
HAP_START=$($DOCKER inspect -f '{{.State.StartedAt}}' "$(cid haproxy)")
compose restart haproxy >/dev/null 2>&1
check "haproxy restarted (new start time) and running" started_after "$(cid haproxy)" "$HAP_START"
check ":443 served again after the restart (serial $S1, from the crt-list on disk)" wait_for 30 serves_serial "$S1"
check "the app answers after the restart" wait_for 30 app_answers
sleep 5
check "haproxy still running 5 s later (did not exit on the missing agent name)" running "$(cid haproxy)"
WORKERS=$(haproxy_workers)

# --- hacme back with a new address --------------------------------------------
# Containers that hold the address hacme had on the network HAProxy reaches
# it over, so that it gets another one there.
for i in $(seq 1 6); do
	c=$($DOCKER run -d --label "hacmeci.squatter=$PROJECT" --network "$AGENT_NET" --entrypoint sleep hacme 600 2>/dev/null) || break
	[ "$(ip_on "$c" "$AGENT_NET")" = "$OLD_IP" ] && break
done
say "start hacme again (its old address $OLD_IP is taken by another container)"
compose start hacme >/dev/null 2>&1
wait_for 30 running "$HACME_ID"
NEW_IP=$(ip_on "$HACME_ID" "$AGENT_NET")
check "hacme runs with a new address ($OLD_IP -> $NEW_IP)" test -n "$NEW_IP" -a "$NEW_IP" != "$OLD_IP"
check "challenge path -> 404 from the agent at its new address" wait_for 60 challenge_status_is 404
say "renew --force $NAME (pebble validates http-01 through HAProxy -> agent at $NEW_IP)"
if compose exec -T hacme hacme -c /etc/hacme/hacme.cfg renew --force "$NAME" >"$W/renew.log" 2>&1 &&
	grep -q '0 of 2 authorizations reused' "$W/renew.log"; then
	ok "hacme renew --force $NAME: both names validated again by pebble"
else
	tail -n 20 "$W/renew.log"
	notok "hacme renew --force $NAME"
fi
if wait_for 60 issued_cert "$S1"; then
	ok "renewed certificate served (serial $S1 -> $(served_serial))"
else
	notok "renewed certificate served (still $(served_serial))"
fi
check "HAProxy was not reloaded (no new worker since the restart)" test "$(haproxy_workers)" = "$WORKERS"

# --- hacme started while a name of its config does not resolve ----------------
S2=$(served_serial)
say "stop haproxy, restart hacme: its tls-check host 'haproxy' does not resolve"
compose stop haproxy >/dev/null 2>&1
SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
compose restart hacme >/dev/null 2>&1
check "hacme waits for the name instead of exiting" wait_for 30 hacme_logged "$SINCE" "waiting for it to resolve"
check "hacme still running" running "$HACME_ID"
say "start haproxy"
compose start haproxy >/dev/null 2>&1
check "hacme goes on once 'haproxy' resolves" wait_for 60 hacme_logged "$SINCE" "every name of the configuration resolves: starting"
check ":443 serves serial $S2 again" wait_for 30 serves_serial "$S2"
check "challenge path -> 404 from the agent again" wait_for 60 challenge_status_is 404

# --- down -v ---------------------------------------------------------------------
say "compose down -v"
$DOCKER ps -aq --filter "label=hacmeci.squatter=$PROJECT" | xargs -r $DOCKER rm -f >/dev/null 2>&1
check "compose down -v" down
UP=0
check "no container, volume or network of the project left" project_gone

# --- the engine ------------------------------------------------------------------
# images this run replaced (the build cache stays for the next run)
$DOCKER image prune -f >/dev/null 2>&1
WDIR=$W
PID=$DOCKERD_PID
cleanup
check "dockerd and its containerd stopped" engine_gone "$PID" "$WDIR"
check "no bridge, mount or exec root left (the data root stays: build cache)" nothing_left "$WDIR"
say "test-containers took $(( $(date +%s) - T0 )) s"
finish
}

main "$@"
