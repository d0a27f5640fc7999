"""Link state machines (``protocol/link.py``) over a scripted clock and an in-memory network.

No sockets and no sleeps (STYLE.md items 1, 2, 14): time is an int of ns that the tests advance,
and every datagram a link hands out goes through the real codec (``Codec.decode(data, now)``)
before the peer's ``receive``, like h11's ``ConnectionPair`` and aioquic's ``roundtrip()``.

:class:`Pair` joins a :class:`BrainLink` and an :class:`ExecutorLink` through a seeded
:class:`Network` that can drop, duplicate, reorder and delay datagrams, with
:class:`FakeExecutor` standing in for the executor application (execute once per decision_id,
answer repeats and replays from its journal). Unit cases feed one link directly.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    RECONCILE_ID_BASE,
    BeliefMode,
    BrainLink,
    Codec,
    DecisionReason,
    DecisionReceived,
    ExecutionConfirmation,
    ExecutorLink,
    Heartbeat,
    Instrument,
    Intent,
    Message,
    Posture,
    RejectCode,
    RejectReason,
    RemoteProtocolError,
    ReplayRequest,
    ReplayRequested,
    Role,
    Side,
    StaleDatagram,
    Status,
    TradeDecision,
    UnexpectedMessage,
    derive_key,
)

if TYPE_CHECKING:
    from foundation.bars import Bars

MS = 1_000_000
S = 1_000 * MS
HOUR = 3_600 * S
T0 = 1_735_689_600 * S  # 2025-01-01T00:00:00Z, the scripted clock's start
TTL = 10 * S  # decisions expire 10 s after creation
KEY = derive_key(b"k" * 32)
BTC = Instrument.symbol("BTC/USDT")
REPLAY_BATCH = 64  # confirmations the fake executor sends per replay request
BRAIN_INC, EXEC_INC = 0xB1, 0xE1

# -- builders ---------------------------------------------------------------------------------


def make_decision(decision_id: int, now: int) -> TradeDecision:
    """A decision created at ``now`` that expires ``TTL`` later."""
    return TradeDecision(
        decision_id=decision_id, instrument=BTC, side=Side.BUY, intent=Intent.OPEN,
        reason=DecisionReason.SIGNAL, quantity=0.5, reference_price=50_000.0, max_slippage_bps=50,
        created_at_ns=now, expires_at_ns=now + TTL, market_ts_ns=now,
    )  # fmt: skip


def make_confirmation(seq: int, decision_id: int | None = None) -> ExecutionConfirmation:
    """A FILLED confirmation numbered ``seq`` (answering decision ``seq`` unless told)."""
    return ExecutionConfirmation(
        decision_id=decision_id or seq, seq=seq, instrument=BTC, side=Side.BUY, intent=Intent.OPEN,
        status=Status.FILLED, reject_code=RejectCode.NONE, executed_qty=0.5, avg_price=50_000.0,
        fee=0.0, executed_at_ns=T0,
    )  # fmt: skip


def wire(codec: Codec, msg: Message, now: int) -> Message:
    """``msg`` as the peer sees it: encoded stamped ``now``, then decoded at ``now``."""
    return codec.decode(codec.encode(msg, sent_at_ns=now), now)


def decoded(codec: Codec, datagrams: list[bytes], now: int) -> list[Message]:
    return [codec.decode(d, now) for d in datagrams]


def quiet_brain(codec: Codec, **kw: int) -> BrainLink:
    """A brain whose heartbeat is hourly, so ``get_timer`` shows only retransmits and replays.

    Its first heartbeat (due at once) is sent at ``T0`` and discarded.
    """
    brain = BrainLink(codec, incarnation=BRAIN_INC, heartbeat_interval_ns=HOUR, **kw)
    brain.handle_timer(T0)
    brain.datagrams_to_send()
    return brain


# -- the fake executor application, the network and the pair ----------------------------------


class FakeExecutor:
    """The executor application, reduced to what the link relies on.

    A new decision_id is executed once and gets the next seq; a repeated one is answered with
    its stored confirmation (same seq); a decision first received after its ``expires_at_ns`` is
    answered EXPIRED instead of traded (still once, with its own seq). A replay request re-sends
    the stored confirmations with ``seq >= from_seq``, at most ``REPLAY_BATCH`` of them.
    """

    def __init__(self, link: ExecutorLink) -> None:
        self.link = link
        self.journal: list[ExecutionConfirmation] = []  # journal[seq - 1]
        self.by_decision: dict[int, ExecutionConfirmation] = {}
        self.received: Counter[int] = Counter()  # decision datagrams handled, by decision_id
        self.executed: Counter[int] = Counter()  # first-time handling (trade or EXPIRED), by decision_id
        self.replays_served: list[int] = []

    def on_event(self, event: DecisionReceived | ReplayRequested, now: int) -> None:
        if isinstance(event, DecisionReceived):
            d = event.decision
            self.received[d.decision_id] += 1
            conf = self.by_decision.get(d.decision_id)
            if conf is None:
                conf = self._execute(d, now)
            self.link.send_confirmation(conf, now)
        else:
            self.replays_served.append(event.from_seq)
            start = event.from_seq - 1
            for conf in self.journal[start : start + REPLAY_BATCH]:
                self.link.send_confirmation(conf, now)

    def _execute(self, d: TradeDecision, now: int) -> ExecutionConfirmation:
        seq = len(self.journal) + 1
        self.executed[d.decision_id] += 1
        if now > d.expires_at_ns:
            status, code, qty, price = Status.EXPIRED, RejectCode.EXPIRED, 0.0, 0.0
        else:
            status, code, qty, price = Status.FILLED, RejectCode.NONE, d.quantity, d.reference_price
        conf = ExecutionConfirmation(
            decision_id=d.decision_id, seq=seq, instrument=d.instrument, side=d.side, intent=d.intent,
            status=status, reject_code=code, executed_qty=qty, avg_price=price, fee=0.0,
            executed_at_ns=now,
        )  # fmt: skip
        self.journal.append(conf)
        self.by_decision[d.decision_id] = conf
        return conf


class Network:
    """Seeded in-memory datagram network.

    Each datagram is duplicated with probability ``dup``; each copy is lost with probability
    ``loss``, else delivered after a uniform delay in ``[0, max_delay_ns]``, plus with
    probability ``reorder`` an extra uniform ``[0, reorder_delay_ns]`` (so it overtakes or is
    overtaken). The defaults deliver everything at once, in order.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        loss: float = 0.0,
        dup: float = 0.0,
        reorder: float = 0.0,
        max_delay_ns: int = 0,
        reorder_delay_ns: int = 1 * S,
    ) -> None:
        self.rng = random.Random(seed)
        self.loss, self.dup, self.reorder = loss, dup, reorder
        self.max_delay_ns, self.reorder_delay_ns = max_delay_ns, reorder_delay_ns
        self._queue: list[tuple[int, int, str, bytes]] = []
        self._n = 0
        self.lost = 0
        self.duplicated = 0

    def send(self, to: str, data: bytes, now: int) -> None:
        copies = 1
        if self.rng.random() < self.dup:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            if self.rng.random() < self.loss:
                self.lost += 1
                continue
            delay = self.rng.randint(0, self.max_delay_ns)
            if self.rng.random() < self.reorder:
                delay += self.rng.randint(0, self.reorder_delay_ns)
            self._n += 1
            heapq.heappush(self._queue, (now + delay, self._n, to, data))

    def next_delivery(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now: int) -> list[tuple[str, bytes]]:
        out = []
        while self._queue and self._queue[0][0] <= now:
            _, _, to, data = heapq.heappop(self._queue)
            out.append((to, data))
        return out


