"""Test fixtures: a Spread daemon on a free loopback port, and the client library.

Environment:
  SPREAD_DAEMON   the daemon binary (default: the repository's target/debug/spread, also
                  looked for under $CARGO_TARGET_DIR/debug/spread)
  SPREAD_LIBRARY  the client library (default: the repository's target/debug/libspread.so,
                  then the package's own search)
  SPREAD_TEST_PRIVDROP=0  do not put DaemonUser/DaemonGroup/RuntimeDir in the daemon's
                  configuration (they are added when running as root, because a daemon
                  started by root drops its privileges to them)
When the daemon or the library is missing the tests are skipped, except under CI=true,
where that is an error.
"""

from __future__ import annotations

import itertools
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
PKG_ROOT = HERE.parent
REPO_ROOT = PKG_ROOT.parent.parent


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _missing(what: str) -> None:
    if _in_ci():
        pytest.fail(f"{what} (required when CI=true)", pytrace=False)
    pytest.skip(what)


def _target_dirs() -> List[Path]:
    dirs = []
    if os.environ.get("CARGO_TARGET_DIR"):
        dirs.append(Path(os.environ["CARGO_TARGET_DIR"]))
    dirs.append(REPO_ROOT / "target")
    return dirs


def _find_daemon() -> Optional[Path]:
    env = os.environ.get("SPREAD_DAEMON")
    if env:
        return Path(env)
    for d in _target_dirs():
        p = d / "debug" / "spread"
        if p.is_file():
            return p
    return None


def _default_library() -> None:
    """Point SPREAD_LIBRARY at the repository's build when the user did not set it."""
    if os.environ.get("SPREAD_LIBRARY"):
        return
    for d in _target_dirs():
        for name in ("libspread.so.3", "libspread.so"):
            p = d / "debug" / name
            if p.is_file():
                os.environ["SPREAD_LIBRARY"] = str(p)
                return


_default_library()

import spread  # noqa: E402  (after SPREAD_LIBRARY is settled)


def _port_free(port: int) -> bool:
    if os.path.exists(f"/tmp/{port}"):
        return False
    socks = []
    try:
        for kind, p in (
            (socket.SOCK_STREAM, port),
            (socket.SOCK_DGRAM, port),
            (socket.SOCK_DGRAM, port + 1),
        ):
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def _pick_port() -> int:
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 29998)
        if _port_free(port):
            return port
    raise RuntimeError("no free loopback port found in 20000-29999")


class Daemon:
    """A running daemon: ``address`` (bytes, ``port@127.0.0.1``) and ``port``."""

    def __init__(self, binary: Path, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.port = _pick_port()
        self.address = f"{self.port}@127.0.0.1".encode()
        self.log_path = workdir / "daemon.log"
        self.proc: Optional[subprocess.Popen] = None
        self._names = itertools.count()

    def config_text(self) -> str:
        lines = []
        if os.geteuid() == 0 and os.environ.get("SPREAD_TEST_PRIVDROP", "1") != "0":
            lines += ["DaemonUser = nobody", "DaemonGroup = nogroup", f"RuntimeDir = {self.workdir}"]
        lines += [f"Spread_Segment 127.0.0.255:{self.port} {{", "    localhost 127.0.0.1", "}"]
        return "\n".join(lines) + "\n"

    def start(self, ready_timeout: float = 30.0) -> None:
        conf = self.workdir / "spread.conf"
        conf.write_text(self.config_text())
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "-n", "localhost", "-c", str(conf)],
            cwd=str(self.workdir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + ready_timeout
        last: Optional[BaseException] = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self._probe():
                    return
            except spread.error as exc:
                last = exc
            time.sleep(0.2)
        raise RuntimeError(f"daemon not ready after {ready_timeout} s ({last!r}):\n{self.log()}")

    def _probe(self) -> bool:
        """Connect, join a group, and see the membership: the daemon is operational."""
        with spread.connect(self.address, b"probe", 0, 1) as mb:
            mb.join(b"probe-group")
            r, _, _ = select.select([mb.fileno()], [], [], 2.0)
            if not r:
                return False
            msg = mb.receive()
            return isinstance(msg, spread.MembershipMsgType)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        try:
            os.unlink(f"/tmp/{self.port}")  # the daemon's local socket, if it left it
        except OSError:
            pass

    def name(self, prefix: str = "t") -> bytes:
        """A private name unique for this daemon (at most 10 characters)."""
        return f"{prefix[:4]}{next(self._names)}".encode()

    def group(self, prefix: str = "grp") -> bytes:
        return f"{prefix}-{next(self._names)}".encode()


@pytest.fixture(scope="session")
def library() -> str:
    try:
        return spread.library_path()
    except spread.LibraryNotFoundError as exc:
        _missing(f"Spread client library not available: {exc}")
        raise  # unreachable


@pytest.fixture(scope="session")
def daemon(library: str) -> Iterator[Daemon]:
    binary = _find_daemon()
    if binary is None or not binary.is_file():
        _missing(f"Spread daemon not found (SPREAD_DAEMON={os.environ.get('SPREAD_DAEMON')!r})")
    assert binary is not None
    workdir = Path(tempfile.mkdtemp(prefix="spread-py-test-"))
    os.chmod(workdir, 0o755)
    d = Daemon(binary, workdir)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def wait_readable(fileno: int, timeout: float = 10.0) -> bool:
    r, _, _ = select.select([fileno], [], [], timeout)
    return bool(r)


def receive(mb, timeout: float = 10.0):
    """Classic-API receive with a bound: fail instead of hanging."""
    if mb.poll() == 0 and not wait_readable(mb.fileno(), timeout):
        pytest.fail(f"no message within {timeout} s")
    return mb.receive()


def pytest_report_header(config):
    return [
        f"spread package: {Path(spread.__file__).parent}",
        f"SPREAD_LIBRARY={os.environ.get('SPREAD_LIBRARY', '')!s}  SPREAD_DAEMON={_find_daemon()}",
    ]
