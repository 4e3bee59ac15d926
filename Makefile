# portcullis — build, run and test.
#
#   make run    start the IdP at http://localhost:8080 (SQLite + in-memory state)
#   make test   run the whole test suite
#   make scale-test  three servers on PostgreSQL + Redis behind nginx
#               (needs PORTCULLIS_TEST_DATABASE_URL; see the README)
#   make bench  load-test the release server, pinned to one core (target/bench/)
#
# Each first runs `setup`, which installs missing system build packages with
# apt-get (only when a check below finds them missing).

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup test-setup build run test scale-test bench fuzz lint fmt clean

all: build

setup:
	@missing=""; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing build-essential"; \
	pkg-config --exists libpq 2>/dev/null || missing="$$missing libpq-dev"; \
	pkg-config --exists openssl 2>/dev/null || missing="$$missing libssl-dev"; \
	pkg-config --exists libxml-2.0 2>/dev/null || missing="$$missing libxml2-dev"; \
	pkg-config --exists xmlsec1 2>/dev/null || missing="$$missing libxmlsec1-dev"; \
	ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || ls /usr/lib/*/libclang.so >/dev/null 2>&1 || missing="$$missing libclang-dev"; \
	if [ -n "$$missing" ]; then \
		echo "setup: installing$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else \
		echo "setup: system build packages present"; \
	fi

build: setup
	$(CARGO) build

run: setup
	$(CARGO) run -- serve

# Tools the tests use as independent checkers (xmlsec1 verifies SAML signatures),
# a browser, and the scale tests' load balancer.
test-setup: setup
	@command -v xmlsec1 >/dev/null 2>&1 || { \
		echo "test-setup: installing xmlsec1"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq xmlsec1 \
		|| echo "test-setup: xmlsec1 could not be installed; its checks will be skipped"; }
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "test-setup: installing chromium (browser test)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium \
		|| echo "test-setup: chromium could not be installed; the browser test will be skipped"; }
	@command -v nginx >/dev/null 2>&1 || { \
		echo "test-setup: installing nginx (load balancer of the scale tests)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx \
		|| echo "test-setup: nginx could not be installed; the scale tests will be skipped"; }

test: test-setup
	$(CARGO) test

# The several-node setup of the README: each test starts three `portcullis
# serve` processes on a database of its own, a Redis of its own and nginx
# (round robin, no stickiness), and stops them all afterwards. One test at a
# time: each is a whole cluster on a small machine.
scale-test: test-setup
	@test -n "$$PORTCULLIS_TEST_DATABASE_URL" || { \
		echo "scale-test: set PORTCULLIS_TEST_DATABASE_URL (a PostgreSQL server where it may create databases)"; exit 2; }
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "scale-test: installing redis-server"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }
	PORTCULLIS_SCALE_REQUIRED=1 $(CARGO) test --test scale -- --include-ignored --test-threads=1

# The release server pinned to core 0 (taskset) under load from core 1, with the
# raw OpenSSL and Argon2id rates of that core measured in the same run; writes
# target/bench/*.json and target/bench/summary.md. `cargo bench` builds the
# release binary it starts; wrk drives the stateless GETs, a Rust client
# (benches/load/) the rest. Quick run: BENCH_SECONDS=1 BENCH_SESSIONS=500.
# PostgreSQL + Redis too when PORTCULLIS_TEST_DATABASE_URL and
# PORTCULLIS_TEST_REDIS_URL are set.
bench: setup
	@command -v taskset >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || { \
		echo "bench: installing util-linux and openssl (taskset, openssl speed)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq util-linux openssl; }
	@command -v wrk >/dev/null 2>&1 || { \
		echo "bench: installing wrk (discovery and JWKS load)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk \
		|| echo "bench: wrk could not be installed; the Rust load generator drives every scenario"; }
	$(CARGO) bench --bench load

# The property tests of every network parser, with many more cases.
PROPTEST_CASES ?= 20000
fuzz: setup
	PROPTEST_CASES=$(PROPTEST_CASES) $(CARGO) test --lib proptests

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
