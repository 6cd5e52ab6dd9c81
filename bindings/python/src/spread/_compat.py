"""The classic API of the ``spread`` extension module (SpreadModule), in pure Python.

Names, payloads and received strings are ``bytes``; ``str`` arguments are refused with
``TypeError`` as the extension did. Errors from Spread raise :class:`spread.error`
(``args == (code, text)``).
"""

from __future__ import annotations

import ctypes
from typing import Any, Optional, Tuple

from . import _native
from . import constants as C
from ._core import GroupId, RawMessage, Session, check_name, payload
from .errors import SpreadError

__all__ = ["connect", "version", "MailboxType", "RegularMsgType", "MembershipMsgType", "GroupId"]


class RegularMsgType:
    """A data message returned by :meth:`MailboxType.receive`.

    Attributes: ``sender`` (bytes: the sender's private group), ``groups`` (tuple of bytes:
    the destination groups), ``message`` (bytes), ``msg_type`` (int, signed 16 bits),
    ``endian`` (int, 0 when sender and receiver share byte order).
    """

    __slots__ = ("sender", "groups", "message", "msg_type", "endian")

    def __init__(self, sender: bytes, groups: Tuple[bytes, ...], message: bytes, msg_type: int, endian: int):
        self.sender = sender
        self.groups = groups
        self.message = message
        self.msg_type = msg_type
        self.endian = endian

    def __repr__(self) -> str:
        return (
            f"<RegularMsg sender={self.sender!r} groups={self.groups!r} msg_type={self.msg_type} "
            f"len={len(self.message)}>"
        )


class MembershipMsgType:
    """A membership message returned by :meth:`MailboxType.receive`.

    Attributes: ``reason`` (one of ``CAUSED_BY_*``, or 0 for a transitional message),
    ``group`` (bytes), ``group_id`` (:class:`GroupId`, None unless a regular membership),
    ``members`` (tuple of bytes: the new membership), ``orig_members`` (tuple of tuples:
    the sets of members that came together into this membership; None unless a regular
    membership), ``extra`` (tuple of bytes: the member(s) that caused the change; for a
    network change the members of this process's own set; empty when transitional).
    """

    __slots__ = ("reason", "group", "group_id", "members", "orig_members", "extra")

    def __init__(
        self,
        reason: int,
        group: bytes,
        group_id: Optional[GroupId],
        members: Tuple[bytes, ...],
        orig_members: Optional[Tuple[Tuple[bytes, ...], ...]],
        extra: Tuple[bytes, ...],
    ):
        self.reason = reason
        self.group = group
        self.group_id = group_id
        self.members = members
        self.orig_members = orig_members
        self.extra = extra

    def __repr__(self) -> str:
        return f"<MembershipMsg group={self.group!r} reason={self.reason:#x} members={self.members!r}>"


def _to_classic(raw: RawMessage) -> Any:
    svc = raw.service_type
    if C.is_regular_mess(svc):
        return RegularMsgType(raw.sender, raw.groups, raw.data, raw.msg_type, raw.endian)
    if C.is_membership_mess(svc):
        regular = bool(svc & C.REG_MEMB_MESS)
        extra: Tuple[bytes, ...] = ()
        if regular:
            if raw.changed_member:
                extra = (raw.changed_member,)
            elif raw.vs_sets is not None and raw.my_vs_set_index is not None:
                extra = raw.vs_sets[raw.my_vs_set_index]
        return MembershipMsgType(
            svc & C.CAUSED_BY_MASK,
            raw.sender,
            raw.group_id if regular else None,
            raw.groups,
            raw.vs_sets if regular else None,
            extra,
        )
    raise SpreadError(C.ILLEGAL_MESSAGE, f"received a message of unknown service type {svc:#x}")


def _service(svc_type: object) -> int:
    if isinstance(svc_type, bool) or not isinstance(svc_type, int):
        raise TypeError(f"service type must be an int, not {type(svc_type).__name__}")
    if svc_type & C.VALID_SEND_SERVICE != svc_type:
        raise ValueError(f"service type {svc_type:#x} has bits outside the six services and SELF_DISCARD")
    return svc_type


