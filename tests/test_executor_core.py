"""Executor core: paper fills, the SQLite journal, exactly-once handling and restart recovery.

Real parts only: SQLite files in ``tmp_path`` and real bars (the bundled FTX BTC-PERP 1m file or
a small CSV written per test).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from executor import (
    ExecutorCore,
    Journal,
    JournalConflict,
    JournalCorrupt,
    JournalError,
    JournalMismatch,
    Ledger,
    PaperFill,
    PaperRefusal,
    PaperVenue,
)
from foundation.barcsv import bundled_path, load_bars
from foundation.bars import Bars
from protocol import DecisionReason, Instrument, Intent, RejectCode, Side, Status, TradeDecision

BTC = Instrument.symbol("BTC-PERP")
MS = 1_000_000
MIN = 60_000 * MS
T0 = 1_700_000_000_000 * MS  # open time of the first bar of the small CSV, ns
CASH = 10_000.0


@pytest.fixture(scope="module")
def bundled() -> Bars:
    return load_bars(bundled_path(), limit=500)


@pytest.fixture
def bars(tmp_path: Path) -> Bars:
    """Three 1m bars opening at 100, 200 and 400 quote."""
    csv = tmp_path / "bars.csv"
    rows = ["timestamp_ms,open,high,low,close,volume"]
    for i, o in enumerate((100.0, 200.0, 400.0)):
        rows.append(f"{T0 // MS + i * 60_000},{o},{o * 1.1},{o * 0.9},{o},1.0")
    csv.write_text("\n".join(rows) + "\n")
    return load_bars(csv)


def decision(
    decision_id: int = 1,
    *,
    side: Side = Side.BUY,
    qty: float = 1.0,
    ref: float = 200.0,
    max_slip: int = 100,
    market_ts_ns: int = T0 + 1,
    instrument: Instrument = BTC,
    expires_in_ns: int = 10 * MIN,
    intent: Intent | None = None,
) -> TradeDecision:
    return TradeDecision(
        decision_id=decision_id,
        instrument=instrument,
        side=side,
        intent=intent or (Intent.OPEN if side is Side.BUY else Intent.CLOSE),
        reason=DecisionReason.SIGNAL,
        quantity=qty,
        reference_price=ref,
        max_slippage_bps=max_slip,
        created_at_ns=T0,
        expires_at_ns=T0 + expires_in_ns,
        market_ts_ns=market_ts_ns,
    )


NOW = T0 + 1_000_000_000  # 1 s after creation, well before expiry


async def open_core(path: Path, bars: Bars, *, cash: float = CASH, slippage_bps: float = 0.0) -> ExecutorCore:
    venue = PaperVenue(bars, instrument=BTC, slippage_bps=slippage_bps)
    return await ExecutorCore.open(path, venue, cash)


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# --- paper venue -------------------------------------------------------------------------------


async def test_fill_at_next_bar_open_with_slippage_and_fee(tmp_path: Path, bars: Bars) -> None:
    """A buy fills at the next bar's open moved up by slippage, pays qty*price*10bps, moves cash."""
    core = await open_core(tmp_path / "j.db", bars, slippage_bps=25.0)
    out = await core.on_decision(decision(qty=2.0, ref=200.0), NOW)
    c = out.confirmation
    price = 200.0 * (1 + 25.0 / 1e4)
    assert price == pytest.approx(200.5, rel=1e-15)
    assert (c.status, c.reject_code, c.seq) == (Status.FILLED, RejectCode.NONE, 1)
    assert (c.executed_qty, c.avg_price, c.fee) == (2.0, price, 2.0 * price * 10.0 / 1e4)
    assert c.fee == pytest.approx(0.401, rel=1e-12)
    assert c.executed_at_ns == T0 + MIN
    assert (c.venue_ref, c.venue_ref_truncated) == (b"paper-1", False)
    assert out.executed and not out.duplicate and not out.conflict
    assert core.ledger.cash == CASH - (2.0 * price + c.fee)
    assert core.ledger.position(BTC) == 2.0 and core.ledger.avg_cost(BTC) == price
    sell = await core.on_decision(decision(2, side=Side.SELL, qty=2.0, ref=400.0, market_ts_ns=T0 + MIN + 1), NOW)
    sell_price = 400.0 * (1 - 25.0 / 1e4)
    assert (sell.confirmation.avg_price, sell.confirmation.fee) == (sell_price, 2.0 * sell_price * 10.0 / 1e4)
    assert core.ledger.position(BTC) == 0.0 and core.ledger.positions() == {}
    assert core.ledger.cash == CASH - (2.0 * price + c.fee) + (2.0 * sell_price - sell.confirmation.fee)
    core.close()


