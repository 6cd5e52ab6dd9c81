"""The typed API: :class:`Mailbox`, message dataclasses, service and cause enums, and
asyncio support driven by the mailbox's file descriptor.

Example::

    import spread

    with spread.Mailbox("4803@localhost", "alice") as mb:
        mb.join("chat")
        mb.multicast("chat", "hello", service=spread.ServiceType.AGREED)
        for _ in range(2):
            print(mb.receive(timeout=5))

    async def main():
        with spread.Mailbox("4803@localhost") as mb:
            mb.join("chat")
            async for msg in mb:
                print(msg)

Group and private names are ``str`` here (UTF-8; bytes are accepted too); payloads are
``bytes`` (a ``str`` payload is sent UTF-8 encoded).
"""

from __future__ import annotations

import asyncio
import enum
import select
import threading
from dataclasses import dataclass, field
from typing import AsyncIterator, Dict, Iterable, Optional, Tuple, Union

from . import constants as C
from ._core import GroupId, RawMessage, Session, payload
from .errors import SpreadError

__all__ = [
    "ServiceType",
    "MembershipCause",
    "DataMessage",
    "MembershipMessage",
    "Message",
    "Mailbox",
    "GroupId",
]

_ENC = "utf-8"
_ERRORS = "surrogateescape"  # names that are not UTF-8 still round-trip


def _decode(b: bytes) -> str:
    return b.decode(_ENC, _ERRORS)


def _encode(name: Union[str, bytes], what: str) -> bytes:
    if isinstance(name, str):
        b = name.encode(_ENC, _ERRORS)
    elif isinstance(name, (bytes, bytearray)):
        b = bytes(name)
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(name).__name__}")
    if b"\0" in b:
        raise ValueError(f"{what}: embedded null character")
    return b


class ServiceType(enum.IntFlag):
    """Delivery guarantees of a data message (one of the first six), plus the
    ``SELF_DISCARD`` flag (the sender does not get its own message)."""

    UNRELIABLE = C.UNRELIABLE_MESS
    RELIABLE = C.RELIABLE_MESS
    FIFO = C.FIFO_MESS
    CAUSAL = C.CAUSAL_MESS
    AGREED = C.AGREED_MESS
    SAFE = C.SAFE_MESS
    SELF_DISCARD = C.SELF_DISCARD


class MembershipCause(enum.Enum):
    """Why a membership message was delivered."""

    JOIN = "join"
    LEAVE = "leave"
    DISCONNECT = "disconnect"
    NETWORK = "network"
    TRANSITIONAL = "transitional"  # a change is coming; a regular membership follows
    SELF_LEAVE = "self-leave"  # this mailbox left the group


