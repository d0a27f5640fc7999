"""Errors raised by the protocol layer.

The tree follows h11's split between what *we* got wrong and what a *peer* sent::

    ProtocolError
    ├── LocalProtocolError          our own code built an invalid message (a bug; never sent)
    └── RemoteProtocolError         a received datagram was rejected; ``reason`` says why
        ├── DatagramSizeError       length is not the fixed size of its type (or too short to tell)
        ├── VersionMismatch         version byte is not ``PROTOCOL_VERSION``
        ├── UnknownMessageType      type byte names no message of this version
        ├── AuthenticationFailed    the keyed MAC does not verify (wrong secret or altered bytes)
        ├── InvalidField            authentic, but a field is out of range (enum, NaN, reserved bits)
        ├── StaleDatagram           authentic, but its timestamp is outside the freshness window
        └── UnexpectedMessage       authentic and fresh, but sent to the wrong side of the link

The transport drops every ``RemoteProtocolError`` and counts it under ``reason``; nothing that
raised one has been read further or changed any state.
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthenticationFailed",
    "DatagramSizeError",
    "InvalidField",
    "LocalProtocolError",
    "ProtocolError",
    "RejectReason",
    "RemoteProtocolError",
    "StaleDatagram",
    "UnexpectedMessage",
    "UnknownMessageType",
    "VersionMismatch",
]


class RejectReason(str, enum.Enum):
    """Why a datagram was dropped; the value is the metrics label."""

    SIZE = "size"
    VERSION = "version"
    TYPE = "type"
    AUTH = "auth"
    FIELD = "field"
    STALE = "stale"
    DIRECTION = "direction"


class ProtocolError(Exception):
    """Base of every error raised by :mod:`protocol`."""


class LocalProtocolError(ProtocolError, ValueError):
    """A message was constructed with an invalid field by local code."""


class RemoteProtocolError(ProtocolError):
    """A received datagram failed a check; ``reason`` is the metrics label."""

    reason: RejectReason


class DatagramSizeError(RemoteProtocolError):
    reason = RejectReason.SIZE


class VersionMismatch(RemoteProtocolError):
    reason = RejectReason.VERSION


class UnknownMessageType(RemoteProtocolError):
    reason = RejectReason.TYPE


class AuthenticationFailed(RemoteProtocolError):
    reason = RejectReason.AUTH


class InvalidField(RemoteProtocolError):
    reason = RejectReason.FIELD


class StaleDatagram(RemoteProtocolError):
    reason = RejectReason.STALE


class UnexpectedMessage(RemoteProtocolError):
    reason = RejectReason.DIRECTION
