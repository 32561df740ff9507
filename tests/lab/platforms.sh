#!/bin/sh
# Newer platforms from Debian's archive, without touching the system's apt
# configuration: pebble 2.10 and HAProxy 3.2 LTS from sid, cached.
#
# Entry points (each prints one path on stdout, progress on stderr; safe to
# run concurrently, a lock serialises the work; a second call is instant):
#
#   tests/lab/platforms.sh pebble      -> DIR with DIR/pebble and
#                                         DIR/pebble-challtestsrv (2.10.x)
#   tests/lab/platforms.sh haproxy     -> DIR with DIR/haproxy, a wrapper that
#                                         runs sid's /usr/sbin/haproxy (3.2.x)
#                                         in a chroot; PATH=DIR:$PATH switches
#                                         every `haproxy` the lab starts
#   tests/lab/platforms.sh versions    -> what is cached, one line each
#
# From Python: lab.pebble(newer=True) (tests/lab/lab.py) runs this script and
# starts pebble 2.10 with a config it understands (profiles, User-Agent on
# every probe, challtestsrv's -dnsserver). Example for dns-persist-01:
#     with Lab() as lab:
#         pb = lab.pebble(newer=True, dns_server='127.0.0.1:%d' % knot_port)
# (dns_server: where pebble resolves every name; default pebble-challtestsrv)
#
# Cache: $HACME_CI_CACHE (default /var/cache/hacme-ci, ~/.cache/hacme-ci when
# not root): pebble-2.10/ and
# haproxy-3.2/ (the chroot: 55 MB, about a minute to make). The mirror is
# the machine's own, read from /etc/apt/sources.list{,.d/*} at run time
# (override: HACME_DEBIAN_MIRROR=http://host/debian). Needs root for the
# chroot (chroot, bind mounts); pebble needs nothing but apt-get and dpkg.
set -eu

if [ "$(id -u)" = 0 ]; then
	CACHE=${HACME_CI_CACHE:-/var/cache/hacme-ci}
else
	CACHE=${HACME_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hacme-ci}
fi
SUITE=${HACME_NEWER_SUITE:-sid}

log() { echo "platforms: $*" >&2; }
die() { echo "platforms: $*" >&2; exit 1; }

# The Debian mirror this machine already uses (first non-security "deb" URI).
mirror() {
	if [ -n "${HACME_DEBIAN_MIRROR:-}" ]; then echo "$HACME_DEBIAN_MIRROR"; return; fi
	m=$(
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -r "$f" ] && sed -n 's/^[[:space:]]*deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}\([^[:space:]]*\)[[:space:]]\{1,\}\([^[:space:]]*\).*/\2 \3/p' "$f"
		done
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -r "$f" ] && awk '
				/^[[:space:]]*$/ { if (u != "" && t ~ /(^| )deb( |$)/) print u, s; u = s = t = ""; next }
				/^URIs:/ { u = $2 } /^Suites:/ { s = $2 } /^Types:/ { sub(/^Types:[[:space:]]*/, ""); t = $0 }
				END { if (u != "" && t ~ /(^| )deb( |$)/) print u, s }' "$f"
		done | cat
	)
	echo "$m" | awk '$1 ~ /\/debian\/?$/ && $2 !~ /security/ { sub(/\/$/, "", $1); print $1; exit }'
}

# A private apt configuration for $SUITE in $1 (lists and cache there).
apt_private() {
	d=$1
	url=$(mirror)
	[ -n "$url" ] || die "no Debian mirror found in /etc/apt/sources.list*; set HACME_DEBIAN_MIRROR=http://HOST/debian"
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	echo "deb $url $SUITE main" > "$d/sources.list"
	arch=$(dpkg --print-architecture)
	APT="-o Dir::Etc::sourcelist=$d/sources.list -o Dir::Etc::sourceparts=/dev/null
	     -o APT::Architecture=$arch -o APT::Architectures=$arch
	     -o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache -o Debug::NoLocking=1
	     -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=$(id -un)
	     -o Acquire::Check-Valid-Until=false -q"
	log "apt-get update ($url $SUITE)"
	# shellcheck disable=SC2086
	apt-get $APT update >"$d/update.log" 2>&1 || { cat "$d/update.log" >&2; die "apt-get update of $SUITE failed"; }
	MIRROR_URL=$url
}

