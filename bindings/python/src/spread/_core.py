"""The session object shared by the classic and the typed API: one Spread mailbox and the
ctypes calls on it. Names and payloads are ``bytes`` here; the public layers convert."""

from __future__ import annotations

import ctypes
import threading
from typing import Iterable, NamedTuple, Optional, Tuple

from . import _native
from . import constants as C
from .errors import SpreadError

# Largest private group name the library writes (including the terminating NUL), with slack.
_PRIVATE_GROUP_BUF = 2 * C.MAX_GROUP_NAME
# Bound on receive() retries after BUFFER_TOO_SHORT/GROUPS_TOO_SHORT (another thread may
# take the message in between, so one retry is not always the last).
_MAX_RECEIVE_RETRIES = 64


class GroupId:
    """Identifier of one membership of a group (three 32-bit integers).

    Two ids are equal when all three parts are equal. Hashable, so usable as a dict key.
    """

    __slots__ = ("_id",)

    def __init__(self, parts: Iterable[int]):
        t = tuple(int(p) for p in parts)
        if len(t) != 3:
            raise ValueError("a group id has exactly three parts")
        self._id: Tuple[int, ...] = t

    @property
    def id(self) -> Tuple[int, ...]:
        """The three parts, as signed 32-bit integers."""
        return self._id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupId):
            return NotImplemented
        return self._id == other._id

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, GroupId):
            return NotImplemented
        return self._id != other._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        a, b, c = (p & 0xFFFFFFFF for p in self._id)
        return f"<group_id {a:08X}:{b:08X}:{c:08X}>"


class RawMessage(NamedTuple):
    """One received message, undecoded (names are bytes)."""

    service_type: int
    sender: bytes  # data: sender's private group; membership: the group's name
    groups: Tuple[bytes, ...]  # data: destination groups; membership: members
    msg_type: int  # data: the sender's 16-bit type; membership: own index or -1
    endian: int
    data: bytes  # data: the payload; membership: the raw body
    # Membership only (None otherwise):
    group_id: Optional[GroupId]
    changed_member: Optional[bytes]
    vs_sets: Optional[Tuple[Tuple[bytes, ...], ...]]
    my_vs_set_index: Optional[int]


def _cstr(raw: bytes) -> bytes:
    """Bytes up to the first NUL."""
    i = raw.find(b"\0")
    return raw if i < 0 else raw[:i]


def _names(buf: ctypes.Array[ctypes.c_char], count: int) -> Tuple[bytes, ...]:
    if count == 1:
        return (buf.value[: C.MAX_GROUP_NAME],)  # up to the first NUL, within one slot
    n = C.MAX_GROUP_NAME
    raw = ctypes.string_at(buf, count * n)
    return tuple(_cstr(raw[i * n : (i + 1) * n]) for i in range(count))


def check_name(value: object, what: str) -> bytes:
    """Accept only ``bytes`` without NUL (like the classic module's ``y`` argument format)."""
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    if b"\0" in value:
        raise ValueError(f"{what}: embedded null byte")
    return value


