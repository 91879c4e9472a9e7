"""A short soak (compat-tests/soak.py, `make soak` runs 30 minutes): 36 s of the mixed workload
with two worker restarts; every read must be right, and nothing may grow wildly (the limits are
loose: six-second windows on a shared machine are noisy)."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import BIN


def test_short_soak(tmp_path):
    env = dict(os.environ, STRATA_BIN=BIN, SOAK_DIR=str(tmp_path), SOAK_SECONDS="36", SOAK_INTERVAL="6",
               SOAK_RESTART_SECS="15", SOAK_RSS_RATIO="3", SOAK_FD_GROWTH="32", SOAK_P50_RATIO="10",
               SOAK_P99_RATIO="20", SOAK_MAX_ERRORS="0.05")
    r = subprocess.run([sys.executable, str(Path(__file__).parent / "soak.py")], env=env, capture_output=True,
                       text=True, timeout=120)
    print(r.stdout[-4000:], r.stderr[-2000:])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "FLAT:" in r.stdout and "2 worker restarts" in r.stdout, r.stdout[-2000:]
    assert "0 wrong reads" in r.stdout and "WRONG" not in r.stdout
