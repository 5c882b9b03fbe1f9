# Switchboard: build the plugin component, run the host shim, test everything.
# `make test` is what CI runs on a clean machine; it installs what it needs.

CARGO      ?= cargo
TARGET     := wasm32-wasip2
COMPONENT  := target/$(TARGET)/release/switchboard_plugin.wasm
DATA       ?= data

.PHONY: all component target run test unit e2e lint fmt bench clean clients browser chromium dist postgres e2e-postgres

all: component
	$(CARGO) build -p switchboard-host-shim

# rustup adds the wasm target when it is missing (a fresh machine has only the host's).
target:
	@rustup target list --installed | grep -qx '$(TARGET)' || rustup target add $(TARGET)

component: target
	$(CARGO) build -p switchboard-plugin --target $(TARGET) --release
	# The transform components (wit/transform/): the tests' hostile one and the example
	# (examples/transforms/): target/$(TARGET)/release/switchboard_transform_hostile.wasm
	# and uptime_kuma_transform.wasm, in the one target/ the workspace shares.
	$(CARGO) build -p switchboard-transform-hostile -p uptime-kuma-transform --target $(TARGET) --release

# What users run and what `make bench` measures is built in the optimised
# `perf` profile (Cargo.toml); tests and CI keep the one dev profile and never
# build it. The first build of it takes a while (every dependency, optimised).
PERF       := --profile perf

run: component
	$(CARGO) run $(PERF) -p switchboard-host-shim --bin host-shim -- --data $(DATA) --manifest manifest.json

# The release (docs/OPERATIONS.md): dist/switchboard-<version>-linux-x86_64.tar.gz
# unpacks into one `switchboard/` folder: bin/host-shim (the `perf` build, its
# symbols stripped here rather than by a second optimised build in another
# profile), the component, a manifest naming it relative to itself, the
# default config, README, LICENSE and everything in packaging/.
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DIST_NAME  := switchboard-$(VERSION)-linux-x86_64
DIST_TREE  := dist/$(DIST_NAME)/switchboard

dist: component
	$(CARGO) build $(PERF) -p switchboard-host-shim --bin host-shim
	rm -rf dist/$(DIST_NAME) dist/$(DIST_NAME).tar.gz
	mkdir -p $(DIST_TREE)/bin $(DIST_TREE)/plugin $(DIST_TREE)/config $(DIST_TREE)/packaging
	strip -o $(DIST_TREE)/bin/host-shim target/perf/host-shim
	cp $(COMPONENT) $(DIST_TREE)/plugin/switchboard_plugin.wasm
	sed 's|"component": *"[^"]*"|"component": "plugin/switchboard_plugin.wasm"|' manifest.json > $(DIST_TREE)/manifest.json
	grep -q '"component": "plugin/switchboard_plugin.wasm"' $(DIST_TREE)/manifest.json
	$(DIST_TREE)/bin/host-shim --default-config > $(DIST_TREE)/config/config.json
	cp README.md LICENSE $(DIST_TREE)/
	cp -R packaging/. $(DIST_TREE)/packaging/
	$(DIST_TREE)/bin/host-shim --version
	tar -C dist/$(DIST_NAME) --owner=0 --group=0 -czf dist/$(DIST_NAME).tar.gz switchboard
	rm -rf dist/$(DIST_NAME)
	@echo "built dist/$(DIST_NAME).tar.gz"

# One dev profile for everything: the native plugin tests, the shim's unit
# tests and the end-to-end tests share one build of the dependencies.
# Everything runs under one throwaway PostgreSQL server
# (tests/postgres/with-postgres), stopped and removed when the runs end: the
# whole workspace once (the store's suite runs on both backends by itself),
# then the end-to-end suite again with every shim on PostgreSQL
# (SWITCHBOARD_DB=postgres). Both runs go on when a test fails and the
# target fails if either did; `--workspace` in the second keeps the feature
# set, so it reuses the first run's binary.
E2E_POSTGRES := SWITCHBOARD_DB=postgres $(CARGO) test --workspace --test e2e --no-fail-fast

test: component postgres
	# The process tests (tests/e2e/processes.rs) spawn the real binary.
	$(CARGO) build -p switchboard-host-shim --bin host-shim
	tests/postgres/with-postgres sh -c '$(CARGO) test --workspace --no-fail-fast; all=$$?; \
		$(E2E_POSTGRES); e2e=$$?; [ $$all = 0 ] && [ $$e2e = 0 ]'

# The end-to-end suite on PostgreSQL alone (`make test` runs it too).
e2e-postgres: component postgres
	$(CARGO) build -p switchboard-host-shim --bin host-shim
	tests/postgres/with-postgres $(E2E_POSTGRES)

# The tests' PostgreSQL server comes from Debian's packages; `postgres`
# installs them when no initdb is found (sudo only when not root).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	fi

# Published clients (slack_sdk, slack_bolt, mattermostdriver, @mattermost/client)
# at pinned versions, installed under target/clients, against the real
# host-shim binary: see tests/clients/run.sh.
clients: all
	bash tests/clients/run.sh

# The browser tests (tests/browser) drive Debian's headless Chromium over
# WebDriver; `chromium` installs it (and an emoji font for its pictures) when
# it is missing (sudo only when not root).
chromium:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver fonts-noto-color-emoji; \
	fi

browser: component chromium
	$(CARGO) test -p switchboard-tests --test browser -- --test-threads=1

lint: target
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	# The browser tests are `test = false` (they need Chromium), so --all-targets skips them.
	$(CARGO) clippy -p switchboard-tests --test browser -- -D warnings
	$(CARGO) clippy -p switchboard-plugin --target $(TARGET) -- -D warnings
	$(CARGO) clippy -p switchboard-transform-hostile -p uptime-kuma-transform --target $(TARGET) -- -D warnings

fmt:
	$(CARGO) fmt --all

# Issue 14's targets in one table (docs/PERFORMANCE.md). The end-to-end part
# runs the host-shim binary of the same profile as a separate process.
bench: component
	$(CARGO) build $(PERF) -p switchboard-host-shim --bin host-shim
	$(CARGO) bench $(PERF) -p switchboard-tests --bench webhooks

clean:
	$(CARGO) clean
