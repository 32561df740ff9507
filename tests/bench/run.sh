#!/bin/bash
# run.sh [BUILD_DIR] - `make bench`: every hacme benchmark in order, then one
# summary block. Figures, not tests: nothing here has a time limit.
#   1. HTTP through the real haproxy: the agent path vs a native map lookup
#      vs the acme.sh stateless answer, HAProxy 2.6 and 3.2, each with the
#      agent over TCP and over a unix socket, in one interleaved run
#      (bench_agent_http.py, wrk)
#   2. SPOP straight to hacme-spoa: spop_loadgen, pipelined NOTIFYs, the
#      agent pinned to CPU 0 and the load generator to CPU 1, with
#      --log-level warning, info (stderr to a file) and info (stderr to
#      /dev/null)
#   3. the agent's memory with 10,000 pending tokens (bench_agent_rss.py)
#   4. hacme issue vs certbot --standalone, one pebble, one haproxy
#      (bench_issue.py: its BENCH_ISSUE_* / BENCH_CERTBOT_* variables)
#   5. 1000 certificates into a running haproxy: the runtime API
#      (acme/deploy.c) vs files + reload, under wrk (bench_deploy.py:
#      BENCH_DEPLOY_CERTS, BENCH_DEPLOY_CONNS)
#   6. `hacme check --offline` with 10,000 .. 80,000 cert sections
#      (bench_config.py: BENCH_CONFIG_SIZES, BENCH_CONFIG_ROUNDS)
#   7. cluster mode, redis + 3 nodes: token publication -> every node
#      holding it, issuance -> every node serving, orders and Redis
#      commands per certificate (bench_cluster.py: BENCH_CLUSTER_TOKENS,
#      BENCH_CLUSTER_CERTS)
#   8. dns-01, a wildcard + base name against knot: hacme issue -> served
#      vs lego's rfc2136 provider -> certificate file (bench_dns.py:
#      BENCH_DNS_ROUNDS, BENCH_DNS_LEGO=0)
#   9. the agent under a flood of 10,000 SPOP connections (idle, slowloris,
#      pipelining without reading): peak RSS, legitimate answers through
#      haproxy (bench_agent_flood.py: BENCH_FLOOD_CONNS, BENCH_FLOOD_SECONDS)
# Environment: BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNS, BENCH_TOKENS,
# BENCH_AGENT_TRANSPORTS ("tcp unix"), BENCH_PATHS (HTTP, see
# bench_agent_http.py), BENCH_HAPROXY_32=0 (HTTP on 2.6 only);
# BENCH_SPOP_CONNS (connection counts, "1 4 16"),
# BENCH_SPOP_SECONDS (5), BENCH_SPOP_WINDOW (NOTIFYs in flight per
# connection, 256), BENCH_SPOP_REPEAT (runs per configuration, the best is
# kept: 2). The agent's stderr goes to a file in the work dir (deleted after
# each run) or, in the last SPOP row, to /dev/null. Exit status 1 when a
# benchmark failed or saw a wrong answer.
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd) || { echo "run.sh: no build dir ${1:-}" >&2; exit 1; }
spop_conns=${BENCH_SPOP_CONNS:-1 4 16}
spop_secs=${BENCH_SPOP_SECONDS:-5}
spop_window=${BENCH_SPOP_WINDOW:-256}
spop_repeat=${BENCH_SPOP_REPEAT:-2}
tick=$(getconf CLK_TCK)
ncpu=$(nproc)
work=$(mktemp -d /tmp/hacme-bench.XXXXXX)
agent_pid=
failed=0
summary=()

cleanup() {
	if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
		kill -TERM "$agent_pid"
		wait "$agent_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ninja -C "$build" spoa/hacme-spoa tests/bench/spop_loadgen >/dev/null || {
	echo "run.sh: building hacme-spoa and spop_loadgen in $build failed" >&2; exit 1; }
spoa=$build/spoa/hacme-spoa
loadgen=$build/tests/bench/spop_loadgen

export HACME_BUILD=$build HACME_SRC=$src PYTHONPATH=$src/tests/lab PYTHONDONTWRITEBYTECODE=1

