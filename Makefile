# PharosVPN in Swift: every target loops over the packages in dependency order.
# `make test` is the command CI runs (through .ci/run).
SHELL := /bin/bash
PACKAGES := protocol-spec relay node coxswain caravel-core caravel-cli
# One build tree for every package: the dependencies they share (BoringSSL, swift-nio, gRPC)
# compile once instead of once per package (make test: ~10 instead of ~25 minutes on 2 cores).
# Each package still builds and tests alone in its own .build/ (`cd node && swift test`).
SCRATCH := $(CURDIR)/.build-shared
SWIFT_BUILD := swift build --scratch-path $(SCRATCH)
# Debian packages the build and the tests need.
APT_PACKAGES := libsodium-dev libargon2-dev libsqlite3-dev libsystemd-dev libssl-dev libqrencode-dev \
                protobuf-compiler pkg-config openssl zbar-tools python3 curl \
                wireguard-go wireguard-tools iproute2 iputils-ping procps iptables \
                dpkg-dev binutils faketime python3-grpcio python3-protobuf libprotobuf-dev libmaxminddb-dev \
                openssh-client openssh-server postgresql-15
PLUGIN_DIR := protocol-spec/Tools/protoc-plugins

.PHONY: help deps build test test-postgres proto proto-plugins proto-check bench clean fleet-binaries e2e e2e-lifecycle demo demo-down deb deb-test ui-test

help:
	@echo "make deps         install the Debian packages the build needs (apt-get, as root or via sudo)"
	@echo "make build        swift build in every package"
	@echo "make test         build and test every package in dependency order; stops at the first failure"
	@echo "make test-postgres  the controller's test suite again with its store on PostgreSQL 15 (a cluster the tests start; root)"
	@echo "make proto        regenerate protocol-spec's Swift code from its .proto files"
	@echo "make proto-check  fail when the committed generated code is stale"
	@echo "make bench        print benchmark figures as JSON lines (release builds; the node's needs root + wireguard-go)"
	@echo "make e2e          the whole fleet in network namespaces, every step asserted (root)"
	@echo "make e2e-lifecycle  the fleet through 400 days of certificate renewal under libfaketime (root)"
	@echo "make ui-test      the admin web UI in headless chromium against cox serve and a node; screenshots in test-artifacts/ui"
	@echo "make demo         bring the fleet up with a connected client and leave it running (root); make demo-down removes it"
	@echo "make deb          one Debian package per component in dist/ (release builds, static Swift runtime)"
	@echo "make deb-test     install dist/*.deb with dpkg -i, check, remove and purge them; then run the units under"
	@echo "                  systemd in a booted Debian container (root; CI runs it)"
	@echo "make clean        remove every package's build folder"

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "==> installing Debian packages:$$missing"; \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
		case " $$missing " in *" openssh-server "*) \
			echo "==> the tests run their own sshd: disabling the ssh.service openssh-server just enabled"; \
			[ ! -d /run/systemd/system ] || $$sudo systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true ;; esac; \
		case " $$missing " in *" postgresql-15 "*) \
			echo "==> the tests start their own PostgreSQL cluster: disabling the postgresql.service just enabled"; \
			[ ! -d /run/systemd/system ] || $$sudo systemctl disable --now postgresql.service >/dev/null 2>&1 || true ;; esac; \
	fi

build: deps
	@set -e; for p in $(PACKAGES); do echo "==> $$p: swift build"; (cd $$p && $(SWIFT_BUILD)); done

test: deps
	@passed=0; total_start=$$(date +%s); \
	for p in $(PACKAGES); do \
		start=$$(date +%s); echo "==> $$p: build and test"; \
		if ! (cd $$p && $(SWIFT_BUILD) --build-tests && swift test --skip-build --scratch-path $(SCRATCH)); then \
			echo "==> FAILED: $$p (after $$(( $$(date +%s) - start )) s); packages after it were not tested"; \
			echo "packages: $$passed passed, 1 failed"; exit 1; \
		fi; \
		passed=$$((passed + 1)); echo "==> $$p passed in $$(( $$(date +%s) - start )) s"; \
	done; \
	echo "==> all packages passed in $$(( $$(date +%s) - total_start )) s"; \
	echo "packages: $$passed passed, 0 failed"

# The controller's suite with every TestState store in a database of a PostgreSQL 15 cluster the
# tests start themselves (initdb as postgres, a free loopback port, SCRAM logins).
test-postgres: deps
	@start=$$(date +%s); cd coxswain && $(SWIFT_BUILD) --build-tests && \
		PHAROS_TEST_STORE=postgres swift test --skip-build --scratch-path $(SCRATCH) --filter CoxswainTests && \
		echo "==> coxswain on PostgreSQL passed in $$(( $$(date +%s) - start )) s"

proto-plugins:
	cd $(PLUGIN_DIR) && swift build -c release --product protoc-gen-swift && \
		swift build -c release --product protoc-gen-grpc-swift-2

proto: deps proto-plugins
	protocol-spec/Tools/generate-protos.sh

