"""Where the package looks for libspread (each case in a fresh interpreter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import spread

PKG_DIR = Path(spread.__file__).resolve().parent

SCRIPT = """
import spread
try:
    print("LOADED", spread.library_path(), spread.version())
except spread.LibraryNotFoundError as exc:
    print("MISSING")
    print(exc)
"""


def run_script(tmp_path: Path, env_lib, pkg_parent: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("SPREAD_LIBRARY", "LD_LIBRARY_PATH")}
    if env_lib is not None:
        env["SPREAD_LIBRARY"] = env_lib
    env["PYTHONPATH"] = str(pkg_parent)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def copy_package(tmp_path: Path) -> Path:
    parent = tmp_path / "site"
    shutil.copytree(PKG_DIR, parent / "spread", ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
    return parent


def test_env_variable_names_a_missing_file(tmp_path):
    out = run_script(tmp_path, str(tmp_path / "nothere.so"), copy_package(tmp_path))
    assert out.startswith("MISSING")
    assert str(tmp_path / "nothere.so") in out
    assert "SPREAD_LIBRARY" in out


def test_wrong_library_is_reported(tmp_path):
    libc_path = None
    for cand in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"):
        if os.path.exists(cand):
            libc_path = cand
            break
    if libc_path is None:
        pytest.skip("no libc.so.6 at a known path")
    out = run_script(tmp_path, libc_path, copy_package(tmp_path))
    assert out.startswith("MISSING")
    assert "lacks SP_connect" in out


def test_library_next_to_the_package(tmp_path, library):
    if not os.path.isabs(library):
        pytest.skip(f"library was found by the loader as {library!r}, not by path")
    parent = copy_package(tmp_path)
    target = parent / "spread" / "libspread.so.3"
    os.symlink(library, target)
    out = run_script(tmp_path, None, parent)
    assert out.startswith("LOADED"), out
    assert str(target) in out
    assert "(4, 4," in out


def test_nothing_found_lists_every_place(tmp_path):
    parent = copy_package(tmp_path)
    out = run_script(tmp_path, None, parent)
    if out.startswith("LOADED"):
        pytest.skip(f"a libspread is installed system-wide: {out.strip()}")
    assert out.startswith("MISSING")
    pkg = parent / "spread"
    for expected in (
        str(pkg / "libspread.so.3"),
        str(pkg / "libspread.so"),
        str(pkg / "lib" / "libspread.so.3"),
        "libspread.so.3:",
        'find_library("spread")',
    ):
        assert expected in out, (expected, out)


def test_import_needs_no_library(tmp_path):
    env = dict(os.environ, SPREAD_LIBRARY=str(tmp_path / "absent.so"), PYTHONPATH=str(copy_package(tmp_path)))
    code = "import spread; print(spread.AGREED_MESS, spread.connect.__name__, spread.Mailbox.__name__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["16", "connect", "Mailbox"]
