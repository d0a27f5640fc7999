"""The exactly-once record of a Solana swap: one signed transaction, journaled before its first send.

A decision's order (its client order id) may need more than one transaction: a blockhash can
expire before anything lands. Each is an *attempt*, numbered from 1, with the signed bytes, their
signature (the transaction id, known before sending) and ``last_valid_block_height`` (after which
the cluster refuses the blockhash). States, and who moves them (:mod:`.sender`)::

    signed ──▶ landed     the signature has a status without error: the swap executed
        │  ──▶ failed     it has a status with an error: it landed, paid its fee, moved no tokens
        │  ──▶ expired    the block height passed last_valid_block_height and a node that had seen
        │                 that height had no status for it: it can never land
        └──▶ refused      the RPC node refused it at preflight (simulation failed): never broadcast

Only an attempt in ``expired`` or ``refused`` lets a new transaction be built for the same order
(issue #15: never re-quote a decision whose transaction may still land). The executor journal keeps
these rows (table ``swaps``, :mod:`executor.journalschema`); :class:`SwapStore` is what the venue
needs of it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

__all__ = ["SwapRecord", "SwapState", "SwapStore"]


class SwapState(enum.StrEnum):
    """What became of one signed transaction (module docstring)."""

    SIGNED = "signed"
    LANDED = "landed"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUSED = "refused"

    @property
    def may_land(self) -> bool:
        """The transaction may still execute: nothing new may be built for its order."""
        return self is SwapState.SIGNED

    @property
    def dead(self) -> bool:
        """It never executed and never will: a new attempt may be built."""
        return self in (SwapState.EXPIRED, SwapState.REFUSED)


@dataclass(frozen=True, slots=True)
class SwapRecord:
    """One attempt of an order, as journaled.

    Attributes:
        client_order_id: the order (the executor's deterministic id of the decision's order leg).
        attempt: 1, 2, ... in the order built.
        signature: base58 transaction signature (the fee payer's, the transaction id).
        tx: the signed transaction's wire bytes, re-sent unchanged until it lands or expires.
        last_valid_block_height: the block height after which its blockhash is refused.
        input_mint, output_mint: base58 mints swapped from and to.
        in_amount, out_amount: raw token units of the quote (out is what the quote promised).
        created_at_ns: wall clock when it was signed, Unix ns.
        market_ts_ns: the decision's market time (a replay venue's fill time), Unix ns.
        state: see :class:`SwapState`.
        detail: why it ended as it did (an error text), else ``""``.
    """

    client_order_id: str
    attempt: int
    signature: str
    tx: bytes
    last_valid_block_height: int
    input_mint: str
    output_mint: str
    in_amount: int
    out_amount: int
    created_at_ns: int
    market_ts_ns: int
    state: SwapState = SwapState.SIGNED
    detail: str = ""


class SwapStore(Protocol):
    """Where swap attempts are kept (the executor journal); every write is committed on return.

    Raises (every method): ``JournalError`` when the journal cannot be read or written — the
    executor stops rather than send a transaction it has not recorded.
    """

    def record_swap(self, record: SwapRecord) -> None:
        """Journal a new attempt in state ``signed`` (before its first send)."""

    def swaps(self, client_order_id: str) -> list[SwapRecord]:
        """Every attempt of an order, by attempt number."""

    def swap_by_signature(self, signature: str) -> SwapRecord | None:
        """The attempt with this signature, of whichever order, or ``None``."""

    def mark_swap(self, signature: str, state: SwapState, detail: str = "") -> None:
        """Record what became of an attempt."""
