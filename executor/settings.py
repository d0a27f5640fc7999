"""Executor settings: venue, fees, exchange keys and journal (see ``foundation.settings`` for sources
and errors).

Live trading is opt-in twice: ``venue=ccxt`` with neither ``sandbox`` nor ``--live`` is refused,
and ``--live`` without API keys is refused (:meth:`ExecutorSettings.check_venue`). Keys are
``SecretStr`` (printed as ``**********``) and may come from files (Docker secrets); they are never
logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from foundation.errors import ConfigError
from foundation.settings import CommonSettings

from .belief import DebtRules
from .controller import ControllerRules
from .reconcile import ReconcileRules

__all__ = ["ExecutorSettings", "venue_id"]


def venue_id(venue: str, exchange: str, *, live: bool = False) -> str:
    """The identity of a venue, stored in the executor journal at its creation and checked on
    every reopen: ``paper``, ``binance-emulator:<exchange>``, ``ccxt:<exchange>:sandbox`` or
    ``ccxt:<exchange>:live``."""
    if venue == "paper":
        return "paper"
    if venue == "binance-emulator":
        return f"binance-emulator:{exchange}"
    return f"{venue}:{exchange}:{'live' if live else 'sandbox'}"


class ExecutorSettings(CommonSettings):
    """Every executor option; env ``TANDEM_<NAME>``, flag ``--<name-with-dashes>``."""

    venue: Literal["paper", "ccxt", "binance-emulator"] = Field(
        "paper", description="paper (replays the data), ccxt (a real exchange), binance-emulator (local Binance)"
    )
    exchange: str = Field("binance", description="ccxt exchange id for venue=ccxt: binance (spot), binanceusdm, ...")
    sandbox: bool = Field(False, description="ccxt: use the exchange's testnet (Binance spot/futures testnet)")
    live: bool = Field(False, description="ccxt: trade real money on the real exchange (required unless --sandbox)")
    api_key: SecretStr | None = Field(None, description="exchange API key (prefer api_key_file)")
    api_key_file: Path | None = Field(None, description="file holding the exchange API key")
    api_secret: SecretStr | None = Field(None, description="exchange API secret (prefer api_secret_file)")
    api_secret_file: Path | None = Field(None, description="file holding the exchange API secret")
    emulator_port: int = Field(0, ge=0, le=65535, description="binance-emulator: port of the local exchange")
    emulator_ca: Path | None = Field(None, description="binance-emulator: CA certificate (PEM) of the local exchange")
    protective_stops: bool = Field(True, description="place the hard stop-loss on the exchange when an entry fills")
    order_timeout_ms: int = Field(5_000, ge=100, le=120_000, description="ccxt request timeout, milliseconds")
    fill_timeout_s: float = Field(10.0, ge=0.1, le=600, description="wait this long for an order to fill, then cancel the rest (>= 0.1)")
    fee_bps: float = Field(10.0, ge=-100, le=1000, description="taker fee, bps of notional (Binance VIP 0 spot: 10)")
    slippage_bps: float = Field(2.0, ge=0, lt=10_000, description="paper fills move against the trader by this, bps")
    journal_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", description="SQLite synchronous: NORMAL survives a process kill, FULL also power loss"
    )
    metrics_port: int = Field(9102, ge=-1, le=65535, description="Prometheus port (0 = any free port, -1 = off)")
    # reconciliation and the belief controller (issue #14)
    reconcile_interval_s: float = Field(10.0, ge=0.05, le=3_600, description="reconcile with the venue this often, seconds (live venues)")
    reconcile_phantom_grace_s: float = Field(30.0, ge=0, le=86_400, description="a ledger position the venue lacks is cleared only this long after it was first missed, seconds")
    reconcile_phantom_misses: int = Field(3, ge=1, le=1_000, description="... and only after this many reconcile cycles in a row missed it")
    reconcile_repair_cooldown_s: float = Field(60.0, ge=0, le=86_400, description="least time between two stop repairs of one symbol, seconds")
    reconcile_max_repairs: int = Field(4, ge=1, le=1_000, description="stop repairs per reconcile cycle at most")
    reconcile_stop_pct: float = Field(8.0, gt=0, lt=100, description="an adopted position's stop, percent below its entry (keep equal to the brain's stop_loss_pct)")
    belief_debt_ref_s: float = Field(60.0, gt=0, le=86_400, description="belief debt: a mismatch this old scores 1, seconds")
    belief_persistence_s: float = Field(30.0, ge=0, le=86_400, description="belief controller: a higher mode must be called for this long, seconds")
    belief_recovery_s: float = Field(120.0, ge=0, le=86_400, description="belief controller: a lower mode must be called for this long, one mode at a time, seconds")
    belief_burst_per_min: float = Field(9.0, gt=0, le=1_000, description="belief controller: debt score growth per minute that trips RED (and the kill switch) at once")

    def reconcile_rules(self) -> ReconcileRules:
        return ReconcileRules(phantom_grace_s=self.reconcile_phantom_grace_s, phantom_misses=self.reconcile_phantom_misses,
                              repair_cooldown_s=self.reconcile_repair_cooldown_s, max_repairs=self.reconcile_max_repairs,
                              adopt_stop_pct=self.reconcile_stop_pct)  # fmt: skip

    def debt_rules(self) -> DebtRules:
        return DebtRules(debt_ref_s=self.belief_debt_ref_s)

    def controller_rules(self) -> ControllerRules:
        return ControllerRules(persistence_s=self.belief_persistence_s, recovery_s=self.belief_recovery_s,
                               burst_per_min=self.belief_burst_per_min)  # fmt: skip

    def venue_id(self) -> str:
        """This executor's venue identity (see :func:`venue_id`)."""
        return venue_id(self.venue, self.exchange, live=self.live)

    def exchange_keys(self) -> tuple[str, str]:
        """``(api_key, secret)`` from the settings or their files (stripped); empty when unset.

        Raises:
            ConfigError: a key file cannot be read (the message names the setting, not the key).
        """
        out = []
        for name in ("api_key", "api_secret"):
            value: SecretStr | None = getattr(self, name)
            path: Path | None = getattr(self, f"{name}_file")
            if path is not None:
                try:
                    out.append(path.read_text().strip())
                except OSError as exc:
                    raise ConfigError(f"{name}_file: cannot read {path}: {exc.strerror}") from None
            else:
                out.append(value.get_secret_value().strip() if value is not None else "")
        return out[0], out[1]

    def check_venue(self) -> None:
        """Refuse unsafe venue settings before anything connects.

        Raises:
            ConfigError: ``venue=ccxt`` without ``--sandbox`` or ``--live``; ``--live`` together with
                ``--sandbox``; ``venue=ccxt`` without both API keys; ``binance-emulator`` without
                ``emulator_port``/``emulator_ca``.
        """
        if self.venue == "ccxt":
            if self.live and self.sandbox:
                raise ConfigError("live, sandbox: choose one (--live trades real money, --sandbox the testnet)")
            if not (self.live or self.sandbox):
                raise ConfigError(
                    "venue=ccxt trades on a real exchange: pass --sandbox for its testnet, or --live "
                    "(TANDEM_LIVE=true) to trade real money"
                )
            key, secret = self.exchange_keys()
            if not key or not secret:
                raise ConfigError(
                    "api_key, api_secret: venue=ccxt needs both (TANDEM_API_KEY_FILE / TANDEM_API_SECRET_FILE, or "
                    "TANDEM_API_KEY / TANDEM_API_SECRET)"
                )
        if self.venue == "binance-emulator" and (not self.emulator_port or self.emulator_ca is None):
            raise ConfigError("emulator_port, emulator_ca: venue=binance-emulator needs both (tandem paper sets them)")