Drop = Callable[[str, Message], bool]
"""``drop(to, msg)``: a scripted loss, applied before the network; ``to`` is "brain" or "executor"."""


class Pair:
    """A brain link and an executor link (with :class:`FakeExecutor`) joined by a :class:`Network`.

    Every datagram a link hands out is logged in ``sent`` (at the time, receiver, decoded message,
    bytes), offered to ``drop``, then to the network; every delivered datagram is decoded at the
    delivery time (a :class:`RemoteProtocolError` is counted in ``rejected`` and dropped, as the
    transport does). Confirmations the brain releases are appended to ``released``.
    """

    def __init__(
        self,
        net: Network | None = None,
        *,
        drop: Drop | None = None,
        brain: dict[str, int] | None = None,
        executor: dict[str, int] | None = None,
        now: int = T0,
    ) -> None:
        self.codec = Codec(KEY)
        self.now = now
        self.brain = BrainLink(self.codec, incarnation=BRAIN_INC, **(brain or {}))
        self.executor = ExecutorLink(self.codec, incarnation=EXEC_INC, **(executor or {}))
        self.app = FakeExecutor(self.executor)
        self.net = net or Network()
        self.drop: Drop = drop or (lambda to, msg: False)
        self.sent: list[tuple[int, str, Message, bytes]] = []
        self.released: list[ExecutionConfirmation] = []
        self.released_at: list[int] = []
        self.rejected: list[RemoteProtocolError] = []
        self._steps_at_now = 0

    # -- driving --------------------------------------------------------------------------

    def send_decision(self, decision: TradeDecision) -> bytes:
        data = self.brain.send_decision(decision, self.now)
        self.settle()
        return data

    def settle(self) -> None:
        """Exchange datagrams due at ``now`` until none are left."""
        while True:
            self._flush()
            due = self.net.pop_due(self.now)
            if not due:
                return
            for to, data in due:
                self._deliver(to, data)

    def next_event_ns(self) -> int:
        t = min(self.brain.get_timer(), self.executor.get_timer())
        d = self.net.next_delivery()
        if d is not None:
            t = min(t, d)
        return max(t, self.now)

    def advance_to(self, t: int) -> None:
        """Move the clock to ``t``, fire the timers that are due, exchange what is due."""
        assert t >= self.now
        self._steps_at_now = self._steps_at_now + 1 if t == self.now else 0
        assert self._steps_at_now < 1_000, "livelock: a timer stays due without the clock moving"
        self.now = t
        if t >= self.brain.get_timer():
            self.brain.handle_timer(t)
        if t >= self.executor.get_timer():
            self.executor.handle_timer(t)
        self.settle()

    def step(self) -> None:
        self.advance_to(self.next_event_ns())

    def run_until(self, t_end: int) -> None:
        """Process every event up to and including ``t_end``; the clock ends at ``t_end``."""
        while self.next_event_ns() <= t_end:
            self.step()
        self.advance_to(t_end)

    # -- inspection -----------------------------------------------------------------------

    def sent_to(self, to: str, kind: type) -> list[tuple[int, Message, bytes]]:
        return [(t, m, b) for t, r, m, b in self.sent if r == to and isinstance(m, kind)]

    # -- internals ------------------------------------------------------------------------

    def _flush(self) -> None:
        for to, link in (("executor", self.brain), ("brain", self.executor)):
            for data in link.datagrams_to_send():
                msg = self.codec.decode(data, self.now)  # a link never sends a stale datagram
                self.sent.append((self.now, to, msg, data))
                if not self.drop(to, msg):
                    self.net.send(to, data, self.now)

    def _deliver(self, to: str, data: bytes) -> None:
        try:
            msg = self.codec.decode(data, self.now)
        except RemoteProtocolError as exc:
            self.rejected.append(exc)
            return
        if to == "executor":
            event = self.executor.receive(msg, self.now)
            if event is not None:
                self.app.on_event(event, self.now)
        else:
            for conf in self.brain.receive(msg, self.now):
                self.brain.applied(conf)  # the application journals, applies, then says so
                self.released.append(conf)
                self.released_at.append(self.now)


def n_sent(pair: Pair, to: str, kind: type) -> int:
    return len(pair.sent_to(to, kind))


def is_decision(msg: Message, decision_id: int | None = None) -> bool:
    return isinstance(msg, TradeDecision) and decision_id in (None, msg.decision_id)


# -- 1-4: one decision over the pair ----------------------------------------------------------


def test_happy_path_releases_one_confirmation_without_retransmits() -> None:
    """One decision over a perfect network: one confirmation released, outbox empty, no retransmit."""
    pair = Pair()
    pair.advance_to(T0)
    d = make_decision(1, T0)
    pair.send_decision(d)
    assert [(c.decision_id, c.seq, c.status) for c in pair.released] == [(1, 1, Status.FILLED)]
    assert pair.released_at == [T0]
    assert pair.brain.outbox == {}
    pair.run_until(T0 + 5 * S)
    assert len(pair.released) == 1
    assert pair.brain.stats.retransmits == 0
    assert pair.brain.stats.replay_requests == pair.brain.stats.duplicates == 0
    assert pair.app.received == {1: 1} and pair.app.executed == {1: 1}
    assert pair.brain.expected_seq == 2 and pair.executor.last_seq == 1


def test_lost_decision_is_retransmitted_identically_with_capped_exponential_backoff() -> None:
    """A lost decision is resent byte-identical after 100, 200, 400, 800 ms, then each 1 s, till confirmed."""
    lost = 6

    def drop(to: str, msg: Message) -> bool:  # the first ``lost`` sends of the decision
        return is_decision(msg) and len(pair.sent_to("executor", TradeDecision)) <= lost

    quiet = {"heartbeat_interval_ns": HOUR}
    pair = Pair(drop=drop, brain=quiet, executor=quiet)
    pair.advance_to(T0)
    original = pair.send_decision(make_decision(1, T0))
    expected_timers = [T0 + ms * MS for ms in (100, 300, 700, 1_500, 2_500, 3_500)]
    timers = []
    for _ in range(lost):
        timers.append(pair.brain.get_timer())
        pair.advance_to(timers[-1])
    assert timers == expected_timers
    sends = pair.sent_to("executor", TradeDecision)
    assert [t for t, _, _ in sends] == [T0, *expected_timers]
    assert all(data == original for _, _, data in sends)
    assert pair.brain.stats.retransmits == lost
    assert [c.seq for c in pair.released] == [1]  # the 6th retransmit got through
    assert pair.released_at == [T0 + 3_500 * MS]
    assert pair.brain.outbox == {}
    assert pair.brain.get_timer() == T0 + HOUR  # nothing left to retransmit
    pair.run_until(T0 + 30 * S)
    assert pair.brain.stats.retransmits == lost
    assert len(pair.sent_to("executor", TradeDecision)) == lost + 1


