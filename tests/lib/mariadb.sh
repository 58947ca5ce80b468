#!/usr/bin/env bash
# Private, throw-away MariaDB server for tests (never touches the system one).
#
# Usage: tests/lib/mariadb.sh start DIR   bootstrap DIR/data if needed, start,
#                                         print "socket=DIR/mysqld.sock" and
#                                         "password=<u1 password>"
#        tests/lib/mariadb.sh stop DIR    clean shutdown (idempotent)
#        tests/lib/mariadb.sh kill DIR    SIGKILL (simulated crash); restart
#                                         later with "start DIR"
#        tests/lib/mariadb.sh sql DIR [STATEMENT]
#                                         run STATEMENT (or stdin) as root in
#                                         database `sender`, tab-separated,
#                                         no headers
# Environment: MARIADB_U1_PASSWORD (default u1pass) for user u1 (all on sender.*)
#              MARIADB_TCP_PORT=N  also listen on 127.0.0.1:N (and add u1@'%')
#              MARIADB_BIND_ADDRESS=A  listen on A:N instead (a test bed's host)
#              MARIADB_SERVER_ARGS  more server options, split at spaces
#                                  (e.g. --ssl-cert=... for TLS)
# The server runs with --default-time-zone=+03:00 on purpose: clients must
# store UTC themselves. Files: DIR/data, DIR/mysqld.sock, DIR/mariadb.pid,
# DIR/mariadb.err (server log).
set -euo pipefail

usage() { sed -n '2,21s/^# \{0,1\}//p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
[ "$cmd" = start ] && mkdir -p "$2"
dir=$(cd "$2" 2>/dev/null && pwd) || dir=$2
sock=$dir/mysqld.sock
pidf=$dir/mariadb.pid
pw=${MARIADB_U1_PASSWORD:-u1pass}
port=${MARIADB_TCP_PORT:-}

# True while any thread of PID is not yet dead: after SIGKILL the main thread
# turns zombie before the others have closed the listening socket.
alive() {
    local t
    for t in /proc/"$1"/task/*/stat; do
        grep -q '^[^)]*) [^ZX]' "$t" 2>/dev/null && return 0
    done
    return 1
}

# Pid of our running server, or nothing (guards against stale pid files).
server_pid() {
    local p
    p=$(cat "$pidf" 2>/dev/null) || return 0
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mariadbd ] && alive "$p" && echo "$p" || true
}

# wait_gone PID SECONDS: 0 once PID has exited, 1 on timeout.
wait_gone() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        alive "$1" || return 0
        sleep 0.1
    done
    return 1
}

# Small-footprint settings, also given to the bootstrap (avoids a redo resize).
small=(--skip-log-bin --innodb-buffer-pool-size=64M --innodb-log-file-size=16M
       --performance-schema=OFF --key-buffer-size=1M)

root_sql() { mariadb --no-defaults -S "$sock" -u root --batch --skip-column-names "$@"; }

start() {
    if [ ! -d "$dir/data/mysql" ]; then
        mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
            --auth-root-authentication-method=normal --skip-test-db \
            --skip-name-resolve "${small[@]}" >"$dir/install.log" 2>&1 ||
            { cat "$dir/install.log" >&2; exit 1; }
    fi
    if [ -z "$(server_pid)" ]; then
        local net=(--skip-networking)
        [ -n "$port" ] && net=(--port="$port" --bind-address="${MARIADB_BIND_ADDRESS:-127.0.0.1}")
        # a tmpdir of its own: servers in PID namespaces (the test bed)
        # have the same pids, and would collide on /tmp/#sql-temptable-*
        mkdir -p "$dir/tmp"
        mariadbd --no-defaults --user=root --datadir="$dir/data" \
            --socket="$sock" --pid-file="$pidf" --log-error="$dir/mariadb.err" \
            --tmpdir="$dir/tmp" \
            "${net[@]}" "${small[@]}" ${MARIADB_SERVER_ARGS:-} --skip-name-resolve \
            --default-time-zone=+03:00 --max-connections=200 \
            </dev/null >>"$dir/mariadb.err" 2>&1 &
        local pid=$! i
        for ((i = 0; ; i++)); do
            mariadb-admin --no-defaults -S "$sock" -u root ping >/dev/null 2>&1 && break
            if ! alive "$pid" || [ "$i" -ge 300 ]; then
                echo "mariadb.sh: server in $dir failed to start; tail of log:" >&2
                tail -n 20 "$dir/mariadb.err" >&2
                kill -9 "$pid" 2>/dev/null || true
                exit 1
            fi
            sleep 0.1
        done
    fi
    local hosts=(localhost) h grants="CREATE DATABASE IF NOT EXISTS sender;"
    [ -n "$port" ] && hosts+=(127.0.0.1 %)
    for h in "${hosts[@]}"; do
        grants+="CREATE USER IF NOT EXISTS 'u1'@'$h';
                 ALTER USER 'u1'@'$h' IDENTIFIED BY '$pw';
                 GRANT ALL PRIVILEGES ON sender.* TO 'u1'@'$h';"
    done
    root_sql -e "$grants"
    echo "socket=$sock"
    echo "password=$pw"
}

stop() {
    local pid
    pid=$(server_pid)
    [ -n "$pid" ] || return 0
    root_sql -e SHUTDOWN >/dev/null 2>&1 || true  # faster than mariadb-admin
    wait_gone "$pid" 60 && return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 15 && return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10
}

crash() {
    local pid
    pid=$(server_pid)
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10
}

case $cmd in
start) start ;;
stop) stop ;;
kill) crash ;;
sql) root_sql sender ${3+-e "$3"} ;;
*) usage ;;
esac
