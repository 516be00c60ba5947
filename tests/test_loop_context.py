"""Protocol callbacks run in the context their connection was made in, as on asyncio's loop.

asyncio never runs a protocol callback in "the loop's" context: every one
runs from a ``Handle``, and a handle copies the context current where it
was made.  What a user sees from that:

* the protocol factory and every callback of a connection see the
  ``ContextVar`` values current where the server, connection or endpoint
  was made (``create_server``, ``create_connection``,
  ``create_datagram_endpoint``, ``connect_*_pipe``...);
* each connection a server accepts has its own copy (asyncio builds it in
  a task of its own): what one connection's factory or callbacks set is
  invisible to the others and to the server's creator;
* a client's factory (``create_connection``, ``create_unix_connection``,
  ``connect_accepted_socket``) runs in its caller's own context: what it
  sets, the caller sees afterwards and the connection's callbacks copy;
* the reads of one connection share one copy (a value set in
  ``data_received`` is there at the next ``data_received``), separate from
  the copy ``connection_made`` ran in and from any other connection's, two
  clients made from one task included;
* ``pause_writing`` runs inside ``write()``, in the writer's context;
  ``resume_writing`` in a copy of the context of the ``write()`` that had to
  wait; ``resume_reading()`` starts reads in a copy of its caller's context;
* ``connection_lost`` runs where the loss was decided: a copy of the
  context of the ``close()``/``abort()`` caller, of the read that saw EOF,
  or, for a transport closed with data still buffered, of the ``write()``
  whose flush emptied the buffer.

Every test runs the same program on asyncio's own loop and on each hookloop
backend and asserts the same observations: the expected values are what
asyncio's loop does.  Broken on purpose (the transports' fd callbacks run
without a context, as before issue #14), the tests fail on hookloop: the
first ``data_received`` of a second connection sees what the first one set.
The tests of unix sockets, accepted and pre-connected sockets, abort and
two clients were also seen failing against narrower breakages, one each:
accepted connections sharing the listener's context, a listener watching
without a context, the client factory called in a copy, connection_lost
scheduled in an empty context, a waiting write's flush without a context.
"""
from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest
from context_helpers import Recorder, where
from net_helpers import no_fd_leak

import hookloop
from hookloop.testing import checked_loop

GUARD = 10.0  # seconds: a scenario that hangs fails instead



def pytest_generate_tests(metafunc):
    if "context_loop_kind" in metafunc.fixturenames:
        backends = (metafunc.config.getoption("hookloop_backend")
                    or hookloop.available_backends())
        metafunc.parametrize("context_loop_kind", ["asyncio", *backends])


@pytest.fixture
def loop(context_loop_kind, hookloop_errors):
    new = (asyncio.new_event_loop() if context_loop_kind == "asyncio"
           else hookloop.new_event_loop(context_loop_kind, stall=False))
    yield from checked_loop(new, hookloop_errors)


def run(loop, scenario):
    """Run ``scenario()`` in a task of its own (a fresh context) on ``loop``."""
    return loop.run_until_complete(asyncio.wait_for(scenario(), GUARD))


class Observer(asyncio.Protocol):
    """Records ``(name, callback, where.get())`` for every callback, and sets
    ``where`` to its own name in ``data_received``/``datagram_received``."""

    def __init__(self, name, seen, lost=None):
        self.name = name
        self.seen = seen
        self.lost = lost
        self.transport = None
        self.note("factory")

    def note(self, callback):
        self.seen.append((self.name, callback, where.get()))

    def connection_made(self, transport):
        self.transport = transport
        self.note("connection_made")
        where.set(f"{self.name}:made")

    def data_received(self, data):
        self.note("data_received")
        where.set(self.name)
        if data.endswith(b"!"):
            self.transport.write(data)

    def eof_received(self):
        self.note("eof_received")

    def connection_lost(self, exc):
        self.note("connection_lost")
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)


