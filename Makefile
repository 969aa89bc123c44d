SHELL := /bin/bash
# The entry points: `make run` starts a node with the embedded loopback config; `make test` is
# everything CI checks (`.ci/run` is nothing but `make test`); `make help` lists every target.
CARGO      ?= cargo
FUZZ_SECONDS ?= 10
SMOKE_FUZZ_SECONDS ?= 5
# Fuzz targets (each in fuzz/fuzz_targets/<name>.rs).
FUZZ_TARGETS := frame_decode dns_response caa_policy redirect_location acme_identifier openmpic_request config_toml dnssec_denial
MAX_LINES  ?= 700
# `cargo install` puts the pinned tools (tools/setup) here: first on PATH for every recipe.
CARGO_BIN  := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export PATH := $(CARGO_BIN):$(PATH)

.PHONY: help tools demo interop deny deb deb-check deploy-check run test fmt-check clippy doc build unit bench-smoke fuzz-smoke fuzz stress bench line-cap fuzz-deep soak
.PHONY: bench-peer

help: ## this list
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/\1\t\2/' | expand -t 16

tools: ## install what the gates need and the machine lacks (pinned cargo tools, Debian packages, the interop venv); idempotent
	tools/setup

run: ## start a node on loopback with the embedded development config
	$(CARGO) run --locked -p mpic-node -- run

test: tools fmt-check clippy doc deny build demo unit interop bench-smoke fuzz-smoke line-cap deploy-check deb-check ## every gate CI runs (installs missing tools first)
	@echo "make test: all gates passed"

fmt-check: ## cargo fmt --check
	$(CARGO) fmt --all -- --check

clippy: ## clippy on every target with warnings denied
	$(CARGO) clippy --locked --workspace --all-targets --all-features -- -D warnings

doc: ## rustdoc with warnings denied
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --workspace --all-features --no-deps

# A whole validation on loopback, no Internet: fixture DNS and HTTP servers, five real nodes (one
# per RIR), a primary over QUIC; prints the verified results and the quorum verdicts, exits
# non-zero when a verdict is not the one the README shows.
demo: build ## a signed pass and a signed fail through five nodes and the quorum rule, on loopback
	target/debug/examples/demo

# The end-to-end tests run the real binaries: build them (mpic-node, mpic-primary, mpic-bench:
# every workspace binary) and the example primary first.
build: ## the binaries and examples the end-to-end tests run
	$(CARGO) build --locked --workspace --bins --examples --all-features

unit: build ## unit and end-to-end tests (nextest when installed)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --workspace --all-features --no-fail-fast; \
	else \
		$(CARGO) test --locked --workspace --all-features --no-fail-fast; \
	fi

# Fuzz targets need cargo-fuzz; on a stable toolchain RUSTC_BOOTSTRAP lets it pass its -Z flags.
fuzz-smoke: tools ## each fuzz target for SMOKE_FUZZ_SECONDS over the committed seeds
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(SMOKE_FUZZ_SECONDS)

fuzz: tools ## each fuzz target for FUZZ_SECONDS
	@for target in $(FUZZ_TARGETS); do \
		echo "fuzz: $$target for $(FUZZ_SECONDS)s"; \
		mkdir -p fuzz/corpus/$$target; \
		(cd fuzz && set -o pipefail && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none $$target corpus/$$target seeds/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 | grep -E "stat::number_of_executed_units|ERROR|panicked|SUMMARY" ; \
			exit $${PIPESTATUS[0]}) || exit 1; \
	done

# Deep fuzzing (fuzz/deep.sh): each target until FUZZ_DEEP_RUNS executions and its coverage
# stopped growing (FUZZ_DEEP_SECONDS at most per target), one process; then cmin and the grown
# corpus copied into fuzz/seeds (commit them). FUZZ_DEEP_TARGETS picks a few.
FUZZ_DEEP_RUNS    ?= 10000000
FUZZ_DEEP_SECONDS ?= 3600
FUZZ_DEEP_TARGETS ?= $(FUZZ_TARGETS)
fuzz-deep: tools ## each fuzz target to FUZZ_DEEP_RUNS executions (or until coverage stops growing), then cmin into fuzz/seeds
	FUZZ_DEEP_RUNS=$(FUZZ_DEEP_RUNS) FUZZ_DEEP_SECONDS=$(FUZZ_DEEP_SECONDS) fuzz/deep.sh $(FUZZ_DEEP_TARGETS)

# The soak (mpic-bench soak): the real binary for SOAK_MINUTES with faults, at half the best
# rate a 40 s closed-loop calibration finds (SOAK_ARGS="--rate N" for a fixed rate);
# as root the audit log's disk is filled for a window (a 1 MiB tmpfs under target/soak).
# Writes target/soak/soak.json and soak.svg; fails on growth, p99 drift or any lost result.
SOAK_MINUTES ?= 30
SOAK_ARGS    ?=
soak: build ## the real node under load with faults for SOAK_MINUTES (default 30); JSON + SVG in target/soak
	rm -rf target/soak/node && mkdir -p target/soak/node
	target/debug/mpic-bench soak --node-bin target/debug/mpic-node --minutes $(SOAK_MINUTES) \
		--work-dir target/soak/node --json target/soak/soak.json --svg target/soak/soak.svg \
		$(if $(filter 0,$(shell id -u)),--audit-tmpfs) $(SOAK_ARGS)

stress: build ## the ignored stress_* tests
	$(CARGO) test --locked --workspace --all-features -- --ignored stress_

