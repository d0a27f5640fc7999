"""Every bad input is refused before anything starts: exit 2, one line naming the setting or the
file (and line), and nothing written — for ``tandem paper``, ``tandem brain`` and ``tandem executor``
run as real processes on real sockets and files."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import clean_env, free_port, listing, make_key, refused, tandem, write_bars

from brain.settings import BrainSettings
from executor.settings import ExecutorSettings
from foundation.errors import ConfigError
from foundation.settings import load_settings
from tandem.paper import PaperSettings

COMMANDS = ("paper", "brain", "executor")


def flags(command: str, run: Path, key: Path, overrides: dict[str, Any]) -> list[str]:
    """The command's flags: loopback ports, metrics off, 200 bundled bars, ``overrides`` on top
    (a value of ``None`` drops the flag)."""
    common = {"run_dir": run, "bars": 200, "metrics_port": -1}
    if command == "paper":
        base = {**common, "decision_addr": f"127.0.0.1:{free_port()}", "confirm_addr": f"127.0.0.1:{free_port()}",
                "executor_metrics_port": -1, "progress": "off"}  # fmt: skip
    elif command == "brain":
        base = {**common, "bus_secret_file": key, "confirm_addr": "127.0.0.1:0", "decision_addr": "127.0.0.1:9"}
    else:
        base = {**common, "bus_secret_file": key, "decision_addr": "127.0.0.1:0", "confirm_addr": "127.0.0.1:9"}
    out = []
    for name, value in (base | overrides).items():
        if value is not None:
            out.append(f"--{name.replace('_', '-')}={value}")  # one word: "-inf" is not taken for a flag
    return out


def check_refused(command: str, tmp: Path, *, env: dict[str, str] | None = None, prefix: list[str] | None = None,
                  run: Path | None = None, **overrides: Any) -> str:  # fmt: skip
    """Run ``command`` in ``tmp`` and assert it is refused (exit 2, one line) with ``tmp`` — its
    working directory, holding the run dir — exactly as before; returns the line after the prefix."""
    key = tmp / "bus.key" if (tmp / "bus.key").exists() else make_key(tmp)
    run = run or tmp / "run"
    before = listing(tmp)
    proc = tandem(command, *flags(command, run, key, overrides), cwd=tmp, env=env, prefix=prefix or ())
    line = refused(proc, command)
    assert listing(tmp) == before, "something was written"
    return line


# -- 1. the data file ---------------------------------------------------------------------------

CSV_CASES = {
    "beyond 64 bits": (["99999999999999999999,1,1,1,1,1"], 3, 5, "timestamp_ms 99999999999999999999 is out of range"),
    "negative": (["-60000,1,1,1,1,1"], 0, 2, "timestamp_ms -60000 is out of range"),
    "ns overflow": (["18446744073000,1,1,1,1,1", "18446744073700,1,1,1,1,1"], 0, 3, "plus one bar (700 ms) is past"),
}


@pytest.mark.parametrize("case", CSV_CASES)
@pytest.mark.parametrize("command", COMMANDS)
def test_timestamp_out_of_range_names_file_and_line(tmp_path: Path, command: str, case: str) -> None:
    """A timestamp beyond 64 bits, negative, or whose close in ns would not fit a u64 is refused as <file>:<line>."""
    rows, n_valid, line_no, what = CSV_CASES[case]
    data = write_bars(tmp_path / "bars.csv", rows, n_valid)
    line = check_refused(command, tmp_path, data=data, bars=None)
    assert line.startswith(f"{data}:{line_no}: ") and what in line, line


# -- 2. numbers must be finite ------------------------------------------------------------------


def float_fields(cls: type) -> list[str]:
    return [name for name, f in cls.model_fields.items() if f.annotation in (float, float | None)]


@pytest.mark.parametrize("cls", [BrainSettings, ExecutorSettings, PaperSettings], ids=lambda c: c.__name__)
def test_every_float_setting_refuses_inf_and_nan(cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """inf, -inf, nan and 1e309 are refused for every float setting, by flag and by TANDEM_* variable."""
    monkeypatch.chdir(tmp_path)  # no .env
    names = float_fields(cls)
    assert len(names) >= 6, names
    for name in names:
        for value in ("inf", "-inf", "nan", "1e309"):
            with pytest.raises(ConfigError, match=rf"^invalid setting {name} .*finite number"):
                load_settings(cls, [f"--{name.replace('_', '-')}={value}"], "t")
        monkeypatch.setenv(f"TANDEM_{name.upper()}", "inf")
        with pytest.raises(ConfigError, match=rf"^invalid setting {name} .*finite number"):
            load_settings(cls, [], "t")
        monkeypatch.delenv(f"TANDEM_{name.upper()}")


@pytest.mark.parametrize(("command", "name", "value", "by_env"), [
    ("paper", "time_stop_days", "inf", False), ("paper", "starting_cash", "1e309", True),
    ("brain", "heartbeat_s", "nan", True), ("executor", "fill_timeout_s", "-inf", False),
])  # fmt: skip
def test_non_finite_number_refused_by_the_process(tmp_path: Path, command: str, name: str, value: str,
                                                  by_env: bool) -> None:  # fmt: skip
    """A non-finite number by flag or env var stops the process at start, naming the setting."""
    env = clean_env(**{f"TANDEM_{name.upper()}": value}) if by_env else None
    line = check_refused(command, tmp_path, env=env, **({} if by_env else {name: value}))
    assert line.startswith(f"invalid setting {name} (TANDEM_{name.upper()} / --{name.replace('_', '-')}): "
                           "Input should be a finite number"), line  # fmt: skip


# -- 3. hosts that do not resolve (RFC 6761: .invalid never does) --------------------------------

HOSTS = [
    ("paper", "decision_addr", {"decision_addr": "nosuch.invalid:45110"}),
    ("paper", "confirm_addr", {"confirm_addr": "nosuch.invalid:45115"}),
    ("paper", "metrics_host", {"metrics_host": "nosuch.invalid", "metrics_port": 0}),
    ("brain", "confirm_addr", {"confirm_addr": "nosuch.invalid:0"}),
    ("brain", "metrics_host", {"metrics_host": "nosuch.invalid", "metrics_port": 0}),
    ("executor", "decision_addr", {"decision_addr": "nosuch.invalid:0"}),
    ("executor", "metrics_host", {"metrics_host": "nosuch.invalid", "metrics_port": 0}),
]


@pytest.mark.parametrize(("command", "setting", "overrides"), HOSTS, ids=[f"{c}-{s}" for c, s, _ in HOSTS])
def test_unresolvable_host_names_the_setting(tmp_path: Path, command: str, setting: str, overrides: dict) -> None:
    """A host that does not resolve is refused before anything is created, naming the setting."""
    line = check_refused(command, tmp_path, **overrides)
    assert line.startswith(f"{setting}: cannot resolve host 'nosuch.invalid': "), line


# -- 4. ports in use ----------------------------------------------------------------------------


@pytest.fixture
def taken() -> Iterator[dict[str, int]]:
    """A UDP port and a TCP port held (bound; the TCP one listening) by this test process."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp.bind(("127.0.0.1", 0))
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    try:
        yield {"udp": udp.getsockname()[1], "tcp": tcp.getsockname()[1]}
    finally:
        udp.close()
        tcp.close()


