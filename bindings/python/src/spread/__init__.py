"""Python client for the Spread group communication toolkit, over the C library
``libspread.so.3`` (loaded with ctypes).

Two APIs live here:

* the classic one of the ``spread`` extension module (SpreadModule): :func:`connect`
  returning a :class:`MailboxType`, bytes everywhere, errors as :class:`error`, and the
  ``sp.h`` constants (``AGREED_MESS``, ``CAUSED_BY_JOIN``, ...) -- existing code runs
  unchanged;
* a typed one: :class:`Mailbox` (context manager, ``fileno()``, asyncio iteration),
  :class:`DataMessage` / :class:`MembershipMessage` dataclasses, :class:`ServiceType`.

The library is found through ``SPREAD_LIBRARY``, next to this package, or by the system's
dynamic loader (see :mod:`spread._native`).
"""

from . import constants
from ._compat import GroupId, MailboxType, MembershipMsgType, RegularMsgType, connect, version
from ._native import LibraryNotFoundError, library_path
from .client import DataMessage, Mailbox, MembershipCause, MembershipMessage, Message, ServiceType
from .constants import *  # noqa: F401,F403  (the sp.h names, as the classic module had them)
from .errors import ErrorCode, SpreadError, error, error_text

GroupIdType = GroupId

__version__ = "1.0.0"

__all__ = [
    "connect",
    "version",
    "error",
    "MailboxType",
    "RegularMsgType",
    "MembershipMsgType",
    "GroupId",
    "GroupIdType",
    "Mailbox",
    "DataMessage",
    "MembershipMessage",
    "Message",
    "MembershipCause",
    "ServiceType",
    "SpreadError",
    "ErrorCode",
    "error_text",
    "LibraryNotFoundError",
    "library_path",
    "constants",
] + list(constants.__all__)
