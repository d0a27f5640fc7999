"""``tandem chaos`` settings: the paper settings plus the fault profile, the kill plan's size, the
flood and a time limit.

Defaults (the fields below; README "tandem chaos"): 20 % loss, 5 % duplication, 5 % reordering,
1 % corruption, 5 % delay up to 50 ms; per direction and second 20 forged, 5 replayed and 2
reflected datagrams; 3 SIGKILLs of each process; no flood; 300 s time limit. The proxy's meaning
of each rate is :mod:`testbed.proxyfaults` / :mod:`testbed.proxyinject`; the flood's is
:mod:`testbed.flood`.

``decision_addr``, ``confirm_addr`` and the metrics ports of the paper settings are not used:
chaos picks free loopback ports and serves metrics on ephemeral ports.

Errors: a value out of range fails validation; :func:`foundation.settings.load_settings` raises it
as :class:`~foundation.errors.ConfigError` (``tandem chaos`` exits 2).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tandem.paper import PaperSettings

from .proxy import FaultRates

__all__ = ["ChaosSettings"]

_FLOOD_RATES = ("garbage_per_s", "forged_per_s", "decision_replays_per_s", "replay_requests_per_s",
                "confirmation_replays_per_s")  # fmt: skip


class ChaosSettings(PaperSettings):
    """Paper settings plus the fault profile, the kill plan and a time limit."""

    seed: int = Field(1, description="seeds the faults, the injections and the kill plan")
    loss: float = Field(0.20, ge=0, le=1, description="probability a datagram is dropped")
    duplicate: float = Field(0.05, ge=0, le=1, description="probability a datagram is sent twice")
    reorder: float = Field(0.05, ge=0, le=1, description="probability a datagram is held back (reordered)")
    corrupt: float = Field(0.01, ge=0, le=1, description="probability 1-3 bits of a datagram are flipped")
    delay: float = Field(0.05, ge=0, le=1, description="probability a datagram gets extra latency")
    delay_max_ms: float = Field(50.0, ge=0, description="largest extra latency, ms")
    forged_per_s: float = Field(20.0, ge=0, description="forged datagrams injected per second and direction")
    replayed_per_s: float = Field(5.0, ge=0, description="captured datagrams re-sent per second and direction")
    reflected_per_s: float = Field(2.0, ge=0, description="captured datagrams sent back to their sender, per s")
    kills_executor: int = Field(3, ge=0, description="SIGKILLs of the executor (each restarted)")
    kills_brain: int = Field(3, ge=0, description="SIGKILLs of the brain (each restarted)")
    timeout_s: float = Field(300.0, gt=0, description="the chaos run fails past this many seconds")
    flood_garbage_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: random 112-byte datagrams per second at the executor")
    flood_garbage_to_brain: bool = Field(False, description="keyless flood: as many random 128-byte datagrams at the brain")
    flood_forged_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: random datagrams behind a valid prefix per second (each costs a tag check)")
    flood_decision_replays_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: one captured decision re-sent per second")
    flood_replay_requests_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: two captured replay requests alternated, per second")
    flood_confirmation_replays_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: one captured confirmation re-sent to the brain per second")
    run_dir: Path | None = Field(None, description="new output folder (default: runs/<UTC timestamp>-chaos)")
    decision_addr: str = Field("127.0.0.1:45110", description="ignored: chaos picks free loopback ports")
    confirm_addr: str = Field("127.0.0.1:45115", description="ignored: chaos picks free loopback ports")
    metrics_port: int = Field(0, ge=-1, le=65535, description="ignored: metrics go to free ports")
    executor_metrics_port: int = Field(0, ge=-1, le=65535, description="ignored: metrics go to free ports")

    def rates(self) -> FaultRates:
        return FaultRates(**{name: getattr(self, name) for name in FaultRates.__dataclass_fields__})

    def flood_args(self) -> list[str]:
        """The flooder's rate flags; empty when no flood is asked for."""
        rates = {name: getattr(self, f"flood_{name}") for name in _FLOOD_RATES}
        if not any(rates.values()):
            return []
        out = [f"--{name.replace('_', '-')}={value!r}" for name, value in rates.items()]
        return out + (["--garbage-to-brain"] if self.flood_garbage_to_brain else [])