def test_lost_confirmation_is_answered_again_on_decision_retransmit() -> None:
    """A lost confirmation is re-sent with the same seq on the decision's retransmit, and released once."""

    def drop(to: str, msg: Message) -> bool:  # the first confirmation sent
        return isinstance(msg, ExecutionConfirmation) and n_sent(pair, "brain", ExecutionConfirmation) == 1

    pair = Pair(drop=drop)
    pair.advance_to(T0)
    pair.send_decision(make_decision(1, T0))
    assert pair.released == []
    pair.run_until(T0 + 5 * S)
    answers = pair.sent_to("brain", ExecutionConfirmation)
    assert [(t, m.seq, m.decision_id) for t, m, _ in answers] == [(T0, 1, 1), (T0 + 100 * MS, 1, 1)]
    assert [(c.seq, c.decision_id) for c in pair.released] == [(1, 1)]
    assert pair.released_at == [T0 + 100 * MS]  # the retransmit recovered it, not the 500 ms heartbeat
    assert pair.app.received == {1: 2} and pair.app.executed == {1: 1}
    assert pair.executor.last_seq == 1 and pair.brain.outbox == {}
    assert pair.brain.stats.retransmits == 1 and pair.brain.stats.replay_requests == 0


def test_lost_final_confirmation_is_recovered_by_heartbeat_and_replay() -> None:
    """A lost last confirmation is found via the executor heartbeat and replayed; no retransmit needed."""

    def drop(to: str, msg: Message) -> bool:
        if is_decision(msg):  # only the first send of the decision gets through
            return len(pair.sent_to("executor", TradeDecision)) > 1
        return isinstance(msg, ExecutionConfirmation) and n_sent(pair, "brain", ExecutionConfirmation) == 1

    pair = Pair(drop=drop)
    pair.advance_to(T0)
    pair.send_decision(make_decision(1, T0))
    assert pair.executor.last_seq == 1 and pair.released == []
    pair.run_until(T0 + 5 * S)
    assert [(c.seq, c.decision_id) for c in pair.released] == [(1, 1)]
    hb = T0 + 500 * MS  # the executor's next heartbeat says last_seq = 1
    assert pair.released_at == [hb]
    replays = pair.sent_to("executor", ReplayRequest)
    assert [(t, m.from_seq) for t, m, _ in replays] == [(hb, 1)]
    assert pair.app.replays_served == [1]
    assert pair.brain.stats.retransmits >= 2  # the brain did retransmit (at 100 and 300 ms) ...
    assert pair.app.received == {1: 1}  # ... but none of them arrived: the replay alone recovered it
    assert pair.app.executed == {1: 1}
    assert pair.brain.outbox == {} and pair.brain.expected_seq == 2


# -- 5-6: ordering, duplicates, gaps and the reorder window (brain alone) ---------------------


def test_out_of_order_confirmations_release_in_seq_order_and_request_rate_limited_replay() -> None:
    """Seq 3, 2, 1 release nothing until 1, then 1-2-3; duplicates ignored; one replay ask per interval."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)  # no decisions pending, so get_timer shows the replay timer alone
    t = T0 + 10 * MS

    assert brain.receive(wire(codec, make_confirmation(3), t), t) == []
    assert brain.stats.buffered == 1
    assert decoded(codec, brain.datagrams_to_send(), t) == [ReplayRequest(1)]  # gap: ask at once
    assert brain.stats.replay_requests == 1
    assert brain.get_timer() == t + brain.replay_interval_ns  # the next replay request is armed

    assert brain.receive(wire(codec, make_confirmation(3), t + MS), t + MS) == []  # already buffered
    assert brain.stats.duplicates == 1 and brain.stats.buffered == 1
    assert brain.receive(wire(codec, make_confirmation(2), t + 2 * MS), t + 2 * MS) == []
    assert brain.stats.buffered == 2
    assert brain.datagrams_to_send() == []  # rate-limited: still within replay_interval_ns
    assert brain.stats.replay_requests == 1

    brain.handle_timer(t + brain.replay_interval_ns - 1)  # not yet due
    assert brain.datagrams_to_send() == []
    brain.handle_timer(t + brain.replay_interval_ns)
    assert decoded(codec, brain.datagrams_to_send(), t + brain.replay_interval_ns) == [ReplayRequest(1)]
    assert brain.stats.replay_requests == 2

    t1 = t + 300 * MS
    ready = brain.receive(wire(codec, make_confirmation(1), t1), t1)
    assert [c.seq for c in ready] == [1, 2, 3]
    assert brain.expected_seq == 1  # offered, not applied: the application journals first
    for c in ready:
        brain.applied(c)
    assert brain.expected_seq == 4
    assert brain.receive(wire(codec, make_confirmation(2), t1), t1) == []  # already applied
    assert brain.stats.duplicates == 2
    assert brain.get_timer() == T0 + HOUR  # gap closed: no further replay requests
    brain.handle_timer(t1 + 10 * S)
    assert brain.datagrams_to_send() == []
    assert brain.stats.replay_requests == 2


def test_seq_beyond_reorder_window_is_not_buffered_but_triggers_replay() -> None:
    """A confirmation further ahead than reorder_window is dropped (beyond_window) yet asks for a replay."""
    codec = Codec(KEY)
    brain = quiet_brain(codec, reorder_window=4)
    t = T0 + MS
    assert brain.receive(wire(codec, make_confirmation(6), t), t) == []  # 6 - 1 = 5 > 4
    assert brain.stats.beyond_window == 1 and brain.stats.buffered == 0
    assert decoded(codec, brain.datagrams_to_send(), t) == [ReplayRequest(1)]
    assert brain.receive(wire(codec, make_confirmation(5), t), t) == []  # 5 - 1 = 4: inside
    assert brain.stats.buffered == 1 and brain.stats.beyond_window == 1
    ready = brain.receive(wire(codec, make_confirmation(1), t), t)
    assert [c.seq for c in ready] == [1]  # 5 waits for 2..4; 6 was never kept
    brain.applied(ready[0])
    assert brain.expected_seq == 2
    brain.handle_timer(t + brain.replay_interval_ns)
    assert decoded(codec, brain.datagrams_to_send(), t) == [ReplayRequest(2)]  # gap still open


def test_a_confirmation_not_journaled_is_offered_again_and_never_taken_for_a_duplicate() -> None:
    """Journal first, then advance: a confirmation the application could not journal is not applied — the
    expected seq stays, the heartbeat says so, a copy of it is offered again (not counted as applied), and
    applying out of order is refused."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    brain.send_decision(make_decision(1, T0), T0)
    brain.datagrams_to_send()
    t = T0 + MS
    [c1] = brain.receive(wire(codec, make_confirmation(1), t), t)
    # the journal write failed: the application never calls applied(c1)
    assert brain.expected_seq == 1 and 1 in brain.outbox
    brain.handle_timer(t + HOUR)
    beats = [m for m in decoded(codec, brain.datagrams_to_send(), t + HOUR) if isinstance(m, Heartbeat)]
    assert beats and beats[-1].last_seq == 0  # nothing applied is reported
    [again] = brain.receive(wire(codec, make_confirmation(1), t + 2 * MS), t + 2 * MS)
    assert again.seq == 1
    with pytest.raises(ValueError, match="seq 2 applied, seq 1 expected"):
        brain.applied(make_confirmation(2))
    brain.applied(again)
    assert brain.expected_seq == 2 and 1 not in brain.outbox
    assert brain.receive(wire(codec, make_confirmation(1), t + 3 * MS), t + 3 * MS) == []


