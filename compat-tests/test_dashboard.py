"""The web dashboard in a real browser: headless Chromium (Debian's) loads each page of a
running `strata local` with traffic on it, the test checks what is on the page, and saves
screenshots under compat-tests/out/dashboard/ (or $STRATA_TEST_OUT/dashboard/)."""

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import BIN, REPO, Cluster, free_port

OUT = Path(os.environ.get("STRATA_TEST_OUT", REPO / "compat-tests" / "out")) / "dashboard"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = secrets.token_urlsafe(24)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make compat installs it)")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    c = Cluster("local", [f"http://127.0.0.1:{port}"], "", "", tmp / "local", logs=tmp)
    c.env = {"STRATA_DASHBOARD_TOKEN": TOKEN, "STRATA_HEARTBEAT_INTERVAL_MS": "200",
             "STRATA_TTL_CHECK_INTERVAL_MS": "300"}
    c.start("local", ["local", "--data-dir", str(c.data_dir), "--listen", f"127.0.0.1:{port}"], {}, c.endpoint)
    creds = (c.data_dir / "credentials").read_text()
    fields = dict(line.split(" = ", 1) for line in creds.splitlines() if " = " in line)
    c.access_key, c.secret_key = fields["access_key"], fields["secret_key"]
    yield c
    c.stop_all()


def chromium(*args, url):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", "--window-size=1280,900", *args, url]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr[-2000:]}"
        return r.stdout


def page(c, path, shot=None):
    """The DOM of `path` after its scripts ran, and a screenshot of it if `shot` is given."""
    url = f"{c.endpoint}{path}?token={TOKEN}"
    dom = chromium("--virtual-time-budget=3000", "--dump-dom", url=url)
    if shot:
        OUT.mkdir(parents=True, exist_ok=True)
        chromium("--virtual-time-budget=3000", f"--screenshot={OUT / shot}", "--hide-scrollbars", url=url)
        assert (OUT / shot).stat().st_size > 10_000, "the screenshot is (nearly) blank"
    return dom


def hit_ratio(dom):
    m = re.search(r'id="hit-ratio"><div class="label">[^<]*</div><div class="value">([^<]*)</div>', dom)
    assert m, dom[:3000]
    return 0.0 if m.group(1) == "–" else float(m.group(1).rstrip("%"))


def test_pages_are_closed_without_credentials(local):
    for path in ["/ui", "/ui/workers", "/ui/buckets", "/ui/jobs", "/ui/errors"]:
        r = requests.get(local.endpoint + path, timeout=10)
        assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"], path
        assert requests.get(local.endpoint + path, auth=(local.access_key, "wrong"), timeout=10).status_code == 401
        r = requests.get(local.endpoint + path, auth=(local.access_key, local.secret_key), timeout=10)
        assert r.status_code == 200 and "<main" in r.text, path
    assert requests.get(local.endpoint + "/ui?token=wrong", timeout=10).status_code == 401
    # S3 on the same port is untouched.
    assert local.client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_each_page_in_a_browser(local):
    s3 = local.client()
    bucket = "dash-" + secrets.token_hex(4)
    s3.create_bucket(Bucket=bucket)
    blobs = {f"data/part-{i}.bin": secrets.token_bytes((2 << 20) + i) for i in range(3)}
    for k, v in blobs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    # One object written to the under store only: its first read misses.
    through = lambda request, **_: request.headers.__setitem__("x-strata-write-type", "THROUGH")
    s3.meta.events.register("before-sign.s3.PutObject", through)
    s3.put_object(Bucket=bucket, Key="data/through.bin", Body=b"t" * (1 << 20))
    s3.meta.events.unregister("before-sign.s3.PutObject", through)
    blobs["data/through.bin"] = b"t" * (1 << 20)
    time.sleep(0.6)  # a heartbeat
    before = hit_ratio(page(local, "/ui"))
    for _ in range(3):
        for k, v in blobs.items():
            assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == v
    # The charts need two samples of the master's sampler (one every 10 s).
    deadline = time.time() + 30
    while "<polyline" not in requests.get(local.endpoint + "/ui", auth=(local.access_key, local.secret_key)).text:
        assert time.time() < deadline, "no chart after 30 s"
        time.sleep(1)

    overview = page(local, "/ui", "overview.png")
    assert overview.count("<polyline") == 3, "a chart is missing"
    after = hit_ratio(overview)
    assert after > before and after > 50, (before, after)
    assert 'id="health">healthy' in overview
    assert re.search(r'id="misses"><div class="label">[^<]*</div><div class="value">[1-9]', overview), "no miss shown"
    assert 'id="store">' in overview and 'id="epoch">' in overview
    assert re.search(r'id="live" class="[^"]*">live · ', overview), "the live-refresh script did not run"

    workers = page(local, "/ui/workers", "workers.png")
    bars = re.findall(r'class="tier" data-tier="(\w+)" data-used="(\d+)" data-quota="(\d+)"', workers)
    assert [b[0] for b in bars] == ["MEM", "SSD"], bars
    assert int(bars[0][1]) > 0 and int(bars[0][2]) > 0, bars
    assert '<span class="badge live">live</span>' in workers

    buckets = page(local, "/ui/buckets", "buckets.png")
    row = re.search(rf'<tr class="bucket" data-bucket="{bucket}">(.*?)</tr>', buckets)
    assert row, buckets[:3000]
    assert f"file://" in row.group(1) and bucket in row.group(1) and "CACHE_THROUGH" in row.group(1)
    assert re.search(r'class="num objects">4<', row.group(1)), row.group(1)

    # A cache load through the real `strata admin` (it finds the admin port in the data folder).
    admin = subprocess.run([BIN, "admin", "--data-dir", str(local.data_dir), "load", bucket],
                           capture_output=True, text=True, timeout=120)
    assert admin.returncode == 0 and "loaded 4 objects" in admin.stdout, admin.stdout + admin.stderr
    time.sleep(0.6)  # a heartbeat carries the worker's load counters
    jobs = page(local, "/ui/jobs", "jobs.png")
    assert 'id="persist"' in jobs
    load = re.search(r'<tr class="load" data-worker="\d+">(.*?)</tr>', jobs)
    assert load and re.search(r'class="num done">[1-9]', load.group(1)), jobs[:4000]
    passes = re.search(r'id="ttl-pass-count"><div class="label">[^<]*</div><div class="value">(\d+) \((\d+)\)', jobs)
    assert passes and int(passes.group(1)) >= 1 and passes.group(2) == "0", jobs[:4000]
    assert '<a href="/ui/errors">Errors</a>' in jobs


def test_recent_errors_page(local, tmp_path):
    s3 = local.client()
    bucket = "dash-err-" + secrets.token_hex(3)
    folder = tmp_path / "mounted"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    admin = subprocess.run([BIN, "admin", "--data-dir", str(local.data_dir), "mount", bucket, f"file://{folder}",
                            "--sync-interval", "0"], capture_output=True, text=True, timeout=60)
    assert admin.returncode == 0, admin.stderr
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    # The mounted folder becomes a file: the under store fails (not a 404), the request 503.
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_object(Bucket=bucket, Key="a.txt")
    errors = page(local, "/ui/errors", "errors.png")
    rows = re.findall(r'<tr class="error" data-kind="(\w+)"><td>[^<]*</td><td>\w+</td><td>([^<]*)</td>', errors)
    assert any(k == "under_store" and str(folder) in m for k, m in rows), errors[:4000]
    assert any(k == "request" and f"GetObject /{bucket}/a.txt answered 503" in m for k, m in rows), rows
