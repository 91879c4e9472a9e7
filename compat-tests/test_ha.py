"""A highly available master against a real etcd (`make test` starts one, STRATA_TEST_ETCD):
failover on kill -9, a paused primary that comes back and commits nothing, backups restored into
another backend."""

import hashlib
import os
import re
import secrets
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, Cluster, free_port, start_cluster, wait_ready

ETCD = os.environ.get("STRATA_TEST_ETCD")
needs_etcd = pytest.mark.skipif(not ETCD, reason="needs a real etcd: make test starts one (STRATA_TEST_ETCD)")
LEASE_MS = 2000


def master_env(c, etcd, tag, ufs, lease_ms=LEASE_MS):
    """The environment of masters keeping metadata in etcd and campaigning there."""
    return {
        "STRATA_ROOT_ACCESS_KEY": c.access_key, "STRATA_ROOT_SECRET_KEY": c.secret_key,
        "STRATA_METADATA": f"etcd://{etcd}/ha-meta-{tag}",
        "STRATA_ELECTION": f"etcd://{etcd}/ha-{tag}",
        "STRATA_LEASE_TTL_MS": str(lease_ms),
        "STRATA_ROOT_UFS": f"file://{ufs}",
    }


def start_ha(tmp, masters=2, lease_ms=LEASE_MS):
    """`masters` masters sharing metadata in etcd and campaigning there, one worker, one gateway."""
    tag = secrets.token_hex(4)
    ak, sk = "STRATATEST" + secrets.token_hex(5).upper(), secrets.token_urlsafe(30)
    gport, wport = free_port(), free_port()
    c = Cluster("ha-loop", [f"http://127.0.0.1:{gport}"], ak, sk, tmp / "ha-loop", logs=tmp)
    c.env = {"STRATA_CLUSTER_SECRET": secrets.token_hex(16), "STRATA_HEARTBEAT_INTERVAL_MS": "500"}
    menv = master_env(c, ETCD, tag, tmp / "ha" / "ufs", lease_ms)
    menv.update(STRATA_CHECKPOINT_URI=f"file://{tmp / 'ha' / 'checkpoints'}", STRATA_CHECKPOINT_INTERVAL_SECS="1")
    c.masters = []
    for i in range(masters):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        c.start(f"master{i}", ["master", "--data-dir", str(c.data_dir / f"master{i}"), "--listen", f"127.0.0.1:{port}"],
                menv, url)
        c.masters.append(url)
    margs = [a for m in c.masters for a in ("--master", m)]
    c.start("worker", ["worker", "--data-dir", str(c.data_dir / "worker"), "--listen", f"127.0.0.1:{wport}", *margs],
            {}, f"http://127.0.0.1:{wport}")
    c.start("gateway", ["gateway", "--listen", f"127.0.0.1:{gport}", *margs], {}, c.endpoint)
    return c


