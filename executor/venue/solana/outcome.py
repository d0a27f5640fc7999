"""What a Solana transaction did, as pure functions: the verdict of one look at the cluster, the
fill read from a landed transaction's balances, and the reject code of a transaction error.

No I/O and no clock: :mod:`.sender` makes the RPC calls and hands the answers here.

**The verdict** (:func:`judge`), from one ``getEpochInfo`` (slot and block height, read together)
followed by one ``getSignatureStatuses(searchTransactionHistory=true)``:

- the signature has a status at ``confirmed`` or ``finalized`` → :class:`Landed` (with its error,
  if it failed);
- no status, the block height is past the transaction's ``lastValidBlockHeight``, **and** the
  node that answered the status query had seen at least the slot at which that height was read
  (its response context) → :class:`Expired`: the blockhash is no longer accepted, so the bytes can
  never land (Solana's rule: a transaction is valid for 150 blocks after its blockhash; the RPC
  reports the last one as ``lastValidBlockHeight``);
- anything else — a status still ``processed``, a height not yet past, a lagging node whose
  context is behind — → :class:`Pending`: no conclusion; the caller re-sends the same bytes and
  looks again.

**The fill** (:func:`swap_fill`): the owner's token-balance deltas between ``preTokenBalances``
and ``postTokenBalances`` of the landed transaction, summed per mint over the owner's accounts:
the base delta is the quantity (positive: bought), the quote delta its cost, their ratio the
average price. The network fee is ``meta.fee`` (lamports, paid by the fee payer).

**Reject codes** (:func:`reject_code`), for a transaction refused at preflight or landed with an
error: the SPL Token program's ``InsufficientFunds`` (custom error 1, spl-token
``TokenError::InsufficientFunds``) in an instruction our wallet takes part in (it moves our
tokens; the counterparty's shortfall is not ours) and the runtime's ``InsufficientFundsForFee`` /
``InsufficientFundsForRent`` → ``INSUFFICIENT_FUNDS``; Jupiter's ``SlippageToleranceExceeded``
(custom error 6001 of program ``JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4``, from its IDL) →
``SLIPPAGE_EXCEEDED``; anything else → ``VENUE_ERROR``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol import RejectCode

__all__ = [
    "JUPITER_PROGRAM",
    "JUPITER_SLIPPAGE_ERROR",
    "TOKEN_INSUFFICIENT_FUNDS",
    "TOKEN_PROGRAMS",
    "Expired",
    "Landed",
    "Pending",
    "SwapFill",
    "Verdict",
    "judge",
    "reject_code",
    "swap_fill",
]

TOKEN_PROGRAMS = frozenset({"TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"})
"""SPL Token and Token-2022."""
TOKEN_INSUFFICIENT_FUNDS = 1
"""spl-token ``TokenError::InsufficientFunds`` (its custom error number)."""
JUPITER_PROGRAM = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"
"""Jupiter's aggregator program (v6)."""
JUPITER_SLIPPAGE_ERROR = 6001
"""Jupiter v6 ``SlippageToleranceExceeded`` (its IDL's error 6001)."""
_FUNDS_ERRORS = frozenset({"InsufficientFundsForFee", "InsufficientFundsForRent"})
_FINAL = frozenset({"confirmed", "finalized"})


@dataclass(frozen=True, slots=True)
class Landed:
    """The transaction is in a block (``err`` ``None``: it executed; else it failed and paid its fee)."""

    slot: int
    err: Any = None


@dataclass(frozen=True, slots=True)
class Expired:
    """It can never land: ``height`` > ``last_valid_block_height`` and no status at a node past it."""

    height: int
    last_valid_block_height: int


@dataclass(frozen=True, slots=True)
class Pending:
    """No conclusion yet (``why`` for logs)."""

    why: str


Verdict = Landed | Expired | Pending


