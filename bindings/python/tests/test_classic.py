"""The classic (SpreadModule-compatible) API against a live daemon."""

from __future__ import annotations

import select
import threading
import time

import pytest

import spread
from conftest import receive, wait_readable


def connect(daemon, prefix="c", membership=1):
    return spread.connect(daemon.address, daemon.name(prefix), 0, membership)


def group_of(daemon, size):
    """A fresh group with ``size`` members that have all seen the full membership."""
    group = daemon.group()
    boxes = [connect(daemon, "m") for _ in range(size)]
    for mb in boxes:
        mb.join(group)
    for mb in boxes:
        while True:
            msg = receive(mb)
            assert type(msg) is spread.MembershipMsgType
            if len(msg.members) == size:
                break
    return group, boxes


def close_all(boxes):
    for mb in boxes:
        mb.disconnect()


def test_single_connect_join_and_leave(daemon):
    mb = connect(daemon)
    group = daemon.group()
    mb.join(group)
    msg = receive(mb)
    assert type(msg) is spread.MembershipMsgType
    assert msg.group == group
    assert msg.reason == spread.CAUSED_BY_JOIN
    assert msg.members == (mb.private_group,)
    assert msg.orig_members == ((mb.private_group,),)
    assert msg.extra == (mb.private_group,)
    assert isinstance(msg.group_id, spread.GroupId)
    assert repr(msg.group_id).startswith("<group_id ")

    mb.leave(group)
    msg = receive(mb)
    assert type(msg) is spread.MembershipMsgType
    assert msg.group == group
    assert msg.reason == spread.CAUSED_BY_LEAVE
    assert msg.members == ()
    assert msg.orig_members is None
    assert msg.group_id is None
    mb.disconnect()


def test_private_group_name_and_types(daemon):
    name = daemon.name("good")
    mb = spread.connect(daemon=daemon.address, name=name)
    try:
        assert isinstance(mb, spread.MailboxType)
        assert isinstance(mb.private_group, bytes)
        assert mb.private_group == b"#" + name + b"#localhost"
    finally:
        mb.disconnect()


def test_local_socket_address(daemon):
    # "port" alone means the daemon's local (Unix) socket.
    mb = spread.connect(str(daemon.port).encode(), daemon.name("u"))
    try:
        g = daemon.group()
        mb.join(g)
        assert receive(mb).members == (mb.private_group,)
    finally:
        mb.disconnect()


def test_empty_name_gets_generated_private_name(daemon):
    mb = spread.connect(daemon.address)
    try:
        assert mb.private_group.startswith(b"#")
        assert mb.private_group.endswith(b"#localhost")
        assert len(mb.private_group) > len(b"##localhost")
    finally:
        mb.disconnect()


def test_duplicate_name_rejected(daemon):
    name = daemon.name("dup")
    first = spread.connect(daemon.address, name)
    try:
        with pytest.raises(spread.error) as info:
            spread.connect(daemon.address, name)
        assert info.value.args[0] == spread.REJECT_NOT_UNIQUE
    finally:
        first.disconnect()


def test_two_connects_see_each_others_joins(daemon):
    group = daemon.group()
    mb1 = connect(daemon)
    mb1.join(group)
    first = receive(mb1)
    mb2 = connect(daemon)
    mb2.join(group)
    second_at_1 = receive(mb1)
    at_2 = receive(mb2)
    for msg in (first, second_at_1, at_2):
        assert msg.reason == spread.CAUSED_BY_JOIN
    assert first.members == (mb1.private_group,)
    assert len(second_at_1.members) == 2
    assert set(second_at_1.members) == {mb1.private_group, mb2.private_group}
    assert second_at_1.members == at_2.members
    assert second_at_1.group_id == at_2.group_id
    assert second_at_1.group_id != first.group_id
    assert second_at_1.extra == (mb2.private_group,)

    mb2.leave(group)
    left = receive(mb1)
    assert left.reason == spread.CAUSED_BY_LEAVE
    assert left.members == (mb1.private_group,)
    assert left.extra == (mb2.private_group,)
    assert receive(mb2).reason == spread.CAUSED_BY_LEAVE  # its own self-leave
    mb1.leave(group)
    close_all([mb1, mb2])


