"""``python -m testbed.emulator``: run the Binance emulator as a standalone process (see ``serve``)."""

from __future__ import annotations

import argparse
import asyncio
import json


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m testbed.emulator", description=__doc__)
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: ephemeral)")
    ap.add_argument("--bars", default=None, help="OHLCV CSV (default: the bundled FTX BTC-PERP 1m file)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N bars")
    ap.add_argument("--ca-out", default=None, help="write the CA PEM here (default: a temp file)")
    ap.add_argument("--api-key", default="emulator")
    ap.add_argument("--secret", default="emulator-secret")
    ap.add_argument("--spot", default='{"USDT": "10000"}', help='spot balances as JSON, e.g. {"USDT": "10000"}')
    ap.add_argument("--usdm-usdt", default="10000", help="USD-M USDT wallet balance")
    a = ap.parse_args(argv)
    from . import serve

    try:
        asyncio.run(serve(a.port, a.bars, a.ca_out, a.api_key, a.secret, json.loads(a.spot), a.usdm_usdt, a.limit))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
