"""Venue pieces that need no exchange: client order ids, error translation, live-trading guards."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from ccxt.base import errors as cx

from executor.main import build_venue
from executor.settings import ExecutorSettings
from executor.venue.ccxt_venue import translate
from executor.venue.coid import MAX_LENGTH, ClientOrderId, Leg, OrderIds, new_namespace, parse
from executor.venue.errors import AmbiguousVenueError, OrderAbsent, PermanentVenueError, TemporaryVenueError
from foundation.errors import ConfigError
from foundation.settings import load_settings
from protocol import RejectCode

BINANCE_COID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")  # Binance "New order" newClientOrderId rule


@pytest.mark.parametrize("decision_id", [1, 42, 2**63, 2**64 - 1])
@pytest.mark.parametrize("leg", list(Leg))
def test_client_order_id_is_deterministic_within_binance_rules_and_parses_back(decision_id: int, leg: Leg) -> None:
    """Every leg's id is the same on every call, fits Binance's newClientOrderId rule, and parses back."""
    ids = OrderIds(new_namespace())
    coid = ids.id(leg, decision_id)
    assert coid == OrderIds(ids.namespace).id(leg, decision_id)
    assert len(coid) <= MAX_LENGTH and BINANCE_COID.fullmatch(coid)
    assert parse(coid) == ClientOrderId(ids.namespace, leg, decision_id)
    assert ids.mine(coid) == ids.mine(coid, leg) == parse(coid)


def test_client_order_id_strings_keep_their_stored_format() -> None:
    """The factories write, and parse reads, the exact strings journals and exchanges already hold."""
    ids = OrderIds("3fa9c1d2")
    assert (ids.order(42), ids.stop(42)) == ("td3fa9c1d2e42", "td3fa9c1d2p42")
    assert str(ClientOrderId("3fa9c1d2", Leg.ORDER, 2**64 - 1)) == "td3fa9c1d2e18446744073709551615"
    written_before = parse("td0000000ap7")  # an id as an executor wrote it before OrderIds existed
    assert written_before == ClientOrderId("0000000a", Leg.STOP, 7)
    assert written_before.protective and not parse("td0000000ae7").protective  # type: ignore[union-attr]


def test_client_order_ids_differ_by_namespace_leg_and_decision() -> None:
    """Two namespaces, three legs (order, stop, take-profit) and three decisions make eighteen different ids; foreign ids parse to None."""
    ids = {OrderIds(ns).id(leg, d) for ns in ("00000000", "0000000a") for d in (1, 2, 11) for leg in Leg}
    assert len(ids) == 18
    for foreign in ("x-foreign-id", "td0000000ae", "td0000000axe1", "TD0000000ae1", "td0000000ae0",
                    "td0000000ae1 ", "td0000000ae18446744073709551616"):  # fmt: skip
        assert parse(foreign) is None, foreign


def test_order_ids_recognise_only_their_own_namespace_and_leg() -> None:
    """mine() answers an id of its own namespace (and leg, if asked), and None for another run's id."""
    ours, theirs = OrderIds("0000000a"), OrderIds("0000000b")
    assert ours.mine(ours.stop(3), Leg.STOP) == ClientOrderId("0000000a", Leg.STOP, 3)
    assert ours.mine(ours.order(3), Leg.STOP) is None
    assert ours.mine(theirs.stop(3)) is None and ours.mine("x-foreign-id") is None


@pytest.mark.parametrize("bad", [("ZZZZZZZZ", 1), ("0000000", 1), ("00000000", 0), ("00000000", 2**64)])
def test_client_order_id_rejects_bad_parts(bad: tuple) -> None:
    """A bad namespace or an out-of-range decision id is refused with ValueError; a bad leg with TypeError."""
    ns, did = bad
    with pytest.raises(ValueError):
        OrderIds(ns).order(did)
    with pytest.raises(ValueError):
        ClientOrderId(ns, Leg.ORDER, did)
    with pytest.raises(TypeError):
        ClientOrderId("00000000", "x", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "idempotent", "kind", "code"),
    [
        (cx.RequestTimeout("t"), False, AmbiguousVenueError, None),
        (cx.RequestTimeout("t"), True, TemporaryVenueError, None),
        (cx.NetworkError("reset"), False, AmbiguousVenueError, None),
        (cx.ExchangeNotAvailable("503"), False, AmbiguousVenueError, None),
        (cx.RateLimitExceeded("429"), False, TemporaryVenueError, None),
        (cx.DDoSProtection("418"), False, TemporaryVenueError, None),
        (cx.InvalidNonce("-1021"), False, TemporaryVenueError, None),
        (cx.InsufficientFunds("-2010"), False, PermanentVenueError, RejectCode.INSUFFICIENT_FUNDS),
        (cx.InvalidOrder("Filter failure: LOT_SIZE"), False, PermanentVenueError, RejectCode.INVALID_QUANTITY),
        (cx.BadSymbol("nope"), False, PermanentVenueError, RejectCode.UNKNOWN_INSTRUMENT),
        (cx.AuthenticationError("-2015"), True, PermanentVenueError, RejectCode.VENUE_ERROR),
        (cx.OrderNotFound("-2013 Order does not exist."), True, OrderAbsent, RejectCode.VENUE_ERROR),
        (cx.OrderNotFound("-2011 Unknown order sent."), False, OrderAbsent, RejectCode.VENUE_ERROR),
    ],
)
def test_ccxt_errors_translate_to_three_kinds(exc: Exception, idempotent: bool, kind: type, code: RejectCode | None) -> None:
    out = translate(exc, where="create_order BTC/USDT td00000000e1", idempotent=idempotent)
    assert type(out) is kind
    assert "create_order BTC/USDT td00000000e1" in out.detail and type(exc).__name__ in out.detail
    if code is not None:
        assert out.reject_code is code