# -- 7-11: liveness, expiry, abandonment and restarts -----------------------------------------


def test_executor_alive_tracks_silence() -> None:
    """executor_alive is false before any message, true after a heartbeat, false after 3 s of silence."""
    codec = Codec(KEY)
    brain = BrainLink(codec, incarnation=BRAIN_INC)
    assert brain.silence_threshold_ns == 3 * S
    assert not brain.executor_alive(T0)
    t = T0 + 100 * MS
    brain.receive(wire(codec, Heartbeat(Role.EXECUTOR, 0, EXEC_INC), t), t)
    assert brain.executor_alive(t)
    assert brain.executor_alive(t + 3 * S)
    assert not brain.executor_alive(t + 3 * S + 1)
    t2 = t + 4 * S  # any valid executor datagram counts, a confirmation too
    brain.receive(wire(codec, make_confirmation(1), t2), t2)
    assert brain.executor_alive(t2 + 3 * S) and not brain.executor_alive(t2 + 3 * S + 1)


def test_resolve_expired_waits_for_a_later_heartbeat_and_all_confirmations_applied() -> None:
    """A pending decision resolves only on a heartbeat stamped past its expiry whose last_seq is applied."""
    blocked = {"confirmations": False}

    def drop(to: str, msg: Message) -> bool:
        if is_decision(msg, 2) or is_decision(msg, 4):  # never reach the executor
            return True
        return isinstance(msg, ExecutionConfirmation) and blocked["confirmations"]

    pair = Pair(drop=drop)
    brain = pair.brain
    pair.advance_to(T0)
    pair.send_decision(make_decision(1, T0))
    d2 = make_decision(2, T0)
    pair.send_decision(d2)
    assert [c.decision_id for c in pair.released] == [1] and set(brain.outbox) == {2}

    # The executor heartbeats every 500 ms from T0, so one is stamped exactly at d2's expiry.
    while pair.now < d2.expires_at_ns:
        pair.step()
        assert brain.resolve_expired() == []
    assert brain.peer_heartbeat_sent_ns == d2.expires_at_ns
    assert brain.peer_last_seq < brain.expected_seq  # all applied: only the stamp holds it back
    assert brain.resolve_expired() == [] and 2 in brain.outbox

    # Before the next heartbeat, the executor confirms d3 but the confirmation is lost.
    blocked["confirmations"] = True
    pair.advance_to(d2.expires_at_ns + 100 * MS)
    pair.send_decision(make_decision(3, pair.now))
    assert pair.executor.last_seq == 2 and brain.expected_seq == 2
    pair.run_until(d2.expires_at_ns + 2 * S)
    assert brain.peer_heartbeat_sent_ns > d2.expires_at_ns and brain.peer_last_seq == 2
    assert brain.resolve_expired() == []  # seq 2 may answer d2 (it does not; the brain cannot know)
    assert 2 in brain.outbox

    blocked["confirmations"] = False
    d4 = make_decision(4, pair.now)  # pending but not expired: must stay
    pair.send_decision(d4)
    pair.run_until(pair.now + 1 * S)
    assert [c.decision_id for c in pair.released] == [1, 3]
    assert brain.resolve_expired() == [d2]
    assert set(brain.outbox) == {4}
    assert brain.resolve_expired() == []
    assert pair.app.received[2] == 0 and pair.app.executed == {1: 1, 3: 1}


def _executor_beat(last_seq: int, now: int, *, in_flight: int = 0, journal_id: int = 0x51) -> Heartbeat:
    return Heartbeat(Role.EXECUTOR, last_seq, EXEC_INC, in_flight=in_flight, journal_id=journal_id, sent_at_ns=now)


def test_no_resolution_while_the_executor_reports_decisions_in_flight() -> None:
    """A slow venue: the executor still executes d (in_flight 1) when its heartbeat is stamped past d's
    expiry; the brain does not resolve d as never executed until a heartbeat reports nothing in flight."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    d = make_decision(1, T0)
    brain.send_decision(d, T0)
    late = d.expires_at_ns + S
    brain.receive(wire(codec, _executor_beat(0, late, in_flight=1), late), late)
    assert brain.peer_in_flight == 1 and brain.resolve_expired() == [] and 1 in brain.outbox
    brain.receive(wire(codec, _executor_beat(0, late + S, in_flight=0), late + S), late + S)
    assert brain.resolve_expired() == [d] and not brain.outbox


def test_an_older_heartbeat_replayed_does_not_clear_in_flight() -> None:
    """A captured heartbeat with in_flight 0, re-sent after a newer one reporting 1, changes nothing:
    the fields of the latest heartbeat (by its stamp) rule."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    d = make_decision(1, T0)
    brain.send_decision(d, T0)
    t1, t2 = d.expires_at_ns + S, d.expires_at_ns + 2 * S
    old = codec.encode(_executor_beat(0, t1, in_flight=0), sent_at_ns=t1)
    brain.receive(wire(codec, _executor_beat(0, t2, in_flight=1), t2), t2)
    brain.receive(codec.decode(old, t2), t2)
    assert brain.peer_in_flight == 1 and brain.resolve_expired() == []


@pytest.mark.parametrize(
    ("beats", "fault"),
    [
        ([(2, 0x51)], None),  # the same journal, level with what was applied
        ([(3, 0x51)], None),  # ahead: a replay is due, not a fault
        ([(2, 0x52)], "executor journal changed"),  # another journal id
        ([(1, 0x51)], "executor journal went back"),  # last_seq below what the brain applied
        ([(0, 0x77)], "executor journal changed"),  # a wiped journal, new id, seq 0
    ],
    ids=["same", "ahead", "replaced", "rolled-back", "wiped"],
)
def test_journal_fault_detection(beats: list[tuple[int, int]], fault: str | None) -> None:
    """The brain keeps the executor journal's id; another id or a last_seq below the applied one is a
    journal fault, after which nothing is resolved as never executed."""
    codec = Codec(KEY)
    brain = quiet_brain(codec, next_seq=3, executor_journal_id=0x51, applied_by_ns=T0)  # seq 1, 2 applied before
    d = make_decision(9, T0)
    brain.send_decision(d, T0)
    t = d.expires_at_ns + S
    for last_seq, jid in beats:
        brain.receive(wire(codec, _executor_beat(last_seq, t, journal_id=jid), t), t)
    if fault is None:
        assert brain.journal_fault is None
    else:
        assert brain.journal_fault is not None and brain.journal_fault.startswith(fault)
        assert brain.resolve_expired() == [] and 9 in brain.outbox


