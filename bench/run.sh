#!/usr/bin/env bash
# make bench: how fast sender goes against the physical limits of this
# machine, in one command and one table (issue 6).
#
#   bench/run.sh            (make bench builds ./sender first)
#
# In a temporary directory it generates the letters (bench/gen_letters.py),
# builds bench/bare_loop.c, starts a private nginx (own prefix and config,
# 127.0.0.1, a free port), the mock API (tests/mock_api) and, for the
# backends ./sender was built with, a private MariaDB (tests/lib/mariadb.sh)
# and FerretDB (tests/lib/ferretdb.sh).  It then measures:
#   1. sender with each store at -j 1/32/128 against nginx `return 200 "1"`,
#      next to wrk (bench/wrk_post.lua, the same body) and the bare
#      libcurl-multi loop, and the ratio sender / bare loop;
#   2. sender -j 128 against the mock API at 50 ms latency, next to the
#      ideal 128 / 0.05 s; and with mysql, the database one network hop
#      away: sender -j 128 against the mock API at 20 ms with MariaDB over
#      TCP, directly and through Toxiproxy (tests/lib/toxiproxy.sh) adding
#      1 ms each way, next to the ideal 128 / 0.02 s;
#   3. sender -j 64 against an endpoint that serves 8 requests at a time,
#      10 ms each, and answers 503 above that (nginx limit_conn + the echo
#      module's echo_sleep; without that module, the mock API's --capacity),
#      as a share of the capacity the bare loop measures with 8 in flight;
#   4. peak RSS for 100,000 and 1,000,000 letters, --dry-run and a real
#      send to nginx with SQLite;
#   5. CPU time per letter (user + system, /usr/bin/time) of the -j 32
#      runs next to the bare loop's per request, and their ratio;
#   6. with perf installed (BENCH_PERF=0 skips it), where that CPU goes:
#      one `perf record` of each, split by library and thread
#      (bench/cpu_split.sh).
# Progress goes to stderr, the table to stdout.  Every server it started is
# stopped on exit, Ctrl-C included.  Each run gets a fresh database.
#
# nginx runs one worker: on 2 cores the client under test (one thread) and
# nginx then have a core each.  The bare loop reaches the same rate against
# 2 workers (the client is the bound, not nginx), and wrk -t1 gets about
# twice the bare loop's rate from one worker.
#
# FerretDB: the mongodb store runs on FerretDB 1.24.2 (SQLite handler), with
# the index of `tests/lib/ferretdb.sh id-index` added to each fresh
# database: without it each update there reads the whole collection and a
# run of 100,000 letters takes hours (make bench-stores measures both).
# Even so FerretDB records about a thousand letters a second, so its runs
# send BENCH_MONGO_LETTERS letters, and its row measures FerretDB.
#
# Knobs (environment): BENCH_RUNS (3), BENCH_LETTERS (100000),
# BENCH_LETTERS_J1 (20000, the -j 1 runs), BENCH_BIG (1000000),
# BENCH_LATENCY_LETTERS (10000), BENCH_DBLAT_LETTERS (20000, the database
# latency runs), BENCH_CAPACITY_LETTERS (10000),
# BENCH_MONGO_LETTERS (5000, the mongodb runs: see FerretDB below),
# BENCH_WRK_SECONDS (3), BENCH_NGINX_WORKERS (1), BENCH_BACKENDS (all
# compiled in), BENCH_SENDER (another build to measure, e.g. a branch's),
# BENCH_ECHO_MODULE (nginx's echo module; if that file is
# missing, the capacity endpoint is the mock API's), BENCH_KEEP=1 (keep
# the temp directory), TMPDIR.
#
# Needs, as Debian packages: nginx-light (or any nginx), wrk, time,
# python3, curl, libcurl4-openssl-dev; libnginx-mod-http-echo for the
# nginx capacity endpoint; mariadb-server and mariadb-client for the mysql
# store.  As root it installs what is missing; otherwise it prints the
# apt-get line.  The mongodb store needs Go (tests/lib/ferretdb.sh builds
# FerretDB once into ~/.cache/sender-tools), and so does the database
# latency row (tests/lib/toxiproxy.sh builds Toxiproxy the same way).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SENDER=${BENCH_SENDER:-$ROOT/sender}
MOCK=$ROOT/tests/mock_api
RUNS=${BENCH_RUNS:-3}
N=${BENCH_LETTERS:-100000}
N1=${BENCH_LETTERS_J1:-20000}
BIG=${BENCH_BIG:-1000000}
NLAT=${BENCH_LATENCY_LETTERS:-10000}
NDBLAT=${BENCH_DBLAT_LETTERS:-20000}
NCAP=${BENCH_CAPACITY_LETTERS:-10000}
NMONGO=${BENCH_MONGO_LETTERS:-5000}
NCAP_BARE=2000
WRK_SECONDS=${BENCH_WRK_SECONDS:-3}
WORKERS=${BENCH_NGINX_WORKERS:-1}
JS=(1 32 128)
ECHO_SO=${BENCH_ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so}

