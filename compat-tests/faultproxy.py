"""A fault-injecting HTTP/1.1 proxy for an under store (a real S3 server, e.g. moto, behind it).

Each request that matches the faults' filter may get, by chance:
  latency   a sleep before it is forwarded
  error     an S3 error answer (503 SlowDown or 500 InternalError) instead of forwarding it
  hang      no answer at all: the connection stays open, silent, until the client gives up
  cut       forwarded, then the answer's headers and part of its body sent and the connection
            closed (an answer without a body is lost whole: the request took effect, unanswered)
  cut_up    part of the request's body read, then the connection closed (nothing forwarded)

Faults change at run time: in the process through `proxy.set(...)`, from outside with
`PUT /__faults__` and a JSON body of the same fields (`GET /__faults__` reads them and the
counts). Bodies are buffered whole: for test objects of a few MiB.

  python compat-tests/faultproxy.py --upstream http://127.0.0.1:5000 --listen 127.0.0.1:5001
"""

import argparse
import asyncio
import json
import random
import threading
from dataclasses import asdict, dataclass, field, fields
from urllib.parse import urlparse

CONTROL = "/__faults__"


@dataclass
class Faults:
    latency: tuple = (0.0, 0.0)  # seconds, uniform in [lo, hi]
    error: float = 0.0  # shares of matching requests, each drawn in this order
    hang: float = 0.0
    cut: float = 0.0
    cut_up: float = 0.0
    methods: tuple = ()  # empty: every method
    path_contains: str = ""  # e.g. "%25strata" for staged files only; empty: every path


@dataclass
class Counts:
    requests: int = 0
    error: int = 0
    hang: int = 0
    cut: int = 0
    cut_up: int = 0
    by_method: dict = field(default_factory=dict)


