"""Operating a fresh `strata local`: the real `strata admin` against its default admin port
(found through its data folder, behind the cluster secret kept there), the gateway's JSON
access log after boto3 requests, and the gateway/master metrics added for operators
(in-flight requests, capped bucket labels, sync and TTL passes)."""

import json
import os
import re
import secrets
import stat
import subprocess
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from conftest import BIN, free_port, wait_ready


class Local:
    """`strata local` started in `cwd` with no --data-dir: its data folder is cwd/.strata."""

    def __init__(self, cwd, *args, env=None):
        self.cwd, self.port = Path(cwd), free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = self.cwd / "local.log"
        e = dict(os.environ, RUST_LOG="info", **(env or {}))
        e.pop("STRATA_CLUSTER_SECRET", None)
        self.proc = subprocess.Popen([BIN, "local", "--listen", f"127.0.0.1:{self.port}", *args], cwd=cwd,
                                     env=e, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        wait_ready(self.endpoint, self.proc, "strata local")
        fields = dict(l.split(" = ", 1) for l in (self.cwd / ".strata" / "credentials").read_text().splitlines()
                      if " = " in l)
        self.access_key, self.secret_key = fields["access_key"], fields["secret_key"]

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def printed(self):
        deadline = time.time() + 10
        while "strata admin --master" not in self.log.read_text() and time.time() < deadline:
            time.sleep(0.1)
        return self.log.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def admin(cwd, *args, env=None, check=True):
    e = dict(os.environ, **(env or {}))
    if not env or "STRATA_CLUSTER_SECRET" not in env:
        e.pop("STRATA_CLUSTER_SECRET", None)
    r = subprocess.run([BIN, "admin", *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, f"strata admin {' '.join(args)}: {r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("observe")
    log = tmp / "access.log"
    env = {"STRATA_TTL_CHECK_INTERVAL_MS": "200", "STRATA_HEARTBEAT_INTERVAL_MS": "200"}
    c = Local(tmp, "--access-log", str(log), env=env)
    c.access_log = log
    yield c
    c.stop()


def test_admin_works_against_a_fresh_local_with_no_flags(local, tmp_path):
    out = local.printed()
    m = re.search(r"strata admin --master (http://127\.0\.0\.1:\d+) --data-dir (\S+) report", out)
    assert m, out
    url, data = m.groups()
    assert Path(data) == (local.cwd / ".strata").resolve()
    secret = local.cwd / ".strata" / "cluster_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # The exact line it printed, from anywhere.
    r = admin(tmp_path, "--master", url, "--data-dir", data, "report")
    assert "primary:" in r.stdout and "workers: 1" in r.stdout, r.stdout
    # In its folder, no flag at all.
    r = admin(local.cwd, "report")
    assert "workers: 1" in r.stdout, r.stdout
    # The secret guards the port.
    r = admin(tmp_path, "--master", url, "report", env={"STRATA_CLUSTER_SECRET": "wrong"}, check=False)
    assert r.returncode != 0 and "secret" in (r.stdout + r.stderr), r.stderr

    s3 = local.client()
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.bin").write_bytes(secrets.token_bytes(300_000))
    admin(local.cwd, "mount", "obs-mounted", f"file://{folder}", "--sync-interval", "0")
    assert "obs-mounted" in admin(local.cwd, "mounts").stdout
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="obs-mounted")["Contents"]] == ["a.bin"]
    r = admin(local.cwd, "load", "obs-mounted")
    assert "loaded 1 objects" in r.stdout and "293.0 KiB" in r.stdout, r.stdout + r.stderr
    admin(local.cwd, "pin", "obs-mounted")
    admin(local.cwd, "user", "create", "obs-user")
    assert "obs-user" in admin(local.cwd, "user", "list").stdout
    backup = tmp_path / "meta.backup"
    admin(local.cwd, "backup", str(backup))
    assert backup.stat().st_size > 0


def access_lines(local, n, timeout=5):
    deadline = time.time() + timeout
    while True:
        lines = [json.loads(l) for l in local.access_log.read_text().splitlines() if l.strip()]
        if len(lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.1)


def test_the_access_log_has_a_json_line_per_request(local):
    s3 = local.client()
    bucket = "obs-log-" + secrets.token_hex(3)
    body = secrets.token_bytes(200_000)
    before = len(access_lines(local, 0, 0))
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=body)
    assert s3.get_object(Bucket=bucket, Key="dir/obj.bin")["Body"].read() == body
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="missing")
    lines = access_lines(local, before + 4)[before:]
    assert [l["op"] for l in lines] == ["CreateBucket", "PutObject", "GetObject", "GetObject"], lines
    for l in lines:
        assert set(l) >= {"time", "request_id", "access_key", "op", "bucket", "key", "status", "bytes_in",
                          "bytes_out", "ms", "source"}, l
        assert l["access_key"] == local.access_key and l["bucket"] == bucket
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", l["time"]) and l["ms"] >= 0
    put, get, missing = lines[1], lines[2], lines[3]
    assert (put["key"], put["status"], put["bytes_in"]) == ("dir/obj.bin", 200, len(body)), put
    assert (get["status"], get["bytes_out"], get["source"]) == (200, len(body), "cache"), get
    assert (missing["key"], missing["status"], missing["source"]) == ("missing", 404, None), missing
    assert missing["bytes_out"] > 0  # the XML error
    # The request id is the one the client saw.
    r = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    head = access_lines(local, before + 5)[-1]
    assert head["request_id"] == r["ResponseMetadata"]["RequestId"] and head["op"] == "HeadObject"
    # Per-request lines are in the access log, not the main log.
    assert head["request_id"] not in local.log.read_text()