# No SENDER_* variable of the caller's may steer a run.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^SENDER_' || true)

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

# ---- packages -------------------------------------------------------------

# Installs the Debian packages the bench needs when some are missing (as
# root), or prints the line to run.  The optional ones only enable a part.
deps() {
	local need="nginx-light wrk time python3 curl libcurl4-openssl-dev"
	local optional="libnginx-mod-http-echo"
	local p missing=
	"$SENDER" --version | grep -q '^backends:.*mysql' &&
		optional="$optional mariadb-server mariadb-client"
	command -v nginx >/dev/null && need=${need/nginx-light/}
	for p in $need $optional; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		say "missing Debian packages; install them with:"
		say "  sudo apt-get install -y$missing"
		for p in $need; do
			[[ " $missing " == *" $p "* ]] && exit 1
		done
		return 0
	fi
	say "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
		apt-get update -qq
		apt-get install -y -qq $missing >/dev/null ||
			say "could not install all of:$missing"
	fi
}

# ---- servers --------------------------------------------------------------

T=
NGINX_PID= MOCK_LAT_PID= MOCK_CAP_PID= MOCK_TMP_PID=
MARIADB_DIR= FERRET_DIR= TOXI_DIR= MOCK_DBLAT_PID=
MYSQL_TCP= # when set, sender_ini's mysql runs go to 127.0.0.1:$MYSQL_TCP

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in $NGINX_PID $MOCK_LAT_PID $MOCK_CAP_PID $MOCK_TMP_PID $MOCK_DBLAT_PID; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $NGINX_PID $MOCK_LAT_PID $MOCK_CAP_PID $MOCK_TMP_PID $MOCK_DBLAT_PID; do
		wait "$p" 2>/dev/null || true
	done
	[ -n "$TOXI_DIR" ] &&
		{ "$ROOT/tests/lib/toxiproxy.sh" stop "$TOXI_DIR" || true; }
	[ -n "$MARIADB_DIR" ] &&
		{ "$ROOT/tests/lib/mariadb.sh" stop "$MARIADB_DIR" || true; }
	[ -n "$FERRET_DIR" ] &&
		{ "$ROOT/tests/lib/ferretdb.sh" stop "$FERRET_DIR" || true; }
	if [ -n "$T" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ]; then
			say "kept $T"
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: until something accepts on PORT, while PID lives.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# One nginx: /api answers 200 "1" at once; /cap (with the echo module)
# serves 8 requests at a time, 10 ms each, and 503 above that.
start_nginx() {
	local d=$T/nginx load= cap=
	mkdir -p "$d"
	NGINX_PORT=$(free_port)
	if [ -f "$ECHO_SO" ]; then
		load="load_module $ECHO_SO;"
		cap="location /cap {
			limit_conn cap 8;
			limit_conn_status 503;
			limit_conn_log_level info;
			access_log $d/cap.log timeline;
			echo_sleep 0.01;
			echo -n 1;
		}"
	fi
	cat >"$d/nginx.conf" <<-EOF
	$load
	worker_processes $WORKERS;
	pid $d/nginx.pid;
	error_log $d/error.log warn;
	events { worker_connections 4096; }
	http {
		access_log off;
		client_body_temp_path $d/body;
		proxy_temp_path $d/proxy;
		fastcgi_temp_path $d/fastcgi;
		uwsgi_temp_path $d/uwsgi;
		scgi_temp_path $d/scgi;
		keepalive_requests 100000000;
		keepalive_timeout 300s;
		limit_conn_zone \$server_name zone=cap:1m;
		log_format timeline '\$msec \$status';
		server {
			listen 127.0.0.1:$NGINX_PORT backlog=4096;
			server_name bench;
			location /api { return 200 "1"; }
			$cap
		}
	}
	EOF
	nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" \
		-g 'daemon off;' </dev/null >>"$d/error.log" 2>&1 &
	NGINX_PID=$!
	wait_port "$NGINX_PORT" "$NGINX_PID" ||
		{ cat "$d/error.log" >&2; die "nginx did not start"; }
	[ -n "$cap" ] && HAVE_ECHO=1 || HAVE_ECHO=0
}

# start_mock VAR ARGS...: a mock API; its pid goes in VAR, its port in PORT.
start_mock() {
	local var=$1 pf=$T/mock.$1.port
	shift
	rm -f "$pf"
	"$MOCK" --port-file "$pf" "$@" </dev/null >>"$T/mock.$var.log" 2>&1 &
	printf -v "$var" %s $!
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s "$pf" ] && break
		kill -0 "${!var}" 2>/dev/null || break
		sleep 0.1
	done
	[ -s "$pf" ] || { cat "$T/mock.$var.log" >&2; die "mock API did not start"; }
	PORT=$(cat "$pf")
}

# ---- measuring ------------------------------------------------------------

