#!/usr/bin/env python3
"""Messages per second through one mailbox: N messages of SIZE bytes, AGREED, sent to the
mailbox's own private group, at most WINDOW in flight.

    python3 bench_throughput.py --daemon 4803@127.0.0.1 [--count 20000] [--size 1024]
                                [--window 64] [--api classic|typed|async]

``--api classic`` uses only the classic calls, so it also runs with the SpreadModule
C extension on the path instead of this package (for comparisons).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import spread


def bench_classic(args: argparse.Namespace, body: bytes) -> float:
    mb = spread.connect(args.daemon.encode(), b"bc%d" % (os.getpid() % 100000), 0, 0)
    me = mb.private_group
    sent = received = 0
    t0 = time.perf_counter()
    while received < args.count:
        while sent < args.count and sent - received < args.window:
            mb.multicast(spread.AGREED_MESS, me, body)
            sent += 1
        msg = mb.receive()
        assert len(msg.message) == len(body)
        received += 1
    elapsed = time.perf_counter() - t0
    mb.disconnect()
    return elapsed


def bench_typed(args: argparse.Namespace, body: bytes) -> float:
    with spread.Mailbox(args.daemon, "bt%d" % (os.getpid() % 100000), membership=False) as mb:
        me = mb.private_group
        sent = received = 0
        t0 = time.perf_counter()
        while received < args.count:
            while sent < args.count and sent - received < args.window:
                mb.multicast(me, body, service=spread.ServiceType.AGREED)
                sent += 1
            msg = mb.receive()
            assert len(msg.data) == len(body)
            received += 1
        return time.perf_counter() - t0


def bench_async(args: argparse.Namespace, body: bytes) -> float:
    async def main() -> float:
        async with spread.Mailbox(args.daemon, "ba%d" % (os.getpid() % 100000), membership=False) as mb:
            me = mb.private_group
            sent = received = 0
            t0 = time.perf_counter()
            while received < args.count:
                while sent < args.count and sent - received < args.window:
                    mb.multicast(me, body, service=spread.ServiceType.AGREED)
                    sent += 1
                msg = await mb.areceive()
                assert len(msg.data) == len(body)
                received += 1
            return time.perf_counter() - t0

    return asyncio.run(main())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--daemon", required=True, help="port@host of the daemon")
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--api", choices=["classic", "typed", "async"], default="classic")
    p.add_argument("--repeat", type=int, default=1, help="runs; the best is reported")
    args = p.parse_args()
    body = os.urandom(args.size)
    run = {"classic": bench_classic, "typed": bench_typed, "async": bench_async}[args.api]
    elapsed = min(run(args, body) for _ in range(max(args.repeat, 1)))
    where = getattr(spread, "__file__", "?")
    print(
        f"{args.api}: {args.count} x {args.size} B AGREED to self in {elapsed:.2f} s = "
        f"{args.count / elapsed:,.0f} msg/s  (module {where})"
    )


if __name__ == "__main__":
    main()
