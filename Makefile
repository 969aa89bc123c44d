SHELL := /bin/bash
# The entry points. `make run` starts a node with the embedded loopback config; `make test` is
# everything CI checks (and what .ci/run calls).
CARGO      ?= cargo
FUZZ_SECONDS ?= 10
SMOKE_FUZZ_SECONDS ?= 5
# Fuzz targets (each in fuzz/fuzz_targets/<name>.rs).
FUZZ_TARGETS := frame_decode dns_response caa_policy redirect_location acme_identifier openmpic_request
MAX_LINES  ?= 700

.PHONY: interop interop-venv deny deb deb-check deploy-check run test fmt-check clippy doc build unit bench-smoke fuzz-smoke fuzz stress bench line-cap

run:
	$(CARGO) run --locked -p mpic-node -- run

test: fmt-check clippy doc deny build unit interop bench-smoke fuzz-smoke line-cap deploy-check deb-check
	@echo "make test: all gates passed"

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets --all-features -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --workspace --all-features --no-deps

# The end-to-end tests run the real binaries: build them (and the example primary) first.
build:
	$(CARGO) build --locked --workspace --bins --examples --all-features

unit: build
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --workspace --all-features --no-fail-fast; \
	else \
		$(CARGO) test --locked --workspace --all-features --no-fail-fast; \
	fi

# Fuzz targets need cargo-fuzz; on a stable toolchain RUSTC_BOOTSTRAP lets it pass its -Z flags.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(SMOKE_FUZZ_SECONDS)

fuzz:
	@command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz --locked"; exit 1; }
	@for target in $(FUZZ_TARGETS); do \
		echo "fuzz: $$target for $(FUZZ_SECONDS)s"; \
		mkdir -p fuzz/corpus/$$target; \
		(cd fuzz && set -o pipefail && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none $$target corpus/$$target seeds/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 | grep -E "stat::number_of_executed_units|ERROR|panicked|SUMMARY" ; \
			exit $${PIPESTATUS[0]}) || exit 1; \
	done

stress: build
	$(CARGO) test --locked --workspace --all-features -- --ignored stress_

# A tiny load run through every path (QUIC to an in-process node, the real binary, the engine):
# mpic-bench exits non-zero on any failed check or a zero rate.
BENCH_SMOKE := --names 300 --count 150 --concurrency 8 --sans 2 --quiet --mix caa=40,dns-01=30,dns-change=10,http-01=20
bench-smoke: build
	target/debug/mpic-bench loopback $(BENCH_SMOKE)
	target/debug/mpic-bench loopback $(BENCH_SMOKE) --node-bin target/debug/mpic-node
	target/debug/mpic-bench loopback $(BENCH_SMOKE) --engine

# The standard sweep (release build): the highest rate whose p99 stays under 10 ms, and the
# Criterion benchmarks of signing.
bench:
	$(CARGO) build --locked --release -p mpic-bench -p mpic-node
	target/release/mpic-bench loopback --sweep --mix caa=70,dns-01=20,http-01=10 \
		--json target/bench-sweep.json --svg target/bench-sweep.svg
	$(CARGO) bench --locked -p mpic-protocol

# House rule: no source file over ~600 lines of non-test code (tests.rs files are exempt).
line-cap:
	@over=$$(git ls-files '*.rs' | grep -v '/tests\.rs$$' | xargs wc -l | awk '$$2 != "total" && $$1 > $(MAX_LINES) {print $$2 " (" $$1 " lines)"}'); \
	if [ -n "$$over" ]; then echo "files over $(MAX_LINES) lines:"; echo "$$over"; exit 1; fi

# The systemd unit: its hardening must keep `systemd-analyze security` exposure at or below 2.0
# (the threshold is on its 0-100 scale)
# (skipped where systemd-analyze is not installed).
deploy-check:
	@if command -v systemd-analyze >/dev/null 2>&1; then \
		set -o pipefail; systemd-analyze security --offline=yes --threshold=20 deploy/systemd/mpic-node.service | tail -1; \
	else echo "deploy-check: systemd-analyze not installed, skipped"; fi
	@if command -v promtool >/dev/null 2>&1; then \
		promtool check rules deploy/prometheus/alerts.yml; \
	else echo "deploy-check: promtool not installed, alert rules not checked"; fi

# The Debian package (release build): target/debian/mpic-node_<version>_<arch>.deb.
deb:
	$(CARGO) deb --locked -p mpic-node -o target/debian/

# The package's contents, conffiles, scripts and config, from the debug build `make build` made
# (quick; the same assets as `make deb`).
deb-check: build
	@command -v cargo-deb >/dev/null || { echo "cargo-deb missing: cargo install cargo-deb --locked"; exit 1; }
	rm -rf target/debian-check
	$(CARGO) deb -p mpic-node --no-build --profile dev --no-strip -o target/debian-check/ 2>&1 | grep -v "^warning: dev profile\|^ *To enable debug symbols" || true
	deploy/debian/check.sh target/debian-check/mpic-node_*.deb

# Licences, banned crates, duplicate versions and sources (deny.toml). Needs cargo-deny
# (`cargo install cargo-deny --locked`); advisories need GitHub and are not checked here.
# Licences, bans (duplicate versions are reported), sources; advisories too when the RustSec
# database can be fetched (this build network reaches crates.io only, so usually not).
deny:
	@command -v cargo-deny >/dev/null || { echo "cargo-deny missing: cargo install cargo-deny --locked"; exit 1; }
	$(CARGO) deny check licenses bans sources
	@if timeout 60 $(CARGO) deny fetch db >/dev/null 2>&1; then \
		$(CARGO) deny check advisories; \
	else echo "deny: RustSec advisory database unreachable, advisories not checked"; fi

# The real-server interop suite (tests/interop): Knot DNS and nginx on loopback, three nodes with
# the Open MPIC endpoint, open-mpic-core's models, checkers and coordinator. Skipped (with the
# missing tools named) where knotd/nginx are not installed; .ci/run installs them.
INTEROP_VENV := target/openmpic-venv
INTEROP_TOOLS := knotd keymgr kdig nginx openssl
OPEN_MPIC_CORE := open-mpic-core==6.5.0
interop-venv: $(INTEROP_VENV)/.installed

$(INTEROP_VENV)/.installed:
	python3 -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install --quiet --disable-pip-version-check $(OPEN_MPIC_CORE)
	touch $@

interop: build
	@missing=""; for tool in $(INTEROP_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then echo "interop: skipped, not installed:$$missing (apt-get install knot knot-dnsutils nginx-light libnginx-mod-stream)"; \
	else $(MAKE) --no-print-directory $(INTEROP_VENV)/.installed \
		&& cd tests/interop && timeout 600 ../../$(INTEROP_VENV)/bin/python run.py; fi
