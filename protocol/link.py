"""Sans-IO link state machines: exactly-once effect over a lossy, duplicating, reordering bus.

Like aioquic's ``QuicConnection``, each side is fed received messages and timer ticks with the
time passed in, and hands back the datagrams to send; it never touches a socket or a clock.

:class:`BrainLink`
    * keeps every unconfirmed decision in an **outbox** and retransmits the identical datagram
      with exponential backoff (``retransmit_initial_ns`` doubling up to ``retransmit_max_ns``)
      until its confirmation arrives or the datagram is too old to pass the peer's freshness check;
    * releases confirmations strictly in ``seq`` order, buffering out-of-order ones within
      ``reorder_window``; ignores duplicates. **Journal first, then advance**: what
      :meth:`BrainLink.receive` returns is only offered — the application journals and applies
      each confirmation, then calls :meth:`BrainLink.applied`, and only that moves the expected
      ``seq`` on (and is what heartbeats report as applied). A confirmation the application could
      not journal stays buffered and is offered again with the next datagram, so a failed commit
      never turns it into a "duplicate"; on a gap, or when an executor heartbeat reports a
      ``last_seq`` it has not applied, sends a :class:`ReplayRequest` (at most one per
      ``replay_interval_ns``);
    * sends a heartbeat every ``heartbeat_interval_ns`` and tracks when it last heard the executor;
    * decides when an unconfirmed decision can **never** execute: an executor heartbeat stamped
      after the decision's ``expires_at_ns`` that reports nothing in flight (``in_flight`` 0)
      and whose ``last_seq`` the brain has fully applied. The executor journals each decision
      as it arrives and answers anything received after expiry with EXPIRED, so a decision it
      accepted in time is either still executing (counted in ``in_flight`` — a slow venue can
      take longer than the decision's time to live) or confirmed with a seq at most that
      ``last_seq``; both times are read on the executor's clock, so no skew allowance is needed;
    * in a **replay** (``restamp=True``), lets no wall-clock event decide a trade: a decision is not
      resent once its ``expires_at_ns`` has passed (a late copy would be answered ``EXPIRED`` and
      take the id), nothing is resolved as expired, and a decision the executor provably never
      journaled and never can — an executor heartbeat stamped after the decision's
      ``created_at_ns + max_age`` (every copy of it is stale there), reporting nothing in flight,
      with every confirmation applied — is offered by :meth:`BrainLink.restampable`, for the
      application to send again under the **same id** with fresh stamps (SPEC.md §10.1). An
      outage of any length (a full disk, a restart hours later) then ends as if it had not
      happened: the same decisions, the same fills;
    * watches the executor's journal: a heartbeat whose ``journal_id`` differs from the one
      first seen (or given), or whose ``last_seq`` is below what the brain has applied, means the
      executor's journal was replaced or rolled back. The link then records
      :attr:`BrainLink.journal_fault` and stops resolving expired decisions (its proof rests on
      that journal); the application blocks entries and alerts. "Below" is judged on the
      executor's clock: a heartbeat counts only if it is stamped after the executor is known to
      have issued that seq (a confirmation of that seq, or a heartbeat reporting it, stamped
      earlier), since the bus may deliver an older heartbeat late. A brain **without history**
      (``history=False``: its journal holds no decision) that hears an executor reporting
      confirmations issued or decisions in flight is a fault too: the executor knows a history this
      brain does not have — the brain's journal was lost, or the executor belongs to another run —
      and decision ids counted from 1 again would collide with the executor's;
    * heeds an executor heartbeat only if it is stamped later than every one heeded before (a late
      one, or a captured one re-sent, is counted in ``stats.stale_heartbeats`` and ignored): an old
      incarnation's heartbeat re-sent cannot fake a restart, and each restart makes the brain
      resend its outbox at once;
    * keeps the executor's risk posture from the newest heartbeat it heeded
      (:attr:`BrainLink.executor_posture`, ``None`` before the first), for the application to scale
      or suppress entries by (SPEC.md §6.4, since v4); an older heartbeat cannot roll it back.

:class:`ExecutorLink`
    * stamps and sends confirmations, tracking the highest ``seq`` issued;
    * turns received messages into events (a decision to handle, a replay to serve);
    * bounds replay service whatever the requests say (a captured request stays authentic for the
      freshness window and may be re-sent at any rate, from any source, with any ``from_seq``):
      a request is served from ``max(from_seq, brain_applied_seq + 1)`` — confirmations the brain
      has already said it applied are not sent again —, at most once per ``replay_min_interval_ns``
      per source address, and at most ``replay_budget_per_s`` requests a second in all (a token
      bucket); the rest — and a request with nothing to send — are counted in
      ``stats.replays_ignored`` and dropped;
    * heeds a brain heartbeat only if it is stamped later than every one before it, so a
      captured one re-sent cannot roll back what the brain said it applied or fake a restart;
    * sends a heartbeat every ``heartbeat_interval_ns``, and at once when a new brain incarnation
      appears, so a restarted brain learns the executor's ``last_seq`` without waiting; each
      carries the number of decisions in flight (set by the application in
      :attr:`ExecutorLink.in_flight`), the journal's identity, and the executor's risk posture (set
      by the application in :attr:`ExecutorLink.posture`; neutral by default; SPEC.md §6.4).

Errors: :class:`~protocol.errors.UnexpectedMessage` (an authentic message sent to the wrong side).
Defaults are engineering choices for loopback and LAN links: first retransmit after 100 ms (a few
hundred times the loopback round trip), heartbeats every 500 ms, silence after 3 s (six missed
heartbeats).
"""

