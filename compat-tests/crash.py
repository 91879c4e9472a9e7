"""A bounded crash harness: concurrent writers with an oracle of acknowledged writes (and their
MD5) while `kill -9` takes down `strata local` (or, in a cluster, the worker, master and
gateways in turn) at random moments; after each restart, and at the end, every key is checked.

Each writer owns its keys, so a key's history is known: a key must serve its last acknowledged
value, or a value of a request that got no answer after it. Counted:
  acknowledged  writes that got a success answer
  lost          keys serving an older state than their last acknowledged write
  torn          GETs that fail, or serve bytes no request ever sent for the key
  mismatched    keys whose under-store file differs from what GET serves (or the listing does)
  stray         staged files (`%strata/`) left once recovery is over (open uploads aborted)

  python compat-tests/crash.py --modes local,cluster --rounds 10
  scripts/with-etcd python compat-tests/crash.py --modes ha    (two masters electing in etcd)
`make crash` runs all three modes.
"""

import argparse
import hashlib
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
import botocore.exceptions
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import start_cluster, start_local  # noqa: E402

MIB = 1 << 20
PART = 5 * MIB


def md5(b):
    return hashlib.md5(b).hexdigest()


class Key:
    """One key's history: (md5 or None for absent, acknowledged?) in request order."""

    def __init__(self, name):
        self.name = name
        self.history = [(None, True)]
        self.sent = {None}

    def allowed(self):
        last = max(i for i, (_, acked) in enumerate(self.history) if acked)
        return {v for v, _ in self.history[last:]}

    def certain(self):
        """The key's value if no request after the last acknowledged one is in doubt."""
        v, acked = self.history[-1]
        return (True, v) if acked else (False, None)


