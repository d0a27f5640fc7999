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

from foundation.busypoll import MAX_WINDOW_US
from foundation.errors import ConfigError
from foundation.settings import CommonSettings

from .belief import DebtRules
from .controller import ControllerRules
from .reconcile import ReconcileRules

__all__ = ["SOLANA_GENESIS", "USDC_MINT", "ExecutorSettings", "check_solana_cluster", "venue_id"]


USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
"""USDC on Solana mainnet-beta (Circle's mint): the default quote mint."""
SOLANA_GENESIS = {
    "mainnet-beta": "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d",
    "devnet": "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG",
    "testnet": "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY",
}
"""Genesis hashes of the public Solana clusters (``getGenesisHash``; Solana's cluster documentation):
the venue checks the RPC serves the cluster the settings name."""


def venue_id(venue: str, exchange: str, *, live: bool = False, solana_cluster: str = "devnet") -> str:
    """The identity of a venue, stored in the executor journal at its creation and checked on
    every reopen: ``paper``, ``binance-emulator:<exchange>``, ``ccxt:<exchange>:sandbox``,
    ``ccxt:<exchange>:live``, ``solana:<cluster>`` or ``solana-emulator``."""
    if venue in ("paper", "solana-emulator"):
        return venue
    if venue == "binance-emulator":
        return f"binance-emulator:{exchange}"
    if venue == "solana":
        return f"solana:{solana_cluster}"
    return f"{venue}:{exchange}:{'live' if live else 'sandbox'}"


def check_solana_cluster(genesis: str, cluster: str, *, live: bool) -> str | None:
    """Why the cluster whose genesis hash is ``genesis`` must not be traded as ``cluster``, or ``None``.

    Refused: a public cluster other than the one named (its genesis hash differs); ``localnet``
    naming a public cluster; mainnet-beta without ``live`` (the ``--live`` guard)."""
    public = {g: name for name, g in SOLANA_GENESIS.items()}
    actual = public.get(genesis, "localnet")
    if actual != cluster:
        return f"solana_cluster: the RPC serves {actual} (genesis {genesis}), the settings say {cluster}"
    if actual == "mainnet-beta" and not live:
        return "solana_cluster: mainnet-beta trades real money: pass --live (TANDEM_LIVE=true)"
    return None


