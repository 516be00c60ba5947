"""Builtin plugins ``transports`` and ``resolver``: asyncio's networking.

``transports`` serves TCP and unix stream sockets (connections and
servers), datagram endpoints, pipes, ``sendfile`` and the ``sock_*``
operations; ``resolver`` serves ``getaddrinfo``/``getnameinfo``.  Both are
ordinary plugins registered by the core with ``trylast``: an installed
plugin that implements ``hookloop_transports`` or ``hookloop_resolver``
replaces them, and ``HOOKLOOP_DISABLE=transports`` removes them.

Layout: the transports are built from :mod:`hookloop.transport` (lifecycle,
flow control and the write buffer every fd transport shares, the socket
transport), as any plugin's would be; here are :mod:`.server`,
:mod:`.connect` (create_connection and happy eyeballs), :mod:`.datagram`,
:mod:`.pipes`, :mod:`.sockops`, :mod:`.sendfile`, :mod:`.addresses` and
:mod:`.resolver`; :mod:`.service` puts the loop-facing methods together.
"""