section() { printf '\n=== %s\n' "$*"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

load_start=$(loadavg)
section "machine: $ncpu CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $load_start"

# --- 1. HTTP through haproxy ------------------------------------------------
section "1. HTTP through haproxy: agent vs map vs stateless (wrk)"
# Debian 12's HAProxy 2.6 and, interleaved with it, 3.2 LTS from sid in a
# chroot (tests/lab/platforms.sh; BENCH_HAPROXY_32=0 skips it)
haps=(-)
if [ "${BENCH_HAPROXY_32:-1}" != 0 ]; then
	if hap32=$(sh "$src/tests/lab/platforms.sh" haproxy 2>"$work/platforms.err"); then
		haps+=("$hap32")
	else
		tail -n 5 "$work/platforms.err"
		summary+=("HAProxy 3.2: not benchmarked (tests/lab/platforms.sh haproxy failed)")
	fi
fi
# shown as it runs; a file, not tee /dev/stderr (that truncates a redirected log)
(set -o pipefail; python3 "$here/bench_agent_http.py" "${haps[@]}" 2>&1 | tee "$work/http.out") ||
	{ failed=1; summary+=("HTTP benchmark FAILED (see its output)"); }
while IFS= read -r l; do summary+=("$l"); done < <(sed -n 's/^SUMMARY //p' "$work/http.out")

# --- 2. SPOP load generator -------------------------------------------------
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# spop_run LEVEL CONNS STDERR-FILE: one agent, one loadgen run; prints the
# loadgen's RESULT line plus the agent's CPU ticks (utime + stime) and its
# wall-clock life in seconds.
spop_run() {
	local level=$1 conns=$2 errfile=$3 port ctl i res ticks t0 t1
	port=$(free_port)
	t0=$(date +%s.%N)
	ctl=$work/agent.ctl
	rm -f "$ctl"
	if [ "$ncpu" -ge 2 ]; then
		taskset -c 0 "$spoa" --listen "127.0.0.1:$port" --control "unix@$ctl" \
			--log-level "$level" 2>"$errfile" &
	else
		"$spoa" --listen "127.0.0.1:$port" --control "unix@$ctl" \
			--log-level "$level" 2>"$errfile" &
	fi
	agent_pid=$!
	# the control socket is bound after the SPOP one: both are ready
	for i in $(seq 200); do
		[ -S "$ctl" ] && break
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -S "$ctl" ]; then
		echo "run.sh: hacme-spoa did not start" >&2
		return 1
	fi
	if [ "$ncpu" -ge 2 ]; then
		res=$(taskset -c 1 "$loadgen" --agent "127.0.0.1:$port" --control "unix@$ctl" \
			--conns "$conns" --window "$spop_window" --duration "$spop_secs")
	else
		res=$("$loadgen" --agent "127.0.0.1:$port" --control "unix@$ctl" \
			--conns "$conns" --window "$spop_window" --duration "$spop_secs")
	fi
	local rc=$?
	ticks=$(awk '{print $14 + $15}' "/proc/$agent_pid/stat")
	kill -TERM "$agent_pid"
	wait "$agent_pid" 2>/dev/null
	agent_pid=
	t1=$(date +%s.%N)
	printf '%s\n' "$res" | grep -v '^RESULT' >&2
	printf '%s ticks=%s wall=%s\n' "$(printf '%s\n' "$res" | grep '^RESULT')" "$ticks" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	return $rc
}

field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

section "2. SPOP straight to hacme-spoa (agent on CPU 0, spop_loadgen on CPU 1, window $spop_window, ${spop_secs} s after 1 s warm-up, best of $spop_repeat)"
spop_rows=()
best_warning=0
best_info=0
# spop_config LEVEL WHERE CONNS: best of $spop_repeat runs -> one row. CPU
# share is the agent's CPU time over its life: below ~90 % something else
# had the core, and capacity (1 / CPU per NOTIFY) is then the better figure.
spop_config() {
	local level=$1 where=$2 conns=$3 errfile n r rate us share logsz best=-1 row=
	for n in $(seq "$spop_repeat"); do
		errfile=/dev/null
		[ "$where" = file ] && errfile=$work/agent-$level-$conns.log
		echo "--- --log-level $level (stderr to $where), $conns connection(s), run $n"
		# not in $(...): agent_pid must stay visible to the EXIT trap
		if ! spop_run "$level" "$conns" "$errfile" >"$work/result"; then
			failed=1
			row=$(printf '  %-8s %-8s %5s conns: FAILED' "$level" "$where" "$conns")
			break
		fi
		r=$(cat "$work/result")
		rate=$(field "$r" rate)
		us=$(awk -v t="$(field "$r" ticks)" -v k="$tick" -v n="$(field "$r" agent_notifies)" \
			'BEGIN { printf "%.2f", (n > 0 ? t / k * 1e6 / n : 0) }')
		share=$(awk -v t="$(field "$r" ticks)" -v k="$tick" -v w="$(field "$r" wall)" \
			'BEGIN { printf "%.0f", (w > 0 ? 100 * t / k / w : 0) }')
		logsz=
		if [ "$errfile" != /dev/null ]; then
			logsz=$(awk -v b="$(stat -c %s "$errfile")" -v l="$(wc -l < "$errfile")" \
				'BEGIN { printf "log %d lines, %.0f MB", l, b / 1e6 }')
			rm -f "$errfile"
		fi
		echo "    $rate NOTIFY->ACK/s, agent CPU $us us per NOTIFY, ${share} % of a core, bad ACKs $(field "$r" bad)${logsz:+, $logsz}"
		[ "$(field "$r" bad)" = 0 ] || failed=1
		if [ "$rate" -gt "$best" ]; then
			best=$rate
			row=$(printf '  %-8s %-10s %3s conns: %9s NOTIFY->ACK/s  agent CPU %s us/NOTIFY (%3s %% of the core; capacity %s/s)  bad %s' \
				"$level" "$where" "$conns" "$rate" "$us" "$share" \
				"$(awk -v u="$us" 'BEGIN { printf "%.0f", (u > 0 ? 1e6 / u : 0) }')" "$(field "$r" bad)")
		fi
	done
	spop_rows+=("$row")
	if [ "$level" = warning ] && [ "$best" -gt "$best_warning" ]; then best_warning=$best; fi
	if [ "$level" = info ] && [ "$where" = file ] && [ "$best" -gt "$best_info" ]; then best_info=$best; fi
	return 0
}
for conns in $spop_conns; do spop_config warning file "$conns"; done
for conns in $spop_conns; do spop_config info file "$conns"; done
spop_config info /dev/null 4
verdict() { if [ "$1" -ge 1000000 ]; then echo met; else echo "NOT met"; fi; }
summary+=("SPOP NOTIFY->ACK on one agent core (spop_loadgen, window $spop_window per connection, best of $spop_repeat runs; stderr of the agent to a file in /tmp or to /dev/null):")
summary+=("${spop_rows[@]}")
summary+=("  best: warning $best_warning/s, info (file) $best_info/s; target >= 1,000,000/s: warning $(verdict "$best_warning"), info $(verdict "$best_info")")

