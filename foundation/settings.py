"""Settings shared by the brain and the executor (pydantic-settings).

Sources, lowest to highest precedence: defaults, a ``.env`` file in the working directory,
``TANDEM_*`` environment variables, command-line flags (``--stop-loss-pct 6``). An invalid value
fails at start with a message naming the setting, its environment variable and its flag. Numbers
must be finite: ``inf``, ``nan`` and ``1e309`` are refused (``allow_inf_nan=False``). Timing settings
have floors as well as ceilings: a value that would make the process hang or spin (``--silence-s
1e-6``: the executor always silent, a replay paused for good) is refused like any other bad value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from protocol import Instrument, LocalProtocolError

from .errors import ConfigError
from .runtime import describe_validation_error, parse_address

__all__ = ["CommonSettings", "load_settings"]

S = TypeVar("S", bound="CommonSettings")


class CommonSettings(BaseSettings):
    """What both processes must agree on, and their plumbing."""

    model_config = SettingsConfigDict(
        env_prefix="TANDEM_",
        env_file=".env",
        extra="ignore",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_exit_on_error=False,
        validate_default=True,
        allow_inf_nan=False,
    )

    data: Path | None = Field(None, description="OHLCV CSV to replay (default: the bundled FTX BTC-PERP month)")
    bars: int | None = Field(None, ge=1, description="replay only the first N bars of the data")
    instrument: str = Field("BTC-PERP", min_length=1, max_length=44,
                            description="what is traded: an exchange symbol (BTC/USDT) or a Solana mint (base58)")
    markets: str = Field(
        "", max_length=4_096, description="a portfolio: more instruments beside `instrument`, each with its OHLCV CSV, "
        "as SYMBOL=PATH[,SYMBOL=PATH...] (paper venue, replay feed; `data` stays the first instrument's file)",
    )
    starting_cash: float = Field(10_000.0, gt=0, description="paper account starting cash, quote currency")
    decision_addr: str = Field("127.0.0.1:45110", description="host:port the executor listens on for decisions")
    confirm_addr: str = Field("127.0.0.1:45115", description="host:port the brain listens on for confirmations")
    bus_secret: SecretStr | None = Field(None, description="shared bus secret (text)")
    bus_secret_file: Path | None = Field(None, description="file holding the shared bus secret")
    max_age_s: float = Field(60.0, ge=1.0, le=86_400, description="datagram freshness window into the past, seconds (>= 1)")
    max_skew_s: float = Field(5.0, ge=0, le=3_600, description="datagram freshness window into the future, seconds")
    heartbeat_s: float = Field(0.5, ge=0.01, le=60, description="heartbeat period on the bus, seconds (>= 0.01)")
    silence_s: float = Field(
        3.0, ge=0.1, le=3_600,
        description="peer unheard this long is silent (>= 0.1 s and >= 2 heartbeats): its address is resolved again; brain: entries blocked (a replay pauses)",
    )
    metrics_host: str = Field("127.0.0.1", description="Prometheus metrics bind address")
    run_dir: Path = Field(Path("."), description="where journals, logs and reports are written")
    log_level: str = Field("info", description="debug, info, warning or error")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto (console on a terminal, JSON lines otherwise), json or console"
    )
    fresh_journal: bool = Field(
        False, description="set an existing journal in run_dir aside (renamed <name>.<UTC time>.bak, never deleted) "
        "and start a new one; without it an empty or foreign journal is refused"
    )

    @field_validator("markets")
    @classmethod
    def _markets(cls, value: str) -> str:
        _parse_markets(value)  # raises ValueError with the entry at fault
        return value

    @model_validator(mode="after")
    def _markets_distinct(self) -> CommonSettings:
        symbols = [self.instrument, *(sym for sym, _ in _parse_markets(self.markets))]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"markets: an instrument is listed twice ({', '.join(symbols)}; `instrument` is the first)")
        return self

    def market_files(self) -> tuple[tuple[str, Path], ...]:
        """``markets`` parsed: each other instrument's symbol and data file, in order."""
        return _parse_markets(self.markets)

    def instruments(self) -> tuple[str, ...]:
        """Every instrument traded: ``instrument``, then those of ``markets``."""
        return (self.instrument, *(sym for sym, _ in self.market_files()))

    def portfolio_key(self) -> str:
        """What a journal records as its instrument: ``instrument`` alone, or a portfolio's symbols
        joined by ``,`` (a journal made for another set of instruments is refused)."""
        return ",".join(self.instruments())

    @field_validator("decision_addr", "confirm_addr")
    @classmethod
    def _address(cls, value: str, info: Any) -> str:
        try:
            host, port = parse_address(value, setting=info.field_name)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        other = info.data.get("decision_addr") if info.field_name == "confirm_addr" else None
        if other is not None and port != 0 and (host.lower(), port) == _host_port(other):
            raise ValueError(f"equals decision_addr ({other}): the executor and the brain cannot both listen there")
        return value

    @model_validator(mode="after")
    def _silence_outlasts_heartbeats(self) -> CommonSettings:
        """A peer is silent only after two heartbeat periods passed without one: below that, a
        healthy peer would seem silent between its heartbeats and a replay would pause for good."""
        if self.silence_s < 2 * self.heartbeat_s:
            raise ValueError(f"silence_s ({self.silence_s:g}) must be at least twice heartbeat_s ({self.heartbeat_s:g})")
        return self

    @field_validator("run_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty (. is the working directory)")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("must be debug, info, warning or error")
        return value.lower()

    @field_validator("instrument")
    @classmethod
    def _ascii(cls, value: str) -> str:
        if not value.isascii() or not value.isprintable() or " " in value:
            raise ValueError("must be printable ASCII without spaces")
        try:
            Instrument.parse(value)
        except LocalProtocolError as exc:
            raise ValueError(f"neither a symbol of at most 32 bytes nor a base58 mint: {exc}") from None
        return value


