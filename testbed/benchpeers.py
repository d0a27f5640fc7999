"""The reference peers ``tandem bench`` measures the executor against (``python -m testbed.benchpeers``).

- **echo** (``--echo``): a bare uvloop UDP echo — the floor: the same two processes, loopback and
  event loops, and nothing else.
- **journaled echo** (``--journaled-echo --bus-secret-file KEY --journal PATH``): what no executor
  that keeps DESIGN.md invariant 7 can skip — decode and check the MAC of each decision, journal it
  with a fill and its confirmation in ONE transaction of the executor's own journal
  (:class:`executor.journal.Journal`: SQLite WAL, ``synchronous=NORMAL``, its schema and pages),
  encode the confirmation and send it. No venue, ledger, order path, metrics or logs: the floor of
  any executor with this journal in Python on this machine.
- **SQLite echo** (``--sqlite-echo --bus-secret-file KEY --journal PATH``): the floor of any journal
  at all within the rules of issue #17 (SQLite in WAL mode, ``synchronous=NORMAL``) — decode and
  check the MAC, build and encode the confirmation, and commit ONE row holding both datagrams to a
  one-table database on the executor journal's pages and checkpoint interval, then send.

With ``--busy-poll-us N`` the two journaling floors poll their socket for up to N µs after each
answer, as the executor does by default (``busy_poll_us``), so they are compared waiting alike.

Each prints ``{"port": N}`` on stdout once bound to an ephemeral loopback port, then serves until
terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from executor.journal import Journal
from executor.journalschema import PAGE_SIZE, WAL_AUTOCHECKPOINT_PAGES
from executor.ledger import Fill
from foundation import journalfile
from foundation.bussecret import load_bus_secret
from foundation.busypoll import BusyPoll
from foundation.runtime import run, settle_heap
from protocol import Codec, ExecutionConfirmation, RejectCode, RemoteProtocolError, Status, TradeDecision, derive_key

__all__ = ["main"]


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


def _filled(d: TradeDecision, seq: int, now: int) -> ExecutionConfirmation:
    """``d`` confirmed FILLED whole at its reference price, no fee."""
    return ExecutionConfirmation(
        decision_id=d.decision_id, seq=seq, instrument=d.instrument, side=d.side, intent=d.intent,
        status=Status.FILLED, reject_code=RejectCode.NONE, executed_qty=d.quantity, avg_price=d.reference_price,
        fee=0.0, executed_at_ns=now,
    )  # fmt: skip


class _Confirming(asyncio.DatagramProtocol):
    """Decodes each datagram and answers each authentic decision with what :meth:`commit` returns;
    then, with ``busy_poll_us``, polls the socket as the executor does after an answer
    (:class:`~foundation.busypoll.BusyPoll`), so the floor and the executor wait alike."""

    def __init__(self, codec: Codec, busy_poll_us: int = 0) -> None:
        self.codec = codec
        self.busy_poll_us = busy_poll_us
        self.poll: BusyPoll | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.poll = BusyPoll.on(transport, self.busy_poll_us)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self._answer(data, addr) or self.poll is None:
            return
        while got := self.poll.wait():  # what the poll reads is answered here, as the executor does
            for more, sender in got:
                self._answer(more, sender)

    def _answer(self, data: bytes, addr: Any) -> bool:
        """Answer ``data`` if it is an authentic decision (``True``)."""
        now = time.time_ns()
        try:
            d = self.codec.decode(data, now)
        except RemoteProtocolError:
            return False
        if not isinstance(d, TradeDecision):
            return False
        self.transport.sendto(self.commit(d, data, now), addr)
        return True

    def commit(self, d: TradeDecision, data: bytes, now: int) -> bytes:
        """Journal ``d`` (received as ``data`` at ``now``) and return its encoded confirmation."""
        raise NotImplementedError


class _JournaledEcho(_Confirming):
    """Each authentic decision journaled with a fill at its reference price, then confirmed FILLED."""

    def __init__(self, codec: Codec, journal: Journal, busy_poll_us: int = 0) -> None:
        super().__init__(codec, busy_poll_us)
        self.journal = journal

    def commit(self, d: TradeDecision, data: bytes, now: int) -> bytes:
        journal = self.journal
        with journal.group():  # the decision, its fill and confirmation: one transaction
            journal.record_decision(d, now)
            fill = Fill(d.decision_id, d.instrument, d.side, d.quantity, d.reference_price, 0.0, now)
            conf = _filled(d, journal.next_seq(), now)
            journal.record_outcome(conf, fill, b"")
        return self.codec.encode(conf, sent_at_ns=time.time_ns())


class _SqliteEcho(_Confirming):
    """Each authentic decision and its FILLED confirmation committed as one row, then sent."""

    def __init__(self, codec: Codec, conn: sqlite3.Connection, busy_poll_us: int = 0) -> None:
        super().__init__(codec, busy_poll_us)
        self.conn = conn

    def commit(self, d: TradeDecision, data: bytes, now: int) -> bytes:
        out = self.codec.encode(_filled(d, d.decision_id, now), sent_at_ns=time.time_ns())
        execute = self.conn.execute
        execute("BEGIN IMMEDIATE")
        execute("INSERT INTO outcomes VALUES (?, ?, ?)", (d.decision_id, data, out))
        execute("COMMIT")
        return out


def _sqlite_floor(path: Path) -> sqlite3.Connection:
    """A one-table database at ``path`` on the executor journal's pages, WAL, ``synchronous=NORMAL``."""
    journalfile.create(path, lambda c: c.execute("CREATE TABLE outcomes (id INTEGER PRIMARY KEY, d BLOB, c BLOB)"),
                       page_size=PAGE_SIZE)  # fmt: skip
    conn = sqlite3.connect(path, isolation_level=None)
    if str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() != "wal":
        raise RuntimeError(f"{path}: cannot enable WAL mode")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    return conn


async def _serve(factory: Any) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))
    settle_heap()  # as the executor does once it serves
    print(json.dumps({"port": transport.get_extra_info("sockname")[1]}), flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.benchpeers", description=__doc__.splitlines()[0])
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--echo", action="store_true", help="a bare UDP echo")
    kind.add_argument("--journaled-echo", action="store_true", help="decode, journal, confirm")
    kind.add_argument("--sqlite-echo", action="store_true", help="decode, commit one row, confirm")
    parser.add_argument("--bus-secret-file", type=Path, help="the bus secret (--journaled-echo, --sqlite-echo)")
    parser.add_argument("--journal", type=Path, help="the database to create (--journaled-echo, --sqlite-echo)")
    parser.add_argument("--busy-poll-us", type=int, default=0,
                        help="poll the socket this long after each answer, as the executor does (--journaled-echo, --sqlite-echo)")
    opts = parser.parse_args(argv)
    if opts.echo:
        factory: Any = _Echo
    else:
        if opts.bus_secret_file is None or opts.journal is None:
            parser.error("--journaled-echo and --sqlite-echo need --bus-secret-file and --journal")
        codec = Codec(derive_key(load_bus_secret(None, opts.bus_secret_file)))
        if opts.sqlite_echo:
            conn = _sqlite_floor(opts.journal)
            factory = lambda: _SqliteEcho(codec, conn, opts.busy_poll_us)  # noqa: E731
        else:
            journal = Journal(opts.journal, starting_cash=1e12)
            factory = lambda: _JournaledEcho(codec, journal, opts.busy_poll_us)  # noqa: E731
    try:
        run(_serve(factory))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
