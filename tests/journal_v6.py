"""An executor journal as schema 6 wrote it (before issue #17's one-row outcomes), made from a
journal of today's schema: the fixture the migration tests upgrade. The tables below are schema 6's
``decisions``, ``fills`` and ``confirmations`` exactly as ``executor/journalschema.py`` declared them
up to commit a86cb20."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_6_TABLES = (
    """CREATE TABLE decisions (
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
)""",
    """CREATE TABLE fills (
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
)""",
    """CREATE TABLE confirmations (
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
)""",
)


def downgrade_to_6(path: Path) -> None:
    """Rewrite the closed schema-7 journal at ``path`` as schema 6: the same decisions, fills and
    confirmations in schema 6's three tables (read through the views of the same names)."""
    db = sqlite3.connect(path)
    try:
        with db:
            rows = {name: db.execute(f"SELECT * FROM {name}").fetchall() for name in ("decisions", "fills", "confirmations")}
            for name in ("decisions", "fills", "confirmations"):
                db.execute(f"DROP VIEW {name}")
            for trigger in ("received_once", "outcome_once"):
                db.execute(f"DROP TRIGGER {trigger}")
            db.execute("DROP TABLE received")
            db.execute("DROP TABLE outcomes")
            for ddl in SCHEMA_6_TABLES:
                db.execute(ddl)
            for name, table_rows in rows.items():
                for row in table_rows:
                    db.execute(f"INSERT INTO {name} VALUES ({', '.join('?' * len(row))})", row)
            db.execute("UPDATE meta SET value = 6 WHERE key = 'schema_version'")
    finally:
        db.close()
