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
    ap.add_argument("--stream-bars-per-s", type=float, default=0.0,
                    help="serve kline streams at this many bars per second (0: REST only)")
    ap.add_argument("--stream-start", type=int, default=0, help="first bar streamed (those before: REST history)")
    ap.add_argument("--stream-faults", default="[]",
                    help='stream faults, JSON: [{"kind": "gap", "at_bar": 300, "bars": 3}, ...]')
    a = ap.parse_args(argv)
    from . import parse_stream_faults, serve

    stream = None
    if a.stream_bars_per_s > 0:
        try:
            faults = parse_stream_faults(a.stream_faults)
        except ValueError as exc:
            ap.error(str(exc))
        stream = {"start": a.stream_start, "bars_per_s": a.stream_bars_per_s, "faults": faults}
    try:
        asyncio.run(serve(a.port, a.bars, a.ca_out, a.api_key, a.secret, json.loads(a.spot), a.usdm_usdt, a.limit,
                          stream=stream))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
