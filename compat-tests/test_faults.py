"""Clients that hang up: a connection reset (SO_LINGER 0) at a random moment of PUT, CopyObject
and CompleteMultipartUpload must never leave an object whose metadata and under-store bytes
disagree. After the storm, the under-store file of every key equals what GET serves, and GET
serves one of the bodies that were sent."""

import hashlib
import random
import secrets
import socket
import struct
import time
from urllib.parse import urlparse

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TRIES = 40


def ufs_root(strata):
    """The folder of the root under store: `strata local`'s, or the cluster master's."""
    return strata.data_dir / ("ufs" if strata.mode == "local" else "master/ufs")


def signed(strata, method, url, body=b"", headers=None):
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    req.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    S3SigV4Auth(Credentials(strata.access_key, strata.secret_key), "s3", "us-east-1").add_auth(req)
    return req.prepare()


def send_and_reset(strata, method, path, body=b"", headers=None, wait=0.0):
    """Sends a whole signed request on a raw socket, waits `wait` seconds, then resets it."""
    url = strata.endpoint + path
    p = signed(strata, method, url, body, headers)
    u = urlparse(url)
    head = f"{method} {u.path}{'?' + u.query if u.query else ''} HTTP/1.1\r\nHost: {u.netloc}\r\n"
    for k, v in p.headers.items():
        if k.lower() not in ("host", "content-length"):
            head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    s = socket.create_connection((u.hostname, u.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.sendall(head.encode() + body)
    time.sleep(wait)
    s.close()


def settle(s3, bucket, keys, expect_ufs, timeout=20):
    """Waits until every key's under-store file equals what GET serves; returns the mismatches."""
    deadline = time.time() + timeout
    while True:
        bad = []
        for key in keys:
            try:
                served = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except s3.exceptions.NoSuchKey:
                served = None
            path = expect_ufs / key
            on_disk = path.read_bytes() if path.exists() else None
            if served != on_disk:
                bad.append((key, None if served is None else len(served), None if on_disk is None else len(on_disk)))
        if not bad or time.time() > deadline:
            return bad
        time.sleep(0.5)


@pytest.fixture
def s3b(strata):
    s3 = strata.client()
    name = "f-" + secrets.token_hex(6)
    s3.create_bucket(Bucket=name)
    return s3, name


def test_resets_never_tear_an_object(strata, s3b):
    s3, bucket = s3b
    rng = random.Random(secrets.randbits(32))
    sent = {"put": set(), "copy": set(), "mpu": set()}
    # Sources of the copies, and an upload per complete.
    sources = []
    for i in range(4):
        data = secrets.token_bytes(rng.randint(1, 200_000))
        s3.put_object(Bucket=bucket, Key=f"src{i}", Body=data)
        sources.append((f"src{i}", data))
    for n in range(TRIES):
        wait = rng.uniform(0, 0.04)
        body = secrets.token_bytes(rng.randint(1, 300_000))
        sent["put"].add(body)
        send_and_reset(strata, "PUT", f"/{bucket}/put", body, wait=wait)

        name, data = rng.choice(sources)
        sent["copy"].add(data)
        send_and_reset(strata, "PUT", f"/{bucket}/copy", headers={"x-amz-copy-source": f"/{bucket}/{name}"}, wait=wait)

        up = s3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
        part = secrets.token_bytes(rng.randint(1, 100_000))
        etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=up, PartNumber=1, Body=part)["ETag"]
        sent["mpu"].add(part)
        xml = f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
        send_and_reset(strata, "POST", f"/{bucket}/mpu?uploadId={up}", xml.encode(), wait=wait)
    bad = settle(s3, bucket, ["put", "copy", "mpu"], ufs_root(strata) / bucket)
    assert not bad, f"under store differs from GET (key, served bytes, file bytes): {bad}"
    for key, bodies in sent.items():
        try:
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            continue
        assert got in bodies, f"{key}: GET serves bytes that were never sent"
