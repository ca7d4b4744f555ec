# deadbolt: build, test and demo.
#
#   make demo    install what is missing, build, show a lockout with real PAM
#   make test    format, lints, build, every test, docs

SHELL := /bin/bash
CARGO ?= cargo

# Each target runs its steps in order, even under make -j.
.NOTPARALLEL:
.PHONY: all deps build demo test bench clean

all: build

deps:
	scripts/setup-deps

build:
	$(CARGO) build --workspace --all-targets

demo: deps build
	scripts/demo

# cargo test never builds a cdylib: the workspace build (module and CLI)
# comes before the tests that load them.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace
	$(CARGO) test --workspace
	bench/run --short
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps

# Results and how to read them: docs/performance.md.
bench: deps
	scripts/setup-deps --bench
	bench/run
	bench/password-change 15 24
	$(CARGO) build --workspace
	$(CARGO) build --release -p deadbolt-ldap-sync
	DEADBOLT_SYNCD=$(CURDIR)/target/release/deadbolt-syncd \
		$(CARGO) test -p deadbolt-tests --test fleet_bench -- --ignored --nocapture --test-threads 1

clean:
	$(CARGO) clean