lock() {
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock-$1"
	flock 9
}

cmd_pebble() {
	dir=$CACHE/pebble-2.10
	lock pebble
	if [ ! -x "$dir/bin/pebble" ] || [ ! -x "$dir/bin/pebble-challtestsrv" ]; then
		rm -rf "$dir.new"
		apt_private "$dir.new/apt"
		# shellcheck disable=SC2086
		ver=$(apt-cache $APT policy pebble | awk '/Candidate:/ { print $2 }')
		case "$ver" in
		2.1[0-9]*|2.[2-9][0-9]*|[3-9].*) ;;
		*) die "$SUITE has pebble '$ver', not 2.10 or newer" ;;
		esac
		log "downloading pebble $ver"
		# shellcheck disable=SC2086
		(cd "$dir.new/apt" && apt-get $APT download pebble >/dev/null) || die "apt-get download pebble failed"
		dpkg -x "$dir.new"/apt/pebble_*.deb "$dir.new/root"
		mkdir -p "$dir.new/bin"
		for b in pebble pebble-challtestsrv; do
			[ -x "$dir.new/root/usr/bin/$b" ] || die "the pebble package has no /usr/bin/$b"
			ln -s ../root/usr/bin/$b "$dir.new/bin/$b"
		done
		echo "$ver" > "$dir.new/version"
		rm -rf "$dir.new/apt/cache" "$dir.new/apt/lists" "$dir"
		mv "$dir.new" "$dir"
	fi
	echo "$dir/bin"
}

