"""A passthrough FUSE file system over a real folder that fails on command: EIO, ENOSPC, EROFS
or any errno on chosen operations, for paths matching a pattern or a share of calls, and added
latency. It runs as its own process (`python faultfs.py SOURCE MOUNTPOINT SOCKET`, foreground,
multithreaded, direct I/O so that every read and write reaches it); the test switches faults
while it is mounted through a unix socket outside the mount, one JSON line per request.

    fs = FaultFS(source, mountpoint, socket).start()   # raises Unavailable where FUSE cannot mount
    fs.set({"ops": ["read"], "path": r"^/ufs/b/k", "errno": "EIO"}, {"ops": ["*"], "delay": 0.2})
    fs.counts()   # how often each rule fired
    fs.clear(); fs.stop()

A rule: `ops` (operation names below, `mutate` for every change, `*` for all), `path` (a regex
searched in the path inside the mount, `/`-rooted), `errno` (a name, or none: delay only),
`share` (of the matching calls, default all), `delay` (seconds before the call), `times` (fire
at most this often). The first rule whose errno fires decides the call; every matching delay
adds up.

fusepy speaks libfuse 2, which has no rename flags: renameat2 with RENAME_NOREPLACE or
RENAME_EXCHANGE fails with EINVAL on this mount (Strata uses neither: plain rename and link)."""

import errno
import json
import os
import random
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time

MUTATE = {"create", "write", "truncate", "rename", "link", "unlink", "mkdir", "rmdir", "utimens", "chmod",
          "chown", "symlink", "mknod", "open_write", "setxattr", "removexattr", "fsync"}
OPS = MUTATE | {"read", "open", "getattr", "readdir", "statfs", "flush", "release", "readlink", "access",
                "opendir", "releasedir"}


class Unavailable(Exception):
    """FUSE cannot be mounted here (no /dev/fuse, no fusepy, no fusermount, not allowed)."""


class Rules:
    def __init__(self, seed=None):
        self.lock = threading.Lock()
        self.rules = []
        self.rng = random.Random(seed)

    def set(self, rules):
        parsed = []
        for r in rules:
            ops = set(r.get("ops", ["*"]))
            if "*" in ops:
                ops = set(OPS)
            if "mutate" in ops:
                ops = (ops - {"mutate"}) | MUTATE
            unknown = ops - OPS
            if unknown:
                raise ValueError(f"unknown operations {sorted(unknown)}; known: {sorted(OPS)}")
            code = r.get("errno")
            parsed.append({"ops": ops, "path": re.compile(r.get("path", "")),
                           "errno": getattr(errno, code) if code else None, "share": float(r.get("share", 1.0)),
                           "delay": float(r.get("delay", 0)), "times": r.get("times"), "fired": 0})
        with self.lock:
            self.rules = parsed

    def counts(self):
        with self.lock:
            return [r["fired"] for r in self.rules]

    def check(self, op, *paths):
        """Sleeps the delays that apply to this call, then raises its errno if one fires."""
        delay, fail = 0.0, None
        with self.lock:
            for r in self.rules:
                if op not in r["ops"] or not any(r["path"].search(p) for p in paths if p is not None):
                    continue
                if r["times"] is not None and r["fired"] >= r["times"]:
                    continue
                if r["share"] < 1.0 and self.rng.random() >= r["share"]:
                    continue
                delay += r["delay"]
                if r["errno"] is None:
                    r["fired"] += 1
                elif fail is None:
                    r["fired"] += 1
                    fail = r["errno"]
        if delay:
            time.sleep(delay)
        if fail is not None:
            raise OSError(fail, os.strerror(fail))