class Proxy:
    def __init__(self, upstream, host="127.0.0.1", port=0, seed=None):
        u = urlparse(upstream)
        self.up = (u.hostname, u.port or 80)
        self.host, self.port = host, port
        self.faults = Faults()
        self.counts = Counts()
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.loop = None
        self.server = None
        self.hung = set()
        self.errors = []  # the proxy's own failures

    # --- control --------------------------------------------------------------------------
    def set(self, **kw):
        """Replaces the faults with those given (the rest back to none); returns the counts so far."""
        with self.lock:
            self.faults = Faults(**kw)
            return self.reset_counts()

    def clear(self):
        self.set()
        self.release_hung()

    def reset_counts(self):
        c, self.counts = self.counts, Counts()
        return c

    def release_hung(self):
        """Closes the connections held silent so far."""
        if self.loop:
            self.loop.call_soon_threadsafe(self._close_hung)

    def _close_hung(self):
        for w in list(self.hung):
            w.close()
        self.hung.clear()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    # --- life -----------------------------------------------------------------------------
    def start(self):
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            self.server = self.loop.run_until_complete(asyncio.start_server(self._conn, self.host, self.port))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True, name="faultproxy")
        self.thread.start()
        ready.wait(10)
        return self

    def stop(self):
        if self.loop:
            async def shut():
                self._close_hung()
                self.server.close()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self.loop.stop()
            asyncio.run_coroutine_threadsafe(shut(), self.loop)
            self.thread.join(10)

    # --- one client connection ------------------------------------------------------------
    async def _conn(self, reader, writer):
        try:
            while True:
                req = await read_message(reader, request=True)
                if req is None:
                    return
                if not await self._one(req, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as e:  # a bug here, not a fault: say so
            import traceback
            traceback.print_exc()
            self.errors.append(repr(e))
        finally:
            if writer not in self.hung:
                writer.close()

    def _draw(self, method, path):
        """The fault for one request: its latency and one of None/error/hang/cut/cut_up."""
        with self.lock:
            f = self.faults
            self.counts.requests += 1
            self.counts.by_method[method] = self.counts.by_method.get(method, 0) + 1
            if (f.methods and method not in f.methods) or (f.path_contains and f.path_contains not in path):
                return 0.0, None
            delay = self.rng.uniform(*f.latency) if f.latency[1] > 0 else 0.0
            x = self.rng.random()
            for kind in ("error", "hang", "cut", "cut_up"):
                share = getattr(f, kind)
                if x < share:
                    setattr(self.counts, kind, getattr(self.counts, kind) + 1)
                    return delay, kind
                x -= share
            return delay, None

    async def _one(self, req, reader, writer):
        method, target, version, headers, body_reader = req
        if target.startswith(CONTROL):
            return await self._control(method, headers, body_reader, writer)
        delay, kind = self._draw(method, target)
        if has_header(headers, "expect", "100-continue"):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if kind == "cut_up":
            await body_reader(partial=True)
            return False
        body = await body_reader()
        if delay:
            await asyncio.sleep(delay)
        if kind == "error":
            code, status, text = self.rng.choice([("SlowDown", 503, "Slow Down"),
                                                  ("InternalError", 500, "Internal Server Error")])
            xml = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                   f"<Message>injected by faultproxy</Message><RequestId>fp</RequestId></Error>").encode()
            writer.write(f"HTTP/1.1 {status} {text}\r\nContent-Type: application/xml\r\n"
                         f"Content-Length: {len(xml)}\r\n\r\n".encode() + xml)
            await writer.drain()
            return True
        if kind == "hang":
            self.hung.add(writer)
            await reader.read()  # until the client gives up
            self.hung.discard(writer)
            return False
        status_line, rheaders, rbody = await self._forward(method, target, version, headers, body)
        out = [h for h in rheaders if h[0].lower() not in ("transfer-encoding", "connection", "content-length")]
        no_body = method == "HEAD" or status_line.split()[1] in ("204", "304")
        if no_body:
            out += [h for h in rheaders if h[0].lower() == "content-length"]
        else:
            out.append(("Content-Length", str(len(rbody))))
        head = status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out) + "\r\n"
        if kind == "cut":
            if rbody and not no_body:
                writer.write(head.encode() + rbody[: self.rng.randint(0, len(rbody) - 1)])
                await writer.drain()
            return False
        writer.write(head.encode() + (b"" if no_body else rbody))
        await writer.drain()
        return True

    async def _forward(self, method, target, version, headers, body):
        r, w = await asyncio.open_connection(*self.up)
        try:
            hs = [(k, v) for k, v in headers if k.lower() not in ("connection", "expect", "transfer-encoding",
                                                                  "content-length", "keep-alive")]
            if body or method in ("PUT", "POST"):
                hs.append(("Content-Length", str(len(body))))
            hs.append(("Connection", "close"))
            w.write((f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n").encode()
                    + body)
            await w.drain()
            resp = await read_message(r, request=False, method=method)
            status_line, rheaders, body_reader = resp
            return status_line, rheaders, await body_reader()
        finally:
            w.close()

    async def _control(self, method, headers, body_reader, writer):
        body = await body_reader()
        if method == "PUT":
            kw = json.loads(body or b"{}")
            kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()
                  if k in {f.name for f in fields(Faults)}}
            self.set(**kw)
            if not kw:
                self._close_hung()
        with self.lock:
            out = json.dumps({"faults": asdict(self.faults), "counts": asdict(self.counts)}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(out)).encode() + b"\r\n\r\n" + out)
        await writer.drain()
        return True


def has_header(headers, name, value):
    return any(k.lower() == name and value in v.lower() for k, v in headers)


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def read_message(reader, request, method="GET"):
    """One HTTP/1.1 message's head, and a function that reads its body (whole, or for a
    request `partial=True`: some of it). None at a clean end of the connection."""
    line = await reader.readline()
    if not line:
        return None
    first = line.decode("latin-1").rstrip("\r\n")
    headers = []
    while True:
        h = (await reader.readline()).decode("latin-1")
        if h in ("\r\n", "\n", ""):
            break
        k, _, v = h.partition(":")
        headers.append((k.strip(), v.strip()))
    length = header(headers, "content-length")
    chunked = "chunked" in (header(headers, "transfer-encoding") or "").lower()
    status = None if request else first.split()[1]
    no_body = not request and (method == "HEAD" or status in ("204", "304") or status.startswith("1"))

    async def body(partial=False):
        if no_body:
            return b""
        if chunked:
            out = bytearray()
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += await reader.readexactly(size)
                await reader.readline()
                if partial:
                    return bytes(out)
        if length is not None:
            n = int(length)
            return await reader.readexactly(n // 2 if partial else n)
        return b"" if request else await reader.read()

    if request:
        method_, target, version = first.split(" ", 2)
        return method_, target, version, headers, body
    return first, headers, body


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    p = Proxy(a.upstream, host, int(port)).start()
    print(f"faultproxy on {p.url} -> {a.upstream}; control: {p.url}{CONTROL}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
