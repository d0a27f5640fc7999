"""``tandem keygen``: the bus secret file docker-compose.yml's init service writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.bussecret import MIN_BUS_SECRET_BYTES, load_bus_secret
from tandem.cli import main as cli_main
from tandem.keygen import main


def test_writes_a_32_byte_hex_secret_with_mode_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new file holds 64 hex characters, mode 0600, that load as a 32-byte secret the processes accept."""
    key = tmp_path / "bus_secret"
    assert main([str(key)]) == 0
    text = key.read_text()
    assert len(text.strip()) == 2 * MIN_BUS_SECRET_BYTES and text.endswith("\n")
    assert key.stat().st_mode & 0o777 == 0o600
    secret = load_bus_secret(None, key)
    assert len(secret) == MIN_BUS_SECRET_BYTES
    out, err = capsys.readouterr()
    assert text.strip() not in out + err, "the secret was printed"
    assert str(key) in err
    assert [p.name for p in tmp_path.iterdir()] == ["bus_secret"], "a temporary file was left behind"


def test_each_run_writes_a_new_secret_and_replaces_the_mode(tmp_path: Path) -> None:
    """Without --if-missing an existing file is replaced by a fresh secret, and ends up 0600 even if it was 0644."""
    key = tmp_path / "bus_secret"
    key.write_text("old\n")
    key.chmod(0o644)
    assert main([str(key)]) == 0
    first = key.read_text()
    assert first != "old\n" and key.stat().st_mode & 0o777 == 0o600
    assert main([str(key)]) == 0
    assert key.read_text() != first


def test_if_missing_keeps_an_existing_non_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--if-missing leaves a non-empty file byte for byte (and its mode), and exits 0."""
    key = tmp_path / "bus_secret"
    assert main(["--if-missing", str(key)]) == 0  # missing: written
    before, mode = key.read_bytes(), key.stat().st_mode
    assert main(["--if-missing", str(key)]) == 0
    assert key.read_bytes() == before and key.stat().st_mode == mode
    assert "keeping" in capsys.readouterr().err


def test_if_missing_warns_about_a_short_existing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kept secret shorter than 32 bytes is kept, with a warning that the processes will refuse it."""
    key = tmp_path / "bus_secret"
    key.write_text("00" * 16 + "\n")
    assert main(["--if-missing", str(key)]) == 0
    assert key.read_text() == "00" * 16 + "\n"
    err = capsys.readouterr().err
    assert "16 bytes" in err and "warning" in err and "00" * 16 not in err


def test_if_missing_warns_about_a_key_open_to_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A kept key file with mode 0644 is kept as it is, with a warning that the processes refuse it."""
    key = tmp_path / "bus_secret"
    key.write_text("00" * 32 + "\n")
    key.chmod(0o644)
    assert main(["--if-missing", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o644
    err = capsys.readouterr().err
    assert "permissions 0644" in err and "chmod 600" in err and "00" * 32 not in err


@pytest.mark.parametrize("content", ["", "\n", "  \n\n"])
def test_if_missing_replaces_an_empty_file(tmp_path: Path, content: str) -> None:
    """--if-missing treats an empty (or whitespace-only) file as missing and writes a secret."""
    key = tmp_path / "bus_secret"
    key.write_text(content)
    assert main(["--if-missing", str(key)]) == 0
    assert len(load_bus_secret(None, key)) == MIN_BUS_SECRET_BYTES


def test_unwritable_paths_exit_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing directory, a file used as a directory, or a directory as PATH: exit 2, the message names PATH."""
    regular = tmp_path / "file"
    regular.write_text("x")
    for path, reason in (
        (tmp_path / "no" / "such" / "dir" / "bus_secret", "No such file or directory"),
        (regular / "bus_secret", "Not a directory"),
        (tmp_path, "Is a directory"),
    ):
        for flags in ([], ["--if-missing"]):
            assert main([*flags, str(path)]) == 2, (flags, path)
            err = capsys.readouterr().err
            assert err.startswith(f"tandem keygen: cannot write {path}: {reason}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_read_only_directory_exits_2(tmp_path: Path) -> None:
    """A directory without write permission: exit 2, 'Permission denied', nothing written; the
    same process writes into a writable sibling (the control). As root, the check runs without the
    capabilities that bypass file permissions (util-linux setpriv drops CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH and CAP_FOWNER from the bounding set), as the image's non-root user would."""
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir(mode=0o555)
    rw.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "util-linux's setpriv is needed to run this check without root's permission bypass"
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    try:
        control = subprocess.run([*prefix, sys.executable, "-m", "tandem.cli", "keygen", str(rw / "bus_secret")],
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
        assert control.returncode == 0, control
        done = subprocess.run([*prefix, sys.executable, "-m", "tandem.cli", "keygen", str(ro / "bus_secret")],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2, done
        assert done.stderr.startswith(f"tandem keygen: cannot write {ro / 'bus_secret'}: Permission denied"), done.stderr
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_bad_arguments_exit_2_and_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """No PATH or an unknown flag is a usage error (2); --help prints usage and returns 0."""
    assert main([]) == 2
    assert main(["--bogus", "x"]) == 2
    assert main(["--help"]) == 0
    assert "--if-missing" in capsys.readouterr().out


def test_tandem_keygen_subcommand_runs_as_a_process(tmp_path: Path) -> None:
    """`python -m tandem.cli keygen --if-missing PATH`, as the compose init service runs it, writes the key."""
    key = tmp_path / "bus_secret"
    cmd = [sys.executable, "-m", "tandem.cli", "keygen", "--if-missing", str(key)]
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    assert len(load_bus_secret(None, key)) == MIN_BUS_SECRET_BYTES
    assert cli_main(["keygen", "--if-missing", str(key)]) == 0