def test_no_look_ahead(bundled: Bars) -> None:
    """market_ts exactly at a bar's open fills at that bar; 1 ns later fills at the next bar."""
    venue = PaperVenue(bundled, instrument=BTC)
    ledger = Ledger(1e9)
    t = bundled.ts_ms[10] * MS
    at = venue.quote(decision(market_ts_ns=t, ref=bundled.open[10]), ledger)
    after = venue.quote(decision(market_ts_ns=t + 1, ref=bundled.open[11]), ledger)
    assert isinstance(at, PaperFill) and isinstance(after, PaperFill)
    assert (at.bar_index, at.price, at.executed_at_ns) == (10, bundled.open[10], t)
    next_open_ns = bundled.ts_ms[11] * MS
    assert (after.bar_index, after.price, after.executed_at_ns) == (11, bundled.open[11], next_open_ns)


def test_quote_does_not_mutate_ledger(bundled: Bars) -> None:
    """PaperVenue.quote leaves the ledger untouched."""
    ledger = Ledger(CASH)
    venue = PaperVenue(bundled, instrument=BTC)
    before = ledger.snapshot()
    q = venue.quote(decision(qty=0.1, ref=bundled.open[0], market_ts_ns=bundled.ts_ms[0] * MS), ledger)
    assert isinstance(q, PaperFill)
    assert ledger.snapshot() == before


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"qty": 50.0}, Status.REJECTED, RejectCode.INSUFFICIENT_FUNDS),  # 50 * 200 * 1.001 > 10k
        ({"side": Side.SELL, "qty": 1.0}, Status.REJECTED, RejectCode.INSUFFICIENT_POSITION),
        ({"ref": 197.0, "max_slip": 100}, Status.REJECTED, RejectCode.SLIPPAGE_EXCEEDED),  # 200 > 198.97
        ({"instrument": Instrument.symbol("ETH-PERP")}, Status.REJECTED, RejectCode.UNKNOWN_INSTRUMENT),
        ({"market_ts_ns": T0 + 2 * MIN + 1}, Status.FAILED, RejectCode.NO_MARKET_DATA),
    ],
    ids=["funds", "position", "slippage-buy", "instrument", "no-data-at-end"],
)
async def test_refusals(tmp_path: Path, bars: Bars, kwargs: dict, status: Status, code: RejectCode) -> None:
    """Each venue rule refuses with its status and reason code, journaled, with nothing executed."""
    core = await open_core(tmp_path / "j.db", bars)
    out = await core.on_decision(decision(**kwargs), NOW)
    c = out.confirmation
    assert (c.status, c.reject_code, c.executed_qty, c.avg_price, c.fee) == (status, code, 0.0, 0.0, 0.0)
    assert not out.executed and out.detail
    assert core.ledger.snapshot() == Ledger(CASH).snapshot()
    assert core.journal.confirmation_for(1) == c
    core.close()
    assert count(tmp_path / "j.db", "fills") == 0


def test_buy_exactly_affordable_and_slippage_exactly_at_limit_fill(bars: Bars) -> None:
    """Limits are inclusive: cash == qty*price+fee and price == ref*(1+max) both fill."""
    venue = PaperVenue(bars, instrument=BTC, fee_bps=0.0, slippage_bps=50.0)
    price = 200.0 * (1 + 50.0 / 1e4)
    assert isinstance(venue.quote(decision(qty=2.0, ref=200.0, max_slip=50), Ledger(2.0 * price)), PaperFill)
    refused = venue.quote(decision(qty=2.0, ref=200.0, max_slip=49), Ledger(2.0 * price))
    assert isinstance(refused, PaperRefusal) and refused.reject_code is RejectCode.SLIPPAGE_EXCEEDED


