"""The short run of the crash harness (`crash.py`; `make crash` runs the long one): kill -9 of
`strata local`, and of each cluster process in turn, under concurrent writers."""

import pytest

import crash


@pytest.mark.parametrize("mode", ["local", "cluster"])
def test_kill_9_loses_tears_and_strays_nothing(mode, tmp_path):
    c = crash.run(mode, rounds=4, workdir=tmp_path, writers=4, keys_per_writer=5, max_size=512 << 10,
                  pause=(0.5, 2.0), deadline_s=90)
    assert c["acknowledged"] > 0
    assert (c["lost"], c["torn"], c["mismatched"], c["stray"]) == (0, 0, 0, 0), c
