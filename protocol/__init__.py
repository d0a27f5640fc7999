"""tandem wire protocol v1: messages, codec, authentication (sans-IO) and one UDP endpoint.

See ``protocol/SPEC.md`` for the byte tables, rules and golden vectors.
"""

from .codec import (
    CONFIRMATION_SIZE,
    DECISION_SIZE,
    DEFAULT_MAX_AGE_NS,
    DEFAULT_MAX_SKEW_NS,
    PROTOCOL_VERSION,
    TAG_SIZE,
    Codec,
    Message,
    derive_key,
)
from .enums import DecisionReason, InstrumentKind, Intent, MessageType, RejectCode, Side, Status
from .errors import (
    AuthenticationFailed,
    DatagramSizeError,
    InvalidField,
    LocalProtocolError,
    ProtocolError,
    RejectReason,
    RemoteProtocolError,
    StaleDatagram,
    UnknownMessageType,
    VersionMismatch,
)
from .messages import ExecutionConfirmation, Instrument, TradeDecision

__all__ = [
    "CONFIRMATION_SIZE",
    "DECISION_SIZE",
    "DEFAULT_MAX_AGE_NS",
    "DEFAULT_MAX_SKEW_NS",
    "PROTOCOL_VERSION",
    "TAG_SIZE",
    "AuthenticationFailed",
    "Codec",
    "DatagramSizeError",
    "DecisionReason",
    "ExecutionConfirmation",
    "Instrument",
    "InstrumentKind",
    "Intent",
    "InvalidField",
    "LocalProtocolError",
    "Message",
    "MessageType",
    "ProtocolError",
    "RejectCode",
    "RejectReason",
    "RemoteProtocolError",
    "Side",
    "StaleDatagram",
    "Status",
    "TradeDecision",
    "UnknownMessageType",
    "VersionMismatch",
    "derive_key",
]