# measure CMD...: runs it; sets M_WALL (s), M_CPU (user+sys, s), M_RSS (KB),
# M_RC; its stdout is in $T/out, its stderr in $T/err.
measure() {
	local t0 t1 line
	t0=$EPOCHREALTIME
	M_RC=0
	/usr/bin/time -f '%U %S %M' -o "$T/time" "$@" >"$T/out" 2>"$T/err" ||
		M_RC=$?
	t1=$EPOCHREALTIME
	line=$(tail -n 1 "$T/time")
	M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
	M_CPU=$(echo "$line" | awk '{ printf "%.3f", $1 + $2 }')
	M_RSS=$(echo "$line" | awk '{ print $3 }')
	M_T0=$t0
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) print "";
		      else if (NR % 2) print v[(NR + 1) / 2];
		      else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# a / b, with enough digits for CPU seconds per letter
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.6g", a / b }'; }

json_field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" "$T/out"; }

RUNSEQ=0

# sender_ini BACKEND J URL: $T/run.ini, a config with every key the run
# depends on, on a fresh database.
sender_ini() {
	local ini=$T/run.ini
	RUNSEQ=$((RUNSEQ + 1))
	{
		printf '[api]\nurl = %s\nconcurrency = %s\ntimeout = 30\n' "$3" "$2"
		printf '\n[store]\nbackend = %s\n' "$1"
		case $1 in
		sqlite)
			rm -f "$T/db/run.db" "$T/db/run.db-wal" "$T/db/run.db-shm"
			printf '\n[sqlite]\npath = %s\n' "$T/db/run.db" ;;
		mysql)
			"$ROOT/tests/lib/mariadb.sh" sql "$MARIADB_DIR" \
				"DROP DATABASE IF EXISTS sender; CREATE DATABASE sender"
			if [ -n "$MYSQL_TCP" ]; then
				printf '\n[mysql]\nhost = 127.0.0.1\nport = %s\nuser = u1\n' "$MYSQL_TCP"
			else
				printf '\n[mysql]\nsocket = %s\nuser = u1\n' "$MARIADB_DIR/mysqld.sock"
			fi
			printf 'password = %s\ndatabase = sender\n' "$MARIADB_PW" ;;
		mongodb)
			printf '\n[mongodb]\nuri = %s\ndatabase = bench%d\n' "$FERRET_URI" "$RUNSEQ" ;;
		esac
	} >"$ini"
	if [ "$1" = mongodb ]; then
		# the collection and its indexes first (see FERRET below): a
		# run of no letters makes them (--status only reads)
		"$SENDER" -c "$ini" -q --no-progress "$T/empty.xml"
		"$ROOT/tests/lib/ferretdb.sh" id-index "$FERRET_DIR" "bench$RUNSEQ" results
	fi
}

# run_sender BACKEND J URL FILE [ARGS...]: one run of sender; sets S_RATE
# (delivered letters per second of wall time), S_DELIVERED, S_REQUESTS,
# S_RC and the M_* of measure.  Exit statuses 0 and 1 (letters deferred)
# are results; others are reported.
run_sender() {
	local b=$1 j=$2 url=$3 file=$4
	shift 4
	sender_ini "$b" "$j" "$url"
	measure "$SENDER" -c "$T/run.ini" -q --no-progress --json "$@" "$file"
	S_RC=$M_RC
	S_DELIVERED=$(json_field delivered)
	S_REQUESTS=$(json_field requests)
	S_LETTERS=$(json_field letters)
	[ -n "$S_DELIVERED" ] || S_DELIVERED=0
	S_RATE=$(div "$S_DELIVERED" "$M_WALL")
	if [ "$S_RC" -gt 1 ]; then
		say "sender ($b, -j $j) exited $S_RC:"
		tail -n 5 "$T/err" >&2
	fi
}

run_bare() { # URL REQUESTS INFLIGHT; sets B_RATE B_OK B_BUSY
	measure "$T/bare_loop" "$1" "$T/body.txt" "$2" "$3"
	[ "$M_RC" = 0 ] || { cat "$T/err" >&2; die "bare_loop failed"; }
	B_OK=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' "$T/out")
	B_BUSY=$(sed -n 's/.* busy=\([0-9]*\).*/\1/p' "$T/out")
	B_RATE=$(div "$2" "$M_WALL")
	B_OKRATE=$(div "$B_OK" "$M_WALL")
}

run_wrk() { # J; sets W_RATE
	local t=1
	W_RATE=$(BENCH_BODY=$T/body.txt wrk -t "$t" -c "$1" -d "${WRK_SECONDS}s" \
		-s "$ROOT/bench/wrk_post.lua" "http://127.0.0.1:$NGINX_PORT/api" |
		tee "$T/wrk.out" | awk '/^Requests\/sec:/ { print $2 }')
	grep -q 'Non-2xx' "$T/wrk.out" && say "wrk got non-2xx answers: $(grep Non-2xx "$T/wrk.out")"
	[ -n "$W_RATE" ] || W_RATE=0
}

