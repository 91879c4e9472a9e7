# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/strata/target
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
BIN := $(CARGO_TARGET_DIR)/debug/strata
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/strata

# What the tests build with: the etcd metadata store (its client needs protoc) and HDFS under stores.
FEATURES := --features etcd,hdfs

.PHONY: run build release test lint unit compat test-spark bench venv clean deps

## Start a local endpoint (master, worker and gateway in one process) on 127.0.0.1:9000.
run: release
	$(RELEASE_BIN) local

build: deps
	cargo build --workspace $(FEATURES)

release:
	cargo build --release --bin strata

## Everything CI runs: lint, Rust unit and integration tests, the compat suites.
test: lint unit compat test-spark

## Debian packages the tests need: protoc (for the etcd client), etcd, libclang (for checking
## the FoundationDB backend, whose libfdb_c no registry here ships).
deps:
	@command -v protoc >/dev/null && command -v etcd >/dev/null && dpkg -s libclang-dev >/dev/null 2>&1 || \
	  (apt-get update -q && apt-get install -y -q protobuf-compiler etcd-server etcd-client libclang-dev)

lint: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets $(FEATURES) -- -D warnings
	cargo clippy -p strata-master --all-targets --features fdb -- -D warnings

## Unit and integration tests; the metadata store suite also runs against a real etcd.
unit: deps
	scripts/with-etcd cargo test --workspace $(FEATURES)

venv: $(VENV)/.installed

$(VENV)/.installed: compat-tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r compat-tests/requirements.txt
	touch $@

compat: build venv
	STRATA_BIN=$(BIN) scripts/with-etcd $(PY) -m pytest -q -p no:cacheprovider -m "not spark" compat-tests

## Spark 3.5 with s3a (hadoop-aws 3.3.1): Parquet datasets and the magic committer.
test-spark: build $(VENV)/.spark
	STRATA_BIN=$(BIN) $(PY) -m pytest -q -p no:cacheprovider -m spark compat-tests

$(VENV)/.spark: $(VENV)/.installed
	command -v java >/dev/null || (apt-get update -q && apt-get install -y -q openjdk-17-jre-headless)
	$(VENV)/bin/pip install --quiet pyspark==3.5.9
	$(VENV)/bin/pip install --quiet --no-deps sagemaker_pyspark==1.4.5
	touch $@

## Throughput and gateway memory of 1 GiB through a cluster and `strata local`; failover time
## of two masters on etcd; cold and warm reads from a remote-like under store; metadata
## transactions per second of the embedded store and etcd.
bench: venv deps
	cargo build --release --bin strata $(FEATURES)
	STRATA_BIN=$(RELEASE_BIN) scripts/with-etcd $(PY) compat-tests/bench.py
	STRATA_BIN=$(RELEASE_BIN) $(PY) compat-tests/cachebench.py
	@echo "metadata store:"
	@rm -rf $(CURDIR)/.bench-meta.redb
	cargo run -q --release --features etcd -p strata-master --example kvbench -- embedded://$(CURDIR)/.bench-meta.redb 2000 16
	scripts/with-etcd sh -c 'cargo run -q --release --features etcd -p strata-master --example kvbench -- etcd://$$STRATA_TEST_ETCD/bench 2000 16'
	@rm -rf $(CURDIR)/.bench-meta.redb

clean:
	cargo clean
	rm -rf $(VENV)