def _parse_markets(text: str) -> tuple[tuple[str, Path], ...]:
    """``SYMBOL=PATH[,SYMBOL=PATH...]`` → ``((symbol, path), ...)``; ``""`` → ``()``.

    Raises:
        ValueError: an entry without ``=``, an empty path, or a symbol that is not a valid
            instrument (the message quotes the entry).
    """
    out: list[tuple[str, Path]] = []
    for entry in (e.strip() for e in text.split(",")) if text.strip() else ():
        symbol, sep, path = entry.partition("=")
        symbol, path = symbol.strip(), path.strip()
        if not sep or not symbol or not path:
            raise ValueError(f"entry {entry!r} is not SYMBOL=PATH (e.g. ETH/USDT=eth_4h.csv)")
        if not symbol.isascii() or not symbol.isprintable() or " " in symbol:
            raise ValueError(f"entry {entry!r}: the symbol must be printable ASCII without spaces")
        try:
            Instrument.parse(symbol)
        except LocalProtocolError as exc:
            raise ValueError(f"entry {entry!r}: the symbol is not a valid instrument: {exc}") from None
        out.append((symbol, Path(path)))
    return tuple(out)


def _host_port(value: str) -> tuple[str, int]:
    host, port = parse_address(value, setting="decision_addr")
    return host.lower(), port


def load_settings(cls: type[S], argv: list[str] | None, prog: str, **overrides: Any) -> S:
    """Build ``cls`` from defaults, ``.env``, ``TANDEM_*`` env vars and ``argv`` flags.

    Raises:
        ConfigError: an invalid or unknown setting; the message names it.
    """
    try:
        return cls(_cli_parse_args=argv if argv is not None else [], _cli_prog_name=prog, **overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except SettingsError as exc:  # the caller prefixes the command's name
        raise ConfigError(str(exc)) from None
