"""The belief controller: belief debt in, entry guards out. It gates entries only.

Issue #14 ("Reconcile with the venue, belief debt, and a belief controller that gates entries only").
:class:`BeliefController` turns each cycle's :class:`~executor.belief.DebtAggregates` into a
:class:`Mode` and the :class:`GuardKnobs` of that mode:

* **up** needs persistence: the score must stay at or above a mode's up threshold for
  ``persistence_s`` (it may jump several modes at once);
* **a growth burst** (``growth_per_min >= burst_per_min``) trips RED at once, even at low absolute debt;
* **down** needs a lower threshold held for ``recovery_s`` since the mode was entered, one mode at a
  time — no flapping;
* **RED latches the kill switch**: the reported mode stays RED and no entry passes until the operator's
  :meth:`BeliefController.clear_kill_switch`; meanwhile the controller keeps following the debt
  underneath (:attr:`BeliefController.debt_mode`), and after the clear the mode is that one (RED itself
  becomes ORANGE: entries stay off, and RED comes back only after a fresh persistence window or a burst).

Exits and protection keep working in every mode (DESIGN.md invariant 3): :func:`admit_entry`, the
backstop the executor enforces, approves any intent other than OPEN whatever the knobs say;
:func:`scale_entry` is the brain's side of the same knobs.

No I/O, no clock, no logging, no event loop (an import-linter contract in ``pyproject.toml`` holds it):
times are Unix ns passed in by the caller. Refusals are values (:class:`Denied`); :class:`ValueError`
is raised only for a caller's error (bad rules or knobs, time going backwards).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from protocol import Intent

from .belief import DebtAggregates

__all__ = [
    "DEFAULT_KNOBS",
    "HISTORY_LEN",
    "Approved",
    "BeliefController",
    "Cause",
    "ControllerRules",
    "ControllerState",
    "Denied",
    "EntryGuard",
    "GuardKnobs",
    "Mode",
    "Transition",
    "admit_entry",
    "scale_entry",
]

_NS_PER_S = 1_000_000_000
HISTORY_LEN = 256
"""Transitions kept in :attr:`BeliefController.history` (the newest; older ones have been logged)."""


class Mode(enum.IntEnum):
    """How much the executor trusts its belief; the numbers are the wire's ``BeliefMode``."""

    GREEN = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4


@dataclass(frozen=True, slots=True)
class GuardKnobs:
    """What one mode allows entries to do (exits are never gated).

    Attributes:
        mode: the mode these knobs belong to.
        allow_entries: OPEN decisions may be placed at all.
        entry_scale: multiplier on an entry's size, 0..1.
        max_notional: most quote currency one entry may be worth; ``math.inf``: no cap.
        entry_cooldown_s: least time between two entries in one instrument, seconds.
        max_open_orders_per_instrument: an entry is refused while the instrument has this many orders
            open (its protective stop not counted: PROTECT is never gated).
        kill_switch: latched by RED; no entry passes until the operator clears it.

    Raises:
        ValueError: a knob out of range, or a kill switch that allows entries.
    """

    mode: Mode
    allow_entries: bool
    entry_scale: float
    max_notional: float
    entry_cooldown_s: float
    max_open_orders_per_instrument: int
    kill_switch: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.entry_scale <= 1.0:
            raise ValueError(f"entry_scale must be in [0, 1], got {self.entry_scale!r}")
        if not self.max_notional >= 0.0 or not self.entry_cooldown_s >= 0.0:  # NaN fails too
            raise ValueError("max_notional and entry_cooldown_s must be >= 0")
        if self.max_open_orders_per_instrument < 0:
            raise ValueError("max_open_orders_per_instrument must be >= 0")
        if self.kill_switch and self.allow_entries:
            raise ValueError("the kill switch allows no entries")

    def at_least_as_strict_as(self, other: GuardKnobs) -> bool:
        """Every knob allows no more exposure than ``other``'s (the mode itself is not compared)."""
        return (
            self.allow_entries <= other.allow_entries
            and self.entry_scale <= other.entry_scale
            and self.max_notional <= other.max_notional
            and self.entry_cooldown_s >= other.entry_cooldown_s
            and self.max_open_orders_per_instrument <= other.max_open_orders_per_instrument
            and self.kill_switch >= other.kill_switch
        )


