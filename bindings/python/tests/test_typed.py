"""The typed API (spread.Mailbox, dataclasses, enums) against a live daemon."""

from __future__ import annotations

import dataclasses
import selectors
import threading
import time

import pytest

import spread
from spread import DataMessage, Mailbox, MembershipCause, MembershipMessage, ServiceType


def open_box(daemon, prefix="ty", **kw) -> Mailbox:
    return Mailbox(daemon.address.decode(), daemon.name(prefix).decode(), timeout=5, **kw)


def test_connect_context_manager_and_names(daemon):
    name = daemon.name("cm").decode()
    with Mailbox(daemon.address.decode(), name) as mb:
        assert isinstance(mb.private_group, str)
        assert mb.private_group == f"#{name}#localhost"
        assert not mb.closed
        assert mb.fileno() >= 0
        assert "fd=" in repr(mb)
    assert mb.closed
    with pytest.raises(spread.SpreadError) as info:
        mb.receive(timeout=1)
    assert info.value.code is spread.ErrorCode.ILLEGAL_SESSION
    mb.close()  # idempotent


def test_join_membership_message(daemon):
    with open_box(daemon) as mb:
        g = daemon.group().decode()
        mb.join(g)
        msg = mb.receive(timeout=10)
        assert isinstance(msg, MembershipMessage)
        assert msg.group == g
        assert msg.cause is MembershipCause.JOIN
        assert msg.is_regular and not msg.is_transitional
        assert msg.members == (mb.private_group,)
        assert msg.changed_member == mb.private_group
        assert msg.vs_sets == ((mb.private_group,),)
        assert msg.my_vs_set_index == 0
        assert msg.my_index == 0
        assert isinstance(msg.group_id, spread.GroupId)
        assert hash(msg.group_id) == hash(spread.GroupId(msg.group_id.id))
        mb.leave(g)
        left = mb.receive(timeout=10)
        assert left.cause is MembershipCause.SELF_LEAVE
        assert left.is_self_leave
        assert left.members == ()


def test_second_member_join_leave_disconnect(daemon):
    g = daemon.group().decode()
    with open_box(daemon) as a:
        a.join(g)
        a.receive(timeout=10)
        b = open_box(daemon)
        b.join(g)
        seen = a.receive(timeout=10)
        assert seen.cause is MembershipCause.JOIN
        assert seen.changed_member == b.private_group
        assert set(seen.members) == {a.private_group, b.private_group}
        assert seen.vs_sets == ((b.private_group,),)  # for a join: the joiner alone
        assert seen.members[seen.my_index] == a.private_group
        at_b = b.receive(timeout=10)
        assert at_b.group_id == seen.group_id
        b.close()
        gone = a.receive(timeout=10)
        assert gone.cause is MembershipCause.DISCONNECT
        assert gone.changed_member is not None and gone.changed_member.startswith("#ty")
        assert gone.members == (a.private_group,)


def test_data_message_fields_and_str_payload(daemon):
    with open_box(daemon) as mb:
        g = daemon.group().decode()
        mb.join(g)
        mb.receive(timeout=10)
        n = mb.multicast(g, "grüße", service=ServiceType.SAFE, msg_type=-7)
        assert n == len("grüße".encode())
        msg = mb.receive(timeout=10)
        assert isinstance(msg, DataMessage)
        assert msg.sender == mb.private_group
        assert msg.groups == (g,)
        assert msg.text == "grüße"
        assert msg.data == "grüße".encode()
        assert msg.msg_type == -7
        assert msg.service is ServiceType.SAFE
        assert msg.endian_mismatch is False
        with pytest.raises(dataclasses.FrozenInstanceError):
            msg.data = b"x"  # type: ignore[misc]


def test_every_service_type(daemon):
    with open_box(daemon) as mb:
        g = daemon.group().decode()
        mb.join(g)
        mb.receive(timeout=10)
        kinds = [
            ServiceType.UNRELIABLE,
            ServiceType.RELIABLE,
            ServiceType.FIFO,
            ServiceType.CAUSAL,
            ServiceType.AGREED,
            ServiceType.SAFE,
        ]
        for kind in kinds:
            mb.multicast(g, kind.name.encode(), service=kind)
            msg = mb.receive(timeout=10)
            assert msg.data == kind.name.encode()
            assert msg.service == kind


