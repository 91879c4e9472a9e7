"""HTTPS: `strata local` and a cluster serving TLS with certificates from a CA made here (see
tls_pki.py). Real boto3, aws cli and curl (HTTP/2 by ALPN) over it; botocore's default upload over
HTTPS (aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER) checked from the request it sent; a
certificate rotated under a client that keeps reading (SIGHUP, and the reload poll); a cluster
whose master and worker speak mutual TLS with the gateway."""

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time

import boto3
import botocore.exceptions
import certifi
import pytest
import requests
from botocore.config import Config

from conftest import BIN, Cluster, free_port
from tls_pki import Pki, launch, peer_serial, start_https_local


def client(endpoint, c, ca, **config):
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key,
        region_name="us-east-1", verify=str(ca),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def local(pki, tmp_path_factory):
    """`strata local` on HTTPS (reloaded on SIGHUP only) with plain HTTP on a second port."""
    c = start_https_local(tmp_path_factory.mktemp("tls-local"), pki,
                          {"STRATA_TLS__RELOAD_SECS": "0", "STRATA_REQUEST_TIMEOUT_MS": "4000"})
    yield c
    c.stop_all()


@pytest.fixture
def bucket(local, pki):
    name = "tls-" + secrets.token_hex(5)
    client(local.endpoint, local, pki.ca_path).create_bucket(Bucket=name)
    return name


def test_boto3_put_over_https_is_aws_chunked_with_a_trailer_and_stored_exactly(local, pki, bucket):
    s3 = client(local.endpoint, local, pki.ca_path)
    sent = []
    s3.meta.events.register("before-send.s3.PutObject", lambda request, **kw: sent.append(dict(request.headers)))
    data = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=bucket, Key="chunked.bin", Body=data)
    h = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in sent[-1].items()}
    assert h["content-encoding"] == "aws-chunked", h
    assert h["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", h
    assert h["x-amz-trailer"] == "x-amz-checksum-crc32" and h["x-amz-decoded-content-length"] == str(len(data)), h
    got = s3.get_object(Bucket=bucket, Key="chunked.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ContentLength"] == len(data) and got.get("ChecksumCRC32"), got
    # The plain HTTP port serves the same endpoint.
    plain = client(local.plain, local, pki.ca_path)
    assert plain.get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == data


def test_a_policy_on_aws_secure_transport_tells_https_from_plain_http(local, pki, bucket):
    s3 = client(local.endpoint, local, pki.ca_path)
    s3.put_object(Bucket=bucket, Key="secure.txt", Body=b"only over TLS")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    assert s3.get_object(Bucket=bucket, Key="secure.txt")["Body"].read() == b"only over TLS"
    plain = client(local.plain, local, pki.ca_path)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        plain.get_object(Bucket=bucket, Key="secure.txt")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    s3.delete_bucket_policy(Bucket=bucket)
    assert plain.get_object(Bucket=bucket, Key="secure.txt")["Body"].read() == b"only over TLS"


def test_boto3_multipart_over_https(local, pki, bucket):
    s3 = client(local.endpoint, local, pki.ca_path)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1024 * 1024 + 3)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp.bin", ChecksumAlgorithm="CRC32")
    done = []
    for n, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp.bin", UploadId=up["UploadId"], PartNumber=n, Body=p,
                           ChecksumAlgorithm="CRC32")
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp.bin", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": done})
    assert s3.get_object(Bucket=bucket, Key="mp.bin")["Body"].read() == b"".join(parts)


def test_aws_cli_over_https_with_a_ca_bundle(local, pki, bucket, tmp_path):
    env = {"AWS_CA_BUNDLE": str(pki.ca_path)}
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(9 * 1024 * 1024 + 5))  # over the cli's 8 MiB multipart threshold
    local.aws("s3", "cp", str(src), f"s3://{bucket}/cli/big.bin", env=env)
    local.aws("s3", "cp", f"s3://{bucket}/cli/big.bin", str(tmp_path / "back.bin"), env=env)
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello over TLS\n" * 100)
    r = local.aws("--debug", "s3api", "put-object", "--bucket", bucket, "--key", "cli/small.txt",
                  "--body", str(small), env=env)
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in r.stderr and "aws-chunked" in r.stderr
    s3 = client(local.endpoint, local, pki.ca_path)
    assert s3.get_object(Bucket=bucket, Key="cli/small.txt")["Body"].read() == small.read_bytes()
    # With the public CAs only, the cli refuses the certificate.
    r = local.aws("s3", "ls", f"s3://{bucket}", check=False, env={"AWS_CA_BUNDLE": certifi.where(), "AWS_MAX_ATTEMPTS": "1"})
    assert r.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr


