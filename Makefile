# Thin targets: each is one or two commands; the logic lives in scripts/ and the crates.
SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: setup build image test lint e2e repro bench fuzz clean

## setup: install every system package and tool the build and the tests need (idempotent)
setup:
	./scripts/setup.sh

## build: build the nodeimg CLI (release)
build:
	$(CARGO) build --release --locked

## image: set-up + build the CLI + the default image (see README for what this does today)
image: setup build
	./scripts/image.sh

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## test: set-up, lint, and the whole test suite (unit, cross-tool oracles, end-to-end): two tests
## at a time with cargo-nextest (.config/nextest.toml), then the doctests (nextest runs none)
test: setup lint
	$(CARGO) nextest run --workspace --locked
	$(CARGO) test --workspace --locked --doc

## e2e: build the test image, boot it under QEMU + OVMF + swtpm, check its measurements (5-9 min)
e2e: setup
	$(CARGO) test --locked --test image_e2e

## repro: build twice with separate caches and tools trees and compare (nodeimg repro; ~10 min)
repro: setup build
	./scripts/repro.sh

## bench: nodeimg against its peer tools, side by side (medians and ratios)
bench: setup build
	./scripts/bench.sh

## fuzz: run each fuzz target for a bounded time (FUZZ_SECONDS, default 60)
fuzz:
	./scripts/fuzz.sh

## clean: remove build outputs (keeps tools/)
clean:
	$(CARGO) clean
	rm -rf out
