"""Every process's /metrics parsed by a real Prometheus parser (prometheus_client's), with the
cache, under-store and master metrics present after traffic, named by Prometheus's conventions
and labelled without object keys."""

import secrets
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

KEY = "private-key-" + secrets.token_hex(4)


def scrape(url):
    r = requests.get(url + "/metrics", timeout=10)
    assert r.status_code == 200, url
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    # The parser raises on anything that is not the text exposition format.
    families = list(text_string_to_metric_families(r.text))
    return r.text, {s.name: s for f in families for s in f.samples}, families


# What each role must export once it has served a write and two reads of the same object.
WORKER = ["strata_worker_cache_hits_total", "strata_worker_cache_misses_total",
          "strata_worker_cache_hit_bytes_total", "strata_worker_cache_bytes", "strata_worker_cache_quota_bytes",
          "strata_worker_cache_pages", "strata_worker_fill_seconds_bucket", "strata_worker_cache_pinned_bytes",
          "strata_worker_page_buffers_in_flight_bytes", "strata_worker_cache_bucket_lookups_total", "strata_ufs_requests_total",
          "strata_ufs_request_seconds_bucket"]
MASTER = ["strata_master_kv_transactions_total", "strata_master_kv_transaction_seconds_bucket",
          "strata_master_is_primary", "strata_master_epoch", "strata_master_workers", "strata_ufs_requests_total",
          "strata_master_syncs_running", "strata_master_syncs_waiting"]
GATEWAY = ["strata_gateway_requests_total", "strata_gateway_request_seconds_bucket", "strata_gateway_bytes_out_total",
           "strata_gateway_requests_in_flight", "strata_gateway_bucket_requests_total",
           "strata_gateway_bucket_sent_bytes_total", "strata_gateway_bucket_received_bytes_total"]


def roles(strata):
    if strata.mode == "local":
        return {"local": (strata.endpoint, WORKER + MASTER + GATEWAY)}
    procs = {name: p[3] for name, p in strata.procs.items()}
    want = {"master": MASTER, "worker": WORKER, "gateway1": GATEWAY}
    return {name: (procs[name], want[name]) for name in want}


def test_every_process_exports_parseable_conventional_metrics(strata, bucket, s3):
    body = secrets.token_bytes(3 << 20)
    # Written to the under store only: the first read misses and fills, the second hits.
    through = lambda request, **_: request.headers.__setitem__("x-strata-write-type", "THROUGH")
    s3.meta.events.register("before-sign.s3.PutObject", through)
    try:
        s3.put_object(Bucket=bucket, Key=KEY, Body=body)
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObject", through)
    for _ in range(2):
        assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == body
    time.sleep(1.5)  # a heartbeat sets the cache gauges; the master samples every 10 s from start
    for role, (url, want) in roles(strata).items():
        text, samples, families = scrape(url)
        missing = [m for m in want if m not in samples]
        assert not missing, f"{role} ({url}) does not export {missing}"
        for f in families:
            assert f.name.startswith("strata_"), f.name
            for s in f.samples:
                assert "key" not in s.labels and "object" not in s.labels, s
                if f.type == "counter":
                    assert s.name.endswith(("_total", "_created")), s.name
                if f.type == "histogram":
                    assert f.name.endswith("_seconds"), f.name
                if f.name.endswith("_bytes") and f.type != "counter":
                    assert s.value >= 0, s
        # Object keys never become label values (labels stay bounded).
        assert KEY not in text, f"{role} exports a label with an object key"
    # The gateway counted this bucket's bytes (its label is the bucket's name, or "other" once
    # 100 names are in use).
    gw = roles(strata).get("gateway1", roles(strata).get("local"))[0]
    _, samples, families = scrape(gw)
    sent = [s for f in families for s in f.samples if s.name == "strata_gateway_bucket_sent_bytes_total"
            and s.labels["bucket"] in (bucket, "other")]
    assert sum(s.value for s in sent) >= 2 * len(body), sent
    assert samples["strata_gateway_requests_in_flight"].value >= 0
    if strata.mode == "local":
        _, samples, families = scrape(strata.endpoint)
        assert samples["strata_worker_cache_hits_total"].value >= 1
        assert samples["strata_worker_cache_misses_total"].value >= 1
        assert samples["strata_master_is_primary"].value == 1


def test_metrics_are_served_without_credentials_but_the_dashboard_is_not(strata):
    url = strata.master_url or strata.endpoint
    assert requests.get(url + "/metrics", timeout=10).status_code == 200
    assert requests.get(url + "/ui", timeout=10).status_code == 401
    # The master (of any mode) serves the dashboard with the root keys.
    r = requests.get(url + "/ui/workers", auth=(strata.access_key, strata.secret_key), timeout=10)
    assert r.status_code == 200 and '<span class="badge live">live</span>' in r.text, r.text[:2000]
