"""Count the system calls one TCP echo round trip costs on a hookloop loop.

    python syscalls_per_round_trip.py --table

measures, for every installed backend and asyncio's own loop, with
``strace -c``, two set-ups of N round trips of 1 KiB over loopback TCP:

* ``inproc``: an asyncio.Protocol echo server and a client protocol on one
  loop (both ends counted);
* ``server``: the echo server alone on the loop, the client a plain blocking
  socket in another process that strace does not follow (the server's
  calls only: the case of a real server, whose loop waits for the network).

Each is run for two values of N; the difference of the strace counts over
the difference of N is the cost per round trip, start-up cancelled out.
"""
from __future__ import annotations

import asyncio
import collections
import os
import socket
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


async def serve_one(rounds: int) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    class Counting(Echo):
        received = 0

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.received += len(data)
            if self.received == rounds * len(MESSAGE):
                done.set_result(None)

    server = await loop.create_server(Counting, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await done
    server.close()
    await server.wait_closed()


def blocking_client(port: int, rounds: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(rounds):
            sock.sendall(MESSAGE)
            left = len(MESSAGE)
            while left:
                left -= len(sock.recv(left))


def on_loop(backend: str, coro: object) -> None:
    factory = asyncio.new_event_loop if backend == "asyncio" else (
        lambda: hookloop.new_event_loop(backend))
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coro)  # type: ignore[arg-type]


def strace_counts(mode: str, backend: str, rounds: int) -> collections.Counter[str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "strace")
        cmd = ["strace", "-c", "-o", out, sys.executable, __file__, mode, backend, str(rounds)]
        if mode == "inproc":
            subprocess.run(cmd, check=True)
        else:
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as server:
                assert server.stdout is not None
                port = int(server.stdout.readline())
                subprocess.run([sys.executable, __file__, "client", str(port), str(rounds)],
                               check=True)
        counts: collections.Counter[str] = collections.Counter()
        with open(out) as f:
            for line in f:
                fields = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                    counts[fields[-1]] = int(fields[3])
        return counts


def table(low: int = 2000, high: int = 4000) -> None:
    print("| loop | in-process client and server | server, client in another process |")
    print("|---|---|---|")
    for backend in ["asyncio", *hookloop.available_backends()]:
        cells = []
        for mode in ("inproc", "server"):
            a, b = strace_counts(mode, backend, low), strace_counts(mode, backend, high)
            per = {name: (b[name] - a[name]) / (high - low) for name in b}
            shown = ", ".join(f"{name} {n:.2f}" for name, n in
                              sorted(per.items(), key=lambda kv: -kv[1]) if n >= 0.01)
            cells.append(f"{sum(per.values()):.2f} ({shown})")
        print(f"| {backend} | {' | '.join(cells)} |")


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["--table"]:
            table()
        case ["inproc", backend, rounds]:
            on_loop(backend, run(int(rounds)))
        case ["server", backend, rounds]:
            on_loop(backend, serve_one(int(rounds)))
        case ["client", port, rounds]:
            blocking_client(int(port), int(rounds))
        case _:
            sys.exit(__doc__)