from __future__ import annotations

from dataclasses import dataclass

from .codec import Codec, Message
from .enums import Role
from .errors import UnexpectedMessage
from .messages import ExecutionConfirmation, Heartbeat, Posture, ReplayRequest, TradeDecision

__all__ = ["BrainLink", "DecisionReceived", "ExecutorLink", "LinkStats", "ReplayRequested"]

_MS = 1_000_000


@dataclass
class LinkStats:
    """Counters a link keeps; the apps export them as metrics."""

    retransmits: int = 0
    replay_requests: int = 0
    duplicates: int = 0
    buffered: int = 0
    beyond_window: int = 0
    heartbeats_sent: int = 0
    peer_restarts: int = 0
    abandoned: int = 0  # decisions whose datagram grew too old to retransmit
    replays_ignored: int = 0  # replay requests not served: nothing after what the brain applied, or over the limit
    stale_heartbeats: int = 0  # authentic heartbeats not newer than one already heard (ignored)


@dataclass(slots=True)
class _Pending:
    decision: TradeDecision
    datagram: bytes
    next_send_ns: int
    backoff_ns: int


class BrainLink:
    """The brain's side of the link; see the module docstring.

    Args:
        codec: bus codec; its ``max_age_ns`` bounds how long a datagram is worth resending.
        incarnation: random per process start, carried in heartbeats.
        next_seq: the next confirmation seq to apply (1 + highest applied, from the journal).
        executor_journal_id: the executor journal this brain's history belongs to (from the
            brain's journal), or 0 to take the first one heard.
        restamp: a replay's rules (module docstring); ``False``: live rules (expiry resolution).
        history: the brain's journal holds decisions; ``False`` for a new journal, which must not
            meet an executor with a history (module docstring).
        applied_by_ns: a time on the executor's clock by which it had issued seq ``next_seq - 1``
            (a restarted brain: when it received that confirmation, plus the allowed clock skew);
            0 = not known, until a confirmation or heartbeat shows it.
    """

    def __init__(
        self,
        codec: Codec,
        *,
        incarnation: int,
        next_seq: int = 1,
        retransmit_initial_ns: int = 100 * _MS,
        retransmit_max_ns: int = 1_000 * _MS,
        heartbeat_interval_ns: int = 500 * _MS,
        silence_threshold_ns: int = 3_000 * _MS,
        replay_interval_ns: int = 250 * _MS,
        reorder_window: int = 1024,
        executor_journal_id: int = 0,
        applied_by_ns: int = 0,
        restamp: bool = False,
        history: bool = True,
    ) -> None:
        self.codec = codec
        self.restamp = restamp
        self.history = history
        self.incarnation = incarnation
        self.expected_seq = next_seq
        self.executor_journal_id = executor_journal_id
        # evidence: the executor had issued seq >= _issued_seq by _issued_by_ns (its clock)
        self._issued_seq = next_seq - 1
        self._issued_by_ns = applied_by_ns if applied_by_ns > 0 else 2**64
        self.journal_fault: str | None = None  # set once: the executor's journal was replaced or rolled back
        self.retransmit_initial_ns = retransmit_initial_ns
        self.retransmit_max_ns = retransmit_max_ns
        self.heartbeat_interval_ns = heartbeat_interval_ns
        self.silence_threshold_ns = silence_threshold_ns
        self.replay_interval_ns = replay_interval_ns
        self.reorder_window = reorder_window
        self.outbox: dict[int, _Pending] = {}
        self.stats = LinkStats()
        self.last_heard_ns: int | None = None
        self.peer_incarnation: int | None = None
        self.peer_last_seq = 0
        self.peer_heartbeat_sent_ns = 0  # executor clock, from its latest heartbeat
        self.peer_in_flight = 0  # from that same heartbeat
        self.executor_posture: Posture | None = None  # from that same heartbeat; None before the first
        self._peer_latest_sent_ns = 0  # executor clock, latest stamp on anything received
        self._buffer: dict[int, ExecutionConfirmation] = {}
        self._need_replay = False
        self._next_replay_ns = 0
        self._next_heartbeat_ns = 0  # due at once
        self._out: list[bytes] = []

    # -- outbound ---------------------------------------------------------------------------

    def send_decision(self, decision: TradeDecision, now_ns: int, datagram: bytes | None = None) -> bytes:
        """Queue a decision (its journaled bytes, if given) and keep it until confirmed; a decision
        with the id of one already in the outbox (re-stamped) replaces it. One that can no longer
        usefully be sent — stale, or in a replay past its expiry (a restarted brain's journaled
        decision) — is kept but not sent (``stats.abandoned``)."""
        data = datagram if datagram is not None else self.codec.encode(decision)
        pending = _Pending(decision, data, now_ns + self.retransmit_initial_ns, self.retransmit_initial_ns)
        self.outbox[decision.decision_id] = pending
        if self._useless(decision, now_ns):
            pending.next_send_ns = 2**63
            self.stats.abandoned += 1
        else:
            self._out.append(data)
        return data

    def _useless(self, decision: TradeDecision, now_ns: int) -> bool:
        """Sending it again cannot help: the executor would drop it as stale, or (a replay) answer
        it ``EXPIRED`` and so spend the id a re-stamp would reuse."""
        return decision.created_at_ns < now_ns - self.codec.max_age_ns or (
            self.restamp and now_ns >= decision.expires_at_ns)

    def datagrams_to_send(self) -> list[bytes]:
        """Everything queued since the last call, in order."""
        out, self._out = self._out, []
        return out

    def get_timer(self) -> int:
        """Wall-clock ns at which :meth:`handle_timer` must next run."""
        t = self._next_heartbeat_ns
        for p in self.outbox.values():
            if p.next_send_ns < t:
                t = p.next_send_ns
        if self._need_replay and self._next_replay_ns < t:
            t = self._next_replay_ns
        return t

    def handle_timer(self, now_ns: int) -> None:
        """Retransmit what is due, send a due heartbeat or replay request."""
        for p in self.outbox.values():
            if p.next_send_ns > now_ns:
                continue
            if self._useless(p.decision, now_ns):
                # Stale at the peer (or, in a replay, expired): only a replay, the expiry rule or a
                # re-stamp resolves it now.
                p.next_send_ns = 2**63
                self.stats.abandoned += 1
                continue
            self._out.append(p.datagram)
            self.stats.retransmits += 1
            p.backoff_ns = min(p.backoff_ns * 2, self.retransmit_max_ns)
            p.next_send_ns = now_ns + p.backoff_ns
        if now_ns >= self._next_heartbeat_ns:
            self._send_heartbeat(now_ns)
        self._maybe_request_replay(now_ns)

    def _send_heartbeat(self, now_ns: int) -> None:
        hb = Heartbeat(Role.BRAIN, self.expected_seq - 1, self.incarnation, in_flight=min(len(self.outbox), 2**32 - 1))
        self._out.append(self.codec.encode(hb, sent_at_ns=now_ns))
        self.stats.heartbeats_sent += 1
        self._next_heartbeat_ns = now_ns + self.heartbeat_interval_ns

    def _maybe_request_replay(self, now_ns: int) -> None:
        if self._need_replay and now_ns >= self._next_replay_ns:
            self._out.append(self.codec.encode(ReplayRequest(self.expected_seq), sent_at_ns=now_ns))
            self.stats.replay_requests += 1
            self._next_replay_ns = now_ns + self.replay_interval_ns

    # -- inbound ----------------------------------------------------------------------------

    def receive(self, msg: Message, now_ns: int, source: object = None) -> list[ExecutionConfirmation]:
        """Feed one authentic message (``source``, its sender's address, is not used on this side);
        returns the confirmations ready to apply, in seq order: the run of buffered ones from the
        expected seq. Each must be journaled, applied and then passed to :meth:`applied`, in order;
        one not passed is offered again by the next call.

        Raises:
            UnexpectedMessage: a decision, a replay request or a brain heartbeat.
        """
        if isinstance(msg, ExecutionConfirmation):
            self._heard(msg.sent_at_ns, now_ns)
            return self._on_confirmation(msg, now_ns)
        if isinstance(msg, Heartbeat) and msg.role is Role.EXECUTOR:
            self._heard(msg.sent_at_ns, now_ns)
            self._on_heartbeat(msg, now_ns)
            return []
        raise UnexpectedMessage(f"{type(msg).__name__} is not for the brain")

    def _heard(self, sent_at_ns: int, now_ns: int) -> None:
        """Liveness counts only datagrams stamped later than any seen before: a captured datagram
        re-sent within the freshness window must not hide a silent executor."""
        if sent_at_ns > self._peer_latest_sent_ns:
            self._peer_latest_sent_ns = sent_at_ns
            self.last_heard_ns = now_ns

    def _on_heartbeat(self, hb: Heartbeat, now_ns: int) -> None:
        if hb.sent_at_ns <= self.peer_heartbeat_sent_ns:
            # not newer than one already heeded: a late delivery, or a captured one re-sent (which
            # must not fake an executor restart — each would make the brain resend its outbox)
            self.stats.stale_heartbeats += 1
            return
        if self.peer_incarnation is not None and hb.incarnation != self.peer_incarnation:
            self.stats.peer_restarts += 1
            for p in self.outbox.values():  # the executor restarted: resend without waiting
                if p.next_send_ns != 2**63:
                    p.next_send_ns = now_ns
                    p.backoff_ns = self.retransmit_initial_ns
        self.peer_incarnation = hb.incarnation
        self._check_journal(hb)
        self.peer_heartbeat_sent_ns = hb.sent_at_ns
        self.peer_in_flight = hb.in_flight
        self.executor_posture = hb.posture
        self.peer_last_seq = max(self.peer_last_seq, hb.last_seq)
        if hb.last_seq >= self.expected_seq:
            self._need_replay = True  # a confirmation we have not applied exists
            self._maybe_request_replay(now_ns)

    def _check_journal(self, hb: Heartbeat) -> None:
        """Record a :attr:`journal_fault` when the executor's journal is not the one this brain's
        history was confirmed by (another ``journal_id``), or went back (``last_seq`` below what
        was applied: a wiped, restored or rolled-back journal)."""
        if self.journal_fault is not None:
            return
        if not self.history and self.executor_journal_id == 0 and (hb.last_seq > 0 or hb.in_flight > 0):
            self.journal_fault = (f"the executor (journal id {hb.journal_id:016x}) has issued {hb.last_seq} confirmations"
                                  f" and has {hb.in_flight} decisions in flight, and this brain's journal holds none:"
                                  " the brain's journal was lost, or the executor belongs to another run; its"
                                  " decision ids would collide with the executor's history")  # fmt: skip
            return
        if self.executor_journal_id == 0:
            self.executor_journal_id = hb.journal_id
        if hb.journal_id != self.executor_journal_id:
            self.journal_fault = (f"executor journal changed: id {self.executor_journal_id:016x} -> {hb.journal_id:016x}"
                                  f" (its last_seq {hb.last_seq}, applied here {self.expected_seq - 1})")  # fmt: skip
        elif hb.last_seq < self._issued_seq and hb.sent_at_ns > self._issued_by_ns:
            self.journal_fault = (f"executor journal went back: its last_seq {hb.last_seq} < {self._issued_seq}"
                                  f" issued before (applied here {self.expected_seq - 1}, journal id"
                                  f" {hb.journal_id:016x})")  # fmt: skip
        else:
            self._saw_issued(hb.last_seq, hb.sent_at_ns)

    def _saw_issued(self, seq: int, sent_at_ns: int) -> None:
        """Evidence that the executor had issued ``seq`` by ``sent_at_ns`` (its clock)."""
        if seq > self._issued_seq:
            self._issued_seq, self._issued_by_ns = seq, sent_at_ns
        elif seq == self._issued_seq and sent_at_ns < self._issued_by_ns:
            self._issued_by_ns = sent_at_ns

    def _on_confirmation(self, conf: ExecutionConfirmation, now_ns: int) -> list[ExecutionConfirmation]:
        seq = conf.seq
        self._saw_issued(seq, conf.sent_at_ns)
        if seq < self.expected_seq or seq in self._buffer:
            self.stats.duplicates += 1
            return self._ready()
        if seq > self.expected_seq:
            if seq - self.expected_seq <= self.reorder_window:
                self._buffer[seq] = conf
                self.stats.buffered += 1
            else:
                self.stats.beyond_window += 1
            self._need_replay = True
            self._maybe_request_replay(now_ns)
            return self._ready()
        self._buffer[seq] = conf
        return self._ready()

    def _ready(self) -> list[ExecutionConfirmation]:
        """The buffered run from the expected seq (not yet applied)."""
        out, seq = [], self.expected_seq
        while seq in self._buffer:
            out.append(self._buffer[seq])
            seq += 1
        return out

    def applied(self, conf: ExecutionConfirmation) -> None:
        """``conf`` — the next one :meth:`receive` offered — is journaled and applied: move on.

        Raises:
            ValueError: ``conf`` is not the confirmation of the expected seq (applied out of order).
        """
        if self._buffer.get(conf.seq) is not conf or conf.seq != self.expected_seq:
            raise ValueError(f"confirmation seq {conf.seq} applied, seq {self.expected_seq} expected")
        del self._buffer[conf.seq]
        self.expected_seq += 1
        self.outbox.pop(conf.decision_id, None)
        self.peer_last_seq = max(self.peer_last_seq, self.expected_seq - 1)
        if not self._buffer and self.peer_last_seq < self.expected_seq:
            self._need_replay = False

    # -- state ------------------------------------------------------------------------------

    def executor_alive(self, now_ns: int) -> bool:
        """Heard a valid datagram from the executor within ``silence_threshold_ns``."""
        return self.last_heard_ns is not None and now_ns - self.last_heard_ns <= self.silence_threshold_ns

    def resolve_expired(self) -> list[TradeDecision]:
        """Remove and return unconfirmed decisions that can no longer execute (module docstring).

        Nothing is resolved while confirmations are outstanding, while the latest executor
        heartbeat reports decisions in flight, after a :attr:`journal_fault` — or in a replay
        (``restamp``), where expiry decides nothing (:meth:`restampable` instead)."""
        if self.journal_fault is not None or self.peer_in_flight or self.restamp:
            return []
        if self._buffer or self.peer_last_seq >= self.expected_seq:
            return []  # confirmations outstanding: one of them may answer a pending decision
        done = [p.decision for p in self.outbox.values() if self.peer_heartbeat_sent_ns > p.decision.expires_at_ns]
        for d in done:
            del self.outbox[d.decision_id]
        return done

    def restampable(self) -> list[TradeDecision]:
        """Decisions the executor provably never journaled and never can (module docstring), for a
        replay to send again under the same id with fresh stamps (:meth:`send_decision` replaces
        each); they stay in the outbox until then. Empty unless ``restamp``.

        The proof rests on an executor heartbeat stamped after ``created_at_ns + max_age`` (every
        copy stale at the executor from then on, on its own clock), reporting 0 in flight, with
        every confirmation up to its ``last_seq`` applied here: a copy the executor had journaled
        would be in flight or confirmed by then. It assumes the executor's ``max_age`` is at most
        the brain's (both read ``TANDEM_MAX_AGE_S``)."""
        if not self.restamp or self.journal_fault is not None or self.peer_in_flight:
            return []
        if self._buffer or self.peer_last_seq >= self.expected_seq:
            return []
        horizon = self.peer_heartbeat_sent_ns - self.codec.max_age_ns
        return [p.decision for p in self.outbox.values() if p.decision.created_at_ns < horizon]


