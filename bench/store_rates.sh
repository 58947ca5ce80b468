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
# Prints a table: records, seconds, records/s, peak RSS of sender, and the
# round trips to the server per 1,000 letters (each store's own count):
#   - mysql: the server's status counter Questions (statements clients
#     sent), read before and after the run (SHOW GLOBAL STATUS; the reads
#     themselves are measured and taken off), with the Com_* counters that
#     moved as the breakdown;
#   - mongodb: the commands FerretDB counted (serverStatus, metrics.commands)
#     before and after, serverStatus itself left out; the driver's
#     heartbeats are in there (as FerretDB names them);
#   - sqlite: no server; the transactions instead, counted as the syncs of
#     the WAL file (synchronous=FULL syncs it once per commit) less the
#     syncs of the database file (a checkpoint syncs the WAL once and the
#     database once), from strace --seccomp-bpf (only those calls stop).
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

# ---- round trips ------------------------------------------------------------

# counters BACKEND FILE: the server's counters now, "name value" lines
counters() {
	case $1 in
	mysql)
		"$ROOT/tests/lib/mariadb.sh" sql "$MARIADB_DIR" \
			"SHOW GLOBAL STATUS WHERE Variable_name = 'Questions' OR Variable_name LIKE 'Com\\_%'" |
			awk -F '\t' '{ print $1, $2 }' >"$2" ;;
	mongodb)
		/usr/bin/python3 - "$FERRET_URI" >"$2" <<-'PY'
		import sys, pymongo
		c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)
		cmds = c.admin.command("serverStatus").get("metrics", {}).get("commands", {})
		for name, v in sorted(cmds.items()):
		    print(name, v.get("total", 0))
		PY
		;;
	*) : >"$2" ;;
	esac
}

# deltas BEFORE AFTER: "name delta" for each counter that moved
deltas() {
	awk 'NR == FNR { a[$1] = $2; next } $2 - a[$1] != 0 { print $1, $2 - a[$1] }' "$1" "$2"
}

# TRIPS (per 1,000 letters) and TRIPS_HOW (the breakdown) of the last run:
# trips_begin BACKEND before it, trips_end BACKEND LETTERS after it.
trips_begin() {
	counters "$1" "$T/c0"
	counters "$1" "$T/c1" # the cost of reading them, taken off below
}
trips_end() {
	local b=$1 n=$2 total noise
	TRIPS=- TRIPS_HOW=
	case $b in
	mysql|mongodb)
		counters "$b" "$T/c2"
		deltas "$T/c0" "$T/c1" >"$T/noise"
		deltas "$T/c1" "$T/c2" | grep -v '^serverStatus ' |
			awk 'NR == FNR { z[$1] = $2; next } { d = $2 - z[$1]; if (d) print $1, d }' \
				"$T/noise" - >"$T/delta"
		if [ "$b" = mysql ]; then
			total=$(awk '$1 == "Questions" { print $2 }' "$T/delta")
		else
			total=$(awk '{ t += $2 } END { print t + 0 }' "$T/delta")
		fi
		TRIPS_HOW=$(grep -v '^Questions ' "$T/delta" | sort -k2,2nr |
			awk -v n="$n" '{ printf "%s%s %.1f", (NR > 1 ? ", " : ""), $1, 1000 * $2 / n }') ;;
	sqlite)
		local wal db
		wal=$(grep -c -- '-wal>' "$T/strace" || true)
		db=$(grep -v -- '-wal>' "$T/strace" | grep -c 'run\.db>' || true)
		total=$((wal - db))
		TRIPS_HOW=$(awk -v w="$wal" -v d="$db" -v n="$n" 'BEGIN {
			if (n > 0) printf "transactions = WAL syncs %.1f - checkpoints %.1f", 1000 * w / n, 1000 * d / n }') ;;
	esac
	[ -n "${total:-}" ] && [ "$n" -gt 0 ] &&
		TRIPS=$(awk -v t="$total" -v n="$n" 'BEGIN { printf "%.1f", 1000 * t / n }')
	return 0
}

