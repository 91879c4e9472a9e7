"""Faults of the disks under Strata, injected with FUSE (faultfs.py): the root under store (the
bucket folders) and the worker's disk cache tier live on a passthrough mount that fails on
command. An unreadable file is an S3 error, never a short or wrong 200; a write the disk
refuses is an S3 error that leaves the old object whole and nothing staged; a read-only disk
still serves reads and lists; a slow disk is slow, not wrong; a failing cache tier falls back
to the under store. Skipped where FUSE cannot be mounted (no /dev/fuse, no fusepy)."""

import hashlib
import os
import secrets
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import start_cluster, start_local  # noqa: E402
import faultfs  # noqa: E402
from faultfs import FaultFS, Unavailable  # noqa: E402

MIB = 1 << 20


def md5(b):
    return hashlib.md5(b).hexdigest()


@pytest.fixture(scope="module")
def fs(tmp_path_factory):
    base = tmp_path_factory.mktemp("diskfaults")
    f = FaultFS(base / "backing", base / "mnt", base / "faultfs.sock", log=base / "faultfs.log")
    try:
        f.start()
    except Unavailable as e:
        pytest.skip(f"cannot mount a FUSE file system here: {e}")
    f.base, f.backing, f.mnt = base, base / "backing", base / "mnt"
    yield f
    alive = f.alive()
    f.stop()
    assert alive, "faultfs died during the tests (see faultfs.log)"


def server_env(fs, name):
    """The under store and the disk cache tier of `name` on the mount: one page in memory,
    the rest on the disk tier."""
    for d in ("ufs", "cache"):
        (fs.mnt / name / d).mkdir(parents=True)
    return {"STRATA_ROOT_UFS": f"file://{fs.mnt / name / 'ufs'}",
            "STRATA_CACHE__DISK_DIR": str(fs.mnt / name / "cache"), "STRATA_CACHE__MEM_BYTES": str(MIB), "STRATA_CACHE__DISK_BYTES": str(64 * MIB)}


class Server:
    def __init__(self, fs, name, c):
        self.fs, self.name, self.c = fs, name, c
        self.ufs = f"^/{name}/ufs/"
        self.cache = f"^/{name}/cache/"

    def client(self, read_type=None, write_type=None):
        """boto3 with one attempt per call; `read_type` on its GETs, `write_type` on its PUTs."""
        s3 = boto3.client("s3", endpoint_url=self.c.endpoint, aws_access_key_id=self.c.access_key,
                          aws_secret_access_key=self.c.secret_key, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                                        read_timeout=60, request_checksum_calculation="when_required"))
        if read_type:
            s3.meta.events.register("before-sign.s3.GetObject",
                                    lambda request, **_: request.headers.__setitem__("x-strata-read-type", read_type))
        if write_type:
            s3.meta.events.register("before-sign.s3.PutObject",
                                    lambda request, **_: request.headers.__setitem__("x-strata-write-type", write_type))
        return s3

    def bucket(self):
        name = "d-" + secrets.token_hex(4)
        self.client().create_bucket(Bucket=name)
        return name

    def backing(self, bucket):
        return self.fs.backing / self.name / "ufs" / bucket

    def leftovers(self, bucket):
        """Staged files, and object_store's `#n` temporaries, left in the bucket's folder."""
        d = self.backing(bucket)
        return sorted(str(p.relative_to(d)) for p in d.rglob("*")
                      if p.is_file() and (p.relative_to(d).parts[0] == "%strata" or "#" in p.name))

    def check_alive(self):
        for what, (p, *_) in self.c.procs.items():
            assert p.poll() is None, f"{what} died"
        for log in self.c.logs.glob("*.log"):
            assert "panicked" not in log.read_text(errors="replace"), f"a panic in {log}"


@pytest.fixture(scope="module")
def local(fs):
    (fs.base / "local-run").mkdir()
    c = start_local(fs.base / "local-run", env=server_env(fs, "local"))
    yield Server(fs, "local", c)
    fs.clear()
    c.stop_all()


@pytest.fixture(scope="module")
def cluster(fs):
    (fs.base / "cluster-run").mkdir()
    env = server_env(fs, "cluster")
    c = start_cluster(fs.base / "cluster-run", root_ufs=env.pop("STRATA_ROOT_UFS"), env=env)
    yield Server(fs, "cluster", c)
    fs.clear()
    c.stop_all()


@pytest.fixture(params=["local", "cluster"])
def server(request, fs):
    yield request.getfixturevalue(request.param)
    fs.clear()


@pytest.fixture
def srv(local, fs):
    yield local
    fs.clear()