class ExecutorSettings(CommonSettings):
    """Every executor option; env ``TANDEM_<NAME>``, flag ``--<name-with-dashes>``."""

    venue: Literal["paper", "ccxt", "binance-emulator", "solana", "solana-emulator"] = Field(
        "paper", description="paper (replays the data), ccxt (a real exchange), binance-emulator (local Binance), "
        "solana (Jupiter swaps on a Solana cluster), solana-emulator (a local cluster)",
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
    allow_short: bool = Field(False, description="execute short entries (SELL OPEN): derivatives venues only (paper, binanceusdm)")
    order_timeout_ms: int = Field(5_000, ge=100, le=120_000, description="ccxt request timeout, milliseconds")
    fill_timeout_s: float = Field(10.0, ge=0.1, le=600, description="wait this long for an order to fill, then cancel the rest (>= 0.1)")
    fee_bps: float = Field(10.0, ge=-100, le=1000, description="taker fee, bps of notional (Binance VIP 0 spot: 10)")
    slippage_bps: float = Field(2.0, ge=0, lt=10_000, description="paper fills move against the trader by this, bps")
    journal_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", description="SQLite synchronous: NORMAL survives a process kill, FULL also power loss"
    )
    metrics_port: int = Field(9102, ge=-1, le=65535, description="Prometheus port (0 = any free port, -1 = off)")
    # the Solana venue (issue #15)
    solana_rpc_url: str = Field("", description="venue=solana: the cluster's JSON-RPC URL (https://api.devnet.solana.com, ...)")
    solana_cluster: Literal["mainnet-beta", "devnet", "testnet", "localnet"] = Field(
        "devnet", description="venue=solana: the cluster the RPC must serve (checked by genesis hash); mainnet-beta needs --live")
    solana_keypair_file: Path | None = Field(None, description="venue=solana: the wallet's keypair (solana-keygen JSON), mode 0600")
    swap_api_url: str = Field("https://api.jup.ag/swap/v1", description="venue=solana: Jupiter Swap API base URL")
    price_api_url: str = Field("https://api.jup.ag/price/v3", description="venue=solana: Jupiter Price API URL")
    swap_api_key: SecretStr | None = Field(None, description="venue=solana: Jupiter API key (prefer swap_api_key_file)")
    swap_api_key_file: Path | None = Field(None, description="venue=solana: file holding the Jupiter API key")
    quote_mint: str = Field(USDC_MINT, description="venue=solana: the mint the token is priced and paid in (USDC)")
    priority_fee_micro_lamports: int = Field(0, ge=0, le=50_000_000, description="venue=solana: compute-unit price asked for, micro-lamports")
    compute_unit_limit: int = Field(1_400_000, ge=1_000, le=1_400_000, description="venue=solana: largest compute-unit limit accepted in a swap transaction")
    solana_confirm_timeout_s: float = Field(90.0, ge=1, le=600, description="venue=solana: drive a transaction this long before calling it ambiguous, seconds")
    solana_poll_s: float = Field(0.5, ge=0.01, le=10, description="venue=solana: pause between two looks at a pending transaction, seconds")
    solana_max_attempts: int = Field(3, ge=1, le=10, description="venue=solana: transactions built for one order at most (after expiries)")
    busy_poll_us: int = Field(300, ge=0, le=MAX_WINDOW_US, description="after answering, poll the decision socket this long before the event loop sleeps, us (0 = off; costs up to this much CPU per answer)")
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
        return venue_id(self.venue, self.exchange, live=self.live, solana_cluster=self.solana_cluster)

    def swap_api_key_value(self) -> str:
        """The Jupiter API key from the setting or its file (stripped); empty when unset.

        Raises:
            ConfigError: the key file cannot be read.
        """
        if self.swap_api_key_file is not None:
            try:
                return self.swap_api_key_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"swap_api_key_file: cannot read {self.swap_api_key_file}: {exc.strerror}") from None
        return self.swap_api_key.get_secret_value().strip() if self.swap_api_key is not None else ""

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
                ``emulator_port``/``emulator_ca``; ``markets`` on another venue than paper.
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
        if self.allow_short and self.venue in ("solana", "solana-emulator"):
            raise ConfigError(f"allow_short: venue={self.venue} swaps tokens (spot): it cannot hold a short; shorts need a "
                              f"derivatives venue (paper, or binanceusdm)")  # fmt: skip
        if self.allow_short and self.venue in ("ccxt", "binance-emulator") and self.exchange == "binance":
            raise ConfigError("allow_short: exchange=binance is Binance spot, which cannot hold a short; use binanceusdm "
                              "(USDⓈ-M perpetuals)")  # fmt: skip
        if self.markets and self.venue != "paper":
            raise ConfigError(f"markets: a portfolio of several instruments trades on the paper venue only; venue="
                              f"{self.venue} trades `instrument` alone")  # fmt: skip
        if self.venue == "binance-emulator" and (not self.emulator_port or self.emulator_ca is None):
            raise ConfigError("emulator_port, emulator_ca: venue=binance-emulator needs both (tandem paper sets them)")
        if self.venue in ("solana", "solana-emulator"):
            if not self.solana_rpc_url or self.solana_keypair_file is None:
                raise ConfigError(f"solana_rpc_url, solana_keypair_file: venue={self.venue} needs both")
            if self.venue == "solana" and self.live and self.solana_cluster != "mainnet-beta":
                raise ConfigError(f"live, solana_cluster: --live trades real money on mainnet-beta, the settings say "
                                  f"{self.solana_cluster}")  # fmt: skip
            if self.venue == "solana" and self.solana_cluster == "mainnet-beta" and not self.live:
                raise ConfigError("solana_cluster: mainnet-beta trades real money: pass --live (TANDEM_LIVE=true), "
                                  "or use devnet")  # fmt: skip
            if self.venue == "solana-emulator" and not self.emulator_port:
                raise ConfigError("emulator_port: venue=solana-emulator needs the local cluster's port (tandem paper sets it)")
            from protocol import Instrument, LocalProtocolError

            for name in ("instrument", "quote_mint"):
                try:
                    Instrument.mint(getattr(self, name))
                except LocalProtocolError as exc:
                    raise ConfigError(f"{name}: venue={self.venue} trades a mint: {exc}") from None