def samples(local):
    text = requests.get(local.endpoint + "/metrics", timeout=10).text
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


def value(local, name, **labels):
    return sum(s.value for s in samples(local) if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_gateway_bucket_labels_are_capped_and_in_flight_is_gauged(local):
    s3 = local.client()
    names = [f"obs-cap-{i:03d}-{secrets.token_hex(2)}" for i in range(105)]
    for n in names:
        s3.create_bucket(Bucket=n)
    for n in names:
        s3.head_bucket(Bucket=n)
    # Names of buckets that do not exist never take a label.
    for i in range(5):
        with pytest.raises(Exception):
            s3.head_bucket(Bucket=f"obs-missing-{i}-{secrets.token_hex(3)}")
    got = {s.labels["bucket"] for s in samples(local) if s.name == "strata_gateway_bucket_requests_total"}
    assert len(got) <= 101 and "other" in got, sorted(got)
    assert not any(g.startswith("obs-missing-") for g in got)
    assert any(s.name == "strata_gateway_requests_in_flight" for s in samples(local))
    assert value(local, "strata_gateway_requests_in_flight") >= 0


def test_sync_and_ttl_passes_are_counted(local, tmp_path):
    s3 = local.client()
    folder = tmp_path / "synced"
    folder.mkdir()
    admin(local.cwd, "mount", "obs-synced", f"file://{folder}", "--sync-interval", "0")
    # (The bucket labels may be used up by the test before: sum over every bucket.)
    passes = value(local, "strata_master_sync_passes_total", kind="listing", result="ok")
    changes = value(local, "strata_master_sync_changes_total", kind="listing")
    (folder / "new.txt").write_text("hello")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="obs-synced")["Contents"]] == ["new.txt"]
    assert value(local, "strata_master_sync_passes_total", kind="listing", result="ok") >= passes + 1
    assert value(local, "strata_master_sync_changes_total", kind="listing") == changes + 1
    admin(local.cwd, "ttl", "obs-synced", "1h")
    passes = value(local, "strata_master_ttl_passes_total", result="ok")
    deadline = time.time() + 10
    while value(local, "strata_master_ttl_passes_total", result="ok") <= passes:
        assert time.time() < deadline, "no TTL pass counted in 10 s"
        time.sleep(0.3)
    assert value(local, "strata_master_ttl_last_pass_timestamp_seconds") > time.time() - 60
