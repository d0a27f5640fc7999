"""Settings sources, the metrics endpoint, rate-limited logging and secret handling."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from brain.metrics import BrainMetrics
from brain.settings import BrainSettings
from executor.settings import ExecutorSettings
from foundation.bussecret import load_bus_secret, write_secret_file
from foundation.errors import ConfigError
from foundation.logs import RateLimitedLog
from foundation.metricsserver import start_metrics_server
from foundation.runtime import parse_address
from foundation.settings import load_settings


def test_settings_precedence_flag_over_env_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLI flag beats a TANDEM_* env var, which beats .env, which beats the default."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TANDEM_STOP_LOSS_PCT=7\nTANDEM_TRAILING_PCT=4\nTANDEM_TIME_STOP_DAYS=3\n")
    monkeypatch.setenv("TANDEM_TRAILING_PCT", "3")
    monkeypatch.setenv("TANDEM_TIME_STOP_DAYS", "2")
    s = load_settings(BrainSettings, ["--time-stop-days", "1"], "tandem brain")
    assert (s.stop_loss_pct, s.trailing_pct, s.time_stop_days) == (7.0, 3.0, 1.0)
    assert s.trailing_activation_pct == 12.0


def test_invalid_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Bad values raise ConfigError naming the field, its env var and its flag; secrets are not echoed."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"decision_addr \(TANDEM_DECISION_ADDR / --decision-addr\)"):
        load_settings(ExecutorSettings, ["--decision-addr", "nonsense"], "tandem executor")
    with pytest.raises(ConfigError, match="fee_bps"):
        load_settings(ExecutorSettings, ["--fee-bps", "abc"], "tandem executor")
    with pytest.raises(ConfigError, match="unrecognized arguments"):
        load_settings(ExecutorSettings, ["--no-such-flag", "1"], "tandem executor")


def test_parse_address() -> None:
    """host:port parses; a bad port or missing host raises ConfigError naming the setting."""
    assert parse_address("127.0.0.1:45110", setting="x") == ("127.0.0.1", 45110)
    assert parse_address("[::1]:9", setting="x") == ("::1", 9)
    for bad in ("45110", "host:", "host:99999", ":1"):
        with pytest.raises(ConfigError, match="^x:"):
            parse_address(bad, setting="x")


def test_bus_secret_sources(tmp_path: Path) -> None:
    """The secret comes from the env text or a 0600 key file (hex); neither, both or empty is refused."""
    key = tmp_path / "bus.key"
    secret = b"\x00\x01" + b"s" * 30
    write_secret_file(key, secret)
    assert key.stat().st_mode & 0o777 == 0o600
    assert load_bus_secret(None, key) == secret
    assert load_bus_secret(SecretStr("t" * 32), None) == b"t" * 32
    for args in ((None, None), (SecretStr("a" * 32), key), (SecretStr(""), None), (None, tmp_path / "missing")):
        with pytest.raises(ConfigError, match="bus_secret"):
            load_bus_secret(*args)
    with pytest.raises(ConfigError) as info:
        load_bus_secret(SecretStr("hunter2-secret-hunter2-secret-32"), key)
    assert "hunter2" not in str(info.value)


async def test_metrics_endpoint_serves_the_registry() -> None:
    """The metrics server on an ephemeral port serves the brain's metric families."""
    metrics = BrainMetrics()
    metrics.positions_opened.inc()
    server = await start_metrics_server(metrics.registry, "127.0.0.1", 0)
    assert server is not None
    try:
        import asyncio

        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
        )
    finally:
        await server.close()
    assert "tandem_brain_positions_opened_total 1.0" in body
    for name in ("tandem_brain_positions_closed_total", "tandem_brain_decision_outcomes_total",
                 "tandem_brain_confirmation_latency_seconds_bucket", "tandem_brain_datagrams_rejected_total"):  # fmt: skip
        assert f"# TYPE {name.removesuffix('_bucket').removesuffix('_total')}" in body
    assert await start_metrics_server(metrics.registry, "127.0.0.1", -1) is None


