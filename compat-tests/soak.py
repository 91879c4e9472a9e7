"""A soak: a mixed workload (PUT, GET, HEAD, LIST, DELETE, multipart) against a cluster (one
master, one worker, two gateways on 127.0.0.1) for SOAK_MINUTES, with a worker restart every
SOAK_RESTART_SECS. Every interval it prints ops, errors and p50/p99 latency per op, and the RSS
and open files of each process; at the end a verdict on whether they stayed flat (the last
intervals against the second). Exits 1 if they grew past the thresholds, if a read returned
bytes no write sent (or a listing disagreed with the writes), or if too many requests failed.

  make soak                                      (30 minutes)
  SOAK_MINUTES=5 python compat-tests/soak.py
Knobs (environment): SOAK_MINUTES (30), SOAK_SECONDS (overrides minutes), SOAK_INTERVAL (60 s),
SOAK_RESTART_SECS (180), SOAK_THREADS (3), SOAK_RATE (total ops/s cap, 100), SOAK_KEYS (per
thread, 48), SOAK_RSS_RATIO (1.5), SOAK_FD_GROWTH (32), SOAK_P50_RATIO (2.5), SOAK_P99_RATIO
(4.0), SOAK_MAX_ERRORS (share of ops, 0.02), SOAK_DIR (for the logs; a temporary folder by default).
"""

import hashlib
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import boto3
import botocore.exceptions
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import start_cluster  # noqa: E402

KIB, MIB = 1 << 10, 1 << 20
OPS = ["PUT", "GET", "HEAD", "LIST", "DELETE", "MPU"]
# Weights of the mix: reads dominate, as in a cache's life.
MIX = [("GET", 40), ("PUT", 22), ("HEAD", 15), ("LIST", 8), ("DELETE", 8), ("MPU", 1)]


def env(name, default, kind=float):
    v = os.environ.get(name)
    return kind(v) if v not in (None, "") else default


def md5(b):
    return hashlib.md5(b).hexdigest()


def proc_stats(pid):
    """(RSS in MiB, open files) of a live process, or (None, None)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None, None


class Stats:
    """Latencies and errors of the current interval, swapped out at each report."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.lat = defaultdict(list)
        self.errors = defaultdict(int)
        self.wrong = []

    def take(self):
        with self.lock:
            out = (self.lat, self.errors, self.wrong)
            self.reset()
            return out

    def ok(self, op, seconds):
        with self.lock:
            self.lat[op].append(seconds)

    def error(self, op, what):
        with self.lock:
            self.errors[op] += 1
            self.errors["_last"] = what

    def bad(self, what):
        with self.lock:
            self.wrong.append(what)


class Pacer:
    """At most `rate` ops per second over all threads."""

    def __init__(self, rate):
        self.gap, self.next, self.lock = 1.0 / rate, time.monotonic(), threading.Lock()

    def wait(self):
        with self.lock:
            now = time.monotonic()
            self.next = max(self.next + self.gap, now)
            delay = self.next - now
        if delay > 0:
            time.sleep(delay)