def test_server_connections_see_the_servers_context_each_in_its_own_copy(loop):
    seen = []
    losses = []

    def factory():
        lost = loop.create_future()
        losses.append(lost)
        return Observer(f"conn{len(losses)}", seen, lost)

    async def scenario():
        where.set("server")
        server = await loop.create_server(factory, "127.0.0.1", 0)
        where.set("after create_server")  # the server captured "server" already
        port = server.sockets[0].getsockname()[1]
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"one!")
            assert await reader.readexactly(4) == b"one!"
            writer.write(b"two!")
            assert await reader.readexactly(4) == b"two!"
            writer.close()
            await writer.wait_closed()
            await losses[-1]
        server.close()
        await server.wait_closed()
        return where.get()

    assert run(loop, scenario) == "after create_server"
    for conn in ("conn1", "conn2"):
        assert [(cb, value) for name, cb, value in seen if name == conn] == [
            ("factory", "server"),
            ("connection_made", "server"),
            ("data_received", "server"),  # conn1's values never reach conn2
            ("data_received", conn),      # the reads share one copy
            ("eof_received", conn),
            ("connection_lost", conn),    # scheduled from the read that saw EOF
        ]


def test_server_started_later_captures_the_context_of_start_serving(loop):
    seen = []

    async def scenario():
        where.set("create_server")
        server = await loop.create_server(lambda: Observer("conn", seen), "127.0.0.1", 0,
                                          start_serving=False)
        where.set("start_serving")
        await server.start_serving()
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        writer.close()
        await writer.wait_closed()
        while len(seen) < 4:
            await asyncio.sleep(0)
        server.close()
        await server.wait_closed()

    run(loop, scenario)
    assert [(cb, value) for _, cb, value in seen[:3]] == [
        ("factory", "start_serving"), ("connection_made", "start_serving"),
        ("data_received", "start_serving")]


def test_client_connection_sees_its_creators_context_and_keeps_its_own_sets(loop):
    seen = []

    async def echo(reader, writer):
        writer.write(await reader.readexactly(4))
        await writer.drain()
        writer.close()

    async def scenario():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        where.set("client")
        lost = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda: Observer("client", seen, lost), "127.0.0.1", port)
        transport.write(b"ping")
        await lost
        server.close()
        await server.wait_closed()
        return where.get()

    # What the callbacks set stays in their copies, out of the creator's.
    assert run(loop, scenario) == "client"
    assert [(cb, value) for _, cb, value in seen] == [
        ("factory", "client"),
        ("connection_made", "client"),
        ("data_received", "client"),
        ("eof_received", "client"),  # the same read copy: set to "client" again
        ("connection_lost", "client"),
    ]


class BufferObserver(asyncio.BufferedProtocol):
    def __init__(self, seen, done):
        self.seen = seen
        self.done = done
        self.buffer = bytearray(16)

    def connection_made(self, transport):
        self.seen.append(("connection_made", where.get()))

    def get_buffer(self, sizehint):
        self.seen.append(("get_buffer", where.get()))
        where.set("get_buffer")
        return self.buffer

    def buffer_updated(self, nbytes):
        self.seen.append(("buffer_updated", where.get()))
        where.set("buffer_updated")

    def eof_received(self):
        self.seen.append(("eof_received", where.get()))

    def connection_lost(self, exc):
        self.seen.append(("connection_lost", where.get()))
        self.done.set_result(None)


def test_buffered_protocol_callbacks_see_the_connections_context(loop):
    seen = []
    a, b = socket.socketpair()

    async def scenario():
        where.set("accepted")
        done = loop.create_future()
        await loop.connect_accepted_socket(lambda: BufferObserver(seen, done), a)
        b.sendall(b"data")
        b.shutdown(socket.SHUT_WR)
        await done

    try:
        run(loop, scenario)
    finally:
        b.close()
    assert seen[0] == ("connection_made", "accepted")
    assert seen[1:3] == [("get_buffer", "accepted"), ("buffer_updated", "get_buffer")]
    assert seen[-3:] == [("get_buffer", "buffer_updated"), ("eof_received", "get_buffer"),
                         ("connection_lost", "get_buffer")]


