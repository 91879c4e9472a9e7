"""A worker serving S3 itself (`strata worker --s3-listen`): the same S3 as a gateway's, its own
blocks read in process, and read-after-write with the cluster's other gateways."""

import hashlib
import json
import os
import secrets
import subprocess
import time

import botocore
import pytest

from conftest import BIN, free_port, start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two workers, the first serving S3, and 1 MiB blocks: an object of a few MiB has blocks
    on both."""
    tmp = tmp_path_factory.mktemp("worker-s3")
    c = start_cluster(tmp, worker_s3=True, env={"STRATA_BLOCK_SIZE": "1MiB"})
    port = free_port()
    c.start("worker2", ["worker", "--data-dir", str(tmp / "worker2"), "--listen", f"127.0.0.1:{port}",
                        "--master", c.master_url], {}, f"http://127.0.0.1:{port}")
    time.sleep(2.5)  # every S3 process refreshes its list of workers within 2 s
    yield c
    c.stop_all()


def access_lines(c, key):
    deadline = time.time() + 5
    while True:
        lines = [json.loads(line) for line in c.access_log.read_text().splitlines() if line.strip()]
        found = [line for line in lines if line["key"] == key]
        if found or time.time() > deadline:
            return found
        time.sleep(0.1)


def test_writes_through_either_are_read_at_once_through_the_other(cluster):
    on_worker, on_gateway = cluster.client(cluster.endpoints[0]), cluster.client(cluster.endpoints[1])
    on_worker.create_bucket(Bucket="ws3-raw")
    for i in range(40):
        writer, reader = (on_worker, on_gateway) if i % 2 == 0 else (on_gateway, on_worker)
        key = f"k{i % 4}"
        body = secrets.token_bytes(1000 + i)
        writer.put_object(Bucket="ws3-raw", Key=key, Body=body)
        assert reader.get_object(Bucket="ws3-raw", Key=key)["Body"].read() == body
    writer.delete_object(Bucket="ws3-raw", Key="k0")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        reader.head_object(Bucket="ws3-raw", Key="k0")
    assert e.value.response["Error"]["Code"] == "404"


def test_the_workers_own_blocks_are_read_in_process_and_the_others_over_http(cluster, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(24 << 20))
    cluster.aws("s3", "mb", "s3://ws3-big")
    cluster.aws("s3", "cp", str(src), "s3://ws3-big/obj", "--only-show-errors")
    back = tmp_path / "back.bin"
    # Through the gateway first: the parts are not cached as they come, that read fills the cache.
    for endpoint in reversed(cluster.endpoints):
        cluster.aws("s3", "cp", "s3://ws3-big/obj", str(back), "--only-show-errors", endpoint=endpoint)
        assert hashlib.md5(back.read_bytes()).digest() == hashlib.md5(src.read_bytes()).digest()
    s3 = cluster.client(cluster.endpoints[0])
    data = src.read_bytes()
    for block in range(24):
        r = s3.get_object(Bucket="ws3-big", Key="obj", Range=f"bytes={block << 20}-{((block + 1) << 20) - 1}")
        assert r["Body"].read() == data[block << 20:(block + 1) << 20]
    ranged = [line for line in access_lines(cluster, "obj") if line["op"] == "GetObject" and line["bytes_out"] == 1 << 20]
    # A worker notes its cache hits into the request only when called in the same process:
    # through the HTTP hop the gateway knows just that "a worker" served the bytes. A block of
    # the other worker taken for this one's would be filled from the under store here.
    sources = [line["source"] for line in ranged]
    assert len(sources) == 24 and set(sources) == {"cache", "worker"}, sources


def test_the_workers_s3_checks_signatures_like_a_gateway(cluster):
    bad = cluster.client(cluster.endpoints[0])
    bad._request_signer._credentials.secret_key = "not-the-secret"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.list_buckets()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_the_report_says_which_worker_serves_s3_and_where(cluster):
    r = subprocess.run([BIN, "admin", "report", "--master", cluster.master_url], env=dict(os.environ, **cluster.env),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "workers: 2" in r.stdout and r.stdout.count("serves S3 at") == 1, r.stdout
    assert f"serves S3 at {cluster.endpoints[0]}\n" in r.stdout, r.stdout


def test_a_workers_s3_port_serves_https_with_its_own_certificate_and_its_internal_port_stays_plain(cluster, tmp_path):
    import boto3
    import requests
    from botocore.config import Config
    from tls_pki import Pki, peer_serial, wait_https

    pki = Pki(tmp_path / "pki")
    crt, key, serial = pki.issue("worker-s3")
    port, s3port = free_port(), free_port()
    internal = f"http://127.0.0.1:{port}"
    p = cluster.start("worker3", ["worker", "--data-dir", str(tmp_path / "worker3"), "--listen", f"127.0.0.1:{port}",
                                  "--master", cluster.master_url, "--s3-listen", f"127.0.0.1:{s3port}",
                                  "--s3-tls-cert", str(crt), "--s3-tls-key", str(key)], {}, internal)
    try:
        endpoint = f"https://127.0.0.1:{s3port}"
        wait_https(endpoint, p, "worker3's S3 port", pki.ca_path)
        assert peer_serial("127.0.0.1", s3port, pki.ca_path) == serial
        with pytest.raises(requests.RequestException):
            requests.get(endpoint.replace("https:", "http:") + "/readyz", timeout=5)
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=cluster.access_key,
                          aws_secret_access_key=cluster.secret_key, region_name="us-east-1", verify=str(pki.ca_path),
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        s3.create_bucket(Bucket="ws3-tls")
        body = os.urandom(3 << 20)
        s3.put_object(Bucket="ws3-tls", Key="k", Body=body)
        assert s3.get_object(Bucket="ws3-tls", Key="k")["Body"].read() == body
        # Gateways still reach every worker, this one too, over plain HTTP.
        assert cluster.client(cluster.endpoints[1]).get_object(Bucket="ws3-tls", Key="k")["Body"].read() == body
        assert requests.get(internal + "/readyz", timeout=5).status_code == 200
        r = subprocess.run([BIN, "admin", "report", "--master", cluster.master_url],
                           env=dict(os.environ, **cluster.env), capture_output=True, text=True, timeout=30)
        assert f"serves S3 at {endpoint}\n" in r.stdout, r.stdout
    finally:
        cluster.stop("worker3")