def _settings(tmp_path: Path, *flags: str) -> ExecutorSettings:
    return load_settings(ExecutorSettings, ["--run-dir", str(tmp_path), *flags], "tandem executor")


def test_ccxt_without_live_or_sandbox_is_refused(tmp_path: Path) -> None:
    s = _settings(tmp_path, "--venue", "ccxt", "--api-key", "k", "--api-secret", "s")
    with pytest.raises(ConfigError, match="--live"):
        build_venue(s)


def test_live_without_keys_is_refused(tmp_path: Path) -> None:
    s = _settings(tmp_path, "--venue", "ccxt", "--live")
    with pytest.raises(ConfigError, match="api_key, api_secret"):
        build_venue(s)


def test_live_and_sandbox_together_are_refused(tmp_path: Path) -> None:
    s = _settings(tmp_path, "--venue", "ccxt", "--live", "--sandbox", "--api-key", "k", "--api-secret", "s")
    with pytest.raises(ConfigError, match="choose one"):
        build_venue(s)


def test_keys_from_files_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("AKEY123\n")
    (tmp_path / "secret").write_text("SSECRET456\n")
    s = _settings(tmp_path, "--venue", "ccxt", "--sandbox", "--api-key-file", str(tmp_path / "key"),
                  "--api-secret-file", str(tmp_path / "secret"))  # fmt: skip
    assert s.exchange_keys() == ("AKEY123", "SSECRET456")
    inline = _settings(tmp_path, "--api-key", "AKEY123", "--api-secret", "SSECRET456")
    for text in (repr(inline), str(inline), inline.model_dump_json()):
        assert "AKEY123" not in text and "SSECRET456" not in text


def test_unreadable_key_file_names_the_setting(tmp_path: Path) -> None:
    s = _settings(tmp_path, "--venue", "ccxt", "--sandbox", "--api-key-file", str(tmp_path / "missing"),
                  "--api-secret", "x")  # fmt: skip
    with pytest.raises(ConfigError, match="api_key_file"):
        s.exchange_keys()


def test_sandbox_venue_uses_binance_testnet_urls(tmp_path: Path) -> None:
    s = _settings(tmp_path, "--venue", "ccxt", "--sandbox", "--api-key", "k", "--api-secret", "s")
    venue = build_venue(s)
    assert "testnet" in str(venue.exchange.urls["api"]["public"])



async def test_retry_policy_is_bounded_by_attempts_and_reports_each_retry() -> None:
    import time

    from executor.venue.retry import RetryPolicy

    calls, retries = [], []

    async def always_temporary() -> None:
        calls.append(time.monotonic())
        raise TemporaryVenueError("429")

    policy = RetryPolicy(attempts=4, deadline_s=10.0, base_s=0.01, cap_s=0.02)
    with pytest.raises(TemporaryVenueError):
        await policy.call(always_temporary, what="t", on_retry=retries.append)
    assert len(calls) == 4 and len(retries) == 3  # one event per wait between tries
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert all(g <= 0.02 + 0.05 for g in gaps)  # waits capped at cap_s (plus scheduling slack)


async def test_retry_policy_is_bounded_by_elapsed_time() -> None:
    from executor.venue.retry import RetryPolicy

    calls = 0

    async def slow_temporary() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise TemporaryVenueError("503")

    policy = RetryPolicy(attempts=100, deadline_s=0.3, base_s=0.01, cap_s=0.02)
    with pytest.raises(TemporaryVenueError):
        await policy.call(slow_temporary, what="t")
    assert 2 <= calls <= 7  # ~0.3 s of 50 ms tries, not 100


@pytest.mark.parametrize("exc", [AmbiguousVenueError("timeout"), PermanentVenueError("-2010")])
async def test_retry_policy_never_retries_ambiguous_or_permanent(exc: Exception) -> None:
    from executor.venue.retry import RetryPolicy

    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise exc

    with pytest.raises(type(exc)):
        await RetryPolicy(base_s=0.01).call(fails, what="t")
    assert calls == 1


async def test_retry_policy_returns_once_the_venue_recovers() -> None:
    from executor.venue.retry import RetryPolicy

    answers = iter([TemporaryVenueError("429"), TemporaryVenueError("-1021"), "ok"])

    async def flaky() -> str:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    assert await RetryPolicy(base_s=0.01, cap_s=0.02).call(flaky, what="t") == "ok"


@pytest.mark.parametrize("exchange_id", ["binance", "binanceusdm", "okx", "kraken", "bybit", "coinbase"])
async def test_any_ccxt_exchange_id_builds_a_venue_without_network(exchange_id: str) -> None:
    """The adapter takes any ccxt id (markets load later, in start()); an unknown id is refused."""
    from executor.venue.ccxt_venue import CcxtVenue

    venue = CcxtVenue(exchange_id, {"apiKey": "k", "secret": "s"})
    try:
        assert venue.name == exchange_id and venue.exchange.id == exchange_id
        assert venue.ambiguity_window_s > 0
    finally:
        await venue.close()


def test_unknown_ccxt_exchange_id_is_refused() -> None:
    from executor.venue.ccxt_venue import CcxtVenue

    with pytest.raises(PermanentVenueError, match="no exchange 'nosuchexchange'"):
        CcxtVenue("nosuchexchange", {})
