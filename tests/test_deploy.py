"""Static checks of the Docker setup: Dockerfile, .dockerignore, docker-compose.yml, deploy/prometheus.yml.

They need no Docker engine. docker-compose.yml and deploy/prometheus.yml are parsed with
``yaml.safe_load`` (PyYAML reads YAML 1.1, where a bare ``no`` is a boolean, as docker-compose 1.x
does; so such values are quoted in the files). The environment of each tandem service is loaded
through the real settings classes, so a name or value the processes would refuse fails here too.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from brain.settings import BrainSettings
from executor.settings import ExecutorSettings
from tandem.cli import _command
from tandem.runtime import (
    MIN_NETWORK_SECRET_BYTES,
    ConfigError,
    check_bind_secret,
    load_bus_secret,
    parse_address,
)
from tandem.settings import CommonSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS: dict[str, type[CommonSettings]] = {"executor": ExecutorSettings, "brain": BrainSettings}
COMMANDS = {"executor": ["tandem", "executor"], "brain": ["tandem", "brain"]}
SECRETS_DIR = "/run/secrets/"


# -- loading ------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    """Parse a YAML file with ``yaml.safe_load``."""
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "docker-compose.yml")


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return load_yaml(ROOT / "deploy" / "prometheus.yml")


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose allows a mapping or a list of KEY=VALUE)."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


@pytest.fixture
def settings_of(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Load a tandem service's settings from its compose environment alone, as its process would."""

    def load(name: str) -> Any:
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith("TANDEM_")]:
                m.delenv(key)
            for key, value in environment(compose["services"][name]).items():
                m.setenv(key, value)
            m.chdir(tmp_path)  # no stray .env from the working tree
            return load_settings(SETTINGS[name], [], f"tandem {name}")

    return load


def service_networks(service: dict[str, Any]) -> set[str]:
    networks = service.get("networks", ["default"])
    return set(networks) if isinstance(networks, list) else set(networks.keys())


def published(service: dict[str, Any]) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


# -- compose: processes and settings --------------------------------------------------------


def test_tandem_services_run_their_subcommands_from_this_image(compose: dict[str, Any]) -> None:
    """executor and brain run `tandem executor` / `tandem brain` from one image built here."""
    services = compose["services"]
    for name, expected in COMMANDS.items():
        svc = services[name]
        assert command(svc) == expected, name
        assert _command(expected[1]) is not None, f"tandem has no {expected[1]!r} subcommand"
        build = svc["build"]
        assert build.get("context", ".") == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile", name
    assert services["executor"]["image"] == services["brain"]["image"]


def test_every_tandem_variable_is_a_settings_field(compose: dict[str, Any]) -> None:
    """Every variable set on a tandem service is TANDEM_<field> of that process's settings."""
    for name, cls in SETTINGS.items():
        for key in environment(compose["services"][name]):
            assert key.startswith("TANDEM_"), f"{name}: {key} is not a tandem setting"
            assert key.removeprefix("TANDEM_").lower() in cls.model_fields, f"{name}: {key} is not a {cls.__name__} field"


def test_tandem_environments_load_as_valid_settings(settings_of: Any) -> None:
    """Each service's environment loads through its settings class (paper venue, run dir /data)."""
    executor, brain = settings_of("executor"), settings_of("brain")
    assert executor.venue == "paper"
    for s in (executor, brain):
        assert s.run_dir == Path("/data")
        assert s.bus_secret is None and s.bus_secret_file is not None


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


def test_metrics_are_published_on_host_loopback_only(compose: dict[str, Any], settings_of: Any) -> None:
    """Metrics listen on 0.0.0.0 in the container and are published on 127.0.0.1 only."""
    for name in SETTINGS:
        s = settings_of(name)
        assert s.metrics_host == "0.0.0.0" and s.metrics_port > 0, name
        assert published(compose["services"][name]) == [f"127.0.0.1:{s.metrics_port}:{s.metrics_port}"], name
    assert {settings_of("brain").metrics_port, settings_of("executor").metrics_port} == {9101, 9102}
    for name, svc in compose["services"].items():
        assert all(spec.startswith("127.0.0.1:") for spec in published(svc)), name


def test_brain_starts_after_a_healthy_executor(compose: dict[str, Any]) -> None:
    """The brain waits for the executor's healthcheck, and the executor has one."""
    services = compose["services"]
    assert services["brain"]["depends_on"]["executor"]["condition"] == "service_healthy"
    assert services["executor"]["healthcheck"]["test"][0] == "CMD"


def test_restart_policies(compose: dict[str, Any]) -> None:
    """The brain never restarts (the string "no", not YAML's boolean); the executor and Prometheus do."""
    services = compose["services"]
    assert services["brain"]["restart"] == "no"
    assert services["executor"]["restart"] == services["prometheus"]["restart"] == "unless-stopped"


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
                    metrics_down = moved.replace(f"http://127.0.0.1:{server.server_address[1]}/metrics", dead_url)
                    assert run_healthcheck(metrics_down) != 0, f"{name}: healthcheck passes with metrics down"
            assert run_healthcheck(moved) != 0, f"{name}: healthcheck passes with the bus port closed"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_run_dir_is_one_named_volume_shared_by_both(compose: dict[str, Any], settings_of: Any) -> None:
    """Both processes write their run dir to the same declared named volume."""
    sources = set()
    for name in SETTINGS:
        run_dir = str(settings_of(name).run_dir)
        mounts = [v.split(":") for v in compose["services"][name]["volumes"]]
        at_run_dir = [m[0] for m in mounts if m[1] == run_dir]
        assert len(at_run_dir) == 1, f"{name}: nothing mounted at {run_dir}"
        sources.add(at_run_dir[0])
    (volume,) = sources
    assert volume in compose["volumes"]