def _msg_type(msg_type: object) -> int:
    if not isinstance(msg_type, int):
        raise TypeError(f"msg_type must be an int, not {type(msg_type).__name__}")
    # Sent as a C short: keep the low 16 bits, signed.
    return ((msg_type + 0x8000) & 0xFFFF) - 0x8000


class MailboxType:
    """A connection to a Spread daemon (returned by :func:`connect`).

    ``private_group`` (bytes) is the private group name the daemon gave this connection.
    Also usable as a context manager (disconnects on exit).
    """

    __slots__ = ("_session", "private_group", "__weakref__")

    def __init__(self, session: Session):
        self._session = session
        self.private_group: bytes = session.private_group

    def __repr__(self) -> str:
        state = "closed" if self._session.closed else f"fd={self._session.mbox}"
        return f"<spread.Mailbox {self.private_group!r} {state}>"

    def __enter__(self) -> "MailboxType":
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def disconnect(self) -> None:
        """Disconnect; later calls on this mailbox raise ``spread.error``. Idempotent."""
        self._session.disconnect()

    def fileno(self) -> int:
        """The file descriptor of the connection, for select()/selectors."""
        return self._session.fileno()

    def join(self, group: bytes) -> None:
        """Join the group ``group`` (bytes)."""
        self._session.join(check_name(group, "group"))

    def leave(self, group: bytes) -> None:
        """Leave the group ``group`` (bytes)."""
        self._session.leave(check_name(group, "group"))

    def multicast(self, service: int, group: bytes, message: Any, msg_type: int = 0) -> int:
        """Send ``message`` to ``group`` with the given service type; return the bytes sent."""
        svc = _service(service)
        g = check_name(group, "group")
        data = payload(message)
        return self._session.multicast(svc, g, data, _msg_type(msg_type))

    def multigroup_multicast(self, service: int, groups: Tuple[bytes, ...], message: Any, msg_type: int = 0) -> int:
        """Send ``message`` once to every group in the tuple ``groups``; return the bytes sent."""
        svc = _service(service)
        if not isinstance(groups, tuple):
            raise TypeError(f"groups must be a tuple, not {type(groups).__name__}")
        if not groups:
            raise ValueError("groups is empty: name at least one destination")
        for g in groups:
            if not isinstance(g, bytes):
                raise TypeError(f"every group name must be bytes, not {type(g).__name__}")
        data = payload(message)
        return self._session.multigroup_multicast(svc, groups, data, _msg_type(msg_type))

    def poll(self) -> int:
        """Number of bytes waiting (0 when receive() would block)."""
        return self._session.poll()

    def receive(self) -> Any:
        """Block until a message arrives; return a RegularMsgType or MembershipMsgType."""
        return _to_classic(self._session.receive())


def connect(daemon: Optional[bytes] = None, name: bytes = b"", priority: int = 0, membership: int = 1) -> MailboxType:
    """connect(daemon=b"4803", name=b"", priority=0, membership=1) -> mailbox

    Connect to a Spread daemon. ``daemon`` is ``b"port"`` (local socket) or
    ``b"port@host"``; ``name`` the wanted private name (empty: the daemon makes one up);
    ``membership`` false to receive no membership messages.
    """
    d = check_name(daemon, "daemon") if daemon is not None else str(C.DEFAULT_SPREAD_PORT).encode()
    n = check_name(name, "name")
    for what, v in (("priority", priority), ("membership", membership)):
        if not isinstance(v, int):
            raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    return MailboxType(Session(d, n, int(priority), int(membership)))


def version() -> Tuple[int, int, int]:
    """The (major, minor, patch) version reported by the client library."""
    lib = _native.library()
    major, minor, patch = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    if not lib.SP_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch)):
        raise SpreadError(C.SP_BUG, "SP_version failed")
    return (major.value, minor.value, patch.value)
