"""Send/receive through an installed spread package, with no environment help.

usage: python python_roundtrip.py <port>@<host>
Checks that the library loaded is the wheel's own libspread.so.3 (inside the
installed package), then exchanges a message with the daemon.
"""

import os
import sys

import spread

assert "SPREAD_LIBRARY" not in os.environ, "this test must run without SPREAD_LIBRARY"
daemon = sys.argv[1]
package_dir = os.path.dirname(os.path.abspath(spread.__file__))
with spread.Mailbox(daemon, "pywheel") as mb:
    loaded = spread.library_path()
    assert os.path.dirname(os.path.abspath(loaded)) == package_dir, (loaded, package_dir)
    assert os.path.basename(loaded) == "libspread.so.3", loaded
    mb.join("wheel-test")
    joined = mb.receive(timeout=10)
    assert isinstance(joined, spread.MembershipMessage), joined
    mb.multicast("wheel-test", "hello from the wheel", service=spread.ServiceType.AGREED)
    got = mb.receive(timeout=10)
    assert isinstance(got, spread.DataMessage), got
    assert got.text == "hello from the wheel", got
# The documented order still puts SPREAD_LIBRARY first, before the bundled copy.
import subprocess

check = subprocess.run(
    [sys.executable, "-c", "import spread; spread.library_path()"],
    env={**os.environ, "SPREAD_LIBRARY": "/nonexistent/libspread.so.3"},
    capture_output=True,
    text=True,
    timeout=60,
)
assert check.returncode != 0 and "/nonexistent/libspread.so.3" in check.stderr, check
print(f"python: {loaded} (bundled, {os.path.getsize(loaded)} bytes): message went round")