proto-check: deps proto-plugins
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	protocol-spec/Tools/generate-protos.sh "$$tmp" >/dev/null; \
	if diff -r "$$tmp" protocol-spec/Sources/PharosProto/Generated >/dev/null; then \
		echo "==> generated protobuf/gRPC code is up to date"; \
	else \
		diff -r "$$tmp" protocol-spec/Sources/PharosProto/Generated | head -40; \
		echo "==> protocol-spec/Sources/PharosProto/Generated is stale: run 'make proto' and commit"; exit 1; \
	fi

bench: deps
	@command -v nginx >/dev/null || { sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq nginx-light >/dev/null; }
	cd protocol-spec && $(SWIFT_BUILD) -c release --product pharos-spec-bench && $(SCRATCH)/release/pharos-spec-bench
	cd node && $(SWIFT_BUILD) -c release --product node-bench && $(SCRATCH)/release/node-bench
	cd coxswain && $(SWIFT_BUILD) -c release --product cox-bench && \
		$(SCRATCH)/release/cox-bench --nodes 100 --node-bench $(SCRATCH)/release/node-bench && \
		Scripts/with-postgres.sh $(SCRATCH)/release/cox-bench --nodes 100 --store postgres --node-bench $(SCRATCH)/release/node-bench && \
		$(SCRATCH)/release/cox-bench --nodes 1000 --node-bench $(SCRATCH)/release/node-bench && \
		$(SWIFT_BUILD) -c release --product cox-api-bench && $(SCRATCH)/release/cox-api-bench
	cd relay && $(SWIFT_BUILD) -c release --product relay && $(SWIFT_BUILD) -c release --product relay-bench && \
		$(SCRATCH)/release/relay-bench
	cd caravel-cli && $(SWIFT_BUILD) -c release --product caravel && $(SWIFT_BUILD) -c release --product caravel-bench && \
		$(SCRATCH)/release/caravel-bench
	@# Cascades (#21): 1, 2 and 3 hops through real agents in network namespaces (root, iperf3).
	@if [ "$$(id -u)" -ne 0 ]; then echo "cascade bench skipped: it needs root (network namespaces)"; else \
		command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; \
		(cd node && $(SWIFT_BUILD) -c release --product node) && (cd coxswain && $(SWIFT_BUILD) -c release --product cox) && \
		PHAROS_COX_BINARY=$(SCRATCH)/release/cox PHAROS_NODE_BINARY=$(SCRATCH)/release/node \
		PHAROS_RELAY_BINARY=$(SCRATCH)/release/relay PHAROS_CARAVEL_BINARY=$(SCRATCH)/release/caravel bash e2e/fleet.sh bench; fi

# The whole fleet in network namespaces (root). e2e asserts every step and removes
# everything; demo leaves it running (demo-down removes it).
FLEET_BINARIES := relay node coxswain caravel-cli

FLEET_ENV := PHAROS_COX_BINARY=$(SCRATCH)/debug/cox PHAROS_NODE_BINARY=$(SCRATCH)/debug/node \
             PHAROS_RELAY_BINARY=$(SCRATCH)/debug/relay PHAROS_CARAVEL_BINARY=$(SCRATCH)/debug/caravel

fleet-binaries: deps
	@set -e; for p in $(FLEET_BINARIES); do echo "==> $$p: swift build"; (cd $$p && $(SWIFT_BUILD) 2>&1 | tail -1); done

e2e: fleet-binaries
	$(FLEET_ENV) bash e2e/fleet.sh e2e

# 400 days of certificate renewal (node, device, controller, remote and embedded relay) under libfaketime.
e2e-lifecycle: fleet-binaries
	$(FLEET_ENV) bash e2e/lifecycle.sh

demo: fleet-binaries
	$(FLEET_ENV) bash e2e/fleet.sh up

demo-down:
	bash e2e/fleet.sh down

# The admin web UI in a real headless browser (Debian's chromium + chromedriver, driven by
# python3-selenium) against a real cox serve and node; screenshots in test-artifacts/ui.
UI_APT_PACKAGES := chromium chromium-driver python3-selenium
ui-test: deps
	@missing=""; for p in $(UI_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "==> installing:$$missing"; sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; fi
	@set -e; for p in node coxswain; do (cd $$p && $(SWIFT_BUILD) 2>&1 | tail -1); done
	/usr/bin/python3 coxswain/Tests/UI/admin_ui.py --cox $(SCRATCH)/debug/cox --node $(SCRATCH)/debug/node --out test-artifacts/ui

# Release builds of cox, node, relay and caravel (static Swift runtime) in the shared tree,
# then one .deb per component in dist/ (packaging/build-debs.sh says how).
deb: deps
	SCRATCH=$(SCRATCH) bash packaging/build-debs.sh

deb-test:
	bash packaging/test-debs.sh
	bash packaging/test-units.sh

clean:
	@for p in $(PACKAGES) packaging; do rm -rf $$p/.build; done; rm -rf $(PLUGIN_DIR)/.build $(SCRATCH) dist
