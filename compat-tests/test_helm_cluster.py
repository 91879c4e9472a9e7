"""The rendered cluster runs: `helm template` output started as local processes (helm_pods.py),
then boto3 and aws cli through the gateway Service, the mount Job's own script, and an upgrade
that changes the ConfigMap and rolls the pods with the data intact."""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import pytest
import requests
import yaml
from botocore.config import Config

from conftest import moto_server
from helm_pods import Cluster
from test_helm import BIN, CHART, NS, helm

pytestmark = pytest.mark.helm

CASES = {
    "embedded": {},
    # Two masters elect a primary in the chart's own three-member etcd, which also holds the metadata.
    "ha-etcd": {"metadata": {"backend": "etcd"}, "masters": {"replicas": 2}, "config": {"leaseTtlMs": 2000}},
    # One worker a node, advertising its pod IP, with a memory tier too small for the object so
    # that pages land in the hostPath SSD tier.
    "daemonset": {"workers": {"kind": "DaemonSet", "tiers": [
        {"medium": "MEM", "quota": "1MiB"},
        {"medium": "SSD", "quota": "256MiB", "volume": {"type": "hostPath", "path": "/mnt/nvme/strata"}},
        {"medium": "HDD", "quota": "512MiB", "volume": {"type": "hostPath", "path": "/mnt/hdd/strata"}}],
        "s3": {"enabled": True}}},
}


def values(tmp, case, moto_port, domain=""):
    v = {
        # The shared volume of the root under store: one folder all processes see, like an RWX claim.
        "rootUfs": {"mountPath": "/var/lib/strata/ufs"},
        "config": {"heartbeatIntervalMs": 500, "domain": domain, **CASES[case].get("config", {})},
        "workers": {"tiers": [{"medium": "MEM", "quota": "64MiB"},
                              {"medium": "SSD", "quota": "256MiB", "volume": {"type": "pvc", "size": "1Gi"}}]},
        "mounts": [
            {"bucket": "lake", "uri": f"file://{tmp}/lake", "syncInterval": "0", "readOnly": True},
            {"bucket": "remote", "uri": "s3://moto-data/in", "syncInterval": "0",
             "options": {"endpoint": f"http://127.0.0.1:{moto_port}", "region": "us-east-1"},
             "secretOptions": {"secretName": "moto-creds",
                               "options": {"access_key_id": "id", "secret_access_key": "key"}}},
        ],
    }
    for k, sub in CASES[case].items():
        if k != "config":
            v[k] = {**v.get(k, {}), **sub}
    return v


