"""The asyncio API: areceive(), messages(), ``async for msg in mailbox``."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

import spread
from spread import DataMessage, Mailbox, MembershipCause, MembershipMessage


def open_box(daemon, prefix="as", **kw) -> Mailbox:
    return Mailbox(daemon.address.decode(), daemon.name(prefix).decode(), timeout=5, **kw)


def run(coro, timeout=20):
    """Run a coroutine with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_async_for_receives_membership_and_data(daemon):
    async def main():
        async with open_box(daemon) as rx, open_box(daemon) as tx:
            g = daemon.group().decode()
            rx.join(g)

            async def send_later():
                await asyncio.sleep(0.1)
                for i in range(5):
                    tx.multicast(g, b"m%d" % i)

            sender = asyncio.create_task(send_later())
            got = []
            async for msg in rx:
                got.append(msg)
                if isinstance(msg, DataMessage) and msg.data == b"m4":
                    break
            await sender
            return rx.private_group, got

    me, got = run(main())
    assert isinstance(got[0], MembershipMessage)
    assert got[0].cause is MembershipCause.JOIN and got[0].members == (me,)
    assert [m.data for m in got[1:]] == [b"m%d" % i for i in range(5)]


def test_areceive_timeout_then_message(daemon):
    async def main():
        with open_box(daemon) as mb:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(mb.areceive(), 0.2)
            # the reader was removed on cancellation: a new wait works
            asyncio.get_running_loop().call_later(0.05, mb.multicast, mb.private_group, b"late")
            return await asyncio.wait_for(mb.areceive(), 5)

    msg = run(main())
    assert msg.data == b"late"


def test_waiting_does_not_busy_poll(daemon):
    async def main():
        with open_box(daemon) as mb:
            cpu0, wall0 = time.process_time(), time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(mb.areceive(), 0.5)
            return time.process_time() - cpu0, time.monotonic() - wall0

    cpu, wall = run(main())
    assert wall >= 0.45
    assert cpu < 0.1, f"{cpu:.3f} s of CPU while idle for {wall:.2f} s: busy polling"


def test_close_ends_iteration(daemon):
    async def main():
        mb = open_box(daemon)
        got = []

        async def consume():
            async for msg in mb.messages():
                got.append(msg)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        mb.multicast(mb.private_group, b"one")
        await asyncio.sleep(0.2)
        mb.close()
        await asyncio.wait_for(task, 5)  # iteration ends, no exception
        return got

    got = run(main())
    assert [m.data for m in got] == [b"one"]


def test_close_from_another_thread_wakes_areceive(daemon):
    async def main():
        mb = open_box(daemon)
        timer = threading.Timer(0.2, mb.close)
        timer.start()
        try:
            async for _ in mb:
                pass
        finally:
            timer.join(5)
        return mb.closed

    assert run(main(), timeout=10) is True


def test_many_mailboxes_one_loop(daemon):
    async def main():
        boxes = [open_box(daemon) for _ in range(4)]
        try:
            g = daemon.group().decode()
            for mb in boxes:
                mb.join(g)

            async def until_data(mb):
                async for msg in mb:
                    if isinstance(msg, DataMessage):
                        return msg.data

            tasks = [asyncio.create_task(until_data(mb)) for mb in boxes]
            # wait until everyone is in the group, then send once
            for _ in range(50):
                await asyncio.sleep(0.02)
            boxes[0].multicast(g, b"all")
            return await asyncio.gather(*tasks)
        finally:
            for mb in boxes:
                mb.close()

    assert run(main()) == [b"all"] * 4


def test_concurrent_areceive_on_one_mailbox(daemon):
    async def main():
        with open_box(daemon, membership=False) as mb:
            tasks = [asyncio.create_task(mb.areceive()) for _ in range(3)]
            await asyncio.sleep(0.05)
            for i in range(3):
                mb.multicast(mb.private_group, b"%d" % i)
            msgs = await asyncio.gather(*tasks)
            return sorted(m.data for m in msgs)

    assert run(main()) == [b"0", b"1", b"2"]


def test_lost_connection_raises_in_iteration(daemon):
    async def main():
        mb = open_box(daemon)
        # Cut the connection under the library (as a dying daemon would).
        dup = socket.socket(fileno=os.dup(mb.fileno()))
        asyncio.get_running_loop().call_later(0.1, dup.shutdown, socket.SHUT_RDWR)
        with pytest.raises(spread.error) as info:
            async for _ in mb:
                pass
        dup.close()
        return info.value.args[0], mb.closed

    code, closed = run(main())
    assert code in (spread.CONNECTION_CLOSED, spread.ILLEGAL_SESSION)
    assert closed