class Worker:
    """One client thread owning its keys, so that each key's possible contents are known: the
    set of MD5s (None: absent) a GET may find, narrowed to one by each acknowledged write."""

    def __init__(self, n, c, bucket, keys, stats, pacer, stop, seed):
        self.n, self.bucket, self.stats, self.pacer, self.stop = n, bucket, stats, pacer, stop
        self.rng = random.Random(seed)
        self.keys = {f"t{n}/k{i:03d}": {None} for i in range(keys)}
        self.endpoints = c.endpoints
        self.s3 = [boto3.client(
            "s3", endpoint_url=e, aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=5,
                          read_timeout=30, request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
            for e in c.endpoints]

    def body(self):
        size = self.rng.choice([0, 1, 100, 4 * KIB, 64 * KIB, 256 * KIB, 1 * MIB + 17])
        return os.urandom(size)

    def run(self):
        ops, weights = zip(*MIX)
        while not self.stop.is_set():
            self.pacer.wait()
            op = self.rng.choices(ops, weights)[0]
            key = self.rng.choice(list(self.keys))
            s3 = self.rng.choice(self.s3)
            t = time.monotonic()
            try:
                getattr(self, op.lower())(s3, key)
                self.stats.ok(op, time.monotonic() - t)
            except botocore.exceptions.ClientError as e:
                self.stats.error(op, f"{op} {key}: {e.response.get('Error', {}).get('Code')} "
                                     f"{e.response['ResponseMetadata'].get('HTTPStatusCode')}")
            except (botocore.exceptions.BotoCoreError, OSError) as e:
                self.stats.error(op, f"{op} {key}: {type(e).__name__}: {str(e)[:120]}")

    def write(self, key, value, call):
        """Runs a write; its value is certain if acknowledged, possible if not."""
        try:
            call()
        except Exception:
            self.keys[key].add(value)
            raise
        self.keys[key] = {value}

    def put(self, s3, key):
        body = self.body()
        self.write(key, md5(body), lambda: s3.put_object(Bucket=self.bucket, Key=key, Body=body))

    def delete(self, s3, key):
        self.write(key, None, lambda: s3.delete_object(Bucket=self.bucket, Key=key))

    def mpu(self, s3, key):
        parts = [os.urandom(5 * MIB), os.urandom(self.rng.randint(1, 300 * KIB))]

        def call():
            up = s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            try:
                done = [{"PartNumber": i + 1, "ETag": s3.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=up, PartNumber=i + 1, Body=p)["ETag"]}
                    for i, p in enumerate(parts)]
                s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=up,
                                             MultipartUpload={"Parts": done})
            except Exception:
                try:
                    s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=up)
                except Exception:
                    pass
                raise
        self.write(key, md5(b"".join(parts)), call)

    def get(self, s3, key):
        try:
            got = md5(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") != "NoSuchKey":
                raise
            got = None
        if got not in self.keys[key]:
            self.stats.bad(f"GET {key}: {'absent' if got is None else 'bytes with MD5 ' + got} is not what "
                           f"any write sent (possible: {sorted(map(str, self.keys[key]))})")

    def head(self, s3, key):
        try:
            s3.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as e:
            if e.response["ResponseMetadata"].get("HTTPStatusCode") != 404:
                raise

    def list(self, s3, _key):
        listed = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"t{self.n}/",
                                                                 PaginationConfig={"PageSize": 20}):
            listed |= {o["Key"] for o in page.get("Contents", [])}
        for key, possible in self.keys.items():
            if possible == {None} and key in listed or None not in possible and key not in listed:
                self.stats.bad(f"LIST t{self.n}/: {key} {'listed' if key in listed else 'missing'}, "
                               f"but every acknowledged write says otherwise")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else None


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def verdict(rows, procs):
    """Compares the last intervals with the second; returns a list of failures."""
    th = dict(rss=env("SOAK_RSS_RATIO", 1.5), fds=env("SOAK_FD_GROWTH", 32), p50=env("SOAK_P50_RATIO", 2.5),
              p99=env("SOAK_P99_RATIO", 4.0))
    base = rows[1] if len(rows) > 2 else rows[0]
    tail = rows[-3:] if len(rows) > 4 else rows[-1:]
    med = lambda vals: statistics.median(vals) if vals else None  # noqa: E731
    fails, lines = [], []
    for name in procs:
        b_rss, b_fd = base["procs"][name]
        l_rss = med([r["procs"][name][0] for r in tail if r["procs"][name][0] is not None])
        l_fd = med([r["procs"][name][1] for r in tail if r["procs"][name][1] is not None])
        if None in (b_rss, b_fd, l_rss, l_fd):
            continue
        ratio = l_rss / b_rss
        lines.append(f"  {name:9} RSS {b_rss:7.1f} -> {l_rss:7.1f} MiB (x{ratio:.2f}, limit x{th['rss']})   "
                     f"fds {b_fd} -> {l_fd:.0f} (limit +{th['fds']:.0f})")
        if ratio > th["rss"]:
            fails.append(f"{name}: RSS grew x{ratio:.2f}")
        if l_fd - b_fd > th["fds"]:
            fails.append(f"{name}: open files grew by {l_fd - b_fd:.0f}")
    for op in OPS:
        for p in ("p50", "p99"):
            b = base["lat"].get(op, {}).get(p)
            last = med([r["lat"][op][p] for r in tail if r["lat"].get(op, {}).get(p) is not None
                        and r["lat"][op]["n"] >= 20])
            if b is None or last is None or base["lat"][op]["n"] < 20:
                continue
            ratio = last / b
            lines.append(f"  {op:6} {p} {b:7.1f} -> {last:7.1f} ms (x{ratio:.2f}, limit x{th[p]})")
            if ratio > th[p]:
                fails.append(f"{op} {p} latency grew x{ratio:.2f}")
    return fails, lines


