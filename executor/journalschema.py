"""The executor journal's SQL: the schema, its statements, the migrations (3 → 4 → 5 → 6), and the
file's storage layout (:data:`PAGE_SIZE`, :data:`WAL_AUTOCHECKPOINT_PAGES`).

Schema 6 (issue #16): the ``take_profits`` table — the resting take-profit of each symbol (the exit
leg PARTIAL_TP), journaled *before* it is sent, like ``protective``'s stops, so a restart looks up
exactly that order. A schema-5 journal gains the table when the executor opens it.

Schema 5 (issue #15): ``fills.fee_native`` (a fee paid in the venue's native unit, Solana
lamports; 0 for older rows) and the ``swaps`` table: every signed Solana transaction, journaled
**before its first send** with its signature and ``last_valid_block_height``, and what became of it
(``signed`` → ``landed`` | ``failed`` | ``expired`` | ``refused``; :mod:`executor.venue.solana`).
A schema-4 journal gains the column (0) and the table when the executor opens it.

Schema 4 (issue #14): ``confirmations.reconciled`` (the confirmation reports a reconciliation, not a
decision's outcome; protocol v4 flag ``RECONCILED``) and the ``reconciliations`` table, the audit
of every correction and repair the reconcile loop made (and every kill-switch clear). A schema-3
journal is migrated in place when the executor opens it: the column is added (0 for every old
row, which were all decisions' outcomes) and the table created.
"""

from __future__ import annotations

__all__ = [
    "CONFIRMATION_COLS",
    "DECISION_COLS",
    "GET_META",
    "INSERT_CONFIRMATION",
    "INSERT_DECISION",
    "INSERT_DECISION_WITH_OUTCOME",
    "INSERT_DONE_DECISION",
    "INSERT_FILL",
    "INSERT_RECONCILIATION",
    "INSERT_SWAP",
    "MARK_DONE",
    "MAX_ACTION_ID",
    "MAX_SEQ",
    "MIGRATE_3_TO_4",
    "MIGRATE_4_TO_5",
    "MIGRATE_5_TO_6",
    "MIGRATIONS",
    "PAGE_SIZE",
    "PUT_META",
    "SCHEMA",
    "SELECT_CONFIRMATION",
    "SELECT_CONFIRMATIONS_FROM",
    "SELECT_DECISION",
    "SELECT_FILLS",
    "SELECT_IN_FLIGHT",
    "SELECT_SWAPS",
    "SELECT_SWAP_BY_SIGNATURE",
    "SWAP_COLS",
    "UPDATE_SWAP",
    "WAL_AUTOCHECKPOINT_PAGES",
]

PAGE_SIZE = 1024
"""Bytes per database page of a journal created from now on (one made before keeps its 4096). A
decision's outcome changes about four pages (its decision row, the fill, the confirmation and its
index), and a WAL commit writes each changed page whole: measured on the bench's paper decisions,
one decision + outcome transaction takes ~42 us on 1024-byte pages against ~58-75 us on 4096.
"""