@pytest.mark.parametrize("intent", [Intent.CLOSE, Intent.REDUCE])
async def test_exit_is_never_refused_for_slippage(tmp_path: Path, bars: Bars, intent: Intent) -> None:
    """An exit (CLOSE or REDUCE) whose fill is 3,333 bps below its reference — a gap down through a
    stop — executes anyway (DESIGN invariant 3): FILLED, flagged SLIPPAGE_OVER_LIMIT, its slippage
    reported, the ledger flat; the same gap on an entry is refused."""
    core = await open_core(tmp_path / "j.db", bars)
    await core.on_decision(decision(1, qty=0.5), NOW)  # bought at bar 1's open, 200
    out = await core.on_decision(decision(2, side=Side.SELL, qty=0.5, ref=300.0, max_slip=100, intent=intent), NOW)
    c = out.confirmation
    assert (c.status, c.reject_code, c.executed_qty, c.avg_price) == (Status.FILLED, RejectCode.NONE, 0.5, 200.0)
    assert c.slippage_over_limit and out.exit_slippage_bps == pytest.approx((300.0 - 200.0) / 300.0 * 1e4)
    assert core.ledger.positions() == {} and core.journal.confirmation_for(2) == c
    assert core.journal.confirmation_for(2).slippage_over_limit  # journaled with the flag: a replay carries it
    entry = await core.on_decision(decision(3, qty=0.5, ref=100.0, max_slip=100), NOW)
    assert entry.confirmation.reject_code is RejectCode.SLIPPAGE_EXCEEDED and not entry.executed
    core.close()


async def test_exit_within_its_limit_is_not_flagged(tmp_path: Path, bars: Bars) -> None:
    """An exit filled at its reference carries no SLIPPAGE_OVER_LIMIT flag and 0 bps."""
    core = await open_core(tmp_path / "j.db", bars)
    await core.on_decision(decision(1, qty=0.5), NOW)
    out = await core.on_decision(decision(2, side=Side.SELL, qty=0.5, ref=200.0, max_slip=0), NOW)
    assert out.executed and not out.confirmation.slippage_over_limit and out.exit_slippage_bps == 0.0
    core.close()


async def test_sell_within_tolerance_is_clamped_to_position(tmp_path: Path, bars: Bars) -> None:
    """A sell exceeding the position by < 1e-9 relative sells exactly the position, leaving it flat."""
    core = await open_core(tmp_path / "j.db", bars)
    await core.on_decision(decision(1, qty=0.3), NOW)
    held = core.ledger.position(BTC)
    out = await core.on_decision(decision(2, side=Side.SELL, qty=held * (1 + 1e-12)), NOW)
    assert out.executed and out.confirmation.executed_qty == held
    assert core.ledger.positions() == {}
    core.close()


async def test_long_decision_id_venue_ref_truncated_and_full_ref_journaled(tmp_path: Path, bars: Bars) -> None:
    """The largest decision id (2**63 - 1 since protocol v4; ids from 2**63 are the executor's) round-trips;
    its venue ref is cut to 16 bytes, flagged, and kept whole."""
    big = 2**63 - 1
    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    d = TradeDecision(**{**{f: getattr(decision(), f) for f in TradeDecision.__slots__}, "decision_id": big,
                         "expires_at_ns": 2**64 - 1})  # fmt: skip
    c = (await core.on_decision(d, NOW)).confirmation
    assert (c.venue_ref, c.venue_ref_truncated) == (b"paper-9223372036", True)
    assert core.journal.decision(big).decision == d
    assert core.journal.confirmation_for(big) == c
    core.close()
    with sqlite3.connect(path) as conn:
        full = conn.execute("SELECT venue_ref_full FROM fills").fetchone()[0]
    assert full == b"paper-9223372036854775807"


# --- exactly once ------------------------------------------------------------------------------


