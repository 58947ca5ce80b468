#!/bin/sh
# The whole suite: the unit programs given as arguments, then the
# integration scenarios (pytest) for every backend in
# $SENDER_TEST_BACKENDS (default: all that are built).  The last line is
# "N passed, N failed" over everything, so CI can tell a real run.
set -u
cd "$(dirname "$0")/.."

unit_out=$(mktemp) junit=$(mktemp --suffix=.xml)
trap 'rm -f "$unit_out" "$junit"' EXIT

tests/run-unit.sh "$@" >"$unit_out" 2>&1
unit_rc=$?
cat "$unit_out"

: "${SENDER_TEST_BACKENDS:=$("${SENDER_BIN:-./sender}" --version | sed -n 's/^backends: //p' | tr -d ',')}"
export SENDER_TEST_BACKENDS
echo "integration: backends: $SENDER_TEST_BACKENDS"
/usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$junit" \
	${PYTEST_ARGS:-} tests/integration
py_rc=$?

totals=$(/usr/bin/python3 - "$unit_out" "$junit" <<'PY'
import re, sys, xml.etree.ElementTree as ET
passed = failed = 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"^unit: (\d+) passed, (\d+) failed", line)
    if m:
        passed += int(m.group(1)); failed += int(m.group(2))
try:
    root = ET.parse(sys.argv[2]).getroot()
    for s in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        t = int(s.get("tests", 0)); f = int(s.get("failures", 0))
        e = int(s.get("errors", 0)); k = int(s.get("skipped", 0))
        passed += t - f - e - k; failed += f + e
except Exception as exc:
    print("integration results unreadable:", exc, file=sys.stderr)
    failed += 1
print(passed, failed)
PY
)
set -- $totals
echo "$1 passed, $2 failed"
[ "$unit_rc" = 0 ] && [ "$py_rc" = 0 ] && [ "$2" = 0 ]
