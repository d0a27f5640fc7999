"""Throwaway TLS for the emulator: a ``trustme`` CA and one certificate for Binance's hostnames.

The certificate's subjectAltNames are :data:`BINANCE_HOSTS`, every host ccxt 4.5.90's
``binance``/``binanceusdm`` ``urls['api']``/``urls['test']``/``urls['demo']`` use for the
endpoints the emulator serves (spot ``api.binance.com``, USDⓈ-M ``fapi.binance.com``, their
testnet and demo hosts). Clients must trust only this CA (``client_context``) so that nothing can
reach the real Binance by mistake: a real certificate would not verify.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

__all__ = ["BINANCE_HOSTS", "EmulatorTLS", "client_context_from_file"]

BINANCE_HOSTS: tuple[str, ...] = (
    "api.binance.com",  # spot: urls['api']['public'|'private'|'v1']
    "fapi.binance.com",  # USDⓈ-M: fapiPublic/fapiPrivate(V2|V3)
    "testnet.binance.vision",  # spot sandbox (set_sandbox_mode)
    "testnet.binancefuture.com",  # USDⓈ-M sandbox
    "demo-api.binance.com",  # spot demo trading (enableDemoTrading)
    "demo-fapi.binance.com",  # USDⓈ-M demo trading
)


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


def client_context_from_file(ca_pem_path: str | Path) -> ssl.SSLContext:
    """Client SSLContext trusting only the CA in ``ca_pem_path`` (not the system store)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname + CERT_REQUIRED, no default CAs
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(ca_pem_path))
    return ctx
