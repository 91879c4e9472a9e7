"""The gateways' metadata cache stays exact: a cluster of one master, one worker and two
gateways; a writer on gateway A overwrites objects while readers on gateway B check that no
GET or HEAD answers a version older than the last one A acknowledged before that read began;
ACL changes through A hold on B at once; a gateway that stops (SIGSTOP) is cut off and waited
out, never serving stale metadata when it resumes. Bounded to well under a minute."""

import hashlib
import os
import signal
import threading
import time

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import start_cluster

LOAD_SECONDS = 8


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("metacache"))
    yield c
    c.stop_all()


def cache_hits(endpoint):
    text = requests.get(endpoint + "/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("strata_gateway_meta_cache_hits_total"))


def test_reads_on_b_never_go_back_behind_writes_acknowledged_on_a(cluster):
    a, b = cluster.client(cluster.endpoints[0]), cluster.client(cluster.endpoints[1])
    bucket = "metacache-load"
    a.create_bucket(Bucket=bucket)
    keys = [f"k{i}" for i in range(4)]
    acked = {k: 0 for k in keys}  # the last version of each key that A acknowledged
    etags = {hashlib.md5(b"0").hexdigest(): 0}
    for k in keys:
        a.put_object(Bucket=bucket, Key=k, Body=b"0")
    stop = time.time() + LOAD_SECONDS
    errors, reads = [], [0]
    hits_before = cache_hits(cluster.endpoints[1])

    def writer():
        n = 0
        while time.time() < stop and not errors:
            n += 1
            etags[hashlib.md5(str(n).encode()).hexdigest()] = n
            for k in keys:
                a.put_object(Bucket=bucket, Key=k, Body=str(n).encode())
                acked[k] = n

    def reader(i):
        r = cluster.client(cluster.endpoints[1])
        while time.time() < stop and not errors:
            k = keys[reads[0] % len(keys)]
            floor = acked[k]
            try:
                if i % 2:
                    got = int(r.get_object(Bucket=bucket, Key=k)["Body"].read())
                else:
                    got = etags[r.head_object(Bucket=bucket, Key=k)["ETag"].strip('"')]
            except Exception as e:  # noqa: BLE001 - any failure is reported
                errors.append(f"read {k}: {e!r}")
                return
            reads[0] += 1
            if got < floor:
                errors.append(f"{k}: gateway B answered version {got} after A acknowledged {floor}")

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert reads[0] > 100, f"only {reads[0]} reads"
    assert min(acked.values()) > 5, acked
    # The reads were served from the cache (not only from the master).
    assert cache_hits(cluster.endpoints[1]) > hits_before

    # A delete through A is seen on B at once, for a key B has cached.
    b.get_object(Bucket=bucket, Key="k0")
    b.get_object(Bucket=bucket, Key="k0")
    a.delete_object(Bucket=bucket, Key="k0")
    with pytest.raises(ClientError) as e:
        b.head_object(Bucket=bucket, Key="k0")
    assert e.value.response["Error"]["Code"] == "404"


def test_an_acl_change_on_a_holds_on_b_at_once(cluster):
    a = cluster.client(cluster.endpoints[0])
    a.create_bucket(Bucket="metacache-acl")
    a.put_object(Bucket="metacache-acl", Key="o", Body=b"data", ACL="public-read")
    url = f"{cluster.endpoints[1]}/metacache-acl/o"
    for _ in range(3):
        assert requests.get(url).status_code == 200
    a.put_object_acl(Bucket="metacache-acl", Key="o", ACL="private")
    assert requests.get(url).status_code == 403
    a.put_object_acl(Bucket="metacache-acl", Key="o", ACL="public-read")
    assert requests.get(url).status_code == 200


def test_a_stopped_gateway_is_waited_out_and_serves_no_stale_data_after(cluster):
    a, b = cluster.client(cluster.endpoints[0]), cluster.client(cluster.endpoints[1])
    a.create_bucket(Bucket="metacache-stop")
    a.put_object(Bucket="metacache-stop", Key="o", Body=b"1")
    for _ in range(3):
        assert b.get_object(Bucket="metacache-stop", Key="o")["Body"].read() == b"1"
    gw_b = cluster.procs["gateway2"][0]
    os.kill(gw_b.pid, signal.SIGSTOP)
    try:
        t0 = time.time()
        a.put_object(Bucket="metacache-stop", Key="o", Body=b"2")
        took = time.time() - t0
    finally:
        os.kill(gw_b.pid, signal.SIGCONT)
    # The master cut B off and waited out its lease (about 1.6 s) before acknowledging.
    assert took < 5, f"the PUT took {took:.1f}s with a gateway stopped"
    assert b.get_object(Bucket="metacache-stop", Key="o")["Body"].read() == b"2"
    # B watches again and caches again.
    hits = cache_hits(cluster.endpoints[1])
    deadline = time.time() + 10
    while cache_hits(cluster.endpoints[1]) <= hits:
        assert time.time() < deadline, "gateway B never used its cache again"
        assert b.get_object(Bucket="metacache-stop", Key="o")["Body"].read() == b"2"
        time.sleep(0.1)


def test_a_master_restart_drops_the_caches(cluster):
    a, b = cluster.client(cluster.endpoints[0]), cluster.client(cluster.endpoints[1])
    a.create_bucket(Bucket="metacache-restart")
    a.put_object(Bucket="metacache-restart", Key="o", Body=b"before")
    assert b.get_object(Bucket="metacache-restart", Key="o")["Body"].read() == b"before"
    cluster.restart("master")
    deadline = time.time() + 20
    while True:
        try:
            a.put_object(Bucket="metacache-restart", Key="o", Body=b"after")
            break
        except ClientError:
            assert time.time() < deadline
            time.sleep(0.2)
    assert b.get_object(Bucket="metacache-restart", Key="o")["Body"].read() == b"after"