def admin(c, *args, masters=None, check=True):
    margs = [a for m in (masters or c.masters) for a in ("--master", m)]
    env = dict(os.environ, **c.env)
    r = subprocess.run([BIN, "admin", *args, *margs], env=env, capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"strata admin {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def primary(c, masters=None, timeout=20, other_than=None):
    """The primary's address, from `strata admin report`, once one (not `other_than`) is elected."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = admin(c, "report", masters=masters, check=False)
        m = re.search(r"^primary: (\S+)", r.stdout, re.M)
        if r.returncode == 0 and m and m.group(1).startswith("http") and m.group(1) != other_than:
            return m.group(1), r.stdout
        time.sleep(0.1)
    raise AssertionError(f"no primary elected after {timeout}s")


def master_name(c, url):
    return f"master{c.masters.index(url)}"


class Loop:
    """A client writing new objects and reading back old ones, as fast as it can."""

    def __init__(self, client, bucket):
        self.s3, self.bucket = client, bucket
        self.acked = {}        # key -> md5 of what the server acknowledged
        self.ok_times = []     # end time of each successful request
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop.is_set():
            key = f"loop/{i:06d}"
            body = os.urandom(1000 + (i * 7919) % 60000)
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
                self.acked[key] = hashlib.md5(body).hexdigest()
                self.ok_times.append(time.time())
                if i % 3 == 0 and self.acked:
                    back = f"loop/{i // 2:06d}"
                    if back in self.acked:
                        got = self.s3.get_object(Bucket=self.bucket, Key=back)["Body"].read()
                        assert hashlib.md5(got).hexdigest() == self.acked[back], f"{back} came back wrong"
                        self.ok_times.append(time.time())
            except AssertionError:
                raise
            except Exception as e:  # unavailable during the failover: the client retries
                self.errors.append((time.time(), repr(e)[:200]))
                time.sleep(0.05)
            i += 1

    def gap_around(self, t):
        """The longest wait between two successes from just before `t` on: the last success
        before the outage to the first after it (a request may still end just after `t`)."""
        times = sorted(x for x in self.ok_times if x > t - 1)
        if not times or times[-1] <= t:
            return None
        return max(b - a for a, b in zip(times, times[1:]))


def client(c):
    return c.client(connect_timeout=5, read_timeout=60)


def check_all_acked(s3, bucket, acked):
    for key, md5 in acked.items():
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.md5(got).hexdigest() == md5, f"{key}: acknowledged bytes lost or changed"


def kill_primary_under_load(c, s3, bucket, settle=1.5):
    """Kills the primary with SIGKILL while a client writes; returns the failover time."""
    loop = Loop(s3, bucket)
    loop.thread.start()
    time.sleep(settle)
    old, _ = primary(c)
    name = master_name(c, old)
    c.procs[name][0].send_signal(signal.SIGKILL)
    killed = time.time()
    deadline = killed + 30
    while time.time() < deadline and not any(t > killed + 0.5 for t in loop.ok_times[-5:]):
        time.sleep(0.05)
    time.sleep(1.0)
    loop.stop.set()
    loop.thread.join(timeout=70)
    gap = loop.gap_around(killed)
    assert gap is not None, f"the loop never succeeded again after the kill; errors: {loop.errors[-3:]}"
    new, report = primary(c, masters=[m for m in c.masters if m != old], other_than=old)
    return gap, old, loop


@needs_etcd
def test_kill_9_of_the_primary(tmp_path):
    c = start_ha(tmp_path)
    try:
        s3 = client(c)
        s3.create_bucket(Bucket="ha-loop")
        gap, old, loop = kill_primary_under_load(c, s3, "ha-loop")
        print(f"\nfailover after kill -9 of the primary: {gap:.2f}s (lease {LEASE_MS} ms); "
              f"{len(loop.acked)} writes acknowledged, {len(loop.errors)} failed requests meanwhile")
        assert len(loop.acked) > 10
        check_all_acked(s3, "ha-loop", loop.acked)
        # The survivor reports itself primary, and the worker registered with it again.
        _, report = primary(c, masters=[m for m in c.masters if m != old])
        assert re.search(r"live", report), report
        # While both ran, the standby wrote checkpoints, each a whole restorable snapshot.
        points = sorted((tmp_path / "ha" / "checkpoints").glob("checkpoint-*.strata"))
        assert 1 <= len(points) <= 3, points
        restored = tmp_path / "restored"
        port = free_port()
        p = subprocess.Popen([BIN, "master", "--restore", str(points[-1]), "--data-dir", str(restored),
                              "--listen", f"127.0.0.1:{port}"],
                             env=dict(os.environ, STRATA_METADATA=f"embedded://{restored}/meta.redb"),
                             stderr=open(tmp_path / "restore.log", "wb"))
        try:
            wait_ready(f"http://127.0.0.1:{port}", p, "restored master")
        finally:
            p.terminate()
            p.wait(timeout=15)
        log = (tmp_path / "restore.log").read_text()
        assert re.search(r"restored \d+ keys from", log), log
    finally:
        c.stop_all()


@needs_etcd
def test_a_paused_primary_commits_nothing_and_steps_down(tmp_path):
    c = start_ha(tmp_path)
    try:
        s3 = client(c)
        s3.create_bucket(Bucket="pause")
        s3.put_object(Bucket="pause", Key="before", Body=b"before")
        old, report = primary(c)
        old_epoch = int(re.search(r"epoch: (\d+)", report).group(1))
        other = [m for m in c.masters if m != old]
        proc = c.procs[master_name(c, old)][0]
        # A gateway that knows only the old primary: its requests queue up in the paused process.
        gport = free_port()
        c.start("pinned", ["gateway", "--listen", f"127.0.0.1:{gport}", "--master", old], {},
                f"http://127.0.0.1:{gport}")
        pinned = c.client(endpoint=f"http://127.0.0.1:{gport}", connect_timeout=5, read_timeout=60)
        pinned.head_bucket(Bucket="pause")  # credentials cached, connection open
        proc.send_signal(signal.SIGSTOP)
        try:
            new, report = primary(c, masters=other, timeout=30, other_than=old)
            new_epoch = int(re.search(r"epoch: (\d+)", report).group(1))
            assert new_epoch > old_epoch
            s3.put_object(Bucket="pause", Key="during", Body=b"written through the new primary")
            result = {}

            def put():
                try:
                    pinned.put_object(Bucket="pause", Key="queued", Body=b"queued while paused")
                    result["ok"] = True
                except Exception as e:
                    result["error"] = repr(e)

            t = threading.Thread(target=put)
            t.start()
            time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGCONT)
        t.join(timeout=60)
        # The old primary steps down and never wrote: its queued request went to the new one.
        deadline = time.time() + 10
        log = tmp_path / f"{master_name(c, old)}.log"
        while time.time() < deadline and "stepped down" not in log.read_text():
            time.sleep(0.1)
        text = log.read_text()
        assert "stepped down" in text, text[-3000:]
        deadline = time.time() + 10
        while time.time() < deadline:
            r = admin(c, "report", masters=[old])
            if re.search(rf"^primary: {re.escape(new)}", r.stdout, re.M):
                break
            time.sleep(0.2)
        assert re.search(rf"^primary: {re.escape(new)}", r.stdout, re.M), r.stdout
        assert re.search(rf"{re.escape(old)}\s+standby", r.stdout) or old not in r.stdout.split("masters:")[1], r.stdout
        assert result.get("ok"), result
        assert s3.get_object(Bucket="pause", Key="queued")["Body"].read() == b"queued while paused"
        assert s3.get_object(Bucket="pause", Key="during")["Body"].read() == b"written through the new primary"
        assert s3.get_object(Bucket="pause", Key="before")["Body"].read() == b"before"
        # The store's epoch is the new primary's: nothing re-took it.
        _, report = primary(c)
        assert int(re.search(r"epoch: (\d+)", report).group(1)) == new_epoch, report
    finally:
        c.stop_all()


def objects(s3, bucket):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            out[o["Key"]] = (o["Size"], o["ETag"], hashlib.md5(body).hexdigest())
    return out


def test_backup_restores_into_another_backend(tmp_path):
    ufs = tmp_path / "ufs"
    (tmp_path / "a").mkdir()
    a = start_cluster(tmp_path / "a", root_ufs=f"file://{ufs}")
    try:
        s3 = a.client()
        s3.create_bucket(Bucket="keep")
        for i in range(25):
            s3.put_object(Bucket="keep", Key=f"dir{i % 3}/obj{i}", Body=os.urandom(100 + i * 1000))
        mp = s3.create_multipart_upload(Bucket="keep", Key="big")
        parts = []
        for n in (1, 2):
            r = s3.upload_part(Bucket="keep", Key="big", UploadId=mp["UploadId"], PartNumber=n,
                               Body=os.urandom(5 << 20 if n == 1 else 1000))
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        s3.complete_multipart_upload(Bucket="keep", Key="big", UploadId=mp["UploadId"],
                                     MultipartUpload={"Parts": parts})
        s3.put_object_tagging(Bucket="keep", Key="dir0/obj0", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
        before = objects(s3, "keep")
        backup = tmp_path / "meta.backup"
        r = admin(a, "backup", str(backup), masters=[a.master_url])
        assert "backup written" in r.stdout and backup.stat().st_size > 0, r.stdout + r.stderr
    finally:
        a.stop_all()
    target = f"etcd://{ETCD}/restored-{secrets.token_hex(4)}" if ETCD else "memory://"
    (tmp_path / "b").mkdir()
    b = start_cluster(tmp_path / "b", metadata=target, root_ufs=f"file://{ufs}",
                      master_args=["--restore", str(backup)], creds=(a.access_key, a.secret_key))
    try:
        s3 = b.client()
        assert objects(s3, "keep") == before
        tags = s3.get_object_tagging(Bucket="keep", Key="dir0/obj0")["TagSet"]
        assert tags == [{"Key": "k", "Value": "v"}]
        # New writes get new version ids (the counter came along): nothing is served stale.
        s3.put_object(Bucket="keep", Key="dir0/obj0", Body=b"new")
        assert s3.get_object(Bucket="keep", Key="dir0/obj0")["Body"].read() == b"new"
        if ETCD:
            # Into a store that is not empty: refused, nothing changed.
            r = subprocess.run([BIN, "master", "--restore", str(backup), "--data-dir", str(tmp_path / "c"),
                                "--listen", f"127.0.0.1:{free_port()}"],
                               env=dict(os.environ, STRATA_METADATA=target), capture_output=True, text=True,
                               timeout=60)
            assert r.returncode != 0 and "not empty" in r.stderr, r.stderr
            assert s3.get_object(Bucket="keep", Key="dir0/obj0")["Body"].read() == b"new"
    finally:
        b.stop_all()
    # A damaged backup is refused before anything is written.
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.backup"
    bad.write_bytes(bytes(data))
    r = subprocess.run([BIN, "master", "--restore", str(bad), "--data-dir", str(tmp_path / "d"),
                        "--listen", f"127.0.0.1:{free_port()}"],
                       env=dict(os.environ, STRATA_METADATA="memory://"), capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and ("damaged" in r.stderr or "truncated" in r.stderr), r.stderr
