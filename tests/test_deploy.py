"""Static checks of the Docker setup: Dockerfile, .dockerignore, docker-compose.yml and deploy/.

They need no Docker engine (the Debian docker-compose 1.29 cannot read this v2 file, so these tests
are its validation). docker-compose.yml is parsed with ``yaml.safe_load`` (YAML 1.1, where a bare
``no`` is a boolean, so such values are quoted). Each tandem service's settings are loaded the way
compose hands them to the process — its env files (``deploy/${TANDEM_MODE:-paper}...``), then its
``environment:`` on top — through the real settings classes, so a name or value the processes
would refuse fails here too. deploy/prometheus/ and deploy/grafana/ have their own tests
(test_prometheus_rules.py, test_dashboard.py).
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from brain.settings import BrainSettings
from executor.settings import ExecutorSettings
from foundation.barcsv import bundled_path, load_bars
from foundation.bussecret import MIN_BUS_SECRET_BYTES, load_bus_secret, write_secret_file
from foundation.errors import ConfigError
from foundation.runtime import parse_address
from foundation.settings import CommonSettings, load_settings
from tandem.cli import _command
from tandem.keygen import main as keygen_main

ROOT = Path(__file__).resolve().parent.parent
SETTINGS: dict[str, type[CommonSettings]] = {"executor": ExecutorSettings, "brain": BrainSettings}
COMMANDS = {"executor": ["tandem", "executor"], "brain": ["tandem", "brain"]}
MODES = ("paper", "live", "solana")
LONG_RUNNING = ("executor", "brain", "prometheus", "grafana")
RESTART = {
    "keygen": "no",
    "brain": "on-failure",
    "executor": "unless-stopped",
    "prometheus": "unless-stopped",
    "grafana": "unless-stopped",
}
VENUE_FIELDS = (set(ExecutorSettings.model_fields) - set(CommonSettings.model_fields) - {"metrics_port"}) | {
    "instrument"
}
"""Executor settings that pick the market and the money; they belong in the mode's env file only."""


