# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/strata/target
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
BIN := $(CARGO_TARGET_DIR)/debug/strata
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/strata

.PHONY: run build release test lint unit compat bench venv clean

## Start a local endpoint (master, worker and gateway in one process) on 127.0.0.1:9000.
run: release
	$(RELEASE_BIN) local

build:
	cargo build --workspace

release:
	cargo build --release --bin strata

## Everything CI runs: lint, Rust unit and integration tests, the compat suite.
test: lint unit compat

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test --workspace

venv: $(VENV)/.installed

$(VENV)/.installed: compat-tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r compat-tests/requirements.txt
	touch $@

compat: build venv
	STRATA_BIN=$(BIN) $(PY) -m pytest -q -p no:cacheprovider compat-tests

## Throughput and gateway memory of 1 GiB through a three-process cluster.
bench: release venv
	STRATA_BIN=$(RELEASE_BIN) $(PY) compat-tests/bench.py

clean:
	cargo clean
	rm -rf $(VENV)