# ---- set-up ---------------------------------------------------------------

START=$SECONDS
[ -x "$SENDER" ] && [ -x "$MOCK" ] || die "build first: make all (or make bench)"
SENDER=$(cd "$(dirname "$SENDER")" && pwd)/$(basename "$SENDER")
deps
for c in nginx wrk python3 curl pkg-config cc; do
	command -v "$c" >/dev/null || die "'$c' is not installed"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is not installed (Debian package 'time')"

T=$(mktemp -d "${TMPDIR:-/tmp}/sender-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$T/db"
cd "$T" # every path below is absolute; no ./sender.ini is picked up

say "building bench/bare_loop.c"
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$T/bare_loop" \
	"$ROOT/bench/bare_loop.c" $(pkg-config --cflags --libs libcurl)

say "generating $N, $N1, $NLAT, $NDBLAT, $NCAP, $NMONGO and $BIG letters"
gen() { python3 "$ROOT/bench/gen_letters.py" "$1" >"$T/letters.$1.xml"; }
for n in $(printf '%s\n' "$N" "$N1" "$NLAT" "$NDBLAT" "$NCAP" "$BIG" "$NMONGO" 10 | sort -un); do
	gen "$n"
done
printf '<?xml version="1.0" encoding="UTF-8"?>\n<emails>\n</emails>\n' >"$T/empty.xml"

# The body sender sends for a letter of median length: wrk and the bare
# loop POST that one (the bare loop with each request's own id).
start_mock MOCK_TMP_PID --log "$T/bodies.log"
sender_ini sqlite 1 "http://127.0.0.1:$PORT/api"
"$SENDER" -c "$T/run.ini" -q --no-progress "$T/letters.10.xml" ||
	die "sender could not send 10 letters to the mock API"
kill -TERM "$MOCK_TMP_PID"; wait "$MOCK_TMP_PID" || true; MOCK_TMP_PID=
awk -F '\t' '{ print length($4) "\t" $4 }' "$T/bodies.log" | sort -n |
	sed -n 5p | cut -f2 >"$T/body.txt"
grep -q '^id=[0-9]*&message=' "$T/body.txt" || die "could not capture a body"

start_nginx
say "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $WORKERS worker(s), on 127.0.0.1:$NGINX_PORT"
URL=http://127.0.0.1:$NGINX_PORT/api

BACKENDS=$("$SENDER" --version | sed -n 's/^backends: //p' | tr ',' ' ')
WANTED=$(echo "${BENCH_BACKENDS:-sqlite mysql mongodb}" | tr ',' ' ')
declare -A SKIP=()
ACTIVE=()
for b in sqlite mysql mongodb; do
	if [[ " $BACKENDS " != *" $b "* ]]; then
		SKIP[$b]="not compiled into $SENDER"
		continue
	fi
	if [[ " $WANTED " != *" $b "* ]]; then
		SKIP[$b]="not in BENCH_BACKENDS"
		continue
	fi
	case $b in
	mysql)
		say "starting MariaDB"
		MARIADB_DIR=$T/mariadb
		# also on TCP, for the database latency row
		MARIADB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		if out=$(MARIADB_TCP_PORT=$MARIADB_PORT "$ROOT/tests/lib/mariadb.sh" start "$MARIADB_DIR" 2>"$T/mariadb.start.err"); then
			MARIADB_PW=$(echo "$out" | sed -n 's/^password=//p')
		else
			SKIP[$b]="MariaDB did not start: $(tail -n 1 "$T/mariadb.start.err")"
			continue
		fi ;;
	mongodb)
		say "starting FerretDB"
		FERRET_DIR=$T/ferretdb
		if out=$("$ROOT/tests/lib/ferretdb.sh" start "$FERRET_DIR" 2>"$T/ferretdb.start.err"); then
			FERRET_URI=$(echo "$out" | tail -n 1)
		else
			SKIP[$b]="FerretDB did not start: $(tail -n 1 "$T/ferretdb.start.err")"
			continue
		fi ;;
	esac
	ACTIVE+=("$b")
done

# ---- 1. against nginx -----------------------------------------------------

declare -A WRK=() BARE=() SND=() CPU=() RSS=() BAD=() BARECPU=() SRVCPU=()

