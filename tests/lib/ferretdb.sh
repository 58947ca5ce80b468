#!/usr/bin/env bash
# ferretdb.sh - run a throwaway FerretDB (MongoDB wire protocol, SQLite backend)
# for the sender's tests. The version is pinned by tests/tools/go.mod.
#
# Usage:
#   tests/lib/ferretdb.sh build        build the binary once into the cache, print its path
#   tests/lib/ferretdb.sh start DIR    start on a free 127.0.0.1 port, data in DIR/data/,
#                                      log DIR/ferretdb.log, pid DIR/ferretdb.pid,
#                                      port DIR/ferretdb.port; print mongodb://127.0.0.1:PORT/
#   tests/lib/ferretdb.sh stop DIR     SIGTERM, wait up to 10 s, then SIGKILL (idempotent)
#   tests/lib/ferretdb.sh kill DIR     SIGKILL at once (simulates a crash; idempotent)
#   tests/lib/ferretdb.sh restart DIR  stop if running, start again on the SAME port and data
#   tests/lib/ferretdb.sh id-index DIR DATABASE COLLECTION
#                                      add the SQLite index FerretDB's own _id lookups can use
#                                      (see below); the collection must exist
#
# FerretDB 1.24.2's SQLite handler looks a document up by _id with the SQL
# expression _ferretdb_sjson->'$._id', but indexes _id on _ferretdb_sjson->"_id":
# SQLite does not take one for the other, so every update or delete of one
# document reads the whole table.  id-index creates an index on the expression
# the lookups use, directly in the database file (SQLite allows that while the
# server runs; FerretDB does not know about the index and drops it with the
# collection).  Only the benchmarks use it, to measure sender on a server whose
# updates do not get slower with every record; the tests run FerretDB as it is.
#
# Environment:
#   SENDER_TOOLS_CACHE  binary cache dir (default $HOME/.cache/sender-tools)
#   GO                  go command (default: go in PATH, else /usr/local/go/bin/go)
#   FERRETDB_WAIT       seconds to wait for the server to accept connections (default 30)
#   FERRETDB_LOG_LEVEL  DEBUG, INFO, WARN (default) or ERROR
#
# Caveat (FerretDB 1.24 + SQLite): an `update` command, or several running at once on one
# database, with >= 100 single-document (multi:false) statements deadlocks that database
# until the server is killed. Send update batches of <= 50 statements.
set -euo pipefail

FERRETDB_VERSION=v1.24.2
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools" && pwd)
CACHE=${SENDER_TOOLS_CACHE:-$HOME/.cache/sender-tools}
BIN=$CACHE/ferretdb-$FERRETDB_VERSION

