"""Mounts of a real S3 server (moto_server, started here on 127.0.0.1) through a cluster: data that
is already there, changes made behind Strata's back, writes through Strata, read-only mounts."""

import hashlib
import os
import secrets
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from conftest import BIN, moto_server, start_cluster

SECRET = "moto-secret-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with open(tmp_path_factory.mktemp("moto") / "moto.log", "wb") as log, moto_server(log) as url:
        yield url


@pytest.fixture(scope="module")
def under(moto):
    """boto3 straight at the S3 server: what is 'behind Strata's back'."""
    return boto3.client("s3", endpoint_url=moto, aws_access_key_id="AKIDMOTO", aws_secret_access_key=SECRET,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("mounts"))
    yield c
    c.stop_all()


def admin(c, *args, check=True):
    env = dict(os.environ, **c.env)
    r = subprocess.run([BIN, "admin", *args, "--master", c.master_url], env=env, capture_output=True, text=True,
                       timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"strata admin {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def mount(c, moto, name, s3_bucket, *extra):
    return admin(c, "mount", name, f"s3://{s3_bucket}", "--option", f"endpoint={moto}", "--option", "region=us-east-1",
                 "--option", "access_key_id=AKIDMOTO", "--option", f"secret_access_key={SECRET}", *extra)


def keys(s3, bucket, **kw):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def test_existing_data_changes_behind_strata_and_writes_through(cluster, moto, under):
    under.create_bucket(Bucket="lake")
    big = os.urandom(3 << 20)
    under.put_object(Bucket="lake", Key="a.txt", Body=b"first a")
    under.put_object(Bucket="lake", Key="dir/b.bin", Body=big)
    under.put_object(Bucket="lake", Key="dir/sub/c.txt", Body=b"c")
    r = mount(cluster, moto, "lake", "lake", "--sync-interval", "0")
    assert "lake" in r.stdout and SECRET not in r.stdout, r.stdout
    s3 = cluster.client()

    # What was there is listed and read through Strata.
    assert keys(s3, "lake") == ["a.txt", "dir/b.bin", "dir/sub/c.txt"]
    top = s3.list_objects_v2(Bucket="lake", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["dir/"]
    assert [o["Key"] for o in top["Contents"]] == ["a.txt"]
    assert s3.get_object(Bucket="lake", Key="dir/b.bin")["Body"].read() == big
    part = s3.get_object(Bucket="lake", Key="dir/b.bin", Range="bytes=1048570-1048590")["Body"].read()
    assert part == big[1048570:1048591]
    head = s3.head_object(Bucket="lake", Key="a.txt")
    assert head["ContentLength"] == 7

    # Changed behind Strata's back: the change shows (sync interval 0), never the old bytes.
    under.put_object(Bucket="lake", Key="a.txt", Body=b"second version of a")
    under.delete_object(Bucket="lake", Key="dir/sub/c.txt")
    under.put_object(Bucket="lake", Key="new.txt", Body=b"new")
    assert s3.get_object(Bucket="lake", Key="a.txt")["Body"].read() == b"second version of a"
    assert keys(s3, "lake") == ["a.txt", "dir/b.bin", "new.txt"]
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="lake", Key="dir/sub/c.txt")
    # A lookup miss asks the under store, with no listing first.
    under.put_object(Bucket="lake", Key="only/looked/up", Body=b"found by lookup")
    assert s3.get_object(Bucket="lake", Key="only/looked/up")["Body"].read() == b"found by lookup"

    # Written through Strata: a plain object in the under store, the same bytes.
    s3.put_object(Bucket="lake", Key="from-strata.txt", Body=b"through strata")
    assert under.get_object(Bucket="lake", Key="from-strata.txt")["Body"].read() == b"through strata"
    body = os.urandom(6 << 20)
    mp = s3.create_multipart_upload(Bucket="lake", Key="multi.bin")
    parts = []
    for n, chunk in enumerate((body[:5 << 20], body[5 << 20:]), 1):
        r = s3.upload_part(Bucket="lake", Key="multi.bin", UploadId=mp["UploadId"], PartNumber=n, Body=chunk)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket="lake", Key="multi.bin", UploadId=mp["UploadId"],
                                 MultipartUpload={"Parts": parts})
    assert hashlib.md5(under.get_object(Bucket="lake", Key="multi.bin")["Body"].read()).digest() == \
        hashlib.md5(body).digest()
    # Read back through Strata (the copy onto the key gave it a new ETag in S3: still served).
    assert s3.get_object(Bucket="lake", Key="multi.bin")["Body"].read() == body
    s3.delete_object(Bucket="lake", Key="from-strata.txt")
    with pytest.raises(under.exceptions.NoSuchKey):
        under.get_object(Bucket="lake", Key="from-strata.txt")
    # Strata's own staging never shows, in S3 or in listings.
    assert not [k for k in keys(under, "lake") if k.startswith("%strata")]
    assert keys(s3, "lake") == ["a.txt", "dir/b.bin", "multi.bin", "new.txt", "only/looked/up"]

    # Secrets: masked in the admin listing and never in the master's log.
    r = admin(cluster, "mounts")
    assert "lake" in r.stdout and SECRET not in r.stdout and "****" in r.stdout, r.stdout
    assert SECRET not in (cluster.logs / "master.log").read_text()

    # Unmounted: the bucket is gone from Strata, the data stays in S3.
    admin(cluster, "unmount", "lake")
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_bucket(Bucket="lake")
    assert under.get_object(Bucket="lake", Key="new.txt")["Body"].read() == b"new"