# server_cpu BACKEND: CPU seconds the backend's server has used so far
# (FerretDB only; 0 otherwise), from /proc/PID/stat.
server_cpu() {
	local pid
	[ "$1" = mongodb ] && pid=$(cat "$FERRET_DIR/ferretdb.pid" 2>/dev/null) &&
		[ -r "/proc/$pid/stat" ] || { echo 0; return; }
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$pid/stat"
}
for j in "${JS[@]}"; do
	n=$N
	[ "$j" = 1 ] && n=$N1
	for ((r = 1; r <= RUNS; r++)); do
		run_wrk "$j"
		WRK[$j]+=" $W_RATE"
		run_bare "$URL" "$n" "$j"
		BARE[$j]+=" $B_RATE"
		BARECPU[$j]+=" $(div "$M_CPU" "$n")"
		line="-j $j run $r/$RUNS: wrk $W_RATE, bare $B_RATE"
		for b in "${ACTIVE[@]}"; do
			nb=$n
			[ "$b" = mongodb ] && nb=$NMONGO
			srv0=$(server_cpu "$b")
			run_sender "$b" "$j" "$URL" "$T/letters.$nb.xml"
			[ "$b" = mongodb ] && [ "$j" = 32 ] &&
				SRVCPU[$b]+=" $(div "$(awk -v a="$srv0" -v b="$(server_cpu "$b")" 'BEGIN { print b - a }')" "$nb")"
			SND[$b:$j]+=" $S_RATE"
			CPU[$b:$j]+=" $(div "$M_CPU" "$nb")"
			RSS[$b:$j]+=" $M_RSS"
			[ "$S_DELIVERED" = "$nb" ] || BAD[$b:$j]=1
			line+=", $b $S_RATE"
		done
		say "$line (letters/s)"
	done
done

# ---- 6. where the CPU goes (perf record, one run each) ---------------------

PERF_DONE=0
if [ "${BENCH_PERF:-1}" = 1 ] && [[ " ${ACTIVE[*]} " == *" sqlite "* ]] &&
	command -v perf >/dev/null &&
	perf record -q -o "$T/perf.probe" true >/dev/null 2>&1; then
	say "perf record of one bare loop and one sender run (-j 32, sqlite)"
	perf record -q -o "$T/perf.bare" "$T/bare_loop" "$URL" "$T/body.txt" \
		"$N" 32 >/dev/null 2>&1 &&
		sender_ini sqlite 32 "$URL" &&
		perf record -q -o "$T/perf.sender" "$SENDER" -c "$T/run.ini" -q \
			--no-progress "$T/letters.$N.xml" >/dev/null 2>&1 &&
		PERF_DONE=1
fi

# ---- 2. 50 ms latency -----------------------------------------------------

start_mock MOCK_LAT_PID --latency-ms 50
LAT_URL=http://127.0.0.1:$PORT/api
LAT=() LATBARE=()
for ((r = 1; r <= RUNS; r++)); do
	run_sender sqlite 128 "$LAT_URL" "$T/letters.$NLAT.xml"
	LAT+=("$S_RATE")
	[ "$S_DELIVERED" = "$NLAT" ] || BAD[lat]=1
	run_bare "$LAT_URL" "$NLAT" 128
	LATBARE+=("$B_RATE")
	say "50 ms latency, -j 128, run $r/$RUNS: sender $S_RATE, bare $B_RATE"
done

# The database one network hop away: MariaDB over TCP, directly and through
# Toxiproxy adding 1 ms each way (a latency toxic on each stream), the API
# at 20 ms.  Alternating, each run on a fresh database.
DBLAT=() DBLATDIRECT=() DBLAT_SKIP=
if [[ " ${ACTIVE[*]} " != *" mysql "* ]]; then
	DBLAT_SKIP="mysql: ${SKIP[mysql]:-not run}"
else
	TOXI_DIR=$T/toxiproxy
	if TOXI_API=$("$ROOT/tests/lib/toxiproxy.sh" start "$TOXI_DIR" 2>"$T/toxiproxy.err") &&
		TOXI_PORT=$("$ROOT/tests/lib/toxiproxy.sh" proxy "$TOXI_DIR" mariadb "$MARIADB_PORT" 2>>"$T/toxiproxy.err"); then
		for stream in upstream downstream; do
			curl -sS --fail -X POST "$TOXI_API/proxies/mariadb/toxics" \
				-d "{\"name\":\"lat_$stream\",\"type\":\"latency\",\"stream\":\"$stream\",\"attributes\":{\"latency\":1}}" \
				>/dev/null || die "cannot add the latency toxic"
		done
		start_mock MOCK_DBLAT_PID --latency-ms 20
		DBLAT_URL=http://127.0.0.1:$PORT/api
		for ((r = 1; r <= RUNS; r++)); do
			MYSQL_TCP=$MARIADB_PORT
			run_sender mysql 128 "$DBLAT_URL" "$T/letters.$NDBLAT.xml"
			DBLATDIRECT+=("$S_RATE")
			[ "$S_DELIVERED" = "$NDBLAT" ] || BAD[dblat]=1
			MYSQL_TCP=$TOXI_PORT
			run_sender mysql 128 "$DBLAT_URL" "$T/letters.$NDBLAT.xml"
			DBLAT+=("$S_RATE")
			[ "$S_DELIVERED" = "$NDBLAT" ] || BAD[dblat]=1
			MYSQL_TCP=
			say "MariaDB over TCP, 20 ms API, -j 128, run $r/$RUNS: direct ${DBLATDIRECT[-1]}, +1 ms each way $S_RATE"
		done
	else
		DBLAT_SKIP="Toxiproxy did not start: $(tail -n 1 "$T/toxiproxy.err")"
	fi
