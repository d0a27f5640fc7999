"""One supervised chaos process (``python -m brain`` or ``python -m executor``): start, scrape, kill, stop.

Each incarnation is started with identical arguments and its stderr appended to the same log,
each start marked by a ``chaos_start`` line (a line cut by SIGKILL is ended first so it cannot
swallow the marker). It is ready once it prints its ``<name>_ready`` JSON line on stdout (within
:data:`READY_TIMEOUT_S`), which gives its metrics port. Just before a SIGKILL, and before the
executor is stopped at the end, its ``/metrics`` counters are scraped and accumulated
(:meth:`ChaosChild.scrape`). A stop is SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT_S`.

Errors: :class:`ChaosFailure` (the process failed: exited early, not ready in time, metrics not
scrapable, would not stop), with the tail of its log in the message.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from tandem.children import log_tail

from .proxy import LOOPBACK

__all__ = ["READY_TIMEOUT_S", "STOP_TIMEOUT_S", "ChaosChild", "ChaosFailure"]

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class ChaosFailure(RuntimeError):
    """A process failed or the run exceeded its time limit; the message has the log tail."""


class ChaosChild:
    """One supervised process (``python -m brain`` or ``executor``), restarted with identical argv."""

    def __init__(self, name: str, argv: list[str], log: Path, counters: tuple[str, ...]) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.counters = counters
        self.proc: asyncio.subprocess.Process | None = None
        self.exited: asyncio.Future[int] | None = None
        self.metrics_port: int | None = None
        self.starts = 0
        self.kills = 0
        self.scraped: dict[str, Counter[str]] = {n: Counter() for n in counters}

    @property
    def running(self) -> bool:
        return self.exited is not None and not self.exited.done()

    def failure(self, what: str) -> ChaosFailure:
        return ChaosFailure(f"{self.name} {what}; {self.log}:\n{log_tail(self.log)}")

    async def start(self) -> None:
        """Start an incarnation and wait for its ready line (its metrics port)."""
        with self.log.open("a+b") as fh:
            if fh.tell():
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")  # a line cut by SIGKILL must not swallow the next incarnation's first
            marker = {"event": "chaos_start", "process": self.name, "incarnation": self.starts + 1}
            fh.write(json.dumps(marker).encode() + b"\n")
            fh.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=fh
            )
        self.starts += 1
        self.exited = asyncio.ensure_future(self.proc.wait())
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while True:
                    line = await self.proc.stdout.readline()
                    if not line:
                        raise self.failure(f"exited with {await self.exited} before it was ready")
                    try:
                        msg = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if msg.get("event") == f"{self.name}_ready":
                        self.metrics_port = msg.get("metrics_port")
                        return
        except TimeoutError:
            raise self.failure(f"did not print its ready line within {READY_TIMEOUT_S:.0f} s") from None

    async def scrape(self, http: Any) -> None:
        """Add this incarnation's counters (from ``/metrics``) to :attr:`scraped`."""
        from prometheus_client.parser import text_string_to_metric_families

        url = f"http://{LOOPBACK}:{self.metrics_port}/metrics"
        try:
            async with http.get(url) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self.failure(f"metrics at {url} could not be scraped ({exc!r})") from None
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in self.scraped:
                    self.scraped[s.name][s.labels.get("reason", "")] += s.value

    async def kill(self) -> None:
        assert self.proc is not None and self.exited is not None
        self.proc.kill()
        await self.exited
        self.kills += 1

    async def stop(self) -> int:
        """SIGTERM and wait (SIGKILL after :data:`STOP_TIMEOUT_S`); returns the exit code."""
        assert self.proc is not None and self.exited is not None
        self.proc.terminate()
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), STOP_TIMEOUT_S)
        except TimeoutError:
            self.proc.kill()
            await self.exited
            raise self.failure(f"did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM") from None

    def abort(self) -> None:
        if self.running and self.proc is not None:
            self.proc.kill()
