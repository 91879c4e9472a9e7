"""The rest of the S3 API that aws cli, boto3 and Spark use, checked against what AWS answers."""

import concurrent.futures
import datetime
import hashlib
import os

import pytest
import requests
from botocore.exceptions import ClientError


def code(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_copy_object_directives(strata, bucket, s3):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"a": "1"},
                  Tagging="t=1")
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(b"copy me").hexdigest()
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"copy me", "text/plain", {"a": "1"})
    assert s3.get_object_tagging(Bucket=bucket, Key="dst")["TagSet"] == [{"Key": "t", "Value": "1"}]
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   ContentType="application/json", Metadata={"b": "2"})
    got = s3.head_object(Bucket=bucket, Key="dst2")
    assert (got["ContentType"], got["Metadata"]) == ("application/json", {"b": "2"})
    # Onto itself: only with REPLACE.
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code(e) == ("InvalidRequest", 400)
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"c": "3"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"c": "3"}
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"copy me"
    etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch='"nope"')
    assert code(e) == ("PreconditionFailed", 412)
    s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch=etag,
                   MetadataDirective="REPLACE", ContentType="text/x-s3a")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="y", CopySource={"Bucket": bucket, "Key": "missing"})
    assert code(e) == ("NoSuchKey", 404)


def test_upload_part_copy_and_part_number(strata, bucket, s3):
    data = os.urandom(11 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    up = s3.create_multipart_upload(Bucket=bucket, Key="joined")
    ranges = [(0, 6 * 1024 * 1024 - 1), (6 * 1024 * 1024, len(data) - 1)]
    parts = []
    for i, (a, b) in enumerate(ranges, 1):
        r = s3.upload_part_copy(Bucket=bucket, Key="joined", UploadId=up["UploadId"], PartNumber=i,
                                CopySource={"Bucket": bucket, "Key": "big"}, CopySourceRange=f"bytes={a}-{b}")
        parts.append({"PartNumber": i, "ETag": r["CopyPartResult"]["ETag"]})
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="joined", UploadId=up["UploadId"], PartNumber=3,
                            CopySource={"Bucket": bucket, "Key": "big"}, CopySourceRange=f"bytes=0-{len(data)}")
    assert code(e) == ("InvalidRange", 416)
    s3.complete_multipart_upload(Bucket=bucket, Key="joined", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="joined")["Body"].read() == data
    p2 = s3.get_object(Bucket=bucket, Key="joined", PartNumber=2)
    assert p2["PartsCount"] == 2
    assert p2["ContentRange"] == f"bytes {6 * 1024 * 1024}-{len(data) - 1}/{len(data)}"
    assert p2["Body"].read() == data[6 * 1024 * 1024:]
    assert s3.head_object(Bucket=bucket, Key="joined", PartNumber=1)["ContentLength"] == 6 * 1024 * 1024
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="joined", PartNumber=3)
    assert code(e) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="joined", PartNumber=3)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_object_and_bucket_tagging(strata, bucket, s3):
    s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="env=prod&team=data%20eng")
    assert s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    tags = s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
    assert tags == [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "data eng"}]
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "a", "Value": "b"}]
    s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]})
    assert code(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(e) == ("NoSuchTagSet", 404)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "cost", "Value": "42"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "cost", "Value": "42"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_tagging(Bucket=bucket)


def test_conditional_get_and_head(strata, bucket, s3):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"cond")
    etag = put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"cond"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"other"')
    assert code(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert code(e)[1] == 304
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert code(e)[1] == 304
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert code(e)[1] == 412
    # If-Match true wins over If-Unmodified-Since false, as in S3.
    assert s3.head_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=past)["ContentLength"] == 4


def test_response_overrides_and_stored_headers(strata, bucket, s3):
    s3.put_object(Bucket=bucket, Key="h", Body=b"x", ContentType="text/plain", ContentEncoding="identity",
                  ContentDisposition="inline", ContentLanguage="en", CacheControl="max-age=60")
    h = s3.head_object(Bucket=bucket, Key="h")
    assert (h["ContentEncoding"], h["ContentDisposition"], h["ContentLanguage"], h["CacheControl"]) == \
        ("identity", "inline", "en", "max-age=60")
    assert h["ResponseMetadata"]["HTTPHeaders"]["accept-ranges"] == "bytes"
    g = s3.get_object(Bucket=bucket, Key="h", ResponseContentType="application/x-override",
                      ResponseContentDisposition="attachment; filename=a.txt")
    assert g["ContentType"] == "application/x-override"
    assert g["ContentDisposition"] == "attachment; filename=a.txt"


def test_limits(strata, bucket, s3):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert code(e) == ("MetadataTooLarge", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert code(e) == ("KeyTooLongError", 400)
    longest = ("k" * 200 + "/") * 5 + "k" * 19
    assert len(longest) == 1024
    s3.put_object(Bucket=bucket, Key=longest, Body=b"x")
    assert s3.get_object(Bucket=bucket, Key=longest)["Body"].read() == b"x"
    if strata.mode == "local":
        # A local-folder under store cannot hold a 300-byte file name: refused, and nothing
        # half-written is left visible.
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="n" * 300, Body=b"x")
        assert code(e) == ("InvalidArgument", 400)
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key="n" * 300)


