#!/usr/bin/env bash
# One node of a private, throw-away MariaDB Galera cluster, for tests and
# benches (never touches the system server).
#
# Usage: tests/lib/galera.sh bootstrap DIR  start DIR's node as a new cluster
#                                           (the first node; makes DIR/data,
#                                           database `sender` and user u1)
#        tests/lib/galera.sh start DIR      start DIR's node and join the
#                                           cluster (state by rsync SST or IST)
#        tests/lib/galera.sh stop DIR       clean shutdown (idempotent)
#        tests/lib/galera.sh kill DIR       SIGKILL (a crash); "start" rejoins
#        tests/lib/galera.sh sql DIR [STATEMENT]
#                                           run STATEMENT (or stdin) as root in
#                                           database `sender`, tab-separated
#        tests/lib/galera.sh status DIR     cluster_status size ready state,
#                                           e.g. "Primary 3 ON Synced"
#        tests/lib/galera.sh wait DIR SIZE [SECONDS]
#                                           wait until the node is Synced in a
#                                           primary component of SIZE nodes
# Environment: GALERA_ADDR  the node's address (default 127.0.0.1):
#                           replication on ADDR:GALERA_GCOMM_PORT (default
#                           4567), IST on that port + 1, SST on that port + 2
#              GALERA_BIND  where clients connect (default GALERA_ADDR), on
#                           port GALERA_PORT (default 3306)
#              GALERA_CLUSTER  every member's ADDR:GCOMM_PORT, comma-separated
#              GALERA_NAME  the node's name (default: DIR's base name)
#              GALERA_PROVIDER_OPTIONS  more wsrep_provider_options, e.g.
#                           "evs.suspect_timeout=PT2S;evs.inactive_timeout=PT3S"
#              GALERA_WATCH_PID  if set, the node is SIGKILLed once that
#                           process is gone (a test run that died)
#              MARIADB_U1_PASSWORD (default u1pass) for u1@'%' (all on sender.*)
# The node runs as user mysql: the rsync daemon that receives a state
# transfer drops to nobody when started as root, and could then not write
# the joiner's data directory.  Files: DIR/data, DIR/mysqld.sock,
# DIR/mariadb.pid, DIR/mariadb.err.  Time zone +03:00 on purpose, as in
# mariadb.sh: clients must store UTC themselves.
set -euo pipefail

usage() { sed -n '2,34s/^# \{0,1\}//p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
case $cmd in bootstrap | start) mkdir -p "$2" ;; esac
dir=$(cd "$2" 2>/dev/null && pwd) || dir=$2
sock=$dir/mysqld.sock
pidf=$dir/mariadb.pid
pw=${MARIADB_U1_PASSWORD:-u1pass}
addr=${GALERA_ADDR:-127.0.0.1}
port=${GALERA_PORT:-3306}
bind=${GALERA_BIND:-$addr}
gport=${GALERA_GCOMM_PORT:-4567}
name=${GALERA_NAME:-$(basename "$dir")}
provider=/usr/lib/galera/libgalera_smm.so