PORTS = [
    ("paper", "decision_addr", "udp"), ("paper", "confirm_addr", "udp"), ("paper", "metrics_port", "tcp"),
    ("paper", "executor_metrics_port", "tcp"), ("brain", "confirm_addr", "udp"), ("brain", "metrics_port", "tcp"),
    ("executor", "decision_addr", "udp"), ("executor", "metrics_port", "tcp"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "setting", "proto"), PORTS, ids=[f"{c}-{s}" for c, s, _ in PORTS])
def test_port_in_use_is_refused_before_the_run_dir_is_touched(tmp_path: Path, taken: dict[str, int], command: str,
                                                              setting: str, proto: str) -> None:  # fmt: skip
    """A UDP or metrics port in use: exit 2 naming the setting; an existing run dir keeps its listing."""
    port = taken[proto]
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    value: Any = port if proto == "tcp" else f"127.0.0.1:{port}"
    line = check_refused(command, tmp_path, run=run, **{setting: value})
    assert line == f"{setting}: cannot bind 127.0.0.1:{port} ({proto}): Address already in use", line


def test_paper_refuses_both_metrics_on_one_port(tmp_path: Path) -> None:
    """The brain's and the executor's metrics on one port: refused before any child starts, naming the second."""
    port = free_port(socket.SOCK_STREAM)
    line = check_refused("paper", tmp_path, metrics_port=port, executor_metrics_port=port)
    assert line == f"executor_metrics_port: cannot bind 127.0.0.1:{port} (tcp): Address already in use", line