die() { echo "ferretdb.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

build() {
    [[ -x $BIN ]] && { echo "$BIN"; return; }
    local go=${GO:-$(command -v go || echo /usr/local/go/bin/go)} src tmp
    mkdir -p "$CACHE"
    # The module is fetched (and checked against tests/tools/go.sum) into the normal
    # module cache. It is built from a writable copy with build/version/version.txt
    # added: go >= 1.24 records FerretDB as the main module of a `go build`/`go tool`
    # of its cmd/ferretdb, and FerretDB then panics at start-up without that file.
    src=$(cd "$TOOLS_DIR" && export GOFLAGS=-mod=mod &&
        "$go" mod download github.com/FerretDB/FerretDB >&2 &&
        "$go" list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB) || die "go mod download of FerretDB failed"
    [[ -d $src ]] || die "go mod download of FerretDB gave no directory"
    # Build in a temp dir and rename, so an interrupted or concurrent build never
    # leaves a half-written binary behind.
    tmp=$(mktemp -d "$CACHE/build.XXXXXX")
    cp -R "$src" "$tmp/src" && chmod -R u+w "$tmp/src"
    echo "$FERRETDB_VERSION" >"$tmp/src/build/version/version.txt"
    if ! (cd "$tmp/src" && GOFLAGS=-mod=mod "$go" build -trimpath -buildvcs=false \
            -o "$tmp/ferretdb" ./cmd/ferretdb) >&2; then
        rm -rf "$tmp"; die "go build of FerretDB $FERRETDB_VERSION failed"
    fi
    mv -f "$tmp/ferretdb" "$BIN"
    rm -rf "$tmp"
    echo "$BIN"
}

# pid_of DIR: print the pid in DIR/ferretdb.pid if that process is alive and is a ferretdb
pid_of() {
    local pid
    pid=$(cat "$1/ferretdb.pid" 2>/dev/null) || return 1
    [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *ferretdb* ]] && echo "$pid"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# accepting PORT: true when something accepts TCP connections on 127.0.0.1:PORT
accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() { # start DIR [PORT]
    local dir=$1 port=${2:-} pid
    pid=$(pid_of "$dir") && die "already running in $dir (pid $pid)"
    build >/dev/null
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    [[ -n $port ]] || port=$(free_port)
    accepting "$port" && die "port $port is already in use"
    echo "$port" >"$dir/ferretdb.port"
    # --debug-addr=- disables the debug HTTP listener (else :8088 clashes in parallel runs).
    "$BIN" --handler=sqlite --sqlite-url="file:$dir/data/" \
        --listen-addr="127.0.0.1:$port" --debug-addr=- --telemetry=disable \
        --log-level="${FERRETDB_LOG_LEVEL:-WARN}" --state-dir="$dir" \
        </dev/null >>"$dir/ferretdb.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/ferretdb.pid"
    local deadline=$((SECONDS + ${FERRETDB_WAIT:-30}))
    until accepting "$port"; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$dir/ferretdb.pid"
            tail -n 30 "$dir/ferretdb.log" >&2
            die "FerretDB did not start on 127.0.0.1:$port (log: $dir/ferretdb.log)"
        fi
        sleep 0.1
    done
    echo "mongodb://127.0.0.1:$port/"
}

stop() { # stop DIR [SIGNAL]
    local dir=$1 sig=${2:-TERM} pid i
    if pid=$(pid_of "$dir"); then
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do pid_of "$dir" >/dev/null || break; sleep 0.1; done
        if pid_of "$dir" >/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do pid_of "$dir" >/dev/null || break; sleep 0.1; done
        fi
    fi
    rm -f "$dir/ferretdb.pid"
}

restart() {
    local dir=$1
    [[ -f $dir/ferretdb.port ]] || die "no $dir/ferretdb.port: start it first"
    stop "$dir"
    start "$dir" "$(cat "$dir/ferretdb.port")"
}

id_index() { # id-index DIR DATABASE COLLECTION
    local db=$1/data/$2.sqlite table
    [[ -f $db ]] || die "no database file $db"
    command -v sqlite3 >/dev/null || die "id-index needs the sqlite3 command"
    table=$(sqlite3 "$db" "SELECT table_name FROM _ferretdb_collections WHERE name = '${3//\'/\'\'}'") ||
        die "cannot read FerretDB's collections in $db"
    [[ -n $table ]] || die "no collection $3 in database $2"
    sqlite3 "$db" "PRAGMA busy_timeout = 10000;
        CREATE INDEX IF NOT EXISTS \"${table}_sender_id_lookup\"
        ON \"$table\" (_ferretdb_sjson->'\$._id')" >/dev/null || die "cannot create the index in $db"
}

case ${1:-} in
    build) [[ $# -eq 1 ]] || usage; build ;;
    start) [[ $# -eq 2 ]] || usage; start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    kill) [[ $# -eq 2 ]] || usage; stop "$2" KILL ;;
    restart) [[ $# -eq 2 ]] || usage; restart "$2" ;;
    id-index) [[ $# -eq 4 ]] || usage; id_index "$2" "$3" "$4" ;;
    *) usage ;;
esac