def render(tmp, vals, name):
    f = tmp / f"{name}.yaml"
    f.write_text(yaml.safe_dump(vals))
    out = helm("template", "strata", str(CHART), "--namespace", NS, "-f", str(f)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def client(cluster, endpoint):
    creds = cluster.secrets["strata-auth"]
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds["root-access-key"],
                        aws_secret_access_key=creds["root-secret-key"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def aws(cluster, endpoint, *args):
    creds = cluster.secrets["strata-auth"]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=creds["root-access-key"], AWS_SECRET_ACCESS_KEY=creds["root-secret-key"],
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    r = subprocess.run([str(Path(sys.executable).parent / "aws"), "--endpoint-url", endpoint, *args],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def virtual_host_get(cluster, endpoint, domain, bucket, key):
    """A GET of BUCKET.<domain>/KEY, signed for that host and sent to the gateway's port."""
    port = endpoint.rsplit(":", 1)[1]
    s3 = boto3.client("s3", endpoint_url=f"http://{domain}:{port}", region_name="us-east-1",
                      aws_access_key_id=cluster.secrets["strata-auth"]["root-access-key"],
                      aws_secret_access_key=cluster.secrets["strata-auth"]["root-secret-key"],
                      config=Config(s3={"addressing_style": "virtual"}, signature_version="s3v4"))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    host = f"{bucket}.{domain}:{port}"
    assert f"//{host}/" in url, url
    return requests.get(url.replace(f"//{host}/", f"//127.0.0.1:{port}/"), headers={"Host": host}, timeout=10)


@pytest.fixture
def moto():
    with moto_server() as url:
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="moto", aws_secret_access_key="moto")
        s3.create_bucket(Bucket="moto-data")
        s3.put_object(Bucket="moto-data", Key="in/remote.txt", Body=b"from the remote store")
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture
def run_dir():
    """Not under /tmp: the pods mount /tmp, and the harness maps mount paths in what they run."""
    base = Path.home() / ".cache" / "strata" / "helm-runs"
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(dir=base))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("case", list(CASES))
def test_the_rendered_cluster_serves_mounts_and_survives_an_upgrade(run_dir, moto, case):
    tmp_path = run_dir
    if case == "ha-etcd" and not shutil.which("etcd"):
        pytest.skip("etcd is not installed (make deps installs it)")
    started = time.time()
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "old.csv").write_text("a,b\n1,2\n")
    docs = render(tmp_path, values(tmp_path, case, moto), "install")
    binaries = {"/usr/local/bin/strata": BIN, "/usr/local/bin/etcd": shutil.which("etcd") or "etcd"}
    (tmp_path / "k8s").mkdir()
    moto_creds = {"id": "ID" + secrets.token_hex(8), "key": secrets.token_hex(16)}
    cluster = Cluster(tmp_path / "k8s", docs, binaries, secrets={"moto-creds": moto_creds})
    try:
        if any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "strata-etcd" for d in docs):
            cluster.start("StatefulSet", "strata-etcd")
        masters = cluster.start("StatefulSet", "strata-master")
        worker_kind = CASES[case].get("workers", {}).get("kind", "StatefulSet")
        workers = cluster.start(worker_kind, "strata-worker")
        gateways = cluster.start("Deployment", "strata-gateway")
        assert len(masters) == CASES[case].get("masters", {}).get("replicas", 1) and len(workers) == 1
        assert len(gateways) == 2, "the HPA's minReplicas"
        # What NOTES.txt tells: kubectl exec strata-master-0 -- strata admin report.
        report = cluster.exec("strata-master-0", "admin", "report")
        assert report.returncode == 0, report.stderr
        assert report.stdout.count("standby") == len(masters) - 1, report.stdout
        primary = report.stdout.split()[1]
        assert primary.startswith("http://127.0.0.1:"), report.stdout
        # A standby answers with its own membership, which is empty: ask the primary for workers.
        report = cluster.exec("strata-master-0", "admin", "report", "--master", primary)
        assert "workers: 1" in report.stdout, report.stdout
        endpoint = f"http://127.0.0.1:{cluster.resolve(f'strata-gateway.{NS}.svc.cluster.local', 9000)}"

        # boto3 and aws cli through the gateway Service.
        s3 = client(cluster, endpoint)
        s3.create_bucket(Bucket="photos")
        body = secrets.token_bytes(3 << 20)
        s3.put_object(Bucket="photos", Key="big.bin", Body=body)
        assert s3.get_object(Bucket="photos", Key="big.bin")["Body"].read() == body
        (tmp_path / "note.txt").write_text("through aws cli\n")
        aws(cluster, endpoint, "s3", "cp", str(tmp_path / "note.txt"), "s3://photos/notes/note.txt")
        aws(cluster, endpoint, "s3", "cp", "s3://photos/notes/note.txt", str(tmp_path / "back.txt"))
        assert (tmp_path / "back.txt").read_text() == "through aws cli\n"
        assert "notes/" in aws(cluster, endpoint, "s3", "ls", "s3://photos/")
        if worker_kind == "DaemonSet":
            ssd = tmp_path / "k8s" / "host" / "mnt" / "nvme" / "strata"
            assert sum(f.stat().st_size for f in ssd.rglob("*") if f.is_file()) >= 2 << 20, "pages in the SSD tier"
            # The workers' own S3 (workers.s3): the same objects, and writes seen by the gateways.
            local = client(cluster, f"http://127.0.0.1:{cluster.resolve(f'strata-worker-s3.{NS}.svc.cluster.local', 9002)}")
            assert local.get_object(Bucket="photos", Key="big.bin")["Body"].read() == body
            local.put_object(Bucket="photos", Key="from-worker.txt", Body=b"node-local")
            assert s3.get_object(Bucket="photos", Key="from-worker.txt")["Body"].read() == b"node-local"
        # CreateBucket made its folder in the shared root under store.
        assert (tmp_path / "k8s" / "pvc" / "strata-root-ufs" / "photos" / "big.bin").stat().st_size == len(body)

        # The mount Job's script, twice: the second run finds the mounts in place.
        first = cluster.run_job("strata-mounts")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "mounted lake" in first.stdout and "mounted remote" in first.stdout, first.stdout
        again = cluster.run_job("strata-mounts")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "lake: mounted already" in again.stdout and "remote: mounted already" in again.stdout, again.stdout
        assert s3.get_object(Bucket="lake", Key="old.csv")["Body"].read() == b"a,b\n1,2\n"
        assert s3.get_object(Bucket="remote", Key="remote.txt")["Body"].read() == b"from the remote store"
        with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
            s3.put_object(Bucket="lake", Key="new.csv", Body=b"x")  # readOnly: true
        # A secret option reached the mount, and no plain field holds it.
        assert not any(v in yaml.safe_dump(docs) for v in moto_creds.values())

        # Before the upgrade there is no domain: a virtual-hosted request is not understood.
        assert virtual_host_get(cluster, endpoint, "s3.strata.test", "photos", "notes/note.txt").status_code != 200

        # helm upgrade with a changed config: every Strata pod's template changes; roll them.
        old = {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
               for w in docs if w["kind"] in ("StatefulSet", "Deployment") and w["metadata"]["name"] != "strata-etcd"}
        up = render(tmp_path, values(tmp_path, case, moto, domain="s3.strata.test"), "upgrade")
        cluster.apply(up)
        new = {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
               for w in up if w["kind"] in ("StatefulSet", "Deployment") and w["metadata"]["name"] != "strata-etcd"}
        assert set(old) == set(new) and all(old[k] != new[k] for k in old)
        pids = {p.name: p.proc.pid for p in cluster.pods.values()}
        cluster.start("StatefulSet", "strata-master")
        cluster.start(worker_kind, "strata-worker")
        cluster.start("Deployment", "strata-gateway")
        assert all(p.proc.pid != pids[p.name] for p in cluster.pods.values() if "etcd" not in p.name)
        endpoint = f"http://127.0.0.1:{cluster.resolve(f'strata-gateway.{NS}.svc.cluster.local', 9000)}"
        s3 = client(cluster, endpoint)
        assert s3.get_object(Bucket="photos", Key="big.bin")["Body"].read() == body
        assert s3.get_object(Bucket="lake", Key="old.csv")["Body"].read() == b"a,b\n1,2\n"
        assert s3.get_object(Bucket="remote", Key="remote.txt")["Body"].read() == b"from the remote store"
        r = virtual_host_get(cluster, endpoint, "s3.strata.test", "photos", "notes/note.txt")
        assert r.status_code == 200 and r.text == "through aws cli\n", r.text
        after = cluster.run_job("strata-mounts")  # post-upgrade hook
        assert after.returncode == 0 and "mounted already" in after.stdout, after.stdout + after.stderr
    finally:
        cluster.stop_all()
    assert time.time() - started < 120