WAL_AUTOCHECKPOINT_PAGES = 10_000
"""WAL frames (pages) after which a commit checkpoints the log into the database file (SQLite's
default is 1,000: https://www.sqlite.org/pragma.html#pragma_wal_autocheckpoint). A checkpoint
fsyncs the database file (``synchronous=NORMAL``), stalling the executor's loop for milliseconds;
on 1 KiB pages the default came every ~250 lockstep decisions. At 10,000 (a WAL of up to ~10 MiB)
``tandem bench`` measured round-trip p99 550-630 -> 370-480 us and the pipelined rate ~10.0k ->
10.6-10.9k/s; a commit's durability does not depend on it."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id INTEGER PRIMARY KEY,
    instrument_kind INTEGER NOT NULL,
    instrument BLOB NOT NULL,
    side INTEGER NOT NULL,
    intent INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    quantity REAL NOT NULL,
    reference_price REAL NOT NULL,
    max_slippage_bps INTEGER NOT NULL,
    created_at_ns INTEGER NOT NULL,
    expires_at_ns INTEGER NOT NULL,
    market_ts_ns INTEGER NOT NULL,
    stop_price REAL NOT NULL,
    received_at_ns INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('received', 'done'))
);
CREATE TABLE IF NOT EXISTS fills (
    decision_id INTEGER PRIMARY KEY REFERENCES decisions (decision_id),
    instrument_kind INTEGER NOT NULL,
    instrument BLOB NOT NULL,
    side INTEGER NOT NULL,
    qty REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL,
    executed_at_ns INTEGER NOT NULL,
    venue_ref_full BLOB NOT NULL,
    fee_native INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS protective (
    symbol TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    stop_price REAL NOT NULL,
    qty REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS take_profits (
    symbol TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    limit_price REAL NOT NULL,
    qty REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS confirmations (
    seq INTEGER PRIMARY KEY,
    decision_id INTEGER NOT NULL UNIQUE REFERENCES decisions (decision_id),
    instrument_kind INTEGER NOT NULL,
    instrument BLOB NOT NULL,
    side INTEGER NOT NULL,
    intent INTEGER NOT NULL,
    status INTEGER NOT NULL,
    reject_code INTEGER NOT NULL,
    executed_qty REAL NOT NULL,
    avg_price REAL NOT NULL,
    fee REAL NOT NULL,
    executed_at_ns INTEGER NOT NULL,
    venue_ref BLOB NOT NULL,
    venue_ref_truncated INTEGER NOT NULL,
    venue_ref_full BLOB NOT NULL,
    slippage_over_limit INTEGER NOT NULL DEFAULT 0,
    reconciled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS swaps (
    client_order_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    signature TEXT NOT NULL UNIQUE,
    tx BLOB NOT NULL,
    last_valid_block_height INTEGER NOT NULL,
    input_mint TEXT NOT NULL,
    output_mint TEXT NOT NULL,
    in_amount INTEGER NOT NULL,
    out_amount INTEGER NOT NULL,
    created_at_ns INTEGER NOT NULL,
    market_ts_ns INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('signed', 'landed', 'failed', 'expired', 'refused')),
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (client_order_id, attempt)
);
CREATE TABLE IF NOT EXISTS reconciliations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    symbol TEXT NOT NULL,
    action_id INTEGER NOT NULL,
    detail TEXT NOT NULL
);
"""

