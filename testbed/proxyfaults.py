"""The chaos proxy's fault model: what happens to each pass-through datagram, drawn from a seeded stream.

A :class:`FaultModel` draws the :class:`Faults` of one datagram, applied by the proxy
(:mod:`testbed.proxy`) in this order: **loss**; **corruption** (1–3 random bits flipped,
:func:`flip_bits`); **duplication** (the same bytes sent twice); **reordering** (held back and
released right after the next datagram forwarded in that direction, or after
:data:`REORDER_HOLD_S` if none comes) or else **delay** (extra latency up to ``delay_max_ms``).
:class:`FaultRates` is the profile: those probabilities and the injection rates
(:mod:`testbed.proxyinject`); ``tandem chaos`` defaults are in :mod:`testbed.chaossettings`.

Determinism: each direction draws its faults from its own ``random.Random`` seeded with
``(seed, direction)``, a fixed number of draws per datagram, so for a given seed the k-th
datagram of a direction always meets the same faults (timing only decides which datagram is
k-th); the same seed and input sequence give the same deliveries.

Errors: :class:`FaultRates` raises ``ValueError`` for a probability outside 0..1 or a negative rate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

__all__ = ["REORDER_HOLD_S", "FaultModel", "FaultRates", "Faults", "flip_bits"]

REORDER_HOLD_S: Final = (0.002, 0.05)
"""A held datagram is released after the next one, or after this many seconds (uniform)."""


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Fault probabilities per pass-through datagram (0..1) and injection rates per direction (/s).

    ``delay_max_ms`` bounds the extra latency of a delayed datagram (uniform in 0..max).
    """

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    delay_max_ms: float = 50.0
    forged_per_s: float = 0.0
    replayed_per_s: float = 0.0
    reflected_per_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder", "corrupt", "delay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in 0..1, got {getattr(self, name)}")
        for name in ("delay_max_ms", "forged_per_s", "replayed_per_s", "reflected_per_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class Faults:
    """What happens to one pass-through datagram.

    Attributes:
        drop: lost; nothing else applies.
        bits: bit positions (0 = LSB of byte 0) to flip before forwarding; empty = intact.
        duplicate: send the (possibly corrupted) bytes twice.
        hold_s: reorder: held back, released after the next datagram or after this many seconds.
        delay_s: extra latency, seconds (only when not held).
    """

    drop: bool = False
    bits: tuple[int, ...] = ()
    duplicate: bool = False
    hold_s: float | None = None
    delay_s: float | None = None


class FaultModel:
    """Draws :class:`Faults` for each datagram from one seeded stream (sans-IO, no clock).

    Every call consumes exactly eleven ``random()`` draws whatever it decides, and the datagram's
    size only scales the bit positions, so the faults of the k-th datagram are a function of the
    seed and k alone: timing can change which datagram is k-th, never what happens to it.
    """

    def __init__(self, rates: FaultRates, rng: random.Random) -> None:
        self.rates = rates
        self._rng = rng

    def decide(self, size: int) -> Faults:
        """The faults for a datagram of ``size`` bytes."""
        r, p = self._rng, self.rates
        lost, corrupt, dup, reorder, delayed = (r.random() < q for q in (p.loss, p.corrupt, p.duplicate, p.reorder, p.delay))
        n_bits = 1 + int(r.random() * 3)
        hold_s = REORDER_HOLD_S[0] + r.random() * (REORDER_HOLD_S[1] - REORDER_HOLD_S[0])
        delay_s = r.random() * p.delay_max_ms / 1e3
        # three positions drawn; a repeated one is flipped once (so rarely fewer bits than n_bits)
        picks = [int(r.random() * size * 8) for _ in range(3)][:n_bits]
        if lost:
            return Faults(drop=True)
        return Faults(
            bits=tuple(dict.fromkeys(picks)) if corrupt and size else (),
            duplicate=dup,
            hold_s=hold_s if reorder else None,
            delay_s=delay_s if delayed and not reorder else None,
        )


def flip_bits(data: bytes, bits: tuple[int, ...]) -> bytes:
    """``data`` with each listed bit inverted (bit ``i`` is bit ``i % 8`` of byte ``i // 8``)."""
    out = bytearray(data)
    for b in bits:
        out[b // 8] ^= 1 << (b % 8)
    return bytes(out)