# -- 5. decision address = confirmation address --------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_decision_and_confirm_address_must_differ(tmp_path: Path, command: str) -> None:
    """The same host and non-zero port for decisions and confirmations is a settings error."""
    addr = f"127.0.0.1:{free_port()}"
    line = check_refused(command, tmp_path, decision_addr=addr, confirm_addr=addr)
    assert line.startswith(f"invalid setting confirm_addr (TANDEM_CONFIRM_ADDR / --confirm-addr): equals "
                           f"decision_addr ({addr})"), line  # fmt: skip


@pytest.mark.parametrize(("command", "own", "peer"), [("brain", "confirm_addr", "decision_addr"),
                                                     ("executor", "decision_addr", "confirm_addr")])
def test_a_peer_address_naming_the_listening_socket_is_refused(tmp_path: Path, command: str, own: str,
                                                               peer: str) -> None:  # fmt: skip
    """``localhost:P`` for the peer beside ``127.0.0.1:P`` for the listening socket: the strings differ but the
    process would send to itself; refused naming both settings."""
    port = free_port()
    line = check_refused(command, tmp_path, **{own: f"127.0.0.1:{port}", peer: f"localhost:{port}"})
    assert line == (f"{peer}: localhost:{port} is this process's own listening address ({own} 127.0.0.1:{port}):"
                    " it would send to itself"), line  # fmt: skip


def test_paper_refuses_a_peer_address_naming_the_other_listening_socket(tmp_path: Path) -> None:
    """paper binds both listening addresses at once, so ``localhost:P`` and ``127.0.0.1:P`` collide there."""
    port = free_port()
    line = check_refused("paper", tmp_path, decision_addr=f"localhost:{port}", confirm_addr=f"127.0.0.1:{port}")
    assert line == f"confirm_addr: cannot bind 127.0.0.1:{port} (udp): Address already in use", line


# -- 6. the strategy ----------------------------------------------------------------------------

STRATEGIES = [
    ({"strategy": "nosuch.mod:X"}, "cannot load strategy 'nosuch.mod:X': importing 'nosuch.mod' raised "
                                   "ModuleNotFoundError: No module named 'nosuch'"),
    ({"strategy_params": '{"bogus": 1}'}, "bad parameters for strategy 'brain.strategy:EmaCrossover': "),
]


@pytest.mark.parametrize(("overrides", "message"), STRATEGIES, ids=["unknown class", "unknown parameter"])
@pytest.mark.parametrize("command", ["paper", "brain"])
def test_bad_strategy_refused_up_front(tmp_path: Path, command: str, overrides: dict, message: str) -> None:
    """An unknown strategy class or a parameter it does not take is refused before anything is created, by paper too."""
    line = check_refused(command, tmp_path, **overrides)
    assert line.startswith(message), line


def test_paper_loads_a_strategy_from_the_working_directory(tmp_path: Path) -> None:
    """paper's up-front check imports a strategy module from the working directory, as `python -m brain` does:
    it is refused for its parameters, not as missing."""
    (tmp_path / "mystrat.py").write_text("class S:\n    def __init__(self, n=1):\n        pass\n"
                                         "    def on_bar(self, bar):\n        return None\n")  # fmt: skip
    line = check_refused("paper", tmp_path, strategy="mystrat:S", strategy_params='{"m": 2}')
    assert line.startswith("bad parameters for strategy 'mystrat:S'"), line