def test_disconnect_is_a_membership_change(daemon):
    group = daemon.group()
    mb1 = connect(daemon)
    mb2 = connect(daemon)
    mb1.join(group)
    receive(mb1)
    mb2.join(group)
    receive(mb1)
    receive(mb2)
    gone = mb2.private_group
    mb2.disconnect()
    msg = receive(mb1)
    assert msg.reason == spread.CAUSED_BY_DISCONNECT
    assert msg.members == (mb1.private_group,)
    assert msg.extra == (gone,)
    mb1.disconnect()


def test_two_groups(daemon):
    mb = connect(daemon)
    g1, g2 = daemon.group(), daemon.group()
    mb.join(g1)
    mb.join(g2)
    mb.leave(g1)
    mb.leave(g2)
    msgs = [receive(mb) for _ in range(4)]
    assert [m.reason for m in msgs] == [spread.CAUSED_BY_JOIN] * 2 + [spread.CAUSED_BY_LEAVE] * 2
    assert [m.group for m in msgs] == [g1, g2, g1, g2]
    assert msgs[0].members == msgs[1].members == (mb.private_group,)
    assert msgs[2].members == msgs[3].members == ()
    mb.disconnect()


def test_twelve_recipients_multicast(daemon):
    group, members = group_of(daemon, 12)
    writer = members[0]
    for body in (b"1", b"2"):
        assert writer.multicast(spread.FIFO_MESS, group, body) == len(body)
        for rd in members:
            msg = receive(rd)
            assert type(msg) is spread.RegularMsgType
            assert msg.message == body
            assert msg.sender == writer.private_group
            assert msg.groups == (group,)
    close_all(members)


def test_twelve_recipients_multigroup_to_private_groups(daemon):
    group, members = group_of(daemon, 12)
    names = tuple(m.private_group for m in members)
    writer = members[0]
    for body in (b"1", b"2"):
        writer.multigroup_multicast(spread.FIFO_MESS, names, body)
        for rd in members:
            msg = receive(rd)
            assert type(msg) is spread.RegularMsgType
            assert msg.message == body
            assert msg.sender == writer.private_group
            assert len(msg.groups) == 12
            assert rd.private_group in msg.groups
    close_all(members)


def test_leave_from_big_group_seen_by_others(daemon):
    group, members = group_of(daemon, 12)
    members[2].leave(group)
    msg = receive(members[1])
    assert msg.reason == spread.CAUSED_BY_LEAVE
    assert len(msg.members) == 11
    assert members[2].private_group not in msg.members
    close_all(members)


# Well below the 144,000-byte limit of body + group names: the reference daemon aborts on
# some bodies close to it (about 143,500 bytes), so the edge itself is not tested here.
@pytest.mark.parametrize("size", [2 * spread.DEFAULT_BUFFER_SIZE, 100_000, 140_000])
def test_big_message(daemon, size):
    group = daemon.group()
    mb = connect(daemon)
    mb.join(group)
    assert type(receive(mb)) is spread.MembershipMsgType
    body = bytes(i % 251 for i in range(size))
    assert mb.multicast(spread.SAFE_MESS, group, body) == size
    msg = receive(mb)
    assert len(msg.message) == size
    assert msg.message == body
    mb.disconnect()


def test_message_too_long(daemon):
    mb = connect(daemon)
    with pytest.raises(spread.error) as info:
        mb.multicast(spread.AGREED_MESS, b"g", b"x" * 144_001)
    assert info.value.args[0] == spread.MESSAGE_TOO_LONG
    mb.disconnect()


def test_many_groups_on_one_message(daemon):
    # More destination groups than the initial group buffer holds (10).
    mb = connect(daemon)
    groups = tuple(daemon.group("mg") for _ in range(25))
    for g in groups:
        mb.join(g)
    for _ in groups:
        receive(mb)
    mb.multigroup_multicast(spread.AGREED_MESS, groups, b"to all")
    msg = receive(mb)
    assert msg.message == b"to all"
    assert sorted(msg.groups) == sorted(groups)
    mb.disconnect()


def test_msg_type_and_endian(daemon):
    mb = connect(daemon)
    g = daemon.group()
    mb.join(g)
    receive(mb)
    for sent, expected in ((0, 0), (0x1234, 0x1234), (-2, -2), (0x18000, -0x8000)):
        mb.multicast(spread.AGREED_MESS, g, b"t", sent)
        msg = receive(mb)
        assert msg.msg_type == expected
        assert msg.endian == 0
    mb.disconnect()