DEFAULT_KNOBS = (
    GuardKnobs(Mode.GREEN, True, 1.0, math.inf, 0.0, 2),
    GuardKnobs(Mode.YELLOW, True, 0.5, math.inf, 60.0, 1),
    GuardKnobs(Mode.ORANGE, False, 0.0, 0.0, 60.0, 0),
    GuardKnobs(Mode.RED, False, 0.0, 0.0, 60.0, 0, kill_switch=True),
)
"""The knob table, GREEN to RED (see :class:`ControllerRules`).

* GREEN: entries at full size, no notional cap (the brain's sizing and breakers bound them), no
  cooldown, 2 open orders per instrument: one entry may still be working (a LIMIT_IOC lives up to
  ``fill_timeout_s``) while the next is placed, but a loop of entries whose fills the ledger misses
  stops at two.
* YELLOW: half size (half the exposure built on a belief that may be wrong), a 60 s cooldown (about six
  reconcile cycles: each entry is reconciled before the next in the same instrument), one open order.
  No notional cap by default: a fixed quote-currency cap means nothing without the account's size; the
  app may set one.
* ORANGE: no entries. RED: no entries and the kill switch. Their scale, cap and order count are 0 and
  their cooldown is YELLOW's, so that each row is at least as strict as the one before it in every
  knob (checked by :class:`ControllerRules`).
"""


@dataclass(frozen=True, slots=True)
class ControllerRules:
    """Thresholds on the debt score, windows, and the knob table.

    Scores are :meth:`~executor.belief.DebtRules.score` with the default weights and a reconcile cycle
    of about 10 s. One mismatch that stays unresolved scores ``0.5 + t/60 + 0.1 × t/10`` after ``t``
    seconds: it reaches YELLOW after about 50 s, ORANGE after about 2 min and RED (the kill switch) after
    about 4 min, each including the 30 s persistence window; a mismatch resolved within about 40 s (a
    fill racing the reconcile fetch) never leaves GREEN. A venue whose evidence cannot be fetched scores
    ``0.1 + 0.027 × t``: YELLOW after about 70 s, RED after about 4.5 min.

    Attributes:
        up: score at or above which YELLOW, ORANGE, RED are called for: 1 (a minute of debt, or two
            instruments wrong), 3 (about 90 s of one stuck mismatch), 6 (about 3.5 min of it, or twelve
            instruments wrong at once).
        down: score below which YELLOW, ORANGE, RED are left: 60 % of ``up`` (0.6, 1.8, 3.6). A clean
            cycle drops the score to 0, so a repaired book falls far below these; the 40 % band absorbs the
            score's wobble from cycle to cycle.
        persistence_s: how long the score must stay at or above an up threshold to go up: 30 s, three
            cycles (a race between a fill and a fetch normally clears in one or two).
        recovery_s: how long the score must stay below the current mode's down threshold, since that mode
            was entered, to go down one mode: 120 s, four times ``persistence_s`` (raising pressure late
            costs more than lowering it late: staying cautious costs only smaller or missed entries).
        burst_per_min: score growth per minute that trips RED at once: 9. One stuck mismatch grows about
            1.6/min (1/min of age, 0.6/min of streak at the 10 s cycle); two instruments going wrong in one
            cycle grow 6.6/min; three or more (1.6 in a cycle, 9.6/min) trip — a spread that points at
            something trading the account behind the ledger's back, or a bug, not a race. ``math.inf``
            disables it.
        knobs: the knob table, GREEN to RED (:data:`DEFAULT_KNOBS`).

    Raises:
        ValueError: thresholds not increasing, a down threshold not in (0, its up threshold), a negative
            window or burst, or a knob table out of order (a row for another mode, a kill switch anywhere
            but RED, a row more permissive than the one before it).
    """

    up: tuple[float, float, float] = (1.0, 3.0, 6.0)
    down: tuple[float, float, float] = (0.6, 1.8, 3.6)
    persistence_s: float = 30.0
    recovery_s: float = 120.0
    burst_per_min: float = 9.0
    knobs: tuple[GuardKnobs, GuardKnobs, GuardKnobs, GuardKnobs] = DEFAULT_KNOBS

    def __post_init__(self) -> None:
        if len(self.up) != 3 or len(self.down) != 3:
            raise ValueError("up and down hold the thresholds of YELLOW, ORANGE and RED")
        if not all(a < b for a, b in pairwise(self.up)):
            raise ValueError(f"up thresholds must increase, got {self.up}")
        if not all(0 < d < u for d, u in zip(self.down, self.up, strict=True)):
            raise ValueError(f"each down threshold must be in (0, its up threshold), got {self.down}")
        if not (self.persistence_s >= 0 and self.recovery_s >= 0 and self.burst_per_min > 0):
            raise ValueError("persistence_s and recovery_s must be >= 0, burst_per_min > 0")
        if [k.mode for k in self.knobs] != list(Mode):
            raise ValueError("knobs must hold one row per mode, GREEN to RED")
        if [k.kill_switch for k in self.knobs] != [False, False, False, True]:
            raise ValueError("only RED's knobs carry the kill switch")
        if not all(b.at_least_as_strict_as(a) for a, b in pairwise(self.knobs)):
            raise ValueError("each mode's knobs must be at least as strict as the mode's below it")

    def up_threshold(self, mode: Mode) -> float:
        """The score at or above which ``mode`` (YELLOW..RED) is called for."""
        return self.up[mode - Mode.YELLOW]

    def down_threshold(self, mode: Mode) -> float:
        """The score below which ``mode`` (YELLOW..RED) is left."""
        return self.down[mode - Mode.YELLOW]

    def knobs_for(self, mode: Mode) -> GuardKnobs:
        """The knob table's row of ``mode``."""
        return self.knobs[mode - Mode.GREEN]


