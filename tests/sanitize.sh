#!/usr/bin/env bash
# tests/sanitize.sh - `make test-sanitize` (a CI leg): the unit and fuzz-corpus
# suites and every integration suite, built in their own dir with -Db_sanitize=address,undefined
# and run with leak detection on. Every sanitizer report of any of our
# processes (also the daemons the integration tests start and stop) is a
# failure, printed with its first lines. RSS bounds are skipped in this
# build only (test_agent.py reads the build options).
#   SAN_BUILD=build-sanitize       the build dir
#   SAN_SUITES="agent ..."         only these integration suites (names);
#                                  default: every suite
#   SAN_JOBS=3                     suites run at once (they mostly wait on
#                                  pebble, renewals and timeouts, not on CPU)
# Last line: 'N passed, N failed'.
set -u
cd "$(dirname "$0")/.."
BUILD=${SAN_BUILD:-build-sanitize}
SUITES=${SAN_SUITES:-}
JOBS=${SAN_JOBS:-3}
start=$(date +%s)
reports=$(mktemp -d /tmp/hacme-sanitize.XXXXXX)
trap 'rm -rf "$reports"' EXIT

if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" -Db_sanitize=address,undefined -Doptimization=1 \
		-Dc_args="-fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
		>"$BUILD.setup.log" 2>&1 ||
		{ tail -n 20 "$BUILD.setup.log"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$BUILD" >"$BUILD.ninja.log" 2>&1; then
	grep -E "error|FAILED" "$BUILD.ninja.log" | head -n 20
	echo "0 passed, 1 failed"
	exit 1
fi
echo "sanitize: built in $(( $(date +%s) - start )) s"

# Reports go to files (one per process), so a daemon's report is seen even
# when its test only looks at its replies.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:log_path=$reports/asan:log_exe_name=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan:log_exe_name=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"

meson test -C "$BUILD" --no-rebuild --suite unit --suite fuzz --num-processes 2 \
	--logbase sanitize-unit >/dev/null 2>&1
t1=$(date +%s)
echo "sanitize: unit and fuzz replay in $(( t1 - start )) s"
# shellcheck disable=SC2086
meson test -C "$BUILD" --no-rebuild --num-processes "$JOBS" --logbase sanitize-integration \
	${SUITES:---suite integration} >/dev/null 2>&1
echo "sanitize: integration (${SUITES:-every suite}) in $(( $(date +%s) - t1 )) s"

passed=0 failed=0
for log in "$BUILD/meson-logs/sanitize-unit.json" "$BUILD/meson-logs/sanitize-integration.json"; do
	out=$(python3 tests/summary.py "$log" 2>&1)
	grep '^FAILED' <<<"$out"
	line=$(tail -n 1 <<<"$out")
	if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
	else
		echo "FAILED no results in $log"
		failed=$((failed + 1))
	fi
done
# Each sanitizer report is one more failure, whichever process wrote it.
for r in "$reports"/*; do
	[ -e "$r" ] || continue
	failed=$((failed + 1))
	echo "FAILED sanitizer report $(basename "$r"):"
	grep -E 'ERROR|FATAL|fatal error|runtime error|SUMMARY|#[0-9] ' "$r" | head -n 12 | sed 's/^/    /'
done
echo "sanitize: $(( $(date +%s) - start )) s in all"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