# --- 3. memory ---------------------------------------------------------------
section "3. agent memory with 10,000 pending tokens"
(set -o pipefail; python3 "$here/bench_agent_rss.py" 2>&1 | tee "$work/rss.out") ||
	{ failed=1; summary+=("RSS benchmark FAILED (see its output)"); }
while IFS= read -r l; do summary+=("$l"); done < <(sed -n 's/^SUMMARY //p' "$work/rss.out")

# --- 4. hacme issue vs certbot ------------------------------------------------
section "4. hacme issue vs certbot certonly --standalone (pebble, haproxy)"
(set -o pipefail; ninja -C "$build" acme/hacme >/dev/null &&
	python3 "$here/bench_issue.py" 2>&1 | tee "$work/issue.out") ||
	{ failed=1; summary+=("issue benchmark FAILED (see its output)"); }
while IFS= read -r l; do summary+=("$l"); done < <(sed -n 's/^SUMMARY //p' "$work/issue.out" 2>/dev/null)

# --- 5. deploy: runtime API vs files + reload ---------------------------------
section "5. deploy 1000 certificates: runtime API vs files + reload (haproxy, wrk)"
(set -o pipefail; ninja -C "$build" tests/integration/deploy_driver >/dev/null &&
	python3 "$here/bench_deploy.py" 2>&1 | tee "$work/deploy.out") ||
	{ failed=1; summary+=("deploy benchmark FAILED (see its output)"); }
while IFS= read -r l; do summary+=("$l"); done < <(sed -n 's/^SUMMARY //p' "$work/deploy.out" 2>/dev/null)

# --- 6. hacme check against the number of sections ---------------------------
section "6. hacme check --offline: 10,000 .. 80,000 cert sections"
(set -o pipefail; ninja -C "$build" acme/hacme >/dev/null &&
	python3 "$here/bench_config.py" 2>&1 | tee "$work/config.out") ||
	{ failed=1; summary+=("config benchmark FAILED (see its output)"); }
while IFS= read -r l; do summary+=("$l"); done < <(sed -n 's/^SUMMARY //p' "$work/config.out" 2>/dev/null)

# --- 7. cluster mode ----------------------------------------------------------
section "7. cluster (redis, 3 nodes): token -> every node, issuance -> every node serving"
(set -o pipefail; ninja -C "$build" acme/hacme >/dev/null &&
	python3 "$here/bench_cluster.py" 2>&1 | tee "$work/cluster.out") ||
	{ failed=1; summary+=("cluster benchmark FAILED (see its output)"); }
while IFS= read -r l; do summary+=("$l"); done < <(sed -n 's/^SUMMARY //p' "$work/cluster.out" 2>/dev/null)

# --- 8. dns-01 ----------------------------------------------------------------
section "8. dns-01: a wildcard + base name through knot, hacme vs lego rfc2136"
(set -o pipefail; ninja -C "$build" acme/hacme >/dev/null &&
	python3 "$here/bench_dns.py" 2>&1 | tee "$work/dns.out") ||
	{ failed=1; summary+=("dns benchmark FAILED (see its output)"); }
while IFS= read -r l; do summary+=("$l"); done < <(sed -n 's/^SUMMARY //p' "$work/dns.out" 2>/dev/null)

# --- 9. the agent under a connection flood ------------------------------------
section "9. hacme-spoa under a flood of SPOP connections (idle, slowloris, pipelining)"
(set -o pipefail; python3 "$here/bench_agent_flood.py" 2>&1 | tee "$work/flood.out") ||
	{ failed=1; summary+=("flood benchmark FAILED (see its output)"); }
while IFS= read -r l; do summary+=("$l"); done < <(sed -n 's/^SUMMARY //p' "$work/flood.out" 2>/dev/null)

# --- summary -----------------------------------------------------------------
section "summary"
printf '%s\n' "machine: $ncpu CPU(s); load average at start $load_start, at end $(loadavg) (other work on the box skews every figure)"
printf '%s\n' "${summary[@]}"
[ "$failed" = 0 ] || echo "SOME BENCHMARKS FAILED"
exit "$failed"