class FlowObserver(asyncio.Protocol):
    def __init__(self, seen):
        self.seen = seen
        self.resumed = None

    def connection_made(self, transport):
        self.resumed = asyncio.get_running_loop().create_future()

    def pause_writing(self):
        self.seen.append(("pause_writing", where.get()))

    def resume_writing(self):
        self.seen.append(("resume_writing", where.get()))
        where.set("resume_writing")
        self.resumed.set_result(None)


def test_flow_control_callbacks_see_the_writers_context(loop):
    seen = []
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setblocking(False)

    async def scenario():
        transport, protocol = await loop.connect_accepted_socket(lambda: FlowObserver(seen), a)
        transport.set_write_buffer_limits(high=1024)
        where.set("first writer")  # the write that has to wait captures this
        transport.write(b"x" * (4 * 1024 * 1024))
        where.set("second writer")
        transport.write(b"y" * 1024)
        assert seen == [("pause_writing", "first writer")]
        received = 0
        while received < 4 * 1024 * 1024 + 1024:
            chunk = await loop.sock_recv(b, 1024 * 1024)
            assert chunk
            received += len(chunk)
        await protocol.resumed
        transport.close()
        return where.get()

    try:
        assert run(loop, scenario) == "second writer"
    finally:
        b.close()
    assert seen == [("pause_writing", "first writer"), ("resume_writing", "first writer")]


def test_resume_reading_reads_in_a_copy_of_its_callers_context(loop):
    seen = []
    a, b = socket.socketpair()

    async def scenario():
        where.set("creator")
        lost = loop.create_future()
        transport, protocol = await loop.connect_accepted_socket(
            lambda: Observer("conn", seen, lost), a)
        b.sendall(b"1")
        while len(seen) < 3:
            await asyncio.sleep(0)
        transport.pause_reading()
        where.set("resumer")
        transport.resume_reading()
        where.set("after resume")
        b.sendall(b"2")
        b.shutdown(socket.SHUT_WR)
        await lost

    try:
        run(loop, scenario)
    finally:
        b.close()
    assert [(cb, value) for _, cb, value in seen] == [
        ("factory", "creator"), ("connection_made", "creator"), ("data_received", "creator"),
        ("data_received", "resumer"), ("eof_received", "conn"), ("connection_lost", "conn")]


class DatagramObserver(asyncio.DatagramProtocol):
    def __init__(self, seen, done):
        self.seen = seen
        self.done = done

    def connection_made(self, transport):
        self.seen.append(("connection_made", where.get()))

    def datagram_received(self, data, addr):
        self.seen.append(("datagram_received", where.get()))
        where.set("datagram_received")
        if data == b"last":
            self.done.set_result(None)

    def error_received(self, exc):
        self.seen.append(("error_received", type(exc).__name__, where.get()))

    def connection_lost(self, exc):
        self.seen.append(("connection_lost", where.get()))


def test_datagram_callbacks_see_the_endpoints_context(loop):
    seen = []
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))

    async def scenario():
        where.set("endpoint")
        done = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: DatagramObserver(seen, done), local_addr=("127.0.0.1", 0))
        where.set("after")
        address = transport.get_extra_info("sockname")
        peer.sendto(b"first", address)
        peer.sendto(b"last", address)
        await done
        transport.close()
        await asyncio.sleep(0)

    try:
        run(loop, scenario)
    finally:
        peer.close()
    assert seen == [("connection_made", "endpoint"), ("datagram_received", "endpoint"),
                    ("datagram_received", "datagram_received"), ("connection_lost", "after")]