# A tiny load run through every path (QUIC to an in-process node, the real binary, the engine):
# mpic-bench exits non-zero on any failed check or a zero rate.
BENCH_SMOKE := --names 300 --count 150 --concurrency 8 --sans 2 --quiet --mix caa=40,dns-01=30,dns-change=10,http-01=20,tls-alpn-01=20
bench-smoke: build ## a tiny load through every path of mpic-bench
	target/debug/mpic-bench loopback $(BENCH_SMOKE)
	target/debug/mpic-bench loopback $(BENCH_SMOKE) --node-bin target/debug/mpic-node
	target/debug/mpic-bench loopback $(BENCH_SMOKE) --engine
	target/debug/mpic-bench peer --seconds 2 --warmup 1 --names 300 --concurrency 8 --quiet --node-bin target/debug/mpic-node

# The standard runs (release build), each figure of the performance table as JSON in
# target/bench: the engine and the real binary over QUIC (CAA, 200k names, closed loop), memory per
# in-flight validation (10,000 in flight), the open-loop sweep (highest rate with p99 under 10 ms,
# then half of it; target/bench/sweep.svg), DNSSEC validated/unvalidated for both algorithms; then
# the table (`mpic-bench summary`, target/bench/summary.md) and the Criterion benchmarks.
BENCH_DIR := target/bench
BENCH_BIN := target/release/mpic-bench
BENCH_NODE := --node-bin target/release/mpic-node
bench: ## every figure of the performance table as JSON in target/bench, the sweep SVG, the table, Criterion (release build)
	$(CARGO) build --locked --release -p mpic-bench -p mpic-node
	mkdir -p $(BENCH_DIR)
	$(BENCH_BIN) loopback --engine --names 200000 --seconds 10 --quiet --json $(BENCH_DIR)/engine-caa.json
	$(BENCH_BIN) loopback $(BENCH_NODE) --names 200000 --seconds 10 --quiet --json $(BENCH_DIR)/quic-caa.json
	$(BENCH_BIN) loopback $(BENCH_NODE) --memory 10000 --sans 100 --quiet --json $(BENCH_DIR)/memory.json
	$(BENCH_BIN) loopback $(BENCH_NODE) --sweep --quiet --json $(BENCH_DIR)/sweep.json --svg $(BENCH_DIR)/sweep.svg
	$(BENCH_BIN) dnssec --algorithm ECDSAP256SHA256 --json $(BENCH_DIR)/dnssec-p256.json
	$(BENCH_BIN) dnssec --algorithm ED25519 --json $(BENCH_DIR)/dnssec-ed25519.json
	$(BENCH_BIN) summary $(BENCH_DIR) | tee $(BENCH_DIR)/summary.md
	$(CARGO) bench --locked -p mpic-protocol

# Open MPIC's own checkers (open-mpic-core in the interop virtualenv, uvloop), this node's engine
# and its binary over QUIC, side by side against one Knot DNS and one nginx on loopback: one
# table per check kind (checks/s, CPU µs per check, p50/p99, wrong answers, CPU ratio).
bench-peer: tools ## Open MPIC's checkers beside our engine and binary, one Knot + nginx (release build)
	nice -n 10 $(CARGO) build --locked --release -p mpic-bench -p mpic-node
	mkdir -p target/bench
	target/release/mpic-bench peer --node-bin target/release/mpic-node --json target/bench/peer.json

# House rule: no source file over ~600 lines of non-test code (tests.rs files are exempt).
line-cap: ## no source file over MAX_LINES lines (tests.rs exempt)
	@over=$$(git ls-files '*.rs' | grep -v '/tests\.rs$$' | xargs wc -l | awk '$$2 != "total" && $$1 > $(MAX_LINES) {print $$2 " (" $$1 " lines)"}'); \
	if [ -n "$$over" ]; then echo "files over $(MAX_LINES) lines:"; echo "$$over"; exit 1; fi

# The systemd unit: its hardening must keep `systemd-analyze security` exposure at or below 2.0
# (the threshold is on its 0-100 scale); the alerting rules must load in promtool.
deploy-check: tools ## systemd unit hardening and Prometheus alert rules
	set -o pipefail; systemd-analyze security --offline=yes --threshold=20 deploy/systemd/mpic-node.service | tail -1
	promtool check rules deploy/prometheus/alerts.yml

# The Debian package (release build): target/debian/mpic-node_<version>_<arch>.deb.
deb: ## the Debian package (release build)
	$(CARGO) deb --locked -p mpic-node -o target/debian/

# The package's contents, conffiles, scripts and config, from the debug build `make build` made
# (quick; the same assets as `make deb`).
deb-check: tools build ## the package's contents, conffiles and scripts (debug build)
	rm -rf target/debian-check
	$(CARGO) deb -p mpic-node --no-build --profile dev --no-strip -o target/debian-check/ 2>&1 | grep -v "^warning: dev profile\|^ *To enable debug symbols" || true
	deploy/debian/check.sh target/debian-check/mpic-node_*.deb

# Licences, bans (duplicate versions are reported), sources (deny.toml); advisories too when the
# RustSec database can be fetched (this build network reaches crates.io only, so usually not).
deny: tools ## licences, bans, sources (and advisories when reachable) with cargo-deny
	$(CARGO) deny check licenses bans sources
	@if timeout 60 $(CARGO) deny fetch db >/dev/null 2>&1; then \
		$(CARGO) deny check advisories; \
	else echo "deny: RustSec advisory database unreachable, advisories not checked"; fi

# The real-server interop suite (tests/interop): Knot DNS and nginx on loopback, three nodes with
# the Open MPIC endpoint, open-mpic-core's models, checkers and coordinator (the virtualenv and
# the servers come from tools/setup).
interop: tools build ## the real-server suite: Knot DNS, nginx, open-mpic-core against our nodes
	cd tests/interop && timeout 600 ../../target/openmpic-venv/bin/python run.py