# True while any thread of PID is not yet dead (see mariadb.sh).
alive() {
    local t
    for t in /proc/"$1"/task/*/stat; do
        grep -q '^[^)]*) [^ZX]' "$t" 2>/dev/null && return 0
    done
    return 1
}

server_pid() {
    local p
    p=$(cat "$pidf" 2>/dev/null) || return 0
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mariadbd ] && alive "$p" && echo "$p" || true
}

wait_gone() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        alive "$1" || return 0
        sleep 0.1
    done
    return 1
}

small=(--skip-log-bin --innodb-buffer-pool-size=64M --innodb-log-file-size=16M
       --performance-schema=OFF --key-buffer-size=1M)

root_sql() { mariadb --no-defaults -S "$sock" -u root --batch --skip-column-names "$@"; }

status() {
    root_sql -e "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_status',
        'wsrep_cluster_size', 'wsrep_ready', 'wsrep_local_state_comment')" \
        2>/dev/null | awk '{ v[$1] = $2 } END {
            print v["wsrep_cluster_status"], v["wsrep_cluster_size"],
                  v["wsrep_ready"], v["wsrep_local_state_comment"] }'
}

# wait_synced SIZE SECONDS
wait_synced() {
    local i s
    for ((i = 0; i < $2 * 10; i++)); do
        s=$(status || true)
        [ "$s" = "Primary $1 ON Synced" ] && return 0
        sleep 0.1
    done
    echo "galera.sh: node $name in $dir is '$s', not 'Primary $1 ON Synced'" \
         "after $2 s; tail of its log:" >&2
    tail -n 30 "$dir/mariadb.err" >&2
    return 1
}

launch() { # extra mariadbd arguments...
    # a small write-set cache (128M by default, on disk): enough for a
    # node of a test to rejoin by IST
    local opts="gmcast.listen_addr=tcp://$addr:$gport;ist.recv_addr=$addr:$((gport + 1));gcache.size=32M"
    [ -n "${GALERA_PROVIDER_OPTIONS:-}" ] && opts+=";$GALERA_PROVIDER_OPTIONS"
    # a tmpdir of its own: nodes in PID namespaces have the same pids,
    # and would share the names of their temporary files in /tmp
    mkdir -p "$dir/data" "$dir/tmp"
    chown -R mysql: "$dir"
    mariadbd --no-defaults --user=mysql --datadir="$dir/data" \
        --socket="$sock" --pid-file="$pidf" --log-error="$dir/mariadb.err" \
        --tmpdir="$dir/tmp" --port="$port" --bind-address="$bind" "${small[@]}" \
        --skip-name-resolve --default-time-zone=+03:00 --max-connections=200 \
        --wsrep-on=ON --wsrep-provider="$provider" \
        --wsrep-cluster-address="gcomm://${GALERA_CLUSTER:?set GALERA_CLUSTER}" \
        --wsrep-node-address="$addr:$gport" --wsrep-node-name="$name" \
        --wsrep-sst-method=rsync --wsrep-provider-options="$opts" \
        --wsrep-sst-receive-address="$addr:$((gport + 2))" \
        --binlog-format=ROW --default-storage-engine=InnoDB \
        --innodb-autoinc-lock-mode=2 "$@" \
        </dev/null >>"$dir/mariadb.err" 2>&1 &
    local pid=$! i
    if [ -n "${GALERA_WATCH_PID:-}" ]; then
        # setsid: not in the caller's process group, so that a caller
        # waiting for its children's output is not held up by it
        setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null
                        do sleep 0.5; done; kill -9 "$2" 2>/dev/null' \
            watchdog "$GALERA_WATCH_PID" "$pid" </dev/null >/dev/null 2>&1 &
    fi
    # the socket answers once the node has its state (SST included)
    for ((i = 0; ; i++)); do
        mariadb-admin --no-defaults -S "$sock" -u root ping >/dev/null 2>&1 && break
        if ! alive "$pid" || [ "$i" -ge 1200 ]; then
            echo "galera.sh: node $name in $dir failed to start; tail of log:" >&2
            tail -n 30 "$dir/mariadb.err" >&2
            kill -9 "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
}

bootstrap() {
    [ -z "$(server_pid)" ] || { echo "galera.sh: node $name already runs" >&2; exit 1; }
    if [ ! -d "$dir/data/mysql" ]; then
        mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
            --auth-root-authentication-method=normal --skip-test-db \
            --skip-name-resolve "${small[@]}" >"$dir/install.log" 2>&1 ||
            { cat "$dir/install.log" >&2; exit 1; }
    fi
    # a node that was the last to leave may bootstrap again
    [ -f "$dir/data/grastate.dat" ] &&
        sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$dir/data/grastate.dat"
    launch --wsrep-new-cluster
    wait_synced 1 60
    # DDL and account statements replicate to every node that joins
    root_sql -e "CREATE DATABASE IF NOT EXISTS sender;
                 CREATE USER IF NOT EXISTS 'u1'@'%';
                 ALTER USER 'u1'@'%' IDENTIFIED BY '$pw';
                 GRANT ALL PRIVILEGES ON sender.* TO 'u1'@'%';"
    echo "socket=$sock"
}

start() {
    [ -n "$(server_pid)" ] || launch
    echo "socket=$sock"
}

stop() {
    local pid
    pid=$(server_pid)
    [ -n "$pid" ] || return 0
    root_sql -e SHUTDOWN >/dev/null 2>&1 || true
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
bootstrap) bootstrap ;;
start) start ;;
stop) stop ;;
kill) crash ;;
sql) root_sql sender ${3+-e "$3"} ;;
status) status ;;
wait) wait_synced "${3:?SIZE}" "${4:-60}" ;;
*) usage ;;
esac
