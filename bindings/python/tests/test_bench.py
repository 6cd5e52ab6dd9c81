"""The throughput script runs (small count) with each API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import spread

SCRIPT = Path(__file__).resolve().parent.parent / "bench_throughput.py"


@pytest.mark.parametrize("api", ["classic", "typed", "async"])
def test_bench_script(daemon, api):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(spread.__file__).resolve().parent.parent)] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--daemon", daemon.address.decode(), "--count", "300", "--api", api],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{api}: 300 x 1024 B AGREED to self")
    assert "msg/s" in out.stdout
