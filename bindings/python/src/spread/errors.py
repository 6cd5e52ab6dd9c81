"""The ``spread.error`` exception and the Spread return codes."""

from __future__ import annotations

import enum
from typing import Union

from . import constants as C

__all__ = ["ErrorCode", "SpreadError", "error", "error_text"]


class ErrorCode(enum.IntEnum):
    """Negative return codes of the Spread client library."""

    ILLEGAL_SPREAD = C.ILLEGAL_SPREAD
    COULD_NOT_CONNECT = C.COULD_NOT_CONNECT
    REJECT_QUOTA = C.REJECT_QUOTA
    REJECT_NO_NAME = C.REJECT_NO_NAME
    REJECT_ILLEGAL_NAME = C.REJECT_ILLEGAL_NAME
    REJECT_NOT_UNIQUE = C.REJECT_NOT_UNIQUE
    REJECT_VERSION = C.REJECT_VERSION
    CONNECTION_CLOSED = C.CONNECTION_CLOSED
    REJECT_AUTH = C.REJECT_AUTH
    ILLEGAL_SESSION = C.ILLEGAL_SESSION
    ILLEGAL_SERVICE = C.ILLEGAL_SERVICE
    ILLEGAL_MESSAGE = C.ILLEGAL_MESSAGE
    ILLEGAL_GROUP = C.ILLEGAL_GROUP
    BUFFER_TOO_SHORT = C.BUFFER_TOO_SHORT
    GROUPS_TOO_SHORT = C.GROUPS_TOO_SHORT
    MESSAGE_TOO_LONG = C.MESSAGE_TOO_LONG
    NET_ERROR_ON_SESSION = C.NET_ERROR_ON_SESSION
    SP_BUG = C.SP_BUG


_TEXTS = {
    C.ILLEGAL_SPREAD: "the daemon name is not valid (expected 'port' or 'port@host')",
    C.COULD_NOT_CONNECT: "no connection to the Spread daemon could be made (is it running?)",
    C.REJECT_QUOTA: "the daemon refused the connection: it has too many clients",
    C.REJECT_NO_NAME: "the daemon refused the connection: no private name was given",
    C.REJECT_ILLEGAL_NAME: "the daemon refused the connection: the private name is not allowed",
    C.REJECT_NOT_UNIQUE: "the daemon refused the connection: the private name is already in use",
    C.REJECT_VERSION: "the daemon refused the connection: library and daemon versions do not match",
    C.CONNECTION_CLOSED: "the connection to the daemon was closed",
    C.REJECT_AUTH: "the daemon refused the connection: authentication failed",
    C.ILLEGAL_SESSION: "the mailbox is not a valid session",
    C.ILLEGAL_SERVICE: "the service type is not valid",
    C.ILLEGAL_MESSAGE: "the message is not valid",
    C.ILLEGAL_GROUP: "the group name is not valid",
    C.BUFFER_TOO_SHORT: "the receive buffer is too small for the message",
    C.GROUPS_TOO_SHORT: "the group list buffer is too small for the message's groups",
    C.MESSAGE_TOO_LONG: "the message body and group names are too large for one message",
    C.NET_ERROR_ON_SESSION: "a network error occurred on the session",
    C.SP_BUG: "internal error in the Spread library",
}


def error_text(code: int) -> str:
    """Return a human-readable description of a Spread return code."""
    return _TEXTS.get(code, f"unrecognized Spread error {code}")


class SpreadError(Exception):
    """A Spread operation failed.

    ``args`` is ``(code, text)`` like the classic extension module's ``spread.error``:
    ``code`` is the library's (negative) return code, ``text`` a description.
    """

    def __init__(self, code: int, text: Union[str, None] = None):
        super().__init__(int(code), text if text is not None else error_text(code))

    @property
    def code(self) -> int:
        """The Spread return code; an :class:`ErrorCode` member when it is a known one."""
        code = int(self.args[0])
        try:
            return ErrorCode(code)
        except ValueError:
            return code

    @property
    def text(self) -> str:
        """The description of the error."""
        return str(self.args[1])


#: The classic name: ``except spread.error``.
error = SpreadError
