# sender: make builds ./sender; make check runs every test; make demo shows
# it working.  Both install missing Debian packages first (as root).

VERSION  = 0.1.0
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror
STD      = -std=c11 -D_GNU_SOURCE -DSENDER_VERSION='"$(VERSION)"'
BUILD   ?= build

# Storage backends: each is src/store_NAME.c, which defines store_NAME_ops
# (see src/store.h), and its pkg-config package.  The table of src/store.c
# is made from this list, in this order (--version shows it).
STORES        = sqlite mysql mongo
PKG_sqlite    = sqlite3
PKG_mysql     = mysqlclient
PKG_mongo     = libmongoc-1.0
STORES_BUILT  = $(foreach s,$(STORES),$(if $(wildcard src/store_$(s).c),$(s)))

PKGS     = libxml-2.0 libcurl jansson inih $(foreach s,$(STORES_BUILT),$(PKG_$(s)))
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
DEFS     = -DSENDER_BACKENDS="$(foreach s,$(STORES_BUILT),STORE($(s)))"

MODULES  = api backoff bucket buf cfg clock core_keys idset journal log message owner \
           progress reader report run store store_net store_worker summary text url window \
           $(foreach s,$(STORES_BUILT),store_$(s))
OBJS     = $(MODULES:%=$(BUILD)/src/%.o)
# -pthread: the store worker (src/store_worker.c) is a thread
ALL_CFLAGS = $(STD) $(WARN) $(CFLAGS) $(DEFS) $(PKG_CFLAGS) -pthread

UNIT_TESTS = $(patsubst tests/unit/%.c,%,$(filter-out tests/unit/harness.c,$(wildcard tests/unit/test_*.c)))

.PHONY: all check unit demo asan valgrind lint format clean deps deps-test \
	deps-demo install uninstall FORCE

all: sender tests/mock_api

# copy then rename: a test may be running the old binary
sender: $(BUILD)/sender
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/sender: $(BUILD)/sender.o $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# objects are rebuilt when the flags change (a backend added, sanitizers)
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(ALL_CFLAGS)' | cmp -s - $@ || echo '$(ALL_CFLAGS)' > $@

$(BUILD)/%.o: %.c $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(OBJS:.o=.d) $(BUILD)/sender.d

tests/mock_api: tests/mock_api.c
	$(CC) $(STD) $(WARN) $(CFLAGS) -o $@ $< \
		$$(pkg-config --cflags --libs libmicrohttpd) -lpthread

# unit tests: one program per module, on the tiny harness in tests/unit
$(BUILD)/unit/%: tests/unit/%.c tests/unit/harness.c $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $^ $(PKG_LIBS)

unit: $(UNIT_TESTS:%=$(BUILD)/unit/%)
	@tests/run-unit.sh $^

deps:
	@tests/deps.sh build

deps-test:
	@tests/deps.sh test

# The whole suite; the last line it prints is "N passed, N failed".
check: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/sender tests/mock_api $(UNIT_TESTS:%=$(BUILD)/unit/%)
	@$(MAKE) --no-print-directory fuzz-smoke
	@SENDER_BIN=$(CURDIR)/$(BUILD)/sender tests/run-all.sh $(UNIT_TESTS:%=$(BUILD)/unit/%)

# The same suite with AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps-test
	@$(MAKE) --no-print-directory BUILD=build/asan \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" check

# The integration scenarios (SQLite) with sender under valgrind memcheck:
# any memory error or leak makes it exit 99, which fails the test.
valgrind: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/sender tests/mock_api
	@command -v valgrind >/dev/null || tests/deps.sh valgrind
	@SENDER_BIN=$(CURDIR)/tests/valgrind-sender.sh SENDER_VALGRIND=1 \
		SENDER_TEST_BACKENDS=sqlite tests/run-all.sh

# only what the demo needs: no MariaDB, clang or FerretDB on the way
demo: deps-demo
	@$(MAKE) --no-print-directory all
	@tests/demo.sh

deps-demo:
	@tests/deps.sh demo

# What `make install` puts where; `make uninstall` removes the same list.
PREFIX ?= /usr/local
INSTALLED = bin/sender share/man/man1/sender.1 \
	    share/doc/sender/config.example.ini share/doc/sender/README.md \
	    share/bash-completion/completions/sender
