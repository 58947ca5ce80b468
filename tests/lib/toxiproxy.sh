#!/usr/bin/env bash
# toxiproxy.sh - run a throwaway Toxiproxy (a TCP proxy with latency,
# bandwidth, timeouts and resets on demand) for the sender's tests and
# benchmarks, to put between sender and its database.  The version is
# pinned by tests/tools/go.mod.
#
# Usage:
#   tests/lib/toxiproxy.sh build        build the binary once into the cache, print its path
#   tests/lib/toxiproxy.sh start DIR    start its HTTP API on a free 127.0.0.1 port,
#                                       log DIR/toxiproxy.log, pid DIR/toxiproxy.pid,
#                                       port DIR/toxiproxy.port; print http://127.0.0.1:PORT
#   tests/lib/toxiproxy.sh stop DIR     SIGTERM, wait up to 10 s, then SIGKILL (idempotent)
#   tests/lib/toxiproxy.sh proxy DIR NAME UPSTREAM_PORT
#                                       create proxy NAME from a free 127.0.0.1 port to
#                                       127.0.0.1:UPSTREAM_PORT; print the port it listens on
#
# Toxiproxy's own defaults are its API on localhost:8474 (which may resolve
# to ::1 as well, and clashes between parallel runs) and whatever address a
# proxy is given: here the API listens on 127.0.0.1 and a free port, and
# `proxy` listens on 127.0.0.1:0 (the kernel picks the port; the API
# answers with it).  Toxics are added through the API, e.g. with curl:
#   curl -s -X POST http://127.0.0.1:PORT/proxies/NAME/toxics \
#        -d '{"type":"latency","stream":"downstream","attributes":{"latency":1}}'
#   curl -s -X POST http://127.0.0.1:PORT/proxies/NAME/toxics \
#        -d '{"name":"cut","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}'
#   curl -s -X POST http://127.0.0.1:PORT/proxies/NAME -d '{"enabled":false}'
# (see the README of github.com/Shopify/toxiproxy for every toxic).
#
# Environment:
#   SENDER_TOOLS_CACHE  binary cache dir (default $HOME/.cache/sender-tools)
#   GO                  go command (default: go in PATH, else /usr/local/go/bin/go)
#   TOXIPROXY_WAIT      seconds to wait for the API to accept connections (default 15)
#   TOXIPROXY_LOG_LEVEL trace, debug, info, warn (default) or error
set -euo pipefail

TOXIPROXY_VERSION=v2.12.0
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools" && pwd)
CACHE=${SENDER_TOOLS_CACHE:-$HOME/.cache/sender-tools}
BIN=$CACHE/toxiproxy-$TOXIPROXY_VERSION

die() { echo "toxiproxy.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

build() {
    [[ -x $BIN ]] && { echo "$BIN"; return; }
    local go=${GO:-$(command -v go || echo /usr/local/go/bin/go)} tmp
    mkdir -p "$CACHE"
    grep -q "github.com/Shopify/toxiproxy/v2 $TOXIPROXY_VERSION" "$TOOLS_DIR/go.mod" ||
        die "tests/tools/go.mod does not pin toxiproxy $TOXIPROXY_VERSION"
    # Built in the tools module itself: its go.mod and go.sum pin toxiproxy
    # and every module it needs.  Into a temp dir, then renamed, so an
    # interrupted or concurrent build never leaves a half-written binary.
    tmp=$(mktemp -d "$CACHE/build.XXXXXX")
    if ! (cd "$TOOLS_DIR" && GOFLAGS=-mod=mod "$go" build -trimpath -buildvcs=false \
            -o "$tmp/toxiproxy" github.com/Shopify/toxiproxy/v2/cmd/server) >&2; then
        rm -rf "$tmp"; die "go build of toxiproxy $TOXIPROXY_VERSION failed"
    fi
    mv -f "$tmp/toxiproxy" "$BIN"
    rm -rf "$tmp"
    echo "$BIN"
}

# pid_of DIR: print the pid in DIR/toxiproxy.pid if that process is alive and is a toxiproxy
pid_of() {
    local pid
    pid=$(cat "$1/toxiproxy.pid" 2>/dev/null) || return 1
    [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *toxiproxy* ]] && echo "$pid"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# accepting PORT: true when something accepts TCP connections on 127.0.0.1:PORT
accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() { # start DIR
    local dir=$1 port pid
    pid=$(pid_of "$dir") && die "already running in $dir (pid $pid)"
    build >/dev/null
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    port=$(free_port)
    echo "$port" >"$dir/toxiproxy.port"
    LOG_LEVEL=${TOXIPROXY_LOG_LEVEL:-warn} "$BIN" -host 127.0.0.1 -port "$port" \
        </dev/null >>"$dir/toxiproxy.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/toxiproxy.pid"
    local deadline=$((SECONDS + ${TOXIPROXY_WAIT:-15}))
    until accepting "$port"; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$dir/toxiproxy.pid"
            tail -n 30 "$dir/toxiproxy.log" >&2
            die "Toxiproxy did not start on 127.0.0.1:$port (log: $dir/toxiproxy.log)"
        fi
        sleep 0.1
    done
    echo "http://127.0.0.1:$port"
}

stop() { # stop DIR
    local dir=$1 pid i
    if pid=$(pid_of "$dir"); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do pid_of "$dir" >/dev/null || break; sleep 0.1; done
        if pid_of "$dir" >/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do pid_of "$dir" >/dev/null || break; sleep 0.1; done
        fi
    fi
    rm -f "$dir/toxiproxy.pid"
}

proxy() { # proxy DIR NAME UPSTREAM_PORT
    local dir=$1 name=$2 up=$3 port answer
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad proxy name '$name' (letters, digits, _ . -)"
    [[ $up =~ ^[0-9]+$ ]] || die "bad upstream port '$up'"
    pid_of "$dir" >/dev/null || die "not running in $dir: start it first"
    port=$(cat "$dir/toxiproxy.port")
    answer=$(curl -sS --fail-with-body -X POST "http://127.0.0.1:$port/proxies" \
        -d "{\"name\":\"$name\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$up\",\"enabled\":true}") ||
        die "cannot create proxy $name: $answer"
    echo "$answer" | sed -n 's/.*"listen":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' | grep . ||
        die "no listen port in the answer: $answer"
}

case ${1:-} in
    build) [[ $# -eq 1 ]] || usage; build ;;
    start) [[ $# -eq 2 ]] || usage; start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    proxy) [[ $# -eq 4 ]] || usage; proxy "$2" "$3" "$4" ;;
    *) usage ;;
esac
