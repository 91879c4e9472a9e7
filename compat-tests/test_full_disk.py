"""A full disk under a cluster: the root under store (a local folder) and the worker's disk
cache tier each on a small tmpfs, filled by a ballast file. Writes fail with an S3 error that
says the disk is full, reads go on from the under store, nothing is corrupted or left staged,
and all is well again once the ballast is gone. Needs root (mount -t tmpfs): skipped without."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import start_cluster  # noqa: E402

MIB = 1 << 20


def tmpfs(path, size):
    path.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    return path


def fill(disk):
    """Writes a ballast file until the disk is full; returns its path."""
    ballast = disk / "ballast"
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (64 << 10))
                f.flush()
        except OSError:
            pass
    return ballast


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    base = tmp_path_factory.mktemp("fulldisk")
    ufs, cache = tmpfs(base / "ufs", "24m"), tmpfs(base / "cache", "4m")
    yield base, ufs, cache
    for d in (ufs, cache):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.fixture(scope="module")
def cluster(disks):
    base, ufs, cache = disks
    # One page in memory, the rest to the disk tier (whose quota the tmpfs cannot hold).
    env = {"STRATA_CACHE__MEM_BYTES": str(MIB), "STRATA_CACHE__DISK_DIR": str(cache),
           "STRATA_CACHE__DISK_BYTES": str(64 * MIB)}
    (base / "run").mkdir()
    c = start_cluster(base / "run", root_ufs=f"file://{ufs}", env=env)
    yield c
    c.stop_all()


def md5(b):
    return hashlib.md5(b).hexdigest()


def staged(ufs, bucket):
    d = ufs / bucket / "%strata"
    return [str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()] if d.exists() else []


def test_a_full_disk_fails_writes_clearly_and_reads_go_on(disks, cluster):
    _, ufs, cache = disks
    s3 = cluster.client(request_checksum_calculation="when_required")
    s3.create_bucket(Bucket="full")
    kept = {f"kept-{i}": os.urandom(3 * MIB + i) for i in range(3)}
    for k, body in kept.items():
        s3.put_object(Bucket="full", Key=k, Body=body)

    ballast = [fill(ufs), fill(cache)]
    # Writes: refused with 503 and a message that says why; nothing half-written stays.
    for key, size in (("small", 200_000), ("big", 9 * MIB), ("kept-0", MIB)):
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket="full", Key=key, Body=os.urandom(size))
        err = e.value.response
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 503, err
        assert "disk is full" in err["Error"]["Message"], err
    for key in ("small", "big"):
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket="full", Key=key)
    assert staged(ufs, "full") == []
    # Reads: the cache tier cannot take pages, so they come from the under store, whole.
    for _ in range(2):
        for k, body in kept.items():
            assert md5(s3.get_object(Bucket="full", Key=k)["Body"].read()) == md5(body), k
    assert cluster.procs["worker"][0].poll() is None, "the worker died"
    assert not [p for p in cache.rglob("*.tmp")], "half-written cache pages left on the full disk"

    # Room again: writes work, and every object reads back whole.
    for b in ballast:
        b.unlink()
    body = os.urandom(2 * MIB)
    s3.put_object(Bucket="full", Key="small", Body=body)
    kept["small"] = body
    for k, body in kept.items():
        assert md5(s3.get_object(Bucket="full", Key=k)["Body"].read()) == md5(body), k
        assert md5((ufs / "full" / k).read_bytes()) == md5(body), k
    log = (cluster.logs / "worker.log").read_text()
    assert "panicked" not in log
