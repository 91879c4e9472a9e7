"""Starts Strata for the compat tests: `strata local`, and a cluster of one master, one worker
and two gateways as separate processes. Each test module gets both (the `s3` fixture is
parametrised), on free ports on 127.0.0.1, with data folders under pytest's tmp dir."""

import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent
BIN = os.environ.get("STRATA_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "strata"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see its log")
        try:
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready at {url} after {timeout}s")


@contextmanager
def moto_server(log=subprocess.DEVNULL):
    """A real S3 server (moto_server, from the venv) on a free port of 127.0.0.1: its URL."""
    port = free_port()
    p = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                         stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.RequestException:
                if time.time() > deadline or p.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        p.terminate()
        p.wait(timeout=10)


@dataclass
class Cluster:
    mode: str
    endpoints: list
    access_key: str
    secret_key: str
    data_dir: Path
    procs: dict = field(default_factory=dict)
    logs: Path = None
    env: dict = field(default_factory=dict)
    master_url: str = None
    masters: list = field(default_factory=list)
    access_log: Path = None
    bin: str = BIN  # the strata binary its processes run

    @property
    def endpoint(self):
        return self.endpoints[0]

    def client(self, endpoint=None, **config):
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
        )

    def aws(self, *args, check=True, endpoint=None, env=None):
        e = dict(os.environ)
        e.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                 AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
                 AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        e.update(env or {})
        aws = str(Path(os.sys.executable).parent / "aws")
        cmd = [aws, "--endpoint-url", endpoint or self.endpoint, "--no-progress" if args[0] == "s3" and args[1] in ("cp", "sync", "mv") else None, *args]
        cmd = [c for c in cmd if c is not None]
        r = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=600)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def start(self, name, args, env, ready_url):
        log = open(self.logs / f"{name}.log", "ab")
        full_env = dict(os.environ, RUST_LOG="info", STRATA_DOMAIN="s3.strata.test", **self.env, **env)
        p = subprocess.Popen([self.bin, *args], env=full_env, stdout=log, stderr=log)
        self.procs[name] = (p, args, env, ready_url)
        wait_ready(ready_url, p, name)
        return p

    def stop(self, name, sig="term"):
        p = self.procs[name][0]
        if p.poll() is None:
            p.terminate() if sig == "term" else p.kill()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def restart(self, name):
        _, args, env, url = self.procs[name]
        self.stop(name)
        self.start(name, args, env, url)

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)


def start_local(tmp, env=None, bin=BIN):
    port = free_port()
    c = Cluster("local", [f"http://127.0.0.1:{port}"], "", "", tmp / "local", logs=tmp, bin=bin)
    c.start("local", ["local", "--data-dir", str(c.data_dir), "--listen", f"127.0.0.1:{port}"], env or {}, c.endpoint)
    creds = (c.data_dir / "credentials").read_text()
    fields = dict(line.split(" = ", 1) for line in creds.splitlines() if " = " in line)
    c.access_key, c.secret_key = fields["access_key"], fields["secret_key"]
    return c


def start_cluster(tmp, metadata=None, root_ufs=None, master_args=(), creds=None, env=None, worker_s3=False, bin=BIN):
    """Master, worker and two gateways; `worker_s3`: the worker serves S3 too (`--s3-listen`, its
    access log in `c.access_log`) and is the first endpoint, the second a gateway of its own."""
    mport, wport, g1, g2 = free_port(), free_port(), free_port(), free_port()
    ak, sk = creds or ("STRATATEST" + secrets.token_hex(5).upper(), secrets.token_urlsafe(30))
    c = Cluster("cluster", [f"http://127.0.0.1:{g1}", f"http://127.0.0.1:{g2}"], ak, sk, tmp / "cluster", logs=tmp,
                bin=bin)
    worker_args = []
    if worker_s3:
        s3port = free_port()
        c.access_log = tmp / "worker-s3-access.log"
        worker_args = ["--s3-listen", f"127.0.0.1:{s3port}", "--access-log", str(c.access_log)]
        c.endpoints = [f"http://127.0.0.1:{s3port}", f"http://127.0.0.1:{g1}"]
    c.env = {"STRATA_CLUSTER_SECRET": secrets.token_hex(16), "STRATA_HEARTBEAT_INTERVAL_MS": "500", **(env or {})}
    master = f"http://127.0.0.1:{mport}"
    menv = {"STRATA_ROOT_ACCESS_KEY": ak, "STRATA_ROOT_SECRET_KEY": sk}
    if metadata:
        menv["STRATA_METADATA"] = metadata
        c.mode = "etcd"
    if root_ufs:
        menv["STRATA_ROOT_UFS"] = root_ufs
    c.master_url = master
    c.start("master", ["master", "--data-dir", str(c.data_dir / "master"), "--listen", f"127.0.0.1:{mport}",
                       *master_args], menv, master)
    c.start("worker", ["worker", "--data-dir", str(c.data_dir / "worker"), "--listen", f"127.0.0.1:{wport}",
                       "--master", master, *worker_args], {}, f"http://127.0.0.1:{wport}")
    for i, port in enumerate((g1,) if worker_s3 else (g1, g2)):
        c.start(f"gateway{i + 1}", ["gateway", "--listen", f"127.0.0.1:{port}", "--master", master], {},
                f"http://127.0.0.1:{port}")
    return c


def start_etcd_cluster(tmp):
    """The cluster with its metadata in etcd (`make test` runs one and sets STRATA_TEST_ETCD)."""
    return start_cluster(tmp, metadata=f"etcd://{os.environ['STRATA_TEST_ETCD']}/strata-{secrets.token_hex(4)}")


MODES = {"local": start_local, "cluster": start_cluster}
if os.environ.get("STRATA_TEST_ETCD"):
    MODES["etcd"] = start_etcd_cluster


@pytest.fixture(scope="session", params=list(MODES))
def strata(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    c = MODES[request.param](tmp)
    yield c
    c.stop_all()


@pytest.fixture(params=["when_supported", "when_required"], ids=["crc", "nocrc"])
def s3(strata, request):
    """boto3 at its defaults (CRC32 checksums on every upload), and with checksums off."""
    return strata.client(request_checksum_calculation=request.param, response_checksum_validation=request.param)


@pytest.fixture
def bucket(strata, s3):
    """A new empty bucket, emptied and deleted after the test."""
    name = "t-" + secrets.token_hex(6)
    s3.create_bucket(Bucket=name)
    yield name
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=o["Key"])
        s3.delete_bucket(Bucket=name)
    except Exception:
        pass
