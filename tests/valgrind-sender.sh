#!/bin/sh
# Run sender under valgrind memcheck: any error or leak makes it exit 99,
# which the integration tests see as a wrong exit status.  Used by
# `make valgrind` as SENDER_BIN.
exec valgrind --quiet --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	"$(dirname "$0")/../build/sender" "$@"