def test_bus_secret_file_is_the_mounted_compose_secret(compose: dict[str, Any], settings_of: Any) -> None:
    """TANDEM_BUS_SECRET_FILE is /run/secrets/<secret> for a secret the service mounts, from deploy/bus_secret."""
    for name in SETTINGS:
        path = str(settings_of(name).bus_secret_file)
        assert path.startswith(SECRETS_DIR), name
        mounted = {}
        for entry in compose["services"][name]["secrets"]:
            source = entry if isinstance(entry, str) else entry["source"]
            target = source if isinstance(entry, str) else entry.get("target", source)
            mounted[target if target.startswith("/") else SECRETS_DIR + target] = source
        assert path in mounted, f"{name}: {path} is not a mounted secret"
        assert compose["secrets"][mounted[path]] == {"file": "./deploy/bus_secret"}
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "deploy/bus_secret" in ignored or "/deploy/bus_secret" in ignored
    assert "deploy/bus_secret" in (ROOT / ".dockerignore").read_text().split()


def test_compose_binds_pass_the_secret_check_with_32_bytes_only(settings_of: Any, tmp_path: Path) -> None:
    """Both compose bind addresses pass check_bind_secret with the documented 32-byte secret, not with 16."""
    # The compose file's one-time step writes token_hex(32): 64 hex characters, decoded to 32 bytes.
    assert f'print(secrets.token_hex({MIN_NETWORK_SECRET_BYTES}))" > deploy/bus_secret' in (
        ROOT / "docker-compose.yml"
    ).read_text()
    loaded = {}
    for nbytes in (32, 16):
        path = tmp_path / f"bus_secret_{nbytes}"
        path.write_text(secrets.token_hex(nbytes) + "\n")  # what that command writes, for 32 and for 16
        loaded[nbytes] = load_bus_secret(None, path)
        assert len(loaded[nbytes]) == nbytes
    binds = {"executor": "decision_addr", "brain": "confirm_addr"}
    for name, setting in binds.items():
        host, _ = parse_address(getattr(settings_of(name), setting), setting=setting)
        assert host == "0.0.0.0", name  # not loopback: the check applies
        check_bind_secret(host, loaded[32], setting=setting)
        with pytest.raises(ConfigError, match=f"^{setting}: refusing to bind {re.escape(host)} "):
            check_bind_secret(host, loaded[16], setting=setting)


# -- prometheus -------------------------------------------------------------------------------


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
    prom = services["prometheus"]
    assert prom["image"].startswith("prom/prometheus:")
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom["volumes"]


# -- Dockerfile ---------------------------------------------------------------------------------


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


def copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY, flags dropped."""
    result = []
    for keyword, args in dockerfile_instructions():
        if keyword != "COPY":
            continue
        parts = json.loads(args) if args.startswith("[") else [p for p in args.split() if not p.startswith("--")]
        result.append((parts[:-1], parts[-1]))
    return result


def test_dockerfile_copies_every_package_and_the_install_inputs(pyproject: dict[str, Any]) -> None:
    """The Dockerfile copies each [tool.setuptools] package, pyproject.toml, the lock, readme and license."""
    copied = {src.rstrip("/"): dest for sources, dest in copies() for src in sources}
    for package in {p.split(".")[0] for p in pyproject["tool"]["setuptools"]["packages"]}:  # subpackages ride along
        assert copied.get(package, "").rstrip("/") == package, f"Dockerfile does not copy {package}/ to {package}/"
    for needed in ("pyproject.toml", "requirements.lock", "LICENSE", pyproject["project"]["readme"]):
        assert any(fnmatch.fnmatchcase(needed, src) for src in copied), f"Dockerfile does not copy {needed}"
    for src in copied:
        if not any(c in src for c in "*?["):
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"


def test_dockerfile_installs_the_locked_tree_and_runs_as_non_root(pyproject: dict[str, Any]) -> None:
    """python:3.11-slim, `pip install -c requirements.lock .`, a non-root USER and `tandem --help` by default."""
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert froms == ["python:3.11-slim"]
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    assert any("pip install -c requirements.lock ." in args for args in runs)
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    cmds = [args for keyword, args in instructions if keyword == "CMD"]
    assert [json.loads(c) for c in cmds] == [["tandem", "--help"]]
    assert pyproject["project"]["scripts"]["tandem"] == "tandem.cli:main"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context() -> None:
    """.dockerignore excludes the venv, runs, git, test caches, .env and the bus secret."""
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for entry in (".venv", "runs", ".git", ".pytest_cache", ".hypothesis", ".env", "deploy/bus_secret"):
        assert entry in ignored, entry
