"""`make bench`: `strata bench` against `strata local`, a three-process cluster (master, worker,
gateway), the same cluster's worker serving S3 itself (`--s3-listen`, column "worker S3") and
nginx serving the same bytes from /dev/shm, in one run on this machine; each figure with its
ratios cluster/local, cluster/nginx and worker S3/nginx. BENCH_SECONDS per figure (default 5),
BENCH_CONCURRENCY (64), BENCH_OBJECTS (1000), BENCH_LIST_OBJECTS (10000). Then 1 GiB: the aws
cli's upload (multipart, and one PUT), 8 concurrent GET streams (warm), and the peak RSS of the
gateway (of `strata local`: against its memory tier's quota) during 64 concurrent GETs;
BENCH_LARGE=0 skips these (BENCH_LARGE_MIB sizes the object). BENCH_NOCACHE=1 adds a cluster whose
gateway has its metadata cache off (STRATA_META_CACHE=off), as a last column. BENCH_BEFORE=PATH, an
older strata binary: `strata local` and the cluster run from it too (the same client, same run), and
a before/after table follows."""

import json
import os
import threading
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
LARGE = os.environ.get("BENCH_LARGE", "1") != "0"
GIB = int(os.environ.get("BENCH_LARGE_MIB", "1024")) << 20  # the "1 GiB" object
MEM_QUOTA_MIB = 512  # the default memory tier of `strata local` and of a worker
BEFORE = os.environ.get("BENCH_BEFORE")


def bench(endpoint, ak, sk, workload, *args):
    cmd = [BIN, "bench", workload, "--endpoint", endpoint, f"--access-key={ak}", f"--secret-key={sk}",
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


def rss_mib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def curl_gets(urls, seconds=None):
    """GETs every URL at once with curl; MiB/s of all the bytes together."""
    limit = ["--max-time", str(seconds)] if seconds else []
    t = time.time()
    ps = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", *limit, u],
                           stdout=subprocess.PIPE, text=True) for u in urls]
    total = sum(int(p.communicate()[0] or 0) for p in ps)
    return total / (time.time() - t) / (1 << 20)


def peak_rss_during(pids, fn):
    """The largest resident size of each process while `fn` runs (sampled every 50 ms)."""
    peak, done = {p: 0.0 for p in pids}, threading.Event()

    def sample():
        while not done.is_set():
            for p in pids:
                peak[p] = max(peak[p], rss_mib(p))
            time.sleep(0.05)
    t = threading.Thread(target=sample)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return peak


def aws_upload_mib_s(c, src, key, tmp, single):
    env = {}
    if single:
        conf = tmp / "aws-single-put.conf"
        conf.write_text("[default]\ns3 =\n  multipart_threshold = 6GB\n")
        env["AWS_CONFIG_FILE"] = str(conf)
    t = time.time()
    c.aws("s3", "cp", str(src), f"s3://{BUCKET}/{key}", env=env)
    return GIB / (time.time() - t) / (1 << 20)


def large_figures(c, mode, tmp, src):
    """1 GiB through the aws cli, 8 warm GET streams, and RSS during 64 GETs."""
    f = {}
    print("  aws s3 cp 1 GiB (multipart, 8 MiB parts), and as one PUT", flush=True)
    try:
        c.client().create_bucket(Bucket=BUCKET)
    except c.client().exceptions.ClientError as e:  # the 4 KiB figures made it
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    f["mpu"] = aws_upload_mib_s(c, src, "large-mpu", tmp, single=False)
    f["put1g"] = aws_upload_mib_s(c, src, "large", tmp, single=True)
    url = c.client().generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "large"}, ExpiresIn=3600)
    curl_gets([url])  # warm
    print("  1 GiB GET, 8 streams (warm)", flush=True)
    f["get8"] = curl_gets([url] * 8)
    print("  1 GiB GET, 64 streams, RSS sampled", flush=True)
    gw = c.procs[{"local": "local", "local_before": "local", "wS3": "worker"}.get(mode, "gateway1")][0].pid
    pids = [gw] + ([c.procs["worker"][0].pid] if mode in ("cluster", "nocache", "cluster_before") else [])
    peak = peak_rss_during(pids, lambda: curl_gets([url] * 64, seconds=int(SECONDS) * 3))
    f["rss64"] = peak[gw]
    if len(pids) > 1:
        f["worker_rss64"] = peak[pids[1]]
    return f


def nginx_large(ep, shm, src):
    shutil.copyfile(src, shm / BUCKET / "large")
    (shm / BUCKET / "large").chmod(0o644)
    url = f"{ep}/{BUCKET}/large"
    curl_gets([url])
    return {"get8": curl_gets([url] * 8)}


