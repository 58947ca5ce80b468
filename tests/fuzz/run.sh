#!/bin/sh
# Run the libFuzzer targets built in build/fuzz/ over their kept corpora.
#
#   tests/fuzz/run.sh SECONDS [merge] [TARGET ...]
#
# First the inputs of tests/fuzz/crashes/TARGET/ (bugs found before) run
# once each, as regression tests.  Then each target (default: reader
# config) runs for SECONDS in one process (the machine is shared: no
# -jobs/-workers), reading tests/fuzz/corpus/TARGET (and the crash inputs,
# once they pass) and writing what it finds new to a scratch directory.  With "merge", the inputs of the scratch directory that add
# coverage are merged into the kept corpus (-merge=1); without it the kept
# corpus is left alone.  A crash, leak, timeout or out-of-memory leaves its
# input in build/fuzz/artifacts/ and makes the script exit 1, after the
# other targets have run.  Logs: build/fuzz/TARGET.log.
set -u
cd "$(dirname "$0")/../.."

secs=${1:?usage: tests/fuzz/run.sh SECONDS [merge] [TARGET ...]}
shift
merge=0
if [ "${1:-}" = merge ]; then
	merge=1
	shift
fi
[ $# -gt 0 ] || set -- reader config

out=${FUZZ_OUT:-build/fuzz}
mkdir -p "$out/artifacts"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# A smaller quarantine than ASan's 256 MB keeps -rss_limit_mb about the
# target's memory, not the sanitizer's.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32}
failed=0

for t in "$@"; do
	bin=$out/fuzz_$t corpus=tests/fuzz/corpus/$t log=$out/$t.log
	case $t in
	reader) opts="-dict=tests/fuzz/xml.dict -max_len=81920" ;;
	config) opts="-dict=tests/fuzz/ini.dict -max_len=4096" ;;
	*) echo "fuzz: unknown target '$t'" >&2; exit 2 ;;
	esac
	if [ ! -x "$bin" ]; then
		echo "fuzz: '$bin' is not built (make $bin)" >&2
		exit 2
	fi
	: >"$log"
	crashes=tests/fuzz/crashes/$t
	if [ -n "$(ls "$crashes" 2>/dev/null)" ]; then
		if ! "$bin" "$crashes"/* >>"$log" 2>&1; then
			echo "fuzz $t: a known crash input fails again:" >&2
			grep -E '^Running: |invariant broken|ERROR: ' "$log" |
				grep -B1 -E 'invariant broken|ERROR: ' | head -n 6 >&2
			failed=1
			crashes=
		fi
	else
		crashes=
	fi
	new=$(mktemp -d "$out/new-$t.XXXXXX")
	from=$(($(wc -l <"$log") + 1))
	# shellcheck disable=SC2086
	"$bin" "$new" "$corpus" $crashes $opts -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="$out/artifacts/$t-" >>"$log" 2>&1
	rc=$?
	# The last status line: "#N DONE cov: C ft: F corp: ... exec/s: E".
	stats=$(tail -n "+$from" "$log" | grep -E '^#[0-9]+' | tail -n 1)
	runs=$(tail -n "+$from" "$log" |
		sed -n 's/^stat::number_of_executed_units: *//p')
	echo "fuzz $t: ${secs}s, ${runs:-?} runs: $stats"
	if [ "$rc" != 0 ]; then
		echo "fuzz $t: FAILED (exit $rc); the input is in $out/artifacts/:" >&2
		tail -n "+$from" "$log" | grep -E \
			'invariant broken|ERROR: |SUMMARY|Test unit written' |
			head -n 8 >&2
		failed=1
	fi
	# What was found before a failure is kept too (not the failing input,
	# which is in artifacts/).
	if [ "$merge" = 1 ]; then
		# shellcheck disable=SC2086
		"$bin" -merge=1 "$corpus" "$new" $opts >>"$log" 2>&1 ||
			{ echo "fuzz $t: merge failed, see $log" >&2; failed=1; }
		echo "fuzz $t: corpus now $(ls "$corpus" | wc -l) files," \
			"$(cat "$corpus"/* | wc -c) bytes"
	fi
	rm -rf "$new"
done
exit $failed
