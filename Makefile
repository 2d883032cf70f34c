# vportd: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
RELEASE_BIN := target/release/vportd
# Debian packages the build, the tests and `make run` need.
DEB_PKGS := libdpdk-dev dpdk dpdk-dev librte-net-vhost23 librte-net-virtio23 libclang-dev clang pkg-config python3 \
            librte-net-pcap23 librte-net-null23 librte-net-ring23 librte-net-tap23 \
            iproute2 iputils-ping netcat-openbsd openvswitch-common openvswitch-switch python3-venv
RUN_SECONDS ?= 10
RUN_PREFIX := vportd-run-$(shell echo $$$$)
OUT := out

.PHONY: all deps build release run test unit conformance lint fmt bench bench-kernels fuzz fuzz-long soak clean osken

all: release

## deps: install the Debian packages that are missing (needs root, or sudo).
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release -p vportd

$(OUT)/flows1k.pcap: scripts/gen_traffic.py
	@mkdir -p $(OUT)
	python3 scripts/gen_traffic.py $@ --flows 1000 --rounds 16

## run: start vportd on virtual devices (no NIC, no hugepages) for ~10 s:
## net_pcap replaying 1000 UDP flows forever -> net_null, with live rates.
run: release $(OUT)/flows1k.pcap
	@echo "vportd: net_pcap0 (1000 UDP flows, infinite_rx) -> net_null0, $(RUN_SECONDS) s, Ctrl-C to stop early"
	@timeout --preserve-status -s INT $(RUN_SECONDS) $(RELEASE_BIN) \
	  --eal "-l 0-1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry --file-prefix=$(RUN_PREFIX) \
	         --vdev=net_pcap0,rx_pcap=$(CURDIR)/$(OUT)/flows1k.pcap,infinite_rx=1 --vdev=net_null0,no-rx=1" \
	  --port p1=net_pcap0 --port p2=net_null0 \
	  --flows examples/p2p.flows --pmd-cores 1 --ctl $(CURDIR)/$(OUT)/vportd-run.ctl --stats-interval 1; \
	  rc=$$?; rm -rf /var/run/dpdk/$(RUN_PREFIX); exit $$rc

## test: everything: unit and property tests, DPDK integration tests on
## virtual devices, and the OVS conformance corpus.
test: deps release
	@mkdir -p $(OUT)
	$(CARGO) test --workspace --release 2>&1 | tee $(OUT)/cargo-test.log; exit $${PIPESTATUS[0]}
	$(MAKE) --no-print-directory conformance

## conformance: the OVS-recorded cases (tests/conformance/public) through
## the shared harness when it is there (CI), else through our own runner
## (already part of `cargo test`).
conformance: release
	@if [ -x ../shared/conformance/check.sh ]; then \
	  ../shared/conformance/check.sh --unordered --vportd $(RELEASE_BIN) -j 2 $(CURDIR)/tests/conformance/public; \
	else echo "conformance: ../shared/conformance/check.sh not found; cargo test ran tests/conformance"; fi

## soak: the long forms of the hardening tests, each bounded in time:
## 30 s of rule churn under traffic (2,000 rule changes/s, every frame
## checked), then the hostile-input suite.
soak: release
	CHURN_SECONDS=30 $(CARGO) test --release -p vportd --test churn -- --nocapture
	$(CARGO) test --release -p vportd --test hostile

## fuzz-long: every fuzz target for 30 minutes (FUZZ_SECONDS=1800).
fuzz-long:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=1800

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench-kernels: criterion benchmarks of extract, EMC and dpcls, and of the executor.
bench-kernels:
	$(CARGO) bench -p vportd-benches
	$(CARGO) bench -p pmd --bench execute

## bench: vportd vs Open vSwitch 3.1 (OVS-DPDK) vs dpdk-testpmd on the peer
## harness's traffic and flow tables (../shared/peer), in one invocation:
## benches/compare.py (see its docstring). Options via BENCH_ARGS, e.g.
## make bench BENCH_ARGS="--quick --scenarios emc-1k,setup".
## benches/traffic.py (vportd vs testpmd only) still runs on its own.
## Then the PVP rows (vhost-user to a testpmd guest): benches/pvp.py,
## options via PVP_ARGS (e.g. PVP_ARGS="--quick --sizes 64").
BENCH_ARGS ?=
PVP_ARGS ?=
bench: release
	@command -v dpdk-testpmd >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get install -y -q dpdk-dev; }
	@mkdir -p $(OUT)
	python3 benches/compare.py --out $(OUT)/compare.json $(BENCH_ARGS)
	python3 benches/pvp.py --out $(OUT)/pvp.json $(PVP_ARGS)

clean:
	$(CARGO) clean
	rm -rf $(OUT)

## fuzz: the cargo-fuzz targets (flow key extraction, flow parser, conntrack, OpenFlow decoder), FUZZ_SECONDS
## each. cargo-fuzz needs a nightly toolchain: without one this says so and
## skips (the stable proptest "never panics" tests run in `make test`).
FUZZ_SECONDS ?= 60
fuzz:
	@if ! rustup run nightly rustc --version >/dev/null 2>&1; then \
	  echo "fuzz: skipped (no nightly toolchain; cargo-fuzz needs one)"; exit 0; fi; \
	command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz || { echo "fuzz: skipped (cargo-fuzz could not be installed)"; exit 0; }; \
	set -e; \
	(cd flowcache && cargo +nightly fuzz run extract -- -max_total_time=$(FUZZ_SECONDS)); \
	(cd flowcache && cargo +nightly fuzz run tnl_pop -- -max_total_time=$(FUZZ_SECONDS)); \
	(cd ofproto && cargo +nightly fuzz run parse_flows -- -max_total_time=$(FUZZ_SECONDS)); \
	(cd conntrack && cargo +nightly fuzz run ct_execute -- -max_total_time=$(FUZZ_SECONDS))
	(cd openflow && cargo +nightly fuzz run decode_messages -- -max_total_time=$(FUZZ_SECONDS))

## osken: os-ken for the OpenFlow controller test (vportd/tests/openflow_osken.rs
## runs it): a venv in out/venv-osken with osken-manager (os-ken 3.x; 4.x
## dropped it) and simple_switch_13.py taken from the os-ken 1.4.1 wheel
## (the last one that ships the apps) into out/venv-osken/apps/.
OSKEN_VENV := $(CURDIR)/$(OUT)/venv-osken
osken: $(OSKEN_VENV)/.ready
$(OSKEN_VENV)/.ready:
	python3 -m venv $(OSKEN_VENV)
	$(OSKEN_VENV)/bin/pip install -q 'os-ken>=3,<4'
	$(OSKEN_VENV)/bin/pip download -q --no-deps 'os-ken==1.4.1' -d $(OSKEN_VENV)/wheels
	mkdir -p $(OSKEN_VENV)/apps
	$(OSKEN_VENV)/bin/python -c "import glob, zipfile; \
	  z = zipfile.ZipFile(glob.glob('$(OSKEN_VENV)/wheels/os_ken-1.4.1-*.whl')[0]); \
	  open('$(OSKEN_VENV)/apps/simple_switch_13.py', 'wb').write(z.read('os_ken/app/simple_switch_13.py'))"
	touch $@
