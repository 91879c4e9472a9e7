"""The cache through a cluster, with a mounted local folder as the under store: cold reads fill
only the pages they need, once however many readers wait; reads go on when workers die."""

import hashlib
import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import free_port, start_cluster
from test_mounts import admin

MIB = 1 << 20


def metric(url, name):
    text = requests.get(url + "/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """A cluster of one master, two workers and two gateways, and a folder mounted as `cold`."""
    tmp = tmp_path_factory.mktemp("cache")
    c = start_cluster(tmp)
    port = free_port()
    margs = ["--master", c.master_url]
    c.start("worker2", ["worker", "--data-dir", str(c.data_dir / "worker2"), "--listen", f"127.0.0.1:{port}", *margs],
            {}, f"http://127.0.0.1:{port}")
    folder = tmp / "lake"
    folder.mkdir()
    admin(c, "mount", "cold", f"file://{folder}", "--sync-interval", "0")
    c.folder = folder
    c.workers = [c.procs["worker"][3], c.procs["worker2"][3]]
    deadline = time.time() + 10
    while len(re.findall(r" live ", admin(c, "report").stdout)) < 2 and time.time() < deadline:
        time.sleep(0.2)
    yield c
    c.stop_all()


def ufs_read(c):
    return sum(metric(w, "strata_worker_ufs_bytes_read_total") for w in c.workers if alive(c, w))


def alive(c, url):
    name = "worker" if url == c.workers[0] else "worker2"
    return c.procs[name][0].poll() is None


def test_many_readers_of_one_cold_object_read_it_once(cold):
    data = os.urandom(24 * MIB + 12345)
    (cold.folder / "big.bin").write_bytes(data)
    s3 = cold.client(max_pool_connections=32)
    before = ufs_read(cold)
    want = hashlib.sha256(data).hexdigest()

    def read(_):
        return hashlib.sha256(s3.get_object(Bucket="cold", Key="big.bin")["Body"].read()).hexdigest()

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(read, range(16)))
    assert got == [want] * 16
    assert ufs_read(cold) - before == len(data), "each page came from the under store exactly once"
    # Warm now: reading again costs the under store nothing.
    read(0)
    assert ufs_read(cold) - before == len(data)


def test_a_small_range_of_a_huge_object_reads_about_one_page(cold):
    path = cold.folder / "huge.bin"
    with open(path, "wb") as f:
        f.truncate(10 << 30)  # 10 GiB, sparse
        f.seek(5 << 30)
        f.write(b"x" * 200_000)
    s3 = cold.client()
    before = ufs_read(cold)
    got = s3.get_object(Bucket="cold", Key="huge.bin", Range=f"bytes={(5 << 30) + 1000}-{(5 << 30) + 1000 + 102399}")
    assert got["Body"].read() == b"x" * 102400
    assert ufs_read(cold) - before == MIB, "one 1 MiB page, not a block or the object"


def test_read_types(cold):
    (cold.folder / "types.bin").write_bytes(os.urandom(3 * MIB))
    s3 = cold.client()

    def get(read_type):
        def add(request, **_):
            request.headers["x-strata-read-type"] = read_type
        s3.meta.events.register_first("before-sign.s3.GetObject", add)
        try:
            return s3.get_object(Bucket="cold", Key="types.bin")["Body"].read()
        finally:
            s3.meta.events.unregister("before-sign.s3.GetObject", add)

    before = ufs_read(cold)
    get("NO_CACHE")
    get("NO_CACHE")
    assert ufs_read(cold) - before == 6 * MIB, "NO_CACHE reads never fill the cache"
    get("CACHE")
    get("CACHE_PROMOTE")
    assert ufs_read(cold) - before == 9 * MIB
    with pytest.raises(s3.exceptions.ClientError) as e:
        get("SOMETIMES")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"


def test_load_free_and_pin(cold):
    for name in ("a", "b", "c"):
        (cold.folder / "warm").mkdir(exist_ok=True)
        (cold.folder / "warm" / name).write_bytes(os.urandom(2 * MIB))
    s3 = cold.client()
    before = ufs_read(cold)
    r = admin(cold, "load", "cold/warm/")
    assert "loaded 3 objects, 6.0 MiB" in r.stdout and "6.0 MiB read from the under store" in r.stdout, r.stdout
    assert ufs_read(cold) - before == 6 * MIB
    for name in ("a", "b", "c"):
        s3.get_object(Bucket="cold", Key=f"warm/{name}")["Body"].read()
    assert ufs_read(cold) - before == 6 * MIB, "loaded data is served from the cache"
    r = admin(cold, "load", "cold/warm/")
    assert "0 B read from the under store, 6.0 MiB were cached already" in r.stdout, r.stdout

    r = admin(cold, "pin", "cold/warm/a")
    assert "1 objects" in r.stdout, r.stdout
    time.sleep(1.5)  # workers learn the pins with their next heartbeat
    r = admin(cold, "free", "cold/warm/")
    assert "freed 4.0 MiB of 3 objects" in r.stdout, r.stdout
    s3.get_object(Bucket="cold", Key="warm/a")["Body"].read()
    assert ufs_read(cold) - before == 6 * MIB, "the pinned object stayed"
    s3.get_object(Bucket="cold", Key="warm/b")["Body"].read()
    assert ufs_read(cold) - before == 8 * MIB, "a freed object is read again"
    admin(cold, "unpin", "cold/warm/a")
    time.sleep(1.5)
    assert "freed 4.0 MiB" in admin(cold, "free", "cold/warm/").stdout


def cached_bytes(c):
    return sum(metric(w, "strata_worker_cache_bytes") for w in c.workers if alive(c, w))


def test_replaced_and_deleted_objects_leave_the_cache_but_not_a_read_under_way(cold):
    s3 = cold.client()
    old = os.urandom(48 * MIB)
    s3.put_object(Bucket="cold", Key="dead/replaced", Body=old)
    s3.put_object(Bucket="cold", Key="dead/deleted", Body=os.urandom(8 * MIB))
    assert s3.get_object(Bucket="cold", Key="dead/replaced")["Body"].read() == old  # every page cached
    time.sleep(1.5)  # the gauges follow the heartbeats
    full = cached_bytes(cold)
    assert full >= 56 * MIB, full

    # A read of the old bytes under way when they are replaced ends with them all the same.
    body = s3.get_object(Bucket="cold", Key="dead/replaced")["Body"]
    head = body.read(MIB)
    s3.put_object(Bucket="cold", Key="dead/replaced", Body=b"new")
    s3.delete_object(Bucket="cold", Key="dead/deleted")
    time.sleep(5)  # past the master's grace and a heartbeat
    assert cached_bytes(cold) > full - 16 * MIB, "the pages of the read under way stay"
    assert hashlib.md5(head + body.read()).digest() == hashlib.md5(old).digest()
    body.close()

    deadline = time.time() + 15
    while cached_bytes(cold) > full - 50 * MIB and time.time() < deadline:
        time.sleep(0.5)
    assert cached_bytes(cold) <= full - 50 * MIB, (full, cached_bytes(cold))
    assert s3.get_object(Bucket="cold", Key="dead/replaced")["Body"].read() == b"new"


def test_a_slow_read_across_workers_ends_with_the_bytes_it_began_though_they_are_replaced(tmp_path):
    """A GET reads an object's blocks one after another, here from two workers, each worker's
    next block a while after its last: a worker keeps the pages of a version it read lately."""
    c = start_cluster(tmp_path, env={"STRATA_BLOCK_SIZE": str(4 * MIB)})
    try:
        port = free_port()
        c.start("worker2", ["worker", "--data-dir", str(c.data_dir / "worker2"), "--listen", f"127.0.0.1:{port}",
                            "--master", c.master_url], {}, f"http://127.0.0.1:{port}")
        deadline = time.time() + 10
        while len(re.findall(r" live ", admin(c, "report").stdout)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        workers = [c.procs["worker"][3], c.procs["worker2"][3]]
        s3 = c.client()
        s3.create_bucket(Bucket="slow")
        old = os.urandom(40 * MIB)
        s3.put_object(Bucket="slow", Key="obj", Body=old)
        assert s3.get_object(Bucket="slow", Key="obj")["Body"].read() == old
        time.sleep(1.5)  # the gauges follow the heartbeats
        assert all(metric(w, "strata_worker_cache_bytes") > 0 for w in workers), "blocks on both workers"

        body = s3.get_object(Bucket="slow", Key="obj")["Body"]
        got = [body.read(MIB)]
        s3.put_object(Bucket="slow", Key="obj", Body=b"new")
        while len(got) < 40:  # about 6 s: past the master's grace, over many heartbeats
            time.sleep(0.15)
            got.append(body.read(MIB))
        assert body.read() == b""
        assert hashlib.md5(b"".join(got)).digest() == hashlib.md5(old).digest()
        assert s3.get_object(Bucket="slow", Key="obj")["Body"].read() == b"new"
    finally:
        c.stop_all()


def test_reads_go_on_when_workers_die(cold):
    objects = {}
    for i in range(6):
        data = os.urandom(5 * MIB + i)
        (cold.folder / f"obj{i}").write_bytes(data)
        objects[f"obj{i}"] = hashlib.sha256(data).hexdigest()
    s3 = cold.client()
    failures, reads, stop = [], [0], threading.Event()

    def loop():
        while not stop.is_set():
            for key, want in objects.items():
                try:
                    body = s3.get_object(Bucket="cold", Key=key)["Body"].read()
                    assert hashlib.sha256(body).hexdigest() == want, f"{key}: wrong bytes"
                    reads[0] += 1
                except AssertionError:
                    raise
                except Exception as e:  # a stream cut by the kill
                    failures.append((time.time(), repr(e)[:200]))

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    time.sleep(1.5)
    cold.procs["worker2"][0].send_signal(signal.SIGKILL)
    killed = time.time()
    time.sleep(3)
    at_one = reads[0]
    time.sleep(2)
    assert reads[0] > at_one, "reads go on with one worker"
    # The last worker too: the gateway reads the under store itself.
    cold.procs["worker"][0].send_signal(signal.SIGKILL)
    time.sleep(3)
    at_none = reads[0]
    time.sleep(2)
    stop.set()
    t.join(timeout=60)
    assert reads[0] > at_none, f"reads go on with no worker; failures: {failures[-3:]}"
    late = [f for f in failures if f[0] > killed + 12]
    assert not late, f"requests failed long after the kills: {late[:3]}"
    gw = cold.endpoint
    assert metric(gw, "strata_gateway_direct_reads_total") > 0