fi

# ---- 3. capacity-limited endpoint -----------------------------------------

# cap_answers: the answers logged since the last call, as "ok busy" and,
# with nginx, the time the 99th percent of the ok ones came (t99, epoch s).
CAP_MARK=0
cap_answers() {
	local t0=$1 target=$2
	if [ "$HAVE_ECHO" = 1 ]; then
		local log=$T/nginx/cap.log lines
		lines=$(wc -l <"$log")
		tail -n +$((CAP_MARK + 1)) "$log" | head -n $((lines - CAP_MARK)) |
			awk -v want="$target" '
				$2 == 200 { ok++; if (ok == want) t99 = $1 }
				$2 == 503 { busy++ }
				END { printf "%d %d %s\n", ok, busy, t99 }' >"$T/cap.counts"
		CAP_MARK=$lines
	else
		local now
		now=$(curl -s "http://127.0.0.1:$CAP_PORT/stats" |
			python3 -c 'import json,sys; s=json.load(sys.stdin)["by_status"]; print(s.get("200",0), s.get("503",0))')
		echo "$now" | awk -v p="$CAP_PREV" '{ split(p, a, " ");
			printf "%d %d\n", $1 - a[1], $2 - a[2] }' >"$T/cap.counts"
		CAP_PREV=$now
	fi
	read -r C_OK C_BUSY C_T99 <"$T/cap.counts"
	C_RATE99=
	[ -n "${C_T99:-}" ] && C_RATE99=$(awk -v n="$target" -v a="$t0" -v b="$C_T99" \
		'BEGIN { if (b > a) printf "%.1f", n / (b - a) }')
	return 0
}

if [ "$HAVE_ECHO" = 1 ]; then
	CAP_URL=http://127.0.0.1:$NGINX_PORT/cap
	CAP_HOW="nginx: limit_conn 8, echo_sleep 10 ms, 503 above 8"
	CAP_MARK=$(wc -l <"$T/nginx/cap.log" 2>/dev/null || echo 0)
else
	start_mock MOCK_CAP_PID --capacity 8 --latency-ms 10
	CAP_PORT=$PORT
	CAP_URL=http://127.0.0.1:$PORT/api
	CAP_HOW="mock API --capacity 8 --latency-ms 10 (nginx has no echo module): immediate 503 above 8"
	CAP_PREV="0 0"
fi
CAPBASE=() CAPS=() CAPBUSY=() CAP99=() CAPDEFERRED=0
for ((r = 1; r <= RUNS; r++)); do
	run_bare "$CAP_URL" "$NCAP_BARE" 8
	cap_answers "$M_T0" "$NCAP_BARE"
	CAPBASE+=("$B_OKRATE")
	run_sender sqlite 64 "$CAP_URL" "$T/letters.$NCAP.xml"
	cap_answers "$M_T0" $((NCAP * 99 / 100))
	CAPS+=("$S_RATE")
	d=$(json_field deferred)
	CAPDEFERRED=$((CAPDEFERRED + ${d:-0}))
	CAPBUSY+=("$(div "$C_BUSY" $((C_OK + C_BUSY)))")
	[ -n "$C_RATE99" ] && CAP99+=("$C_RATE99")
	say "capacity run $r/$RUNS: bare -j 8 $B_OKRATE, sender -j 64 $S_RATE" \
		"($S_DELIVERED delivered, $C_BUSY 503s of $((C_OK + C_BUSY)) answers)"
done

# ---- 4. memory ------------------------------------------------------------

say "peak RSS: --dry-run on $N and $BIG letters, a real send of $BIG"
sender_ini sqlite 32 "$URL"
measure "$SENDER" -c "$T/run.ini" -q --no-progress --dry-run "$T/letters.$N.xml"
RSS_DRY_N=$M_RSS
measure "$SENDER" -c "$T/run.ini" -q --no-progress --dry-run "$T/letters.$BIG.xml"
RSS_DRY_BIG=$M_RSS
run_sender sqlite 32 "$URL" "$T/letters.$BIG.xml"
RSS_SEND_BIG=$M_RSS
BIG_RATE=$S_RATE
BIG_CPU=$(div "$M_CPU" "$BIG")
[ "$S_DELIVERED" = "$BIG" ] || BAD[big]=1
RSS_SEND_N=$(median ${RSS[sqlite:32]:-})

# ---- the table ------------------------------------------------------------