GET_META = "SELECT value FROM meta WHERE key = ?"
PUT_META = "INSERT INTO meta (key, value) VALUES (?, ?)"
INSERT_DECISION = (
    "INSERT INTO decisions (decision_id, instrument_kind, instrument, side, intent, reason, quantity,"
    " reference_price, max_slippage_bps, created_at_ns, expires_at_ns, market_ts_ns, stop_price,"
    " received_at_ns, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received')"
)
DECISION_COLS = (
    "decision_id, instrument_kind, instrument, side, intent, reason, quantity, reference_price,"
    " max_slippage_bps, created_at_ns, expires_at_ns, market_ts_ns, stop_price, received_at_ns, state"
)
SELECT_DECISION = f"SELECT {DECISION_COLS} FROM decisions WHERE decision_id = ?"
SELECT_IN_FLIGHT = (
    f"SELECT {DECISION_COLS} FROM decisions d WHERE state = 'received'"
    " AND NOT EXISTS (SELECT 1 FROM confirmations c WHERE c.decision_id = d.decision_id)"
)
INSERT_DECISION_WITH_OUTCOME = INSERT_DECISION.replace("'received')", "'done')")
"""A decision written with its outcome in one transaction (a group: :meth:`Journal.group`)."""
MARK_DONE = "UPDATE decisions SET state = 'done' WHERE decision_id = ? AND state = 'received'"
INSERT_FILL = (
    "INSERT INTO fills (decision_id, instrument_kind, instrument, side, qty, price, fee, executed_at_ns,"
    " venue_ref_full, fee_native) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_FILLS = (
    "SELECT f.decision_id, f.instrument_kind, f.instrument, f.side, f.qty, f.price, f.fee, f.executed_at_ns,"
    " f.fee_native FROM fills f JOIN confirmations c ON c.decision_id = f.decision_id ORDER BY c.seq"
)
INSERT_SWAP = (
    "INSERT INTO swaps (client_order_id, attempt, signature, tx, last_valid_block_height, input_mint, output_mint,"
    " in_amount, out_amount, created_at_ns, market_ts_ns, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'signed')"
)
SWAP_COLS = (
    "client_order_id, attempt, signature, tx, last_valid_block_height, input_mint, output_mint, in_amount,"
    " out_amount, created_at_ns, market_ts_ns, state, detail"
)
SELECT_SWAPS = f"SELECT {SWAP_COLS} FROM swaps WHERE client_order_id = ? ORDER BY attempt"
SELECT_SWAP_BY_SIGNATURE = f"SELECT {SWAP_COLS} FROM swaps WHERE signature = ?"
UPDATE_SWAP = "UPDATE swaps SET state = ?, detail = ? WHERE signature = ?"
INSERT_CONFIRMATION = (
    "INSERT INTO confirmations (seq, decision_id, instrument_kind, instrument, side, intent, status,"
    " reject_code, executed_qty, avg_price, fee, executed_at_ns, venue_ref, venue_ref_truncated,"
    " venue_ref_full, slippage_over_limit, reconciled) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
CONFIRMATION_COLS = (
    "decision_id, seq, instrument_kind, instrument, side, intent, status, reject_code, executed_qty,"
    " avg_price, fee, executed_at_ns, venue_ref, venue_ref_truncated, slippage_over_limit, reconciled"
)
INSERT_DONE_DECISION = (
    "INSERT INTO decisions (decision_id, instrument_kind, instrument, side, intent, reason, quantity,"
    " reference_price, max_slippage_bps, created_at_ns, expires_at_ns, market_ts_ns, stop_price,"
    " received_at_ns, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 10000, ?, ?, ?, 0.0, ?, 'done')"
)
INSERT_RECONCILIATION = (
    "INSERT INTO reconciliations (at_ns, kind, symbol, action_id, detail) VALUES (?, ?, ?, ?, ?)"
)
MAX_ACTION_ID = (
    "SELECT MAX(x) FROM (SELECT MAX(decision_id) AS x FROM decisions WHERE decision_id < 0"
    " UNION ALL SELECT MAX(action_id) FROM reconciliations WHERE action_id < 0)"
)
MIGRATE_3_TO_4 = (
    "ALTER TABLE confirmations ADD COLUMN reconciled INTEGER NOT NULL DEFAULT 0",
    "UPDATE meta SET value = 4 WHERE key = 'schema_version'",
)
MIGRATE_4_TO_5 = (
    "ALTER TABLE fills ADD COLUMN fee_native INTEGER NOT NULL DEFAULT 0",
    "UPDATE meta SET value = 5 WHERE key = 'schema_version'",
)
MIGRATE_5_TO_6 = ("UPDATE meta SET value = 6 WHERE key = 'schema_version'",)
MIGRATIONS = {3: MIGRATE_3_TO_4, 4: MIGRATE_4_TO_5, 5: MIGRATE_5_TO_6}
"""Schema version → the statements that upgrade it one step (the swaps and take_profits tables come with
``SCHEMA``)."""
SELECT_CONFIRMATION = f"SELECT {CONFIRMATION_COLS} FROM confirmations WHERE decision_id = ?"
SELECT_CONFIRMATIONS_FROM = f"SELECT {CONFIRMATION_COLS} FROM confirmations WHERE seq >= ? ORDER BY seq"
MAX_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM confirmations"