def test_an_older_heartbeat_delivered_late_is_not_a_journal_fault() -> None:
    """The bus reorders: a heartbeat stamped before the confirmation of seq 1 (so reporting last_seq 0)
    arrives after it. It is older than the evidence that seq 1 was issued, so it proves nothing; a
    heartbeat stamped after that evidence and still reporting 0 is a fault."""
    codec = Codec(KEY)
    brain = quiet_brain(codec, executor_journal_id=0x51)
    d = make_decision(1, T0)
    brain.send_decision(d, T0)
    stale = codec.encode(_executor_beat(0, T0 + 10 * MS), sent_at_ns=T0 + 10 * MS)
    conf = make_confirmation(1)
    for c in brain.receive(wire(codec, conf, T0 + 20 * MS), T0 + 20 * MS):
        brain.applied(c)
    assert brain.expected_seq == 2
    brain.receive(codec.decode(stale, T0 + 30 * MS), T0 + 30 * MS)
    assert brain.journal_fault is None
    brain.receive(wire(codec, _executor_beat(0, T0 + 40 * MS), T0 + 40 * MS), T0 + 40 * MS)
    assert brain.journal_fault is not None and "went back" in brain.journal_fault


def test_first_journal_id_heard_is_kept() -> None:
    """A brain with no executor journal on record adopts the first id heard, then holds it."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    brain.receive(wire(codec, _executor_beat(0, T0, journal_id=0x99), T0), T0)
    assert brain.executor_journal_id == 0x99 and brain.journal_fault is None
    brain.receive(wire(codec, _executor_beat(0, T0 + S, journal_id=0x98), T0 + S), T0 + S)
    assert brain.journal_fault is not None


def test_executor_heartbeat_carries_in_flight_and_journal_id() -> None:
    """ExecutorLink's heartbeats carry the in_flight the application sets and its journal_id."""
    codec = Codec(KEY)
    ex = ExecutorLink(codec, incarnation=EXEC_INC, journal_id=0xABC)
    ex.in_flight = 3
    ex.handle_timer(T0)
    [hb] = decoded(codec, ex.datagrams_to_send(), T0)
    assert isinstance(hb, Heartbeat) and (hb.in_flight, hb.journal_id) == (3, 0xABC)


def test_decision_older_than_max_age_is_abandoned() -> None:
    """Retransmits stop once the datagram is older than codec.max_age_ns (the peer would drop it as stale)."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    d = make_decision(1, T0)
    original = brain.send_decision(d, T0)
    brain.datagrams_to_send()
    times = []
    while brain.get_timer() < T0 + HOUR:
        t = brain.get_timer()
        brain.handle_timer(t)
        for data in brain.datagrams_to_send():
            assert data == original
            assert codec.decode(data, t) == d  # every retransmit is still fresh when sent
            times.append(t)
    assert times[-1] == T0 + 59_500 * MS  # 100, 300, 700, 1500 ms, then every second
    abandoned_at = T0 + 60_500 * MS
    assert brain.stats.abandoned == 1 and brain.stats.retransmits == len(times)
    with pytest.raises(StaleDatagram):
        codec.decode(original, abandoned_at)
    brain.handle_timer(T0 + 10 * HOUR)
    assert [type(m) for m in decoded(codec, brain.datagrams_to_send(), T0 + 10 * HOUR)] == [Heartbeat]
    assert brain.stats.abandoned == 1 and brain.stats.retransmits == len(times)
    assert 1 in brain.outbox  # only a replay or the expiry rule resolves it now


def test_executor_restart_makes_brain_resend_pending_decisions_at_once() -> None:
    """A heartbeat with a new executor incarnation makes pending decisions due now with backoff reset."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    original = brain.send_decision(make_decision(1, T0), T0)
    brain.datagrams_to_send()
    t = T0
    for _ in range(4):  # retransmits at 100, 300, 700, 1500 ms; the next is due at 2.5 s
        t = brain.get_timer()
        brain.handle_timer(t)
    brain.datagrams_to_send()
    assert brain.get_timer() == T0 + 2_500 * MS and brain.outbox[1].backoff_ns == brain.retransmit_max_ns

    t1 = T0 + 1_600 * MS
    brain.receive(wire(codec, Heartbeat(Role.EXECUTOR, 0, EXEC_INC), t1), t1)
    assert brain.stats.peer_restarts == 0  # the first incarnation seen is not a restart
    brain.receive(wire(codec, Heartbeat(Role.EXECUTOR, 0, EXEC_INC), t1 + MS), t1 + MS)
    assert brain.stats.peer_restarts == 0 and brain.get_timer() == T0 + 2_500 * MS

    t2 = T0 + 1_700 * MS
    brain.receive(wire(codec, Heartbeat(Role.EXECUTOR, 0, EXEC_INC + 1), t2), t2)
    assert brain.stats.peer_restarts == 1 and brain.peer_incarnation == EXEC_INC + 1
    assert brain.get_timer() == t2
    assert brain.outbox[1].backoff_ns == brain.retransmit_initial_ns
    brain.handle_timer(t2)
    assert brain.datagrams_to_send() == [original]


def test_executor_heartbeats_carry_the_posture_the_application_sets() -> None:
    """ExecutorLink.posture starts neutral and each heartbeat carries the posture set at its time
    (SPEC §6.4); the brain's own heartbeats carry the neutral posture."""
    codec = Codec(KEY)
    ex = ExecutorLink(codec, incarnation=EXEC_INC, last_seq=2, journal_id=0x51)
    assert ex.posture == Posture()
    ex.handle_timer(T0)
    [hb] = decoded(codec, ex.datagrams_to_send(), T0)
    assert isinstance(hb, Heartbeat) and hb.posture == Posture() and hb.mode is BeliefMode.NONE
    red = Posture(BeliefMode.RED, entries_allowed=False, kill_switch=True, entry_scale_bp=0,
                  entry_cooldown_ms=60_000, max_notional=250.5)  # fmt: skip
    ex.posture = red
    t = ex.get_timer()
    ex.handle_timer(t)
    [hb] = decoded(codec, ex.datagrams_to_send(), t)
    assert isinstance(hb, Heartbeat) and hb.posture == red and (hb.last_seq, hb.journal_id) == (2, 0x51)
    yellow = Posture(BeliefMode.YELLOW, entry_scale_bp=5_000)
    assert ExecutorLink(codec, incarnation=1, posture=yellow).posture is yellow
    brain = BrainLink(codec, incarnation=BRAIN_INC)
    brain.handle_timer(T0)
    [beat] = decoded(codec, brain.datagrams_to_send(), T0)
    assert isinstance(beat, Heartbeat) and beat.role is Role.BRAIN and beat.posture == Posture()


