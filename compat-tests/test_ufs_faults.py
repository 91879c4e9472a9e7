"""Faults of the under store: a cluster whose bucket is mounted on a real S3 server (moto)
behind a fault-injecting proxy (faultproxy.py). Reads retry through errors, hangs and cut
bodies and never serve or cache a partial page; writes complete or fail with an S3 error,
leaving nothing half-visible (no metadata without its bytes, no staged file)."""

import hashlib
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import BIN, moto_server, start_cluster  # noqa: E402
from faultproxy import Proxy  # noqa: E402

SECRET = "moto-secret-" + secrets.token_hex(8)
BUCKET = "flaky"
MIB = 1 << 20


def md5(b):
    return hashlib.md5(b).hexdigest()


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with open(tmp_path_factory.mktemp("moto") / "moto.log", "wb") as log, moto_server(log) as url:
        yield url


@pytest.fixture(scope="module")
def proxy(moto):
    p = Proxy(moto, seed=secrets.randbits(32)).start()
    yield p
    p.stop()
    assert not p.errors, f"the proxy itself failed: {p.errors}"


@pytest.fixture(scope="module")
def under(moto):
    """boto3 straight at the S3 server, past the proxy."""
    c = boto3.client("s3", endpoint_url=moto, aws_access_key_id="AKIDMOTO", aws_secret_access_key=SECRET,
                     region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    c.create_bucket(Bucket=BUCKET)
    return c


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, proxy, under):
    c = start_cluster(tmp_path_factory.mktemp("ufsfaults"))
    env = dict(os.environ, **c.env)
    # Short client timeouts (mount options, object_store's names) so that a hung request is
    # given up and retried within the test's bounds.
    r = subprocess.run([BIN, "admin", "mount", BUCKET, f"s3://{BUCKET}", "--master", c.master_url,
                        "--option", f"endpoint={proxy.url}", "--option", "region=us-east-1",
                        "--option", "access_key_id=AKIDMOTO", "--option", f"secret_access_key={SECRET}",
                        "--option", "timeout=2s", "--option", "connect_timeout=1s"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    yield c
    c.stop_all()


@pytest.fixture
def s3(cluster, proxy):
    proxy.clear()
    # One attempt per call: each error Strata answers is seen, and none is hidden by a retry.
    yield boto3.client("s3", endpoint_url=cluster.endpoint, aws_access_key_id=cluster.access_key,
                       aws_secret_access_key=cluster.secret_key, region_name="us-east-1",
                       config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                                     read_timeout=30, request_checksum_calculation="when_required"))
    proxy.clear()


def no_cache(s3):
    """Every GET of this client reads the under store (read type NO_CACHE)."""
    s3.meta.events.register("before-sign.s3.GetObject",
                            lambda request, **_: request.headers.__setitem__("x-strata-read-type", "NO_CACHE"))
    return s3


def seed(under, prefix, n, size):
    """`n` objects put straight into the under store; Strata finds them on lookup."""
    out = {}
    for i in range(n):
        body = os.urandom(size + i)
        under.put_object(Bucket=BUCKET, Key=f"{prefix}{i}", Body=body)
        out[f"{prefix}{i}"] = body
    return out


def get(s3, key):
    """The bytes GET serves, or the exception it ended with (a status, or a cut body)."""
    try:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as e:
        return e


def staged(under):
    return [o["Key"] for o in under.list_objects_v2(Bucket=BUCKET, Prefix="%strata/").get("Contents", [])]


def test_reads_retry_through_errors_and_hangs(s3, proxy, under):
    objects = seed(under, "retry-", 5, 2 * MIB + 100)
    s3 = no_cache(s3)
    proxy.set(error=0.25, hang=0.02, latency=(0, 0.02), methods=("GET",))
    started = time.time()
    for _ in range(2):
        for key, body in objects.items():
            got = get(s3, key)
            assert not isinstance(got, Exception), f"{key}: {got}"
            assert md5(got) == md5(body), key
    counts = proxy.reset_counts()
    assert counts.error > 0, counts
    print(f"30 page reads through {counts.error} errors and {counts.hang} hangs in {time.time() - started:.1f}s")


def test_cut_bodies_are_never_served_or_cached_as_whole(s3, proxy, under):
    objects = seed(under, "cut-", 4, 2 * MIB + 7)
    # Every answer of an object's GET is cut: nothing can be read whole.
    proxy.set(cut=1.0, methods=("GET",), path_contains=f"/{BUCKET}/cut-")
    for key, body in objects.items():
        got = get(s3, key)
        assert isinstance(got, Exception) or got == body, f"{key}: {len(got)} of {len(body)} bytes served as whole"
    assert proxy.counts.cut > 0
    # Some cut: retries read the rest.
    proxy.set(cut=0.3, methods=("GET",), path_contains=f"/{BUCKET}/cut-")
    for key, body in objects.items():
        got = get(s3, key)
        assert isinstance(got, Exception) or got == body, f"{key}: {len(got)} of {len(body)} bytes served as whole"
    proxy.clear()
    # What the cache kept is whole.
    for key, body in objects.items():
        got = get(s3, key)
        assert not isinstance(got, Exception) and md5(got) == md5(body), key


def test_gateway_reading_the_under_store_itself_aborts_a_cut_answer(cluster, s3, proxy, under):
    objects = seed(under, "direct-", 2, 3 * MIB)
    _, args, env, url = cluster.procs["worker"]
    cluster.stop("worker")
    try:
        proxy.set(cut=1.0, methods=("GET",), path_contains=f"/{BUCKET}/direct-")
        for key, body in objects.items():
            got = get(s3, key)
            assert isinstance(got, Exception) or got == body, f"{key}: {len(got)} of {len(body)} bytes"
        proxy.clear()
        for key, body in objects.items():
            got = get(s3, key)
            assert not isinstance(got, Exception) and md5(got) == md5(body), f"{key}: {got!r:.200}"
    finally:
        cluster.start("worker", args, env, url)


def test_a_put_the_under_store_refuses_fails_and_leaves_the_old_object(s3, proxy, under):
    old = os.urandom(300_000)
    s3.put_object(Bucket=BUCKET, Key="refused", Body=old)
    proxy.set(error=1.0, methods=("PUT", "POST"))
    for key, body in (("refused", os.urandom(200_000)), ("refused-new", os.urandom(200_000)),
                      ("refused-big", os.urandom(9 * MIB))):
        started = time.time()
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        took = time.time() - started
        status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status in (500, 503), e.value.response
        assert took < 20, f"{key}: the error took {took:.1f}s"
        print(f"{key}: {status} after {took:.1f}s: {e.value.response['Error']['Message']}")
    # Parts are staged in the cluster's own under store; the complete writes into the mount:
    # refused, and the upload stays open for a retry.
    proxy.clear()
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="refused-mpu")["UploadId"]
    part = s3.upload_part(Bucket=BUCKET, Key="refused-mpu", UploadId=up, PartNumber=1, Body=b"part one")
    done = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    proxy.set(error=1.0, methods=("PUT", "POST"))
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=BUCKET, Key="refused-mpu", UploadId=up, MultipartUpload=done)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    proxy.clear()
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key="refused-mpu")
    s3.complete_multipart_upload(Bucket=BUCKET, Key="refused-mpu", UploadId=up, MultipartUpload=done)
    assert get(s3, "refused-mpu") == b"part one"

    assert get(s3, "refused") == old
    assert under.get_object(Bucket=BUCKET, Key="refused")["Body"].read() == old
    for key in ("refused-new", "refused-big"):
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket=BUCKET, Key=key)
    assert staged(under) == []