def judge(
    last_valid_block_height: int, slot: int, height: int, status: Any, status_context_slot: int
) -> Verdict:
    """The verdict of one look (module docstring).

    Args:
        last_valid_block_height: of the transaction's blockhash.
        slot, height: from one ``getEpochInfo`` (``absoluteSlot``, ``blockHeight``), read first.
        status: the signature's ``TransactionStatus`` (solders) or ``None``.
        status_context_slot: the context slot of the ``getSignatureStatuses`` answer.
    """
    if status is not None:
        level = _name(status.confirmation_status) if status.confirmation_status is not None else ""
        if level.lower() in _FINAL:
            return Landed(int(status.slot), status.err)
        return Pending(f"status {level or 'processed'} at slot {status.slot}, not yet confirmed")
    if height <= last_valid_block_height:
        return Pending(f"block height {height} <= last valid {last_valid_block_height}")
    if status_context_slot < slot:
        return Pending(f"the status node is at slot {status_context_slot}, behind slot {slot} of height {height}")
    return Expired(height, last_valid_block_height)


@dataclass(frozen=True, slots=True)
class SwapFill:
    """A landed swap's effect on its owner: raw token deltas and the network fee.

    Attributes:
        base_delta, quote_delta: raw units (positive: received), summed over the owner's accounts.
        fee_lamports: the transaction fee (``meta.fee``).
    """

    base_delta: int
    quote_delta: int
    fee_lamports: int

    def quantity(self, base_decimals: int) -> float:
        """Base units traded (always > 0 when something traded)."""
        return abs(self.base_delta) / 10**base_decimals

    def avg_price(self, base_decimals: int, quote_decimals: int) -> float:
        """Quote per base unit: |quote delta| / |base delta|, in UI units; 0.0 when nothing traded."""
        if self.base_delta == 0:
            return 0.0
        return (abs(self.quote_delta) / 10**quote_decimals) / (abs(self.base_delta) / 10**base_decimals)


def swap_fill(meta: Any, owner: str, base_mint: str, quote_mint: str) -> SwapFill:
    """The owner's deltas in ``meta`` (a solders ``UiTransactionStatusMeta``).

    Raises:
        ValueError: a token other than base or quote moved for the owner (not a swap of this pair).
    """
    deltas: dict[str, int] = {}
    for sign, balances in ((-1, meta.pre_token_balances or []), (1, meta.post_token_balances or [])):
        for tb in balances:
            if tb.owner is not None and str(tb.owner) == owner:
                mint = str(tb.mint)
                deltas[mint] = deltas.get(mint, 0) + sign * int(tb.ui_token_amount.amount)
    other = {m: d for m, d in deltas.items() if d and m not in (base_mint, quote_mint)}
    if other:
        raise ValueError(f"the swap moved other tokens for {owner}: {other}")
    return SwapFill(deltas.get(base_mint, 0), deltas.get(quote_mint, 0), int(meta.fee))


def reject_code(err: Any, instructions: list[tuple[str, frozenset[str]]], wallet: str) -> RejectCode:
    """The reject code of a transaction error (module docstring).

    Args:
        err: a solders ``TransactionError`` (a fieldless enum, or ``TransactionErrorInstructionError``).
        instructions: each instruction of the transaction, in order: its program id and the
            addresses of its accounts (base58).
        wallet: our wallet's address.
    """
    if _name(err) in _FUNDS_ERRORS:
        return RejectCode.INSUFFICIENT_FUNDS
    index = getattr(err, "index", None)
    code = getattr(getattr(err, "err", None), "code", None)
    if index is None or code is None or not 0 <= index < len(instructions):
        return RejectCode.VENUE_ERROR
    program, accounts = instructions[index]
    if program in TOKEN_PROGRAMS and code == TOKEN_INSUFFICIENT_FUNDS:
        return RejectCode.INSUFFICIENT_FUNDS if wallet in accounts else RejectCode.VENUE_ERROR
    if program == JUPITER_PROGRAM and code == JUPITER_SLIPPAGE_ERROR:
        return RejectCode.SLIPPAGE_EXCEEDED
    return RejectCode.VENUE_ERROR


def _name(value: Any) -> str:
    """An enum member's name (solders' fieldless enums print as ``Type.Name``)."""
    text = str(value)
    return text.rsplit(".", 1)[-1]
