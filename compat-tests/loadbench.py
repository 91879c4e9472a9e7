"""`make bench`: `strata bench` against `strata local`, a three-process cluster (master, worker,
gateway) and nginx serving the same bytes from /dev/shm, in one run on this machine; each figure
with its ratios cluster/local and cluster/nginx. BENCH_SECONDS per figure (default 5),
BENCH_CONCURRENCY (64), BENCH_OBJECTS (1000), BENCH_LIST_OBJECTS (10000). BENCH_NOCACHE=1 adds a
cluster whose gateway has its metadata cache off (STRATA_META_CACHE=off), as a last column."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, free_port, start_cluster, start_local  # noqa: E402

SECONDS = os.environ.get("BENCH_SECONDS", "5")
CONC = os.environ.get("BENCH_CONCURRENCY", "64")
OBJECTS = os.environ.get("BENCH_OBJECTS", "1000")
LIST_OBJECTS = os.environ.get("BENCH_LIST_OBJECTS", "10000")
SIZE = 4096
BUCKET = "strata-bench"


def bench(endpoint, ak, sk, workload, *args):
    cmd = [BIN, "bench", workload, "--endpoint", endpoint, "--access-key", ak, "--secret-key", sk,
           "--bucket", BUCKET, "--size", str(SIZE), "--duration", f"{SECONDS}s", "--json", *args]
    print(f"  strata bench {workload} {' '.join(args)}", flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=dict(os.environ, RUST_LOG="warn"))
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode})")
    report = json.loads(r.stdout)
    for res in report["results"]:
        if res["errors"]:
            print(f"    {res['errors']} errors, first: {res['first_error']}")
    return report["results"][0]


def strata_figures(c):
    ep, ak, sk = c.endpoint, c.access_key, c.secret_key
    f = {}
    many = ["--concurrency", CONC, "--objects", OBJECTS]
    get = bench(ep, ak, sk, "get", *many, "--keep")
    f["get"], f["get_p50"], f["get_p99"] = get["ops_per_sec"], get["p50_ms"], get["p99_ms"]
    f["head"] = bench(ep, ak, sk, "head", *many, "--reuse", "--keep")["ops_per_sec"]
    one = bench(ep, ak, sk, "get", "--concurrency", "1", "--objects", OBJECTS, "--reuse")
    f["get1_p50"], f["get1_p99"] = one["p50_ms"], one["p99_ms"]
    put = bench(ep, ak, sk, "put", *many)
    f["put"], f["put_p50"] = put["ops_per_sec"], put["p50_ms"]
    lst = bench(ep, ak, sk, "list", "--concurrency", "1", "--objects", LIST_OBJECTS)
    f["list"] = lst["keys_per_sec"]
    return f


def nginx_figures(tmp):
    """nginx serving the same 4 KiB objects from /dev/shm, under the same paths."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        print("nginx is not installed (make bench installs it): no baseline")
        return {}
    shm = Path(tempfile.mkdtemp(prefix="strata-bench-", dir="/dev/shm"))
    shm.chmod(0o755)  # nginx's workers run as www-data
    try:
        folder = shm / BUCKET / f"bench-{SIZE}"
        folder.mkdir(parents=True)
        data = bytes(i * 131 % 251 for i in range(SIZE))
        for i in range(int(OBJECTS)):
            (folder / f"{i:08}").write_bytes(data)
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(f"""daemon off; worker_processes auto; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nodelay on; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; root {shm}; }} }}
""")
        p = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            ep = f"http://127.0.0.1:{port}"
            many = ["--concurrency", CONC, "--objects", OBJECTS, "--reuse", "--keep"]
            get = bench(ep, "x", "x", "get", *many)
            f = {"get": get["ops_per_sec"], "get_p50": get["p50_ms"], "get_p99": get["p99_ms"]}
            f["head"] = bench(ep, "x", "x", "head", *many)["ops_per_sec"]
            one = bench(ep, "x", "x", "get", "--concurrency", "1", "--objects", OBJECTS, "--reuse", "--keep")
            f["get1_p50"], f["get1_p99"] = one["p50_ms"], one["p99_ms"]
            return f
        finally:
            p.terminate()
            p.wait(timeout=10)
    finally:
        shutil.rmtree(shm, ignore_errors=True)


ROWS = [
    ("get", f"4 KiB GET ops/s, {CONC} conns", "{:.0f}"),
    ("get_p50", "  p50 ms", "{:.2f}"),
    ("get_p99", "  p99 ms", "{:.2f}"),
    ("head", f"4 KiB HEAD ops/s, {CONC} conns", "{:.0f}"),
    ("put", f"4 KiB PUT ops/s, {CONC} conns", "{:.0f}"),
    ("put_p50", "  p50 ms", "{:.2f}"),
    ("list", "flat listing keys/s, 1 conn", "{:.0f}"),
    ("get1_p50", "4 KiB GET one at a time, p50 ms", "{:.2f}"),
    ("get1_p99", "  p99 ms", "{:.2f}"),
]


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def main():
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        modes = [("local", start_local), ("cluster", start_cluster)]
        if os.environ.get("BENCH_NOCACHE"):
            modes.append(("nocache", lambda t: start_cluster(t, env={"STRATA_META_CACHE": "off"})))
        for mode, start in modes:
            (tmp / mode).mkdir()
            print(f"{mode}:", flush=True)
            c = start(tmp / mode)
            try:
                figures[mode] = strata_figures(c)
            finally:
                c.stop_all()
        print("nginx:", flush=True)
        figures["nginx"] = nginx_figures(tmp)
    print(f"\nfigure ({SECONDS} s each)              local    cluster      nginx  cluster/local  cluster/nginx"
          + ("  no cache" if "nocache" in figures else ""))
    for k, label, fmt in ROWS:
        vals = [figures[m].get(k) for m in ("local", "cluster", "nginx")]
        cells = [(fmt.format(v) if v is not None else "-").rjust(10) for v in vals]
        extra = ""
        if "nocache" in figures:
            v = figures["nocache"].get(k)
            extra = (fmt.format(v) if v is not None else "-").rjust(12)
        print(f"{label:<34}{''.join(cells)}  {ratio(vals[1], vals[0]):>13}  {ratio(vals[1], vals[2]):>13}{extra}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
