"""Throwaway TLS certificates for tests: a CA, a server certificate, contexts.

Tests of TLS on a loop (hookloop-tls's own, the integration tests, a
plugin author's) all need the same three things: a CA, a certificate for
``localhost``/``127.0.0.1``/``::1`` it signed, and a second CA nobody trusts.
:class:`Certificates` makes them with ``trustme`` (a test dependency, imported
only when certificates are made, so the kit itself does not need it) and
hands out fresh ``ssl.SSLContext`` objects.
"""
from __future__ import annotations

import ssl
from typing import Any

__all__ = ["Certificates"]


class Certificates:
    """A CA and a server certificate it signed; fresh contexts on demand."""

    def __init__(self) -> None:
        try:
            import trustme
        except ImportError:
            raise ImportError("hookloop.testing.Certificates needs trustme: "
                              "pip install trustme") from None
        self.ca: Any = trustme.CA()
        self.other_ca: Any = trustme.CA()  # a CA nobody trusts
        self.server_cert: Any = self.ca.issue_cert("localhost", "127.0.0.1", "::1")

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_cert.configure_cert(ctx)
        return ctx

    def client_context(self, ca: Any = None) -> ssl.SSLContext:
        """Verifies the server's certificate and name against ``ca`` (a
        ``trustme.CA``; by default the one that signed it)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        (ca or self.ca).configure_trust(ctx)
        return ctx

    def untrusting_client_context(self) -> ssl.SSLContext:
        """Trusts only a CA that did not sign the server's certificate."""
        return self.client_context(self.other_ca)