def payload(value: object, what: str = "message") -> bytes:
    """Accept any bytes-like object but not ``str``."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        raise TypeError(f"{what} must be a bytes-like object, not str")
    try:
        return bytes(memoryview(value))  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not {type(value).__name__}") from None


class _ReceiveState:
    """Per-thread receive buffers, grown on demand and kept for the next call."""

    __slots__ = (
        "svc",
        "num_groups",
        "mess_type",
        "endian",
        "refs",
        "sender",
        "max_groups",
        "groups",
        "size",
        "buf",
    )

    def __init__(self) -> None:
        self.svc = ctypes.c_int(0)
        self.num_groups = ctypes.c_int(0)
        self.mess_type = ctypes.c_short(0)
        self.endian = ctypes.c_int(0)
        # Pointers to the four out-parameters, made once (they stay valid with the objects).
        self.refs = tuple(ctypes.byref(x) for x in (self.svc, self.num_groups, self.mess_type, self.endian))
        self.sender = ctypes.create_string_buffer(C.MAX_GROUP_NAME)
        self.max_groups = C.DEFAULT_GROUPS_SIZE
        self.groups = ctypes.create_string_buffer(self.max_groups * C.MAX_GROUP_NAME)
        self.size = C.DEFAULT_BUFFER_SIZE
        self.buf = ctypes.create_string_buffer(self.size)


class Session:
    """One connection to a daemon. Thread-safe as far as the underlying library is."""

    def __init__(
        self,
        daemon: bytes,
        name: bytes,
        priority: int,
        membership: int,
        timeout: Optional[float] = None,
    ):
        self._lib = _native.library()
        self._sp_receive = _native.unprototyped("SP_receive")
        self._sp_multicast = _native.unprototyped("SP_multicast")
        self._closed = True  # until connected
        self.closed_by_user = False
        self._state_lock = threading.Lock()
        self._tls = threading.local()
        mbox = ctypes.c_int(-1)
        group = ctypes.create_string_buffer(_PRIVATE_GROUP_BUF)
        if timeout is None:
            ret = self._lib.SP_connect(daemon, name, priority, membership, ctypes.byref(mbox), group)
        else:
            if not hasattr(self._lib, "SP_connect_timeout"):
                raise SpreadError(C.ILLEGAL_SPREAD, "this library has no SP_connect_timeout")
            timeout = max(float(timeout), 0.0)
            sec = int(timeout)
            t = _native.SpTime(sec, int((timeout - sec) * 1_000_000))
            ret = self._lib.SP_connect_timeout(
                daemon, name, priority, membership, ctypes.byref(mbox), group, t
            )
        if ret != C.ACCEPT_SESSION:
            raise SpreadError(ret if ret < 0 else C.SP_BUG)
        self.mbox: int = mbox.value
        self.private_group: bytes = group.value
        self._closed = False

    # -- state -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self, method: str) -> None:
        if self._closed:
            raise SpreadError(C.ILLEGAL_SESSION, f"{method}(): the mailbox is closed")

    def _fail(self, code: int) -> SpreadError:
        # The library has already released the session (and closed its socket) when it
        # reports these two: never call SP_disconnect on that number again.
        if code in (C.CONNECTION_CLOSED, C.ILLEGAL_SESSION):
            self._closed = True
        return SpreadError(code)

    def disconnect(self) -> None:
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            self.closed_by_user = True
        ret = self._lib.SP_disconnect(self.mbox)
        if ret != 0:
            raise SpreadError(ret)

    def __del__(self) -> None:
        try:
            if not self._closed:
                self._closed = True
                self._lib.SP_disconnect(self.mbox)
        except Exception:  # interpreter shutdown, partially built object
            pass

    # -- calls -----------------------------------------------------------------------------

    def fileno(self) -> int:
        self.check_open("fileno")
        return self.mbox

    def join(self, group: bytes) -> None:
        self.check_open("join")
        ret = self._lib.SP_join(self.mbox, group)
        if ret < 0:
            raise self._fail(ret)

    def leave(self, group: bytes) -> None:
        self.check_open("leave")
        ret = self._lib.SP_leave(self.mbox, group)
        if ret < 0:
            raise self._fail(ret)

    def multicast(self, service: int, group: bytes, data: bytes, msg_type: int) -> int:
        self.check_open("multicast")
        # msg_type is already within the int16 range (callers normalise or check it).
        ret = self._sp_multicast(self.mbox, service, group, ctypes.c_short(msg_type), len(data), data)
        if ret < 0:
            raise self._fail(ret)
        return int(ret)

    def multigroup_multicast(self, service: int, groups: Tuple[bytes, ...], data: bytes, msg_type: int) -> int:
        self.check_open("multigroup_multicast")
        n = C.MAX_GROUP_NAME
        # Each name occupies one 32-byte slot; longer names are cut to the slot.
        packed = b"".join(g[:n].ljust(n, b"\0") for g in groups)
        ret = self._lib.SP_multigroup_multicast(self.mbox, service, len(groups), packed, msg_type, len(data), data)
        if ret < 0:
            raise self._fail(ret)
        return int(ret)

    def poll(self) -> int:
        self.check_open("poll")
        ret = self._lib.SP_poll(self.mbox)
        if ret < 0:
            raise self._fail(ret)
        return int(ret)

    def _state(self) -> _ReceiveState:
        st = getattr(self._tls, "st", None)
        if st is None:
            st = _ReceiveState()
            self._tls.st = st
        return st

    def receive(self) -> RawMessage:
        """Block until a message arrives; grow the buffers as needed instead of failing."""
        self.check_open("receive")
        sp_receive = self._sp_receive
        st = self._state()
        p_svc, p_num_groups, p_mess_type, p_endian = st.refs
        for _ in range(_MAX_RECEIVE_RETRIES):
            st.svc.value = 0  # input too: 0 asks for the normal (non-truncating) semantics
            size = sp_receive(
                self.mbox,
                p_svc,
                st.sender,
                st.max_groups,
                p_num_groups,
                st.groups,
                p_mess_type,
                p_endian,
                st.size,
                st.buf,
            )
            if size >= 0:
                break
            if size == C.BUFFER_TOO_SHORT:
                need = -st.endian.value
                if need <= st.size:
                    raise SpreadError(C.SP_BUG, f"receive buffer too short, but {need} bytes asked for")
                st.size = need
                st.buf = ctypes.create_string_buffer(need)
                continue
            if size == C.GROUPS_TOO_SHORT:
                need = -st.num_groups.value
                if need <= st.max_groups:
                    raise SpreadError(C.SP_BUG, f"group list too short, but {need} groups asked for")
                st.max_groups = need
                st.groups = ctypes.create_string_buffer(need * C.MAX_GROUP_NAME)
                continue
            raise self._fail(size)
        else:
            raise SpreadError(C.BUFFER_TOO_SHORT, "message buffers kept being too short")

        svc = st.svc.value
        count = st.num_groups.value
        if count < 0 or count > st.max_groups or size > st.size:
            raise SpreadError(C.SP_BUG, f"inconsistent receive result (size {size}, groups {count})")
        sender = st.sender.value
        names = _names(st.groups, count)
        data = ctypes.string_at(st.buf, size)
        if not C.is_membership_mess(svc):
            return RawMessage(svc, sender, names, st.mess_type.value, st.endian.value, data, None, None, None, None)
        return self._membership(svc, sender, names, st.mess_type.value, st.buf, data)

    def _membership(
        self, svc: int, group: bytes, members: Tuple[bytes, ...], mess_type: int, buf: ctypes.Array[ctypes.c_char], body: bytes
    ) -> RawMessage:
        lib = self._lib
        size = len(body)
        gid: Optional[GroupId] = None
        changed: Optional[bytes] = None
        vs_sets: Optional[Tuple[Tuple[bytes, ...], ...]] = None
        my_index: Optional[int] = None
        if size >= 12:
            info = _native.MembershipInfo()
            if lib.SP_get_memb_info(buf, svc, ctypes.byref(info)) < 0:
                raise SpreadError(C.ILLEGAL_MESSAGE, "membership message with an unreadable body")
            gid = GroupId(info.gid.id)
            if svc & C.REG_MEMB_MESS:
                if svc & (C.CAUSED_BY_JOIN | C.CAUSED_BY_LEAVE | C.CAUSED_BY_DISCONNECT):
                    changed = bytes(info.changed_member)
                nvs = info.num_vs_sets
                if nvs * 8 > size:
                    raise SpreadError(C.ILLEGAL_MESSAGE, f"membership message claims {nvs} sets")
                sets = (_native.VsSetInfo * max(nvs, 1))()
                idx = ctypes.c_uint(0)
                got = lib.SP_get_vs_sets_info(buf, sets, nvs, ctypes.byref(idx))
                if got < 0:
                    raise SpreadError(got)
                out = []
                for i in range(min(got, nvs)):
                    vs = sets[i]
                    num = vs.num_members
                    if vs.members_offset + num * C.MAX_GROUP_NAME > size:
                        raise SpreadError(C.ILLEGAL_MESSAGE, "membership set lies outside the message")
                    names = ctypes.create_string_buffer(max(num, 1) * C.MAX_GROUP_NAME)
                    r = lib.SP_get_vs_set_members(buf, ctypes.byref(vs), names, num)
                    if r < 0:
                        raise SpreadError(r)
                    out.append(_names(names, num))
                vs_sets = tuple(out)
                my_index = idx.value if got > 0 else None
        return RawMessage(svc, group, members, mess_type, 0, body, gid, changed, vs_sets, my_index)
