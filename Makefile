# Thin wrapper around meson. `make demo` and `make test` are the quick start.
BUILD   ?= build
MESON   ?= meson
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian 12 packages: build tools, libraries, and the real parts the tests run.
PKGS := build-essential meson ninja-build pkg-config python3 \
	libev-dev libssl-dev libcurl4-openssl-dev libcjson-dev libhiredis-dev \
	haproxy pebble redis-server redis-sentinel wrk certbot openssl curl socat \
	clang libclang-rt-14-dev ca-certificates mandoc \
	libldns-dev knot knot-dnsutils unbound \
	python3-cryptography faketime

.PHONY: all deps build test unit demo bench clean test-haproxy-3.2 test-containers

# Extra CI legs: .ci/run runs `make test` and then each target listed here
# (each prints its own 'N passed, N failed' last line). Add one line per leg.
# A leg on a CI_LEGS_BESIDE line runs beside the others, from the start: it
# must share nothing with them but the CPU (test-containers: its own dockerd
# and networks; it mostly waits on builds and pebble).
CI_LEGS :=
CI_LEGS_BESIDE :=
# apt waits for another apt of the same run instead of failing on its lock
APT_OPTS := -o DPkg::Lock::Timeout=600

all: build

deps:
	@missing=$$(for p in $(PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get $(APT_OPTS) update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get $(APT_OPTS) install -y -q --no-install-recommends $$missing; \
	fi

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The full suite: unit, fuzz-corpus replay, integration. The last line counts
# every check of every test run. Three at once on two cores: the integration
# suites mostly wait (on pebble, renewals of 30-120 s certificates, timeouts).
TEST_JOBS ?= 3
test: deps build
	@$(MESON) test -C $(BUILD) --print-errorlogs --num-processes $(TEST_JOBS) >/dev/null 2>&1; \
	python3 tests/summary.py $(BUILD)/meson-logs/testlog.json

unit: build
	$(MESON) test -C $(BUILD) --suite unit --suite fuzz --print-errorlogs

demo: deps build
	HACME_BUILD=$(abspath $(BUILD)) python3 tests/lab/demo.py

bench: deps build
	bash tests/bench/run.sh $(BUILD)

# The integration suites on HAProxy 3.2 LTS (Debian sid, in a chroot made and
# cached by tests/lab/platforms.sh): a `haproxy` wrapper first on PATH
# switches every HAProxy the lab starts, master-worker reloads included.
# CI runs the suites whose subject is HAProxy itself (SPOE, runtime API,
# reloads, crt directories, renewal and hot-load, live checks): the whole
# integration suite took 13.5 min here on a loaded box, too much for CI's
# 15 minutes. `make test-haproxy-3.2 H32_TESTS=` runs every suite.
H32_TESTS ?= agent agent_lua agent_hostile issue run deploy crtdir checks
CI_LEGS += test-haproxy-3.2
test-haproxy-3.2: deps build
	@t0=$$(date +%s); \
	bin=$$(sh tests/lab/platforms.sh haproxy) || { echo "0 passed, 1 failed"; exit 1; }; \
	v=$$(PATH=$$bin:$$PATH haproxy -v | head -n 1); echo "$$v (chroot ready in $$(( $$(date +%s) - t0 ))s)"; \
	case "$$v" in *" version 3.2."*) ;; *) echo "not HAProxy 3.2"; echo "0 passed, 1 failed"; exit 1 ;; esac; \
	PATH=$$bin:$$PATH $(MESON) test -C $(BUILD) --suite integration $(H32_TESTS) --logbase haproxy-3.2 \
		--print-errorlogs --num-processes $(TEST_JOBS) >/dev/null 2>&1; \
	echo "integration on HAProxy 3.2: $$(( $$(date +%s) - t0 ))s"; \
	python3 tests/summary.py $(BUILD)/meson-logs/haproxy-3.2.json

# The compose stack of docker/ for real (Debian's docker engine on a private
# socket, images made from Debian's packages): see tests/containers/run.sh.
CI_LEGS_BESIDE += test-containers
test-containers:
	bash tests/containers/run.sh

clean:
	rm -rf $(BUILD)

# test_sandbox traces hacme run to prove hacme.service's SystemCallFilter
PKGS += strace

# A real Debian package (debhelper + meson) in $(BUILD)/deb/, built from a
# copy of the tree; lintian must pass (overrides in debian/*.lintian-overrides,
# each with its reason). The unit suite already ran in `make test`: nocheck.
DEB_PKGS := debhelper dpkg-dev fakeroot lintian systemd
DEB_BUILD_OPTIONS ?= nocheck noautodbgsym
VERSION := $(shell sed -n "s/^  version : '\(.*\)',/\1/p" meson.build)
deb: deps
	@missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get $(APT_OPTS) install -y -q --no-install-recommends $$missing; \
	fi
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/hacme-$(VERSION)
	tar --exclude-vcs --exclude='./build*' --exclude='./obj-*' --exclude='./$(BUILD)' -cf - . | \
		tar -C $(BUILD)/deb/hacme-$(VERSION) -xf -
	cd $(BUILD)/deb/hacme-$(VERSION) && DEB_BUILD_OPTIONS="$(DEB_BUILD_OPTIONS)" \
		dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 || { tail -40 ../build.log; exit 1; }
	lintian --fail-on warning,error $(BUILD)/deb/hacme_$(VERSION)_*.deb
	@ls $(BUILD)/deb/*.deb

# CI leg: make deb, dpkg -i it on this machine, check the installed files,
# the hacme user's permissions, and the migration from certbot as the README
# tells it (tests/deb/test_deb.py). Root only: it installs a package.
CI_LEGS += test-deb
.PHONY: deb test-deb
test-deb: deb
	python3 tests/deb/test_deb.py $(BUILD)/deb/hacme_$(VERSION)_amd64.deb

# The unit, fuzz-replay and every integration suite under ASan+UBSan with
# leak detection, in their own build dir (tests/sanitize.sh: SAN_SUITES, SAN_JOBS).
CI_LEGS += test-sanitize
.PHONY: test-sanitize fuzz
test-sanitize: deps
	@bash tests/sanitize.sh

# libFuzzer on every harness of tests/fuzz (clang, ASan+UBSan, build-fuzz/):
# FUZZ_TIME seconds each (60), FUZZ_RUNS, FUZZ_ONLY, FUZZ_JOBS (tests/fuzz/run.sh).
fuzz: deps
	@bash tests/fuzz/run.sh
