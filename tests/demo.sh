#!/bin/sh
# make demo: start the mock API on a free loopback port, send sample.xml
# into a fresh SQLite file, show the summary and some rows, stop the mock.
# The mock answers "1" (delivered), "0" for every 7th id, and 400 for id 13.
set -eu
cd "$(dirname "$0")/.."
dir=demo
rm -rf "$dir" && mkdir -p "$dir"

tests/mock_api --port-file "$dir/port" --log "$dir/mock.log" \
	--zero-every 7 --answer '13=400:mailbox unavailable' &
mock=$!
trap 'kill $mock 2>/dev/null; wait $mock 2>/dev/null || true' EXIT
i=0
while [ ! -s "$dir/port" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "demo: mock API did not start" >&2; exit 1; }
	sleep 0.05
done
port=$(cat "$dir/port")

cat >"$dir/sender.ini" <<INI
[api]
url = http://127.0.0.1:$port/api.php
[sqlite]
; beside this file: relative paths in a config file are
path = sender.db
INI

echo "\$ ./sender -c $dir/sender.ini sample.xml"
rc=0
./sender -c "$dir/sender.ini" sample.xml 2>&1 || rc=$?
echo "(exit status $rc)"
echo
echo "\$ sqlite3 $dir/sender.db 'SELECT id, ts, delivery_status FROM results ORDER BY id LIMIT 8'"
sqlite3 -header -column "$dir/sender.db" \
	'SELECT id, ts, delivery_status FROM results ORDER BY id LIMIT 8'
echo
echo "\$ ./sender -c $dir/sender.ini sample.xml    # again: every id is done"
./sender -c "$dir/sender.ini" sample.xml 2>&1 || true
[ "$rc" = 0 ]