async def test_duplicate_answered_with_stored_confirmation_and_executed_once(tmp_path: Path, bars: Bars) -> None:
    """A retransmitted decision gets the identical stored confirmation and trades only once."""
    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    first = await core.on_decision(decision(), NOW)
    after_first = core.ledger.snapshot()
    again = await core.on_decision(decision(), NOW + 5)
    assert again.confirmation == first.confirmation
    assert again.duplicate and not again.executed and not again.conflict
    assert core.ledger.snapshot() == after_first
    assert core.journal.next_seq() == 2
    core.close()
    assert (count(path, "fills"), count(path, "confirmations")) == (1, 1)


async def test_duplicate_after_restart(tmp_path: Path, bars: Bars) -> None:
    """After closing and reopening the journal, a retransmit is answered from it, not re-executed."""
    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    first = await core.on_decision(decision(), NOW)
    core.close()
    core = await open_core(path, bars)
    assert core.recovered == ()
    again = await core.on_decision(decision(), NOW + MIN)
    assert again.confirmation == first.confirmation and again.duplicate and not again.executed
    assert core.ledger.position(BTC) == 1.0
    core.close()
    assert count(path, "fills") == 1


async def test_expired_decision(tmp_path: Path, bars: Bars) -> None:
    """now > expires_at answers EXPIRED, journals decision and confirmation, and trades nothing."""
    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    d = decision()
    at_expiry = await core.on_decision(decision(2), d.expires_at_ns)  # the boundary itself is not expired
    out = await core.on_decision(d, d.expires_at_ns + 1)
    assert at_expiry.executed
    c = out.confirmation
    assert (c.status, c.reject_code, c.seq, c.executed_at_ns) == (Status.EXPIRED, RejectCode.EXPIRED, 2, 0)
    assert not out.executed and core.ledger.position(BTC) == 1.0
    assert core.journal.decision(1).state == "done"
    core.close()
    assert (count(path, "decisions"), count(path, "confirmations"), count(path, "fills")) == (2, 2, 1)


async def test_conflicting_duplicate(tmp_path: Path, bars: Bars) -> None:
    """A repeated id with different content gets the stored confirmation, conflict=True, no trade."""
    core = await open_core(tmp_path / "j.db", bars)
    first = await core.on_decision(decision(qty=1.0), NOW)
    before = core.ledger.snapshot()
    other = await core.on_decision(decision(qty=3.0), NOW)
    assert other.confirmation == first.confirmation
    assert other.conflict and other.duplicate and not other.executed
    assert core.ledger.snapshot() == before
    assert core.journal.decision(1).decision.quantity == 1.0
    core.close()


async def test_in_flight_resolved_on_reopen_exactly_once(tmp_path: Path, bars: Bars) -> None:
    """A decision journaled but not answered before a crash is executed once on restart, in id order."""
    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    await core.on_decision(decision(1), NOW)
    core.journal.record_decision(decision(3, qty=0.5), NOW)  # crash after "journal before acting"
    core.journal.record_decision(decision(2, qty=0.25), NOW)
    core.close()
    core = await open_core(path, bars)
    assert [o.confirmation.decision_id for o in core.recovered] == [2, 3]
    assert [o.confirmation.seq for o in core.recovered] == [2, 3]
    assert all(o.executed and o.confirmation.status is Status.FILLED for o in core.recovered)
    assert core.journal.in_flight() == []
    assert core.ledger.position(BTC) == 1.75
    core.close()
    core = await open_core(path, bars)
    assert core.recovered == ()
    again = await core.on_decision(decision(3, qty=0.5), NOW)
    assert again.duplicate and not again.executed and again.confirmation.seq == 3
    assert core.ledger.position(BTC) == 1.75
    core.close()
    assert count(path, "fills") == 3


async def test_in_flight_retransmit_resolves_it_live(tmp_path: Path, bars: Bars) -> None:
    """A retransmit of a journaled, unanswered decision resolves it (as a restart would), once."""
    core = await open_core(tmp_path / "j.db", bars)
    core.journal.record_decision(decision(1), NOW)
    out = await core.on_decision(decision(1), NOW + 10)
    assert out.duplicate and out.executed and out.confirmation.seq == 1
    assert (await core.on_decision(decision(1), NOW + 20)).confirmation == out.confirmation
    assert core.ledger.position(BTC) == 1.0
    core.close()


