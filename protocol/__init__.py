"""tandem wire protocol v2: messages, codec, authentication (sans-IO) and one UDP endpoint.

See ``protocol/SPEC.md`` for the byte tables, rules and golden vectors.
"""

from .codec import (
    CONFIRMATION_SIZE,
    DECISION_SIZE,
    DEFAULT_MAX_AGE_NS,
    DEFAULT_MAX_SKEW_NS,
    HEARTBEAT_SIZE,
    MESSAGE_SIZES,
    PROTOCOL_VERSION,
    REPLAY_REQUEST_SIZE,
    TAG_SIZE,
    Codec,
    Message,
    derive_key,
)
from .enums import DecisionReason, InstrumentKind, Intent, MessageType, RejectCode, Role, Side, Status
from .errors import (
    AuthenticationFailed,
    DatagramSizeError,
    InvalidField,
    LocalProtocolError,
    ProtocolError,
    RejectReason,
    RemoteProtocolError,
    StaleDatagram,
    UnexpectedMessage,
    UnknownMessageType,
    VersionMismatch,
)
from .link import BrainLink, DecisionReceived, ExecutorLink, LinkStats, ReplayRequested
from .messages import ExecutionConfirmation, Heartbeat, Instrument, ReplayRequest, TradeDecision

__all__ = [
    "CONFIRMATION_SIZE",
    "DECISION_SIZE",
    "DEFAULT_MAX_AGE_NS",
    "DEFAULT_MAX_SKEW_NS",
    "HEARTBEAT_SIZE",
    "MESSAGE_SIZES",
    "PROTOCOL_VERSION",
    "REPLAY_REQUEST_SIZE",
    "TAG_SIZE",
    "AuthenticationFailed",
    "BrainLink",
    "Codec",
    "DatagramSizeError",
    "DecisionReason",
    "DecisionReceived",
    "ExecutionConfirmation",
    "ExecutorLink",
    "Heartbeat",
    "Instrument",
    "InstrumentKind",
    "Intent",
    "InvalidField",
    "LinkStats",
    "LocalProtocolError",
    "Message",
    "MessageType",
    "ProtocolError",
    "RejectCode",
    "RejectReason",
    "RemoteProtocolError",
    "ReplayRequest",
    "ReplayRequested",
    "Role",
    "Side",
    "StaleDatagram",
    "Status",
    "TradeDecision",
    "UnexpectedMessage",
    "UnknownMessageType",
    "VersionMismatch",
    "derive_key",
]
