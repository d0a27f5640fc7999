"""The brain core's inputs and outputs: its configuration (:class:`BrainConfig`), what one close
time produced (:class:`Step`) and the signals it did not act on (:class:`Skip`, :class:`SkipReason`).
The rules that use them are :mod:`brain.core`'s."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from protocol import Instrument, Posture, Side, TradeDecision

from .risk import Trip

__all__ = ["BrainConfig", "Gates", "Skip", "SkipReason", "Step"]


class SkipReason(str, enum.Enum):
    ALREADY_POSITIONED = "already_positioned"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    NO_POSITION = "no_position"
    BREAKER = "breaker"
    EXECUTOR_SILENT = "executor_silent"
    EXECUTOR_JOURNAL = "executor_journal"
    FEED_STALE = "feed_stale"
    BELIEF_GUARD = "belief_guard"
    EXPOSURE_CAP = "exposure_cap"
    ZERO_SIZE = "zero_size"


@dataclass(frozen=True, slots=True)
class Skip:
    """A signal the brain did not act on, and why (``instrument``: whose signal; ``None`` in a
    hand-made skip)."""

    reason: SkipReason
    side: Side
    detail: str = ""
    instrument: Instrument | None = None


class Gates(NamedTuple):
    """What the shell says about entries on this close (see :meth:`BrainCore.on_bar`); a
    NamedTuple, as :class:`Step` is: one per bar."""

    executor_alive: bool
    executor_journal_ok: bool
    feed_fresh: bool
    posture: Posture | None


class Step(NamedTuple):
    """What one bar produced: decisions to send, skips to log and count, a breaker trip. A
    NamedTuple (immutable; built several times faster than a frozen dataclass): one per bar."""

    decisions: tuple[TradeDecision, ...] = ()
    skips: tuple[Skip, ...] = ()
    trip: Trip | None = None


@dataclass(frozen=True, slots=True)
class BrainConfig:
    """Decision parameters. Fractions are of equity; times in ns; slippage and steps in bps.

    ``markets`` are the instruments traded beside ``instrument`` (a portfolio, issue #16; empty: one
    instrument). ``max_exposure_fraction`` caps an entry so the position in one instrument is worth
    at most that fraction of the portfolio's equity at entry (1.0: no cap below the whole equity).

    ``allow_short`` lets a SELL signal while flat open a short (a derivatives venue only; the
    executor refuses it otherwise). ``exchange_stops`` turns on PROTECT decisions that move the venue's protective stop up with the
    exit plan; ``protect_step_bps`` (> 0) is how far the level must rise above the one last sent
    before a new PROTECT is worth a round trip.

    Raises:
        ValueError: ``protect_step_bps`` not > 0, ``max_exposure_fraction`` outside (0, 1], or an
            instrument listed twice.
    """

    instrument: Instrument
    markets: tuple[Instrument, ...] = ()
    max_exposure_fraction: float = 1.0
    entry_fraction: float = 0.05
    lot_size: float = 0.0
    decision_ttl_ns: int = 10_000_000_000
    max_slippage_bps: int = 50
    exchange_stops: bool = False
    protect_step_bps: float = 25.0
    allow_short: bool = False

    def __post_init__(self) -> None:
        if not self.protect_step_bps > 0:
            raise ValueError(f"protect_step_bps must be > 0, got {self.protect_step_bps}")
        if not 0 < self.max_exposure_fraction <= 1:
            raise ValueError(f"max_exposure_fraction must be in (0, 1], got {self.max_exposure_fraction}")
        if len(set(self.instruments)) != len(self.instruments):
            raise ValueError(f"an instrument is listed twice: {', '.join(map(str, self.instruments))}")

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """Every instrument traded: ``instrument`` first, then ``markets``."""
        return (self.instrument, *self.markets)
