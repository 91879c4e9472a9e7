"""`make bench`, a listing of BENCH_MILLION_KEYS (1 000 000) keys end to end: a folder holding
that many empty files is mounted (read-only) into a cluster; `strata admin sync` records them in
the metadata (timed, with progress), then `strata bench list` pages through all of them, flat,
1000 keys a page, one connection."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, start_cluster  # noqa: E402

KEYS = int(os.environ.get("BENCH_MILLION_KEYS", "1000000"))
SECONDS = os.environ.get("BENCH_SECONDS", "5")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "under" / "bench-0"
        folder.mkdir(parents=True)
        t = time.time()
        for i in range(KEYS):
            os.close(os.open(folder / f"{i:08}", os.O_CREAT | os.O_WRONLY, 0o644))
            if i % 200_000 == 0 and i:
                print(f"  {i}/{KEYS} files made", flush=True)
        print(f"listing {KEYS} keys ({KEYS} empty files made in {time.time() - t:.0f} s):", flush=True)
        c = start_cluster(tmp)
        try:
            env = dict(os.environ, **c.env)
            subprocess.run([BIN, "admin", "mount", "million", f"file://{tmp / 'under'}", "--read-only", "--sync-interval", "1h",
                            "--master", c.master_url], env=env, check=True, capture_output=True)
            s3 = c.client(read_timeout=600)
            done = threading.Event()

            def progress():
                t0 = time.time()
                while not done.wait(10):
                    print(f"  recording them in the metadata: {time.time() - t0:.0f} s", flush=True)
            threading.Thread(target=progress, daemon=True).start()
            t = time.time()
            synced = subprocess.run([BIN, "admin", "sync", "million/bench-0/", "--master", c.master_url], env=env,
                                    check=True, capture_output=True, text=True).stdout.strip()
            done.set()
            imported = time.time() - t
            print(f"  {synced}", flush=True)
            first = s3.list_objects_v2(Bucket="million", Prefix="bench-0/", MaxKeys=1)
            assert first["KeyCount"] == 1, first
            cmd = [BIN, "bench", "list", "--endpoint", c.endpoint, f"--access-key={c.access_key}",
                   f"--secret-key={c.secret_key}", "--bucket", "million", "--size", "0", "--objects", str(KEYS),
                   "--reuse", "--keep", "--concurrency", "1", "--duration", f"{max(int(SECONDS), 1) * 4}s",
                   "--json", "--quiet"]
            r = json.loads(subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout)["results"][0]
            assert r["errors"] == 0, r
            rate = r["keys_per_sec"]
            print(f"  strata admin sync (records {KEYS} keys from the under store): {imported:.1f} s"
                  f" = {KEYS / imported:.0f} keys/s")
            print(f"  flat listing through the cluster: {rate:.0f} keys/s, p50 {r['p50_ms']:.1f} ms a page of 1000:"
                  f" all {KEYS} keys in {KEYS / rate:.1f} s")
        finally:
            c.stop_all()


if __name__ == "__main__":
    main()
