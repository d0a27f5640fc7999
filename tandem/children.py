"""Child processes of an orchestrating command (``tandem paper``, ``tandem chaos``): the flags that
give a child exactly the parent's settings, the JSON ready line it prints on stdout, and the tail
of its log for error messages."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = ["child_flags", "log_tail", "wait_ready"]


def wait_ready(proc: subprocess.Popen[str], log: Path, what: str, is_ready: Callable[[dict[str, Any]], bool],
               timeout_s: float) -> dict[str, Any]:  # fmt: skip
    """The first JSON line on ``proc``'s stdout for which ``is_ready`` holds.

    Raises:
        RuntimeError: ``proc`` exited or stayed silent for ``timeout_s``; it is killed and the
            tail of ``log`` is in the message.
    """
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(msg, dict) and is_ready(msg):
            return msg
    proc.kill()
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{what} did not become ready (exit {proc.wait()}); {log}:\n{tail}")


def child_flags(settings: BaseModel, cls: type[BaseModel], **override: Any) -> list[str]:
    """Command-line flags that give a child process of settings class ``cls`` exactly the values
    of ``settings`` (with ``override``) for every field ``cls`` has: flags beat the environment
    and ``.env`` (pydantic-settings precedence), so the child cannot pick up another value.

    Booleans become ``--name`` / ``--no-name`` (``cli_implicit_flags``); dicts are JSON; ``None``
    and ``bus_secret`` (never put on a command line) are left out.
    """
    out: list[str] = []
    values = settings.model_dump(exclude={"bus_secret"}) | override
    for name in cls.model_fields:
        if name == "bus_secret" or name not in values or values[name] is None:
            continue
        value = values[name]
        flag = name.replace("_", "-")
        if isinstance(value, bool):
            out.append(f"--{flag}" if value else f"--no-{flag}")
            continue
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        out += ["--" + flag, text]
    return out


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ("" when it cannot be read), for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
