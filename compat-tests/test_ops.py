"""Health, readiness and metrics on every process; durability across restarts."""

import hashlib
import os

import requests


def ports(strata):
    return [p[3] for p in strata.procs.values()]


def test_health_ready_metrics_everywhere(strata, bucket, s3):
    s3.put_object(Bucket=bucket, Key="m", Body=b"metrics")
    s3.get_object(Bucket=bucket, Key="m")["Body"].read()
    for url in ports(strata):
        assert requests.get(url + "/healthz").status_code == 200
        assert requests.get(url + "/readyz").status_code == 200
        m = requests.get(url + "/metrics")
        assert m.status_code == 200
    text = requests.get(strata.endpoint + "/metrics").text
    assert 'strata_gateway_requests_total{op="PutObject",status="200"}' in text
    assert "strata_gateway_request_seconds_bucket" in text
    assert "strata_gateway_bytes_in_total" in text and "strata_gateway_bytes_out_total" in text


def test_everything_survives_a_restart(strata, bucket, s3):
    blobs = {f"k{i}": os.urandom(100_000 * i + 1) for i in range(4)}
    for k, v in blobs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    for name in list(strata.procs):
        strata.restart(name)
    s3 = strata.client()
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    for k, v in blobs.items():
        got = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(v).digest(), k