async def test_in_flight_expiry_judged_at_receipt_time(tmp_path: Path, bars: Bars) -> None:
    """An in-flight decision resolved on restart is judged expired against when it was received."""
    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    d = decision(1)
    core.journal.record_decision(d, d.expires_at_ns + 1)
    core.journal.record_decision(decision(2), NOW)
    core.close()
    core = await open_core(path, bars)
    assert [o.confirmation.status for o in core.recovered] == [Status.EXPIRED, Status.FILLED]
    core.close()


async def test_ledger_rebuilt_from_journal_equals_live(tmp_path: Path, bundled: Bars) -> None:
    """Folding the journaled fills rebuilds a ledger identical to the live one, also on reopen."""
    path = tmp_path / "j.db"
    core = await open_core(path, bundled, cash=100_000.0, slippage_bps=3.0)
    side, did = Side.BUY, 0
    for i in range(0, 120, 3):
        did += 1
        t = bundled.ts_ms[i] * MS + 1
        qty = 0.013 * (1 + i % 7) if side is Side.BUY else core.ledger.position(BTC) * 0.6
        if qty <= 0:
            qty = 0.01
        await core.on_decision(decision(did, side=side, qty=qty, ref=bundled.open[i + 1], market_ts_ns=t), NOW)
        side = Side.SELL if i % 2 else Side.BUY
    live = core.ledger.snapshot()
    assert live["positions"] and live["cash"] != 100_000.0
    assert Ledger.from_fills(100_000.0, core.journal.fills()).snapshot() == live
    core.close()
    core = await open_core(path, bundled, cash=100_000.0, slippage_bps=3.0)
    assert core.ledger.snapshot() == live
    core.close()