us() { awk -v x="$1" 'BEGIN { if (x > 0) printf "%.1f us", x * 1e6; else print "-" }'; }
fmt_rate() { [ -n "$1" ] && awk -v x="$1" 'BEGIN { printf "%.0f", x }' || echo "-"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
mib() { awk -v k="$1" 'BEGIN { if (k > 0) printf "%.1f MiB", k / 1024; else print "-" }'; }
verdict() { if "$@"; then echo met; else echo MISSED; fi; }

echo
echo "sender benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') with $WORKERS worker on 127.0.0.1;" \
	"$("$SENDER" --version | sed -n 1p); $(curl --version | sed -n '1s/^curl [^ ]* [^ ]* //p' | cut -d' ' -f1)"
echo "Every rate is the MEDIAN OF $RUNS RUNS, in letters (requests) per second of"
echo "wall time for the whole process; each sender run starts on a fresh database."
echo
printf '1. nginx `return 200 "1"`, %s letters a run (%s at -j 1, %s for mongodb);\n' "$N" "$N1" "$NMONGO"
printf '   (x) = sender / bare loop\n'
printf '   %-28s %16s %16s %16s   %s\n' "" "-j 1" "-j 32" "-j 128" "target"
row="" ; for j in "${JS[@]}"; do row+=$(printf ' %16s' "$(fmt_rate "$(median ${WRK[$j]})")"); done
printf '   %-28s%s\n' "wrk -t1 (lua, same body)" "$row"
row="" ; for j in "${JS[@]}"; do row+=$(printf ' %16s' "$(fmt_rate "$(median ${BARE[$j]})")"); done
printf '   %-28s%s\n' "bare libcurl-multi loop" "$row"
for b in sqlite mysql mongodb; do
	if [ -n "${SKIP[$b]:-}" ]; then
		printf '   %-28s skipped: %s\n' "sender, $b" "${SKIP[$b]}"
		continue
	fi
	# issue 16's targets; FerretDB is the bound of mongodb (below)
	want=
	[ "$b" = sqlite ] && want=0.75
	[ "$b" = mysql ] && want=0.6
	row="" missed=
	for j in "${JS[@]}"; do
		s=$(median ${SND[$b:$j]}) x=$(median ${BARE[$j]})
		q=$(ratio "$s" "$x")
		[ -z "$want" ] || ge "$q" "$want" || missed+=" -j $j"
		flag=
		[ -n "${BAD[$b:$j]:-}" ] && flag='!'
		row+=$(printf ' %16s' "$(fmt_rate "$s")$flag ($q)")
	done
	verdict_text=met
	[ -n "$missed" ] && verdict_text="MISSED at$missed"
	if [ -n "$want" ]; then
		printf '   %-28s%s   >= %sx bare: %s\n' "sender, $b" "$row" \
			"$want" "$verdict_text"
	else
		printf '   %-28s%s\n' "sender, $b" "$row"
	fi
done
if [ -n "${SRVCPU[mongodb]:-}" ]; then
	printf '   %s\n' "mongodb: CPU per letter, -j 32: sender $(us "$(median ${CPU[mongodb:32]})"), FerretDB $(us "$(median ${SRVCPU[mongodb]})")" \
		"(FerretDB's SQLite handler is the bound; make bench-stores gives its rate on 100,000)"
fi
echo
lat=$(median "${LAT[@]}") latb=$(median "${LATBARE[@]}")
printf '2. mock API, 50 ms latency, -j 128, %s letters a run; ideal 128 / 0.05 s = 2560/s\n' "$NLAT"
printf '   %-44s %8s  (%s x ideal)\n' "bare libcurl-multi loop, 128 in flight" "$(fmt_rate "$latb")" "$(ratio "$latb" 2560)"
printf '   %-44s %8s  (%s x ideal)   >= 0.95x ideal: %s\n' "sender, sqlite${BAD[lat]:+ !}" "$(fmt_rate "$lat")" \
	"$(ratio "$lat" 2560)" "$(verdict ge "$(ratio "$lat" 2560)" 0.95)"
printf '   mock API, 20 ms latency, -j 128, MariaDB over TCP, %s letters a run; ideal 128 / 0.02 s = 6400/s\n' "$NDBLAT"
if [ -n "$DBLAT_SKIP" ]; then
	printf '   %-44s skipped: %s\n' "sender, mysql" "$DBLAT_SKIP"
else
	dbd=$(median "${DBLATDIRECT[@]}") dbl=$(median "${DBLAT[@]}")
	printf '   %-44s %8s  (%s x ideal)\n' "sender, mysql, direct${BAD[dblat]:+ !}" "$(fmt_rate "$dbd")" "$(ratio "$dbd" 6400)"
	dbok=0
	ge "$(ratio "$dbl" "$dbd")" 0.95 && ge "$(ratio "$dbl" 6400)" 0.9 && dbok=1
	printf '   %-44s %8s  (%s x ideal, %s x direct)   >= 0.95x direct, >= 0.9x ideal: %s\n' \
		"sender, mysql, Toxiproxy +1 ms each way" "$(fmt_rate "$dbl")" "$(ratio "$dbl" 6400)" \
		"$(ratio "$dbl" "$dbd")" "$( [ $dbok = 1 ] && echo met || echo MISSED)"
fi
echo
cap=$(median "${CAPBASE[@]}") caps=$(median "${CAPS[@]}") busy=$(median "${CAPBUSY[@]}")
printf '3. capacity-limited endpoint (%s), %s letters a run\n' "$CAP_HOW" "$NCAP"
printf '   %-44s %8s\n' "capacity: bare loop, 8 in flight (200s/s)" "$(fmt_rate "$cap")"
capok=0
ge "$(ratio "$caps" "$cap")" 0.95 && awk -v b="$busy" 'BEGIN { exit !(b <= 0.05) }' && capok=1
printf '   %-44s %8s  (%s x capacity), 503s %s of answers   >= 0.95x, <= 5%%: %s\n' \
	"sender, sqlite, -j 64" "$(fmt_rate "$caps")" "$(ratio "$caps" "$cap")" \
	"$(awk -v b="$busy" 'BEGIN { printf "%.1f%%", 100 * b }')" \
	"$( [ $capok = 1 ] && echo met || echo MISSED)"
[ "$CAPDEFERRED" -gt 0 ] &&
	printf '   %-44s %8s  (503 at every attempt)\n' "  letters deferred, all $RUNS runs" "$CAPDEFERRED"
if [ "${#CAP99[@]}" -gt 0 ]; then
	c99=$(median "${CAP99[@]}")
	printf '   %-44s %8s  (%s x capacity; the rest waits on retry backoff)\n' \
		"  the same runs, until 99% were delivered" "$(fmt_rate "$c99")" "$(ratio "$c99" "$cap")"
fi
echo
printf '4. peak RSS (/usr/bin/time %%M)        %12s %12s   target\n' "$N" "$BIG"
# flat: the 1,000,000-letter run within 10 % of the 100,000 one
flat() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > 0 && b <= 32768 && b <= 1.1 * a) }'; }
printf '   %-34s %12s %12s   <= 32 MiB, within 10%%: %s\n' "--dry-run" "$(mib "$RSS_DRY_N")" \
	"$(mib "$RSS_DRY_BIG")" "$(verdict flat "$RSS_DRY_N" "$RSS_DRY_BIG")"