def test_a_failed_move_onto_the_key_undoes_the_commit(s3, proxy, under):
    old = os.urandom(100_000)
    s3.put_object(Bucket=BUCKET, Key="unmoved", Body=old)
    # The staged bytes are written; their copy onto the key is refused.
    proxy.set(error=1.0, methods=("PUT",), path_contains=f"/{BUCKET}/unmoved")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=BUCKET, Key="unmoved", Body=os.urandom(100_000))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    proxy.clear()
    assert get(s3, "unmoved") == old
    assert under.get_object(Bucket=BUCKET, Key="unmoved")["Body"].read() == old
    assert staged(under) == []


def test_writes_through_cut_uploads_and_lost_answers(s3, proxy, under):
    proxy.set(cut=0.2, cut_up=0.2, hang=0.03, latency=(0, 0.02), methods=("PUT", "POST"))
    sent = {}
    for i in range(8):
        key = f"lossy-{i}"
        body = os.urandom(9 * MIB if i % 4 == 0 else 150_000 + i)
        try:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            sent[key] = body
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503), e.response
            sent[key] = None
    counts = proxy.reset_counts()
    assert counts.cut + counts.cut_up + counts.hang > 0, counts
    proxy.clear()
    for key, body in sent.items():
        if body is None:
            with pytest.raises(s3.exceptions.NoSuchKey):
                s3.get_object(Bucket=BUCKET, Key=key)
        else:
            assert md5(get(s3, key)) == md5(body), key
            assert md5(under.get_object(Bucket=BUCKET, Key=key)["Body"].read()) == md5(body), key
    assert staged(under) == []
    print("acknowledged", sum(b is not None for b in sent.values()), "of", len(sent), counts)


def test_a_move_whose_answers_are_lost_still_counts(s3, proxy, under):
    old, new = os.urandom(120_000), os.urandom(130_000)
    s3.put_object(Bucket=BUCKET, Key="unanswered", Body=old)
    # Every copy onto the key takes effect in the under store, and its answer is cut.
    proxy.set(cut=1.0, methods=("PUT",), path_contains=f"/{BUCKET}/unanswered")
    try:
        s3.put_object(Bucket=BUCKET, Key="unanswered", Body=new)
        acknowledged = True
    except ClientError:
        acknowledged = False
    assert proxy.counts.cut > 0
    proxy.clear()
    served = get(s3, "unanswered")
    in_store = under.get_object(Bucket=BUCKET, Key="unanswered")["Body"].read()
    assert served == in_store, "GET and the under store disagree"
    assert served == (new if acknowledged else old)
    assert acknowledged, "the copy is in place: the write is done"
    assert staged(under) == []
