"""What users get for a transport's or server's socket: a guarded view.

``transport.get_extra_info("socket")`` and ``Server.sockets`` hand out
:class:`TransportSocket`, never the socket itself: the transport owns the
fd, so the view offers what is safe while the transport runs (options,
names, ``fileno``, ``dup``, ``shutdown``) and nothing that would pull the fd
away from it (``close``, ``detach``, blocking mode, I/O calls).  asyncio
hands out the same kind of object, with the same methods.
"""
from __future__ import annotations

import socket
from typing import Any


class TransportSocket:
    """A socket-like view of a socket that a transport or server owns."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    @property
    def family(self) -> int:
        return self._sock.family

    @property
    def type(self) -> int:
        return self._sock.type

    @property
    def proto(self) -> int:
        return self._sock.proto

    def __repr__(self) -> str:
        sock = self._sock
        text = (f"<hookloop TransportSocket fd={sock.fileno()}, family={sock.family!s}, "
                f"type={sock.type!s}, proto={sock.proto}")
        if sock.fileno() != -1:
            for label, name in (("laddr", "getsockname"), ("raddr", "getpeername")):
                try:
                    address = getattr(sock, name)()
                except OSError:
                    continue
                if address:
                    text += f", {label}={address}"
        return text + ">"

    def __getstate__(self) -> Any:
        raise TypeError(f"Cannot serialize {type(self).__name__} object")

    def fileno(self) -> int:
        return self._sock.fileno()

    def dup(self) -> socket.socket:
        return self._sock.dup()

    def get_inheritable(self) -> bool:
        return self._sock.get_inheritable()

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def getsockopt(self, *args: Any) -> Any:
        return self._sock.getsockopt(*args)

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def getsockbyname(self) -> Any:
        return self._sock.getsockbyname()  # type: ignore[attr-defined]

    def gettimeout(self) -> float | None:
        return 0

    def settimeout(self, value: float | None) -> None:
        if value == 0:
            return
        raise ValueError("settimeout(): only 0 timeout is allowed on transport sockets")

    def setblocking(self, flag: bool) -> None:
        if not flag:
            return
        raise ValueError("setblocking(): transport sockets cannot be blocking")