def test_all_service_types_deliver(daemon):
    mb = connect(daemon)
    g = daemon.group()
    mb.join(g)
    receive(mb)
    for svc in (
        spread.UNRELIABLE_MESS,
        spread.RELIABLE_MESS,
        spread.FIFO_MESS,
        spread.CAUSAL_MESS,
        spread.AGREED_MESS,
        spread.SAFE_MESS,
    ):
        mb.multicast(svc, g, b"svc%d" % svc)
        assert receive(mb).message == b"svc%d" % svc
    mb.disconnect()


def test_self_discard(daemon):
    mb = connect(daemon)
    g = daemon.group()
    mb.join(g)
    receive(mb)
    mb.multicast(spread.AGREED_MESS | spread.SELF_DISCARD, g, b"not for me")
    mb.multicast(spread.AGREED_MESS, g, b"for me")
    assert receive(mb).message == b"for me"
    mb.disconnect()


def test_membership_off(daemon):
    mb = connect(daemon, membership=0)
    g = daemon.group()
    mb.join(g)
    mb.multicast(spread.AGREED_MESS, g, b"first")
    msg = receive(mb)
    assert type(msg) is spread.RegularMsgType
    assert msg.message == b"first"
    mb.disconnect()


def test_poll_and_fileno(daemon):
    mb = connect(daemon)
    fd = mb.fileno()
    assert isinstance(fd, int) and fd >= 0
    assert mb.poll() == 0
    r, _, _ = select.select([fd], [], [], 0.2)
    assert r == []
    g = daemon.group()
    mb.join(g)
    assert wait_readable(fd)
    deadline = time.monotonic() + 5
    while mb.poll() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mb.poll() > 0
    assert type(mb.receive()) is spread.MembershipMsgType
    mb.disconnect()


def test_use_after_close_raises(daemon):
    mb = connect(daemon)
    mb.disconnect()
    for call in (
        mb.receive,
        mb.poll,
        mb.fileno,
        lambda: mb.join(b"g"),
        lambda: mb.leave(b"g"),
        lambda: mb.multicast(spread.AGREED_MESS, b"g", b"x"),
        lambda: mb.multigroup_multicast(spread.AGREED_MESS, (b"g",), b"x"),
    ):
        with pytest.raises(spread.error) as info:
            call()
        code, text = info.value.args
        assert code == spread.ILLEGAL_SESSION
        assert "closed" in text
    mb.disconnect()  # a second disconnect is harmless


def test_lost_connection(daemon):
    import os
    import socket

    mb = connect(daemon)
    # Cut the connection under the library, as a dying daemon would.
    dup = socket.socket(fileno=os.dup(mb.fileno()))
    dup.shutdown(socket.SHUT_RDWR)
    dup.close()
    with pytest.raises(spread.error) as info:
        receive(mb)
    assert info.value.args[0] == spread.CONNECTION_CLOSED
    with pytest.raises(spread.error) as info:
        mb.multicast(spread.AGREED_MESS, b"g", b"x")
    assert info.value.args[0] == spread.ILLEGAL_SESSION
    mb.disconnect()  # nothing left to release: no error


def test_context_manager_disconnects(daemon):
    with connect(daemon) as mb:
        mb.join(daemon.group())
    with pytest.raises(spread.error):
        mb.receive()


@pytest.mark.parametrize("silly", [b"no daemon here", b"notaport@127.0.0.1", b"@@@", b"-1"])
def test_bad_daemon_names_raise(daemon, silly):
    with pytest.raises(spread.error) as info:
        spread.connect(silly)
    assert info.value.args[0] < 0
    with pytest.raises(spread.error):
        spread.connect(daemon=silly)


def test_no_daemon_there(daemon):
    # The daemon's token port is UDP only: nothing listens on TCP there.
    with pytest.raises(spread.error) as info:
        spread.connect(f"{daemon.port + 1}@127.0.0.1".encode(), b"x")
    assert info.value.args[0] == spread.COULD_NOT_CONNECT
    assert isinstance(info.value.args[1], str) and info.value.args[1]


