"""Build hook of the spread package: the wheel carries its own libspread.so.3.

setuptools-rust builds the C client library from the repository's capi/ crate
(``cargo rustc --release``) and the file is placed in the package directory as
``spread/libspread.so.3``, the second place of the documented lookup order
(after SPREAD_LIBRARY, before the system's loader). The library has no Python
ABI dependency; it is only loaded with ctypes.

Set SPREAD_PYTHON_NO_LIBRARY=1 to build the pure-Python package without it
(it then needs SPREAD_LIBRARY or a system libspread.so.3 at run time).
"""

import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
CAPI_MANIFEST = os.path.join(HERE, "..", "..", "capi", "Cargo.toml")
LIBRARY_FILE = "libspread.so.3"


def rust_extensions():
    if os.environ.get("SPREAD_PYTHON_NO_LIBRARY") == "1":
        return {}
    if not os.path.exists(CAPI_MANIFEST):
        raise SystemExit(
            f"spread: {CAPI_MANIFEST} not found: build from the spread-rs repository "
            "(pip install ./bindings/python), or set SPREAD_PYTHON_NO_LIBRARY=1 for a "
            "package without its own libspread.so.3"
        )
    from setuptools_rust import Binding, RustExtension, Strip
    from setuptools_rust.build import build_rust

    class BuildLibspread(build_rust):
        """Install the cdylib under its soname rather than as a Python module."""

        def get_dylib_ext_path(self, ext, target_fname):
            module_path = super().get_dylib_ext_path(ext, target_fname)
            return os.path.join(os.path.dirname(module_path), LIBRARY_FILE)

    extension = RustExtension(
        "spread.libspread",
        path=CAPI_MANIFEST,
        binding=Binding.NoBinding,
        debug=False,
        strip=Strip.Debug,
        py_limited_api=False,
    )
    return {"rust_extensions": [extension], "cmdclass": {"build_rust": BuildLibspread}, "zip_safe": False}


setup(**rust_extensions())
