"""Answers that used to differ from AWS's (issue 15), over raw signed requests: each gets the
status and error code AWS gives, and changes nothing."""

import hashlib
import re
import secrets
import socket
from urllib.parse import urlparse

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def send(strata, method, path, body=b"", headers=None, unsigned=None, region="us-east-1", service="s3",
         length=True):
    """A SigV4-signed request on a raw socket; `unsigned` headers are added after signing."""
    url = strata.endpoint + path
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    req.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    S3SigV4Auth(Credentials(strata.access_key, strata.secret_key), service, region).add_auth(req)
    u = urlparse(url)
    head = f"{method} {u.path}{'?' + u.query if u.query else ''} HTTP/1.1\r\nHost: {u.netloc}\r\n"
    for k, v in list(req.prepare().headers.items()) + list((unsigned or {}).items()):
        if k.lower() not in ("host", "content-length"):
            head += f"{k}: {v}\r\n"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    head += "Connection: close\r\n\r\n"
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(head.encode() + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    status = int(out.split(b" ", 2)[1])
    code = re.search(rb"<Code>(\w+)</Code>", out)
    return status, code.group(1).decode() if code else None


@pytest.fixture(scope="module")
def bkt(strata):
    name = "aws-" + secrets.token_hex(4)
    strata.client().create_bucket(Bucket=name)
    return name


def exists(strata, bucket, key):
    return "Contents" in strata.client().list_objects_v2(Bucket=bucket, Prefix=key)


def test_an_unsigned_amz_header_is_refused(strata, bkt):
    assert send(strata, "PUT", f"/{bkt}/u", b"x", unsigned={"x-amz-meta-added": "1"}) == (403, "AccessDenied")
    assert not exists(strata, bkt, "u")
    assert send(strata, "PUT", f"/{bkt}/u", b"x", headers={"x-amz-meta-signed": "1"})[0] == 200


@pytest.mark.parametrize("region,service", [("eu-west-3", "s3"), ("us-east-1", "ec2")])
def test_a_wrong_credential_scope_is_malformed(strata, bkt, region, service):
    assert send(strata, "GET", f"/{bkt}?list-type=2", region=region, service=service) == (
        400, "AuthorizationHeaderMalformed")


def test_a_put_without_length_is_refused(strata, bkt):
    assert send(strata, "PUT", f"/{bkt}/nolen", length=False) == (411, "MissingContentLength")
    assert not exists(strata, bkt, "nolen")


def test_delete_objects_needs_a_digest(strata, bkt):
    strata.client().put_object(Bucket=bkt, Key="keep", Body=b"k")
    xml = b"<Delete><Object><Key>keep</Key></Object></Delete>"
    assert send(strata, "POST", f"/{bkt}?delete", xml) == (400, "InvalidRequest")
    assert exists(strata, bkt, "keep")
    strata.client().delete_objects(Bucket=bkt, Delete={"Objects": [{"Key": "keep"}]})
    assert not exists(strata, bkt, "keep")


@pytest.mark.parametrize("query", ["list-type=2&max-keys=99999999999", "max-keys=-1", "uploads&max-uploads=-1",
                                   "uploads&max-uploads=x"])
def test_listing_limits_out_of_range(strata, bkt, query):
    assert send(strata, "GET", f"/{bkt}?{query}") == (400, "InvalidArgument")


def test_an_unknown_storage_class_is_refused(strata, bkt):
    assert send(strata, "PUT", f"/{bkt}/sc", b"x", headers={"x-amz-storage-class": "BOGUS"}) == (
        400, "InvalidStorageClass")
    assert send(strata, "POST", f"/{bkt}/sc?uploads", headers={"x-amz-storage-class": "BOGUS"}) == (
        400, "InvalidStorageClass")
    assert not exists(strata, bkt, "sc")
    assert send(strata, "PUT", f"/{bkt}/sc", b"x", headers={"x-amz-storage-class": "STANDARD_IA"})[0] == 200
