"""Brain settings: strategy, sizing, exit plan and circuit breakers (see ``foundation.settings``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from foundation.settings import CommonSettings
from protocol import Instrument, InstrumentKind

from .core import BrainConfig
from .exits import DAY_NS, ExitRules
from .risk import BreakerRules
from .strategy import DEFAULT_STRATEGY
from .wiring import LinkSettings

__all__ = ["BrainSettings"]

_HOUR_NS = 3_600 * 1_000_000_000


class BrainSettings(CommonSettings):
    """Every brain option; env ``TANDEM_<NAME>``, flag ``--<name-with-dashes>``."""

    strategy: str = Field(DEFAULT_STRATEGY, description="strategy class as package.module:ClassName")
    strategy_params: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict, description="strategy keyword arguments, a JSON object"
    )
    entry_fraction: float = Field(0.05, gt=0, le=1, description="entry size as a fraction of equity")
    max_exposure_pct: float = Field(
        25.0, gt=0, le=100, description="cap an entry so one instrument's position is worth at most this share of the "
        "portfolio's equity, percent",
    )
    lot_size: float = Field(0.0, ge=0, description="round entry quantity down to this step (0 = none)")
    stop_loss_pct: float = Field(8.0, gt=0, lt=100, description="hard stop-loss, percent below entry (above, for a short)")
    trailing_activation_pct: float = Field(12.0, gt=0, description="trailing take-profit activates this far above entry (below, for a short), percent")
    trailing_pct: float = Field(5.0, gt=0, lt=100, description="trailing stop distance below the peak (above the trough, for a short), percent")
    time_stop_days: float = Field(14.0, gt=0, description="close a position this many days after it opened")
    partial_tp_pct: float = Field(0.0, ge=0, lt=100, description="exit leg PARTIAL_TP: a resting reduce-only limit this far in profit, percent (0 = off)")
    partial_tp_fraction: float = Field(0.5, gt=0, lt=1, description="exit leg PARTIAL_TP: the fraction of the position it takes")
    breakeven_trigger_pct: float = Field(0.0, ge=0, lt=100, description="exit leg BREAKEVEN: move the stop to entry plus fees at this profit, percent (0 = only after the take-profit filled)")
    allow_short: bool = Field(False, description="a SELL signal while flat opens a short (derivatives venues only: a perpetual)")
    exchange_stops: bool = Field(False, description="move the protective stop on the venue up with the exit plan (PROTECT decisions)")
    protect_step_bps: float = Field(25.0, gt=0, description="min rise of the protective level over the venue's stop before a PROTECT, bps")
    daily_loss_pct: float = Field(5.0, gt=0, lt=100, description="block entries after this loss from start-of-day equity, percent")
    max_drawdown_pct: float = Field(20.0, gt=0, lt=100, description="block entries after this drawdown from peak equity, percent")
    max_consecutive_losses: int = Field(5, ge=1, description="block entries after this many losing trades in a row")
    losing_streak_cooldown_hours: float = Field(24.0, ge=0, description="how long a losing streak blocks entries")
    decision_ttl_s: float = Field(10.0, ge=0.5, le=86_400, description="a decision expires this many seconds after it is made (>= 0.5)")
    max_slippage_bps: int = Field(50, ge=0, le=10_000, description="refuse fills worse than the reference by more, bps")
    retransmit_s: float = Field(0.1, ge=0.005, le=60, description="first resend of an unconfirmed decision, seconds (doubles; >= 0.005)")
    retransmit_max_s: float = Field(1.0, ge=0.005, le=600, description="longest wait between resends, seconds (>= retransmit_s)")
    replay_bars_per_s: float = Field(0.0, ge=0, description="pace the replay to at most this many bars per second (0 = as fast as possible; else >= 0.01)")
    hold: bool = Field(False, description="after the replay, keep the link and metrics up until SIGTERM (docker compose)")
    progress_interval_s: float = Field(0.0, ge=0, description="print replay_progress JSON lines on stdout this often, seconds (0 = off; else >= 0.01)")
    metrics_port: int = Field(9101, ge=-1, le=65535, description="Prometheus port (0 = any free port, -1 = off)")
    # the market-data feed
    feed: Literal["replay", "live"] = Field(
        "replay", description="replay (the data file) or live (the exchange's kline stream through ccxt.pro)"
    )
    exchange: str = Field("binance", description="feed=live: ccxt exchange id (binance, binanceusdm, ...)")
    sandbox: bool = Field(False, description="feed=live: the exchange's testnet market data")
    timeframe: str = Field("1m", description="feed=live: kline interval in the exchange's words (1m, 5m, 1h, 4h, 1d)")
    feed_warmup_bars: int | None = Field(
        None, ge=1, le=100_000, description="feed=live: closed bars loaded before the first decision (default: the strategy's warm-up)"
    )
    feed_stale_after: int = Field(
        3, ge=1, le=100_000, description="feed=live: intervals without the stream before entries are blocked (feed_stale)"
    )
    feed_poll_s: float = Field(
        5.0, ge=0.01, le=600, description="feed=live: stream silence, seconds, before the exchange's clock and REST are asked (>= 0.01)"
    )
    feed_reconnect_max_s: float = Field(30.0, ge=0.01, le=3_600, description="feed=live: longest wait between reconnects, seconds")
    feed_until_ms: int = Field(
        0, ge=0, description="feed=live: stop after the bar opening at or after this Unix ms time (0 = run until SIGTERM)"
    )
    feed_symbol: str = Field(
        "", max_length=64, description="feed=live: the ccxt symbol whose klines price the instrument (default: the "
        "instrument itself; a Solana mint needs one: the same asset on the exchange, e.g. BTC/USDT for wrapped BTC)",
    )
    emulator_port: int = Field(0, ge=0, le=65535, description="feed=live on the local Binance: its port (tandem paper sets it)")
    emulator_ca: Path | None = Field(None, description="feed=live on the local Binance: its CA certificate (PEM)")

    @field_validator("replay_bars_per_s", "progress_interval_s")
    @classmethod
    def _zero_or_sane(cls, value: float, info: Any) -> float:
        """0 turns it off; anything else below 0.01 is a mistake (a bar a century, a line a nanosecond)."""
        if 0 < value < 0.01:
            raise ValueError("must be 0 (off) or at least 0.01")
        return value

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        """A number and a unit, as ccxt and the exchanges write them (``1m``, ``15m``, ``4h``, ``1d``, ``1w``)."""
        if re.fullmatch(r"[1-9][0-9]{0,3}[smhdwM]", value) is None:
            raise ValueError("must be a number and a unit s, m, h, d, w or M, like 1m, 5m, 4h or 1d")
        return value

    @model_validator(mode="after")
    def _live_feed(self) -> BrainSettings:
        if self.feed == "live" and self.markets:
            raise ValueError("markets: a portfolio replays data files; the live feed watches one symbol (feed=replay "
                             "for a portfolio)")  # fmt: skip
        if self.feed == "live" and (self.emulator_port == 0) != (self.emulator_ca is None):
            raise ValueError("emulator_port, emulator_ca: the local Binance needs both (tandem paper sets them)")
        if self.feed == "live" and not self.feed_symbol and Instrument.parse(self.instrument).kind is InstrumentKind.MINT:
            raise ValueError("feed_symbol: the instrument is a Solana mint, which no exchange streams klines for; set "
                             "feed_symbol to the exchange's symbol of the same asset (e.g. BTC/USDT)")  # fmt: skip
        return self

    def market_symbol(self) -> str:
        """The ccxt symbol the live feed watches: ``feed_symbol``, else the instrument."""
        return self.feed_symbol or self.instrument

    @model_validator(mode="after")
    def _retransmit_bounds(self) -> BrainSettings:
        if self.retransmit_max_s < self.retransmit_s:
            raise ValueError(f"retransmit_max_s ({self.retransmit_max_s:g}) must be at least retransmit_s "
                             f"({self.retransmit_s:g})")  # fmt: skip
        return self

    @field_validator("strategy_params", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        """Flag and env var give text: it must be a JSON object (one message for both sources)."""
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        except RecursionError:
            raise ValueError("not valid JSON: nested too deeply") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"must be a JSON object of keyword arguments, got {type(parsed).__name__}")
        return parsed

    def exit_rules(self) -> ExitRules:
        return ExitRules(
            stop_loss_pct=self.stop_loss_pct,
            trailing_activation_pct=self.trailing_activation_pct,
            trailing_pct=self.trailing_pct,
            time_stop_ns=int(self.time_stop_days * DAY_NS),
            partial_tp_pct=self.partial_tp_pct,
            partial_tp_fraction=self.partial_tp_fraction,
            breakeven_trigger_pct=self.breakeven_trigger_pct,
        )

    def breaker_rules(self) -> BreakerRules:
        return BreakerRules(
            daily_loss_pct=self.daily_loss_pct,
            max_drawdown_pct=self.max_drawdown_pct,
            max_consecutive_losses=self.max_consecutive_losses,
            losing_streak_cooldown_ns=int(self.losing_streak_cooldown_hours * _HOUR_NS),
        )

    def link_settings(self) -> LinkSettings:
        return LinkSettings(self.retransmit_s, self.retransmit_max_s, self.heartbeat_s, self.silence_s)

    def brain_config(self) -> BrainConfig:
        return BrainConfig(
            instrument=Instrument.parse(self.instrument),
            markets=tuple(Instrument.parse(sym) for sym, _ in self.market_files()),
            max_exposure_fraction=self.max_exposure_pct / 100,
            entry_fraction=self.entry_fraction,
            lot_size=self.lot_size,
            decision_ttl_ns=int(self.decision_ttl_s * 1e9),
            max_slippage_bps=self.max_slippage_bps,
            exchange_stops=self.exchange_stops,
            protect_step_bps=self.protect_step_bps,
            allow_short=self.allow_short,
        )
