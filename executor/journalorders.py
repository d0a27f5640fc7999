"""The executor journal's write-ahead rows of orders about to be sent (a mixin of
:class:`executor.journal.Journal`, split from it by concern): the exit legs the gateway places — each
symbol's protective stop and resting take-profit, committed *before* the order is sent so a restart
knows which order to look up — and the Solana venue's swap attempts (schema 5), each signed
transaction journaled before its first send.

Errors: as :class:`~executor.journal.Journal`'s writes — :class:`~executor.journalidentity.JournalConflict`
for an illegal write, :class:`~foundation.journalfile.JournalWriteFailed` when a write keeps failing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from .journalidentity import JournalConflict, i64, translated
from .journalrows import swap_row
from .journalschema import INSERT_SWAP, SELECT_SWAP_BY_SIGNATURE, SELECT_SWAPS, UPDATE_SWAP
from .venue.solana.records import SwapRecord, SwapState

__all__ = ["OrderRecords"]


class OrderRecords:
    """The order rows of a journal; the journal supplies its connection, path and writes."""

    __slots__ = ()
    if TYPE_CHECKING:  # the journal's (executor.journal.Journal)
        _conn: sqlite3.Connection
        path: str

        def _write(self, what: str, body: Callable[[], None]) -> None: ...

        def _write_sql(self, what: str, sql: str, params: tuple[object, ...]) -> None: ...

    # -- exit legs: protective stops and take-profits ------------------------------------------

    def _record_leg(self, table: str, price_column: str, symbol: str, client_order_id: str, price: float,
                    qty: float) -> None:  # fmt: skip
        self._write_sql(
            f"{table} row of {client_order_id}",
            f"INSERT INTO {table} (symbol, client_order_id, {price_column}, qty) VALUES (?, ?, ?, ?)"
            f" ON CONFLICT (symbol) DO UPDATE SET client_order_id = excluded.client_order_id,"
            f" {price_column} = excluded.{price_column}, qty = excluded.qty",
            (symbol, client_order_id, price, qty),
        )

    def _legs(self, table: str, price_column: str) -> dict[str, tuple[str, float, float]]:
        with translated(self.path):
            rows = self._conn.execute(f"SELECT symbol, client_order_id, {price_column}, qty FROM {table}").fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def record_protective(self, symbol: str, client_order_id: str, stop_price: float, qty: float) -> None:
        """Remember the protective order of ``symbol`` — committed *before* it is sent, so a restart
        knows which order to look up (the exit order gateway's write-ahead)."""
        self._record_leg("protective", "stop_price", symbol, client_order_id, stop_price, qty)

    def clear_protective(self, symbol: str) -> None:
        """Forget ``symbol``'s protective order (its position is closed, or the stop is gone)."""
        self._write_sql(f"protective order of {symbol} cleared", "DELETE FROM protective WHERE symbol = ?", (symbol,))

    def protective(self) -> dict[str, tuple[str, float, float]]:
        """``{symbol: (client_order_id, stop_price, qty)}`` of the protective orders last recorded."""
        return self._legs("protective", "stop_price")

    def record_take_profit(self, symbol: str, client_order_id: str, limit_price: float, qty: float) -> None:
        """Remember the resting take-profit of ``symbol`` — committed *before* it is sent (the exit
        order gateway's write-ahead, as for stops)."""
        self._record_leg("take_profits", "limit_price", symbol, client_order_id, limit_price, qty)

    def clear_take_profit(self, symbol: str) -> None:
        """Forget ``symbol``'s take-profit (it filled, was cancelled, or its position closed)."""
        self._write_sql(f"take-profit of {symbol} cleared", "DELETE FROM take_profits WHERE symbol = ?", (symbol,))

    def take_profits(self) -> dict[str, tuple[str, float, float]]:
        """``{symbol: (client_order_id, limit_price, qty)}`` of the take-profits last recorded."""
        return self._legs("take_profits", "limit_price")

    # -- Solana swap attempts (schema 5; executor.venue.solana.records) --------------------------

    def record_swap(self, record: SwapRecord) -> None:
        """Journal a signed transaction (state ``signed``) before its first send.

        Raises:
            JournalConflict: the (order, attempt) or the signature is already journaled.
            JournalWriteFailed: see :meth:`_write`.
        """
        r = record
        params = (r.client_order_id, r.attempt, r.signature, r.tx, r.last_valid_block_height, r.input_mint,
                  r.output_mint, r.in_amount, r.out_amount, i64(r.created_at_ns), i64(r.market_ts_ns))  # fmt: skip
        self._write_sql(f"swap {r.signature} (order {r.client_order_id}, attempt {r.attempt})", INSERT_SWAP, params)

    def swaps(self, client_order_id: str) -> list[SwapRecord]:
        """The attempts of an order, by attempt number."""
        with translated(self.path):
            rows = self._conn.execute(SELECT_SWAPS, (client_order_id,)).fetchall()
        return [swap_row(row) for row in rows]

    def swap_by_signature(self, signature: str) -> SwapRecord | None:
        """The attempt with this signature, of whichever order, or ``None``."""
        with translated(self.path):
            row = self._conn.execute(SELECT_SWAP_BY_SIGNATURE, (signature,)).fetchone()
        return None if row is None else swap_row(row)

    def mark_swap(self, signature: str, state: SwapState, detail: str = "") -> None:
        """Record what became of a journaled attempt.

        Raises:
            JournalConflict: no attempt has this signature.
        """

        def body() -> None:
            if self._conn.execute(UPDATE_SWAP, (str(state), detail, signature)).rowcount != 1:
                raise JournalConflict(f"{self.path}: no swap with signature {signature}")

        self._write(f"swap {signature} {state}", body)