def test_brain_keeps_the_posture_of_the_newest_executor_heartbeat() -> None:
    """BrainLink.executor_posture is None until an executor heartbeat is heeded, then that heartbeat's
    posture; an older heartbeat (late, or a captured one re-sent) cannot roll it back (SPEC §10.4)."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    assert brain.executor_posture is None
    green = Posture(BeliefMode.GREEN, entry_cooldown_ms=15_000)
    orange = Posture(BeliefMode.ORANGE, entries_allowed=False, entry_scale_bp=0, max_notional=500.0)
    t1, t2 = T0 + S, T0 + 2 * S
    old = wire(codec, Heartbeat(Role.EXECUTOR, 0, EXEC_INC, journal_id=0x51, mode=green.mode,
                                entry_cooldown_ms=green.entry_cooldown_ms), t1)  # fmt: skip
    new = wire(codec, Heartbeat(Role.EXECUTOR, 0, EXEC_INC, journal_id=0x51, mode=orange.mode, entries_allowed=False,
                                entry_scale_bp=0, max_notional=500.0), t2)  # fmt: skip
    brain.receive(old, t1)
    assert brain.executor_posture == green
    brain.receive(new, t2)
    assert brain.executor_posture == orange
    brain.receive(old, t2 + MS)  # older than the one heeded: ignored
    assert brain.executor_posture == orange and brain.stats.stale_heartbeats == 1
    brain.receive(new, t2 + 2 * MS)  # the same one again: not newer either
    assert brain.executor_posture == orange and brain.stats.stale_heartbeats == 2


def test_reconciled_confirmation_is_applied_in_seq_order_and_touches_no_decision() -> None:
    """A RECONCILED confirmation (executor-issued id >= 2**63, SPEC §6.2) takes its place in the seq order
    like any other and removes nothing from the outbox: its id is in no decision's space."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    d = make_decision(1, T0)
    brain.send_decision(d, T0)
    adopt = ExecutionConfirmation(
        decision_id=RECONCILE_ID_BASE + 1, seq=1, instrument=BTC, side=Side.BUY, intent=Intent.OPEN,
        status=Status.FILLED, reject_code=RejectCode.NONE, executed_qty=0.25, avg_price=50_000.0, fee=0.0,
        executed_at_ns=T0, reconciled=True,
    )  # fmt: skip
    t = T0 + MS
    [ready] = brain.receive(wire(codec, adopt, t), t)
    assert ready == adopt and ready.reconciled
    brain.applied(ready)
    assert brain.expected_seq == 2 and set(brain.outbox) == {1}
    [answer] = brain.receive(wire(codec, make_confirmation(2, decision_id=1), t), t)
    brain.applied(answer)
    assert brain.expected_seq == 3 and not brain.outbox


def test_executor_heartbeats_new_brain_at_once_and_rate_limits_identical_replays() -> None:
    """A new brain incarnation gets a heartbeat at once; a replay request repeated too soon is ignored."""
    codec = Codec(KEY)
    ex = ExecutorLink(codec, incarnation=EXEC_INC, last_seq=7)
    ex.handle_timer(T0)
    assert decoded(codec, ex.datagrams_to_send(), T0) == [Heartbeat(Role.EXECUTOR, 7, EXEC_INC)]
    assert ex.get_timer() == T0 + 500 * MS

    t = T0 + 10 * MS
    assert ex.receive(wire(codec, Heartbeat(Role.BRAIN, 3, BRAIN_INC), t), t) is None
    [hb] = decoded(codec, ex.datagrams_to_send(), t)
    assert hb == Heartbeat(Role.EXECUTOR, 7, EXEC_INC) and hb.sent_at_ns == t
    assert ex.get_timer() == t + 500 * MS and ex.stats.peer_restarts == 0
    assert ex.brain_applied_seq == 3
    ex.receive(wire(codec, Heartbeat(Role.BRAIN, 3, BRAIN_INC), t + MS), t + MS)
    assert ex.datagrams_to_send() == []  # same incarnation: wait for the timer
    ex.receive(wire(codec, Heartbeat(Role.BRAIN, 0, BRAIN_INC + 1), t + 2 * MS), t + 2 * MS)
    assert decoded(codec, ex.datagrams_to_send(), t) == [Heartbeat(Role.EXECUTOR, 7, EXEC_INC)]
    assert ex.stats.peer_restarts == 1 and ex.brain_incarnation == BRAIN_INC + 1

    r = T0 + S
    gap = ex.replay_min_interval_ns
    a, b = ("127.0.0.1", 1), ("127.0.0.1", 2)
    assert ex.receive(wire(codec, ReplayRequest(5), r), r, a) == ReplayRequested(5)
    assert ex.receive(wire(codec, ReplayRequest(5), r + gap - 1), r + gap - 1, a) is None
    assert ex.receive(wire(codec, ReplayRequest(6), r + gap - 1), r + gap - 1, a) is None  # whatever the from_seq
    assert ex.stats.replays_ignored == 2 and ex.stats.replay_requests == 1
    assert ex.receive(wire(codec, ReplayRequest(6), r + gap - 1), r + gap - 1, b) == ReplayRequested(6)  # another source
    assert ex.receive(wire(codec, ReplayRequest(5), r + gap), r + gap, a) == ReplayRequested(5)
    assert ex.stats.replays_ignored == 2 and ex.stats.replay_requests == 3
    assert ex.last_heard_ns == r + gap


def test_executor_replay_starts_after_what_the_brain_applied_and_has_a_global_budget() -> None:
    """A captured replay request for old confirmations serves only those after the brain's last applied seq
    (nothing once it has caught up); many sources together get at most ``replay_budget_per_s`` a second."""
    codec = Codec(KEY)
    ex = ExecutorLink(codec, incarnation=EXEC_INC, last_seq=100, replay_budget_per_s=10)
    t = T0
    ex.receive(wire(codec, Heartbeat(Role.BRAIN, 90, BRAIN_INC), t), t)
    assert ex.receive(wire(codec, ReplayRequest(3), t + MS), t + MS, "a") == ReplayRequested(91)
    t += S
    ex.receive(wire(codec, Heartbeat(Role.BRAIN, 100, BRAIN_INC), t), t)
    assert ex.receive(wire(codec, ReplayRequest(3), t + MS), t + MS, "b") is None  # nothing new to send
    assert ex.stats.replays_ignored == 1
    ex.last_seq = 200
    t += S
    served = [ex.receive(wire(codec, ReplayRequest(150), t), t, ("127.0.0.1", port)) for port in range(100)]
    assert sum(e is not None for e in served) == 10  # the burst: one second of budget
    later = t + S // 2
    served = [ex.receive(wire(codec, ReplayRequest(150), later), later, ("127.0.0.1", port)) for port in range(100, 200)]
    assert sum(e is not None for e in served) == 5  # refilled at 10 a second


