#!/usr/bin/env python3
"""Writes ops/grafana/strata.json, the Grafana dashboard of Strata's metrics (run it after
changing the panels; compat-tests/test_grafana.py checks every metric it queries exists)."""

import json
from pathlib import Path

ROWS = [
    ("Cluster", [
        ("Primary masters", "sum(strata_master_is_primary)", "short", "stat"),
        ("Epoch", "max(strata_master_epoch)", "short", "stat"),
        ("Workers", 'sum by (state) (strata_master_workers)', "short", "stat"),
        ("Persist backlog", "sum(strata_master_persist_backlog)", "short", "stat"),
    ]),
    ("Cache", [
        ("Hit ratio", "sum(rate(strata_worker_cache_hits_total[5m])) / clamp_min(sum(rate(strata_worker_cache_hits_total[5m])) + sum(rate(strata_worker_cache_misses_total[5m])), 1e-9)", "percentunit", "timeseries"),
        ("Served from cache vs read from under stores", 'sum by (tier) (rate(strata_worker_cache_hit_bytes_total[5m]))\nsum(rate(strata_worker_ufs_bytes_read_total[5m]))', "Bps", "timeseries"),
        ("Hit ratio by bucket", 'sum by (bucket) (rate(strata_worker_cache_bucket_lookups_total{result="hit"}[5m])) / clamp_min(sum by (bucket) (rate(strata_worker_cache_bucket_lookups_total[5m])), 1e-9)', "percentunit", "timeseries"),
        ("Pinned bytes", "sum(strata_worker_cache_pinned_bytes)", "bytes", "timeseries"),
        ("Used / quota per tier", "sum by (tier) (strata_worker_cache_bytes) / sum by (tier) (strata_worker_cache_quota_bytes)", "percentunit", "timeseries"),
        ("Evictions and demotions", 'sum by (tier) (rate(strata_worker_cache_evictions_total[5m]))\nsum by (tier) (rate(strata_worker_cache_demotions_total[5m]))', "ops", "timeseries"),
        ("Fill latency p99", "histogram_quantile(0.99, sum by (le) (rate(strata_worker_fill_seconds_bucket[5m])))", "s", "timeseries"),
        ("Single-flight waits", "sum(rate(strata_worker_fill_waits_total[5m]))", "ops", "timeseries"),
    ]),
    ("Under stores", [
        ("Requests by mount and op", "sum by (mount, op) (rate(strata_ufs_requests_total[5m]))", "reqps", "timeseries"),
        ("Errors by mount", "sum by (mount, kind) (rate(strata_ufs_errors_total[5m]))", "reqps", "timeseries"),
        ("Bytes read / written", 'sum by (mount) (rate(strata_ufs_read_bytes_total[5m]))\nsum by (mount) (rate(strata_ufs_written_bytes_total[5m]))', "Bps", "timeseries"),
        ("Latency p99 by op", "histogram_quantile(0.99, sum by (le, op) (rate(strata_ufs_request_seconds_bucket[5m])))", "s", "timeseries"),
    ]),
    ("Master", [
        ("Metadata transactions", "sum by (result) (rate(strata_master_kv_transactions_total[5m]))", "ops", "timeseries"),
        ("Transaction latency p99", "histogram_quantile(0.99, sum by (le) (rate(strata_master_kv_transaction_seconds_bucket[5m])))", "s", "timeseries"),
        ("RPC latency p99", "histogram_quantile(0.99, sum by (le, rpc) (rate(strata_master_rpc_seconds_bucket[5m])))", "s", "timeseries"),
        ("RPC errors", "sum by (rpc, kind) (rate(strata_master_rpc_errors_total[5m]))", "reqps", "timeseries"),
    ]),
    ("Gateways", [
        ("Requests by op", "sum by (op) (rate(strata_gateway_requests_total[5m]))", "reqps", "timeseries"),
        ("5xx responses", 'sum by (op) (rate(strata_gateway_requests_total{status=~"5.."}[5m]))', "reqps", "timeseries"),
        ("Bytes in / out", "sum(rate(strata_gateway_bytes_in_total[5m]))\nsum(rate(strata_gateway_bytes_out_total[5m]))", "Bps", "timeseries"),
        ("Request latency p99", "histogram_quantile(0.99, sum by (le, op) (rate(strata_gateway_request_seconds_bucket[5m])))", "s", "timeseries"),
    ]),
]


def build():
    panels, pid, y = [], 1, 0
    for title, items in ROWS:
        panels.append({"type": "row", "title": title, "id": pid, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        pid, y, x = pid + 1, y + 1, 0
        for name, exprs, unit, kind in items:
            w = 6 if kind == "stat" else 12
            if x + w > 24:
                x, y = 0, y + 8
            targets = [{"expr": e, "refId": chr(65 + i), "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                       for i, e in enumerate(exprs.split("\n"))]
            panels.append({"type": kind, "title": name, "id": pid, "targets": targets,
                           "datasource": {"type": "prometheus", "uid": "${datasource}"},
                           "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                           "gridPos": {"h": 8 if kind != "stat" else 4, "w": w, "x": x, "y": y}})
            pid, x = pid + 1, x + w
        y += 8
    return {
        "title": "Strata", "uid": "strata-overview", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "tags": ["strata"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "ops" / "grafana" / "strata.json"
    out.write_text(json.dumps(build(), indent=1) + "\n")
    print(out)