BROKEN_MODULES = {
    "syntax error": ("def f(:\n", "cannot load strategy 'broken:S': importing 'broken' raised SyntaxError: "),
    "raises on import": ("raise RuntimeError('no\\nluck')\n",
                         "cannot load strategy 'broken:S': importing 'broken' raised RuntimeError: no luck"),
    "exits on import": ("import sys\nsys.exit(3)\n",
                        "cannot load strategy 'broken:S': importing 'broken' raised SystemExit: 3"),
    "constructor raises": ("class S:\n    def __init__(self):\n        raise ValueError('bad config')\n"
                           "    def on_bar(self, bar):\n        return None\n",
                           "strategy 'broken:S' refused its parameters: ValueError: bad config"),
    "not a class": ("def S():\n    return None\n", "strategy 'broken:S' is a function, not a class"),
}


@pytest.mark.parametrize("case", BROKEN_MODULES)
@pytest.mark.parametrize("command", ["paper", "brain"])
def test_a_strategy_module_that_fails_is_one_clear_line(tmp_path: Path, command: str, case: str) -> None:
    """A strategy module that cannot be imported, or a class that raises when built: the error in one line,
    nothing created (a module is user code: any exception, even ``sys.exit``, is a bad setting)."""
    source, message = BROKEN_MODULES[case]
    (tmp_path / "broken.py").write_text(source)
    env = clean_env(PYTHONPATH=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    line = check_refused(command, tmp_path, env=env, strategy="broken:S")
    assert line.startswith(message), line


@pytest.mark.parametrize("command", ["paper", "brain"])
def test_strategy_params_nested_too_deeply_is_one_short_line(tmp_path: Path, command: str) -> None:
    """JSON nested 30,000 deep: refused as a setting, and the value echoed is cut, not 60 kB."""
    deep = "[" * 30_000 + "]" * 30_000
    line = check_refused(command, tmp_path, strategy_params=deep)
    assert line.startswith("invalid setting strategy_params (TANDEM_STRATEGY_PARAMS / --strategy-params): "
                           "not valid JSON: nested too deeply"), line[:200]  # fmt: skip
    assert len(line) < 300 and line.endswith("(60002 characters))"), line[-80:]


# -- 7. a run dir that cannot be created or written ----------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_run_dir_empty_string_is_refused(tmp_path: Path, command: str) -> None:
    """``--run-dir ''`` is a mistake, not the working directory: refused, nothing written."""
    line = check_refused(command, tmp_path, run=Path("/nonexistent"), run_dir="")
    assert line == ("invalid setting run_dir (TANDEM_RUN_DIR / --run-dir): must not be empty"
                    " (. is the working directory) (got '')"), line  # fmt: skip


OUTPUT_FILES = [("paper", "trades.csv"), ("paper", "executor.log"), ("paper", "bus.key"),
                ("brain", "report.json"), ("brain", "brain.lock"), ("executor", "executor-ledger.json"),
                ("executor", "executor.sqlite-wal")]  # fmt: skip


@pytest.mark.parametrize(("command", "name"), OUTPUT_FILES, ids=[f"{c}-{n}" for c, n in OUTPUT_FILES])
def test_a_directory_where_an_output_file_goes_is_refused(tmp_path: Path, command: str, name: str) -> None:
    """An existing run dir holding a directory where tandem writes a file: refused before anything starts
    (it used to fail at the end, after the run, losing the outputs)."""
    run = tmp_path / "run"
    (run / name).mkdir(parents=True)
    line = check_refused(command, tmp_path, run=run)
    assert line == f"run_dir: {run / name} is a directory; tandem writes a file there", line


def test_every_output_of_the_apps_is_a_checked_run_dir_file(tmp_path: Path) -> None:
    """RUN_DIR_FILES names every file the brain, the executor, paper and the run report write."""
    from brain.wiring import outputs as brain_outputs
    from executor.main import outputs as executor_outputs
    from foundation.rundir import RUN_DIR_FILES

    written = {p.name for p in (*brain_outputs(tmp_path).values(), *executor_outputs(tmp_path).values())}
    written |= {"executor.log", "brain.log", "bus.key", "executor.lock", "brain.lock", "report.png", "report.html"}
    written |= {f"{j}{suffix}" for j in ("brain.sqlite", "executor.sqlite") for suffix in ("-wal", "-shm")}
    assert written <= set(RUN_DIR_FILES), written - set(RUN_DIR_FILES)


@pytest.mark.parametrize("command", COMMANDS)
def test_run_dir_behind_a_regular_file(tmp_path: Path, command: str) -> None:
    """A regular file in the way of run_dir: one line naming run_dir and the file; nothing created."""
    (tmp_path / "afile").write_text("x")
    line = check_refused(command, tmp_path, run=tmp_path / "afile" / "run")
    assert line == f"run_dir: cannot create {tmp_path / 'afile' / 'run'}: {tmp_path / 'afile'} is not a directory"


@pytest.mark.parametrize("command", COMMANDS)
def test_run_dir_dev_null(tmp_path: Path, command: str) -> None:
    """/dev/null as run_dir: refused as not a directory."""
    line = check_refused(command, tmp_path, run=Path("/dev/null"))
    assert line == "run_dir: /dev/null exists and is not a directory", line


@pytest.fixture
def no_dac_override() -> list[str]:
    """A prefix that runs a command without root's permission bypass (util-linux setpriv drops
    CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER), as tests/test_keygen.py does."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "util-linux's setpriv is needed to run this check without root's permission bypass"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@pytest.mark.parametrize("command", COMMANDS)
def test_run_dir_in_a_read_only_parent(tmp_path: Path, command: str, no_dac_override: list[str]) -> None:
    """A parent without write permission: refused naming run_dir and the parent; nothing created in it."""
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    try:
        line = check_refused(command, tmp_path, run=ro / "run", prefix=no_dac_override)
    finally:
        ro.chmod(0o700)
    assert line == f"run_dir: cannot create {ro / 'run'}: {ro} is not writable (permission denied)", line
    assert list(ro.iterdir()) == []


# -- 8. strategy parameters that are not JSON ----------------------------------------------------


@pytest.mark.parametrize("by_env", [False, True], ids=["flag", "env"])
@pytest.mark.parametrize("command", ["paper", "brain"])
def test_strategy_params_not_json_is_one_clear_line(tmp_path: Path, command: str, by_env: bool) -> None:
    """--strategy-params notjson (or the env var): the command named once, the setting and 'not valid JSON'."""
    env = clean_env(TANDEM_STRATEGY_PARAMS="notjson") if by_env else None
    line = check_refused(command, tmp_path, env=env, **({} if by_env else {"strategy_params": "notjson"}))
    assert line.startswith("invalid setting strategy_params (TANDEM_STRATEGY_PARAMS / --strategy-params): "
                           "not valid JSON: Expecting value"), line  # fmt: skip


# -- 9, 10. the bus secret ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["brain", "executor"])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, command: str) -> None:
    """A bus_secret_file with mode 0644 is refused as ssh refuses such keys."""
    key = make_key(tmp_path)
    key.chmod(0o644)
    line = check_refused(command, tmp_path)
    assert line == f"bus_secret_file: permissions 0644 for '{key}' are too open; chmod 600 it", line


@pytest.mark.parametrize("command", ["brain", "executor"])
def test_short_secret_refused_on_loopback_too(tmp_path: Path, command: str) -> None:
    """A 31-byte secret is refused on loopback too, naming the setting and not the secret."""
    secret = "loopback-is-no-excuse-for-short!"[:31]
    env = clean_env(TANDEM_BUS_SECRET=secret)
    line = check_refused(command, tmp_path, env=env, bus_secret_file=None)
    assert line.startswith("bus_secret: the bus secret is 31 bytes, at least 32 are required"), line
    assert secret[:12] not in line
