"""`make bench`, the cache: cold (from the under store) and warm throughput, and their ratio, for
one 256 MiB object and for 1 000 random 1 MiB ranges of a 2 GiB object, read through a cluster
whose bucket is a read-only mount of an under store made to behave like a remote one: through
the worker's own S3 (`--s3-listen`), and warm through a separate gateway too.

The under store is an HTTP server (below, `http://` mount) over a local folder that waits
LATENCY_MS before the first byte of each answer and sends at most BANDWIDTH MiB/s on each
connection: about what a client sees of an object store in another region. (moto_server, the
S3 server the tests use, reads a whole object for every ranged GET, which would measure moto.)"""

import email.utils
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, start_cluster  # noqa: E402

MIB = 1 << 20
LATENCY_MS = 20
BANDWIDTH = 100  # MiB/s per connection


def remote_store(root):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def target(self):
            path = root / self.path.lstrip("/").split("?")[0]
            if not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            st = path.stat()
            return path, st, f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'

        def headers_for(self, st, etag, length):
            self.send_header("Content-Length", str(length))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self.send_header("Accept-Ranges", "bytes")

        def do_HEAD(self):
            time.sleep(LATENCY_MS / 1000)
            t = self.target()
            if t:
                self.send_response(200)
                self.headers_for(t[1], t[2], t[1].st_size)
                self.end_headers()

        def do_GET(self):
            time.sleep(LATENCY_MS / 1000)
            t = self.target()
            if not t:
                return
            path, st, etag = t
            if self.headers.get("If-Match") not in (None, etag, "*"):
                self.send_response(412)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = 0, st.st_size - 1
            m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if m:
                start, end = int(m.group(1)), min(int(m.group(2) or end), end)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{st.st_size}")
            else:
                self.send_response(200)
            self.headers_for(st, etag, end - start + 1)
            self.end_headers()
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = f.read(min(left, 256 << 10))
                    self.wfile.write(chunk)
                    left -= len(chunk)
                    time.sleep(len(chunk) / (BANDWIDTH * MIB))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def timed(fn):
    t = time.time()
    fn()
    return time.time() - t


def cache_counters(worker_url):
    """The worker's page hits and misses, from its /metrics."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families
    text = requests.get(worker_url + "/metrics", timeout=10).text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}
    return samples.get("strata_worker_cache_hits_total", 0), samples.get("strata_worker_cache_misses_total", 0)


def timed_with_ratio(fn, worker_url):
    """Seconds `fn` took, and the cache's hit ratio over it."""
    h0, m0 = cache_counters(worker_url)
    took = timed(fn)
    h1, m1 = cache_counters(worker_url)
    lookups = (h1 - h0) + (m1 - m0)
    return took, (h1 - h0) / lookups if lookups else float("nan")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "remote"
        data.mkdir()
        for name, size in (("one-256mib", 256 * MIB), ("two-gib", 2048 * MIB)):
            with open(data / name, "wb") as f:
                for _ in range(size // MIB):
                    f.write(os.urandom(MIB))
        server = remote_store(data)
        c = start_cluster(tmp, worker_s3=True)
        try:
            env = dict(os.environ, **c.env)
            subprocess.run([BIN, "admin", "mount", "remote", f"http://127.0.0.1:{server.server_address[1]}",
                            "--read-only", "--sync-interval", "1h", "--master", c.master_url],
                           env=env, check=True, capture_output=True)
            print(f"cache (under store: an HTTP server {LATENCY_MS} ms away, {BANDWIDTH} MiB/s a connection;"
                  " read with `strata bench` through the worker's S3):")
            worker = c.procs["worker"][3]

            def reads(key, conc, requests, *extra, endpoint=c.endpoint):
                def go():
                    cmd = [BIN, "bench", "get", "--endpoint", endpoint, f"--access-key={c.access_key}",
                           f"--secret-key={c.secret_key}", "--bucket", "remote", "--key", key,
                           "--concurrency", str(conc), "--requests", str(requests), "--json", "--quiet", *extra]
                    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True,
                                       env=dict(os.environ, RUST_LOG="warn"))
                    res = json.loads(r.stdout)["results"][0]
                    assert res["errors"] == 0 and res["ops"] == requests, res
                return go

            def figures(label, size_mib, goal, *args):
                ws3, gw = reads(*args), reads(*args, endpoint=c.endpoints[1])
                (cold, cold_hits), (warm, warm_hits) = timed_with_ratio(ws3, worker), timed_with_ratio(ws3, worker)
                warm_gw, _ = timed_with_ratio(gw, worker)
                print(f"  {label:<48}cold {size_mib / cold:7.1f} MiB/s   warm {size_mib / warm:7.1f} MiB/s"
                      f"   warm/cold {cold / warm:5.1f}x (goal {goal}x)   hit ratio cold {cold_hits:.0%}"
                      f" warm {warm_hits:.0%}\n  {'':<48}through a separate gateway: warm {size_mib / warm_gw:7.1f}"
                      f" MiB/s   against the same cold {cold / warm_gw:5.1f}x")

            figures("256 MiB object, one GET:", 256, 10, "one-256mib", 1, 1)
            # The same 1000 ranges every time (strata bench seeds each request by its number).
            figures("1000 random 1 MiB ranges of 2 GiB, 8 at a time:", 1000, 20, "two-gib", 8, 1000, "--range", "1MiB")
        finally:
            c.stop_all()
            server.shutdown()


if __name__ == "__main__":
    main()
