"""The Grafana dashboard and the Prometheus alert rules in ops/ (and the chart's copies) query
only metrics Strata exports: the names the Rust sources register, checked against a scrape."""

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
METRIC = re.compile(r"\bstrata_[a-z0-9_]+\b")
REGISTERED = re.compile(r'metrics::(counter|gauge|histogram)!\(\s*"(strata_[a-z0-9_]+)"')


def exported():
    names = set()
    for src in REPO.glob("*/src/**/*.rs"):
        for kind, name in REGISTERED.findall(src.read_text()):
            names.add(name)
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


def queries():
    dash = json.loads((REPO / "ops/grafana/strata.json").read_text())
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield f"dashboard panel {p['title']!r}", t["expr"]
    rules = yaml.safe_load((REPO / "ops/prometheus/strata-alerts.yml").read_text())
    for g in rules["groups"]:
        for r in g["rules"]:
            assert {"alert", "expr", "for", "annotations"} <= r.keys(), r
            yield f"alert {r['alert']}", r["expr"]


def test_every_queried_metric_is_exported():
    names = exported()
    assert "strata_worker_cache_hits_total" in names and "strata_ufs_request_seconds_bucket" in names
    seen = 0
    for where, expr in queries():
        used = set(METRIC.findall(expr))
        assert used, f"{where} queries no Strata metric: {expr}"
        unknown = used - names
        assert not unknown, f"{where} queries {unknown}, which Strata does not export"
        seen += 1
    assert seen >= 20


def test_the_metrics_table_lists_every_metric():
    table = (REPO / "ops/metrics.md").read_text()
    listed = set(re.findall(r"^\| `(strata_[a-z0-9_]+)` \|", table, re.M))
    registered = {n for n in exported() if not n.endswith(("_bucket", "_sum", "_count"))}
    assert not registered - listed, f"ops/metrics.md misses {registered - listed}"
    assert not listed - registered, f"ops/metrics.md lists {listed - registered}, which nothing registers"


def test_the_chart_ships_the_same_files():
    for rel in ["ops/grafana/strata.json", "ops/prometheus/strata-alerts.yml"]:
        copy = REPO / "helm/strata/files" / Path(rel).name
        assert copy.read_text() == (REPO / rel).read_text(), f"{copy} differs from {rel}: copy it again"


def test_a_scrape_has_the_registered_names(strata, bucket, s3):
    """The source scan above is only trusted if a live scrape agrees with it."""
    import requests
    s3.put_object(Bucket=bucket, Key="g", Body=b"x" * 5000)
    s3.get_object(Bucket=bucket, Key="g")["Body"].read()
    text = "".join(requests.get(p[3] + "/metrics", timeout=10).text for p in strata.procs.values())
    scraped = set(re.findall(r"^(strata_[a-z0-9_]+)", text, re.M))
    assert scraped, text[:500]
    assert not scraped - exported(), f"exported but not found in the sources: {scraped - exported()}"