printf '   %-34s %12s %12s   <= 32 MiB, within 10%%: %s\n' "send to nginx, sqlite, -j 32${BAD[big]:+ !}" \
	"$(mib "$RSS_SEND_N")" "$(mib "$RSS_SEND_BIG")" "$(verdict flat "$RSS_SEND_N" "$RSS_SEND_BIG")"
printf '   %-34s %12s %12s\n' "  (rate of that send, letters/s)" "$(fmt_rate "$(median ${SND[sqlite:32]:-})")" "$(fmt_rate "$BIG_RATE")"
echo
printf '5. CPU per letter (user+sys of the process / letters, /usr/bin/time), -j 32\n'
cpus=$(median ${CPU[sqlite:32]:-}) cpub=$(median ${BARECPU[32]})
printf '   %-44s %10s\n' "bare loop, 32 in flight (per request)" "$(us "$cpub")"
printf '   %-44s %10s  (%s x bare)   <= 1.25x bare: %s\n' "sender, sqlite ($N letters)" "$(us "$cpus")" \
	"$(ratio "$cpus" "$cpub")" "$(verdict ge 1.25 "$(ratio "$cpus" "$cpub")")"
for b in mysql mongodb; do
	[ -n "${CPU[$b:32]:-}" ] || continue
	cpu=$(median ${CPU[$b:32]})
	printf '   %-44s %10s  (%s x bare)\n' "sender, $b" "$(us "$cpu")" "$(ratio "$cpu" "$cpub")"
done
printf '   %-44s %10s  (%s x bare)\n' "sender, sqlite ($BIG letters)" "$(us "$BIG_CPU")" "$(ratio "$BIG_CPU" "$cpub")"
if [ "$PERF_DONE" = 1 ]; then
	echo
	printf '6. where that CPU goes, -j 32: share of the samples of one perf record\n'
	printf '   run each (bench/cpu_split.sh), times the medians of 5.\n'
	printf '   %-34s %14s %14s\n' "part" "bare loop" "sender, sqlite"
	"$ROOT/bench/cpu_split.sh" "$T/perf.bare" "$(awk -v x="$cpub" 'BEGIN { print x * 1e6 }')" >"$T/split.bare"
	"$ROOT/bench/cpu_split.sh" "$T/perf.sender" "$(awk -v x="$cpus" 'BEGIN { print x * 1e6 }')" >"$T/split.sender"
	awk -F '\t' 'NR == FNR { bare[$1] = $2; next }
		{ printf "   %-34s %14s %14s\n", $1, ($1 in bare ? bare[$1] " us" : "-"), $2 " us" }' \
		"$T/split.bare" "$T/split.sender"
fi
[ "${#BAD[@]}" -gt 0 ] && echo "   ! some runs did not deliver every letter (see stderr)"
echo
echo "bench took $((SECONDS - START)) s"