class Harness:
    def __init__(self, cluster, bucket, writers, keys_per_writer, max_size, seed):
        self.c = cluster
        self.bucket = bucket
        self.max_size = max_size
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.acknowledged = 0
        self.lock = threading.Lock()
        self.keys = [[Key(f"w{w}-k{i}") for i in range(keys_per_writer)] for w in range(writers)]
        self.errors = []

    def client(self, endpoint=None):
        return boto3.client(
            "s3", endpoint_url=endpoint or self.c.endpoint, aws_access_key_id=self.c.access_key,
            aws_secret_access_key=self.c.secret_key, region_name="us-east-1",
            # One attempt: botocore's `max_attempts` counts retries, and a retry refused by a dead
            # server would hide that the first try may have been done.
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, connect_timeout=2,
                          read_timeout=20, request_checksum_calculation="when_required"))

    # --- writers -----------------------------------------------------------------------------
    def writer(self, w):
        rng = random.Random(self.rng.random())
        clients = {}
        while not self.stop.is_set():
            ep = rng.choice(self.c.endpoints)
            s3 = clients.setdefault(ep, self.client(ep))
            key = rng.choice(self.keys[w])
            op = rng.choices(["put", "copy", "mpu", "delete"], [70, 10, 8, 12])[0]
            try:
                self.one(s3, rng, w, key, op)
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                self.errors.append(f"{op} {key.name}: {e!r}")

    def one(self, s3, rng, w, key, op):
        if op == "copy":
            src = rng.choice(self.keys[w])
            sure, value = src.certain()
            if src is key or not sure or value is None:
                op = "put"
        if op == "put":
            body = secrets.token_bytes(rng.randint(0, self.max_size))
            self.attempt(key, md5(body), lambda: s3.put_object(Bucket=self.bucket, Key=key.name, Body=body))
        elif op == "copy":
            self.attempt(key, value, lambda: s3.copy_object(
                Bucket=self.bucket, Key=key.name, CopySource={"Bucket": self.bucket, "Key": src.name}))
        elif op == "delete":
            self.attempt(key, None, lambda: s3.delete_object(Bucket=self.bucket, Key=key.name))
        else:
            parts = [secrets.token_bytes(PART), secrets.token_bytes(rng.randint(1, self.max_size))]
            try:
                up = s3.create_multipart_upload(Bucket=self.bucket, Key=key.name)["UploadId"]
                done = [{"PartNumber": n + 1, "ETag": s3.upload_part(
                    Bucket=self.bucket, Key=key.name, UploadId=up, PartNumber=n + 1, Body=p)["ETag"]}
                    for n, p in enumerate(parts)]
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                time.sleep(0.2)
                return  # no complete was sent: the key is unchanged
            self.attempt(key, md5(b"".join(parts)), lambda: s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key.name, UploadId=up, MultipartUpload={"Parts": done}))

    def attempt(self, key, value, call):
        key.sent.add(value)
        try:
            call()
        except botocore.exceptions.EndpointConnectionError:
            time.sleep(0.2)  # never connected: nothing was sent
            return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            key.history.append((value, False))
            time.sleep(0.1)
            return
        key.history.append((value, True))
        with self.lock:
            self.acknowledged += 1

    # --- checks ------------------------------------------------------------------------------
    def ufs(self):
        return self.c.ufs_root

    def get(self, s3, name):
        for _ in range(20):
            try:
                return md5(s3.get_object(Bucket=self.bucket, Key=name)["Body"].read())
            except s3.exceptions.NoSuchKey:
                return None
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                err = e
                time.sleep(0.5)  # a restarted cluster may still be finding its worker
        raise err

    def verify(self):
        s3 = self.client()
        counts = dict(lost=0, torn=0, mismatched=0, stray=0, open_uploads=0)
        served = {}
        for key in (k for ks in self.keys for k in ks):
            try:
                got = self.get(s3, key.name)
            except Exception as e:  # noqa: BLE001
                counts["torn"] += 1
                print(f"  torn: GET {key.name} failed: {e!r}")
                continue
            served[key.name] = got
            if got not in key.sent:
                counts["torn"] += 1
                print(f"  torn: {key.name} serves bytes never sent")
            elif got not in key.allowed():
                counts["lost"] += 1
                print(f"  lost: {key.name} serves {got}, allowed {key.allowed()}; history {key.history}")
            path = self.ufs() / self.bucket / key.name
            on_disk = md5(path.read_bytes()) if path.exists() else None
            if on_disk != got:
                counts["mismatched"] += 1
                print(f"  mismatched: {key.name} GET {got} under store {on_disk}")
        listed = {o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                  for o in p.get("Contents", [])}
        present = {k for k, v in served.items() if v is not None}
        if listed != present:
            counts["mismatched"] += len(listed ^ present)
            print(f"  listing differs from GETs: {sorted(listed ^ present)}")
        for u in s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            counts["open_uploads"] += 1
            s3.abort_multipart_upload(Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"])
        counts["stray"] = self.wait_no_strays()
        return counts

    def strays(self):
        dirs = [self.ufs() / "%strata", self.ufs() / self.bucket / "%strata"]
        return [p for d in dirs if d.exists() for p in d.rglob("*") if p.is_file()]

    def wait_no_strays(self, timeout=20):
        deadline = time.time() + timeout
        while (left := self.strays()) and time.time() < deadline:
            time.sleep(0.5)
        for p in left:
            print(f"  stray: {p}")
        return len(left)


def kill_and_restart(c, name):
    if name == "primary":
        from test_ha import master_name, primary
        name = master_name(c, primary(c)[0])
    p, args, env, url = c.procs[name]
    p.kill()
    p.wait()
    c.start(name, args, env, url)


def run(mode, rounds, workdir, writers=6, keys_per_writer=6, max_size=MIB, pause=(1.0, 3.0), seed=None,
        deadline_s=600):
    seed = seed if seed is not None else secrets.randbits(32)
    started = time.time()
    tmp = Path(workdir) / mode
    tmp.mkdir(parents=True)
    os.environ["STRATA_STAGING_GRACE_SECS"] = "3"  # masters of a cluster: reclaim soon after recovery
    if mode == "local":
        c, victims = start_local(tmp), ["local"]
        c.ufs_root = c.data_dir / "ufs"
    elif mode == "cluster":
        c = start_cluster(tmp)
        victims = ["worker", "master", "gateway1", "gateway2"]
        c.ufs_root = c.data_dir / "master/ufs"
    else:
        from test_ha import start_ha
        c = start_ha(tmp)
        victims = ["primary", "worker", "gateway"]
        c.ufs_root = tmp / "ha" / "ufs"
    try:
        bucket = "crash-" + secrets.token_hex(4)
        c.client().create_bucket(Bucket=bucket)
        h = Harness(c, bucket, writers, keys_per_writer, max_size, seed)
        threads = [threading.Thread(target=h.writer, args=(w,), daemon=True) for w in range(writers)]
        for t in threads:
            t.start()
        rng = random.Random(seed)
        done = 0
        for r in range(rounds):
            if time.time() - started > deadline_s:
                print(f"  deadline of {deadline_s}s reached after {r} rounds")
                break
            time.sleep(rng.uniform(*pause))
            victim = victims[r % len(victims)]
            kill_and_restart(c, victim)
            done += 1
        time.sleep(rng.uniform(*pause))
        h.stop.set()
        for t in threads:
            t.join(timeout=60)
        # The last kill lands with no writer running: then recovery is checked.
        kill_and_restart(c, {"local": "local", "cluster": "master"}.get(mode, "primary"))
        if h.errors:
            print(f"  {len(h.errors)} writer errors outside requests, e.g. {h.errors[:3]}")
        counts = h.verify()
        counts.update(mode=mode, rounds=done, acknowledged=h.acknowledged, seed=seed,
                      seconds=round(time.time() - started))
        print("{mode}: rounds {rounds}, acknowledged {acknowledged} / lost {lost} / torn {torn} / "
              "mismatched-under-store {mismatched} / stray {stray} (open uploads aborted: {open_uploads}; "
              "seed {seed}; {seconds}s)".format(**counts), flush=True)
        return counts
    finally:
        c.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default="local,cluster")
    ap.add_argument("--rounds", type=int, default=10, help="kills per mode")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--max-size", type=int, default=8 * MIB)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--deadline", type=int, default=900, help="seconds per mode")
    ap.add_argument("--keep", help="a new folder to run in and keep (logs, data) instead of a temporary one")
    a = ap.parse_args()
    bad = False
    with tempfile.TemporaryDirectory(prefix="strata-crash-") as tmp:
        work = a.keep or tmp
        for mode in a.modes.split(","):
            c = run(mode, a.rounds, work, writers=a.writers, max_size=a.max_size, seed=a.seed,
                    deadline_s=a.deadline)
            bad |= any(c[k] for k in ("lost", "torn", "mismatched", "stray")) or c["acknowledged"] == 0
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    os.environ.setdefault("RUST_LOG", "info")
    main()
