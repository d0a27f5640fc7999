"""Fault settings of the local cluster (``POST /_emulator/faults``) and their counters.

Each name except ``lag_blocks`` is a count consumed as the fault fires (:meth:`Faults.take`);
``lag_blocks`` is a setting. Posting a name replaces its value; names not posted are unchanged.

* ``drop_sends``: the next N ``sendTransaction`` calls that pass preflight are answered with the
  signature but the transaction never reaches a leader (a later resend may land it).
* ``never_land``: the next N distinct signatures accepted by ``sendTransaction`` are cursed: they
  never land however often they are re-sent (until their blockhash expires, after which nothing
  could land them anyway). Cursed signatures are listed in ``cursed``.
* ``fail_swaps``: the next N ``POST /swap/v1/swap`` transactions land but fail on chain
  (:meth:`.chain.Chain.doom`).
* ``http_429`` / ``http_500``: the next N HTTP requests to the RPC or the swap API (quote, swap)
  are answered 429 / 500 before anything is read. The price API and ``/_emulator/*`` are never
  faulted. When both are set, 429 goes first.
* ``lag_blocks``: the RPC answers as a node K blocks behind (:mod:`.rpc`).
* ``stall_sends``: the next N ``sendTransaction`` requests are held with no answer and nothing done.
* ``stall_after_land``: the next N ``sendTransaction`` requests that land their transaction hold
  the answer afterwards.

Errors: :class:`FaultError` (a ``ValueError``) for an unknown name or a value that is not a
non-negative integer; nothing is changed then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from solders.signature import Signature

__all__ = ["COUNTS", "NAMES", "FaultError", "Faults"]

COUNTS = ("drop_sends", "never_land", "fail_swaps", "http_429", "http_500", "stall_sends", "stall_after_land")
NAMES = (*COUNTS, "lag_blocks")
_MAX = 10**9


class FaultError(ValueError):
    """A bad ``/_emulator/faults`` body."""


@dataclass(slots=True)
class Faults:
    """Current fault counters, the lag setting and the signatures cursed by ``never_land``."""

    drop_sends: int = 0
    never_land: int = 0
    fail_swaps: int = 0
    http_429: int = 0
    http_500: int = 0
    stall_sends: int = 0
    stall_after_land: int = 0
    lag_blocks: int = 0
    cursed: set[Signature] = field(default_factory=set)

    def take(self, name: str) -> bool:
        """Consume one use of count ``name``; False when it is at zero."""
        n = getattr(self, name)
        if n <= 0:
            return False
        setattr(self, name, n - 1)
        return True

    def update(self, body: object) -> None:
        """Apply a ``{name: value}`` object (any subset of :data:`NAMES`).

        Raises:
            FaultError: not an object, an unknown name, or a value that is not an integer in [0, 1e9].
        """
        if not isinstance(body, dict):
            raise FaultError("the body must be a JSON object of fault names to counts")
        for name, value in body.items():
            if name not in NAMES:
                raise FaultError(f"unknown fault {name!r} (known: {', '.join(NAMES)})")
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX:
                raise FaultError(f"fault {name!r}: expected an integer in [0, {_MAX}], got {value!r}")
        for name, value in body.items():
            setattr(self, name, value)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {n: getattr(self, n) for n in NAMES}
        out["cursed"] = sorted(str(s) for s in self.cursed)
        return out
