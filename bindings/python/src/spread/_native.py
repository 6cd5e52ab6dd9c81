"""Locating and loading the Spread client library (``libspread.so.3``) with ctypes.

The library is searched for, in this order:

1. the file named by the environment variable ``SPREAD_LIBRARY`` (if set, it is the
   only candidate: a wrong value is reported instead of silently falling back);
2. ``libspread.so.3`` / ``libspread.so`` (or the platform's equivalents) in the
   directory of this package and in its ``lib/`` subdirectory;
3. the system's dynamic loader: ``libspread.so.3``, then whatever
   ``ctypes.util.find_library("spread")`` reports.

The library is loaded lazily, on first use, so ``import spread`` works without it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

from . import constants as C

__all__ = ["LibraryNotFoundError", "library", "library_path", "GroupIdStruct", "SpTime"]


class LibraryNotFoundError(OSError):
    """Raised when no usable Spread client library can be loaded.

    ``tried`` lists ``(candidate, reason)`` pairs in the order they were attempted.
    """

    def __init__(self, tried: List[Tuple[str, str]]):
        self.tried = list(tried)
        lines = ["could not load the Spread client library (libspread.so.3); tried:"]
        for candidate, reason in self.tried:
            lines.append(f"  - {candidate}: {reason}")
        lines.append(
            "set SPREAD_LIBRARY to the full path of libspread.so.3, place the library next to "
            "the 'spread' package, or install it where the dynamic loader finds it"
        )
        super().__init__("\n".join(lines))


class GroupIdStruct(ctypes.Structure):
    """C ``group_id``: three 32-bit integers."""

    _fields_ = [("id", ctypes.c_int32 * 3)]


class VsSetInfo(ctypes.Structure):
    """C ``vs_set_info``."""

    _fields_ = [("num_members", ctypes.c_uint), ("members_offset", ctypes.c_uint)]


class MembershipInfo(ctypes.Structure):
    """C ``membership_info``."""

    _fields_ = [
        ("gid", GroupIdStruct),
        ("changed_member", ctypes.c_char * C.MAX_GROUP_NAME),
        ("num_vs_sets", ctypes.c_uint),
        ("my_vs_set", VsSetInfo),
    ]


class SpTime(ctypes.Structure):
    """C ``sp_time``: seconds and microseconds as ``long``."""

    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]


def _platform_names() -> List[str]:
    if sys.platform == "darwin":
        return ["libspread.3.dylib", "libspread.dylib"]
    if sys.platform.startswith("win"):
        return ["libspread.dll", "spread.dll"]
    return ["libspread.so.3", "libspread.so"]


_c_int = ctypes.c_int
_p_int = ctypes.POINTER(ctypes.c_int)
_vp = ctypes.c_void_p
_cp = ctypes.c_char_p

# name -> (restype, argtypes)
_PROTOTYPES = {
    "SP_version": (_c_int, [_p_int, _p_int, _p_int]),
    "SP_connect": (_c_int, [_cp, _cp, _c_int, _c_int, _p_int, _vp]),
    "SP_connect_timeout": (_c_int, [_cp, _cp, _c_int, _c_int, _p_int, _vp, SpTime]),
    "SP_disconnect": (_c_int, [_c_int]),
    "SP_kill": (None, [_c_int]),
    "SP_join": (_c_int, [_c_int, _cp]),
    "SP_leave": (_c_int, [_c_int, _cp]),
    "SP_multicast": (_c_int, [_c_int, _c_int, _cp, ctypes.c_short, _c_int, _vp]),
    "SP_multigroup_multicast": (
        _c_int,
        [_c_int, _c_int, _c_int, _vp, ctypes.c_short, _c_int, _vp],
    ),
    "SP_receive": (
        _c_int,
        [
            _c_int,  # mbox
            _p_int,  # service_type (in/out)
            _vp,  # sender[MAX_GROUP_NAME]
            _c_int,  # max_groups
            _p_int,  # num_groups
            _vp,  # groups[][MAX_GROUP_NAME]
            ctypes.POINTER(ctypes.c_short),  # mess_type
            _p_int,  # endian_mismatch
            _c_int,  # max_mess_len
            _vp,  # mess
        ],
    ),
    "SP_poll": (_c_int, [_c_int]),
    "SP_equal_group_ids": (_c_int, [GroupIdStruct, GroupIdStruct]),
    "SP_get_memb_info": (_c_int, [_vp, _c_int, ctypes.POINTER(MembershipInfo)]),
    "SP_get_vs_sets_info": (
        _c_int,
        [_vp, ctypes.POINTER(VsSetInfo), _c_int, ctypes.POINTER(ctypes.c_uint)],
    ),
    "SP_get_vs_set_members": (_c_int, [_vp, ctypes.POINTER(VsSetInfo), _vp, _c_int]),
}

# Functions without which the package cannot work at all.
_REQUIRED = (
    "SP_connect",
    "SP_disconnect",
    "SP_join",
    "SP_leave",
    "SP_multicast",
    "SP_multigroup_multicast",
    "SP_receive",
    "SP_poll",
    "SP_get_memb_info",
    "SP_get_vs_sets_info",
    "SP_get_vs_set_members",
)

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None


def _candidates() -> Tuple[List[str], bool]:
    """Return the candidate paths/names in search order and whether they came from the env."""
    env = os.environ.get("SPREAD_LIBRARY")
    if env:
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    out: List[str] = []
    for d in (here, os.path.join(here, "lib")):
        for n in _platform_names():
            out.append(os.path.join(d, n))
    out.append(_platform_names()[0])  # bare soname: the dynamic loader's own search
    found = ctypes.util.find_library("spread")
    if found:
        out.append(found)
    else:
        out.append('ctypes.util.find_library("spread")')
    return out, False


def _try_load(candidate: str) -> Tuple[Optional[ctypes.CDLL], str]:
    if candidate.startswith("ctypes.util.find_library"):
        return None, "not found"
    if os.sep in candidate and not os.path.exists(candidate):
        return None, "no such file"
    try:
        lib = ctypes.CDLL(candidate)
    except OSError as exc:
        return None, str(exc)
    missing = [name for name in _REQUIRED if not hasattr(lib, name)]
    if missing:
        return None, "loaded, but it lacks " + ", ".join(missing)
    return lib, ""


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name, None)
        if fn is None:
            continue
        fn.restype = restype
        fn.argtypes = argtypes


def library() -> ctypes.CDLL:
    """Return the loaded Spread client library, loading it on first call.

    Raises :class:`LibraryNotFoundError` naming every candidate tried.
    """
    global _lib, _lib_path
    lib = _lib
    if lib is not None:
        return lib
    with _lock:
        if _lib is not None:
            return _lib
        candidates, from_env = _candidates()
        tried: List[Tuple[str, str]] = []
        for cand in candidates:
            lib, reason = _try_load(cand)
            if lib is not None:
                _declare(lib)
                _lib, _lib_path = lib, cand
                return lib
            label = f"{cand} (from SPREAD_LIBRARY)" if from_env else cand
            tried.append((label, reason))
        raise LibraryNotFoundError(tried)


_unprototyped: Dict[str, Any] = {}


def unprototyped(name: str) -> Any:
    """A second handle on ``name`` with no ``argtypes``: cheaper per call, for the hot
    paths whose callers pass only ctypes objects, ``bytes`` and in-range ``int``s."""
    fn = _unprototyped.get(name)
    if fn is None:
        fn = library()[name]  # indexing makes a new function object, separate from lib.name
        fn.restype = ctypes.c_int
        _unprototyped[name] = fn
    return fn


def library_path() -> str:
    """Return the path or name the library was loaded from (loading it if needed)."""
    library()
    assert _lib_path is not None
    return _lib_path


def _reset_for_tests() -> None:
    """Forget the loaded library so that the search runs again (test helper)."""
    global _lib, _lib_path
    with _lock:
        _lib = None
        _lib_path = None
        _unprototyped.clear()
