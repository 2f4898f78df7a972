# refwarden — developer entry points. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug/refwarden

.PHONY: help build release test lint fmt crds demo deps e2e clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

deps: ## install what builds and tests need on Debian (docker-registry, rustfmt, clippy)
	./scripts/install-deps.sh

build: ## debug build of the refwarden binary
	$(CARGO) build --locked

release: ## optimised build
	$(CARGO) build --locked --release

test: deps ## the whole test suite (installs docker-registry first if missing)
	$(CARGO) test --locked --all-targets -- --test-threads=2
	$(CARGO) test --locked --doc

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

crds: ## regenerate crds/ from the Rust types
	$(CARGO) run --locked --quiet -- crds --output-dir crds

demo: deps ## start a local registry with a seeded image, probe it, stop it
	./scripts/demo.sh

e2e: ## end-to-end run on a k3d cluster (needs docker, k3d, kubectl, helm): e2e/run.sh
	./e2e/run.sh

clean:
	$(CARGO) clean
