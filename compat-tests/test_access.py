"""Users, keys and ACLs as real clients see them: boto3 for the owner and a second user made
with `strata admin user/key create`, plain `requests` for anonymous reads, against `strata local`
(with its admin port) and a cluster of two gateways."""

import json
import os
import subprocess

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
    # The command returns once every gateway refuses the key.
    for c in clients:
        with pytest.raises(ClientError) as e:
            c.list_buckets()
        assert code(e) == "InvalidAccessKeyId"


def test_a_disabled_key_fails_at_once_on_every_gateway_until_enabled(strata):
    ak, sk = new_user(strata, "off-" + strata.mode)
    clients = [client(strata, ak, sk, ep) for ep in strata.endpoints]
    for c in clients:
        c.list_buckets()
    admin(strata, "key", "disable", ak)
    assert "disabled" in admin(strata, "key", "list", "off-" + strata.mode)
    for c in clients:
        with pytest.raises(ClientError) as e:
            c.list_buckets()
        assert code(e) == "InvalidAccessKeyId"
    admin(strata, "key", "enable", ak)
    for c in clients:
        c.list_buckets()


def test_admin_grants_read_write_per_bucket(strata):
    s3 = strata.client()
    uid = "ro-" + strata.mode
    ak, sk = new_user(strata, uid)
    ro = client(strata, ak, sk)
    b, other = "granted-" + strata.mode, "ungranted-" + strata.mode
    for name in (b, other):
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="k", Body=b"v")
    admin(strata, "grant", "--user", uid, "--bucket", b, "read")
    assert [o["Key"] for o in ro.list_objects_v2(Bucket=b)["Contents"]] == ["k"]
    assert ro.get_object(Bucket=b, Key="k")["Body"].read() == b"v"
    with pytest.raises(ClientError) as e:
        ro.put_object(Bucket=b, Key="new", Body=b"x")
    assert code(e) == "AccessDenied", "a read-only key cannot write"
    with pytest.raises(ClientError) as e:
        ro.delete_object(Bucket=b, Key="k")
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        ro.put_bucket_acl(Bucket=b, ACL="public-read")
    assert code(e) == "AccessDenied", "read is not owner"
    names = [x["Name"] for x in ro.list_buckets()["Buckets"]]
    assert b in names and other not in names
    for call in (lambda: ro.list_objects_v2(Bucket=other), lambda: ro.get_object(Bucket=other, Key="k")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDenied", "no grant, no access"
    admin(strata, "grant", "--user", uid, "--bucket", b, "write")
    ro.put_object(Bucket=b, Key="new", Body=b"x")
    admin(strata, "revoke", "--user", uid, "--bucket", b)
    # Grants live in the bucket record: every gateway sees a revoke at once.
    for ep in strata.endpoints:
        with pytest.raises(ClientError) as e:
            client(strata, ak, sk, ep).get_object(Bucket=b, Key="k")
        assert code(e) == "AccessDenied"


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_bucket_policy_public_read_deny_beats_allow_and_source_ip(strata):
    s3 = strata.client()
    uid = "pol-" + strata.mode
    ak, sk = new_user(strata, uid)
    alt = client(strata, ak, sk)
    b = "policed-" + strata.mode
    s3.create_bucket(Bucket=b)
    for k in ("pub/a", "secret/b"):
        s3.put_object(Bucket=b, Key=k, Body=b"data")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=b)
    assert code(e) == "NoSuchBucketPolicy"
    assert requests.get(f"{strata.endpoint}/{b}/pub/a").status_code == 403
    doc = policy(
        {"Sid": "read", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
         "Resource": f"arn:aws:s3:::{b}/*"},
        {"Sid": "list", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::123456789012:user/{uid}"},
         "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{b}", "Condition": {"StringLike": {"s3:prefix": "pub/*"}}},
        {"Sid": "deny", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:Get*",
         "Resource": f"arn:aws:s3:::{b}/secret/*"},
    )
    s3.put_bucket_policy(Bucket=b, Policy=doc)
    assert s3.get_bucket_policy(Bucket=b)["Policy"] == doc
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is True
    for ep in strata.endpoints:  # anonymous only where the policy allows
        assert requests.get(f"{ep}/{b}/pub/a").content == b"data"
        assert requests.get(f"{ep}/{b}/secret/b").status_code == 403
        assert requests.put(f"{ep}/{b}/pub/new", data=b"x").status_code == 403
    assert alt.get_object(Bucket=b, Key="pub/a")["Body"].read() == b"data"
    assert [o["Key"] for o in alt.list_objects_v2(Bucket=b, Prefix="pub/")["Contents"]] == ["pub/a"]
    with pytest.raises(ClientError) as e:
        alt.list_objects_v2(Bucket=b, Prefix="secret/")
    assert code(e) == "AccessDenied", "the condition on s3:prefix holds"
    # An explicit deny beats an ACL grant, and the owner (the root key here) too.
    s3.put_object_acl(Bucket=b, Key="secret/b", ACL="public-read")
    with pytest.raises(ClientError) as e:
        alt.get_object(Bucket=b, Key="secret/b")
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="secret/b")
    assert code(e) == "AccessDenied"
    # Conditions on the client's address: loopback is 127.0.0.1 here.
    s3.put_bucket_policy(Bucket=b, Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}))
    assert requests.get(f"{strata.endpoint}/{b}/secret/b").status_code == 200
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is False, "a fixed network is not public"
    s3.put_bucket_policy(Bucket=b, Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/pub/*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}))
    assert requests.get(f"{strata.endpoint}/{b}/pub/a").status_code == 403
    # Malformed policies are refused with MalformedPolicy and leave the old one.
    for bad in ("{not json", policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                     "Resource": "arn:aws:s3:::another-bucket/*"}),
                policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*",
                        "Condition": {"IpAddress": {"aws:SourceIp": "300.1.2.3/8"}}})):
        with pytest.raises(ClientError) as e:
            s3.put_bucket_policy(Bucket=b, Policy=bad)
        assert code(e) == "MalformedPolicy" and e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Others may not read or change the policy.
    with pytest.raises(ClientError) as e:
        alt.get_bucket_policy(Bucket=b)
    assert code(e) == "AccessDenied"
    s3.delete_bucket_policy(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=b)
    assert code(e) == "NoSuchBucketPolicy"


def test_secret_keys_are_not_in_clear_in_the_store_or_a_backup(strata, tmp_path):
    if strata.mode != "local":
        pytest.skip("the embedded store is the local mode's (a cluster's master keeps it the same way)")
    ak, sk = new_user(strata, "sealed-" + strata.mode)
    backup = tmp_path / "meta.backup"
    admin(strata, "backup", str(backup))
    files = [backup] + [p for p in strata.data_dir.rglob("*") if p.is_file()]
    assert len(files) > 2
    for f in files:
        assert sk.encode() not in f.read_bytes(), f"{f} holds a secret key in clear"
    client(strata, ak, sk).list_buckets()