async def test_metrics_endpoint_answers_http_as_a_scraper_expects() -> None:
    """Keep-alive scrapes on one connection; HEAD without a body; 404 elsewhere, 405 for another
    method; a malformed request gets 400 and its connection closes while the endpoint keeps serving;
    a silent connection is closed after the idle timeout."""
    import asyncio

    metrics = BrainMetrics()
    server = await start_metrics_server(metrics.registry, "127.0.0.1", 0, idle_timeout_s=0.3)
    assert server is not None

    async def exchange(*requests: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for r in requests:
            writer.write(r)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)  # until the server closes the connection
        writer.close()
        return data

    try:
        get = b"GET /metrics?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
        two = await exchange(get, get.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        assert two.count(b"HTTP/1.1 200 OK\r\n") == 2 and two.count(b"\ntandem_brain_positions_opened_total 0.0\n") == 2
        assert b"Content-Type: text/plain; version=" in two or b"content-type: text/plain; version=" in two
        head = await exchange(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"# TYPE" not in head
        assert (await exchange(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")).startswith(b"HTTP/1.1 404 ")
        post = await exchange(b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        assert post.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: GET, HEAD\r\n" in post
        assert (await exchange(b"NONSENSE\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        t0 = asyncio.get_running_loop().time()
        assert await exchange() == b""  # silent: closed by the server after 0.3 s
        assert 0.25 <= asyncio.get_running_loop().time() - t0 < 3
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
        )
        assert "tandem_brain_positions_opened_total 0.0" in body
    finally:
        await server.close()


def test_rate_limited_log_suppresses_and_reports_count() -> None:
    """A flood logs once per interval per reason, and the next line says how many were suppressed."""
    now = [0.0]
    log = structlog.get_logger("t")
    limited = RateLimitedLog(log, "datagram_rejected", interval_s=1.0, clock=lambda: now[0])
    with structlog.testing.capture_logs() as logs:
        logged = [limited.warning("auth") for _ in range(1000)]
        limited.warning("size")
        now[0] = 1.5
        limited.warning("auth")
    assert sum(logged) == 1
    assert [(e["reason"], e["suppressed"]) for e in logs] == [("auth", 0), ("size", 0), ("auth", 999)]


def test_every_bus_secret_needs_32_bytes(tmp_path: Path) -> None:
    """A secret under 32 bytes is refused, as text or file, loopback or not, naming the setting and not the secret."""
    from foundation.bussecret import MIN_BUS_SECRET_BYTES

    assert MIN_BUS_SECRET_BYTES == 32
    with pytest.raises(ConfigError, match=r"^bus_secret: the bus secret is 31 bytes, at least 32") as info:
        load_bus_secret(SecretStr("short-secret-short-secret-short!"[:31]), None)
    assert "short-secret" not in str(info.value)
    key = tmp_path / "bus.key"
    write_secret_file(key, b"k" * 16)  # 32 hex characters: 16 bytes
    with pytest.raises(ConfigError, match=r"^bus_secret_file: the bus secret is 16 bytes"):
        load_bus_secret(None, key)
    write_secret_file(key, b"k" * 32)
    assert load_bus_secret(None, key) == b"k" * 32


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A key file that group or others may read or write is refused as ssh refuses such keys; 0600 and 0400 are fine."""
    key = tmp_path / "bus.key"
    write_secret_file(key, b"k" * 32)
    key.chmod(mode)
    with pytest.raises(ConfigError) as info:
        load_bus_secret(None, key)
    assert str(info.value) == f"bus_secret_file: permissions {mode:04o} for '{key}' are too open; chmod 600 it"
    key.chmod(0o400)
    assert load_bus_secret(None, key) == b"k" * 32


async def udp_sink() -> tuple[Any, int, Any]:
    """A UDP socket on an ephemeral loopback port: ``(transport, port, future of the first datagram)``."""
    import asyncio

    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    return transport, transport.get_extra_info("sockname")[1], got


def test_peer_host_name_is_resolved_for_uvloop() -> None:
    """A peer given by name is resolved once at bind time, so uvloop's numeric-only sendto works."""
    import asyncio

    import uvloop

    from protocol import Codec, derive_key
    from protocol.udp import open_endpoint

    async def roundtrip() -> bytes:
        sink, port, got = await udp_sink()
        codec = Codec(derive_key(b"k" * 32))
        ep = await open_endpoint(("127.0.0.1", 0), codec, lambda m, a: None, lambda e, a: None, peer=("localhost", port))
        assert ep.peer == ("127.0.0.1", port)
        ep.send_raw(b"hello")
        try:
            return await asyncio.wait_for(got, 2)
        finally:
            ep.close()
            sink.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(roundtrip()) == b"hello"


def test_unresolvable_peer_is_retried_later() -> None:
    """A peer name that does not resolve yet (compose: peer not started) neither fails the bind nor
    crashes a send; sends are dropped and resolution is retried until it succeeds."""
    import asyncio

    import uvloop

    from protocol import Codec, derive_key
    from protocol.udp import open_endpoint

    async def scenario() -> bytes:
        sink, port, got = await udp_sink()
        codec = Codec(derive_key(b"k" * 32))
        ep = await open_endpoint(("127.0.0.1", 0), codec, lambda m, a: None, lambda e, a: None,
                                 peer=("peer-not-started.invalid", port))  # fmt: skip
        try:
            assert ep.peer is None
            ep.send_raw(b"lost")  # dropped, schedules a resolution attempt
            await asyncio.sleep(0.05)
            assert ep.peer is None and not got.done()
            ep.peer_name = ("localhost", port)  # the name now resolves (the peer came up)
            ep._next_resolve = 0.0  # skip the 1 s retry spacing in the test
            ep.send_raw(b"dropped while resolving")
            await asyncio.sleep(0.05)
            assert ep.peer == ("127.0.0.1", port)
            ep.send_raw(b"hello")
            return await asyncio.wait_for(got, 2)
        finally:
            ep.close()
            sink.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(scenario()) == b"hello"


def test_log_format_auto_is_json_off_a_terminal_and_console_on_one(tmp_path: Path) -> None:
    """auto: JSON lines into a file (or pipe), the readable console renderer on a real terminal (a
    pty); both carry the context bound with structlog.contextvars."""
    import json
    import os

    from foundation.logs import configure_logging

    try:
        with (tmp_path / "log").open("w") as fh:
            assert configure_logging("info", fh) is True
            with structlog.contextvars.bound_contextvars(decision_id=7, client_order_id="tdabcdef01e7"):
                structlog.get_logger("t").info("order_found", seq=3)
            structlog.get_logger("t").debug("not at info")
        (line,) = (tmp_path / "log").read_text().splitlines()
        record = json.loads(line)
        assert record["event"] == "order_found" and record["level"] == "info" and record["timestamp"].endswith("Z")
        assert (record["decision_id"], record["client_order_id"], record["seq"]) == (7, "tdabcdef01e7", 3)

        master, slave = os.openpty()
        with os.fdopen(slave, "w") as tty:
            assert configure_logging("info", tty) is False
            structlog.get_logger("t").info("order_found", decision_id=7)
            tty.flush()
            out = os.read(master, 65536).decode()
        os.close(master)
        assert "order_found" in out and "decision_id" in out and not out.lstrip().startswith("{")
        with (tmp_path / "forced").open("w") as fh:
            assert configure_logging("info", fh, fmt="console") is False
        with pytest.raises(ValueError, match="log_format"):
            configure_logging("info", fmt="xml")
    finally:
        structlog.reset_defaults()


def test_log_context_fields_are_built_only_for_a_line_and_never_outlive_the_block(tmp_path: Path) -> None:
    """LogContext (the executor's per-decision context, issue #17): its fields reach every line
    written inside the block, a key given to the call or bound with contextvars wins, the fields
    are built once per line and never when nothing is written, and nothing is left after."""
    import json

    from foundation.logs import LogContext, configure_logging

    built: list[int] = []

    def fields() -> dict[str, object]:
        built.append(1)
        return {"decision_id": 7, "client_order_id": "tdabcdef01e7", "seq": 1}

    try:
        with (tmp_path / "log").open("w") as fh:
            configure_logging("info", fh)
            log = structlog.get_logger("t")
            with LogContext(fields):
                log.debug("filtered out")  # below the level: no line, nothing built
                assert built == []
                log.info("first")
                with structlog.contextvars.bound_contextvars(client_order_id="bound"):
                    log.info("second", seq=3)
                with LogContext(lambda: {"decision_id": 8}):
                    log.info("inner")
                log.info("outer again")
            log.info("after")
        lines = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
        got = [(r["event"], r.get("decision_id"), r.get("client_order_id"), r.get("seq")) for r in lines]
        assert got == [
            ("first", 7, "tdabcdef01e7", 1),
            ("second", 7, "bound", 3),
            ("inner", 8, None, None),
            ("outer again", 7, "tdabcdef01e7", 1),
            ("after", None, None, None),
        ]
        assert len(built) == 3  # first, second, outer again
    finally:
        structlog.reset_defaults()


def test_peer_name_is_resolved_again_on_request_and_a_request_inside_the_second_is_kept() -> None:
    """refresh_peer replaces a stale address (a compose peer that restarted at a new address) by
    what the name resolves to now; a second request within the 1 s spacing is served after it."""
    import asyncio

    import uvloop

    from protocol import Codec, derive_key
    from protocol.udp import open_endpoint

    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()
        sink, port, got = await udp_sink()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
            gone.bind(("127.0.0.1", 0))
            stale = gone.getsockname()[:2]  # closed below: the peer's old address, nobody there
        ep = await open_endpoint(("127.0.0.1", 0), Codec(derive_key(b"k" * 32)), lambda m, a: None,
                                 lambda e, a: None, peer=("localhost", port))  # fmt: skip
        try:
            ep.peer = stale
            ep.send_raw(b"lost")
            ep.refresh_peer()
            await asyncio.sleep(0.05)
            assert ep.peer == ("127.0.0.1", port)
            ep.peer = stale
            ep.refresh_peer()  # inside the second: deferred, not dropped
            assert ep.peer == stale
            deadline = loop.time() + 3
            while ep.peer == stale and loop.time() < deadline:
                await asyncio.sleep(0.05)
            assert ep.peer == ("127.0.0.1", port)
            ep.send_raw(b"hello")
            return await asyncio.wait_for(got, 2)
        finally:
            ep.close()
            sink.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(scenario()) == b"hello"


async def test_link_timer_callbacks_do_not_inherit_the_context_that_armed_them() -> None:
    """A timer armed while a decision's log context is bound (a PROTECT sent from a confirmation)
    fires without it: later lines (an expiry, a heartbeat) must not carry that decision's ids —
    neither those bound with contextvars nor a LogContext's."""
    import asyncio
    import time as _time

    from foundation.logs import LogContext, merge_log_context
    from protocol.udp import LinkTimer

    seen: list[dict[str, object]] = []
    fired = asyncio.Event()

    def callback() -> None:
        seen.append({**structlog.contextvars.get_contextvars(), **merge_log_context(None, "info", {})})
        fired.set()

    timer = LinkTimer(callback)
    with structlog.contextvars.bound_contextvars(decision_id=7, seq=3), LogContext(lambda: {"client_order_id": "x"}):
        timer.arm(_time.time_ns() + 10_000_000)
    await asyncio.wait_for(fired.wait(), 2)
    assert seen == [{}]


def test_configure_logging_refuses_an_unknown_level() -> None:
    from foundation.logs import configure_logging

    with pytest.raises(ValueError, match="log_level"):
        configure_logging("loud")
