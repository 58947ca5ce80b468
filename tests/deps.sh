#!/bin/sh
# Install the Debian packages sender needs to build (and, with "test", to
# run its tests), when some are missing.  As root it runs apt-get itself;
# otherwise it prints the exact command to run and fails.
#
#   tests/deps.sh build     the libraries and tools to build ./sender
#   tests/deps.sh demo      and what tests/demo.sh uses (sqlite3)
#   tests/deps.sh lint      and clang-format, clang-tidy (make lint, format)
#   tests/deps.sh test      the build and lint sets, the servers and tools
#                           the tests use
#   tests/deps.sh valgrind  and valgrind
set -eu

build="gcc make pkg-config libxml2-dev libcurl4-openssl-dev libjansson-dev
libsqlite3-dev libinih-dev libmariadb-dev libmariadb-dev-compat
libmongoc-dev libbson-dev libmicrohttpd-dev"
lint="clang-format clang-tidy"
demo="sqlite3"
test="$lint sqlite3 time python3 python3-pytest python3-pymysql python3-pymongo
mariadb-server mariadb-client galera-4 rsync clang libclang-rt-14-dev"

case ${1:-build} in
build) want=$build ;;
demo) want="$build $demo" ;;
lint) want="$build $lint" ;;
test) want="$build $test" ;;
valgrind) want="$build $test valgrind" ;;
*) echo "usage: tests/deps.sh [build|demo|lint|test|valgrind]" >&2; exit 2 ;;
esac

missing=
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "sender: missing Debian packages; install them with:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "sender: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# a fresh machine has no package lists yet; refresh them once if needed
if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
	apt-get update -qq
	apt-get install -y -qq $missing >/dev/null
fi
