"""Authentication: every request is signed with SigV4; errors are S3 error XML with a request id."""

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError


def client(strata, ak, sk):
    return boto3.client("s3", endpoint_url=strata.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1", config=Config(retries={"max_attempts": 1}))


def test_wrong_secret(strata):
    with pytest.raises(ClientError) as e:
        client(strata, strata.access_key, "not-the-secret").list_buckets()
    err = e.value.response
    assert err["Error"]["Code"] == "SignatureDoesNotMatch"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err["ResponseMetadata"]["RequestId"]


def test_unknown_key(strata):
    with pytest.raises(ClientError) as e:
        client(strata, "AKIAUNKNOWNKEY000000", "x").list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_anonymous_gets_access_denied_xml(strata, bucket):
    # A private bucket: an anonymous request is denied (a missing bucket would be NoSuchBucket).
    r = requests.get(f"{strata.endpoint}/{bucket}/key")
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/xml"
    assert "<Code>AccessDenied</Code>" in r.text
    rid = r.headers["x-amz-request-id"]
    assert f"<RequestId>{rid}</RequestId>" in r.text


def test_presigned_get_and_put(strata, bucket):
    s3 = strata.client(signature_version="s3v4")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300)
    assert requests.put(url, data=b"presigned").status_code == 200
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300)
    r = requests.get(url)
    assert (r.status_code, r.content) == (200, b"presigned")
    assert requests.get(url.replace("/p?", "/q?")).status_code == 403
    # Signature Version 2, the default of boto3's and aws cli 1.x's presigned URLs.
    v2 = strata.client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"})
    assert "AWSAccessKeyId=" in v2
    r = requests.get(v2)
    assert (r.status_code, r.content) == (200, b"presigned")
    assert requests.get(v2.replace("/p?", "/q?")).status_code == 403


def test_signed_payload_mismatch_stores_nothing(strata, bucket):
    """A body that does not match its signed SHA-256 is refused and leaves no object."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    url = f"{strata.endpoint}/{bucket}/tampered"
    req = AWSRequest(method="PUT", url=url, data=b"original body")
    S3SigV4Auth(Credentials(strata.access_key, strata.secret_key), "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers)
    r = requests.put(url, data=b"tampered body", headers=headers)
    assert r.status_code == 400 and "XAmzContentSHA256Mismatch" in r.text
    s3 = strata.client()
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="tampered")