ROWS=()
# run NAME BACKEND CONFIG_SECTION [TIMEOUT]: one run, one row of the table
run() {
	local name=$1 backend=$2 section=$3 limit=${4:-0} rc=0 t0 t1 wrap=()
	[ "$backend" = sqlite ] && wrap=(strace --seccomp-bpf -f -qq -y -e trace=fsync,fdatasync -o "$T/strace")
	trips_begin "$backend"
	printf '[api]\nurl = %s\nconcurrency = %s\n\n%s\n' "$URL" "$J" "$section" >"$T/run.ini"
	say "$name: sending $N letters${4:+ (stopped after $limit s)}"
	t0=$EPOCHREALTIME
	if [ "$limit" -gt 0 ]; then
		/usr/bin/time -f '%M' -o "$T/time" timeout -s TERM "$limit" \
			"${wrap[@]}" "$SENDER" -c "$T/run.ini" --no-progress --json "$T/letters.xml" \
			>"$T/out" 2>"$T/err" || rc=$?
	else
		/usr/bin/time -f '%M' -o "$T/time" \
			"${wrap[@]}" "$SENDER" -c "$T/run.ini" --no-progress --json "$T/letters.xml" \
			>"$T/out" 2>"$T/err" || rc=$?
	fi
	t1=$EPOCHREALTIME
	local done secs rss
	done=$(sed -n 's/.*"delivered": \([0-9]*\).*/\1/p' "$T/out")
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	rss=$(tail -n 1 "$T/time" | awk '{ printf "%.1f MiB", $1 / 1024 }')
	[ -n "$done" ] || { tail -n 5 "$T/err" >&2; done=0; }
	trips_end "$backend" "$done"
	say "$name: exit $rc, $done recorded in $secs s, $TRIPS round trips per 1,000"
	local how="exit $rc"
	# timeout(1) says 124 when it had to send the signal
	[ "$limit" -gt 0 ] && [ "$rc" = 124 ] && how="SIGTERM after $limit s"
	ROWS+=("$(printf '%-34s %9s %9s %11s %10s %9s  %s' "$name" "$done" "$secs" \
		"$(awk -v d="$done" -v s="$secs" 'BEGIN { printf "%.0f", d / s }')" "$rss" "$TRIPS" "$how")")
	[ -n "$TRIPS_HOW" ] && ROWS+=("$(printf '   per 1,000: %s' "$TRIPS_HOW")")
	return 0
}

for b in $WANTED; do
	[[ " $BUILT " == *" $b "* ]] || { say "$b: not compiled in, skipped"; continue; }
	case $b in
	sqlite)
		run "sqlite (WAL, synchronous=FULL)" sqlite "[sqlite]
path = $T/run.db" ;;
	mysql)
		MARIADB_DIR=$T/mariadb
		out=$("$ROOT/tests/lib/mariadb.sh" start "$MARIADB_DIR")
		pw=$(echo "$out" | sed -n 's/^password=//p')
		"$ROOT/tests/lib/mariadb.sh" sql "$MARIADB_DIR" "CREATE DATABASE IF NOT EXISTS sender"
		run "mysql (MariaDB, unix socket)" mysql "[store]
backend = mysql
[mysql]
socket = $MARIADB_DIR/mysqld.sock
user = u1
password = $pw
database = sender" ;;
	mongodb)
		FERRET_DIR=$T/ferretdb
		FERRET_URI=$("$ROOT/tests/lib/ferretdb.sh" start "$FERRET_DIR" | tail -n 1)
		section="[store]
backend = mongodb
[mongodb]
uri = $FERRET_URI"
		# the collection (and sender's unique index) first, made by a
		# run of no letters (--status only reads), then the index
		printf '<?xml version="1.0"?>\n<emails>\n</emails>\n' >"$T/empty.xml"
		"$SENDER" -c <(printf '[api]\nurl = http://127.0.0.1:9/api\n%s\ndatabase = indexed\n' "$section") \
			-q --no-progress "$T/empty.xml"
		"$ROOT/tests/lib/ferretdb.sh" id-index "$FERRET_DIR" indexed results
		run "mongodb (FerretDB + _id index)" mongodb "$section
database = indexed"
		run "mongodb (FerretDB as shipped)" mongodb "$section
database = stock" "$STOCK_SECONDS" ;;
	*) say "$b: no setup known here, skipped" ;;
	esac
done

echo
echo "records per second of one run of $N letters, -j $J, mock API without latency;"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-34s %9s %9s %11s %10s %9s\n' "store" "records" "seconds" "records/s" "peak RSS" "trips/1k"
printf '%s\n' "${ROWS[@]}"
