"""Secrets never appear in logs, metrics or error messages (issue #3 §5)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from harness import SECRET, ScriptedStrategy, start_harness
from prometheus_client import generate_latest
from pydantic import SecretStr

from foundation.barcsv import bundled_path, load_bars
from foundation.bussecret import decode_secret, load_bus_secret, new_bus_secret, write_secret_file
from foundation.errors import ConfigError
from protocol import DECISION_SIZE, PROTOCOL_VERSION, Side, derive_key

BARS = load_bars(bundled_path(), limit=300)


def forms(secret: bytes) -> list[str]:
    """The ways a secret could leak into text: raw, hex, and its halves."""
    text = secret.decode(errors="replace")
    return [text, secret.hex(), text[: len(text) // 2], text[len(text) // 2 :]]


async def test_secret_absent_from_logs_and_metrics(tmp_path: Path) -> None:
    """A full trade cycle with forged traffic logs and exports nothing that contains the bus secret."""
    h = await start_harness(tmp_path, BARS, ScriptedStrategy({10: Side.BUY, 60: Side.SELL}))
    try:
        with structlog.testing.capture_logs() as logs:
            await h.brain.replay(BARS)
            forged = bytes((PROTOCOL_VERSION, 1)) + bytes(DECISION_SIZE - 2)  # a forged decision: logged as rejected
            h.brain.endpoint.send_raw(forged)
            await asyncio.sleep(0.1)
        assert any(e["event"] == "datagram_rejected" and e["reason"] == "auth" for e in logs)
        text = "\n".join(repr(e) for e in logs)
        exported = generate_latest(h.brain.metrics.registry).decode() + generate_latest(h.executor.metrics.registry).decode()
    finally:
        h.close()
    assert len(logs) > 5
    for leak in forms(SECRET):
        assert leak not in text
        assert leak not in exported


def test_secret_absent_from_error_messages(tmp_path: Path) -> None:
    """A process refusing its configuration names the setting but never prints the secret."""
    secret = "hunter2-is-not-a-good-bus-secret"
    env = {"TANDEM_BUS_SECRET": secret[:16], "TANDEM_DECISION_ADDR": "0.0.0.0:0", "TANDEM_METRICS_PORT": "-1",
           "TANDEM_RUN_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "executor"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "bus_secret: the bus secret is 16 bytes" in proc.stderr
    env["TANDEM_BUS_SECRET_FILE"] = str(tmp_path / "missing.key")
    proc2 = subprocess.run([sys.executable, "-m", "brain"], capture_output=True, text=True, env=env, timeout=60)
    assert proc2.returncode == 2 and "bus_secret" in proc2.stderr
    for out in (proc.stdout + proc.stderr, proc2.stdout + proc2.stderr):
        assert secret[:16] not in out and secret[:8] not in out


KEY_BYTES = bytes(range(0xA0, 0xC0))  # 32 bytes
PASSPHRASE = "correct horse battery staple, twice over"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (KEY_BYTES.hex(), KEY_BYTES),  # what tandem keygen writes, without its newline
        (KEY_BYTES.hex() + "\n", KEY_BYTES),  # ... with it
        (KEY_BYTES.hex().upper(), KEY_BYTES),  # either case
        ("  \t" + KEY_BYTES.hex()[:20].upper() + KEY_BYTES.hex()[20:] + " \r\n", KEY_BYTES),  # mixed, stripped
        (" ".join(f"{b:02x}" for b in KEY_BYTES), KEY_BYTES),  # ASCII whitespace between pairs
        ("0x" + KEY_BYTES.hex(), ("0x" + KEY_BYTES.hex()).encode()),  # 0x: not hex, 66 bytes of text
        (KEY_BYTES.hex() + "a", (KEY_BYTES.hex() + "a").encode()),  # odd length: not hex, text
        (PASSPHRASE, PASSPHRASE.encode()),
        ("\u00a0" + PASSPHRASE + "\n", PASSPHRASE.encode()),  # Unicode whitespace is stripped too
        ("pässwörd-" * 4, ("pässwörd-" * 4).encode("utf-8")),  # UTF-8, not Latin-1
    ],
    ids=["hex", "hex-newline", "HEX", "mixed-case-padded", "hex-spaced", "0x-prefix", "odd-length", "passphrase",
         "nbsp-padded", "utf-8"],
)  # fmt: skip
def test_env_text_and_key_file_give_the_same_secret(tmp_path: Path, text: str, secret: bytes) -> None:
    """SPEC.md §7.1: TANDEM_BUS_SECRET and a key file holding the same text give the same secret, hence the
    same key — before the fix the variable skipped the hex decoding and the stripping, so a process given
    the hex key in the variable and its peer the key file rejected each other's every datagram (``auth``)."""
    key = tmp_path / "bus.key"
    key.write_text(text, encoding="utf-8")
    key.chmod(0o600)
    from_env = load_bus_secret(SecretStr(text), None)
    from_file = load_bus_secret(None, key)
    assert from_env == from_file == decode_secret(text) == secret
    assert derive_key(from_env) == derive_key(from_file)


def test_keygen_file_and_its_text_in_the_env_var_agree(tmp_path: Path) -> None:
    """The key file tandem keygen writes and ``TANDEM_BUS_SECRET="$(cat key)"`` name the same 32-byte secret."""
    key = tmp_path / "bus.key"
    secret = new_bus_secret()
    write_secret_file(key, secret)
    shell_text = key.read_text().rstrip("\n")  # what $(cat key) gives
    assert load_bus_secret(SecretStr(shell_text), None) == load_bus_secret(None, key) == secret


def test_env_text_too_short_once_decoded_or_not_utf8_is_refused(tmp_path: Path) -> None:
    """The length rule applies to the decoded secret (32 hex characters are 16 bytes: refused), whitespace
    alone is empty, and a variable that is not UTF-8 (a lone surrogate from os.environ) is a ConfigError
    naming the setting, like a key file that is not text — never the secret."""
    with pytest.raises(ConfigError, match=r"^bus_secret: the bus secret is 16 bytes, at least 32"):
        load_bus_secret(SecretStr("ab" * 16), None)
    with pytest.raises(ConfigError, match=r"^bus_secret: the secret is empty"):
        load_bus_secret(SecretStr(" \n\t "), None)
    bad = "\udcff\udcfe" + "s" * 40
    with pytest.raises(ConfigError, match=r"^bus_secret: TANDEM_BUS_SECRET is not UTF-8 text") as info:
        load_bus_secret(SecretStr(bad), None)
    assert "s" * 8 not in str(info.value)
    key = tmp_path / "bus.key"
    key.write_bytes(b"\xff\xfe" + b"s" * 40)
    key.chmod(0o600)
    with pytest.raises(ConfigError, match=r"^bus_secret_file: .* is not a text file"):
        load_bus_secret(None, key)
