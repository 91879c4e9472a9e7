"""Answers that ceph/s3-tests found differing from AWS, pinned as boto3 and plain HTTP see them
(issue 13): presigned expiry, part numbers, bucket configurations that are not set, ListBuckets
paging, v1 listing prefixes and Content-Encoding with aws-chunked."""

import pytest
import requests
from botocore.exceptions import ClientError


def code(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def presign_v4(strata, method, bucket, key, expires):
    """A SigV4 presigned URL by botocore's own signer: boto3 with the CRT refuses expiries <= 0."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=f"{strata.endpoint}/{bucket}/{key}")
    S3SigV4QueryAuth(Credentials(strata.access_key, strata.secret_key), "s3", "us-east-1", expires=expires).add_auth(req)
    return req.url


@pytest.mark.parametrize("expires", [0, -7, 609901])
def test_presigned_expiry_out_of_range_is_403(strata, bucket, s3, expires):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert requests.get(presign_v4(strata, "GET", bucket, "k", 3600)).content == b"x"
    r = requests.get(presign_v4(strata, "GET", bucket, "k", expires))
    assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content, r.content


def test_presigned_put_expired_is_403_and_valid_works(strata, bucket, s3):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=-1000)
    assert requests.put(url, data=b"foo").status_code == 403
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=100000)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert requests.options(url).status_code == 400  # a preflight without Origin
    r = requests.get(url)
    assert (r.status_code, r.content) == (200, b"x")


def test_part_number_beyond_the_parts_is_400(strata, bucket, s3):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", PartNumber=2)
    assert code(e) == ("InvalidPart", 400)
    assert s3.get_object(Bucket=bucket, Key="k", PartNumber=1)["Body"].read() == b"x"


def test_unset_bucket_configurations(strata, bucket, s3):
    calls = [
        (s3.get_bucket_policy, "NoSuchBucketPolicy"),
        (s3.get_bucket_cors, "NoSuchCORSConfiguration"),
        (s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration"),
        (s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError"),
        (s3.get_bucket_website, "NoSuchWebsiteConfiguration"),
    ]
    for call, want in calls:
        with pytest.raises(ClientError) as e:
            call(Bucket=bucket)
        assert code(e) == (want, 404)
        with pytest.raises(ClientError) as e:
            call(Bucket=bucket + "-missing")
        assert code(e) == ("NoSuchBucket", 404)
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bucket)
    owner = s3.list_buckets()["Owner"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for acl in (s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key="k")):
        assert acl["Owner"]["ID"] == owner["ID"]
        assert [(g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [(owner["ID"], "FULL_CONTROL")]


def test_list_buckets_pages(strata, s3):
    names = [f"exact-page-{i}" for i in range(3)]
    for n in names:
        s3.create_bucket(Bucket=n)
    try:
        got, token = [], None
        while True:
            kw = {"ContinuationToken": token} if token else {}
            r = s3.list_buckets(MaxBuckets=1, Prefix="exact-page-", **kw)
            got += [b["Name"] for b in r["Buckets"]]
            token = r.get("ContinuationToken")
            if not token:
                break
        assert got == names
    finally:
        for n in names:
            s3.delete_bucket(Bucket=n)


def test_v1_listing_prefix_comes_back_as_sent(strata, bucket, s3):
    s3.put_object(Bucket=bucket, Key="quux", Body=b"x")
    r = s3.list_objects(Bucket=bucket, Prefix="\n")
    assert (r["Prefix"], r.get("Contents", [])) == ("\n", [])
    assert s3.list_objects_v2(Bucket=bucket, Prefix="\n")["Prefix"] == "\n"


def test_aws_chunked_content_encoding_on_a_plain_body(strata, bucket, s3):
    for sent, stored in [("gzip, aws-chunked", "gzip"), ("aws-chunked, gzip", "gzip"), ("aws-chunked", None)]:
        s3.put_object(Bucket=bucket, Key="k", Body=b"plain", ContentEncoding=sent)
        r = s3.head_object(Bucket=bucket, Key="k")
        assert r.get("ContentEncoding") == stored, sent


def test_non_ascii_user_metadata_round_trips_as_sent(strata, bucket, s3):
    # botocore sends a non-ASCII str as UTF-8 and reads answers as ISO-8859-1.
    def add(**kwargs):
        kwargs["params"]["headers"]["x-amz-meta-meta1"] = "Hello World\xe9"

    s3.meta.events.register("before-call.s3.PutObject", add)
    try:
        s3.put_object(Bucket=bucket, Key="foo", Body=b"bar")
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", add)
    assert s3.get_object(Bucket=bucket, Key="foo")["Metadata"]["meta1"] == "Hello World\xe9"


def test_get_object_attributes_and_full_object_crc(strata, bucket, s3):
    import base64
    import zlib

    s3.put_object(Bucket=bucket, Key="one", Body=b"foo")
    r = s3.get_object_attributes(Bucket=bucket, Key="one", ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "ObjectParts"])
    assert (r["ObjectSize"], r["StorageClass"], "ObjectParts" in r) == (3, "STANDARD", False)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    assert up["ChecksumType"] == "FULL_OBJECT"
    parts, whole = [], b""
    for n, body in [(1, b"a" * (5 << 20)), (2, b"b" * 1000)]:
        p = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=body, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": p["ETag"], "ChecksumCRC32": p["ChecksumCRC32"]})
        whole += body
    want = base64.b64encode(zlib.crc32(whole).to_bytes(4, "big")).decode()
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (want, "FULL_OBJECT")
    r = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["Checksum", "ObjectParts"], MaxParts=1)
    assert r["Checksum"] == {"ChecksumCRC32": want, "ChecksumType": "FULL_OBJECT"}
    assert (r["ObjectParts"]["TotalPartsCount"], r["ObjectParts"]["IsTruncated"]) == (2, True)
    assert [p["PartNumber"] for p in r["ObjectParts"]["Parts"]] == [1]


def test_bucket_cors_round_trip_preflight_and_headers(strata, bucket, s3):
    conf = {"CORSRules": [{"AllowedOrigins": ["https://*.example"], "AllowedMethods": ["GET", "PUT"],
                           "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]}
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=conf)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert [(r["AllowedOrigins"], r["AllowedMethods"], r["MaxAgeSeconds"]) for r in got] == [(["https://*.example"], ["GET", "PUT"], 60)]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = f"{strata.endpoint}/{bucket}/k"
    r = requests.options(url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT",
                                       "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 200, r.content
    assert (r.headers["Access-Control-Allow-Origin"], r.headers["Access-Control-Allow-Methods"]) == ("https://app.example", "GET, PUT")
    r = requests.options(url, headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 403 and b"<Code>AccessForbidden</Code>" in r.content
    signed = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    r = requests.get(signed, headers={"Origin": "https://app.example"})
    assert (r.status_code, r.headers.get("Access-Control-Allow-Origin")) == (200, "https://app.example")
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert code(e) == ("NoSuchCORSConfiguration", 404)
