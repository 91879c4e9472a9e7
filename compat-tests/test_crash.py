"""The short run of the crash harness (`crash.py`; `make crash` runs the long one): kill -9 of
`strata local`, and of each cluster process in turn, under concurrent writers."""

import socket
import threading
from types import SimpleNamespace

import pytest

import crash


@pytest.mark.parametrize("mode", ["local", "cluster"])
def test_kill_9_loses_tears_and_strays_nothing(mode, tmp_path):
    c = crash.run(mode, rounds=4, workdir=tmp_path, writers=4, keys_per_writer=5, max_size=512 << 10,
                  pause=(0.5, 2.0), deadline_s=90)
    assert c["acknowledged"] > 0
    assert (c["lost"], c["torn"], c["mismatched"], c["stray"]) == (0, 0, 0, 0), c


def test_the_oracle_keeps_a_request_the_server_got_as_in_doubt():
    """A server that reads a PUT and dies: the write may have been done, so the key's history
    must hold it as unanswered (a client retry refused by the dead server once hid it)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def die_after_reading():
        conn, _ = srv.accept()
        got.append(conn.recv(65536).split(b"\r\n")[0])
        srv.close()
        conn.close()

    t = threading.Thread(target=die_after_reading, daemon=True)
    t.start()
    ep = f"http://127.0.0.1:{srv.getsockname()[1]}"
    h = crash.Harness(SimpleNamespace(endpoint=ep, access_key="AK", secret_key="SK"), "b", 1, 1, 1, seed=1)
    key = h.keys[0][0]
    s3 = h.client(ep)
    h.attempt(key, "v", lambda: s3.put_object(Bucket="b", Key=key.name, Body=b"v"))
    t.join(5)
    assert got == [b"PUT /b/w0-k0 HTTP/1.1"]
    assert key.history[-1] == ("v", False), key.history
    assert "v" in key.allowed()
