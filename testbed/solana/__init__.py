"""A local Solana cluster with a Jupiter-shaped RFQ swap service, for ``--venue solana-emulator``.

The product's Solana venue reaches it only through the standard Solana JSON-RPC (solana-py's
``AsyncClient``), Jupiter's Swap API v1 and Price API v3 shapes (aiohttp), and the unsigned
``/_emulator/*`` control routes (``tandem paper`` and tests; the executor calls one of them,
``POST /_emulator/advance``, for the replay clock). Each module's docstring states its part of
that interface: routes and faults (:mod:`.server`, :mod:`.faults`), RPC methods (:mod:`.rpc`),
chain rules (:mod:`.chain`), pricing and swap transactions (:mod:`.swap`).

Usage::

    async with LocalCluster(load_bars(path, limit=300), cash_usdc=10_000.0, block_s=0.02) as cl:
        client = AsyncClient(cl.rpc_url, commitment=Confirmed)
        ...                                  # quote at cl.swap_url + "/quote", sign, send, confirm
        cl.faults.update({"drop_sends": 1})  # same as POST /_emulator/faults

Modules: ``keys`` (fixed identities and token constants), ``tokens`` (SPL Token account bytes and
UI amounts), ``chain`` (sans-IO chain over LiteSVM: blocks, blockhash window, landing, records,
history), ``genesis`` (mints and funding), ``faults`` (fault counters), ``market`` (bars and the
replay clock), ``swap`` (quotes, RFQ transactions, prices), ``render`` (RPC JSON shapes), ``rpc``
(the JSON-RPC methods), ``server`` (aiohttp routes, HTTP faults, block ticker); ``__main__`` runs it
as a process (``python -m testbed.solana``); :mod:`testbed.solana_local` is the LocalVenue plugin.
"""

from __future__ import annotations

from typing import Any, Self

import structlog
from aiohttp import web
from solders.keypair import Keypair

from foundation.bars import Bars

from .chain import FINALIZED_DEPTH, GENESIS_HEIGHT, VALID_BLOCKS, Chain, Landed, Simulation
from .faults import COUNTS, NAMES, FaultError, Faults
from .genesis import MAKER_LAMPORTS, MAKER_TOKENS, fund_genesis
from .keys import (
    BASE_DECIMALS,
    BASE_MINT,
    LAMPORTS_PER_SOL,
    MAKER,
    QUOTE_DECIMALS,
    QUOTE_MINT,
    SOL_MINT,
    seeded,
)
from .market import ReplayMarket
from .rpc import RpcError, RpcNode
from .server import ClusterServer
from .swap import SwapError, SwapService, priority_fee_lamports, rfq_transaction

__all__ = [
    "BASE_DECIMALS", "BASE_MINT", "COUNTS", "FINALIZED_DEPTH", "GENESIS_HEIGHT", "LAMPORTS_PER_SOL", "MAKER",
    "MAKER_LAMPORTS", "MAKER_TOKENS", "NAMES", "QUOTE_DECIMALS", "QUOTE_MINT", "SOL_MINT", "VALID_BLOCKS", "Chain",
    "ClusterServer", "FaultError", "Faults", "Landed", "LocalCluster", "ReplayMarket", "RpcError", "RpcNode",
    "Simulation", "SwapError", "SwapService", "fund_genesis", "priority_fee_lamports", "rfq_transaction", "seeded",
]


class LocalCluster:
    """The cluster on ``127.0.0.1`` (an ephemeral port by default), as an async context manager.

    Args:
        bars: the replayed bars (the swap price and the mark).
        cash_usdc: the user's starting USDC (raw = ``round(cash_usdc * 1e6)``).
        sol: the user's starting SOL (lamports = ``round(sol * 1e9)``).
        block_s: seconds per block (0: blocks only from ``/_emulator/blocks`` or ``chain.advance``).
        spread_bps: the maker's half-spread.
        sol_usd: SOL's price on the price API.
        api_key: required ``x-api-key`` on the swap routes (None: open).
        user: the user's keypair (default: a fresh one).

    Attributes: ``user``, ``chain``, ``market``, ``faults``, ``rpc``, ``swap``, ``server``; after
    ``start``: ``port``, ``rpc_url``, ``swap_url``, ``price_url``.

    Raises:
        ValueError: no bars, negative cash or SOL, a bad spread or block time.
    """

    def __init__(self, bars: Bars, cash_usdc: float, sol: float = 2.0, block_s: float = 0.4, spread_bps: float = 2.0,
                 sol_usd: float = 150.0, port: int = 0, api_key: str | None = None,
                 user: Keypair | None = None) -> None:  # fmt: skip
        if cash_usdc < 0 or sol < 0:
            raise ValueError(f"cash and SOL must be >= 0, got {cash_usdc} USDC and {sol} SOL")
        self.user = user or Keypair()
        self.chain = Chain()
        self.sol_lamports = round(sol * LAMPORTS_PER_SOL)
        fund_genesis(self.chain, self.user.pubkey(), round(cash_usdc * 10**QUOTE_DECIMALS), self.sol_lamports)
        self.market = ReplayMarket(bars)
        self.faults = Faults()
        self.log = structlog.get_logger("testbed.solana")
        self.rpc = RpcNode(self.chain, self.faults, self.log.info)
        self.swap = SwapService(self.chain, self.market, self.faults, spread_bps, sol_usd)
        self.server = ClusterServer(self.chain, self.market, self.faults, self.rpc, self.swap, self.user.pubkey(),
                                    block_s, api_key)  # fmt: skip
        self._want_port = port
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._runner = web.AppRunner(self.server.app(), shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._want_port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving: held answers are cancelled, the ticker stops (idempotent)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc_url(self) -> str:
        return self.base_url + "/"

    @property
    def swap_url(self) -> str:
        return self.base_url + "/swap/v1"

    @property
    def price_url(self) -> str:
        return self.base_url + "/price/v3"

    def ready_line(self) -> dict[str, Any]:
        """The ``solana_ready`` JSON object ``__main__`` prints once listening."""
        return {"event": "solana_ready", "port": self.port, "rpc_url": self.rpc_url, "swap_url": self.swap_url,
                "price_url": self.price_url, "base_mint": str(BASE_MINT), "quote_mint": str(QUOTE_MINT),
                "user": str(self.user.pubkey()), "maker": str(MAKER.pubkey()), "sol_mint": str(SOL_MINT)}  # fmt: skip

    def state(self) -> dict[str, Any]:
        """Same as ``GET /_emulator/state``."""
        return self.server.snapshot()
