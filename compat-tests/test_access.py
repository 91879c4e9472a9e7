"""Users, keys and ACLs as real clients see them: boto3 for the owner and a second user made
with `strata admin user/key create`, plain `requests` for anonymous reads, against `strata local`
(with its admin port) and a cluster of two gateways."""

import os
import subprocess
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import BIN, Cluster, free_port, start_cluster


def start_local_with_admin(tmp):
    port, aport = free_port(), free_port()
    c = Cluster("local", [f"http://127.0.0.1:{port}"], "", "", tmp / "local", logs=tmp)
    c.start("local", ["local", "--data-dir", str(c.data_dir), "--listen", f"127.0.0.1:{port}",
                      "--admin-listen", f"127.0.0.1:{aport}"], {}, c.endpoint)
    fields = dict(l.split(" = ", 1) for l in (c.data_dir / "credentials").read_text().splitlines() if " = " in l)
    c.access_key, c.secret_key = fields["access_key"], fields["secret_key"]
    c.master_url = f"http://127.0.0.1:{aport}"
    return c


@pytest.fixture(scope="module", params=["local", "cluster"])
def strata(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("access-" + request.param)
    c = start_local_with_admin(tmp) if request.param == "local" else start_cluster(tmp)
    yield c
    c.stop_all()


def admin(c, *args):
    cmd = [BIN, "admin", "--master", c.master_url]
    if c.mode == "local":
        cmd += ["--data-dir", str(c.data_dir)]
    env = dict(os.environ, **c.env)
    r = subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{args}: {r.stdout}\n{r.stderr}"
    return r.stdout


def new_user(c, uid):
    admin(c, "user", "create", uid, "--display-name", uid.upper())
    out = admin(c, "key", "create", uid)
    fields = dict(l.split(" = ", 1) for l in out.splitlines() if " = " in l)
    return fields["access_key"], fields["secret_key"]


def client(c, ak, sk, endpoint=None):
    return boto3.client("s3", endpoint_url=endpoint or c.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def code(e):
    return e.value.response["Error"]["Code"]


def test_anonymous_reads_a_public_object_and_not_a_private_one(strata):
    s3 = strata.client()
    s3.create_bucket(Bucket="anon")
    s3.put_object(Bucket="anon", Key="open.txt", Body=b"public data", ACL="public-read")
    s3.put_object(Bucket="anon", Key="closed.txt", Body=b"private data")
    r = requests.get(f"{strata.endpoint}/anon/open.txt")
    assert (r.status_code, r.content) == (200, b"public data")
    r = requests.get(f"{strata.endpoint}/anon/closed.txt")
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    r = requests.get(f"{strata.endpoint}/no-such-bucket-here/open.txt")
    assert r.status_code == 404 and "<Code>NoSuchBucket</Code>" in r.text, r.text
    assert requests.put(f"{strata.endpoint}/anon/x", data=b"x").status_code == 403
    grants = s3.get_object_acl(Bucket="anon", Key="open.txt")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
            "Permission": "READ"} in grants


def test_a_second_user_is_denied_then_allowed_by_the_bucket_acl(strata):
    s3 = strata.client()
    ak, sk = new_user(strata, "alt-" + strata.mode)
    alt = client(strata, ak, sk)
    s3.create_bucket(Bucket="shared-" + strata.mode)
    b = "shared-" + strata.mode
    s3.put_object(Bucket=b, Key="k", Body=b"v")
    with pytest.raises(ClientError) as e:
        alt.list_objects_v2(Bucket=b)
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        alt.put_object(Bucket=b, Key="new", Body=b"")
    assert code(e) == "AccessDenied"
    acl = s3.get_bucket_acl(Bucket=b)
    acl["Grants"].append({"Grantee": {"Type": "CanonicalUser", "ID": "alt-" + strata.mode}, "Permission": "WRITE"})
    acl["Grants"].append({"Grantee": {"Type": "CanonicalUser", "ID": "alt-" + strata.mode}, "Permission": "READ"})
    s3.put_bucket_acl(Bucket=b, AccessControlPolicy={"Grants": acl["Grants"], "Owner": acl["Owner"]})
    # Every gateway sees the change at once.
    for ep in strata.endpoints:
        keys = [o["Key"] for o in client(strata, ak, sk, ep).list_objects_v2(Bucket=b)["Contents"]]
        assert keys == ["k"]
    alt.put_object(Bucket=b, Key="new", Body=b"from alt")
    assert s3.get_object(Bucket=b, Key="new")["Body"].read() == b"from alt"
    with pytest.raises(ClientError) as e:
        alt.get_object(Bucket=b, Key="k")  # the bucket's grants are not the object's
    assert code(e) == "AccessDenied"
    names = [x["Name"] for x in alt.list_buckets()["Buckets"]]
    assert b not in names, "a user lists only its own buckets"


def test_a_revoked_key_fails_on_every_gateway(strata):
    ak, sk = new_user(strata, "gone-" + strata.mode)
    clients = [client(strata, ak, sk, ep) for ep in strata.endpoints]
    for c in clients:
        c.list_buckets()
    listed = admin(strata, "key", "list", "gone-" + strata.mode)
    assert ak in listed and sk not in listed, "listings never show a secret"
    admin(strata, "key", "revoke", ak)
    t0 = time.time()
    for c in clients:
        while True:
            try:
                c.list_buckets()
            except ClientError as e:
                assert e.response["Error"]["Code"] == "InvalidAccessKeyId"
                break
            assert time.time() - t0 < 7, "a revoked key must stop working within seconds"
            time.sleep(0.25)