class Cause(enum.StrEnum):
    """Why the mode changed."""

    PERSISTENCE = "persistence"
    BURST = "burst"
    RECOVERY = "recovery"
    CLEARED = "cleared"
    """The operator cleared the kill switch."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of the reported mode, for logs and tests.

    Attributes:
        at_ns: when, Unix ns.
        before: the mode left.
        after: the mode entered.
        cause: why.
        detail: the figures, human-readable.
    """

    at_ns: int
    before: Mode
    after: Mode
    cause: Cause
    detail: str


@dataclass(frozen=True, slots=True)
class ControllerState:
    """What the app journals so a restart keeps the mode and the latched kill switch.

    Attributes:
        mode: the mode the debt holds (:attr:`BeliefController.debt_mode`; under the latch the reported
            mode is RED).
        kill_switch: the latch.

    Raises:
        ValueError: RED without the kill switch (RED always latches it).
    """

    mode: Mode
    kill_switch: bool

    def __post_init__(self) -> None:
        if self.mode is Mode.RED and not self.kill_switch:
            raise ValueError("RED always latches the kill switch")

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict: ``{"mode": int, "kill_switch": bool}``."""
        return {"mode": int(self.mode), "kill_switch": self.kill_switch}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ControllerState:
        """The state :meth:`as_dict` wrote.

        Raises:
            ValueError: an unknown mode or a RED without the kill switch.
            KeyError: a key missing.
        """
        return cls(Mode(int(d["mode"])), bool(d["kill_switch"]))


@dataclass(slots=True)
class _Timers:
    """Per threshold (YELLOW, ORANGE, RED): since when the score has been continuously at or above the up
    threshold, and continuously below the down one, Unix ns; ``None`` while it is not."""

    above: list[int | None] = field(default_factory=lambda: [None, None, None])
    below: list[int | None] = field(default_factory=lambda: [None, None, None])


class BeliefController:
    """Debt aggregates in, :class:`GuardKnobs` out (see the module docstring for the rules).

    Args:
        rules: thresholds, windows and the knob table.
        mode: the mode the debt holds at the start (a restored :attr:`ControllerState.mode`).
        kill_switch: the latch at the start.

    Raises:
        ValueError: RED without the kill switch.
    """

    def __init__(
        self, rules: ControllerRules | None = None, *, mode: Mode = Mode.GREEN, kill_switch: bool = False
    ) -> None:
        mode = Mode(mode)
        ControllerState(mode, kill_switch)  # validates
        self.rules = rules if rules is not None else ControllerRules()
        self._mode = mode
        self._latched = kill_switch
        self._entered_ns: int | None = None  # a restored mode counts as entered at the first update
        self._last_ns: int | None = None
        self._timers = _Timers()
        self._history: deque[Transition] = deque(maxlen=HISTORY_LEN)

    @classmethod
    def from_state(cls, state: ControllerState, rules: ControllerRules | None = None) -> BeliefController:
        """A controller restored from the journal: its mode and latch, with fresh windows (leaving the
        mode needs a full recovery window of evidence after the restart)."""
        return cls(rules, mode=state.mode, kill_switch=state.kill_switch)

    def state(self) -> ControllerState:
        """What to journal."""
        return ControllerState(self._mode, self._latched)

    @property
    def mode(self) -> Mode:
        """The reported mode: RED while the kill switch is latched, else :attr:`debt_mode`."""
        return Mode.RED if self._latched else self._mode

    @property
    def debt_mode(self) -> Mode:
        """The mode the debt holds under the rules, latch aside (what a clear returns to)."""
        return self._mode

    @property
    def kill_switch(self) -> bool:
        """Latched by RED until :meth:`clear_kill_switch`."""
        return self._latched

    @property
    def knobs(self) -> GuardKnobs:
        """The reported mode's knobs."""
        return self.rules.knobs_for(self.mode)

    @property
    def history(self) -> tuple[Transition, ...]:
        """The last :data:`HISTORY_LEN` changes of the reported mode, oldest first."""
        return tuple(self._history)

    def update(self, agg: DebtAggregates, now_ns: int) -> GuardKnobs:
        """Feed one reconcile cycle's aggregates at ``now_ns`` (Unix ns); returns the knobs now in force.

        Raises:
            ValueError: ``now_ns`` earlier than the previous call's.
        """
        self._tick(now_ns)
        if self._entered_ns is None:
            self._entered_ns = now_ns
        rules, score, t = self.rules, agg.score, self._timers
        for i, (up, down) in enumerate(zip(rules.up, rules.down, strict=True)):
            t.above[i] = (now_ns if t.above[i] is None else t.above[i]) if score >= up else None
            t.below[i] = (now_ns if t.below[i] is None else t.below[i]) if score < down else None

        if agg.growth_per_min >= rules.burst_per_min:
            growth = agg.growth_per_min
            detail = f"score growth {growth:.3g}/min >= {rules.burst_per_min:g}/min (score {score:.3g})"
            self._go(Mode.RED, now_ns, Cause.BURST, detail)  # in RED already: re-arms the recovery window
            return self.knobs

        persistence_ns = rules.persistence_s * _NS_PER_S
        for target in (Mode.RED, Mode.ORANGE, Mode.YELLOW):
            if target <= self._mode:
                break
            since = t.above[target - Mode.YELLOW]
            if since is not None and now_ns - since >= persistence_ns:
                detail = (
                    f"score {score:.3g} >= {rules.up_threshold(target):g} "
                    f"for {(now_ns - since) / _NS_PER_S:.3g} s"
                )
                self._go(target, now_ns, Cause.PERSISTENCE, detail)
                return self.knobs

        if self._mode is not Mode.GREEN:
            since = t.below[self._mode - Mode.YELLOW]
            if since is not None and now_ns - max(since, self._entered_ns) >= rules.recovery_s * _NS_PER_S:
                detail = (
                    f"score {score:.3g} < {rules.down_threshold(self._mode):g} "
                    f"for {rules.recovery_s:g} s in {self._mode.name}"
                )
                self._go(Mode(self._mode - 1), now_ns, Cause.RECOVERY, detail)
        return self.knobs

    def clear_kill_switch(self, now_ns: int) -> bool:
        """The operator's command: release the kill switch. Returns whether it was set.

        The mode becomes :attr:`debt_mode`, the one the debt holds under the rules (it kept following the
        debt, recovery included, while the latch held RED); if that is still RED it becomes ORANGE —
        entries stay off — and RED returns only after a fresh persistence window or a burst.

        Raises:
            ValueError: ``now_ns`` earlier than the previous call's.
        """
        self._tick(now_ns)
        if not self._latched:
            return False
        self._latched = False
        if self._mode is Mode.RED:
            self._mode, self._entered_ns = Mode.ORANGE, now_ns
            self._timers.above = [None, None, None]
        self._history.append(
            Transition(now_ns, Mode.RED, self._mode, Cause.CLEARED, "operator cleared the kill switch")
        )
        return True

    def _tick(self, now_ns: int) -> None:
        if self._last_ns is not None and now_ns < self._last_ns:
            raise ValueError(f"time went backwards: {now_ns} < {self._last_ns}")
        self._last_ns = now_ns

    def _go(self, mode: Mode, now_ns: int, cause: Cause, detail: str) -> None:
        before = self.mode
        self._mode, self._entered_ns = mode, now_ns
        if mode is Mode.RED:
            self._latched = True
        if self.mode != before:
            self._history.append(Transition(now_ns, before, self.mode, cause, detail))


