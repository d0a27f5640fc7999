"""Binance SIGNED-endpoint checks, sans-IO: API key, HMAC-SHA256 signature, timestamp window.

Rules (Binance spot ``rest-api.md`` "SIGNED (TRADE and USER_DATA) Endpoint security", same for
USDⓈ-M): the key travels in the ``X-MBX-APIKEY`` header; ``signature`` is the lowercase hex
HMAC-SHA256, keyed by the secret, of ``totalParams`` = the query string concatenated with the
request body (each without the ``signature`` parameter, kept byte-for-byte as sent). A request is
valid while ``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``
(default 5000 ms, at most 60000). When a parameter is in both, the query string's value wins.

Order of checks and errors: missing/blank key → -2014 "API-key format invalid."; unknown key →
-2015; missing ``timestamp`` → -1102; missing ``signature`` → -1102; wrong signature → -1022;
``recvWindow`` > 60000 → -1131; outside the window → -1021 (two texts: "outside of the
recvWindow" / "1000ms ahead of the server's time"). ``now_ms`` is the server's wall clock — not
the replay clock — since ccxt signs with its own wall clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import parse_qsl

from .errors import E

__all__ = ["params_of", "sign", "verify"]


def _strip_signature(raw: str) -> tuple[str, str | None]:
    parts, sig = [], None
    for seg in raw.split("&") if raw else []:
        if seg.startswith("signature="):
            sig = seg[len("signature="):]
        else:
            parts.append(seg)
    return "&".join(parts), sig


def params_of(raw_query: str, raw_body: str) -> dict[str, str]:
    """Merged request parameters; the query string wins over the body (Binance rule)."""
    out = dict(parse_qsl(raw_body, keep_blank_values=True))
    out.update(parse_qsl(raw_query, keep_blank_values=True))
    return out


def sign(payload: str, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` keyed by ``secret`` (what clients append)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def verify(raw_query: str, raw_body: str, api_key: str | None, secret_of: Callable[[str], str | None],
           now_ms: int) -> tuple[str, dict[str, str]]:
    """Check a SIGNED request.

    Args:
        raw_query: the URL query string exactly as received (percent-encoding untouched).
        raw_body: the form body exactly as received ("" for none).
        api_key: the ``X-MBX-APIKEY`` header value, or ``None``.
        secret_of: API key -> secret, ``None`` for an unknown key.
        now_ms: server wall clock, Unix ms.

    Returns:
        (api_key, merged parameters without ``signature``).

    Raises:
        BinanceError: -2014, -2015, -1102, -1022, -1131 or -1021 as described in the module doc.
    """
    if not api_key or not api_key.strip() or any(c.isspace() for c in api_key):
        raise E.bad_api_key_format()
    secret = secret_of(api_key)
    if secret is None:
        raise E.invalid_api_key()
    query, qsig = _strip_signature(raw_query)
    body, bsig = _strip_signature(raw_body)
    params = params_of(query, body)
    if not params.get("timestamp"):
        raise E.mandatory("timestamp")
    sig = qsig if qsig is not None else bsig
    if not sig:
        raise E.mandatory("signature")
    if not hmac.compare_digest(sign(query + body, secret), sig.lower()):
        raise E.bad_signature()
    try:
        ts = int(params["timestamp"])
        window = int(params.get("recvWindow") or 5000)
    except ValueError:
        raise E.illegal_chars("timestamp") from None
    if window > 60_000:
        raise E.recv_window_too_big()
    if ts >= now_ms + 1000:
        raise E.timestamp_ahead()
    if now_ms - ts > window:
        raise E.timestamp_outside()
    return api_key, params