def main():
    seconds = env("SOAK_SECONDS", None) or env("SOAK_MINUTES", 30.0) * 60
    interval = env("SOAK_INTERVAL", 60.0)
    restart_every = env("SOAK_RESTART_SECS", 180.0)
    threads_n = env("SOAK_THREADS", 3, int)
    seed = env("SOAK_SEED", secrets.randbits(32), int)
    workdir = Path(os.environ.get("SOAK_DIR") or tempfile.mkdtemp(prefix="strata-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"soak: {seconds:.0f}s, report every {interval:.0f}s, worker restart every {restart_every:.0f}s, "
          f"{threads_n} threads at most {env('SOAK_RATE', 100.0):.0f} ops/s, seed {seed}, logs in {workdir}",
          flush=True)
    # A small cache, so that eviction runs all along (and the disk tier stays small).
    c = start_cluster(workdir, env={"STRATA_CACHE__MEM_BYTES": str(32 * MIB), "STRATA_CACHE__DISK_BYTES": str(256 * MIB)})
    try:
        bucket = "soak-" + secrets.token_hex(4)
        boto3.client("s3", endpoint_url=c.endpoint, aws_access_key_id=c.access_key,
                     aws_secret_access_key=c.secret_key, region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=bucket)
        stats, stop = Stats(), threading.Event()
        pacer = Pacer(env("SOAK_RATE", 100.0))
        workers = [Worker(i, c, bucket, env("SOAK_KEYS", 48, int), stats, pacer, stop, seed + i)
                   for i in range(threads_n)]
        threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
        for t in threads:
            t.start()
        procs = list(c.procs)
        rows, wrong, total_ops, total_errors, restarts = [], [], 0, 0, 0
        start = time.monotonic()
        next_restart = start + restart_every
        n = 0
        while (elapsed := time.monotonic() - start) < seconds - 1e-6:
            n += 1
            end = start + min(n * interval, seconds)
            while time.monotonic() < end:
                if time.monotonic() >= next_restart:
                    c.restart("worker")
                    restarts += 1
                    next_restart += restart_every
                time.sleep(min(0.2, max(0.0, end - time.monotonic())))
            lat, errors, bad = stats.take()
            span = time.monotonic() - start - (rows[-1]["t"] if rows else 0)
            row = {"t": time.monotonic() - start, "lat": {}, "procs": {}}
            for op in OPS:
                xs = lat.get(op, [])
                row["lat"][op] = {"n": len(xs), "p50": pct(xs, 0.5), "p99": pct(xs, 0.99)}
            for name in procs:
                row["procs"][name] = proc_stats(c.procs[name][0].pid)
            rows.append(row)
            ops = sum(len(v) for v in lat.values())
            errs = sum(v for k, v in errors.items() if k != "_last")
            total_ops, total_errors = total_ops + ops, total_errors + errs
            wrong += bad
            unit = f"minute {n}" if interval == 60 else f"t={row['t']:.0f}s"
            load = os.getloadavg()[0]
            row["load"] = load
            print(f"{unit}: {ops} ops ({ops / span:.0f}/s), {errs} errors, "
                  f"{len(bad)} wrong reads, {restarts} worker restarts so far, load {load:.1f}", flush=True)
            print("  " + "  ".join(f"{op} n={row['lat'][op]['n']} p50={fmt(row['lat'][op]['p50'])} "
                                   f"p99={fmt(row['lat'][op]['p99'])}ms" for op in OPS), flush=True)
            print("  " + "  ".join(f"{name} rss={fmt(r)}MiB fds={fmt(f, 'd') if f is not None else '-'}"
                                   for name, (r, f) in row["procs"].items()), flush=True)
            if errs:
                print(f"  last error: {errors.get('_last')}", flush=True)
            for w in bad[:5]:
                print(f"  WRONG: {w}", flush=True)
        stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        c.stop_all()
        shutil.rmtree(c.data_dir, ignore_errors=True)  # the data; the logs stay
    fails, lines = verdict(rows, procs)
    share = total_errors / max(1, total_ops + total_errors)
    if wrong:
        fails.append(f"{len(wrong)} reads or listings disagreed with the acknowledged writes")
    if share > env("SOAK_MAX_ERRORS", 0.02):
        fails.append(f"{total_errors} of {total_ops + total_errors} requests failed ({share:.1%})")
    print(f"verdict after {len(rows)} intervals, {total_ops} ops, {total_errors} errors ({share:.2%}), "
          f"{restarts} worker restarts (the last intervals against interval {2 if len(rows) > 2 else 1}):")
    print("\n".join(lines))
    loads = [r["load"] for r in rows]
    if max(loads) > 2 * max(1.0, min(loads)):
        print(f"  (the machine's load went from {min(loads):.1f} to {max(loads):.1f}: latency figures reflect it)")
    print("FLAT: nothing grew past its threshold, every read was right" if not fails else
          "NOT FLAT: " + "; ".join(fails), flush=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
