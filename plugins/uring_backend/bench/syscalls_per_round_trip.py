"""Count the system calls one TCP echo round trip costs on a hookloop loop.

    strace -f -c -o OUT python syscalls_per_round_trip.py BACKEND N

runs N round trips of 1 KiB between an asyncio.Protocol echo server and a
client protocol on one loop over loopback TCP.  Running it for two values
of N and dividing the difference of the two strace totals by the difference
of N gives the system calls per round trip with start-up cancelled out;
``python syscalls_per_round_trip.py --table`` does that for every installed
backend (and asyncio's own loop) and prints a markdown table.
"""
from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import tempfile

import hookloop

MESSAGE = b"x" * 1024


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


class Client(asyncio.Protocol):
    def __init__(self, rounds: int, done: asyncio.Future[None]) -> None:
        self.left, self.done, self.pending = rounds, done, len(MESSAGE)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(MESSAGE)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending:
            return
        self.left -= 1
        if not self.left:
            self.done.set_result(None)
            return
        self.pending = len(MESSAGE)
        self.transport.write(MESSAGE)  # type: ignore[attr-defined]


async def run(rounds: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    done = loop.create_future()
    transport, _ = await loop.create_connection(lambda: Client(rounds, done), "127.0.0.1", port)
    await done
    transport.close()
    server.close()
    await server.wait_closed()


def main(backend: str, rounds: int) -> None:
    factory = asyncio.new_event_loop if backend == "asyncio" else (
        lambda: hookloop.new_event_loop(backend))
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(rounds))


def strace_counts(backend: str, rounds: int) -> collections.Counter[str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "strace")
        subprocess.run(["strace", "-f", "-c", "-o", out, sys.executable, __file__, backend,
                        str(rounds)], check=True)
        counts: collections.Counter[str] = collections.Counter()
        with open(out) as f:
            for line in f:
                fields = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                    counts[fields[-1]] = int(fields[3])
        return counts


def table(low: int = 2000, high: int = 4000) -> None:
    print("| loop | system calls per round trip (both ends) |")
    print("|---|---|")
    for backend in ["asyncio", *hookloop.available_backends()]:
        a, b = strace_counts(backend, low), strace_counts(backend, high)
        per = {name: (b[name] - a[name]) / (high - low) for name in b}
        shown = ", ".join(f"{name} {n:.2f}" for name, n in
                          sorted(per.items(), key=lambda kv: -kv[1]) if n >= 0.01)
        print(f"| {backend} | {sum(per.values()):.2f}: {shown} |")


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        table()
    else:
        main(sys.argv[1], int(sys.argv[2]))
