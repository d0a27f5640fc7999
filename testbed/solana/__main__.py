"""``python -m testbed.solana``: run the local Solana cluster and swap service as a process.

Loads the bars (``foundation.barcsv.load_bars``, the same the brain replays), makes a fresh user
keypair and writes it to ``--keypair-out`` in solana-keygen format (a JSON array of the 64
secret-key bytes, mode 0600), funds it, listens on 127.0.0.1 and prints ONE JSON line on stdout
when ready (:meth:`testbed.solana.LocalCluster.ready_line`: ``{"event": "solana_ready", "port",
"rpc_url", "swap_url", "price_url", "base_mint", "quote_mint", "user", "maker", "sol_mint"}``),
then serves until SIGTERM or SIGINT and exits 0. Logs (structlog) go to stderr.

Exit status 2 with a message on stderr: bad arguments or bars that do not load; 1: the port cannot
be bound or the keypair file cannot be written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from solders.keypair import Keypair

from foundation.bars import Bars

__all__ = ["main", "write_keypair"]


def write_keypair(path: Path, kp: Keypair) -> None:
    """Write ``kp`` as solana-keygen JSON (``list(bytes(kp))``, 64 numbers), mode 0600 from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        fh.write(json.dumps(list(bytes(kp))) + "\n")


async def _serve(args: argparse.Namespace, bars: Bars) -> None:
    import structlog

    from . import LocalCluster

    log = structlog.get_logger("testbed.solana")
    cluster = LocalCluster(bars, args.cash, sol=args.sol, block_s=args.block_s, spread_bps=args.spread_bps,
                           sol_usd=args.sol_usd, port=args.port, api_key=args.api_key)  # fmt: skip
    write_keypair(Path(args.keypair_out), cluster.user)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with cluster:
        line = cluster.ready_line()
        print(json.dumps(line), flush=True)
        log.info("solana.ready", port=cluster.port, user=line["user"], block_s=args.block_s)
        await stop.wait()
    log.info("solana.stopped", height=cluster.chain.height, landed=len(cluster.chain.landed))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.solana", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", required=True, help="OHLCV CSV (foundation.barcsv format)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N bars")
    ap.add_argument("--cash", type=float, required=True, help="the user's starting USDC")
    ap.add_argument("--sol", type=float, default=2.0, help="the user's starting SOL (default 2.0)")
    ap.add_argument("--keypair-out", required=True, help="write the user's keypair here (solana-keygen JSON, 0600)")
    ap.add_argument("--block-s", type=float, default=0.4, help="seconds per block (default 0.4; 0: no ticker)")
    ap.add_argument("--spread-bps", type=float, default=2.0, help="the maker's half-spread in bps (default 2.0)")
    ap.add_argument("--sol-usd", type=float, default=150.0, help="SOL's price on the price API (default 150.0)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: ephemeral)")
    ap.add_argument("--api-key", default=None, help="require this x-api-key on the swap routes")
    ap.add_argument("--log-level", default="info", help="debug, info, warning or error")
    args = ap.parse_args(argv)
    if args.cash < 0 or args.sol < 0 or args.block_s < 0 or not 0 <= args.spread_bps < 10_000:
        ap.error("--cash, --sol and --block-s must be >= 0 and --spread-bps in [0, 10000)")
    from foundation.barcsv import MarketDataError, load_bars
    from foundation.logs import configure_logging

    try:
        configure_logging(args.log_level, sys.stderr)
        bars = load_bars(args.bars, limit=args.limit)
    except (MarketDataError, ValueError) as exc:
        ap.error(str(exc))
    if len(bars) == 0:
        ap.error(f"{args.bars}: no bars")
    try:
        asyncio.run(_serve(args, bars))
    except OSError as exc:  # the port is taken, the keypair file cannot be written
        print(f"python -m testbed.solana: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
