#!/usr/bin/env bash
# store_rates.sh: how many records per second each store sustains in one
# run of 100,000 letters (make bench-stores).
#
#   bench/store_rates.sh         (make bench-stores builds ./sender first)
#
# One sender run per store, -j 64, against the mock API answering at once,
# each on a fresh database: sqlite, mysql (a private MariaDB over its
# socket) and mongodb (a private FerretDB 1.24.2, SQLite handler) twice:
#   - "FerretDB + _id index": with the index tests/lib/ferretdb.sh id-index
#     adds, so that FerretDB's update of one document does not read the
#     whole collection; run to the end;
#   - "FerretDB as shipped": without it.  Each update there reads every
#     record so far, so the run would take hours: it is stopped with
#     SIGTERM after BENCH_STOCK_SECONDS (sender drains and records what is
#     in flight) and the rate is that of the part done.
# Prints a table: records, seconds, records/s, peak RSS of sender.
#
# Knobs: BENCH_LETTERS (100000), BENCH_J (64), BENCH_STOCK_SECONDS (300),
# BENCH_BACKENDS (all compiled in), TMPDIR, BENCH_KEEP=1.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SENDER=$ROOT/sender
N=${BENCH_LETTERS:-100000}
J=${BENCH_J:-64}
STOCK_SECONDS=${BENCH_STOCK_SECONDS:-300}
while read -r v; do unset "$v"; done < <(compgen -e | grep '^SENDER_' || true)

say() { echo "store_rates: $*" >&2; }
die() { say "$*"; exit 1; }

T= MOCK_PID= MARIADB_DIR= FERRET_DIR=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$MOCK_PID" ] && { kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null || true; }
	[ -n "$MARIADB_DIR" ] && { "$ROOT/tests/lib/mariadb.sh" stop "$MARIADB_DIR" || true; }
	[ -n "$FERRET_DIR" ] && { "$ROOT/tests/lib/ferretdb.sh" stop "$FERRET_DIR" || true; }
	if [ -n "$T" ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
T=$(mktemp -d "${TMPDIR:-/tmp}/sender-store-rates.XXXXXX")

[ -x "$SENDER" ] || die "no $SENDER: run make first"
[ -x "$ROOT/tests/mock_api" ] || die "no tests/mock_api: run make tests/mock_api"
BUILT=$("$SENDER" --version | sed -n 's/^backends: //p' | tr -d ',')
WANTED=$(echo "${BENCH_BACKENDS:-$BUILT}" | tr ',' ' ')

say "generating $N letters"
/usr/bin/python3 "$ROOT/bench/gen_letters.py" "$N" >"$T/letters.xml"

"$ROOT/tests/mock_api" --port 0 --port-file "$T/mock.port" --log /dev/null \
	</dev/null >"$T/mock.log" 2>&1 &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$T/mock.port" ] && break; sleep 0.1; done
[ -s "$T/mock.port" ] || die "the mock API did not start"
URL=http://127.0.0.1:$(cat "$T/mock.port")/api

ROWS=()
# run NAME CONFIG_SECTION [TIMEOUT]: one run, one row of the table
run() {
	local name=$1 section=$2 limit=${3:-0} rc=0 t0 t1
	printf '[api]\nurl = %s\nconcurrency = %s\n\n%s\n' "$URL" "$J" "$section" >"$T/run.ini"
	say "$name: sending $N letters${3:+ (stopped after $limit s)}"
	t0=$EPOCHREALTIME
	if [ "$limit" -gt 0 ]; then
		/usr/bin/time -f '%M' -o "$T/time" timeout -s TERM "$limit" \
			"$SENDER" -c "$T/run.ini" --no-progress --json "$T/letters.xml" \
			>"$T/out" 2>"$T/err" || rc=$?
	else
		/usr/bin/time -f '%M' -o "$T/time" \
			"$SENDER" -c "$T/run.ini" --no-progress --json "$T/letters.xml" \
			>"$T/out" 2>"$T/err" || rc=$?
	fi
	t1=$EPOCHREALTIME
	local done secs rss
	done=$(sed -n 's/.*"delivered": \([0-9]*\).*/\1/p' "$T/out")
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	rss=$(tail -n 1 "$T/time" | awk '{ printf "%.1f MiB", $1 / 1024 }')
	[ -n "$done" ] || { tail -n 5 "$T/err" >&2; done=0; }
	say "$name: exit $rc, $done recorded in $secs s"
	local how="exit $rc"
	# timeout(1) says 124 when it had to send the signal
	[ "$limit" -gt 0 ] && [ "$rc" = 124 ] && how="SIGTERM after $limit s"
	ROWS+=("$(printf '%-34s %9s %9s %11s %10s  %s' "$name" "$done" "$secs" \
		"$(awk -v d="$done" -v s="$secs" 'BEGIN { printf "%.0f", d / s }')" "$rss" "$how")")
}

for b in $WANTED; do
	[[ " $BUILT " == *" $b "* ]] || { say "$b: not compiled in, skipped"; continue; }
	case $b in
	sqlite)
		run "sqlite (WAL, synchronous=FULL)" "[sqlite]
path = $T/run.db" ;;
	mysql)
		MARIADB_DIR=$T/mariadb
		out=$("$ROOT/tests/lib/mariadb.sh" start "$MARIADB_DIR")
		pw=$(echo "$out" | sed -n 's/^password=//p')
		"$ROOT/tests/lib/mariadb.sh" sql "$MARIADB_DIR" "CREATE DATABASE IF NOT EXISTS sender"
		run "mysql (MariaDB, unix socket)" "[store]
backend = mysql
[mysql]
socket = $MARIADB_DIR/mysqld.sock
user = u1
password = $pw
database = sender" ;;
	mongodb)
		FERRET_DIR=$T/ferretdb
		uri=$("$ROOT/tests/lib/ferretdb.sh" start "$FERRET_DIR" | tail -n 1)
		section="[store]
backend = mongodb
[mongodb]
uri = $uri"
		# the collection (and sender's unique index) first, then the index
		"$SENDER" -c <(printf '%s\ndatabase = indexed\n' "$section") --status >/dev/null
		"$ROOT/tests/lib/ferretdb.sh" id-index "$FERRET_DIR" indexed results
		run "mongodb (FerretDB + _id index)" "$section
database = indexed"
		run "mongodb (FerretDB as shipped)" "$section
database = stock" "$STOCK_SECONDS" ;;
	*) say "$b: no setup known here, skipped" ;;
	esac
done

echo
echo "records per second of one run of $N letters, -j $J, mock API without latency;"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-34s %9s %9s %11s %10s\n' "store" "records" "seconds" "records/s" "peak RSS"
printf '%s\n' "${ROWS[@]}"