def test_multicast_to_several_groups_and_private_groups(daemon):
    with open_box(daemon) as a, open_box(daemon) as b:
        g1, g2 = daemon.group().decode(), daemon.group().decode()
        a.join(g1)
        a.join(g2)
        a.receive(timeout=10)
        a.receive(timeout=10)
        a.multicast([g1, g2, b.private_group], b"fan-out")
        at_a = a.receive(timeout=10)
        at_b = b.receive(timeout=10)
        assert at_a.data == at_b.data == b"fan-out"
        # every receiver sees the whole destination list
        assert set(at_a.groups) == set(at_b.groups) == {g1, g2, b.private_group}


def test_self_discard_and_receive_timeout(daemon):
    with open_box(daemon) as mb:
        g = daemon.group().decode()
        mb.join(g)
        mb.receive(timeout=10)
        mb.multicast(g, b"gone", self_discard=True)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            mb.receive(timeout=0.3)
        assert 0.25 <= time.monotonic() - t0 < 5


def test_argument_checks(daemon):
    with open_box(daemon) as mb:
        with pytest.raises(ValueError):
            mb.multicast("g", b"x", service=ServiceType.SELF_DISCARD)
        with pytest.raises(ValueError):
            mb.multicast("g", b"x", msg_type=40000)
        with pytest.raises(ValueError):
            mb.multicast([], b"x")
        with pytest.raises(TypeError):
            mb.join(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            mb.multicast("g", 42)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            mb.join("a\0b")


def test_connect_errors_are_typed(daemon):
    with pytest.raises(spread.SpreadError) as info:
        Mailbox(f"{daemon.port + 1}@127.0.0.1", "nobody", timeout=2)
    assert info.value.code is spread.ErrorCode.COULD_NOT_CONNECT
    assert isinstance(info.value, spread.error)
    with pytest.raises(spread.SpreadError) as info:
        Mailbox(daemon.address.decode(), "bad#name", timeout=2)
    assert info.value.code is spread.ErrorCode.REJECT_ILLEGAL_NAME


def test_selectors_with_fileno(daemon):
    with open_box(daemon) as a, open_box(daemon) as b:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ)
        sel.register(b, selectors.EVENT_READ)
        assert sel.select(timeout=0.1) == []
        a.multicast(b.private_group, b"ping")
        ready = sel.select(timeout=10)
        assert [key.fileobj for key, _ in ready] == [b]
        assert b.receive(timeout=1).data == b"ping"
        sel.close()


def test_big_message_grows_buffers(daemon):
    with open_box(daemon) as mb:
        body = bytes(range(256)) * 400  # 102,400 bytes
        mb.multicast(mb.private_group, body)
        assert mb.receive(timeout=10).data == body
        small = mb.multicast(mb.private_group, b"small")
        assert small == 5
        assert mb.receive(timeout=10).data == b"small"


def test_threads_receive_while_another_sends(daemon):
    with open_box(daemon, membership=False) as mb:
        got = []

        def reader():
            for _ in range(50):
                got.append(mb.receive().data)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        time.sleep(0.1)  # the reader is blocked in receive()
        for i in range(50):
            mb.multicast(mb.private_group, b"%d" % i, service=ServiceType.FIFO)
        t.join(10)
        assert not t.is_alive()
        assert got == [b"%d" % i for i in range(50)]


def test_fast_message_construction_matches_the_dataclass():
    # _to_typed fills DataMessage without its __init__; the result must be the same.
    from spread._core import RawMessage
    from spread.client import _to_typed

    raw = RawMessage(0x10, b"#a#h", (b"g1", b"g2"), -3, 1, b"body", None, None, None, None)
    fast = _to_typed(raw)
    slow = DataMessage("#a#h", ("g1", "g2"), b"body", -3, ServiceType.AGREED, True)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.sender = "x"  # type: ignore[misc]


def test_connect_timeout_is_honoured(library):
    # A listener that accepts but never answers the handshake.
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        t0 = time.monotonic()
        with pytest.raises(spread.SpreadError):
            Mailbox(f"{port}@127.0.0.1", "slow", timeout=0.5)
        elapsed = time.monotonic() - t0
        assert 0.3 <= elapsed < 5, elapsed
    finally:
        srv.close()
