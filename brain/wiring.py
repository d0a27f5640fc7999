"""The brain's wiring: link timing, where it listens, whom it sends to, and where it writes — light
to import (the settings and ``tandem paper`` read it without loading the application)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.runtime import parse_address
from protocol.udp import Address

__all__ = ["LinkSettings", "confirm_bind", "decision_peer", "outputs"]


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Link timing, seconds (see :class:`~protocol.link.BrainLink` for the defaults' rationale)."""

    retransmit_s: float = 0.1
    retransmit_max_s: float = 1.0
    heartbeat_s: float = 0.5
    silence_s: float = 3.0


def decision_peer(settings: Any) -> Address:
    """The executor's decision address (``decision_addr``).

    Raises:
        ConfigError: a malformed address.
    """
    return parse_address(settings.decision_addr, setting="decision_addr")


def confirm_bind(settings: Any) -> Address:
    """Where the brain receives confirmations (``confirm_addr``; port 0 = ephemeral).

    Raises:
        ConfigError: a malformed address.
    """
    return parse_address(settings.confirm_addr, setting="confirm_addr")


def outputs(run_dir: Path) -> dict[str, Path]:
    """Where the brain writes: journal, trade log, report."""
    return {"journal": run_dir / "brain.sqlite", "trades": run_dir / "trades.csv", "report": run_dir / "report.json",
            "equity": run_dir / "equity.csv"}  # fmt: skip