def test_read_only_mount_refuses_writes(cluster, moto, under):
    under.create_bucket(Bucket="archive")
    under.put_object(Bucket="archive", Key="kept", Body=b"kept")
    mount(cluster, moto, "archive", "archive", "--read-only")
    s3 = cluster.client()
    assert s3.get_object(Bucket="archive", Key="kept")["Body"].read() == b"kept"
    for write in (lambda: s3.put_object(Bucket="archive", Key="x", Body=b"x"),
                  lambda: s3.delete_object(Bucket="archive", Key="kept"),
                  lambda: s3.create_multipart_upload(Bucket="archive", Key="y")):
        with pytest.raises(s3.exceptions.ClientError) as e:
            write()
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert keys(under, "archive") == ["kept"]


def test_listing_merges_the_under_store_once_the_interval_passed(cluster, moto, under):
    under.create_bucket(Bucket="lazy")
    under.put_object(Bucket="lazy", Key="one", Body=b"1")
    mount(cluster, moto, "lazy", "lazy", "--sync-interval", "3s")
    s3 = cluster.client()
    assert keys(s3, "lazy") == ["one"]
    under.put_object(Bucket="lazy", Key="two", Body=b"2")
    assert keys(s3, "lazy") == ["one"], "within the interval the listing is the metadata's"
    time.sleep(3.2)
    assert keys(s3, "lazy") == ["one", "two"]


def test_bad_mounts_are_refused(cluster, moto):
    r = admin(cluster, "mount", "nope", "s3://no-such-bucket", "--option", f"endpoint={moto}",
              "--option", "access_key_id=AKIDMOTO", "--option", f"secret_access_key={SECRET}", check=False)
    assert r.returncode != 0 and "cannot" in r.stderr and SECRET not in r.stderr, r.stderr
    # HDFS (this build has it): a namenode that cannot be reached is refused with a reason.
    r = admin(cluster, "mount", "nope3", "hdfs://127.0.0.1:1/data", check=False)
    assert r.returncode != 0 and "nope3" in r.stderr and "hdfs://127.0.0.1:1/data" in r.stderr, r.stderr
    r = admin(cluster, "mount", "nope2", "ftp://host/x", check=False)
    assert r.returncode != 0 and "not supported" in r.stderr, r.stderr
    s3 = cluster.client()
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_bucket(Bucket="nope")


def test_a_large_mount_is_synced_apart_from_the_listing_that_started_it(tmp_path, moto, under):
    """The first listing of a mount records every key of its under store. When that outlasts the
    listing's wait (0 here) the client gets 503 saying how far it got, the sync goes on, and
    `strata admin sync` joins it; later listings are whole."""
    c = start_cluster(tmp_path, env={"STRATA_LISTING_SYNC_WAIT_MS": "0"})
    try:
        under.create_bucket(Bucket="big")
        names = [f"d{i % 7}/k{i:05}" for i in range(1500)]
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: under.put_object(Bucket="big", Key=k, Body=k.encode()), names))
        mount(c, moto, "big", "big")
        s3 = c.client()
        once = boto3.client("s3", endpoint_url=c.endpoint, aws_access_key_id=c.access_key,
                            aws_secret_access_key=c.secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))
        with pytest.raises(s3.exceptions.ClientError) as e:
            once.list_objects_v2(Bucket="big")
        err = e.value.response["Error"]
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert err["Code"] == "ServiceUnavailable" and "keys listed" in err["Message"], err
        r = admin(c, "sync", "big")
        assert "synced big: 1500 keys listed" in r.stdout, r.stdout
        assert keys(s3, "big") == sorted(names)
        r = c.aws("s3", "ls", "--recursive", "s3://big/")
        assert len(r.stdout.splitlines()) == 1500
        assert s3.get_object(Bucket="big", Key="d3/k00003")["Body"].read() == b"d3/k00003"
        # Changes behind Strata's back: a forced sync of a prefix records them.
        under.delete_object(Bucket="big", Key="d1/k00001")
        under.put_object(Bucket="big", Key="d1/new", Body=b"n")
        r = admin(c, "sync", "big/d1/")
        assert "synced big/d1/: 215 keys listed, 2 recorded, changed or removed" in r.stdout, r.stdout
        now = keys(s3, "big")  # not due again yet: the metadata as the sync of d1/ left it
        assert "d1/k00001" not in now and "d1/new" in now and len(now) == 1500
        import urllib.request
        metrics = urllib.request.urlopen(c.master_url + "/metrics").read().decode()
        assert "strata_master_syncs_running 0" in metrics
        assert 'strata_master_sync_changes_total{bucket="big",kind="listing"} 1502' in metrics, metrics
        assert 'strata_master_rpc_seconds_count{rpc="sync_mount"} 2' in metrics, "two syncs ran to their end"
        assert 'strata_master_rpc_seconds_bucket{rpc="sync_mount",le="3600"} 2' in metrics, "long syncs have buckets"
        r = admin(c, "sync", "nosuch", check=False)
        assert r.returncode != 0 and "nosuch" in r.stderr, r.stderr
        metrics = urllib.request.urlopen(c.master_url + "/metrics").read().decode()
        assert 'strata_master_rpc_errors_total{rpc="sync_mount",kind="NoSuchBucket"} 1' in metrics, metrics
    finally:
        c.stop_all()
