#!/bin/sh
# Run the unit programs given as arguments (build/unit/test_*), show their
# output, and add up their closing "N passed, N failed" lines.  A program
# that crashes, or exits non-zero, or ends without that line counts as one
# more failure.  The last line is "unit: N passed, N failed"; the exit
# status is 1 if anything failed.
set -u
cd "$(dirname "$0")/.."

# a sanitizer report fails the test that caused it, even a recoverable one
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
export UBSAN_OPTIONS

passed=0 failed=0 out=$(mktemp)
trap 'rm -f "$out"' EXIT

for prog in "$@"; do
	echo "== $prog"
	case $prog in */*) ;; *) prog=./$prog ;; esac
	"$prog" >"$out" 2>&1
	rc=$?
	cat "$out"
	last=$(tail -n 1 "$out")
	re='^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$'
	p=$(printf '%s\n' "$last" | sed -n "s/$re/\\1/p")
	f=$(printf '%s\n' "$last" | sed -n "s/$re/\\2/p")
	if [ -z "$p" ]; then
		echo "$prog: no result line (exit status $rc): one failure"
		p=0 f=1
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "$prog: exit status $rc: counted as failed"
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f))
done

echo "unit: $passed passed, $failed failed"
[ "$failed" = 0 ]