def make_ops(root, rules):
    from fuse import FuseOSError, Operations  # noqa: F401 (fusepy, only in the child)

    def real(path):
        return os.path.join(root, path.lstrip("/"))

    def writing(flags):
        return flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND) != 0

    class Passthrough(Operations):
        use_ns = True

        def access(self, path, mode):
            rules.check("access", path)
            if not os.access(real(path), mode):
                raise OSError(errno.EACCES, "")

        def chmod(self, path, mode):
            rules.check("chmod", path)
            os.chmod(real(path), mode)

        def chown(self, path, uid, gid):
            rules.check("chown", path)
            os.chown(real(path), uid, gid)

        def getattr(self, path, fh=None):
            rules.check("getattr", path)
            st = os.fstat(fh.fh) if fh is not None and fh.fh else os.lstat(real(path))
            out = {k: getattr(st, k) for k in ("st_ino", "st_mode", "st_nlink", "st_uid", "st_gid", "st_size",
                                               "st_blocks")}
            # use_ns: times in nanoseconds.
            return out | {"st_atime": st.st_atime_ns, "st_mtime": st.st_mtime_ns, "st_ctime": st.st_ctime_ns}

        def readdir(self, path, fh):
            rules.check("readdir", path)
            return [".", "..", *os.listdir(real(path))]

        def opendir(self, path):
            rules.check("opendir", path)
            return 0

        def releasedir(self, path, fh):
            return 0

        def readlink(self, path):
            rules.check("readlink", path)
            return os.readlink(real(path))

        def mknod(self, path, mode, dev):
            rules.check("mknod", path)
            os.mknod(real(path), mode, dev)

        def mkdir(self, path, mode):
            rules.check("mkdir", path)
            os.mkdir(real(path), mode)

        def rmdir(self, path):
            rules.check("rmdir", path)
            os.rmdir(real(path))

        def unlink(self, path):
            rules.check("unlink", path)
            os.unlink(real(path))

        def symlink(self, target, source):
            rules.check("symlink", target)
            os.symlink(source, real(target))

        def link(self, target, source):
            rules.check("link", target, source)
            os.link(real(source), real(target))

        def rename(self, old, new):
            rules.check("rename", old, new)
            os.rename(real(old), real(new))

        def utimens(self, path, times=None):
            rules.check("utimens", path)
            os.utime(real(path), ns=times) if times else os.utime(real(path))

        def statfs(self, path):
            rules.check("statfs", path)
            st = os.statvfs(real(path))
            return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                                                "f_files", "f_flag", "f_frsize", "f_namemax")}

        def open(self, path, fi):
            rules.check("open_write" if writing(fi.flags) else "open", path)
            fi.fh = os.open(real(path), fi.flags)
            return 0

        def create(self, path, mode, fi):
            rules.check("create", path)
            fi.fh = os.open(real(path), fi.flags | os.O_CREAT, mode)
            return 0

        def read(self, path, size, offset, fi):
            rules.check("read", path)
            return os.pread(fi.fh, size, offset)

        def write(self, path, data, offset, fi):
            rules.check("write", path)
            return os.pwrite(fi.fh, data, offset)

        def truncate(self, path, length, fh=None):
            rules.check("truncate", path)
            if fh is not None:
                os.ftruncate(fh.fh, length)
            else:
                os.truncate(real(path), length)

        def flush(self, path, fi):
            rules.check("flush", path)
            # close(dup(fd)): what a close on the real folder would report.
            os.close(os.dup(fi.fh))

        def fsync(self, path, datasync, fi):
            rules.check("fsync", path)
            os.fdatasync(fi.fh) if datasync else os.fsync(fi.fh)

        def fsyncdir(self, path, datasync, fi):
            rules.check("fsync", path)

        def release(self, path, fi):
            os.close(fi.fh)
            return 0

    return Passthrough()


def serve_control(sock_path, rules):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                try:
                    req = json.loads(line)
                    if "set" in req:
                        rules.set(req["set"])
                    out = {"ok": True, "counts": rules.counts()}
                except (ValueError, TypeError, AttributeError) as e:
                    out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                self.wfile.write(json.dumps(out).encode() + b"\n")
                self.wfile.flush()

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    if os.path.exists(sock_path):
        os.unlink(sock_path)
    server = Server(sock_path, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main():
    source, mountpoint, sock_path = sys.argv[1:4]
    from fuse import FUSE

    rules = Rules()
    serve_control(sock_path, rules)
    # direct_io: every read and write reaches us (no kernel page cache to answer instead).
    # use_ino: the folder's inode numbers, which a rename keeps (object_store's local ETags
    # hold the inode: FUSE's own numbers would change them behind Strata's back).
    FUSE(make_ops(os.path.abspath(source), rules), mountpoint, foreground=True, nothreads=False, raw_fi=True,
         direct_io=True, use_ino=True, fsname="faultfs")


class FaultFS:
    """The file system as a child process; the test's handle on it."""

    def __init__(self, source, mountpoint, sock_path, log=None):
        self.source, self.mountpoint, self.sock_path = str(source), str(mountpoint), str(sock_path)
        self.log = log
        self.proc = None
        self.conn = None

    def start(self, timeout=15):
        if not os.path.exists("/dev/fuse"):
            raise Unavailable("no /dev/fuse here")
        if not any(os.access(os.path.join(d, "fusermount"), os.X_OK) for d in os.environ["PATH"].split(":")):
            raise Unavailable("no fusermount on PATH (Debian: apt-get install fuse3 libfuse2)")
        try:
            import fuse  # noqa: F401
        except (ImportError, OSError) as e:
            raise Unavailable(f"fusepy cannot load libfuse: {e}") from None
        os.makedirs(self.source, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), self.source, self.mountpoint,
                                      self.sock_path], stdout=out, stderr=out)
        deadline = time.time() + timeout
        while not (os.path.ismount(self.mountpoint) and os.path.exists(self.sock_path)):
            if self.proc.poll() is not None:
                tail = open(self.log, "rb").read()[-400:].decode(errors="replace") if self.log else ""
                raise Unavailable(f"faultfs exited with {self.proc.returncode} before mounting: {tail}")
            if time.time() > deadline:
                self.stop()
                raise Unavailable(f"faultfs did not mount {self.mountpoint} in {timeout}s")
            time.sleep(0.05)
        self.conn = socket.socket(socket.AF_UNIX)
        self.conn.connect(self.sock_path)
        self.reader = self.conn.makefile("rb")
        return self

    def _ask(self, req):
        self.conn.sendall(json.dumps(req).encode() + b"\n")
        out = json.loads(self.reader.readline())
        if not out["ok"]:
            raise ValueError(out["error"])
        return out["counts"]

    def set(self, *rules):
        """Replaces the rules (none: no faults); takes effect for the next call into the mount."""
        return self._ask({"set": list(rules)})

    def clear(self):
        return self.set()

    def counts(self):
        return self._ask({})

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Unmounts (lazily if still busy) and waits for the process."""
        if self.conn:
            self.conn.close()
            self.conn = None
        if self.proc is None:
            return
        for args in (["-u"], ["-u", "-z"]):
            if not os.path.ismount(self.mountpoint):
                break
            subprocess.run(["fusermount", *args, self.mountpoint], capture_output=True, timeout=30)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


if __name__ == "__main__":
    main()