def test_stale_heartbeats_are_ignored_on_both_sides() -> None:
    """A heartbeat not newer than one already heeded — a captured one of an old incarnation re-sent — is
    counted and ignored: no fake restart (the brain would resend its outbox), no applied seq rolled back."""
    codec = Codec(KEY)
    ex = ExecutorLink(codec, incarnation=EXEC_INC)
    old_brain = wire(codec, Heartbeat(Role.BRAIN, 4, BRAIN_INC), T0)
    ex.receive(old_brain, T0)
    ex.receive(wire(codec, Heartbeat(Role.BRAIN, 9, BRAIN_INC + 1), T0 + S), T0 + S)
    assert ex.stats.peer_restarts == 1 and ex.brain_applied_seq == 9
    ex.receive(codec.decode(codec.encode(Heartbeat(Role.BRAIN, 4, BRAIN_INC), sent_at_ns=T0), T0 + S), T0 + S + MS)
    assert ex.stats.peer_restarts == 1 and ex.brain_applied_seq == 9 and ex.brain_incarnation == BRAIN_INC + 1
    assert ex.stats.stale_heartbeats == 1

    brain = BrainLink(codec, incarnation=BRAIN_INC)
    brain.send_decision(make_decision(1, T0), T0)
    old_exec = Heartbeat(Role.EXECUTOR, 0, EXEC_INC, journal_id=7)
    brain.receive(wire(codec, old_exec, T0), T0)
    brain.receive(wire(codec, Heartbeat(Role.EXECUTOR, 0, EXEC_INC + 1, journal_id=7), T0 + S), T0 + S)
    assert brain.stats.peer_restarts == 1
    brain.handle_timer(T0 + S)
    brain.datagrams_to_send()
    brain.receive(wire(codec, old_exec, T0), T0 + S + MS)
    assert brain.stats.peer_restarts == 1 and brain.stats.stale_heartbeats == 1
    assert brain.peer_incarnation == EXEC_INC + 1


# -- 12: direction ----------------------------------------------------------------------------


WRONG_FOR_BRAIN = {
    "decision": make_decision(1, T0),
    "replay_request": ReplayRequest(1),
    "brain_heartbeat": Heartbeat(Role.BRAIN, 0, BRAIN_INC),
}
WRONG_FOR_EXECUTOR = {
    "confirmation": make_confirmation(1),
    "executor_heartbeat": Heartbeat(Role.EXECUTOR, 0, EXEC_INC),
}


@pytest.mark.parametrize("msg", list(WRONG_FOR_BRAIN.values()), ids=list(WRONG_FOR_BRAIN))
def test_brain_rejects_messages_meant_for_the_executor(msg: Message) -> None:
    """BrainLink.receive raises UnexpectedMessage("direction") for an executor-bound message; no change."""
    codec = Codec(KEY)
    brain = BrainLink(codec, incarnation=BRAIN_INC)
    with pytest.raises(UnexpectedMessage) as info:
        brain.receive(wire(codec, msg, T0), T0)
    assert info.value.reason is RejectReason.DIRECTION and info.value.reason.value == "direction"
    assert brain.last_heard_ns is None and brain.peer_incarnation is None and brain.expected_seq == 1
    assert brain.datagrams_to_send() == []


@pytest.mark.parametrize("msg", list(WRONG_FOR_EXECUTOR.values()), ids=list(WRONG_FOR_EXECUTOR))
def test_executor_rejects_messages_meant_for_the_brain(msg: Message) -> None:
    """ExecutorLink.receive raises UnexpectedMessage("direction") for a brain-bound message; no change."""
    codec = Codec(KEY)
    ex = ExecutorLink(codec, incarnation=EXEC_INC)
    with pytest.raises(UnexpectedMessage) as info:
        ex.receive(wire(codec, msg, T0), T0)
    assert info.value.reason is RejectReason.DIRECTION and info.value.reason.value == "direction"
    assert ex.last_heard_ns is None and ex.brain_incarnation is None
    assert ex.datagrams_to_send() == []


# -- 13: properties over a hostile network ----------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
networks = st.builds(
    Network,
    st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.4),
    dup=st.floats(0.0, 0.3),
    reorder=st.floats(0.0, 0.3),
    max_delay_ns=st.integers(0, 300 * MS),
)
SIM_LIMIT_PER_DECISION = 30 * S  # generous: the slowest seeds tried need a few seconds each


def run_decisions(pair: Pair, n: int, in_flight: int) -> None:
    """Send decisions 1..n keeping at most ``in_flight`` unconfirmed, until all are released."""
    deadline = T0 + SIM_LIMIT_PER_DECISION * n
    sent = 0
    pair.advance_to(T0)
    while len(pair.released) < n:
        while sent < n and sent - len(pair.released) < in_flight:
            sent += 1
            pair.send_decision(make_decision(sent, pair.now))
        pair.step()
        assert pair.now <= deadline, f"{len(pair.released)}/{n} released after {(pair.now - T0) / S:.1f} s"
    pair.run_until(pair.now + 5 * S)  # late duplicates and retransmits change nothing


def check_exactly_once(pair: Pair, n: int) -> None:
    assert [c.seq for c in pair.released] == list(range(1, n + 1))
    assert sorted(c.decision_id for c in pair.released) == list(range(1, n + 1))
    assert pair.released == pair.app.journal  # what the executor journaled, in its order
    assert pair.app.executed == {i: 1 for i in range(1, n + 1)}
    assert pair.brain.outbox == {} and pair.brain.expected_seq == n + 1
    assert all(isinstance(exc, StaleDatagram) for exc in pair.rejected)


@PROPERTY
@given(net=networks, n=st.integers(1, 25))
def test_lockstep_decisions_are_confirmed_exactly_once_in_order(net: Network, n: int) -> None:
    """Over a lossy, duplicating, reordering network, lockstep decisions execute and release once in order."""
    pair = Pair(net)
    run_decisions(pair, n, in_flight=1)
    check_exactly_once(pair, n)
    assert [c.decision_id for c in pair.released] == list(range(1, n + 1))  # lockstep: seq i answers i


@PROPERTY
@given(net=networks, n=st.integers(1, 40), in_flight=st.integers(2, 10))
def test_concurrent_decisions_are_confirmed_exactly_once_in_order(
    net: Network, n: int, in_flight: int
) -> None:
    """Over the same network, decisions sent several at a time execute and release once, seqs 1..N."""
    pair = Pair(net)
    run_decisions(pair, n, in_flight=in_flight)
    check_exactly_once(pair, n)


# -- SPEC.md §9 expiry boundary, §10.3 replay rate rule, §10.1 repeats and §10.7 addresses ------


