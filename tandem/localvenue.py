"""Local exchanges ``tandem paper --venue NAME`` can run beside the executor, found by name.

The product never imports a local exchange: each one is a plugin in the distribution's
``tandem.local_venues`` entry-point group (``pyproject.toml``), a class with the shape of
:class:`LocalVenue`. Today there is one, ``binance-emulator`` (``testbed.emulated:LocalBinance``:
the Binance emulator as a third process, reached by the executor's real ccxt client over HTTPS on
loopback). The same mechanism puts the testbed's tools on the command line (``tandem.commands``:
``tandem bench``, ``tandem chaos``, ``tandem fuzz``; :mod:`tandem.cli`).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from foundation.errors import ConfigError

__all__ = ["LOCAL_VENUES_GROUP", "LocalVenue", "LocalVenueClass", "local_venue"]

LOCAL_VENUES_GROUP = "tandem.local_venues"
"""The entry-point group local exchanges register in (``[project.entry-points."tandem.local_venues"]``)."""


class LocalVenue(Protocol):
    """A running local exchange, started by :meth:`LocalVenueClass.start`."""

    def executor_settings(self) -> dict[str, Any]:
        """Executor settings that point it at this exchange (venue, exchange, port, CA, key files)."""

    def brain_settings(self) -> dict[str, Any]:
        """Brain settings this exchange asks for (e.g. ``exchange_stops``)."""

    def running(self) -> bool:
        """Whether its process is still alive."""

    def account(self) -> dict[str, Any]:
        """The exchange's final account for the run's key, read over its own API.

        Raises:
            OSError, RuntimeError: the exchange cannot be reached.
        """

    def reconcile(self, account: dict[str, Any], ledger: dict[str, Any]) -> dict[str, Any]:
        """The exchange's account against the executor's ledger snapshot: ``{"agrees": bool,
        "exchange_cash", "exchange_position", "ledger_cash", "ledger_position", "open_orders",
        "orphans": [client ids]}``."""

    def describe(self) -> str:
        """One line for the report's ``venue`` row."""

    def stop(self) -> None:
        """Stop its process (idempotent)."""


class LocalVenueClass(Protocol):
    """What the entry point names: a class that says which instrument it lists and starts one."""

    @staticmethod
    def instrument(exchange: str) -> str:
        """The instrument (ccxt unified symbol) the brain trades on this exchange."""

    @classmethod
    def start(cls, run_dir: Path, data: Path, bars: int | None, starting_cash: float, exchange: str,
              stream: dict[str, Any] | None = None) -> LocalVenue:  # fmt: skip
        """Start it on ``data`` (the bars the brain replays, the first ``bars`` of them) with an
        account holding ``starting_cash``, writing its files (log, CA, key files) into ``run_dir``.
        ``stream``: also stream the bars as klines for a live feed (``{"start": first bar streamed,
        "bars_per_s": speed, "faults": JSON text}``); its :meth:`LocalVenue.brain_settings` then
        say how to reach the stream.

        Raises:
            RuntimeError: it did not become ready (its log tail is in the message).
        """


def local_venue(name: str) -> LocalVenueClass:
    """The local exchange registered as ``name``.

    Raises:
        ConfigError: no installed distribution registers ``name`` in :data:`LOCAL_VENUES_GROUP`.
    """
    found = entry_points(group=LOCAL_VENUES_GROUP, name=name)
    if not found:
        known = sorted(ep.name for ep in entry_points(group=LOCAL_VENUES_GROUP))
        raise ConfigError(f"venue: no local exchange named {name!r} is installed (known: {', '.join(known) or 'none'})")
    return next(iter(found)).load()