@pytest.mark.parametrize("kw", ["host", "private_name", "prio", "group_membership", "bogus"])
def test_bad_keywords_raise_type_error(kw):
    with pytest.raises(TypeError):
        spread.connect(**{kw: 1})


def test_str_arguments_are_refused(daemon):
    with pytest.raises(TypeError):
        spread.connect(daemon.address.decode())
    mb = connect(daemon)
    try:
        with pytest.raises(TypeError):
            mb.join("g")
        with pytest.raises(TypeError):
            mb.multicast(spread.AGREED_MESS, b"g", "text")
        with pytest.raises(TypeError):
            mb.multigroup_multicast(spread.AGREED_MESS, [b"g"], b"x")
        with pytest.raises(TypeError):
            mb.multigroup_multicast(spread.AGREED_MESS, (b"g", "h"), b"x")
        with pytest.raises(ValueError):
            mb.multigroup_multicast(spread.AGREED_MESS, (), b"x")
        with pytest.raises(ValueError):
            mb.multicast(0x80, b"g", b"x")
        with pytest.raises(ValueError):
            mb.join(b"a\0b")
        # bytes-like payloads are fine
        assert mb.multicast(spread.AGREED_MESS, b"g", bytearray(b"abc")) == 3
        assert mb.multicast(spread.AGREED_MESS, b"g", memoryview(b"abcd")) == 4
    finally:
        mb.disconnect()


def test_thread_sends_to_itself_through_one_mailbox(daemon):
    """One thread blocks in receive() while another multicasts on the same mailbox."""
    mb = connect(daemon, membership=0)
    group = daemon.group()
    bodies = [b"first", b"second", b"third", b"last one"]
    got = []
    errors = []
    joined = threading.Event()
    step = threading.Semaphore(0)

    def receiver():
        try:
            mb.join(group)
            joined.set()
            for _ in bodies:
                step.release()
                got.append(mb.receive().message)  # blocks until the main thread sends
        except BaseException as exc:  # reported below
            errors.append(exc)
            joined.set()

    t = threading.Thread(target=receiver, daemon=True)
    t.start()
    assert joined.wait(10)
    for body in bodies:
        assert step.acquire(timeout=10), "receiver thread stalled"
        time.sleep(0.05)  # let it enter receive()
        mb.multicast(spread.FIFO_MESS, group, body)
    t.join(10)
    assert not t.is_alive(), "receive() never returned: the library call holds a lock"
    assert errors == []
    assert got == bodies
    mb.disconnect()


def test_disconnect_wakes_a_blocked_receiver(daemon):
    mb = connect(daemon)
    outcome = []

    def reader():
        try:
            outcome.append(mb.receive())
        except spread.error as exc:
            outcome.append(exc)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.2)  # the reader is blocked in receive()
    mb.disconnect()
    t.join(10)
    assert not t.is_alive(), "receive() stayed blocked after disconnect()"
    assert len(outcome) == 1 and isinstance(outcome[0], spread.error)


def test_garbage_collected_mailbox_disconnects(daemon):
    import gc

    group = daemon.group()
    watcher = connect(daemon)
    watcher.join(group)
    receive(watcher)
    doomed = connect(daemon)
    doomed.join(group)
    receive(watcher)
    receive(doomed)
    name = doomed.private_group
    del doomed
    gc.collect()
    msg = receive(watcher)
    assert msg.reason == spread.CAUSED_BY_DISCONNECT
    assert msg.extra == (name,)
    watcher.disconnect()


def test_error_carries_code_and_text():
    err = spread.error(spread.CONNECTION_CLOSED)
    code, text = err.args
    assert code == spread.CONNECTION_CLOSED
    assert "closed" in text
    assert err.code is spread.ErrorCode.CONNECTION_CLOSED
    assert issubclass(spread.error, Exception)


def test_version(library):
    major, minor, patch = spread.version()
    assert (major, minor) == (4, 4)
    assert patch >= 0


def test_constants():
    assert spread.DEFAULT_SPREAD_PORT == 4803
    assert spread.AGREED_MESS == 0x10
    assert spread.CAUSED_BY_JOIN == 0x100
    assert spread.DEFAULT_BUFFER_SIZE == 10000
    assert spread.REGULAR_MESS == 0x3F
    assert spread.MEMBERSHIP_MESS == 0x3F00
    assert spread.BUFFER_TOO_SHORT == -15