@dataclass(frozen=True)
class DataMessage:
    """A data message."""

    sender: str  #: the sender's private group name
    groups: Tuple[str, ...]  #: the groups the message was sent to
    data: bytes  #: the payload
    msg_type: int = 0  #: the sender's 16-bit message type
    service: ServiceType = ServiceType.RELIABLE  #: delivery service it was sent with
    endian_mismatch: bool = False  #: True when sender and receiver differ in byte order

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8."""
        return self.data.decode("utf-8")


@dataclass(frozen=True)
class MembershipMessage:
    """A membership change of one group."""

    group: str  #: the group whose membership changed
    cause: MembershipCause
    members: Tuple[str, ...] = ()  #: the new members (empty when transitional/self-leave)
    group_id: Optional[GroupId] = None  #: identifies this membership
    changed_member: Optional[str] = None  #: who joined/left/disconnected
    vs_sets: Tuple[Tuple[str, ...], ...] = ()  #: the member sets that merged into this one
    my_vs_set_index: Optional[int] = None  #: index of this mailbox's own set in ``vs_sets``
    my_index: Optional[int] = None  #: this mailbox's position in ``members``
    service_type: int = field(default=0, repr=False)  #: the raw service-type bits

    @property
    def is_regular(self) -> bool:
        """True for a regular membership (it carries the new member list)."""
        return bool(self.service_type & C.REG_MEMB_MESS)

    @property
    def is_transitional(self) -> bool:
        return self.cause is MembershipCause.TRANSITIONAL

    @property
    def is_self_leave(self) -> bool:
        return self.cause is MembershipCause.SELF_LEAVE


Message = Union[DataMessage, MembershipMessage]


def _cause(svc: int) -> MembershipCause:
    if svc & C.TRANSITION_MESS:
        return MembershipCause.TRANSITIONAL
    if C.is_self_leave(svc):
        return MembershipCause.SELF_LEAVE
    if svc & C.CAUSED_BY_JOIN:
        return MembershipCause.JOIN
    if svc & C.CAUSED_BY_LEAVE:
        return MembershipCause.LEAVE
    if svc & C.CAUSED_BY_DISCONNECT:
        return MembershipCause.DISCONNECT
    return MembershipCause.NETWORK


_SERVICES: Dict[int, ServiceType] = {}
_new_object = object.__new__


def _service_of(bits: int) -> ServiceType:
    # Building an IntFlag member is slow; the few combinations seen are cached.
    svc = _SERVICES.get(bits)
    if svc is None:
        svc = _SERVICES[bits] = ServiceType(bits)
    return svc


def _to_typed(raw: RawMessage) -> Message:
    svc = raw.service_type
    if C.is_membership_mess(svc):
        regular = bool(svc & C.REG_MEMB_MESS)
        return MembershipMessage(
            group=_decode(raw.sender),
            cause=_cause(svc),
            members=tuple(_decode(m) for m in raw.groups),
            group_id=raw.group_id,
            changed_member=_decode(raw.changed_member) if raw.changed_member else None,
            vs_sets=tuple(tuple(_decode(m) for m in s) for s in raw.vs_sets or ()),
            my_vs_set_index=raw.my_vs_set_index,
            my_index=raw.msg_type if regular and raw.msg_type >= 0 else None,
            service_type=svc,
        )
    if C.is_regular_mess(svc):
        names = raw.groups
        groups = (_decode(names[0]),) if len(names) == 1 else tuple(_decode(g) for g in names)
        # The hot path: fill the frozen dataclass's fields directly (what its __init__
        # would do, without one object.__setattr__ call per field).
        msg = _new_object(DataMessage)
        msg.__dict__.update(
            sender=_decode(raw.sender),
            groups=groups,
            data=raw.data,
            msg_type=raw.msg_type,
            service=_service_of(svc & (C.REGULAR_MESS | C.SELF_DISCARD)),
            endian_mismatch=bool(raw.endian),
        )
        return msg
    raise SpreadError(C.ILLEGAL_MESSAGE, f"received a message of unknown service type {svc:#x}")


class Mailbox:
    """A connection to a Spread daemon.

    ``Mailbox(daemon, name)`` connects at once. ``daemon`` is ``"port"`` (the daemon's
    local socket) or ``"port@host"``; ``None`` means the default port. ``name`` is the
    wanted private name (at most 10 characters; empty lets the daemon pick one).
    ``membership=False`` turns membership messages off. ``timeout`` (seconds) bounds the
    connection attempt.

    The mailbox is a context manager (sync and async) that closes it on exit, has a
    :meth:`fileno` for select/selectors, and is an async iterator of messages.
    Methods may be called from several threads at once: one thread can block in
    :meth:`receive` while another sends.
    """

    def __init__(
        self,
        daemon: Union[str, bytes, None] = None,
        name: Union[str, bytes] = "",
        *,
        membership: bool = True,
        priority: int = 0,
        timeout: Optional[float] = None,
    ):
        d = _encode(daemon, "daemon") if daemon is not None else str(C.DEFAULT_SPREAD_PORT).encode()
        self._session = Session(d, _encode(name, "name"), int(priority), 1 if membership else 0, timeout)
        self.private_group: str = _decode(self._session.private_group)
        # The areceive() waiting on the descriptor, if any: (loop, future, fd).
        self._wake: Optional[Tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int]] = None
        self._wake_lock = threading.Lock()
        self._aio_lock: Optional[asyncio.Lock] = None
        self._aio_lock_loop: Optional[asyncio.AbstractEventLoop] = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._session.mbox}"
        return f"<spread.client.Mailbox {self.private_group!r} {state}>"

    # -- lifetime ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once closed (by :meth:`close` or because the daemon went away)."""
        return self._session.closed

    def close(self) -> None:
        """Disconnect from the daemon. Idempotent. A pending :meth:`areceive` is woken
        (and ``async for`` over the mailbox ends)."""
        with self._wake_lock:
            wake, self._wake = self._wake, None
        if wake is not None:
            loop, fut, fd = wake

            def _unregister_and_wake() -> None:
                # Unregister before the descriptor number can be reused.
                loop.remove_reader(fd)
                if not fut.done():
                    fut.set_result(None)

            try:
                running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                _unregister_and_wake()
            else:
                try:
                    loop.call_soon_threadsafe(_unregister_and_wake)
                except RuntimeError:  # loop already closed
                    pass
        self._session.disconnect()

    def __enter__(self) -> "Mailbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "Mailbox":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        """The connection's file descriptor (readable when a message is waiting)."""
        return self._session.fileno()

    # -- groups and sending ------------------------------------------------------------------

    def join(self, group: Union[str, bytes]) -> None:
        """Join ``group``; a membership message follows."""
        self._session.join(_encode(group, "group"))

    def leave(self, group: Union[str, bytes]) -> None:
        """Leave ``group``; a self-leave membership message follows."""
        self._session.leave(_encode(group, "group"))

    def multicast(
        self,
        groups: Union[str, bytes, Iterable[Union[str, bytes]]],
        data: Union[bytes, bytearray, memoryview, str],
        *,
        service: ServiceType = ServiceType.AGREED,
        msg_type: int = 0,
        self_discard: bool = False,
    ) -> int:
        """Send ``data`` to one group or, with an iterable of names, to several groups at
        once (private group names address single mailboxes). Returns the bytes sent."""
        svc = int(service)
        if self_discard:
            svc |= C.SELF_DISCARD
        if svc & C.VALID_SEND_SERVICE != svc or not svc & C.REGULAR_MESS:
            raise ValueError(f"invalid service type {svc:#x}")
        if not -0x8000 <= msg_type <= 0x7FFF:
            raise ValueError("msg_type must fit in a signed 16-bit integer")
        body = data.encode("utf-8") if isinstance(data, str) else payload(data, "data")
        if isinstance(groups, (str, bytes)):
            return self._session.multicast(svc, _encode(groups, "group"), body, msg_type)
        names = tuple(_encode(g, "group") for g in groups)
        if not names:
            raise ValueError("at least one group is needed")
        if len(names) == 1:
            return self._session.multicast(svc, names[0], body, msg_type)
        return self._session.multigroup_multicast(svc, names, body, msg_type)

    # -- receiving ---------------------------------------------------------------------------

    def poll(self) -> int:
        """Bytes waiting on the connection (0: :meth:`receive` would block)."""
        return self._session.poll()

    def receive(self, timeout: Optional[float] = None) -> Message:
        """Return the next message, waiting at most ``timeout`` seconds (None: forever).

        Raises :class:`TimeoutError` when nothing arrived in time, ``spread.error`` on
        failure. Buffers grow as needed: no message is too big.
        """
        if timeout is not None and self._session.poll() == 0:
            readable, _, _ = select.select([self._session.fileno()], [], [], max(timeout, 0.0))
            if not readable:
                raise TimeoutError(f"no Spread message within {timeout} s")
        return _to_typed(self._session.receive())

    def _lock_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        if self._aio_lock is None or self._aio_lock_loop is not loop:
            self._aio_lock = asyncio.Lock()
            self._aio_lock_loop = loop
        return self._aio_lock

    async def areceive(self) -> Message:
        """Await the next message without blocking the event loop: waits for the
        connection's descriptor to become readable (``loop.add_reader``), then receives.
        Concurrent callers are served one at a time."""
        loop = asyncio.get_running_loop()
        async with self._lock_for(loop):
            self._session.check_open("areceive")
            if self._session.poll() == 0:
                fd = self._session.fileno()
                fut: asyncio.Future[None] = loop.create_future()

                def _ready() -> None:
                    if not fut.done():
                        fut.set_result(None)

                with self._wake_lock:
                    self._wake = (loop, fut, fd)
                loop.add_reader(fd, _ready)
                try:
                    await fut
                finally:
                    with self._wake_lock:
                        mine = self._wake is not None and self._wake[1] is fut
                        if mine:
                            self._wake = None
                    if mine:  # else close() has unregistered it already
                        loop.remove_reader(fd)
            # Readable: a message (its rest follows at once) or end of connection, which
            # receive() reports as an error.
            return _to_typed(self._session.receive())

    async def messages(self) -> AsyncIterator[Message]:
        """Async iterator over incoming messages. Ends when the mailbox is closed with
        :meth:`close`; raises ``spread.error`` when the connection is lost."""
        while True:
            if self.closed:
                if self._session.closed_by_user:
                    return
                raise SpreadError(C.CONNECTION_CLOSED)
            try:
                msg = await self.areceive()
            except SpreadError:
                if self._session.closed_by_user:
                    return
                raise
            yield msg

    def __aiter__(self) -> AsyncIterator[Message]:
        return self.messages()