def test_http2_and_http1_by_alpn(local, pki, bucket, tmp_path):
    s3 = client(local.endpoint, local, pki.ca_path)
    data = os.urandom(2 * 1024 * 1024 + 1)
    s3.put_object(Bucket=bucket, Key="h2.bin", Body=data)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "h2.bin"}, ExpiresIn=300)
    for flag, want in (("--http2", "2"), ("--http1.1", "1.1")):
        out = tmp_path / f"h{want}.bin"
        r = subprocess.run(["curl", "-sS", flag, "--cacert", str(pki.ca_path), "-o", str(out),
                            "-w", "%{http_version} %{http_code}", url], capture_output=True, text=True, timeout=60)
        assert r.stdout == f"{want} 200", (r.stdout, r.stderr)
        assert out.read_bytes() == data


def test_a_rotated_certificate_serves_new_connections_while_an_old_read_completes(local, pki, bucket):
    s3 = client(local.endpoint, local, pki.ca_path)
    data = os.urandom(48 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="rot.bin", Body=data)
    assert peer_serial("127.0.0.1", local.port, pki.ca_path) == local.serial
    body = s3.get_object(Bucket=bucket, Key="rot.bin")["Body"]
    head = body.read(1024 * 1024)
    new = pki.rotate(local.crt, local.key, "local-next")
    time.sleep(1.5)
    # Reloaded on SIGHUP only here (reload_secs = 0): the files alone change nothing.
    assert peer_serial("127.0.0.1", local.port, pki.ca_path) == local.serial
    local.procs["local"][0].send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while peer_serial("127.0.0.1", local.port, pki.ca_path) != new:
        assert time.time() < deadline, "the new certificate was not served after SIGHUP"
        time.sleep(0.1)
    rest = body.read()
    assert hashlib.sha256(head + rest).digest() == hashlib.sha256(data).digest()
    local.serial = new
    fresh = client(local.endpoint, local, pki.ca_path)
    assert fresh.get_object(Bucket=bucket, Key="rot.bin", Range="bytes=5-9")["Body"].read() == data[5:10]


def test_a_stalled_handshake_is_cut_off_and_others_are_served(local, pki):
    s = socket.create_connection(("127.0.0.1", local.port))
    s.sendall(b"\x16\x03\x01\x02\x00")  # a TLS record header promising 512 bytes that never come
    s.settimeout(20)
    t0 = time.time()
    assert requests.get(local.endpoint + "/readyz", verify=str(pki.ca_path), timeout=5).status_code == 200
    assert s.recv(1) == b""
    assert time.time() - t0 < 10  # request_timeout is 4 s here
    s.close()


def test_the_connection_cap_holds_for_tls_connections(pki, tmp_path_factory):
    import ssl

    c = start_https_local(tmp_path_factory.mktemp("tls-cap"), pki, {"STRATA_MAX_CONNECTIONS": "2"})
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca_path))

        def connect():
            raw = socket.create_connection(("127.0.0.1", c.port), timeout=5)
            return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        held = [connect(), connect()]
        for s in held:  # a request on each, so that both are surely counted
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
        with pytest.raises((ssl.SSLError, OSError)):
            s = connect()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100) == b"", "a third connection must be closed"
            raise OSError("closed")
        held.pop().close()
        time.sleep(0.3)
        s = connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")
        s.close()
        held[0].close()
    finally:
        c.stop_all()


