# refwarden — developer entry points. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug/refwarden

.PHONY: help build release test lint fmt crds demo deps e2e clean image print-image helm-lint fuzz

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

deps: ## install what builds and tests need on Debian (docker-registry, rustfmt, clippy)
	./scripts/install-deps.sh

build: ## debug build of the refwarden binary
	$(CARGO) build --locked

release: ## optimised build
	$(CARGO) build --locked --release

test: deps ## the whole test suite (installs docker-registry first if missing)
	python3 -m unittest discover -s e2e/emulator -t e2e/emulator   # the Kubernetes API emulator's own self-test
	$(CARGO) test --locked --lib --bins --tests -- --test-threads=2
	$(CARGO) test --locked --benches --no-run   # the benchmark must build; it runs with `make bench`
	$(CARGO) test --locked --doc

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

crds: ## regenerate crds/ from the Rust types (and the chart's and kustomize's copies)
	$(CARGO) run --locked --quiet -- crds --output-dir crds
	cp crds/*.yaml charts/refwarden/crds/
	cp crds/*.yaml config/crd/bases/
	cp crds/*.yaml charts/refwarden-crds/files/

demo: ## local registry + 3 images (complete / signature only / nothing): probe, discover, evaluate; stops it
	./scripts/demo.sh

e2e: ## end-to-end run on a k3d cluster (needs docker, k3d, kubectl, helm): e2e/run.sh
	./e2e/run.sh

# The chart's default image (image.repository + the chart's appVersion; tests/helm_chart.rs checks
# they agree), so a build loaded into kind/k3d runs with default values.
IMAGE_REPOSITORY ?= ghcr.io/refwarden/refwarden
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*$$/\1/p' charts/refwarden/Chart.yaml)
IMAGE ?= $(IMAGE_REPOSITORY):$(IMAGE_TAG)
print-image: ## the image name `make image` builds (used by e2e/run.sh)
	@echo $(IMAGE)

image: ## build the controller image, tagged as the chart's default (IMAGE=…); then: kind load docker-image / k3d image import
	@command -v docker >/dev/null 2>&1 || { echo "docker is not installed: make image needs a container engine" >&2; exit 1; }
	docker build -t $(IMAGE) .

HELM ?= $$([ -x .tools/bin/helm ] && echo .tools/bin/helm || echo helm)
helm-lint: deps ## helm lint + render both charts, dashboard and values checks (also part of make test)
	$(HELM) lint --strict charts/refwarden
	$(HELM) lint --strict charts/refwarden -f tests/fixtures/helm/full-values.yaml
	$(HELM) lint --strict charts/refwarden-crds
	$(HELM) template refwarden charts/refwarden -n refwarden -f tests/fixtures/helm/full-values.yaml >/dev/null
	$(HELM) template refwarden-crds charts/refwarden-crds >/dev/null
	$(CARGO) test --locked --test helm_chart --test manifests_offline --test argocd_health --test chart_dashboard

clean:
	$(CARGO) clean

FUZZ_SECONDS ?= 30
FUZZ_TARGETS := reference www_authenticate link docker_config ecr_policy oci_json
# Unoptimised, no sanitizer (the parsers are safe Rust), coverage instrumentation
# kept: the whole dependency tree builds in ~6 min on 2 cores, where the default
# release + ASan build ran past 20 min. See fuzz/README.md.
FUZZ_FLAGS := --dev -s none
.PHONY: fuzz-check fuzz-build
fuzz-check:
	@$(CARGO) +nightly --version >/dev/null 2>&1 || { echo "make fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	@$(CARGO) +nightly fuzz --version >/dev/null 2>&1 || { echo "cargo-fuzz is not installed: cargo +nightly install cargo-fuzz --locked  (about 1 min)" >&2; exit 1; }

fuzz-build: fuzz-check ## build every cargo-fuzz target (first build ~6 min on 2 cores)
	cd fuzz && nice -n 10 $(CARGO) +nightly fuzz build $(FUZZ_FLAGS)

fuzz: fuzz-build ## run each cargo-fuzz target for FUZZ_SECONDS (default 30), seeded from fuzz/seeds/ and fuzz/regressions/
	@cd fuzz && failed=""; for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t; \
		echo "== fuzz $$t: $(FUZZ_SECONDS) s"; \
		$(CARGO) +nightly fuzz run $(FUZZ_FLAGS) $$t corpus/$$t seeds/$$t $$([ -d regressions/$$t ] && echo regressions/$$t) \
			-- -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed in:$$failed (a crash or timeout leaves its input in fuzz/artifacts/<target>/)" >&2; exit 1; fi

.PHONY: bench
bench: ## release-build benchmark at cluster scale (needs docker-registry); prints a table, writes docs/benchmarks.md
	$(CARGO) bench --locked --bench scale
