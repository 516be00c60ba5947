"""Helpers for the TLS tests (not tests themselves).

:class:`RawTLSPeer` is one end of a TLS connection driven by hand: a plain
non-blocking socket and an :class:`ssl.SSLObject` over memory BIOs, moved
with the loop's ``sock_*`` coroutines.  It lets a test do what a transport
never would: stay silent mid-handshake, never answer close_notify, tell a
close_notify from a bare EOF, reset the connection.
"""
from __future__ import annotations

import socket
import ssl
import struct
import zlib

from net_helpers import Recorder


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with an RST instead of a FIN (SO_LINGER, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class RawTLSPeer:
    """A TLS endpoint over a plain socket, driven step by step by the test."""

    def __init__(self, loop, sock, context, *, server_side=False, server_hostname=None):
        sock.setblocking(False)
        self.loop = loop
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                    server_hostname=server_hostname)
        self.socket_eof = False

    @classmethod
    async def connect(cls, loop, address, context, server_hostname="localhost"):
        """A client peer connected (TCP only, no handshake yet) to ``address``."""
        sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        return cls(loop, sock, context, server_hostname=server_hostname)

    async def flush(self):
        data = self.outgoing.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def fill(self):
        """Read once from the socket into the TLS object (EOF included)."""
        chunk = await self.loop.sock_recv(self.sock, 1 << 16)
        if chunk:
            self.incoming.write(chunk)
        else:
            self.socket_eof = True
            self.incoming.write_eof()

    async def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.flush()
                await self.fill()
        await self.flush()

    async def send(self, data):
        self.obj.write(data)
        await self.flush()

    async def read_to_end(self):
        """Application data until the connection ends, and how it ended:
        ``"close_notify"`` (a proper TLS close), ``"eof"`` (the socket closed
        without close_notify) or ``"reset"``."""
        data = bytearray()
        while True:
            try:
                chunk = self.obj.read(1 << 16)
                if not chunk:  # SSLObject.read returns b"" for close_notify
                    return bytes(data), "close_notify"
                data += chunk
            except ssl.SSLWantReadError:
                try:
                    await self.fill()
                except ConnectionResetError:
                    return bytes(data), "reset"
            except ssl.SSLZeroReturnError:
                return bytes(data), "close_notify"
            except ssl.SSLEOFError:
                return bytes(data), "eof"

    async def send_close_notify(self):
        """Send close_notify; do not wait for the answer."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        await self.flush()

    async def read_socket_to_end(self):
        """Raw bytes until the socket ends: ``(bytes, "eof" or "reset")``."""
        return await read_socket_to_end(self.loop, self.sock)

    def reset(self):
        reset(self.sock)

    def close(self):
        self.sock.close()


async def raw_client_hello(context=None):
    """The bytes a TLS client sends first (a ClientHello), made offline."""
    ctx = context or ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


async def read_socket_to_end(loop, sock):
    """Bytes from ``sock`` until it ends; ``(bytes, "eof" or "reset")``."""
    data = bytearray()
    while True:
        try:
            chunk = await loop.sock_recv(sock, 1 << 16)
        except ConnectionResetError:
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk


class Checksum(Recorder):
    """Keeps only a CRC and a count of what it receives (for big transfers);
    ``got(n)`` waits until ``n`` bytes arrived or the connection ended."""

    def __init__(self):
        super().__init__()
        self.crc = 0
        self.count = 0
        self.calls = 0

    def data_received(self, data):
        assert isinstance(data, bytes), type(data)
        self.calls += 1
        self.crc = zlib.crc32(data, self.crc)
        self.count += len(data)
        self._wake()

    def _wake(self):
        for n, fut in list(self._wanted):
            if fut.done():
                self._wanted.remove((n, fut))
            elif self.count >= n or self.lost.done() or self.eof.done():
                self._wanted.remove((n, fut))
                fut.set_result(None)

    async def got(self, n):
        if self.count < n and not self.lost.done() and not self.eof.done():
            fut = self.loop.create_future()
            self._wanted.append((n, fut))
            await fut
        return self.count


async def write_all(transport, protocol, data, chunk=1 << 18):
    """Write ``data`` in chunks, waiting while the transport is paused
    (``protocol`` is a net_helpers ``Recorder``)."""
    view = memoryview(data)
    for i in range(0, len(view), chunk):
        while protocol.pause_event.is_set():
            await protocol.resume_event.wait()
        if protocol.lost.done():
            raise ConnectionError("lost while writing")
        transport.write(view[i:i + chunk])