def test_expiry_boundary_is_strict_on_the_brain() -> None:
    """SPEC §9: a heartbeat stamped exactly at ``expires_at_ns`` resolves nothing (a decision received at
    that nanosecond is in time at the executor); one stamped 1 ns later does. A replaying brain stops
    sending once its clock reaches ``expires_at_ns`` (>=), and still sends 1 ns before."""
    codec = Codec(KEY)
    brain = quiet_brain(codec)
    d = make_decision(1, T0)
    brain.send_decision(d, T0)
    brain.datagrams_to_send()
    at = d.expires_at_ns
    brain.receive(wire(codec, _executor_beat(0, at), at), at)
    assert brain.peer_heartbeat_sent_ns == at and brain.resolve_expired() == []
    brain.receive(wire(codec, _executor_beat(0, at + 1), at + 1), at + 1)
    assert brain.resolve_expired() == [d] and not brain.outbox

    replay = BrainLink(codec, incarnation=BRAIN_INC, restamp=True)
    replay.send_decision(make_decision(2, T0), at - 1)
    assert replay.datagrams_to_send() and replay.stats.abandoned == 0
    replay.send_decision(make_decision(3, T0), at)
    assert replay.datagrams_to_send() == [] and replay.stats.abandoned == 1


def test_replay_rate_rule_defaults_and_bounds() -> None:
    """SPEC §10.3, with the reference defaults: 50 ms per (IP, port) source, half-open; a bucket of 40
    tokens refilled at 40 a second; a refused request uses up neither its source's slot nor a token;
    batches of 64."""
    from executor.app import DUPLICATE_ANSWER_INTERVAL_S, REPLAY_BATCH

    assert REPLAY_BATCH == 64 and DUPLICATE_ANSWER_INTERVAL_S == 0.05
    codec = Codec(KEY)
    ex = ExecutorLink(codec, incarnation=EXEC_INC, last_seq=100)
    assert ex.replay_min_interval_ns == 50 * MS and ex.replay_budget_per_s == 40

    def ask(from_seq: int, t: int, port: int, host: str = "127.0.0.1") -> bool:
        return ex.receive(wire(codec, ReplayRequest(from_seq), t), t, (host, port)) is not None

    t = T0
    assert not ask(101, t, 1)  # nothing to send: refused, and it uses up nothing
    assert ask(5, t, 1)  # the same source at once: its slot was not taken
    assert not ask(5, t + 50 * MS - 1, 1)  # [t, t + 50 ms): refused
    assert ask(5, t + 50 * MS - 1, 2) and ask(5, t + 50 * MS - 1, 1, "127.0.0.2")  # other sources
    assert ask(5, t + 50 * MS, 1)  # exactly 50 ms later: served
    assert ex.stats.replay_requests == 4 and ex.stats.replays_ignored == 2

    ex = ExecutorLink(codec, incarnation=EXEC_INC, last_seq=100)
    t = T0 + 10 * S
    assert all(ask(5, t, port) for port in range(1000, 1040))  # burst: 40, full at start
    assert not ask(5, t, 2000)  # the 41st: no token, and its source's slot is not taken
    assert not ask(5, t + 20 * MS, 2001)  # 0.8 of a token (40 a second): not a whole one
    assert ask(5, t + 30 * MS, 2000)  # 1.2 tokens; 2000 was refused 30 ms ago, but never served
    assert not ask(5, t + 30 * MS, 2002)  # 0.2 left
    assert ask(5, t + 55 * MS, 2002) and not ask(5, t + 55 * MS, 2003)  # 1.2 again: one
    assert sum(ask(5, t + 10 * S, p) for p in range(3000, 3100)) == 40  # refilled, capped at 40


def _small_bars(tmp_path: Path) -> Bars:
    from foundation.barcsv import load_bars

    csv = tmp_path / "bars.csv"
    rows = ["timestamp_ms,open,high,low,close,volume"] + [
        f"{T0 // MS + i * 60_000},{100.0 + i},{110.0 + i},{90.0 + i},{100.0 + i},1.0" for i in range(3)
    ]
    csv.write_text("\n".join(rows) + "\n")
    return load_bars(csv)


async def test_executor_answers_repeats_from_the_journal_to_the_configured_address(tmp_path: Path) -> None:
    """SPEC §10.1 and §10.7 on a real executor over loopback UDP: every confirmation goes to the configured
    brain address, never to the decision's source; a repeat that arrives after ``expires_at_ns`` gets the
    stored FILLED confirmation (same seq), not EXPIRED; a repeat with other content is answered from the
    journal and counted as a conflict; a decision first received after its expiry is answered EXPIRED."""
    import asyncio
    import socket
    import time

    from harness import sample

    from testbed.loopback import INSTRUMENT, start_executor

    def udp() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        return sock

    brain_sock, forger = udp(), udp()  # the configured brain address; the decisions' source address
    codec = Codec(KEY)
    executor = await start_executor(tmp_path, _small_bars(tmp_path), codec, brain_sock.getsockname())
    loop = asyncio.get_running_loop()

    async def confirmation(decision_id: int) -> ExecutionConfirmation:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(loop.sock_recv(brain_sock, 2048), deadline - time.monotonic())
            except TimeoutError:
                break
            msg = codec.decode(data, time.time_ns())
            if isinstance(msg, ExecutionConfirmation) and msg.decision_id == decision_id:
                return msg
        raise AssertionError(f"no confirmation of decision {decision_id} at the configured address")

    def decision(decision_id: int, ttl_ns: int, *, qty: float = 0.5, age_ns: int = 0) -> TradeDecision:
        now = time.time_ns() - age_ns
        return TradeDecision(
            decision_id=decision_id, instrument=INSTRUMENT, side=Side.BUY, intent=Intent.OPEN,
            reason=DecisionReason.SIGNAL, quantity=qty, reference_price=100.0, max_slippage_bps=10_000,
            created_at_ns=now, expires_at_ns=now + ttl_ns, market_ts_ns=T0,
        )  # fmt: skip

    try:
        d = decision(1, 300 * MS)
        data = codec.encode(d)
        forger.sendto(data, executor.address)
        first = await confirmation(1)
        assert (first.status, first.seq) == (Status.FILLED, 1)

        await asyncio.sleep((d.expires_at_ns - time.time_ns()) / 1e9 + 0.1)  # past expiry, and > 50 ms
        assert time.time_ns() > d.expires_at_ns
        forger.sendto(data, executor.address)  # the same bytes, still fresh (created < max_age ago)
        again = await confirmation(1)
        assert again == first and again.status is Status.FILLED and again.sent_at_ns > first.sent_at_ns

        await asyncio.sleep(0.1)
        other = dataclasses_replace(d, quantity=2.0)
        forger.sendto(codec.encode(other), executor.address)
        assert await confirmation(1) == first
        assert sample(executor.metrics.conflicts) == 1.0

        late = decision(2, 1 * S, age_ns=2 * S)  # created 2 s ago, expired 1 s ago
        forger.sendto(codec.encode(late), executor.address)
        expired = await confirmation(2)
        assert (expired.status, expired.reject_code, expired.seq) == (Status.EXPIRED, RejectCode.EXPIRED, 2)

        with pytest.raises(BlockingIOError):
            forger.recv(2048)  # nothing was ever sent back to the source address
        assert executor.core.ledger.position(INSTRUMENT) == 0.5  # one execution
    finally:
        executor.close()
        executor.core.close()
        brain_sock.close()
        forger.close()
