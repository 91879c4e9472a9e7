"""`make bench`: 1 GiB through a three-process cluster (master, worker, gateway) and through
`strata local`: one single PUT, one multipart upload, one GET and one multipart download, with
the throughput of each and the peak resident memory (VmHWM) of the gateway process. With a
real etcd (STRATA_TEST_ETCD), the failover time of two masters over several kill -9s."""

import os
import sys
import tempfile
import time
from pathlib import Path

from boto3.s3.transfer import TransferConfig

sys.path.insert(0, str(Path(__file__).parent))
from conftest import start_cluster, start_local  # noqa: E402

GIB = 1 << 30


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(label, size, fn):
    t = time.time()
    fn()
    dt = time.time() - t
    print(f"  {label:<28} {size / dt / (1 << 20):8.1f} MiB/s  ({dt:.1f} s)")


def run(mode, start):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "one-gib.bin"
        with open(src, "wb") as f:
            for _ in range(GIB >> 20):
                f.write(os.urandom(1 << 20))
        c = start(tmp)
        try:
            s3 = c.client()
            s3.create_bucket(Bucket="bench")
            gw = c.procs["gateway1" if mode == "cluster" else "local"][0].pid
            print(f"{mode}: 1 GiB object")
            with open(src, "rb") as f:
                timed("single PUT", GIB, lambda: s3.put_object(Bucket="bench", Key="single", Body=f))
            mp = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=8)
            timed("multipart upload (8 MiB)", GIB, lambda: s3.upload_file(str(src), "bench", "multi", Config=mp))

            def get():
                body = s3.get_object(Bucket="bench", Key="single")["Body"]
                while body.read(1 << 20):
                    pass
            timed("single GET", GIB, get)
            timed("ranged download (8 MiB)", GIB, lambda: s3.download_file("bench", "multi", str(tmp / "out"), Config=mp))
            print(f"  gateway peak RSS (VmHWM)     {peak_rss_mib(gw):8.1f} MiB")
        finally:
            c.stop_all()


def failover(kills=5, lease_ms=3000):
    """Kills the primary under a write/read loop `kills` times (restarting it as a standby each
    time) and prints the time from the last success before to the first success after."""
    from test_ha import kill_primary_under_load, master_name, start_ha
    with tempfile.TemporaryDirectory() as tmp:
        c = start_ha(Path(tmp), lease_ms=lease_ms)
        try:
            s3 = c.client(connect_timeout=5, read_timeout=60)
            s3.create_bucket(Bucket="failover")
            print(f"failover (two masters on etcd, lease {lease_ms} ms, kill -9 of the primary under load):")
            gaps = []
            for i in range(kills):
                gap, old, loop = kill_primary_under_load(c, s3, "failover", settle=2.0)
                gaps.append(gap)
                print(f"  kill {i + 1}: {gap:5.2f} s without an answer; {len(loop.errors)} failed requests")
                c.restart(master_name(c, old))
            gaps.sort()
            print(f"  min {gaps[0]:.2f} s, median {gaps[len(gaps) // 2]:.2f} s, max {gaps[-1]:.2f} s")
        finally:
            c.stop_all()


if __name__ == "__main__":
    run("cluster", start_cluster)
    run("local", start_local)
    if os.environ.get("STRATA_TEST_ETCD"):
        failover()
    else:
        print("failover: skipped (needs etcd: run through make bench)")