# The chroot: the files of haproxy's dependency closure in $SUITE (plus dash
# for the wrapper), unpacked with dpkg -x: about 50 packages, 17 MB to
# download, a 55 MB tree, a minute. No maintainer script runs and nothing
# of it is configured: enough for /usr/sbin/haproxy, not a system. (The
# same with mmdebstrap --variant=apt took 2.5 to 5 minutes here.)
cmd_haproxy() {
	dir=$CACHE/haproxy-3.2
	lock haproxy
	if [ ! -x "$dir/root/usr/sbin/haproxy" ] || [ ! -x "$dir/bin/haproxy" ]; then
		[ "$(id -u)" = 0 ] || die "the HAProxy chroot needs root (chroot, bind mounts)"
		rm -rf "$dir.new"
		mkdir -p "$dir.new/bin" "$dir.new/root"
		apt_private "$dir.new/apt"
		# shellcheck disable=SC2086
		pkgs=$(apt-cache $APT depends --recurse --no-recommends --no-suggests \
			--no-conflicts --no-breaks --no-replaces --no-enhances haproxy dash |
			grep -v '^[ <]' | sort -u)
		case " $(echo $pkgs) " in *" haproxy "*) ;; *) die "$SUITE has no haproxy package" ;; esac
		log "downloading haproxy and $(($(echo "$pkgs" | wc -l) - 1)) packages it needs"
		# shellcheck disable=SC2086
		(cd "$dir.new/apt" && apt-get $APT download $pkgs >download.log 2>&1) ||
			{ tail -5 "$dir.new/apt/download.log" >&2; die "apt-get download failed"; }
		for f in "$dir.new"/apt/*.deb; do
			dpkg -x "$f" "$dir.new/root" || die "dpkg -x $f failed"
		done
		for l in bin sbin lib lib64; do
			[ -e "$dir.new/root/$l" ] || ln -s "usr/$l" "$dir.new/root/$l"
		done
		mkdir -p "$dir.new/root/dev" "$dir.new/root/proc" "$dir.new/root/tmp" "$dir.new/root/run"
		v=$(chroot "$dir.new/root" /usr/sbin/haproxy -v 2>&1 | head -n 1)
		case "$v" in
		*" version 3.2."*) echo "$v" > "$dir.new/version" ;;
		*) die "the chroot's haproxy is not 3.2: $v" ;;
		esac
		rm -rf "$dir.new/apt" "$dir"
		mv "$dir.new" "$dir"
	fi
	write_wrapper "$dir/bin/haproxy" "$dir/root"
	echo "$dir/bin"
}

# The wrapper: `haproxy ARGS` runs ROOT/usr/sbin/haproxy ARGS in a private
# mount namespace where ROOT also sees /dev, /proc, /tmp, /run, the working
# directory, and the directory of every absolute path found in ARGS or in
# the environment (configs, Lua, certificates, sockets: the lab passes them
# so), and the host's /etc/resolv.conf and /etc/hosts; HACME_CHROOT_BIND
# adds more. The master's re-exec on reload runs
# /usr/sbin/haproxy inside the same chroot: reloads use sid's binary and
# libraries. Rewritten on every call, so the repository's version is used.
write_wrapper() {
	cat > "$1" <<EOF
#!/bin/sh
# HAProxy from $SUITE in a chroot (written by tests/lab/platforms.sh).
exec unshare --mount --propagation private "\$(dirname "\$0")/haproxy-in-chroot" "$2" "\$@"
EOF
	cat > "$(dirname "$1")/haproxy-in-chroot" <<'EOF'
#!/bin/sh
set -eu
root=$1; shift
bind() {
	case "$1" in /|/usr|/usr/*|/etc|/bin|/sbin|/lib|/lib64|/var|/boot|/sys) return 0 ;; esac
	[ -e "$1" ] || return 0
	d=$1; [ -d "$d" ] || d=$(dirname "$d")
	[ -d "$root$d" ] || mkdir -p "$root$d"
	mountpoint -q "$root$d" || mount --rbind "$d" "$root$d"
}
for d in /dev /proc /tmp /var/tmp /run "$PWD" ${HACME_CHROOT_BIND:-}; do bind "$d"; done
# the host's name resolution (`resolvers default` is made from resolv.conf)
for f in /etc/resolv.conf /etc/hosts; do
	[ -f "$f" ] || continue
	[ -f "$root$f" ] && [ ! -L "$root$f" ] || { rm -f "$root$f"; : > "$root$f"; }
	mount --bind "$f" "$root$f"
done
for a in "$@"; do case "$a" in /*) bind "$a" ;; esac; done
env | sed -n 's/^[A-Za-z_][A-Za-z0-9_]*=\(\/[^:]*\)$/\1/p' | while IFS= read -r v; do bind "$v"; done
exec chroot "$root" sh -c 'cd "$1" && shift && exec /usr/sbin/haproxy "$@"' sh "$PWD" "$@"
EOF
	chmod 755 "$1" "$(dirname "$1")/haproxy-in-chroot"
}

# lego (a Go binary, libc only) for bench_dns.py's comparison of its
# rfc2136 provider with hacme's dns-01.
cmd_lego() {
	dir=$CACHE/lego
	lock lego
	if [ ! -x "$dir/bin/lego" ]; then
		rm -rf "$dir.new"
		apt_private "$dir.new/apt"
		# shellcheck disable=SC2086
		ver=$(apt-cache $APT policy lego | awk '/Candidate:/ { print $2 }')
		[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "$SUITE has no lego package"
		log "downloading lego $ver"
		# shellcheck disable=SC2086
		(cd "$dir.new/apt" && apt-get $APT download lego >/dev/null) || die "apt-get download lego failed"
		dpkg -x "$dir.new"/apt/lego_*.deb "$dir.new/root"
		[ -x "$dir.new/root/usr/bin/lego" ] || die "the lego package has no /usr/bin/lego"
		mkdir -p "$dir.new/bin"
		ln -s ../root/usr/bin/lego "$dir.new/bin/lego"
		echo "$ver" > "$dir.new/version"
		rm -rf "$dir.new/apt/cache" "$dir.new/apt/lists" "$dir"
		mv "$dir.new" "$dir"
	fi
	echo "$dir/bin"
}

cmd_versions() {
	for f in "$CACHE/pebble-2.10/version" "$CACHE/haproxy-3.2/version" "$CACHE/lego/version"; do
		[ -r "$f" ] && echo "$(basename "$(dirname "$f")"): $(cat "$f")"
	done
	true
}

case "${1:-}" in
pebble) cmd_pebble ;;
haproxy) cmd_haproxy ;;
lego) cmd_lego ;;
versions) cmd_versions ;;
mirror) mirror ;;
*) echo "usage: $0 pebble|haproxy|lego|versions|mirror" >&2; exit 2 ;;
esac
