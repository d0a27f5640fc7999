"""Throwaway TLS for the emulator: a ``trustme`` CA and one certificate for Binance's hostnames.

The certificate's subjectAltNames are :data:`~foundation.exchange_session.BINANCE_HOSTS` (the
hosts ccxt's ``binance``/``binanceusdm`` call for the endpoints the emulator serves). Clients must trust only this CA (``client_context``) so that nothing can
reach the real Binance by mistake: a real certificate would not verify.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

from foundation.exchange_session import BINANCE_HOSTS, client_context_from_file

__all__ = ["BINANCE_HOSTS", "EmulatorTLS", "client_context_from_file"]

class EmulatorTLS:
    """A CA and a server certificate for :data:`BINANCE_HOSTS` (plus ``hosts`` given)."""

    def __init__(self, hosts: tuple[str, ...] = BINANCE_HOSTS) -> None:
        self.hosts = hosts
        self.ca = trustme.CA(organization_name="tandem Binance emulator CA")
        self.cert = self.ca.issue_cert(*hosts)

    def server_context(self) -> ssl.SSLContext:
        """SSLContext for the HTTPS server (TLS 1.2+)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.cert.configure_cert(ctx)
        return ctx

    def write_ca(self, path: str | Path) -> Path:
        """Write the CA certificate (PEM) to ``path`` for another process; returns the path."""
        p = Path(path)
        self.ca.cert_pem.write_to_path(str(p))
        return p

    def client_context(self) -> ssl.SSLContext:
        """Client SSLContext trusting only this CA (hostname checking on)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname + CERT_REQUIRED, no system CAs
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cadata=self.ca.cert_pem.bytes().decode())
        return ctx