def test_datagram_error_received_sees_the_endpoints_context(loop):
    seen = []
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    address = closed.getsockname()
    closed.close()  # nobody listens there: the kernel answers ECONNREFUSED

    async def scenario():
        where.set("endpoint")
        done = loop.create_future()
        protocol = DatagramObserver(seen, done)
        original = protocol.error_received

        def error_received(exc):
            original(exc)
            done.set_result(None)

        protocol.error_received = error_received
        transport, _ = await loop.create_datagram_endpoint(lambda: protocol,
                                                           remote_addr=address)
        where.set("sender")
        transport.sendto(b"ping")
        await done
        transport.close()

    run(loop, scenario)
    assert seen[:2] == [("connection_made", "endpoint"),
                        ("error_received", "ConnectionRefusedError", "endpoint")]


def test_read_pipe_callbacks_see_the_creators_context(loop):
    seen = []
    rfd, wfd = os.pipe()

    async def scenario():
        where.set("pipe")
        lost = loop.create_future()
        pipe = open(rfd, "rb", buffering=0)  # noqa: SIM115 - the transport closes it
        await loop.connect_read_pipe(lambda: Observer("pipe", seen, lost), pipe)
        where.set("after")
        os.write(wfd, b"data")
        os.close(wfd)
        await lost

    run(loop, scenario)
    assert [(cb, value) for _, cb, value in seen] == [
        ("factory", "pipe"), ("connection_made", "pipe"), ("data_received", "pipe"),
        ("eof_received", "pipe"), ("connection_lost", "pipe")]


def test_write_pipe_connection_lost_sees_the_creators_context(loop):
    seen = []
    rfd, wfd = os.pipe()

    async def scenario():
        where.set("pipe")
        lost = loop.create_future()
        pipe = open(wfd, "wb", buffering=0)  # noqa: SIM115 - the transport closes it
        await loop.connect_write_pipe(lambda: Observer("pipe", seen, lost), pipe)
        where.set("after")
        os.close(rfd)  # the transport hears of it through its fd: reader gone
        await lost

    run(loop, scenario)
    assert [(cb, value) for _, cb, value in seen] == [
        ("factory", "pipe"), ("connection_made", "pipe"), ("connection_lost", "pipe")]


# -- unix sockets, accepted and pre-connected sockets, abort, two clients ----

@pytest.fixture
def sock_path():
    # AF_UNIX paths are short (108 bytes): kept under /tmp, not tmp_path.
    path = f"/tmp/hl-ctx-{uuid.uuid4().hex[:12]}.sock"
    yield path
    if os.path.exists(path):
        os.unlink(path)


def run_without_fd_leak(loop, scenario):
    """``run``, failing if the scenario leaves an fd open.  The loop goes
    round once first, so that what it makes lazily is not counted."""
    run(loop, lambda: asyncio.sleep(0))
    with no_fd_leak():
        return run(loop, scenario)