@dataclass(frozen=True, slots=True)
class Approved:
    """The entry (or exit) may go ahead."""


class EntryGuard(enum.StrEnum):
    """Which guard refused an entry (a low-cardinality label for metrics)."""

    KILL_SWITCH = "kill_switch"
    ENTRIES_PAUSED = "entries_paused"
    MAX_NOTIONAL = "max_notional"
    COOLDOWN = "cooldown"
    OPEN_ORDERS = "open_orders"


@dataclass(frozen=True, slots=True)
class Denied:
    """An entry refused for belief reasons.

    Attributes:
        reason: what refused it and the figures, for logs and the confirmation's detail.
        guard: which guard, for metrics.
    """

    reason: str
    guard: EntryGuard


def admit_entry(
    knobs: GuardKnobs,
    *,
    intent: Intent,
    notional: float,
    now_ns: int,
    last_entry_ns: int | None,
    open_orders: int,
) -> Approved | Denied:
    """The executor's backstop: may this decision be placed under ``knobs``?

    Any intent other than OPEN (CLOSE, REDUCE, PROTECT) is approved: exits and protection are never
    refused for belief reasons (DESIGN.md invariant 3). An OPEN is denied, checked in this order, when
    the kill switch is set, entries are not allowed, ``notional`` exceeds ``max_notional`` (or is NaN),
    the instrument's cooldown since its last entry has not passed, or the instrument already has
    ``max_open_orders_per_instrument`` orders open.

    Args:
        knobs: the knobs in force.
        intent: the decision's intent.
        notional: the entry's worth, quote currency (quantity × reference price).
        now_ns: the decision's time, Unix ns.
        last_entry_ns: the instrument's last entry placed, Unix ns; ``None``: none yet.
        open_orders: the instrument's open orders, its protective stop not counted.
    """
    if intent is not Intent.OPEN:
        return Approved()
    name = knobs.mode.name
    if knobs.kill_switch:
        return Denied(
            f"kill switch set (belief {name}): entries stop until the operator clears it",
            EntryGuard.KILL_SWITCH,
        )
    if not knobs.allow_entries:
        return Denied(f"entries paused in belief {name}", EntryGuard.ENTRIES_PAUSED)
    if not notional <= knobs.max_notional:
        return Denied(
            f"notional {notional!r} > {knobs.max_notional:g} in belief {name}", EntryGuard.MAX_NOTIONAL
        )
    if last_entry_ns is not None:
        since_s = (now_ns - last_entry_ns) / _NS_PER_S
        if since_s < knobs.entry_cooldown_s:
            detail = f"last entry {since_s:.3g} s ago, cooldown {knobs.entry_cooldown_s:g} s in belief {name}"
            return Denied(detail, EntryGuard.COOLDOWN)
    if open_orders >= knobs.max_open_orders_per_instrument:
        detail = f"{open_orders} orders open, at most {knobs.max_open_orders_per_instrument} in belief {name}"
        return Denied(detail, EntryGuard.OPEN_ORDERS)
    return Approved()


def scale_entry(knobs: GuardKnobs, qty: float, price: float) -> float:
    """The brain's side of the knobs: an entry of ``qty`` (base units) at ``price`` (quote per base unit),
    scaled by ``entry_scale`` and capped so that ``result × price <= max_notional``; 0 when entries are not
    allowed. The cap rounds down, so :func:`admit_entry` with ``notional = result × price`` never refuses it
    for its notional.

    Raises:
        ValueError: ``qty`` negative or ``price`` not positive and finite.
    """
    if not qty >= 0 or not 0 < price < math.inf:
        raise ValueError(f"need qty >= 0 and a positive finite price, got qty={qty!r} price={price!r}")
    if not knobs.allow_entries or knobs.kill_switch:
        return 0.0
    scaled = qty * knobs.entry_scale
    if scaled * price > knobs.max_notional:
        scaled = knobs.max_notional / price
        while scaled > 0 and scaled * price > knobs.max_notional:
            scaled = math.nextafter(scaled, 0.0)
    return scaled
