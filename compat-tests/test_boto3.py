"""boto3 at its default settings (CRC32 checksums on) and with checksums off."""

import hashlib
import os

import pytest
from botocore.exceptions import ClientError


def code(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle(strata, s3):
    s3.create_bucket(Bucket="life-cycle-bkt")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "life-cycle-bkt" in names
    s3.head_bucket(Bucket="life-cycle-bkt")
    s3.put_object(Bucket="life-cycle-bkt", Key="k", Body=b"x")
    # us-east-1's legacy rule: creating one's own bucket again answers 200 and keeps it;
    # with a location constraint (any other region) it is BucketAlreadyOwnedByYou.
    s3.create_bucket(Bucket="life-cycle-bkt")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="life-cycle-bkt")["Contents"]] == ["k"]
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="life-cycle-bkt", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code(e) == ("BucketAlreadyOwnedByYou", 409)
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="life-cycle-bkt")
    assert code(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="life-cycle-bkt", Key="k")
    s3.delete_bucket(Bucket="life-cycle-bkt")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="life-cycle-bkt")
    assert code(e)[1] == 404
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="Bad_Name")
    assert code(e) == ("InvalidBucketName", 400)


def test_put_get_head_delete(strata, bucket, s3):
    body = os.urandom(3 * 1024 * 1024 + 17)
    put = s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=body, ContentType="application/x-test",
                        Metadata={"color": "blue"})
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"color": "blue"}
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]
    part = s3.get_object(Bucket=bucket, Key="dir/obj.bin", Range="bytes=1048570-1048589")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 1048570-1048589/{len(body)}"
    assert part["Body"].read() == body[1048570:1048590]
    tail = s3.get_object(Bucket=bucket, Key="dir/obj.bin", Range="bytes=-5")["Body"].read()
    assert tail == body[-5:]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/obj.bin", Range=f"bytes={len(body)}-")
    assert code(e) == ("InvalidRange", 416)
    s3.delete_object(Bucket=bucket, Key="dir/obj.bin")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert code(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert code(e)[1] == 404
    # Deleting what is not there succeeds, as in S3.
    s3.delete_object(Bucket=bucket, Key="dir/obj.bin")


def test_checksum_is_verified_and_returned(strata, bucket):
    s3 = strata.client()
    s3.put_object(Bucket=bucket, Key="c", Body=b"hello", ChecksumAlgorithm="CRC32")
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == "NhCmhg=="
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"hello", ChecksumCRC32="AAAAAA==")
    assert code(e) == ("BadDigest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_empty_object_and_odd_keys(strata, bucket, s3):
    keys = ["empty", "sp ace+plus%pct?q#h", "ünï/cødé", "../escape", "a//b", "dir/"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode() if k != "empty" else b"")
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == (k.encode() if k != "empty" else b"")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed, key=lambda k: k.encode()) == listed
    assert set(listed) == set(keys)
    # Nothing escaped the bucket's folder in the local under store.
    if strata.mode == "local":
        ufs = strata.data_dir / "ufs"
        assert sorted(p.name for p in ufs.iterdir()) == sorted(
            [p.name for p in ufs.iterdir() if p.is_dir()]), "only bucket folders in the root"
        assert not (ufs / "escape").exists()


def test_list_objects_v2(strata, bucket, s3):
    keys = [f"logs/2024/{i:03d}.txt" for i in range(7)] + ["logs/readme", "top1", "top2", "x/y/z"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/", "x/"]
    assert [o["Key"] for o in r["Contents"]] == ["top1", "top2"]
    assert r["KeyCount"] == 4
    r = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/2024/"]
    assert [o["Key"] for o in r["Contents"]] == ["logs/readme"]
    # Pages of three with continuation tokens give every key once, in order.
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=bucket, MaxKeys=3, **kw)
        seen += [o["Key"] for o in r.get("Contents", [])]
        assert r["KeyCount"] <= 3
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert seen == sorted(keys)
    r = s3.list_objects_v2(Bucket=bucket, StartAfter="logs/readme")
    assert [o["Key"] for o in r["Contents"]] == ["top1", "top2", "x/y/z"]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="nothing/")
    assert r["KeyCount"] == 0 and "Contents" not in r
    paginated = [o["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})
                 for o in p.get("Contents", [])]
    assert paginated == sorted(keys)


def test_multipart_upload(strata, bucket, s3):
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), os.urandom(1234)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=p, ChecksumAlgorithm="CRC32")
        assert r["ChecksumCRC32"]
        done.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    # Not visible before it completes.
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="mp")
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=up["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    r = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done})
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    etag = '"%s-3"' % hashlib.md5(md5s).hexdigest()
    assert r["ETag"] == etag
    assert s3.head_object(Bucket=bucket, Key="mp")["ETag"] == etag
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)
    # A retry of the completed upload answers the same (see test_multipart.py).
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done})
    assert (again["ETag"], again.get("ChecksumCRC32")) == (etag, r.get("ChecksumCRC32"))


def test_multipart_rules_and_abort(strata, bucket, s3):
    up = s3.create_multipart_upload(Bucket=bucket, Key="small")
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up["UploadId"], PartNumber=1, Body=b"a" * 100)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up["UploadId"], PartNumber=2, Body=b"b" * 100)["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(e) == ("EntityTooSmall", 400)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert code(e) == ("InvalidPartOrder", 400)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"%s"' % ("0" * 32)}]})
    assert code(e) == ("InvalidPart", 400)
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["UploadId"] for u in uploads] == [up["UploadId"]]
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up["UploadId"])
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="small", UploadId=up["UploadId"], PartNumber=3, Body=b"c")
    assert code(e) == ("NoSuchUpload", 404)
    if strata.mode == "local":
        staged = list((strata.data_dir / "ufs" / "%strata" / "uploads").glob(up["UploadId"] + "/*"))
        assert staged == [], "aborted parts are deleted from staging"


def test_conditional_put(strata, bucket, s3):
    s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert code(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"1"


def test_unimplemented_is_501(strata, bucket, s3):
    with pytest.raises(ClientError) as e:
        s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    assert code(e) == ("NotImplemented", 501)


def test_delete_objects(strata, bucket, s3):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"d{i}"} for i in range(3)] + [{"Key": "nope"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["d0", "d1", "d2", "nope"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d3", "d4"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d3"}], "Quiet": True})
    assert "Deleted" not in r