@pytest.mark.parametrize("order", [("f", "f/g"), ("f/g", "f")])
def test_a_key_and_a_folder_of_its_name(strata, bucket, s3, order):
    # S3 holds `f` and `f/g` side by side; so does a local-folder under store (one of them
    # under an escaped name), in either order, and deletes clean up.
    for k in order:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in order:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert ([o["Key"] for o in r.get("Contents", [])], [p["Prefix"] for p in r.get("CommonPrefixes", [])]) == (["f"], ["f/"])
    for k in order:
        s3.delete_object(Bucket=bucket, Key=k)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_sixteen_concurrent_conditional_creates(strata, bucket, s3):
    bodies = [os.urandom(200_000) for _ in range(16)]

    def create(i):
        c = strata.client()
        try:
            c.put_object(Bucket=bucket, Key="race", Body=bodies[i], IfNoneMatch="*")
            return i
        except ClientError as e:
            assert e.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"), e.response
            return None

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, range(16)))
    winners = [i for i in results if i is not None]
    assert len(winners) == 1, results
    assert s3.get_object(Bucket=bucket, Key="race")["Body"].read() == bodies[winners[0]]


def test_listing_v1_markers_and_url_encoding(strata, bucket, s3):
    keys = ["a+b c.txt", "dir/one", "dir/two", "e%f", "z"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    # boto3 asks for encoding-type=url and decodes: the keys come back exactly.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == keys
    r = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert r["IsTruncated"] and r["NextMarker"] == "dir/"
    r = s3.list_objects(Bucket=bucket, Delimiter="/", Marker=r["NextMarker"])
    assert [o["Key"] for o in r["Contents"]] == ["e%f", "z"]
    raw = requests.get(strata.endpoint + "/healthz")
    assert raw.status_code == 200


@pytest.mark.parametrize("algo", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_every_checksum_algorithm(strata, bucket, s3, algo):
    body = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="c-" + algo, Body=body, ChecksumAlgorithm=algo)
    value = put["Checksum" + algo]
    head = s3.head_object(Bucket=bucket, Key="c-" + algo, ChecksumMode="ENABLED")
    assert head["Checksum" + algo] == value
    got = s3.get_object(Bucket=bucket, Key="c-" + algo, ChecksumMode="ENABLED")
    assert got["Body"].read() == body and got["Checksum" + algo] == value
    wrong = {"CRC32": "AAAAAA==", "CRC32C": "AAAAAA==", "CRC64NVME": "AAAAAAAAAAA=",
             "SHA1": "A" * 27 + "=", "SHA256": "A" * 43 + "="}[algo]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad-" + algo, Body=body, **{"Checksum" + algo: wrong})
    assert code(e) == ("BadDigest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad-" + algo)
    # Multipart: each part's checksum is checked and returned, the object gets the composite
    # (CRC64NVME: the full object's CRC, the only type AWS gives it).
    up = s3.create_multipart_upload(Bucket=bucket, Key="m-" + algo, ChecksumAlgorithm=algo)
    parts = [os.urandom(5 << 20), body]
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="m-" + algo, UploadId=up["UploadId"], PartNumber=i, Body=p,
                           ChecksumAlgorithm=algo)
        done.append({"PartNumber": i, "ETag": r["ETag"], "Checksum" + algo: r["Checksum" + algo]})
    r = s3.complete_multipart_upload(Bucket=bucket, Key="m-" + algo, UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": done})
    full = algo == "CRC64NVME"
    assert r["ChecksumType"] == ("FULL_OBJECT" if full else "COMPOSITE")
    assert r["Checksum" + algo].endswith("-2") != full
    head = s3.head_object(Bucket=bucket, Key="m-" + algo, ChecksumMode="ENABLED")
    assert head["Checksum" + algo] == r["Checksum" + algo]
    assert s3.get_object(Bucket=bucket, Key="m-" + algo)["Body"].read() == b"".join(parts)


def test_virtual_hosted_style(strata, bucket, s3):
    """With `domain` set, BUCKET.DOMAIN addresses the bucket (the fixture sets s3.strata.test)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    s3.put_object(Bucket=bucket, Key="vh/key.txt", Body=b"virtual")
    port = strata.endpoint.rsplit(":", 1)[1]
    host = f"{bucket}.s3.strata.test:{port}"
    req = AWSRequest(method="GET", url=f"http://{host}/vh/key.txt")
    S3SigV4Auth(Credentials(strata.access_key, strata.secret_key), "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers)
    headers["Host"] = host
    r = requests.get(f"{strata.endpoint}/vh/key.txt", headers=headers)
    assert (r.status_code, r.content) == (200, b"virtual")


def test_list_multipart_uploads(strata, bucket, s3):
    ids = {}
    for k in ["a/1", "a/2", "b", "c/x/1", "c/y"]:
        ids[k] = s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]
    second = s3.create_multipart_upload(Bucket=bucket, Key="b")["UploadId"]
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "c/"]
    assert [u["Key"] for u in r["Uploads"]] == ["b", "b"]
    assert {u["UploadId"] for u in r["Uploads"]} == {ids["b"], second}
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/x/"]
    assert [u["Key"] for u in r["Uploads"]] == ["c/y"]
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert page["IsTruncated"] and len(page["Uploads"]) == 2
    rest = s3.list_multipart_uploads(Bucket=bucket, KeyMarker=page["NextKeyMarker"],
                                     UploadIdMarker=page["NextUploadIdMarker"])
    listed = page["Uploads"] + rest["Uploads"]
    assert len(listed) == 6 and not rest["IsTruncated"]
    assert [u["Key"] for u in listed] == sorted(u["Key"] for u in listed)
    for k, up in list(ids.items()) + [("b", second)]:
        s3.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=up)