install: sender
	install -D -m 755 sender $(DESTDIR)$(PREFIX)/bin/sender
	install -D -m 644 sender.1 $(DESTDIR)$(PREFIX)/share/man/man1/sender.1
	install -D -m 644 config.example.ini \
		$(DESTDIR)$(PREFIX)/share/doc/sender/config.example.ini
	install -D -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/sender/README.md
	install -D -m 644 doc/sender.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/sender

uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)$(PREFIX)/%)
	-rmdir $(DESTDIR)$(PREFIX)/share/doc/sender 2>/dev/null

# Every C file of the project, in the style of .clang-format.
C_FILES = sender.c $(wildcard src/*.[ch] tests/*.c tests/unit/*.[ch] \
		tests/fuzz/*.c bench/*.c)

# Fails on a file not formatted as .clang-format says (the diff is shown:
# `make format` applies it), on a banned function, or on any clang-tidy
# finding (.clang-tidy).
lint:
	@tests/deps.sh lint
	@clang-format --dry-run --Werror $(C_FILES) \
		|| { echo "lint: not formatted: run make format"; exit 1; }
	@! grep -nE '\b(strcpy|strcat|sprintf|atoi|strtok)\s*\(' $(C_FILES) \
		|| { echo "lint: banned function above"; exit 1; }
	clang-tidy --quiet sender.c src/*.c -- $(ALL_CFLAGS) 2>/dev/null

format:
	@tests/deps.sh lint
	clang-format -i $(C_FILES)

clean:
	rm -rf build sender tests/mock_api

# libFuzzer targets (tests/fuzz/), built with clang, ASan and UBSan into
# build/fuzz/.  `make fuzz` runs each for FUZZ_SECONDS over its kept corpus
# and merges what it finds new into it; `make fuzz-smoke` runs each for 10 s
# and leaves the corpus alone.  Both fail on a crash, a broken invariant,
# a leak or a timeout, with the input in build/fuzz/artifacts/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all \
		-fsanitize=fuzzer,address,undefined $(STD) $(WARN) -Isrc
FUZZ_SRC_reader = src/reader.c src/buf.c src/text.c
FUZZ_PKG_reader = libxml-2.0
FUZZ_SRC_config = src/cfg.c src/core_keys.c src/owner.c src/store.c \
		  src/store_sqlite.c src/url.c
FUZZ_PKG_config = inih sqlite3 libcurl
FUZZ_BINS       = build/fuzz/fuzz_reader build/fuzz/fuzz_config

.PHONY: fuzz fuzz-smoke

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard src/*.c src/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $$(pkg-config --cflags $(FUZZ_PKG_$*)) \
		-o $@ $< $(FUZZ_SRC_$*) $$(pkg-config --libs $(FUZZ_PKG_$*))

fuzz: deps-test
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@tests/fuzz/run.sh $(FUZZ_SECONDS) merge

fuzz-smoke: deps-test
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@tests/fuzz/run.sh 10

# Throughput, latency, capacity and memory figures in one table (issue 6);
# starts and stops its own nginx, mock API and database servers.
.PHONY: bench bench-stores
bench: all
	@bench/run.sh

# records/s of each store in one 100,000-letter run (FerretDB: minutes)
bench-stores: all
	@bench/store_rates.sh

# aggregate letters/s of 1, 2 and 4 sender hosts on one MariaDB, on the
# namespace test bed (root), -j 32 each against a 20 ms mock API
.PHONY: bench-hosts
bench-hosts: all
	@/usr/bin/python3 bench/hosts.py

# letters/s of 3 sender hosts on a 3-node Galera cluster (one node each)
# next to 3 hosts on one MariaDB, on the namespace test bed (root)
.PHONY: bench-cluster
bench-cluster: all
	@/usr/bin/python3 bench/cluster.py

# only the Galera scenarios of make check (tests/integration/test_galera.py:
# a 3-node cluster on the namespace test bed; root, galera-4, rsync)
.PHONY: check-cluster
check-cluster: deps-test all
	@SENDER_TEST_BACKENDS=mysql /usr/bin/python3 -m pytest -q \
		-p no:cacheprovider tests/integration/test_galera.py
