"""The executor journal's SQL: the schema, its statements, the migrations (3 → 4 → 5 → 6 → 7), and
the file's storage layout (:data:`PAGE_SIZE`, :data:`WAL_AUTOCHECKPOINT_PAGES`).

Schema 7 (issue #17): one row per decided decision. ``received`` holds a decision journaled before
it is acted on and still without an outcome (in flight); ``outcomes`` holds a decision together with
its confirmation and its fill (``fill_at_ns`` NULL: nothing was filled), keyed by the confirmation's
``seq``. A decision moves from ``received`` to ``outcomes`` in the transaction that journals its
outcome; on the paper venue, whose decision and outcome share a transaction, it goes straight into
``outcomes``: one row and one index entry a decision, where schema 6 wrote a decision row, a fill
row, a confirmation row and its index (a transaction of 17-24 us against 24-37 us, measured in a
loop of 3,000 on this machine's 1 KiB pages). Triggers keep a decision id in one of the two tables.
Views keep the old names (``decisions``, ``fills``, ``confirmations``) for whoever reads the file.
A fill is its confirmation's executed quantity, price, fee and side; a fee-only fill (protocol v5)
keeps its own time, ``fill_at_ns``, as the confirmation's ``executed_at_ns`` is 0. A schema-6 journal
is migrated in place (:data:`MIGRATE_6_TO_7`), unless a row would not fit
(:data:`MIGRATE_6_TO_7_REFUSALS`).

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
    "DELETE_RECEIVED",
    "GET_META",
    "INSERT_OUTCOME",
    "INSERT_RECEIVED",
    "INSERT_RECONCILIATION",
    "INSERT_SWAP",
    "MAX_ACTION_ID",
    "MAX_DECISION_ID",
    "MAX_SEQ",
    "MIGRATE_3_TO_4",
    "MIGRATE_4_TO_5",
    "MIGRATE_5_TO_6",
    "MIGRATE_6_TO_7",
    "MIGRATE_6_TO_7_REFUSALS",
    "MIGRATIONS",
    "MIGRATION_REFUSALS",
    "PAGE_SIZE",
    "PUT_META",
    "SCHEMA",
    "SCHEMA_STATEMENTS",
    "SELECT_CONFIRMATION",
    "SELECT_CONFIRMATIONS_FROM",
    "SELECT_DECISION",
    "SELECT_FILLS",
    "SELECT_IN_FLIGHT",
    "SELECT_RECEIVED",
    "SELECT_SWAPS",
    "SELECT_SWAP_BY_SIGNATURE",
    "SWAP_COLS",
    "UPDATE_SWAP",
    "WAL_AUTOCHECKPOINT_PAGES",
]

PAGE_SIZE = 1024
"""Bytes per database page of a journal created from now on (one made before keeps its 4096). A
decision's outcome changes two or three pages (its ``outcomes`` row, the ``decision_id`` index, now
and then a parent page: 2.5 WAL frames a paper decision, measured over 2,000; schema 6's three rows
took 4.6), and a WAL commit writes each changed page whole: measured on the bench's paper decisions
(schema 6), one decision + outcome transaction took ~42 us on 1024-byte pages against ~58-75 us on
4096.
"""

WAL_AUTOCHECKPOINT_PAGES = 10_000
"""WAL frames (pages) after which a commit checkpoints the log into the database file (SQLite's
default is 1,000: https://www.sqlite.org/pragma.html#pragma_wal_autocheckpoint). A checkpoint
fsyncs the database file (``synchronous=NORMAL``), stalling the executor's loop for milliseconds;
on 1 KiB pages the default came every ~250 lockstep decisions (schema 6; ~400 with schema 7's one
row). At 10,000 (a WAL of up to ~10 MiB)
``tandem bench`` measured round-trip p99 550-630 -> 370-480 us and the pipelined rate ~10.0k ->
10.6-10.9k/s; a commit's durability does not depend on it."""

_DECISION_DDL = """
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
    received_at_ns INTEGER NOT NULL"""

_RECEIVED_TABLE = f"""CREATE TABLE IF NOT EXISTS received (
    decision_id INTEGER PRIMARY KEY,{_DECISION_DDL}
)"""

_OUTCOME_DDL = """
    confirmed_side INTEGER NOT NULL,
    status INTEGER NOT NULL,
    reject_code INTEGER NOT NULL,
    executed_qty REAL NOT NULL,
    avg_price REAL NOT NULL,
    fee REAL NOT NULL,
    executed_at_ns INTEGER NOT NULL,
    venue_ref BLOB NOT NULL,
    venue_ref_truncated INTEGER NOT NULL,
    venue_ref_full BLOB NOT NULL,
    slippage_over_limit INTEGER NOT NULL,
    reconciled INTEGER NOT NULL,
    fill_at_ns INTEGER,
    fee_native INTEGER NOT NULL"""

_OUTCOMES_TABLE = f"""CREATE TABLE IF NOT EXISTS outcomes (
    seq INTEGER PRIMARY KEY,
    decision_id INTEGER NOT NULL UNIQUE,{_DECISION_DDL},{_OUTCOME_DDL}
)"""


def _names(ddl: str) -> list[str]:
    """The column names of a DDL fragment (one column a line), in order."""
    return [line.split()[0] for line in ddl.strip().splitlines()]


_DECISION_NAMES = ", ".join(["decision_id", *_names(_DECISION_DDL)])
"""The 14 columns of a journaled decision, in the order :data:`INSERT_RECEIVED` takes them."""
_OUTCOME_NAMES = ", ".join(_names(_OUTCOME_DDL))
"""The 14 columns of an outcome after its decision's, in the order :data:`INSERT_OUTCOME` takes them."""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
{_RECEIVED_TABLE};
{_OUTCOMES_TABLE};
CREATE TRIGGER IF NOT EXISTS received_once BEFORE INSERT ON received
WHEN EXISTS (SELECT 1 FROM outcomes WHERE decision_id = NEW.decision_id)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: the decision already has an outcome'); END;
CREATE TRIGGER IF NOT EXISTS outcome_once BEFORE INSERT ON outcomes
WHEN EXISTS (SELECT 1 FROM received WHERE decision_id = NEW.decision_id)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: the decision is journaled in flight'); END;
CREATE VIEW IF NOT EXISTS decisions AS
    SELECT {_DECISION_NAMES}, 'received' AS state FROM received
    UNION ALL SELECT {_DECISION_NAMES}, 'done' FROM outcomes;
CREATE VIEW IF NOT EXISTS confirmations AS
    SELECT seq, decision_id, instrument_kind, instrument, confirmed_side AS side, intent, status, reject_code,
    executed_qty, avg_price, fee, executed_at_ns, venue_ref, venue_ref_truncated, venue_ref_full,
    slippage_over_limit, reconciled FROM outcomes;
CREATE VIEW IF NOT EXISTS fills AS
    SELECT decision_id, instrument_kind, instrument, confirmed_side AS side, executed_qty AS qty, avg_price AS price,
    fee, fill_at_ns AS executed_at_ns, venue_ref_full, fee_native FROM outcomes WHERE fill_at_ns IS NOT NULL;
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
"""Schema 7. The statements are separated by ``;`` at a line's end (a trigger's body holds one)."""

SCHEMA_STATEMENTS = tuple(s for s in SCHEMA.split(";\n") if s.strip())

GET_META = "SELECT value FROM meta WHERE key = ?"
PUT_META = "INSERT INTO meta (key, value) VALUES (?, ?)"
INSERT_RECEIVED = f"INSERT INTO received ({_DECISION_NAMES}) VALUES ({', '.join('?' * 14)})"
"""A decision journaled before it is acted on: 14 values, :data:`_DECISION_NAMES`' order."""
INSERT_OUTCOME = f"INSERT INTO outcomes (seq, {_DECISION_NAMES}, {_OUTCOME_NAMES}) VALUES ({', '.join('?' * 29)})"
"""A decision with its outcome, one row: seq, the decision's 14 values, the outcome's 14."""
SELECT_RECEIVED = f"SELECT {_DECISION_NAMES} FROM received WHERE decision_id = ?"
DELETE_RECEIVED = "DELETE FROM received WHERE decision_id = ?"
SELECT_DECISION = (
    f"SELECT {_DECISION_NAMES}, 'received' FROM received WHERE decision_id = ?1"
    f" UNION ALL SELECT {_DECISION_NAMES}, 'done' FROM outcomes WHERE decision_id = ?1"
)
SELECT_IN_FLIGHT = f"SELECT {_DECISION_NAMES}, 'received' FROM received"
MAX_DECISION_ID = (
    "SELECT COALESCE(MAX(x), -1) FROM (SELECT MAX(decision_id) AS x FROM received WHERE decision_id >= 0"
    " UNION ALL SELECT MAX(decision_id) FROM outcomes WHERE decision_id >= 0)"
)
"""The highest of the brain's own ids (below 2**63, stored >= 0), or -1."""
SELECT_FILLS = (
    "SELECT decision_id, instrument_kind, instrument, confirmed_side, executed_qty, avg_price, fee, fill_at_ns,"
    " fee_native FROM outcomes WHERE fill_at_ns IS NOT NULL ORDER BY seq"
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
CONFIRMATION_COLS = (
    "decision_id, seq, instrument_kind, instrument, confirmed_side, intent, status, reject_code, executed_qty,"
    " avg_price, fee, executed_at_ns, venue_ref, venue_ref_truncated, slippage_over_limit, reconciled"
)
INSERT_RECONCILIATION = (
    "INSERT INTO reconciliations (at_ns, kind, symbol, action_id, detail) VALUES (?, ?, ?, ?, ?)"
)
MAX_ACTION_ID = (
    "SELECT MAX(x) FROM (SELECT MAX(decision_id) AS x FROM received WHERE decision_id < 0"
    " UNION ALL SELECT MAX(decision_id) FROM outcomes WHERE decision_id < 0"
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
MIGRATE_6_TO_7 = (
    _RECEIVED_TABLE,
    _OUTCOMES_TABLE,
    (f"INSERT INTO received ({_DECISION_NAMES}) SELECT {_DECISION_NAMES} FROM decisions d WHERE state = 'received'"
    " AND NOT EXISTS (SELECT 1 FROM confirmations c WHERE c.decision_id = d.decision_id)"),
    (f"INSERT INTO outcomes (seq, {_DECISION_NAMES}, {_OUTCOME_NAMES})"
    f" SELECT c.seq, {', '.join(f'd.{name}' for name in _DECISION_NAMES.split(', '))}, c.side, c.status, c.reject_code, c.executed_qty, c.avg_price, c.fee, c.executed_at_ns,"
    " c.venue_ref, c.venue_ref_truncated, c.venue_ref_full, c.slippage_over_limit, c.reconciled,"
    " f.executed_at_ns, COALESCE(f.fee_native, 0)"
    " FROM confirmations c JOIN decisions d ON d.decision_id = c.decision_id"
    " LEFT JOIN fills f ON f.decision_id = c.decision_id"),
    "DROP TABLE fills",
    "DROP TABLE confirmations",
    "DROP TABLE decisions",
    "UPDATE meta SET value = 7 WHERE key = 'schema_version'",
)
"""Schema 6 → 7 (issue #17): ``decisions``, ``fills`` and ``confirmations`` become ``received`` (a
decision in flight) and ``outcomes`` (a decision with its confirmation and fill, one row), and
views of the old names over them. Run only after :data:`MIGRATE_6_TO_7_REFUSALS` found nothing.
Once per journal, in the transaction that opens it: 2.2 s for 200,000 decisions (49 MiB) here."""
MIGRATE_6_TO_7_REFUSALS = (
    (("SELECT f.decision_id FROM fills f WHERE NOT EXISTS"
     " (SELECT 1 FROM confirmations c WHERE c.decision_id = f.decision_id) LIMIT 1"),
     "the fill of decision {} has no confirmation"),
    (("SELECT d.decision_id FROM decisions d WHERE d.state = 'done' AND NOT EXISTS"
     " (SELECT 1 FROM confirmations c WHERE c.decision_id = d.decision_id) LIMIT 1"),
     "decision {} is done without a confirmation"),
    (("SELECT c.decision_id FROM confirmations c WHERE NOT EXISTS"
     " (SELECT 1 FROM decisions d WHERE d.decision_id = c.decision_id) LIMIT 1"),
     "the confirmation of decision {} has no decision"),
    (("SELECT c.decision_id FROM confirmations c JOIN decisions d ON d.decision_id = c.decision_id"
     " WHERE c.instrument_kind != d.instrument_kind OR c.instrument != d.instrument OR c.intent != d.intent LIMIT 1"),
     "the confirmation of decision {} names another instrument or intent than its decision"),
    (("SELECT c.decision_id FROM confirmations c JOIN fills f ON f.decision_id = c.decision_id"
     " WHERE f.instrument_kind != c.instrument_kind OR f.instrument != c.instrument OR f.side != c.side"
     " OR f.qty != c.executed_qty OR f.price != c.avg_price OR f.fee != c.fee OR f.venue_ref_full != c.venue_ref_full"
     " LIMIT 1"),
     "the fill of decision {} differs from its confirmation"),
)
"""(query, what) pairs: a schema-6 journal with a row one of these finds would not fit the one-row
``outcomes`` without losing something, and is refused (``JournalMismatch``, the file untouched). The
executor never wrote such rows: a fill and its confirmation were one transaction, made of the same
values (:meth:`executor.core.ExecutorCore.settle`)."""
MIGRATIONS = {3: MIGRATE_3_TO_4, 4: MIGRATE_4_TO_5, 5: MIGRATE_5_TO_6, 6: MIGRATE_6_TO_7}
"""Schema version → the statements that upgrade it one step (the swaps and take_profits tables, the
views and the triggers come with ``SCHEMA``)."""
MIGRATION_REFUSALS = {6: MIGRATE_6_TO_7_REFUSALS}
"""Schema version → what refuses its upgrade (see :data:`MIGRATE_6_TO_7_REFUSALS`)."""
SELECT_CONFIRMATION = f"SELECT {CONFIRMATION_COLS} FROM outcomes WHERE decision_id = ?"
SELECT_CONFIRMATIONS_FROM = f"SELECT {CONFIRMATION_COLS} FROM outcomes WHERE seq >= ? ORDER BY seq"
MAX_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM outcomes"
