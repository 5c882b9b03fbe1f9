# Switchboard: build the plugin component, run the host shim, test everything.
# `make test` is what CI runs on a clean machine; it installs what it needs.

CARGO      ?= cargo
TARGET     := wasm32-wasip2
COMPONENT  := target/$(TARGET)/release/switchboard_plugin.wasm
DATA       ?= data

.PHONY: all component target run test unit e2e lint fmt bench clean clients browser chromium

all: component
	$(CARGO) build -p switchboard-host-shim

# rustup adds the wasm target when it is missing (a fresh machine has only the host's).
target:
	@rustup target list --installed | grep -qx '$(TARGET)' || rustup target add $(TARGET)

component: target
	$(CARGO) build -p switchboard-plugin --target $(TARGET) --release
	# The tests' transform components (wit/transform/): target/$(TARGET)/release/switchboard_transform_hostile.wasm
	$(CARGO) build -p switchboard-transform-hostile --target $(TARGET) --release

# What users run and what `make bench` measures is built in the optimised
# `perf` profile (Cargo.toml); tests and CI keep the one dev profile and never
# build it. The first build of it takes a while (every dependency, optimised).
PERF       := --profile perf

run: component
	$(CARGO) run $(PERF) -p switchboard-host-shim --bin host-shim -- --data $(DATA) --manifest manifest.json

# One dev profile for everything: the native plugin tests, the shim's unit
# tests and the end-to-end tests share one build of the dependencies.
test: component
	# The process tests (tests/e2e/processes.rs) spawn the real binary.
	$(CARGO) build -p switchboard-host-shim --bin host-shim
	$(CARGO) test --workspace --no-fail-fast

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
	$(CARGO) clippy -p switchboard-transform-hostile --target $(TARGET) -- -D warnings

fmt:
	$(CARGO) fmt --all

# Issue 14's targets in one table (docs/PERFORMANCE.md). The end-to-end part
# runs the host-shim binary of the same profile as a separate process.
bench: component
	$(CARGO) build $(PERF) -p switchboard-host-shim --bin host-shim
	$(CARGO) bench $(PERF) -p switchboard-tests --bench webhooks

clean:
	$(CARGO) clean
