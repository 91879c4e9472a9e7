"""Multipart uploads as clients retry them: a CompleteMultipartUpload whose answer was lost is
sent again, and S3 answers the retry of an upload it completed with the same 200 and ETag (for
a while), so that the retry of a Spark or boto3 job is safe."""

import hashlib
import http.client
import http.server
import os
import socket
import threading
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def code(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


class LossyProxy:
    """Forwards requests to `upstream`; the answer of the first request `drop(method, path)`
    picks is lost: the request reaches Strata, the client's connection is cut instead."""

    def __init__(self, upstream, drop):
        self.seen, self.dropped = [], 0
        up = urlsplit(upstream)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                resp = conn.getresponse()
                data = resp.read()
                proxy.seen.append((self.command, self.path, resp.status))
                if proxy.dropped == 0 and drop(self.command, self.path):
                    proxy.dropped += 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response_only(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def upload_parts(s3, bucket, key, parts):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=i, Body=p)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    return up["UploadId"], done


def multipart_etag(parts):
    return '"%s-%d"' % (hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest(), len(parts))


def test_a_complete_whose_answer_was_lost_is_retried_by_boto3_and_succeeds(strata, bucket, s3):
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    upload_id, done = upload_parts(s3, bucket, "mp", parts)
    proxy = LossyProxy(strata.endpoints[-1], lambda method, path: method == "POST" and "uploadId=" in path)
    try:
        retrying = boto3.client(
            "s3", endpoint_url=proxy.url, aws_access_key_id=strata.access_key,
            aws_secret_access_key=strata.secret_key, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}))
        r = retrying.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                               MultipartUpload={"Parts": done})
    finally:
        proxy.close()
    completes = [s for s in proxy.seen if s[0] == "POST"]
    assert proxy.dropped == 1 and [s[2] for s in completes] == [200, 200], proxy.seen
    assert r["ETag"] == multipart_etag(parts)
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert (head["ETag"], head["ContentLength"]) == (r["ETag"], sum(map(len, parts)))
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)


def test_completing_twice_answers_the_same_and_other_parts_are_invalid(strata, bucket, s3):
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(10)]
    upload_id, done = upload_parts(s3, bucket, "mp", parts)
    first = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done})
    # Through every gateway: the completion is the master's, not one gateway's memory.
    for endpoint in strata.endpoints:
        again = strata.client(endpoint=endpoint).complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done})
        assert (again["ETag"], again["Key"]) == (first["ETag"], "mp")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done[:1]})
    assert code(e) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=3, Body=b"late")
    assert code(e) == ("NoSuchUpload", 404)
    # Overwritten since: a retry still answers what the completion made, and changes nothing.
    s3.put_object(Bucket=bucket, Key="mp", Body=b"newer")
    late = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert late["ETag"] == first["ETag"]
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"newer"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="other", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert code(e) == ("NoSuchUpload", 404)


def bucket_folder(strata, bucket):
    """The bucket's folder in the root under store (a local folder in both modes)."""
    return next(p for p in strata.data_dir.rglob(bucket) if p.is_dir() and p.parent.name == "ufs")


def test_an_aws_cli_multipart_upload_is_a_plain_file_with_no_parts_left(strata, bucket, tmp_path):
    """The aws cli sends 8 MiB parts on 10 threads (so out of order); they are written in
    place and the completed object is that file: plain, equal to what GET serves."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(21 << 20))
    strata.aws("s3", "cp", str(src), f"s3://{bucket}/big.bin")
    got = tmp_path / "got.bin"
    strata.aws("s3", "cp", f"s3://{bucket}/big.bin", str(got))
    assert got.read_bytes() == src.read_bytes()
    folder = bucket_folder(strata, bucket)
    f = folder / "big.bin"
    assert f.read_bytes() == src.read_bytes()
    assert f.stat().st_nlink == 1
    assert not any((folder / "%strata" / "uploads").glob("*")), "parts left behind"
