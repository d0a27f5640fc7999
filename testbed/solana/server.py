"""aiohttp shell of the local cluster: one port for the RPC, the swap and price APIs, the control
routes, plus the block ticker.

Routes:

====================================  ===========================================================
``POST /``                            Solana JSON-RPC 2.0 (:mod:`.rpc`)
``GET /swap/v1/quote``                Jupiter quote (:meth:`.swap.SwapService.quote`)
``POST /swap/v1/swap``                Jupiter swap transaction (:meth:`.swap.SwapService.swap`)
``GET /price/v3?ids=...``             Jupiter Price API v3 (:meth:`.swap.SwapService.price`)
``POST /_emulator/advance?ts_ms=N``   the replay clock → ``{"clock_ms"}`` (never backwards)
``GET|POST /_emulator/faults``        fault settings (:mod:`.faults`) → ``{"faults": {...}}``
``POST /_emulator/balance``           ``{"sol"?, "usdc"?, "base"?}`` (raw units) sets the user's
                                      balances → the user's balances
``POST /_emulator/blocks?n=N``        produce N blocks now (1..100000) → ``{"height"}``
``GET /_emulator/state``              heights, clock, the user's balances, landed transactions,
                                      sends per signature, faults
====================================  ===========================================================

HTTP faults (``http_429``, ``http_500``) answer the RPC and the swap routes before the request is
read: 429 ``Too many requests`` / 500 ``Internal Server Error`` (RPC: a JSON-RPC error object;
swap: ``{"error", "errorCode"}``). ``x-api-key`` (when the cluster has an API key) is checked on
the two swap routes after them: 401 ``{"error", "errorCode": "UNAUTHORIZED"}``. Held answers
(``stall_*``) wait until the server shuts down. Control routes are unsigned: the server listens on
127.0.0.1 only. Bad input answers 400 with a JSON ``{"error": ...}``; an unexpected exception is
logged with its traceback on stderr and answered 500 ``{"error": "internal error: <type>"}``.

The ticker produces one block every ``block_s`` seconds of wall time (0: no ticker, blocks come
only from ``/_emulator/blocks``); a late tick is not made up for.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

from .chain import Chain
from .faults import Faults
from .keys import BASE_MINT, QUOTE_MINT
from .market import ReplayMarket
from .render import error_text
from .rpc import RpcNode
from .swap import SwapError, SwapService
from .tokens import U64_MAX

__all__ = ["MAX_BLOCKS_PER_CALL", "ClusterServer"]

MAX_BLOCKS_PER_CALL = 100_000

log = structlog.get_logger("testbed.solana")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, separators=(",", ":")), content_type="application/json")


def _bad(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


class ClusterServer:
    """The HTTP routes over the cluster's parts.

    Args:
        user: the funded user (``/_emulator/balance`` and ``/state``).
        block_s: seconds per block for the ticker (0: none).
        api_key: required ``x-api-key`` on the swap routes (None: open).
    """

    def __init__(self, chain: Chain, market: ReplayMarket, faults: Faults, rpc: RpcNode, swap: SwapService,
                 user: Pubkey, block_s: float, api_key: str | None = None) -> None:  # fmt: skip
        if block_s < 0:
            raise ValueError(f"block_s must be >= 0, got {block_s}")
        self.chain, self.market, self.faults, self.rpc, self.swapper = chain, market, faults, rpc, swap
        self.user, self.block_s, self.api_key = user, block_s, api_key
        self._held: set[asyncio.Future[None]] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        r = app.router
        r.add_post("/", self._faulted(self.rpc_call, rpc=True))
        r.add_get("/swap/v1/quote", self._faulted(self._keyed(self.quote)))
        r.add_post("/swap/v1/swap", self._faulted(self._keyed(self.swap)))
        r.add_get("/price/v3", self.price)
        r.add_post("/_emulator/advance", self.advance)
        r.add_get("/_emulator/faults", self.get_faults)
        r.add_post("/_emulator/faults", self.set_faults)
        r.add_post("/_emulator/balance", self.set_balance)
        r.add_post("/_emulator/blocks", self.blocks)
        r.add_get("/_emulator/state", self.state)
        app.on_shutdown.append(self._release_held)
        app.cleanup_ctx.append(self._ticker)
        return app

    # --------------------------------------------------------------------------- plumbing
    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("request.failed", method=request.method, path=request.path)
            return _bad(f"internal error: {type(exc).__name__}", 500)

    def _faulted(self, handler: Handler, rpc: bool = False) -> Handler:

        async def faulted(request: web.Request) -> web.StreamResponse:
            if self.faults.take("http_429"):
                log.info("fault.http_429", path=request.path)
                return _json(_rpc_error(429, "Too many requests") if rpc else
                             {"error": "Too many requests", "errorCode": "TOO_MANY_REQUESTS"}, 429)  # fmt: skip
            if self.faults.take("http_500"):
                log.info("fault.http_500", path=request.path)
                return _json(_rpc_error(-32603, "Internal Server Error") if rpc else
                             {"error": "Internal Server Error", "errorCode": "INTERNAL_SERVER_ERROR"}, 500)  # fmt: skip
            return await handler(request)

        return faulted

    def _keyed(self, handler: Handler) -> Handler:
        async def keyed(request: web.Request) -> web.StreamResponse:
            if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
                return _json({"error": "Unauthorized: a valid x-api-key header is required",
                              "errorCode": "UNAUTHORIZED"}, 401)  # fmt: skip
            return await handler(request)

        return keyed

    async def _hold(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held.add(fut)
        try:
            await fut
        finally:
            self._held.discard(fut)

    async def _release_held(self, app: web.Application) -> None:
        for fut in list(self._held):
            fut.cancel()

    async def _ticker(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._tick()) if self.block_s > 0 else None
        yield
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due = max(due + self.block_s, loop.time())
            await asyncio.sleep(due - loop.time())
            self.chain.advance()

    # ------------------------------------------------------------------------------ routes
    async def rpc_call(self, request: web.Request) -> web.StreamResponse:
        reply = self.rpc.handle(await request.read())
        if reply.hold:
            await self._hold()
        return _json(reply.body)

    async def quote(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            body = self.swapper.quote(request.query)
        except SwapError as e:
            return _json(e.body(), e.status)
        body["timeTaken"] = time.perf_counter() - started
        return _json(body)

    async def swap(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _json(SwapError("INVALID_REQUEST", "the body is not JSON").body(), 400)
        try:
            return _json(self.swapper.swap(body))
        except SwapError as e:
            return _json(e.body(), e.status)

    async def price(self, request: web.Request) -> web.StreamResponse:
        try:
            return _json(self.swapper.price(request.query))
        except SwapError as e:
            return _json(e.body(), e.status)

    async def advance(self, request: web.Request) -> web.StreamResponse:
        ts = _query_int(request, "ts_ms")
        if ts is None:
            return _bad("ts_ms (the replay time, Unix ms) must be an integer")
        before = self.market.clock_ms
        clock = self.market.advance(ts)
        if clock != before:
            log.debug("clock.advanced", clock_ms=clock)
        return _json({"clock_ms": clock})

    async def get_faults(self, request: web.Request) -> web.StreamResponse:
        return _json({"faults": self.faults.to_json()})

    async def set_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            self.faults.update(json.loads(await request.read()))
        except ValueError as exc:  # FaultError or bad JSON
            return _bad(f"bad faults: {exc}")
        log.info("faults.set", **{k: v for k, v in self.faults.to_json().items() if k != "cursed"})
        return _json({"faults": self.faults.to_json()})

    async def set_balance(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _bad("the body is not JSON")
        if not isinstance(body, dict) or not set(body) <= {"sol", "usdc", "base"}:
            return _bad('the body must be an object with any of "sol" (lamports), "usdc" and "base" (raw units)')
        for name, value in body.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
                return _bad(f"{name}: expected an integer in [0, 2**64 - 1], got {value!r}")
        if "sol" in body:
            self.chain.set_lamports(self.user, body["sol"])
        for name, mint in (("usdc", QUOTE_MINT), ("base", BASE_MINT)):
            if name in body:
                self.chain.set_token_amount(get_associated_token_address(self.user, mint), body[name])
        log.info("balance.set", **body)
        return _json(self.user_state())

    async def blocks(self, request: web.Request) -> web.StreamResponse:
        n = _query_int(request, "n")
        if n is None or not 1 <= n <= MAX_BLOCKS_PER_CALL:
            return _bad(f"n must be an integer in [1, {MAX_BLOCKS_PER_CALL}]")
        return _json({"height": self.chain.advance(n)})

    async def state(self, request: web.Request) -> web.StreamResponse:
        return _json(self.snapshot())

    # ----------------------------------------------------------------------------- state
    def user_state(self) -> dict[str, Any]:
        c, u = self.chain, self.user
        return {"pubkey": str(u), "sol_lamports": c.lamports(u),
                "usdc_raw": c.token_amount(get_associated_token_address(u, QUOTE_MINT)),
                "base_raw": c.token_amount(get_associated_token_address(u, BASE_MINT))}  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        """``GET /_emulator/state`` (at the tip, whatever the lag)."""
        c = self.chain
        landed = [{"signature": str(r.signature), "err": None if r.err is None else error_text(r.err), "fee": r.fee,
                   "slot": r.slot} for r in c.landed.values()]  # fmt: skip
        return {"height": c.height, "slot": c.height, "clock_ms": self.market.clock_ms, "user": self.user_state(),
                "landed": landed, "sends": {str(s): n for s, n in self.rpc.sends.items()},
                "faults": self.faults.to_json(), "base_mint": str(BASE_MINT), "quote_mint": str(QUOTE_MINT)}  # fmt: skip


def _rpc_error(code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": None}


def _query_int(request: web.Request, name: str) -> int | None:
    text = request.query.get(name, "")
    try:
        return int(text)
    except ValueError:
        return None