def test_a_bad_certificate_file_fails_at_start_naming_it(tmp_path, pki):
    bad = tmp_path / "bad.crt"
    bad.write_text("not a certificate\n")
    _, key, _ = pki.issue("stray")
    r = subprocess.run([BIN, "gateway", "--listen", f"127.0.0.1:{free_port()}", "--master", "http://127.0.0.1:9",
                        "--tls-cert", str(bad), "--tls-key", str(key)],
                       env=dict(os.environ, STRATA_CLUSTER_SECRET="s"), capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and str(bad) in r.stderr, r.stderr


@pytest.fixture(scope="module")
def cluster(pki, tmp_path_factory):
    """Master and worker on mutual TLS (client certificates from the CA required), a gateway on
    HTTPS whose certificate is also its client certificate, reloaded by the 1 s poll."""
    tmp = tmp_path_factory.mktemp("tls-cluster")
    node_crt, node_key, _ = pki.issue("node")
    gw_crt, gw_key, gw_serial = pki.issue("gw")
    mport, wport, gport = free_port(), free_port(), free_port()
    ak, sk = "STRATATLS" + secrets.token_hex(5).upper(), secrets.token_urlsafe(30)
    c = Cluster("cluster", [f"https://127.0.0.1:{gport}"], ak, sk, tmp / "cluster", logs=tmp)
    c.env = {"STRATA_CLUSTER_SECRET": secrets.token_hex(16), "STRATA_HEARTBEAT_INTERVAL_MS": "500",
             "STRATA_TLS__CA": str(pki.ca_path), "STRATA_TLS__RELOAD_SECS": "1"}
    node = {"STRATA_TLS__CERT": str(node_crt), "STRATA_TLS__KEY": str(node_key),
            "STRATA_TLS__REQUIRE_CLIENT_CERT": "true"}
    master, worker = f"https://127.0.0.1:{mport}", f"https://127.0.0.1:{wport}"
    me = (str(node_crt), str(node_key))
    # No --advertise: with a certificate, a master and a worker advertise https:// themselves.
    launch(c, "master", ["master", "--data-dir", str(c.data_dir / "master"), "--listen", f"127.0.0.1:{mport}"],
           {"STRATA_ROOT_ACCESS_KEY": ak, "STRATA_ROOT_SECRET_KEY": sk, **node}, master, pki.ca_path, me)
    launch(c, "worker", ["worker", "--data-dir", str(c.data_dir / "worker"), "--listen", f"127.0.0.1:{wport}",
                         "--master", master], node, worker, pki.ca_path, me)
    launch(c, "gateway", ["gateway", "--listen", f"127.0.0.1:{gport}", "--master", master,
                          "--tls-cert", str(gw_crt), "--tls-key", str(gw_key)], {}, c.endpoint, pki.ca_path)
    c.master_url, c.worker_url, c.me, c.gport = master, worker, me, gport
    c.gw_crt, c.gw_key, c.gw_serial = gw_crt, gw_key, gw_serial
    yield c
    c.stop_all()


def test_cluster_over_mutual_tls(cluster, pki):
    s3 = client(cluster.endpoint, cluster, pki.ca_path)
    s3.create_bucket(Bucket="mtls")
    data = os.urandom(5 * 1024 * 1024 + 9)  # several pages through the worker
    s3.put_object(Bucket="mtls", Key="k", Body=data)
    assert s3.get_object(Bucket="mtls", Key="k")["Body"].read() == data
    assert s3.get_object(Bucket="mtls", Key="k", Range="bytes=1048570-1048590")["Body"].read() == \
        data[1048570:1048591]
    # The bytes came from the worker over mutual TLS (not from the gateway's under-store fallback).
    metrics = requests.get(cluster.worker_url + "/metrics", verify=str(pki.ca_path), cert=cluster.me, timeout=5).text
    served = sum(float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("strata_worker_bytes_served_total"))
    assert served >= len(data), metrics
    # A caller without a client certificate is refused by master and worker; with one, the
    # cluster secret is still required.
    for url in (cluster.master_url, cluster.worker_url):
        with pytest.raises(requests.RequestException):
            requests.get(url + "/readyz", verify=str(pki.ca_path), timeout=5)
        assert requests.get(url + "/readyz", verify=str(pki.ca_path), cert=cluster.me, timeout=5).status_code == 200
        with pytest.raises(requests.RequestException):
            requests.get(url.replace("https:", "http:") + "/readyz", timeout=5)
    r = requests.post(cluster.worker_url + "/v1/free", json=[], verify=str(pki.ca_path), cert=cluster.me, timeout=5)
    assert r.status_code in (401, 403), (r.status_code, r.text)
    # The operator's CLI over the same mutual TLS (its client certificate from STRATA_TLS__*).
    env = dict(os.environ, **cluster.env, STRATA_TLS__CERT=cluster.me[0], STRATA_TLS__KEY=cluster.me[1])
    r = subprocess.run([BIN, "admin", "report", "--master", cluster.master_url, "--tls-ca", str(pki.ca_path)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and cluster.worker_url.removeprefix("https://") in r.stdout, (r.stdout, r.stderr)
    # A master whose certificate the CA does not vouch for is given up at once (no failover
    # retries), saying what to check.
    t0 = time.time()
    r = subprocess.run([BIN, "admin", "report", "--master", cluster.master_url, "--tls-ca", certifi.where()],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "tls.client_cert" in r.stderr, (r.stdout, r.stderr)
    assert time.time() - t0 < 15, "an unknown certificate is not a master that is down"


def test_cluster_gateway_certificate_reloads_when_its_files_change(cluster, pki):
    assert peer_serial("127.0.0.1", cluster.gport, pki.ca_path) == cluster.gw_serial
    new = pki.rotate(cluster.gw_crt, cluster.gw_key, "gw-next")
    deadline = time.time() + 10
    while peer_serial("127.0.0.1", cluster.gport, pki.ca_path) != new:
        assert time.time() < deadline, "the changed certificate files were not reloaded by the poll"
        time.sleep(0.2)
    # The gateway's calls to master and worker (its client certificate is read at start) go on.
    s3 = client(cluster.endpoint, cluster, pki.ca_path)
    s3.put_object(Bucket="mtls", Key="after-rotation", Body=b"x" * 1000)
    assert s3.get_object(Bucket="mtls", Key="after-rotation")["Body"].read() == b"x" * 1000
