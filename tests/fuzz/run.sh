#!/usr/bin/env bash
# tests/fuzz/run.sh - `make fuzz`: every libFuzzer harness of tests/fuzz for a
# set time, built with clang, ASan and UBSan in its own build dir.
#   FUZZ_TIME=60   seconds per harness (default 60)
#   FUZZ_RUNS=N    stop a harness after N executions instead (FUZZ_TIME still bounds it)
#   FUZZ_ONLY="spop_session control"   only these harnesses
#   FUZZ_BUILD=build-fuzz              the build dir
#   FUZZ_JOBS=1                        harnesses run at once
# Each harness starts from tests/fuzz/corpus/<name> plus what earlier runs
# found (<build>/fuzz-corpus/<name>, kept between runs). A crash leaves its
# input as <build>/fuzz-crashes/crash-<name>-*: fix it, then copy the input
# into tests/fuzz/corpus/<name>/ so the replay suite keeps checking it.
# Last line: 'N passed, N failed' (a harness passes when it ran without a
# finding).
set -u
cd "$(dirname "$0")/../.."
BUILD=${FUZZ_BUILD:-build-fuzz}
TIME=${FUZZ_TIME:-60}
RUNS=${FUZZ_RUNS:-0}
start=$(date +%s)

if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" -Dfuzzing=true -Dintegration=false >"$BUILD.setup.log" 2>&1 ||
		{ tail -n 20 "$BUILD.setup.log"; echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C "$BUILD" >"$BUILD.ninja.log" 2>&1 || { grep -E "error|FAILED" "$BUILD.ninja.log" | head -n 20; echo "0 passed, 1 failed"; exit 1; }

# A small quarantine: with the default 256 MiB every 16 KiB frame buffer
# lands on fresh pages and page faults take most of the time (x5 slower);
# use-after-free within one input is still caught.
export ASAN_OPTIONS=${ASAN_OPTIONS:-max_malloc_fill_size=0:quarantine_size_mb=8:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

names=${FUZZ_ONLY:-$(sed -n "s/^ *\[ '\([a-z_0-9]*\)', files('fuzz_.*/\1/p" tests/fuzz/meson.build)}
jobs=${FUZZ_JOBS:-1}
mkdir -p "$BUILD/fuzz-crashes"

# One harness; its one-line result goes to $BUILD/fuzz-<name>.result.
fuzz_one() {
	local n=$1 exe="$BUILD/tests/fuzz/fuzz_$1" work="$BUILD/fuzz-corpus/$1"
	local log="$BUILD/fuzz-$1.log" res="$BUILD/fuzz-$1.result" t0 rc execs rate cov
	mkdir -p "$work"
	if [ ! -x "$exe" ]; then
		echo "FAIL fuzz_$n: not built" >"$res"
		return
	fi
	t0=$(date +%s)
	args=(-max_total_time="$TIME" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
	      -artifact_prefix="$BUILD/fuzz-crashes/crash-$n-")
	[ "$RUNS" != 0 ] && args+=(-runs="$RUNS")
	"$exe" "${args[@]}" "$work" "tests/fuzz/corpus/$n" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "ok fuzz_$n: ${execs:-?} executions in $(( $(date +%s) - t0 )) s (${rate:-?}/s, ${cov:-cov: ?}), no finding" >"$res"
	else
		{ echo "FAIL fuzz_$n: finding after ${execs:-?} executions (rc $rc), see $log:"
		  grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 5 | sed 's/^/    /'; } >"$res"
	fi
}

running=0
for n in $names; do
	rm -f "$BUILD/fuzz-$n.result"
	fuzz_one "$n" &
	running=$((running + 1))
	if [ $running -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
passed=0 failed=0
for n in $names; do
	r=$(cat "$BUILD/fuzz-$n.result" 2>/dev/null || echo "FAIL fuzz_$n: no result")
	case $r in
	ok*) passed=$((passed + 1)); echo "${r#ok }" ;;
	*) failed=$((failed + 1)); echo "${r#FAIL }" ;;
	esac
done
echo "fuzz: $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