def get(s3, bucket, key, **kw):
    """The bytes GET serves, or the exception it ended with (an S3 error, or a cut body)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()
    except (ClientError, BotoCoreError) as e:
        return e


def assert_s3_error(e, statuses=(500, 503)):
    """A real S3 error answer: the status, an XML body boto could parse, a request id."""
    assert isinstance(e, ClientError), f"not an S3 error answer: {e!r:.300}"
    r = e.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] in statuses, r
    assert r["Error"].get("Code") and not r["Error"]["Code"].isdigit(), f"no XML error body: {r}"
    assert r["Error"].get("Message"), r
    assert r["ResponseMetadata"].get("RequestId"), f"no request id: {r}"
    return r


def test_an_unreadable_file_is_an_s3_error_and_reads_right_once_it_heals(server, fs):
    # Written to the under store only, and read past the cache: every GET reads the files.
    s3, nocache = server.client(write_type="THROUGH"), server.client("NO_CACHE")
    b = server.bucket()
    objects = {"one-page": os.urandom(300_000), "three-pages": os.urandom(3 * MIB + 17)}
    for k, body in objects.items():
        s3.put_object(Bucket=b, Key=k, Body=body)
    # Every read of these files fails: whole GETs and ranges, past the cache and through it.
    fs.set({"ops": ["read"], "path": server.ufs + b + "/", "errno": "EIO"})
    started = time.time()
    for k, body in objects.items():
        for client in (nocache, s3):
            assert_s3_error(get(client, b, k))
            assert_s3_error(get(client, b, k, Range="bytes=1000-199999"))
    took = time.time() - started
    assert fs.counts()[0] > 0
    assert took < 40, f"8 failing GETs took {took:.1f}s"
    # Half of the reads fail: a GET is an error, a cut body or the right bytes, never wrong ones.
    fs.set({"ops": ["read"], "path": server.ufs + b + "/", "errno": "EIO", "share": 0.5})
    for _ in range(2):
        for k, body in objects.items():
            got = get(nocache, b, k)
            assert isinstance(got, Exception) or md5(got) == md5(body), f"{k}: {len(got)} bytes, wrong"
    fs.clear()
    for k, body in objects.items():
        for client in (nocache, s3):
            assert md5(get(client, b, k)) == md5(body), k
            assert get(client, b, k, Range="bytes=1000-199999") == body[1000:200000], k
    server.check_alive()
    print(f"{server.name}: failing GETs answered in {took / 8:.2f}s each")


# (fault rules, what they stand for)
PUT_FAULTS = [
    ([{"ops": ["write"], "errno": "EIO"}], "write EIO"),
    ([{"ops": ["write"], "errno": "ENOSPC"}], "write ENOSPC"),
    ([{"ops": ["create"], "errno": "EIO"}], "create EIO"),
    ([{"ops": ["fsync"], "errno": "EIO"}], "fsync EIO"),
    # Only the move onto the key: its target is the key's file.
    ([{"ops": ["rename", "link"], "errno": "EIO", "path": "/(victim|fresh)$"}], "move onto the key EIO"),
]


@pytest.mark.parametrize("rules,what", PUT_FAULTS, ids=[w for _, w in PUT_FAULTS])
def test_a_put_the_disk_refuses_fails_and_leaves_the_old_object(srv, fs, rules, what):
    s3, nocache = srv.client(), srv.client("NO_CACHE")
    b = srv.bucket()
    old = os.urandom(200_000)
    s3.put_object(Bucket=b, Key="victim", Body=old)
    fs.set(*[dict(r, path=srv.ufs + b + "/" + r.get("path", "").lstrip("/")) for r in rules])
    for key, size in (("victim", 150_000), ("fresh", 150_000), ("victim", 3 * MIB)):
        e = pytest.raises(ClientError, s3.put_object, Bucket=b, Key=key, Body=os.urandom(size))
        r = assert_s3_error(e.value)
        print(f"{what}: {key} {r['ResponseMetadata']['HTTPStatusCode']} {r['Error']['Message']}")
    assert sum(fs.counts()) > 0, f"{what}: the fault never fired"
    fs.clear()
    for client in (s3, nocache):
        assert md5(get(client, b, "victim")) == md5(old), what
        with pytest.raises(client.exceptions.NoSuchKey):
            client.get_object(Bucket=b, Key="fresh")
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])}
    assert listed == {"victim": len(old)}, what
    assert md5((srv.backing(b) / "victim").read_bytes()) == md5(old)
    assert srv.leftovers(b) == [], what
    # The disk is well again: writes work.
    new = os.urandom(100_000)
    s3.put_object(Bucket=b, Key="victim", Body=new)
    assert md5(get(nocache, b, "victim")) == md5(new)
    srv.check_alive()


def test_a_multipart_part_whose_fsync_fails_is_refused_and_can_be_sent_again(srv, fs):
    s3 = srv.client()
    b = srv.bucket()
    parts = [os.urandom(5 * MIB), os.urandom(MIB // 2)]
    up = s3.create_multipart_upload(Bucket=b, Key="mpu")["UploadId"]
    fs.set({"ops": ["fsync"], "path": srv.ufs + b + "/", "errno": "EIO"})
    e = pytest.raises(ClientError, s3.upload_part, Bucket=b, Key="mpu", UploadId=up, PartNumber=1, Body=parts[0])
    assert_s3_error(e.value)
    assert fs.counts()[0] > 0
    fs.clear()
    etags = [s3.upload_part(Bucket=b, Key="mpu", UploadId=up, PartNumber=i + 1, Body=p)["ETag"]
             for i, p in enumerate(parts)]
    s3.complete_multipart_upload(Bucket=b, Key="mpu", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": t} for i, t in enumerate(etags)]})
    assert md5(get(srv.client("NO_CACHE"), b, "mpu")) == md5(b"".join(parts))
    assert srv.leftovers(b) == []
    srv.check_alive()


def test_a_read_only_disk_refuses_writes_and_serves_reads(srv, fs):
    s3, nocache = srv.client(), srv.client("NO_CACHE")
    b = srv.bucket()
    kept = {f"ro-{i}": os.urandom(200_000 + i) for i in range(3)}
    for k, body in kept.items():
        s3.put_object(Bucket=b, Key=k, Body=body)
    fs.set({"ops": ["mutate"], "path": srv.ufs, "errno": "EROFS"})
    for call, kw in ((s3.put_object, {"Key": "ro-0", "Body": b"new"}), (s3.put_object, {"Key": "ro-new", "Body": b"x"}),
                     (s3.delete_object, {"Key": "ro-1"})):
        e = pytest.raises(ClientError, call, Bucket=b, **kw)
        r = assert_s3_error(e.value)
        assert "read-only" in r["Error"]["Message"].lower(), r["Error"]
    refused = "ro-" + secrets.token_hex(4)
    r = assert_s3_error(pytest.raises(ClientError, s3.create_bucket, Bucket=refused).value)
    assert "read-only" in r["Error"]["Message"], r["Error"]
    assert refused not in [x["Name"] for x in s3.list_buckets()["Buckets"]]
    for client in (s3, nocache):
        for k, body in kept.items():
            assert md5(get(client, b, k)) == md5(body), k
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]) == sorted(kept)
    assert sum(fs.counts()) > 0
    fs.clear()
    # The refused delete left the object, in Strata and in the folder alike.
    assert md5((srv.backing(b) / "ro-1").read_bytes()) == md5(kept["ro-1"])
    assert srv.leftovers(b) == []
    s3.delete_object(Bucket=b, Key="ro-1")
    assert not (srv.backing(b) / "ro-1").exists()
    srv.check_alive()


def test_a_slow_disk_is_slow_not_wrong(srv, fs):
    s3, nocache = srv.client(write_type="THROUGH"), srv.client("NO_CACHE")
    b = srv.bucket()
    # A rule per operation: the same delay for each, counted apart.
    ops = sorted(faultfs.OPS)
    fs.set(*[{"ops": [op], "path": f"^/{srv.name}/", "delay": 0.2} for op in ops])
    body = os.urandom(300_000)
    started = time.time()
    s3.put_object(Bucket=b, Key="slow", Body=body)
    put_took = time.time() - started
    assert md5(get(nocache, b, "slow")) == md5(body)
    assert md5(get(s3, b, "slow")) == md5(body)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]] == ["slow"]
    took = time.time() - started
    calls = {op: n for op, n in zip(ops, fs.counts()) if n}
    assert calls.get("write", 0) > 0 and calls.get("read", 0) > 0, calls
    print(f"slow disk: PUT {put_took:.1f}s, PUT + 2 GETs + LIST {took:.1f}s, delayed calls: {calls}")


def test_a_failing_cache_disk_falls_back_to_the_under_store(server, fs):
    s3 = server.client()
    b = server.bucket()
    objects = {f"c-{i}": os.urandom(3 * MIB + i) for i in range(2)}
    for k, body in objects.items():
        s3.put_object(Bucket=b, Key=k, Body=body)
        assert md5(get(s3, b, k)) == md5(body)
    # Cached pages cannot be read: GETs read the under store.
    fs.set({"ops": ["read"], "path": server.cache, "errno": "EIO"})
    for k, body in objects.items():
        assert md5(get(s3, b, k)) == md5(body), k
        assert get(s3, b, k, Range=f"bytes={MIB - 5}-{MIB + 5}") == body[MIB - 5:MIB + 6], k
    assert fs.counts()[0] > 0, "no cached page was read from the disk tier"
    # No page can be written, by a failing disk or a full one: writes and reads go on.
    for code in ("EIO", "ENOSPC"):
        fs.set({"ops": ["write", "create"], "path": server.cache, "errno": code})
        for i in range(2):
            k, body = f"w-{code}-{i}", os.urandom(2 * MIB + i)
            s3.put_object(Bucket=b, Key=k, Body=body)
            objects[k] = body
            assert md5(get(s3, b, k)) == md5(body), k
        assert sum(fs.counts()) > 0, code
    fs.clear()
    for k, body in objects.items():
        assert md5(get(s3, b, k)) == md5(body), k
    cache = fs.backing / server.name / "cache"
    assert not list(cache.rglob("*.tmp")), "half-written cache pages left behind"
    server.check_alive()