@dataclass(frozen=True, slots=True)
class DecisionReceived:
    decision: TradeDecision


@dataclass(frozen=True, slots=True)
class ReplayRequested:
    from_seq: int


class ExecutorLink:
    """The executor's side of the link; see the module docstring.

    Args:
        codec: bus codec.
        incarnation: random per process start, carried in heartbeats.
        last_seq: highest confirmation seq already issued (from the journal).
        journal_id: the journal's identity, carried in heartbeats (0 = no journal).
        posture: the risk posture its heartbeats carry (default: the neutral :class:`Posture`, mode
            ``NONE``); the application replaces :attr:`posture` as its belief controller moves.
        replay_min_interval_ns: a replay request from the same source (host, port) within this
            interval of the last one served to it is ignored, whatever its ``from_seq`` (a captured
            request re-sent in a burst cannot make the executor amplify it); SPEC.md §10.3.
    """

    def __init__(
        self,
        codec: Codec,
        *,
        incarnation: int,
        last_seq: int = 0,
        heartbeat_interval_ns: int = 500 * _MS,
        replay_min_interval_ns: int = 50 * _MS,
        replay_budget_per_s: float = 40.0,
        journal_id: int = 0,
        posture: Posture | None = None,
    ) -> None:
        self.codec = codec
        self.incarnation = incarnation
        self.last_seq = last_seq
        self.journal_id = journal_id
        self.in_flight = 0  # decisions journaled and not yet confirmed; the application keeps it current
        self.posture = posture or Posture()  # carried from the next heartbeat on; the application updates it
        self.heartbeat_interval_ns = heartbeat_interval_ns
        self.replay_min_interval_ns = replay_min_interval_ns
        self.replay_budget_per_s = replay_budget_per_s
        self.stats = LinkStats()
        self.brain_incarnation: int | None = None
        self.brain_applied_seq = 0
        self.last_heard_ns: int | None = None
        self._brain_latest_sent_ns = 0  # brain clock, the newest heartbeat heeded
        self._replayed_to: dict[object, int] = {}  # source -> when a replay was last served to it
        self._tokens = replay_budget_per_s
        self._tokens_at: int | None = None
        self._next_heartbeat_ns = 0
        self._out: list[bytes] = []

    def send_confirmation(self, conf: ExecutionConfirmation, now_ns: int) -> None:
        """Stamp and queue a confirmation (new, duplicate-answer or replayed)."""
        if conf.seq > self.last_seq:
            self.last_seq = conf.seq
        self._out.append(self.codec.encode(conf, sent_at_ns=now_ns))

    def datagrams_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> int:
        return self._next_heartbeat_ns

    def handle_timer(self, now_ns: int) -> None:
        if now_ns >= self._next_heartbeat_ns:
            self._send_heartbeat(now_ns)

    def _send_heartbeat(self, now_ns: int) -> None:
        p = self.posture
        hb = Heartbeat(Role.EXECUTOR, self.last_seq, self.incarnation, in_flight=self.in_flight,
                       journal_id=self.journal_id, mode=p.mode, entries_allowed=p.entries_allowed,
                       kill_switch=p.kill_switch, entry_scale_bp=p.entry_scale_bp,
                       entry_cooldown_ms=p.entry_cooldown_ms, max_notional=p.max_notional)  # fmt: skip
        self._out.append(self.codec.encode(hb, sent_at_ns=now_ns))
        self.stats.heartbeats_sent += 1
        self._next_heartbeat_ns = now_ns + self.heartbeat_interval_ns

    def receive(self, msg: Message, now_ns: int, source: object = None) -> DecisionReceived | ReplayRequested | None:
        """Feed one authentic message from ``source`` (the datagram's source address, used only to
        share out replay service); returns what the application must do, if anything.

        Raises:
            UnexpectedMessage: a confirmation or an executor heartbeat.
        """
        if isinstance(msg, TradeDecision):
            self.last_heard_ns = now_ns
            return DecisionReceived(msg)
        if isinstance(msg, ReplayRequest):
            self.last_heard_ns = now_ns
            from_seq = max(msg.from_seq, self.brain_applied_seq + 1)
            if from_seq > self.last_seq or not self._replay_allowed(source, now_ns):
                self.stats.replays_ignored += 1
                return None
            self.stats.replay_requests += 1
            return ReplayRequested(from_seq)
        if isinstance(msg, Heartbeat) and msg.role is Role.BRAIN:
            self.last_heard_ns = now_ns
            if msg.sent_at_ns <= self._brain_latest_sent_ns:
                self.stats.stale_heartbeats += 1
                return None
            self._brain_latest_sent_ns = msg.sent_at_ns
            if msg.incarnation != self.brain_incarnation:
                if self.brain_incarnation is not None:
                    self.stats.peer_restarts += 1
                self.brain_incarnation = msg.incarnation
                self._send_heartbeat(now_ns)  # tell a new brain our last_seq right away
            self.brain_applied_seq = msg.last_seq  # the newest word of the current incarnation
            return None
        raise UnexpectedMessage(f"{type(msg).__name__} is not for the executor")

    def _replay_allowed(self, source: object, now_ns: int) -> bool:
        """The per-source interval and the global token bucket (both consumed only on success)."""
        last = self._replayed_to.get(source)
        if last is not None and now_ns - last < self.replay_min_interval_ns:
            return False
        if self._tokens_at is not None:
            refill = (now_ns - self._tokens_at) / 1e9 * self.replay_budget_per_s
            self._tokens = min(self.replay_budget_per_s, self._tokens + max(0.0, refill))
        self._tokens_at = now_ns
        if self._tokens < 1:
            return False
        self._tokens -= 1
        if len(self._replayed_to) >= 1024:  # many sources: forget them (the bucket still bounds the total)
            self._replayed_to.clear()
        self._replayed_to[source] = now_ns
        return True

