"""Write types through a cluster whose bucket is a mounted local folder: CACHE_THROUGH (the
default), THROUGH, MUST_CACHE and ASYNC_THROUGH, by header and by mount."""

import os
import signal
import time

import pytest

from conftest import start_cluster
from test_cache import metric
from test_mounts import admin

MIB = 1 << 20


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("writes")
    c = start_cluster(tmp, env={"STRATA_TTL_CHECK_INTERVAL_MS": "300"})
    c.folder = tmp / "folder"
    c.folder.mkdir()
    admin(c, "mount", "lake", f"file://{c.folder}", "--sync-interval", "0")
    yield c
    c.stop_all()


def put(s3, key, body, write_type=None):
    def add(request, **_):
        request.headers["x-strata-write-type"] = write_type

    if write_type:
        s3.meta.events.register_first("before-sign.s3.PutObject", add)
    try:
        return s3.put_object(Bucket="lake", Key=key, Body=body)
    finally:
        if write_type:
            s3.meta.events.unregister("before-sign.s3.PutObject", add)


def ufs_read(c):
    return metric(c.procs["worker"][3], "strata_worker_ufs_bytes_read_total")


def wait_for(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_cache_through_and_through(lake):
    s3 = lake.client()
    a, b = os.urandom(3 * MIB), os.urandom(3 * MIB)
    put(s3, "ct", a)
    put(s3, "th", b, "THROUGH")
    assert (lake.folder / "ct").read_bytes() == a and (lake.folder / "th").read_bytes() == b
    before = ufs_read(lake)
    assert s3.get_object(Bucket="lake", Key="ct")["Body"].read() == a
    assert ufs_read(lake) == before, "CACHE_THROUGH cached what it wrote"
    assert s3.get_object(Bucket="lake", Key="th")["Body"].read() == b
    assert ufs_read(lake) - before == 3 * MIB, "THROUGH did not"


def test_must_cache_never_reaches_the_under_store_and_survives_a_worker_restart(lake):
    s3 = lake.client()
    data = os.urandom(2 * MIB + 5)
    put(s3, "mc", data, "MUST_CACHE")
    assert not (lake.folder / "mc").exists()
    assert s3.get_object(Bucket="lake", Key="mc")["Body"].read() == data
    assert "mc" in [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]], "a listing keeps it"
    lake.restart("worker")
    assert wait_for(lambda: " live " in admin(lake, "report").stdout)
    got = s3.get_object(Bucket="lake", Key="mc")["Body"].read()
    assert got == data, "the worker's journal kept it across the restart"
    time.sleep(1.5)
    assert not (lake.folder / "mc").exists()
    s3.delete_object(Bucket="lake", Key="mc")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="lake", Key="mc")


def test_async_through_is_persisted_soon_after(lake):
    s3 = lake.client()
    data = os.urandom(9 * MIB + 7)
    put(s3, "at", data, "ASYNC_THROUGH")
    assert s3.get_object(Bucket="lake", Key="at")["Body"].read() == data, "readable at once"
    assert wait_for(lambda: (lake.folder / "at").exists() and (lake.folder / "at").stat().st_size == len(data))
    assert (lake.folder / "at").read_bytes() == data
    assert s3.get_object(Bucket="lake", Key="at")["Body"].read() == data


def test_async_through_persist_survives_restarts_of_worker_and_master(lake):
    s3 = lake.client()
    for attempt in range(5):
        key = f"survive{attempt}"
        data = os.urandom(32 * MIB)
        put(s3, key, data, "ASYNC_THROUGH")
        lake.procs["worker"][0].send_signal(signal.SIGKILL)
        persisted_before_kill = (lake.folder / key).exists()
        lake.procs["worker"][0].wait()
        if not persisted_before_kill:
            break
    assert not persisted_before_kill, "every try was persisted before the kill: the restart path went untested"
    lake.procs["master"][0].send_signal(signal.SIGKILL)
    lake.procs["master"][0].wait()
    lake.restart("master")
    lake.restart("worker")
    assert wait_for(lambda: (lake.folder / key).exists() and (lake.folder / key).stat().st_size == len(data), 30)
    assert (lake.folder / key).read_bytes() == data
    assert s3.get_object(Bucket="lake", Key=key)["Body"].read() == data


def test_write_type_of_a_mount_and_bad_headers(lake, tmp_path):
    folder = tmp_path / "fast"
    folder.mkdir()
    admin(lake, "mount", "fast", f"file://{folder}", "--write-type", "MUST_CACHE")
    s3 = lake.client()
    s3.put_object(Bucket="fast", Key="k", Body=b"only cached")
    assert s3.get_object(Bucket="fast", Key="k")["Body"].read() == b"only cached"
    assert not (folder / "k").exists()
    assert "writes: MUST_CACHE" in admin(lake, "mounts").stdout
    with pytest.raises(s3.exceptions.ClientError) as e:
        put(s3, "bad", b"x", "SOMETIMES")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    r = admin(lake, "mount", "bad", f"file://{folder}", "--write-type", "NEVER", check=False)
    assert r.returncode != 0 and "write-type" in r.stderr


def test_ttl_frees_or_deletes_what_expired(lake):
    s3 = lake.client()
    for k in ("tmp/a", "tmp/b", "keep/c", "cached/d"):
        put(s3, k, os.urandom(MIB))
    admin(lake, "ttl", "lake/tmp/", "1s", "--action", "delete")
    admin(lake, "ttl", "lake/cached/", "1s")
    assert "lake/tmp/  1s  DELETE" in admin(lake, "ttls").stdout
    assert wait_for(lambda: not (lake.folder / "tmp" / "a").exists() and not (lake.folder / "tmp" / "b").exists())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="tmp/").get("Contents", [])]
    assert keys == [], "deleted from Strata and from the under store"
    assert (lake.folder / "keep" / "c").exists() and (lake.folder / "cached" / "d").exists()
    # FREE: still there, but read from the under store again (the cache dropped it).
    time.sleep(1.5)
    before = ufs_read(lake)
    assert len(s3.get_object(Bucket="lake", Key="cached/d")["Body"].read()) == MIB
    assert ufs_read(lake) - before == MIB
    time.sleep(1.5)  # a few heartbeats, a few TTL passes
    before = ufs_read(lake)
    s3.get_object(Bucket="lake", Key="cached/d")["Body"].read()
    assert ufs_read(lake) == before, "freed once when it expired, then cached again like any object"
    s3.get_object(Bucket="lake", Key="keep/c")["Body"].read()
    assert ufs_read(lake) == before, "objects under no rule stay cached"
    admin(lake, "ttl", "lake/tmp/", "off")
    assert "lake/tmp/" not in admin(lake, "ttls").stdout