async def test_seq_gap_free_across_restart(tmp_path: Path, bars: Bars) -> None:
    """Confirmation seqs run 1, 2, 3, ... with no gap, across rejections, duplicates and restarts."""
    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    qtys = {1: 0.1, 2: 1e6, 3: 0.1}  # 2 is rejected (funds) and still takes a seq
    seqs = [(await core.on_decision(decision(i, qty=q), NOW)).confirmation.seq for i, q in qtys.items()]
    await core.on_decision(decision(1, qty=0.1), NOW)  # duplicate: no new seq
    core.close()
    core = await open_core(path, bars)
    assert core.journal.next_seq() == 4
    seqs += [(await core.on_decision(decision(i, qty=0.1), NOW)).confirmation.seq for i in (4, 5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert [c.seq for c in core.journal.confirmations_from(3)] == [3, 4, 5]
    assert [c.decision_id for c in core.journal.confirmations_from(1)] == [1, 2, 3, 4, 5]
    core.close()


# --- journal -----------------------------------------------------------------------------------


async def test_corrupt_file_raises_journal_error_naming_path(tmp_path: Path, bars: Bars) -> None:
    """A file that is not SQLite raises JournalError (JournalCorrupt) whose message names the path."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a sqlite database\x00" * 200)
    with pytest.raises(JournalCorrupt, match="garbage.db") as info:
        await open_core(path, bars)
    assert isinstance(info.value, JournalError) and str(path) in str(info.value)


def test_wal_mode_on_and_synchronous_configurable(tmp_path: Path) -> None:
    """The journal runs in WAL mode; synchronous is NORMAL by default, FULL on request, else refused."""
    j = Journal(tmp_path / "a.db", starting_cash=CASH)
    assert j._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    j.close()
    with sqlite3.connect(tmp_path / "a.db") as conn:  # WAL is persistent in the file
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    j = Journal(tmp_path / "a.db", synchronous="FULL")
    assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert j.starting_cash == CASH
    j.close()
    with pytest.raises(ValueError, match="synchronous"):
        Journal(tmp_path / "b.db", starting_cash=CASH, synchronous="OFF")


async def test_reopen_with_other_starting_cash_refused(tmp_path: Path, bars: Bars) -> None:
    """A journal reopened with a different starting cash raises JournalMismatch naming both values."""
    path = tmp_path / "j.db"
    (await open_core(path, bars, cash=CASH)).close()
    with pytest.raises(JournalMismatch, match=r"starting_cash=10000\.0, opened with 5000\.0"):
        await open_core(path, bars, cash=5_000.0)


async def test_outcome_is_one_transaction(tmp_path: Path, bars: Bars) -> None:
    """An outcome that breaks a rule (not in flight, wrong seq) is refused and leaves no trace."""
    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    c = (await core.on_decision(decision(1), NOW)).confirmation
    with pytest.raises(JournalConflict, match="not in flight"):
        core.journal.record_outcome(type(c)(**{**{f: getattr(c, f) for f in type(c).__slots__}, "seq": 2}),
                                    None, b"")  # fmt: skip
    with pytest.raises(JournalConflict, match="seq"):
        core.journal.record_outcome(c, None, b"")
    with pytest.raises(JournalConflict):
        core.journal.record_decision(decision(1), NOW)
    assert core.journal.next_seq() == 2
    core.close()
    assert (count(path, "decisions"), count(path, "fills"), count(path, "confirmations")) == (1, 1, 1)


async def test_a_group_writes_a_decision_and_its_outcome_in_one_transaction(tmp_path: Path, bars: Bars) -> None:
    """Journal.group (issue #17): a decision and its outcome made in one group commit together,
    the decision written done at once; a decision whose outcome is not in the group stays in
    flight; a group that raises writes nothing, and its decisions are journaled again later."""
    from executor.core import Pending

    path = tmp_path / "j.db"
    core = await open_core(path, bars)
    j = core.journal
    with pytest.raises(RuntimeError, match="boom"), j.group():
        j.record_decision(decision(1), NOW)
        raise RuntimeError("boom")
    assert count(path, "decisions") == 0 and j.decision(1) is None
    with j.group():
        admitted = core.admit(decision(1), NOW)
        assert isinstance(admitted, Pending)
        outcome = await core.resolve(admitted.decision, NOW, duplicate=False, conflict=False, recovering=False)
        j.record_decision(decision(2, side=Side.SELL), NOW)
        assert count(path, "decisions") == 0  # nothing before the group ends
    assert j.decision(1).state == "done" and j.decision(2).state == "received"  # type: ignore[union-attr]
    assert j.confirmation_for(1) == outcome.confirmation and outcome.confirmation.status is Status.FILLED
    assert [d.decision_id for d in j.in_flight()] == [2]
    assert (count(path, "decisions"), count(path, "fills"), count(path, "confirmations")) == (2, 1, 1)
    core.close()


async def test_a_group_folds_the_mark_into_the_insert_and_forgets_it_when_it_fails(tmp_path: Path, bars: Bars) -> None:
    """In a group, a decision and its outcome are one row: the decision is never written in flight
    (no insert into ``received``, no delete from it), one insert into ``outcomes``. A group that
    raised leaves nothing behind: the same decision, journaled later outside a group, is moved out
    of ``received`` by its outcome in a later group (a stale fold would leave it in flight, and a
    retransmit would execute it again)."""
    from executor.core import Pending

    core = await open_core(tmp_path / "j.db", bars)
    j = core.journal
    statements: list[str] = []
    j._conn.set_trace_callback(statements.append)
    with j.group():
        admitted = core.admit(decision(1), NOW)
        assert isinstance(admitted, Pending)
        await core.resolve(admitted.decision, NOW, duplicate=False, conflict=False, recovering=False)
    written = [s.split(" (")[0] for s in statements if s.startswith(("INSERT", "DELETE", "UPDATE"))]
    assert set(written) == {"INSERT INTO outcomes"}, statements  # (traced again as its trigger runs)
    assert j.decision(1).state == "done"  # type: ignore[union-attr]
    with pytest.raises(RuntimeError, match="boom"), j.group():
        j.record_decision(decision(2, side=Side.SELL), NOW)
        raise RuntimeError("boom")
    j.record_decision(decision(2, side=Side.SELL), NOW)  # committed on its own
    with j.group():
        outcome = await core.resolve(decision(2, side=Side.SELL), NOW, duplicate=False, conflict=False,
                                     recovering=False)  # fmt: skip
    assert outcome.confirmation.status is Status.FILLED
    assert j.decision(2).state == "done" and j.in_flight() == []  # type: ignore[union-attr]
    assert any(s.startswith("DELETE FROM received") for s in statements)  # moved: its insert was not in the group
    core.close()
