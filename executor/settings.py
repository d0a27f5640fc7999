"""Executor settings: venue, fees and journal (see ``tandem.settings`` for sources and errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tandem.settings import CommonSettings

__all__ = ["ExecutorSettings"]


class ExecutorSettings(CommonSettings):
    """Every executor option; env ``TANDEM_<NAME>``, flag ``--<name-with-dashes>``."""

    venue: Literal["paper"] = Field("paper", description="where orders go (paper replays the data)")
    fee_bps: float = Field(10.0, ge=-100, le=1000, description="taker fee, bps of notional (Binance VIP 0 spot: 10)")
    slippage_bps: float = Field(2.0, ge=0, lt=10_000, description="paper fills move against the trader by this, bps")
    journal_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", description="SQLite synchronous: NORMAL survives a process kill, FULL also power loss"
    )
    metrics_port: int = Field(9102, ge=-1, le=65535, description="Prometheus port (0 = any free port, -1 = off)")
