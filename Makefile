# deadbolt: build, test and demo.
#
#   make demo    install what is missing, build, show a lockout with real PAM
#   make test    format, lints, build, every test, docs
#   make fuzz    each fuzz target for longer than make test does
#   make package the .deb and the .rpm in target/package (docs/packaging.md)

SHELL := /bin/bash
CARGO ?= cargo

# Each target runs its steps in order, even under make -j.
.NOTPARALLEL:
.PHONY: all deps build demo test bench fuzz package clean

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
	scripts/setup-deps --audit
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace
	$(CARGO) test --workspace
	bench/run --short
	# As root: installs the .deb it builds, then removes it (tests/tests/package.rs).
	$(CARGO) test -p deadbolt-tests --test package -- --ignored --test-threads 1
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
	$(CARGO) build --release -p deadboltctl
	DEADBOLTCTL=$(CURDIR)/target/release/deadboltctl target/debug/welcome-demo --bench 200

# Each fuzz target FUZZ_SCALE times as long as in `make test` (docs/security.md).
FUZZ_SCALE ?= 50
# Then, when cargo-fuzz is installed, libFuzzer over the same corpora for
# FUZZ_SECONDS each; what it finds new goes to target/fuzz-corpus, never
# into the checked-in corpora.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := config state checker directory handoff welcome_template
fuzz:
	DEADBOLT_FUZZ_SCALE=$(FUZZ_SCALE) $(CARGO) test -p deadbolt-fuzz --test targets -- --nocapture
	if ! $(CARGO) fuzz --version >/dev/null 2>&1; then \
		echo "cargo-fuzz is not installed (cargo install cargo-fuzz): libFuzzer skipped"; \
	else for t in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz-corpus/$$t && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir fuzz/libfuzzer $$t \
			target/fuzz-corpus/$$t fuzz/corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done; fi

# One release build; cargo-deb and cargo-generate-rpm package it as built.
# The copyright file gets the common-password list's licence from where it
# is kept. lintian fails the build on any error or warning not overridden
# (packaging/deb/lintian-overrides says why for each).
PACKAGE_DIR := target/package
package: deps
	scripts/setup-deps --package
	$(CARGO) build --release -p pam_deadbolt -p pam_deadbolt_password -p deadboltctl -p deadbolt-ldap-sync -p deadbolt-pwcheck
	mkdir -p $(PACKAGE_DIR)
	{ cat packaging/deb/copyright; sed 's/^$$/./; s/^/ /' pwcheck/data/LICENSE-django; } \
		> $(PACKAGE_DIR)/copyright
	rm -f $(PACKAGE_DIR)/*.deb $(PACKAGE_DIR)/*.rpm
	$(CARGO) deb --no-build -p deadboltctl -o $(PACKAGE_DIR)/
	# cargo-deb strips what it packages; cargo-generate-rpm does not.
	mkdir -p $(PACKAGE_DIR)/stripped
	for f in libpam_deadbolt.so libpam_deadbolt_password.so deadboltctl deadbolt-syncd deadbolt-pwcheck; do \
		strip --strip-unneeded -o $(PACKAGE_DIR)/stripped/$$f target/release/$$f || exit 1; \
	done
	$(CARGO) generate-rpm -p cli -o $(PACKAGE_DIR)/
	lintian --fail-on error,warning $(PACKAGE_DIR)/*.deb
	ls -l $(PACKAGE_DIR)/*.deb $(PACKAGE_DIR)/*.rpm

clean:
	$(CARGO) clean
