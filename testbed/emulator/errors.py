"""Binance REST error bodies the emulator answers with, and the one exception that carries them.

Every rejection in the emulator is a :class:`BinanceError`: an HTTP status plus Binance's
``{"code": <int>, "msg": <str>}`` body. The server turns it into the HTTP answer; nothing else
in the package builds error bodies.

Sources of the texts: binance/binance-spot-api-docs ``errors.md`` and ``rest-api.md`` (commit
a5e0bc3d, copied in ``fixtures/spot_rest_errors.json``), Binance USDⓈ-M futures "Error Codes"
page (-2019, -2021, -2022, -4116, -4120, -4164) as quoted in ccxt 4.5.90 ``binance.py`` comments;
spot cancelReplace -2021/-2022 bodies from the spot rest-api docs ("Cancel an Existing Order and
Send a New Order (TRADE)"). HTTP statuses: 400 for request errors, 401 for API-key errors,
409 for a partially failed cancelReplace, 429/418 for rate limits (the docs only promise "4XX";
these are the statuses Binance is seen to send).
"""

from __future__ import annotations

__all__ = ["BinanceError", "E"]


class BinanceError(Exception):
    """A Binance error answer.

    Attributes:
        status: HTTP status code.
        code: Binance error code (negative int).
        msg: Binance error message, verbatim.
    """

    def __init__(self, code: int, msg: str, status: int = 400, data: dict | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg, self.status, self.data = code, msg, status, data

    def body(self) -> dict[str, object]:
        """The JSON body Binance sends: ``{"code": -2010, "msg": "..."}`` (plus ``data`` if any)."""
        out: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out


class E:
    """Factories for the errors the emulator raises (one place for every code and text)."""

    @staticmethod
    def unknown_order() -> BinanceError:  # cancel of an unknown/closed order
        return BinanceError(-2011, "Unknown order sent.")

    @staticmethod
    def no_such_order() -> BinanceError:  # query of an unknown order
        return BinanceError(-2013, "Order does not exist.")

    @staticmethod
    def insufficient_balance() -> BinanceError:
        return BinanceError(-2010, "Account has insufficient balance for requested action.")

    @staticmethod
    def duplicate_order() -> BinanceError:  # spot: duplicate clientOrderId among open orders
        return BinanceError(-2010, "Duplicate order sent.")

    @staticmethod
    def duplicate_client_id_futures() -> BinanceError:
        return BinanceError(-4116, "ClientOrderId is duplicated.")

    @staticmethod
    def stop_would_trigger() -> BinanceError:  # spot STOP_LOSS(_LIMIT) already through its stop
        return BinanceError(-2010, "Stop price would trigger immediately.")

    @staticmethod
    def algo_would_trigger() -> BinanceError:  # USDⓈ-M conditional order already through its trigger
        return BinanceError(-2021, "Order would immediately trigger.")

    @staticmethod
    def filter_failure(name: str) -> BinanceError:
        return BinanceError(-1013, f"Filter failure: {name}")

    @staticmethod
    def market_closed() -> BinanceError:
        """No bar left to fill a market order: the replay has ended, the market is closed.

        Binance answers ``{"code":-1013,"msg":"Market is closed."}`` when a symbol is not trading
        (ccxt maps this exact text to ``MarketClosed``)."""
        return BinanceError(-1013, "Market is closed.")

    @staticmethod
    def timestamp_outside() -> BinanceError:
        return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")

    @staticmethod
    def timestamp_ahead() -> BinanceError:
        return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")

    @staticmethod
    def bad_signature() -> BinanceError:
        return BinanceError(-1022, "Signature for this request is not valid.")

    @staticmethod
    def bad_api_key_format() -> BinanceError:
        return BinanceError(-2014, "API-key format invalid.", 401)

    @staticmethod
    def invalid_api_key() -> BinanceError:
        return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)

    @staticmethod
    def mandatory(param: str) -> BinanceError:
        return BinanceError(-1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed.")

    @staticmethod
    def illegal_chars(param: str) -> BinanceError:
        return BinanceError(-1100, f"Illegal characters found in parameter '{param}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")

    @staticmethod
    def not_required(param: str) -> BinanceError:
        return BinanceError(-1106, f"Parameter '{param}' sent when not required.")

    @staticmethod
    def invalid_symbol() -> BinanceError:
        return BinanceError(-1121, "Invalid symbol.")

    @staticmethod
    def invalid_interval() -> BinanceError:
        return BinanceError(-1120, "Invalid interval.")

    @staticmethod
    def invalid_order_type() -> BinanceError:
        return BinanceError(-1116, "Invalid orderType.")

    @staticmethod
    def invalid_side() -> BinanceError:
        return BinanceError(-1117, "Invalid side.")

    @staticmethod
    def invalid_tif() -> BinanceError:
        return BinanceError(-1115, "Invalid timeInForce.")

    @staticmethod
    def recv_window_too_big() -> BinanceError:
        return BinanceError(-1131, "recvWindow must be less than 60000")

    @staticmethod
    def rate_limited(status: int = 429) -> BinanceError:
        """-1003 in the three texts Binance uses: 429 weight exceeded, 418 IP ban, else queued."""
        if status == 418:
            msg = ("Way too much request weight used; IP banned until 1700000000000. "
                   "Please use WebSocket Streams for live updates to avoid bans.")
        elif status == 429:
            msg = ("Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
                   "Please use WebSocket Streams for live updates to avoid polling the API.")
        else:
            msg = "Too many requests queued."
        return BinanceError(-1003, msg, status)

    @staticmethod
    def cancel_replace_failed(data: dict) -> BinanceError:
        """Spot cancelReplace: the cancel failed (STOP_ON_FAILURE: new order NOT_ATTEMPTED), or both
        legs failed (ALLOW_FAILURE). HTTP 400 (Binance spot rest-api "Cancel an Existing Order and
        Send a New Order": status table)."""
        return BinanceError(-2022, "Order cancel-replace failed.", 400, data)

    @staticmethod
    def cancel_replace_partial(data: dict) -> BinanceError:
        """Spot cancelReplace: one leg succeeded, the other failed. HTTP 409 (same source)."""
        return BinanceError(-2021, "Order cancel-replace partially failed.", 409, data)

    @staticmethod
    def margin_insufficient() -> BinanceError:
        return BinanceError(-2019, "Margin is insufficient.")

    @staticmethod
    def reduce_only_rejected() -> BinanceError:
        return BinanceError(-2022, "ReduceOnly Order is rejected.")

    @staticmethod
    def use_algo_endpoint() -> BinanceError:
        """USDⓈ-M conditional types sent to /fapi/v1/order since the Dec 2025 Algo Service move."""
        return BinanceError(-4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.")

    @staticmethod
    def min_notional_futures(notional: str) -> BinanceError:
        return BinanceError(-4164, f"Order's notional must be no smaller than {notional} (unless you choose reduce only).")

    @staticmethod
    def precision_over_max() -> BinanceError:
        return BinanceError(-1111, "Precision is over the maximum defined for this asset.")

    @staticmethod
    def qty_too_small() -> BinanceError:
        return BinanceError(-4003, "Quantity less than or equal to zero.")

    @staticmethod
    def qty_too_big() -> BinanceError:
        return BinanceError(-4005, "Quantity greater than max quantity.")