def tcp_pair():
    """Two connected TCP sockets (blocking), made without the loop."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server




def calls_of(seen, name):
    return [(callback, value) for who, callback, value in seen if who == name]


async def stream_server(kind, handler, sock_path):
    if kind == "unix":
        return await asyncio.start_unix_server(handler, sock_path)
    return await asyncio.start_server(handler, "127.0.0.1", 0)


async def connect(loop, kind, factory, server, sock_path):
    if kind == "unix":
        return await loop.create_unix_connection(factory, sock_path)
    return await loop.create_connection(factory, "127.0.0.1",
                                        server.sockets[0].getsockname()[1])


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_server_connections_each_get_a_copy_that_their_factory_sets_in(loop, kind, sock_path):
    seen = []
    losses = []

    def factory():
        losses.append(loop.create_future())
        return Recorder(f"conn{len(losses)}", seen, losses[-1], echo=True)

    async def scenario():
        where.set("server")
        if kind == "unix":
            server = await loop.create_unix_server(factory, sock_path)
        else:
            server = await loop.create_server(factory, "127.0.0.1", 0)
        where.set("after the server was made")
        for _ in range(2):
            if kind == "unix":
                reader, writer = await asyncio.open_unix_connection(sock_path)
            else:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", server.sockets[0].getsockname()[1])
            for message in (b"one!", b"two!"):
                writer.write(message)
                assert await reader.readexactly(4) == message
            writer.close()
            await writer.wait_closed()
            await losses[-1]
        server.close()
        await server.wait_closed()
        return where.get()

    assert run_without_fd_leak(loop, scenario) == "after the server was made"
    for conn in ("conn1", "conn2"):
        assert calls_of(seen, conn) == [
            # asyncio builds each connection in a task of its own: the
            # factory's set is in that task's copy, which the connection's
            # callbacks copy in turn; conn1's never reaches conn2's factory.
            ("factory", "server"),
            ("connection_made", f"{conn}:factory"),
            ("data_received", f"{conn}:factory"),  # not connection_made's copy
            ("data_received", f"{conn}:data_received"),
            ("eof_received", f"{conn}:data_received"),
            ("connection_lost", f"{conn}:eof_received"),  # closed by that read
        ]


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_two_clients_of_one_context_do_not_see_each_others_sets(loop, kind, sock_path):
    seen = []

    async def echo(reader, writer):
        while data := await reader.read(100):
            writer.write(data)
        writer.close()

    async def scenario():
        server = await stream_server(kind, echo, sock_path)
        where.set("client")
        lost = {name: loop.create_future() for name in ("c1", "c2")}
        connections = {}
        for name in ("c1", "c2"):
            connections[name] = await connect(
                loop, kind, lambda name=name: Recorder(name, seen, lost[name],
                                                       set_in_factory=False),
                server, sock_path)
        assert where.get() == "client"
        for name, data in (("c1", b"a"), ("c2", b"b"), ("c1", b"c"), ("c2", b"d")):
            transport, protocol = connections[name]
            transport.write(data)
            assert await protocol.inbox.get() == data
        where.set("closer")
        for name, (transport, _) in connections.items():
            transport.close()
            await lost[name]
        server.close()
        await server.wait_closed()

    run_without_fd_leak(loop, scenario)
    for name in ("c1", "c2"):
        assert calls_of(seen, name) == [
            ("factory", "client"),
            ("connection_made", "client"),
            ("data_received", "client"),  # c1's set is not in c2's copy
            ("data_received", f"{name}:data_received"),
            # asyncio: close() schedules connection_lost from its caller,
            # so it runs in a copy of the closer's context.
            ("connection_lost", "closer"),
        ]


def test_unix_stream_handlers_see_the_servers_context_each_in_its_own_copy(loop, sock_path):
    seen = []
    handled = []

    async def handler(reader, writer):
        try:
            seen.append(where.get())
            data = await reader.readexactly(4)
            where.set(data.decode())  # in this connection's task only
            writer.write(data)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        finally:
            handled[len(seen) - 1].set_result(None)

    async def scenario():
        where.set("server")
        server = await asyncio.start_unix_server(handler, sock_path)
        where.set("client")
        for message in (b"one!", b"two!"):
            handled.append(loop.create_future())
            reader, writer = await asyncio.open_unix_connection(sock_path)
            writer.write(message)
            assert await reader.readexactly(4) == message
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
            await handled[-1]
        server.close()
        await server.wait_closed()
        return where.get()

    assert run_without_fd_leak(loop, scenario) == "client"
    assert seen == ["server", "server"]  # "one!" stayed in the first handler's copy


def test_connect_accepted_socket_runs_the_factory_in_its_callers_context(loop):
    seen = []

    async def scenario():
        a, b = tcp_pair()  # the transport closes a, the scenario b
        with b:
            where.set("accepted")
            lost = loop.create_future()
            _, protocol = await loop.connect_accepted_socket(
                lambda: Recorder("conn", seen, lost), a)
            # asyncio calls the factory in the caller's task: its set is the
            # caller's too, and what connection_made and the reads copy.
            after = where.get()
            where.set("caller")
            b.sendall(b"ping")
            assert await protocol.inbox.get() == b"ping"
            b.shutdown(socket.SHUT_WR)
            await lost
            return after, where.get()

    assert run_without_fd_leak(loop, scenario) == ("conn:factory", "caller")
    assert calls_of(seen, "conn") == [
        ("factory", "accepted"), ("connection_made", "conn:factory"),
        ("data_received", "conn:factory"), ("eof_received", "conn:data_received"),
        ("connection_lost", "conn:eof_received")]


def test_create_connection_over_a_connected_socket_sees_its_creators_context(loop):
    seen = []

    async def scenario():
        a, b = tcp_pair()  # the transport closes a, the scenario b
        with b:
            where.set("creator")
            lost = loop.create_future()
            transport, protocol = await loop.create_connection(
                lambda: Recorder("conn", seen, lost, set_in_factory=False), sock=a)
            b.sendall(b"ping")
            assert await protocol.inbox.get() == b"ping"
            where.set("closer")
            transport.close()
            await lost
            assert b.recv(1) == b""  # the transport closed its socket
            return where.get()

    assert run_without_fd_leak(loop, scenario) == "closer"
    assert calls_of(seen, "conn") == [
        ("factory", "creator"), ("connection_made", "creator"),
        ("data_received", "creator"), ("connection_lost", "closer")]


def test_client_eof_received_keeps_the_copy_and_abort_loses_in_the_aborters(loop):
    seen = []
    served = []

    async def say_bye(reader, writer):
        try:
            writer.write(b"bye")
            writer.write_eof()
            await reader.read()  # until the client aborts
            writer.close()
        finally:
            served[0].set_result(None)

    async def scenario():
        served.append(loop.create_future())
        server = await asyncio.start_server(say_bye, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        where.set("client")
        lost = loop.create_future()
        transport, protocol = await loop.create_connection(
            lambda: Recorder("client", seen, lost, set_in_factory=False, keep_open=True),
            "127.0.0.1", port)
        assert await protocol.inbox.get() == b"bye"
        await protocol.eof
        assert not transport.is_closing()  # eof_received returned True
        where.set("aborter")
        transport.abort()
        assert await lost is None
        await served[0]
        server.close()
        await server.wait_closed()

    run_without_fd_leak(loop, scenario)
    assert calls_of(seen, "client") == [
        ("factory", "client"), ("connection_made", "client"),
        ("data_received", "client"),
        ("eof_received", "client:data_received"),  # the reads' copy
        # asyncio: abort() schedules connection_lost from its caller.
        ("connection_lost", "aborter"),
    ]


def test_connection_lost_after_a_flush_sees_the_waiting_writers_context(loop):
    seen = []

    async def scenario():
        a, b = socket.socketpair()  # the transport closes a, the scenario b
        with b:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            b.setblocking(False)
            where.set("creator")
            lost = loop.create_future()
            transport, _ = await loop.connect_accepted_socket(
                lambda: Recorder("conn", seen, lost, set_in_factory=False), a)
            where.set("writer")
            transport.write(b"x" * (4 * 1024 * 1024))  # more than the kernel takes now
            assert transport.get_write_buffer_size()
            where.set("closer")
            transport.close()  # flushes the buffer first
            received = 0
            while chunk := await loop.sock_recv(b, 1024 * 1024):
                received += len(chunk)
            assert received == 4 * 1024 * 1024
            await lost

    run_without_fd_leak(loop, scenario)
    # asyncio: the flush that empties the buffer of a closing transport
    # calls connection_lost itself, in the context its writer handle copied
    # from the write() that had to wait, not in the closer's.
    assert calls_of(seen, "conn") == [
        ("factory", "creator"), ("connection_made", "creator"), ("connection_lost", "writer")]