# -- loading ------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    """Parse a YAML file with ``yaml.safe_load``."""
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "docker-compose.yml")


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return load_yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` substitution (the only forms this file uses)."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        return variables.get(name) or (default if default is not None else "")

    return _INTERPOLATION.sub(sub, value)


def env_files(service: dict[str, Any], mode: str) -> list[Path]:
    """The env files compose loads for ``service`` with ``TANDEM_MODE=mode``, as checkout paths.

    ``deploy/live.env`` holds real keys and is not in the repository: ``deploy/live.env.example``,
    which it is copied from, stands in for it.
    """
    entries = service.get("env_file", [])
    entries = [entries] if isinstance(entries, str) else entries
    paths = []
    for entry in entries:
        path = ROOT / interpolate(entry if isinstance(entry, str) else entry["path"], {"TANDEM_MODE": mode})
        paths.append(path.with_name(path.name + ".example") if path.name in ("live.env", "solana.env") else path)
    return paths


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a compose env file; blank lines and ``#`` comments skipped.

    Raises:
        AssertionError: a line is not ``KEY=VALUE``, or a value carries quotes or an inline comment
            (which compose versions read differently).
    """
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}:{number}: not KEY=VALUE"
        assert not re.search(r"\s#|[\"']", value), f"{path.name}:{number}: quotes or an inline comment"
        assert key not in out, f"{path.name}:{number}: {key} repeated"
        out[key] = value
    return out


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment:`` as a dict (compose allows a mapping or a list of KEY=VALUE)."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def service_env(service: dict[str, Any], mode: str) -> dict[str, str]:
    """What the container gets: the env files in order, then ``environment:`` on top (compose's precedence)."""
    out: dict[str, str] = {}
    for path in env_files(service, mode):
        out.update(read_env_file(path))
    out.update({key: interpolate(value, {"TANDEM_MODE": mode}) for key, value in environment(service).items()})
    return out


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


@pytest.fixture
def settings_of(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Load a tandem service's settings from its compose env files and environment alone, as its process would."""

    def load(name: str, mode: str = "paper", **extra_env: str) -> Any:
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith("TANDEM_")]:
                m.delenv(key)
            for key, value in {**service_env(compose["services"][name], mode), **extra_env}.items():
                m.setenv(key, value)
            m.chdir(tmp_path)  # no stray .env from the working tree
            return load_settings(SETTINGS[name], [], f"tandem {name}")

    return load


def service_networks(service: dict[str, Any]) -> set[str]:
    networks = service.get("networks", ["default"])
    return set(networks) if isinstance(networks, list) else set(networks.keys())


def published(service: dict[str, Any]) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """``(source, container path, read_only)`` of each short-syntax volume entry."""
    out = []
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        out.append((source, target, mode == ["ro"]))
    return out


def strings(node: Any) -> Iterator[tuple[str, str]]:
    """``(key path, value)`` for every scalar in a parsed YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            for path, leaf in strings(value):
                yield f"{key}.{path}" if path else str(key), leaf
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif node is not None:
        yield "", str(node)


# -- compose: processes and settings --------------------------------------------------------------


def test_tandem_services_run_their_subcommands_from_this_image(compose: dict[str, Any]) -> None:
    """keygen, executor and brain run real `tandem` subcommands from the one image built here."""
    services = compose["services"]
    expected = {**COMMANDS, "keygen": ["tandem", "keygen"]}
    for name, prefix in expected.items():
        svc = services[name]
        assert command(svc)[: len(prefix)] == prefix, name
        assert _command(prefix[1]) is not None, f"tandem has no {prefix[1]!r} subcommand"
        build = svc["build"]
        assert build.get("context", ".") == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile", (
            name
        )
        assert svc["image"] == services["executor"]["image"], name
    assert (
        command(services["executor"]) == COMMANDS["executor"]
        and command(services["brain"]) == COMMANDS["brain"]
    )
    assert set(services) == {"keygen", *LONG_RUNNING}


def test_env_files_follow_tandem_mode(compose: dict[str, Any]) -> None:
    """The executor reads deploy/${TANDEM_MODE:-paper}.env, the brain deploy/${TANDEM_MODE:-paper}.brain.env."""
    services = compose["services"]
    assert services["executor"]["env_file"] == ["deploy/${TANDEM_MODE:-paper}.env"]
    assert services["brain"]["env_file"] == ["deploy/${TANDEM_MODE:-paper}.brain.env"]
    assert env_files(services["executor"], "paper") == [ROOT / "deploy" / "paper.env"]
    assert env_files(services["executor"], "live") == [ROOT / "deploy" / "live.env.example"]
    for name in SETTINGS:
        for mode in MODES:
            for path in env_files(services[name], mode):
                assert path.is_file(), f"{name} ({mode}): {path.relative_to(ROOT)} missing"


def test_every_tandem_variable_is_a_settings_field(compose: dict[str, Any]) -> None:
    """Every variable in a tandem service's environment and env files (both modes) is TANDEM_<field> of its settings."""
    for name, cls in SETTINGS.items():
        svc = compose["services"][name]
        sources = {"environment": environment(svc)}
        for mode in MODES:
            for path in env_files(svc, mode):
                sources[path.name] = read_env_file(path)
        for where, env in sources.items():
            for key in env:
                assert key.startswith("TANDEM_"), f"{name} {where}: {key} is not a tandem setting"
                field = key.removeprefix("TANDEM_").lower()
                assert field in cls.model_fields, f"{name} {where}: {key} is not a {cls.__name__} field"


def test_paper_mode_loads_as_valid_settings(settings_of: Any) -> None:
    """Paper mode: the executor on the paper venue; both on /data, a secret file, JSON logs; the brain paced and holding."""
    executor, brain = settings_of("executor"), settings_of("brain")
    assert executor.venue == "paper"
    executor.check_venue()
    for s in (executor, brain):
        assert s.run_dir == Path("/data/paper")
        assert s.bus_secret is None and s.bus_secret_file is not None
        assert s.log_format == "json"
    assert executor.instrument == brain.instrument
    assert brain.hold is True
    assert brain.replay_bars_per_s > 0
    minutes = len(load_bars(bundled_path())) / brain.replay_bars_per_s / 60
    assert 10 <= minutes <= 30, f"the bundled replay takes {minutes:.1f} min in compose"


def test_live_mode_is_ccxt_testnet_refused_only_for_the_placeholder_keys(settings_of: Any) -> None:
    """live.env.example: ccxt on the testnet; check_venue refuses it only because the key placeholders are
    empty, and accepts it once keys are filled in. The brain trades the same symbol and moves stops."""
    executor = settings_of("executor", "live")
    assert executor.venue == "ccxt" and executor.sandbox is True and executor.live is False
    assert executor.exchange and executor.api_key is not None and executor.api_key.get_secret_value() == ""
    with pytest.raises(ConfigError, match=r"^api_key, api_secret: "):
        executor.check_venue()
    settings_of("executor", "live", TANDEM_API_KEY="k" * 64, TANDEM_API_SECRET="s" * 64).check_venue()
    # the example's commented-out TANDEM_LIVE=true needs TANDEM_SANDBOX=false too
    with pytest.raises(ConfigError, match="choose one"):
        settings_of(
            "executor", "live", TANDEM_LIVE="true", TANDEM_API_KEY="k", TANDEM_API_SECRET="s"
        ).check_venue()
    settings_of(
        "executor",
        "live",
        TANDEM_LIVE="true",
        TANDEM_SANDBOX="false",
        TANDEM_API_KEY="k",
        TANDEM_API_SECRET="s",
    ).check_venue()
    brain = settings_of("brain", "live")
    assert brain.instrument == executor.instrument and "/" in brain.instrument  # a ccxt symbol
    assert brain.exchange_stops is True


def test_solana_mode_is_devnet_with_a_keypair_in_the_secrets_volume(settings_of: Any) -> None:
    """solana.env.example: the Solana venue on devnet (mainnet-beta would need --live), the keypair
    read from the read-only secrets volume, a mint as the instrument; the brain trades the same mint,
    priced by the live feed of the same asset, with no stop on the AMM."""
    executor = settings_of("executor", "solana")
    assert executor.venue == "solana" and executor.solana_cluster == "devnet" and executor.live is False
    assert executor.solana_keypair_file == Path("/secrets/solana-keypair.json")
    executor.check_venue()
    with pytest.raises(ConfigError, match="mainnet-beta trades real money"):
        settings_of("executor", "solana", TANDEM_SOLANA_CLUSTER="mainnet-beta").check_venue()
    settings_of("executor", "solana", TANDEM_SOLANA_CLUSTER="mainnet-beta", TANDEM_LIVE="true").check_venue()
    brain = settings_of("brain", "solana")
    assert brain.instrument == executor.instrument and brain.feed == "live" and brain.feed_symbol
    assert brain.exchange_stops is False and brain.run_dir == Path("/data/solana")


def test_live_env_example_mentions_tandem_live_and_holds_no_keys() -> None:
    """live.env.example documents TANDEM_LIVE=true (commented out) and leaves both keys empty; paper.env names no key."""
    example = ROOT / "deploy" / "live.env.example"
    env = read_env_file(example)
    assert env["TANDEM_API_KEY"] == "" and env["TANDEM_API_SECRET"] == ""
    assert env["TANDEM_SANDBOX"] == "true" and "TANDEM_LIVE" not in env
    assert re.search(r"^#\s*TANDEM_LIVE=true\s*$", example.read_text(), re.MULTILINE)
    for path in (ROOT / "deploy").glob("*.env"):
        assert not {k for k in read_env_file(path) if re.search("KEY|SECRET|PASSWORD|TOKEN", k)}, path.name


def test_venue_settings_stay_out_of_the_executor_environment(compose: dict[str, Any]) -> None:
    """`environment:` overrides `env_file:`, so the executor's venue, exchange and key settings are not in it."""
    env = environment(compose["services"]["executor"])
    assert not {f"TANDEM_{f.upper()}" for f in VENUE_FIELDS} & set(env), sorted(env)
    assert "TANDEM_INSTRUMENT" not in environment(compose["services"]["brain"])


def test_live_env_is_ignored_by_git_and_docker() -> None:
    """deploy/live.env (real keys) is in .gitignore and .dockerignore and not tracked."""
    for ignore in (".gitignore", ".dockerignore"):
        assert "deploy/live.env" in (ROOT / ignore).read_text().split(), ignore
    tracked = subprocess.run(
        ["git", "ls-files", "--", "deploy/live.env"], cwd=ROOT, capture_output=True, text=True
    )
    assert tracked.returncode == 0 and tracked.stdout.strip() == ""


def test_no_secret_literals_in_the_compose_file(compose: dict[str, Any]) -> None:
    """No API key, password or key material in docker-compose.yml: secrets come from files and env files."""
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"\b[0-9a-fA-F]{32,}\b", text), "hex key material"
    for path, value in strings(compose):
        for token in re.findall(r"[A-Za-z0-9+/=]{24,}", value):
            mixed = re.search(r"[a-z]", token) and re.search(r"[A-Z]", token) and re.search(r"[0-9]", token)
            assert not mixed, f"{path}: {token!r} looks like a secret"
    for name, svc in compose["services"].items():
        for key, value in environment(svc).items():
            if re.search("KEY|SECRET|PASSWORD|TOKEN", key):
                assert key.endswith("_FILE") and value.startswith("/"), f"{name}: {key} is set inline"


def test_bus_ports_agree_between_brain_and_executor(settings_of: Any) -> None:
    """The brain sends decisions to the executor's bind port; the executor confirms to the brain's."""
    executor, brain = settings_of("executor"), settings_of("brain")
    exec_bind = parse_address(executor.decision_addr, setting="decision_addr")
    brain_peer = parse_address(brain.decision_addr, setting="decision_addr")
    brain_bind = parse_address(brain.confirm_addr, setting="confirm_addr")
    exec_peer = parse_address(executor.confirm_addr, setting="confirm_addr")
    assert exec_bind == ("0.0.0.0", brain_peer[1])
    assert brain_bind == ("0.0.0.0", exec_peer[1])
    assert exec_bind[1] != 0 and brain_bind[1] != 0


def test_bus_peers_are_the_other_service_by_name(compose: dict[str, Any], settings_of: Any) -> None:
    """Brain sends to `executor` at its bind port, executor to `brain` at its; they share a network."""
    services = compose["services"]
    executor, brain = settings_of("executor"), settings_of("brain")
    exec_bind = parse_address(executor.decision_addr, setting="decision_addr")
    brain_bind = parse_address(brain.confirm_addr, setting="confirm_addr")
    brain_peer = parse_address(brain.decision_addr, setting="decision_addr")
    exec_peer = parse_address(executor.confirm_addr, setting="confirm_addr")
    assert brain_peer[0] == "executor" and brain_peer[1] == exec_bind[1]
    assert exec_peer[0] == "brain" and exec_peer[1] == brain_bind[1]
    for sender, receiver in (("brain", "executor"), ("executor", "brain")):
        shared = service_networks(services[sender]) & service_networks(services[receiver])
        assert shared, f"{sender} and {receiver} share no network"
        assert "network_mode" not in services[sender], f"{sender} is not on a compose network"


def test_bus_is_not_published_on_the_host(compose: dict[str, Any], settings_of: Any) -> None:
    """Neither UDP bus port is published to the host; the bus stays on the compose network."""
    bus_ports = {
        str(parse_address(settings_of("executor").decision_addr, setting="decision_addr")[1]),
        str(parse_address(settings_of("brain").confirm_addr, setting="confirm_addr")[1]),
    }
    for name, svc in compose["services"].items():
        for spec in published(svc):
            assert not bus_ports & set(spec.replace("/", ":").split(":")), f"{name} publishes {spec}"


def test_every_port_is_published_on_host_loopback_only(compose: dict[str, Any], settings_of: Any) -> None:
    """Metrics listen on 0.0.0.0 in the container and are published on 127.0.0.1; so are Prometheus and Grafana."""
    for name in SETTINGS:
        s = settings_of(name)
        assert s.metrics_host == "0.0.0.0" and s.metrics_port > 0, name
        assert published(compose["services"][name]) == [f"127.0.0.1:{s.metrics_port}:{s.metrics_port}"], name
    assert {settings_of("brain").metrics_port, settings_of("executor").metrics_port} == {9101, 9102}
    assert published(compose["services"]["prometheus"]) == ["127.0.0.1:9090:9090"]
    assert published(compose["services"]["grafana"]) == ["127.0.0.1:3000:3000"]
    for name, svc in compose["services"].items():
        assert all(spec.startswith("127.0.0.1:") for spec in published(svc)), name
        assert "network_mode" not in svc or svc["network_mode"] == "none", f"{name}: host networking"


def test_start_order(compose: dict[str, Any]) -> None:
    """Both processes wait for keygen to exit 0; the brain for a healthy executor; Grafana for a healthy Prometheus."""
    services = compose["services"]
    for name in SETTINGS:
        assert services[name]["depends_on"]["keygen"]["condition"] == "service_completed_successfully", name
    assert services["brain"]["depends_on"]["executor"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert "depends_on" not in services["keygen"]


def test_restart_policies(compose: dict[str, Any]) -> None:
    """keygen never restarts (the string "no", not YAML's boolean), the brain on failure, the rest unless stopped."""
    assert {name: svc.get("restart") for name, svc in compose["services"].items()} == RESTART


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    """executor, brain (python probes, tested below), Prometheus and Grafana (busybox wget on their health URLs)."""
    services = compose["services"]
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD" and check.get("disable") is not True, name
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck {key}"
    assert "healthcheck" not in services["keygen"]
    for name, path in (("prometheus", "/-/healthy"), ("grafana", "/api/health")):
        port = published(services[name])[0].split(":")[-1]
        assert services[name]["healthcheck"]["test"] == [
            "CMD",
            "wget",
            "-q",
            "--spider",
            f"http://127.0.0.1:{port}{path}",
        ]


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(b"up 1\n")

    def log_message(self, *args: Any) -> None:
        pass


def run_healthcheck(code: str) -> int:
    return subprocess.run([sys.executable, "-c", code], timeout=30, capture_output=True).returncode


def test_healthchecks_pass_only_while_metrics_answer_and_the_bus_port_is_bound(
    compose: dict[str, Any], settings_of: Any
) -> None:
    """Each healthcheck, moved to free ports, passes with metrics up and its UDP port bound, and fails without."""
    binds = {"executor": "decision_addr", "brain": "confirm_addr"}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for name, setting in binds.items():
            s = settings_of(name)
            test = compose["services"][name]["healthcheck"]["test"]
            assert test[:3] == ["CMD", "python", "-c"], name
            code = test[3]
            assert "$" not in code, "compose would interpolate $ in the healthcheck"
            metrics_url = f"http://127.0.0.1:{s.metrics_port}/metrics"
            bus_port = re.compile(rf"% {parse_address(getattr(s, setting), setting=setting)[1]}\b")
            assert code.count(metrics_url) == 1, f"{name}: healthcheck metrics port"
            assert len(bus_port.findall(code)) == 1, f"{name}: healthcheck bus port"
            code = code.replace(metrics_url, f"http://127.0.0.1:{server.server_address[1]}/metrics")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", 0))
                moved = bus_port.sub(f"% {udp.getsockname()[1]}", code)
                assert run_healthcheck(moved) == 0, f"{name}: healthcheck fails on a healthy process"
                with socket.socket() as closed:
                    closed.bind(("127.0.0.1", 0))
                    dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/metrics"
                    metrics_down = moved.replace(
                        f"http://127.0.0.1:{server.server_address[1]}/metrics", dead_url
                    )
                    assert run_healthcheck(metrics_down) != 0, f"{name}: healthcheck passes with metrics down"
            assert run_healthcheck(moved) != 0, f"{name}: healthcheck passes with the bus port closed"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_run_dir_is_one_named_volume_shared_by_both_a_folder_per_mode(compose: dict[str, Any], settings_of: Any) -> None:
    """Both processes write their run dir into the same declared named volume, read-write, in a
    folder of the mode (paper and live never share journals)."""
    sources = set()
    for name in SETTINGS:
        dirs = {mode: settings_of(name, mode).run_dir for mode in ("paper", "live")}
        assert dirs == {"paper": Path("/data/paper"), "live": Path("/data/live")}, name
        at_data = [(src, ro) for src, target, ro in mounts(compose["services"][name]) if target == "/data"]
        assert len(at_data) == 1, f"{name}: nothing mounted at /data"
        assert not at_data[0][1], f"{name}: /data is read-only"
        sources.add(at_data[0][0])
    (volume,) = sources
    assert volume in compose["volumes"]


# -- the bus secret: keygen init service ----------------------------------------------------------


def test_keygen_writes_the_secret_both_processes_read(compose: dict[str, Any], settings_of: Any) -> None:
    """keygen writes TANDEM_BUS_SECRET_FILE into the named volume it mounts read-write; executor and brain
    mount that volume read-only at the same place; the Dockerfile creates the directory for the non-root user."""
    services = compose["services"]
    keygen = command(services["keygen"])
    assert keygen[:3] == ["tandem", "keygen", "--if-missing"] and len(keygen) == 4
    key_path = PurePosixPath(keygen[3])
    (volume,) = [
        src for src, target, ro in mounts(services["keygen"]) if target == str(key_path.parent) and not ro
    ]
    assert volume in compose["volumes"], "the secret must live in a declared named volume"
    for name in SETTINGS:
        assert str(settings_of(name).bus_secret_file) == str(key_path), name
        assert (volume, str(key_path.parent), True) in mounts(services[name]), (
            f"{name}: secret volume not read-only"
        )
    runs = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "RUN")
    user = [args for keyword, args in dockerfile_instructions() if keyword == "USER"][-1].split(":")[0]
    assert re.search(rf"mkdir [^&]*{re.escape(str(key_path.parent))}\b", runs)
    assert re.search(rf"chown {user}:{user} [^&]*{re.escape(str(key_path.parent))}\b", runs)


def test_keygen_secret_passes_the_checks_of_both_processes(compose: dict[str, Any], tmp_path: Path) -> None:
    """What the keygen service writes (run for real) is 32 bytes, mode 0600, which both processes load: all three
    services run as the image's one non-root user (no `user:` override), so owner-only is readable by both. 16 bytes
    or mode 0644 would be refused; a second run with --if-missing keeps it."""
    key = tmp_path / "bus_secret"
    args = command(compose["services"]["keygen"])[2:-1]
    assert keygen_main([*args, str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    secret = load_bus_secret(None, key)
    assert len(secret) == MIN_BUS_SECRET_BYTES
    assert keygen_main([*args, str(key)]) == 0 and load_bus_secret(None, key) == secret
    for name in ("keygen", *SETTINGS):
        assert "user" not in compose["services"][name], f"{name}: another user could not read a 0600 key"
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"^bus_secret_file: permissions 0644 for .* are too open; chmod 600 it$"):
        load_bus_secret(None, key)
    short = tmp_path / "short"
    write_secret_file(short, secret[:16])
    with pytest.raises(ConfigError, match=r"^bus_secret_file: the bus secret is 16 bytes"):
        load_bus_secret(None, short)


def test_keygen_is_one_shot_and_offline(compose: dict[str, Any]) -> None:
    """keygen needs no network and publishes nothing."""
    keygen = compose["services"]["keygen"]
    assert keygen["network_mode"] == "none" and not published(keygen)


# -- files the compose file refers to -------------------------------------------------------------


def test_every_referenced_file_exists(compose: dict[str, Any]) -> None:
    """Bind-mount sources, env files (both modes) and the Dockerfile exist in the checkout."""
    for name, svc in compose["services"].items():
        for source, target, _ in mounts(svc):
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
        for mode in MODES:
            for path in env_files(svc, mode):
                assert path.is_file(), f"{name}: {path}"
        if "build" in svc:
            assert (
                ROOT / svc["build"].get("context", ".") / svc["build"].get("dockerfile", "Dockerfile")
            ).is_file()


# -- prometheus -------------------------------------------------------------------------------------


def test_prometheus_scrapes_each_metrics_port_every_5s(
    compose: dict[str, Any], prometheus: dict[str, Any], settings_of: Any
) -> None:
    """Prometheus scrapes executor and brain on their TANDEM_METRICS_PORT every 5 s, over a shared network."""
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    services = compose["services"]
    for job_name, service in (("tandem_executor", "executor"), ("tandem_brain", "brain")):
        job = jobs[job_name]
        targets = [t for sc in job["static_configs"] for t in sc["targets"]]
        assert targets == [f"{service}:{settings_of(service).metrics_port}"], job_name
        assert job.get("scrape_interval", prometheus["global"]["scrape_interval"]) == "5s"
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert service_networks(services["prometheus"]) & service_networks(services[service]), service


def test_prometheus_service_loads_the_config_and_rules_read_only(compose: dict[str, Any]) -> None:
    """Pinned prom/prometheus, --config.file at the mounted config, rules directory mounted beside it, data volume."""
    prom = compose["services"]["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", prom["image"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    assert "--storage.tsdb.path=/prometheus" in prom["command"]
    volumes = mounts(prom)
    assert ("./deploy/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml", True) in volumes
    assert ("./deploy/prometheus/rules", "/etc/prometheus/rules", True) in volumes
    assert any(target == "/prometheus" and source in compose["volumes"] for source, target, _ in volumes)


# -- Dockerfile -------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def copy_sources(args: str) -> tuple[list[str], str]:
    """(sources, destination) of one COPY's arguments, flags dropped."""
    parts = json.loads(args) if args.startswith("[") else [p for p in args.split() if not p.startswith("--")]
    return parts[:-1], parts[-1]


def copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY."""
    return [copy_sources(args) for keyword, args in dockerfile_instructions() if keyword == "COPY"]


def test_dockerfile_copies_every_package_and_the_install_inputs(pyproject: dict[str, Any]) -> None:
    """The Dockerfile copies each [tool.setuptools] package, pyproject.toml, the lock, readme and license."""
    copied = {src.rstrip("/"): dest for sources, dest in copies() for src in sources}
    # subpackages ride along with their top-level package
    for package in {p.split(".")[0] for p in pyproject["tool"]["setuptools"]["packages"]}:
        assert copied.get(package, "").rstrip("/") == package, (
            f"Dockerfile does not copy {package}/ to {package}/"
        )
    for needed in ("pyproject.toml", "requirements.lock", "LICENSE", pyproject["project"]["readme"]):
        assert any(fnmatch.fnmatchcase(needed, src) for src in copied), f"Dockerfile does not copy {needed}"
    for src in copied:
        if not any(c in src for c in "*?["):
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"


def test_dockerfile_installs_locked_dependencies_before_the_source(pyproject: dict[str, Any]) -> None:
    """Layer order: pyproject + lock, then the locked runtime dependencies, then the source, then the package --no-deps."""
    packages = {p.split(".")[0] for p in pyproject["tool"]["setuptools"]["packages"]}
    steps = dockerfile_instructions()
    first_source = min(
        i
        for i, (kw, args) in enumerate(steps)
        if kw == "COPY" and {s.rstrip("/") for s in copy_sources(args)[0]} & packages
    )
    deps = [
        i for i, (kw, args) in enumerate(steps) if kw == "RUN" and "pip install -c requirements.lock" in args
    ]
    assert deps and deps[0] < first_source, "dependencies are not installed before the source is copied"
    before = {s for kw, args in steps[: deps[0]] if kw == "COPY" for s in copy_sources(args)[0]}
    assert before == {"pyproject.toml", "requirements.lock"}, f"the dependency layer depends on {before}"
    package = [i for i, (kw, args) in enumerate(steps) if kw == "RUN" and "pip install --no-deps ." in args]
    assert package and package[0] > first_source


def test_dockerfile_dependency_list_is_pyprojects_runtime_dependencies(
    pyproject: dict[str, Any], tmp_path: Path
) -> None:
    """The dependency layer's `python -c` (run here on pyproject.toml) lists exactly [project] dependencies, no test extras."""
    (run,) = [
        args
        for kw, args in dockerfile_instructions()
        if kw == "RUN" and "pip install -c requirements.lock" in args
    ]
    words = shlex.split(run)
    assert words[:2] == ["python", "-c"] and words[3] == ">"
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    out = subprocess.run(
        [sys.executable, "-c", words[2]], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == pyproject["project"]["dependencies"]
    assert f"-r {words[4]}" in run


def test_dockerfile_is_slim_non_root_and_runs_tandem_help(pyproject: dict[str, Any]) -> None:
    """python:3.11-slim, a non-root USER that owns /data, and `tandem --help` by default."""
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert froms == ["python:3.11-slim"]
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert re.search(rf"chown {users[-1]}:{users[-1]} [^&]*/data\b", runs)
    cmds = [args for keyword, args in instructions if keyword == "CMD"]
    assert [json.loads(c) for c in cmds] == [["tandem", "--help"]]
    assert pyproject["project"]["scripts"]["tandem"] == "tandem.cli:main"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context() -> None:
    """.dockerignore excludes the venv, runs, git, test caches, .env, exchange keys and any bus secret."""
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for entry in (
        ".venv",
        "runs",
        ".git",
        ".pytest_cache",
        ".hypothesis",
        ".env",
        "deploy/live.env",
        "deploy/bus_secret",
    ):
        assert entry in ignored, entry