def nginx_figures(tmp, src=None):
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
            if src:
                print("  1 GiB GET, 8 streams (warm)", flush=True)
                f.update(nginx_large(ep, shm, src))
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


LARGE_ROWS = [
    ("mpu", "aws cli 1 GiB multipart upload MiB/s", "{:.0f}"),
    ("put1g", "aws cli 1 GiB single PUT MiB/s", "{:.0f}"),
    ("get8", "1 GiB GET, 8 streams, warm, MiB/s", "{:.0f}"),
    ("rss64", "S3 process peak RSS MiB, 64 GETs", "{:.0f}"),
    ("worker_rss64", "worker peak RSS MiB, 64 GETs", "{:.0f}"),
]


def table(title, rows, figures):
    nocache = "nocache" in figures
    print(f"\n{title:<34}     local    cluster  worker S3      nginx  cluster/local  cluster/nginx"
          f"  wS3/nginx" + ("    no cache" if nocache else ""))
    for k, label, fmt in rows:
        vals = [figures[m].get(k) for m in ("local", "cluster", "wS3", "nginx")]
        cells = [(fmt.format(v) if v is not None else "-").rjust(10) for v in vals]
        extra = ""
        if nocache:
            v = figures["nocache"].get(k)
            extra = (fmt.format(v) if v is not None else "-").rjust(12)
        print(f"{label:<34}{''.join(cells)}  {ratio(vals[1], vals[0]):>13}  {ratio(vals[1], vals[3]):>13}"
              f"  {ratio(vals[2], vals[3]):>9}{extra}")


def before_after(figures):
    """Each figure of `strata local` and the cluster from BENCH_BEFORE's binary and from this one."""
    print(f"\nbefore ({BEFORE}) and after{'':<6}local before      local  after/before"
          "  cluster before    cluster  after/before")
    for k, label, fmt in ROWS + (LARGE_ROWS if LARGE else []):
        cells = []
        for mode in ("local", "cluster"):
            b, a = figures[mode + "_before"].get(k), figures[mode].get(k)
            cells.append(f"{(fmt.format(b) if b is not None else '-'):>12} {(fmt.format(a) if a is not None else '-'):>10}"
                         f"  {ratio(a, b):>12}")
        print(f"{label:<34}{'  '.join(cells)}")


def main():
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = None
        if LARGE:
            src = tmp / "one-gib.bin"
            with open(src, "wb") as fh:
                for _ in range(GIB >> 20):
                    fh.write(os.urandom(1 << 20))
        modes = [("local", start_local), ("cluster", start_cluster),
                 ("wS3", lambda t: start_cluster(t, worker_s3=True))]
        if os.environ.get("BENCH_NOCACHE"):
            modes.append(("nocache", lambda t: start_cluster(t, env={"STRATA_META_CACHE": "off"})))
        if BEFORE:
            modes += [("local_before", lambda t: start_local(t, bin=BEFORE)),
                      ("cluster_before", lambda t: start_cluster(t, bin=BEFORE))]
        for mode, start in modes:
            (tmp / mode).mkdir()
            print(f"{mode}:", flush=True)
            c = start(tmp / mode)
            try:
                figures[mode] = strata_figures(c)
                if src:
                    figures[mode].update(large_figures(c, mode, tmp, src))
            finally:
                c.stop_all()
        print("nginx:", flush=True)
        figures["nginx"] = nginx_figures(tmp, src)
    table(f"figure ({SECONDS} s each)", ROWS, figures)
    if LARGE:
        table("1 GiB figures", LARGE_ROWS, figures)
        loc, clu, ws3, ngx = figures["local"], figures["cluster"], figures["wS3"], figures["nginx"]
        print(f"multipart upload / single PUT: local {ratio(loc['mpu'], loc['put1g'])}, "
              f"cluster {ratio(clu['mpu'], clu['put1g'])}, worker S3 {ratio(ws3['mpu'], ws3['put1g'])}")
        print(f"8-stream GET / nginx from tmpfs: local {ratio(loc['get8'], ngx.get('get8'))}, "
              f"cluster {ratio(clu['get8'], ngx.get('get8'))}, worker S3 {ratio(ws3['get8'], ngx.get('get8'))}")
        print(f"RSS during 64 GETs vs the {MEM_QUOTA_MIB} MiB memory tier: strata local {loc['rss64']:.0f} MiB "
              f"(quota {loc['rss64'] - MEM_QUOTA_MIB:+.0f}), cluster worker {clu['worker_rss64']:.0f} MiB "
              f"(quota {clu['worker_rss64'] - MEM_QUOTA_MIB:+.0f}), cluster gateway {clu['rss64']:.0f} MiB, "
              f"worker serving S3 {ws3['rss64']:.0f} MiB (quota {ws3['rss64'] - MEM_QUOTA_MIB:+.0f})")
    if BEFORE:
        before_after(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
