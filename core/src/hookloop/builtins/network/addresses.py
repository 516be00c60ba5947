"""Address resolution shared by the transports (provisional)."""
from __future__ import annotations

from typing import Any


async def resolve(loop: Any, host: Any, port: Any, *, family: int = 0, type: int = 0,
                  proto: int = 0, flags: int = 0) -> list[Any]:
    return await loop.getaddrinfo(host, port, family=family, type=type, proto=proto,
                                  flags=flags)
