"""A keyless flooder: what an attacker on the same host can send without the bus secret (issue #11).

``python -m testbed.flood`` runs as a process of its own and never holds the key. It sends, at
fixed rates, for as long as it runs:

* **garbage** (``garbage_per_s``): random bytes of a decision's size (112), to the executor's
  decision port and, with ``garbage_to_brain``, as many of a confirmation's size (128) to the
  brain's confirmation port — almost all fail the version or type byte, the cheapest checks;
* **forged** (``forged_per_s``): random bytes behind a valid ``version, type`` prefix and of that
  type's exact size, so each one costs the receiver a tag check;
* **captured decisions** (``decision_replays_per_s``): the latest decision datagram the tap has
  shown, re-sent byte for byte to the executor (authentic and fresh for up to 60 s);
* **captured replay requests** (``replay_requests_per_s``): the two latest distinct replay
  requests, alternated, to the executor (two ``from_seq`` values: the pattern that got past a
  limiter keyed on ``from_seq``);
* **captured confirmations** (``confirmation_replays_per_s``): the latest confirmation, re-sent to
  the brain.

Captured datagrams come from a **tap**: a loopback UDP port the flooder listens on, to which a
sniffer sends copies of bus traffic (``tandem chaos`` has its proxy do it, standing in for an
attacker's packet capture). Each tap datagram is one bus datagram as seen on the wire; the flooder
reads only its public ``version, type`` prefix to sort it — it cannot decode or forge anything.

Pacing: a loop wakes every millisecond, sends what is due of each kind (so a rate is kept on
average to within a tick), and drains the tap. The loop is synchronous on one non-blocking socket:
a flooder should cost its own CPU, not the event loop's. On SIGTERM or SIGINT (or after
``seconds``) it prints one JSON line with what it sent and the rates achieved, and exits 0.

Only loopback targets are accepted (this is a test tool; DESIGN.md: only loopback is a target).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from protocol import MESSAGE_SIZES, PROTOCOL_VERSION, MessageType

__all__ = ["Flooder", "FloodRates", "main"]

_TICK_S = 0.001
_POOL = 4096  # random datagrams made up front and cycled: the sender's cost is the send, not urandom


@dataclass(frozen=True, slots=True)
class FloodRates:
    """Datagrams per second of each kind (0 = off)."""

    garbage_per_s: float = 0.0
    garbage_to_brain: bool = False
    forged_per_s: float = 0.0
    decision_replays_per_s: float = 0.0
    replay_requests_per_s: float = 0.0
    confirmation_replays_per_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("garbage_per_s", "forged_per_s", "decision_replays_per_s", "replay_requests_per_s",
                     "confirmation_replays_per_s"):  # fmt: skip
            value = getattr(self, name)
            if not (value >= 0 and value < 1e7):
                raise ValueError(f"{name} must be in [0, 1e7), got {value}")


@dataclass
class _Captured:
    decision: bytes | None = None
    confirmation: bytes | None = None
    replay_requests: list[bytes] = field(default_factory=list)  # the two latest distinct

    def see(self, data: bytes) -> str | None:
        """Sort one tapped datagram by its public prefix; returns its kind or None."""
        if len(data) < 2 or data[0] != PROTOCOL_VERSION:
            return None
        kind = data[1]
        if kind == MessageType.DECISION and len(data) == MESSAGE_SIZES[MessageType.DECISION]:
            self.decision = data
            return "decision"
        if kind == MessageType.CONFIRMATION and len(data) == MESSAGE_SIZES[MessageType.CONFIRMATION]:
            self.confirmation = data
            return "confirmation"
        if kind == MessageType.REPLAY_REQUEST and len(data) == MESSAGE_SIZES[MessageType.REPLAY_REQUEST]:
            if data not in self.replay_requests:
                self.replay_requests = [*self.replay_requests[-1:], data]
            return "replay_request"
        return None


def _loopback(addr: tuple[str, int], what: str) -> tuple[str, int]:
    if not ipaddress.ip_address(addr[0]).is_loopback:
        raise ValueError(f"{what}: {addr[0]} is not a loopback address (the flooder targets loopback only)")
    return addr


class Flooder:
    """Sends the configured floods at ``executor`` and ``brain`` (see the module docstring).

    Args:
        rates: what to send, per second.
        executor: the executor's decision address (loopback).
        brain: the brain's confirmation address (loopback), or ``None``.
        tap: where to listen for captured traffic (loopback; port 0 = any), or ``None``.
        seed: seeds the random datagrams.

    Raises:
        ValueError: a target or the tap is not a loopback address.
    """

    def __init__(self, rates: FloodRates, executor: tuple[str, int], brain: tuple[str, int] | None = None,
                 tap: tuple[str, int] | None = None, seed: int = 1) -> None:  # fmt: skip
        self.rates = rates
        self.executor = _loopback(executor, "executor")
        self.brain = _loopback(brain, "brain") if brain is not None else None
        self.sent: Counter[str] = Counter()
        self.send_errors = 0
        self.tapped: Counter[str] = Counter()
        self.captured = _Captured()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.tap: socket.socket | None = None
        if tap is not None:
            self.tap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.tap.setblocking(False)
            self.tap.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.tap.bind(_loopback(tap, "tap"))
        rng = __import__("random").Random(seed)
        dsize, csize = MESSAGE_SIZES[MessageType.DECISION], MESSAGE_SIZES[MessageType.CONFIRMATION]
        self._garbage = [rng.randbytes(dsize) for _ in range(_POOL)]
        self._garbage_b = [rng.randbytes(csize) for _ in range(_POOL)]
        self._forged = [bytes([PROTOCOL_VERSION, MessageType.DECISION]) + rng.randbytes(dsize - 2) for _ in range(_POOL)]
        self.started = 0.0
        self.elapsed = 0.0
        self._stop = False

    @property
    def tap_address(self) -> tuple[str, int] | None:
        return self.tap.getsockname()[:2] if self.tap is not None else None

    def stop(self, *_: object) -> None:
        self._stop = True

    def _send(self, kind: str, data: bytes, to: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, to)
            self.sent[kind] += 1
        except (BlockingIOError, ConnectionRefusedError):
            self.send_errors += 1  # our own buffer full, or nobody listening yet: an attacker shrugs

    def _drain_tap(self) -> None:
        if self.tap is None:
            return
        while True:
            try:
                data = self.tap.recv(2048)
            except BlockingIOError:
                return
            kind = self.captured.see(data)
            self.tapped[kind or "other"] += 1

    def run(self, seconds: float = 0.0) -> dict[str, object]:
        """Flood until :meth:`stop` (or ``seconds`` > 0 have passed); returns the figures."""
        r, cap = self.rates, self.captured
        due: Counter[str] = Counter()
        self.started = last = time.perf_counter()
        i = 0
        while not self._stop and not (seconds and last - self.started >= seconds):
            time.sleep(_TICK_S)
            now = time.perf_counter()
            dt, last = now - last, now
            self._drain_tap()
            for name, rate in (("garbage", r.garbage_per_s), ("forged", r.forged_per_s),
                               ("decision_replay", r.decision_replays_per_s),
                               ("replay_request", r.replay_requests_per_s),
                               ("confirmation_replay", r.confirmation_replays_per_s)):  # fmt: skip
                due[name] += rate * dt
            for _ in range(int(due["garbage"])):
                i += 1
                self._send("garbage", self._garbage[i % _POOL], self.executor)
                if r.garbage_to_brain and self.brain is not None:
                    self._send("garbage_brain", self._garbage_b[i % _POOL], self.brain)
            due["garbage"] %= 1
            for _ in range(int(due["forged"])):
                i += 1
                self._send("forged", self._forged[i % _POOL], self.executor)
            due["forged"] %= 1
            n = int(due["decision_replay"])
            if cap.decision is not None:
                for _ in range(n):
                    self._send("decision_replay", cap.decision, self.executor)
            due["decision_replay"] %= 1
            n = int(due["replay_request"])
            if cap.replay_requests:
                for k in range(n):
                    i += 1
                    self._send("replay_request", cap.replay_requests[i % len(cap.replay_requests)], self.executor)
            due["replay_request"] %= 1
            n = int(due["confirmation_replay"])
            if cap.confirmation is not None and self.brain is not None:
                for _ in range(n):
                    self._send("confirmation_replay", cap.confirmation, self.brain)
            due["confirmation_replay"] %= 1
        self.elapsed = time.perf_counter() - self.started
        return self.figures()

    def figures(self) -> dict[str, object]:
        """What was sent (per kind, and per second of the run), tapped, and failed to send."""
        secs = self.elapsed or 1e-9
        return {
            "event": "flood_done",
            "seconds": round(self.elapsed, 3),
            "sent": dict(self.sent),
            "rates_per_s": {k: round(v / secs) for k, v in self.sent.items()},
            "send_errors": self.send_errors,
            "tapped": dict(self.tapped),
        }

    def close(self) -> None:
        self.sock.close()
        if self.tap is not None:
            self.tap.close()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m testbed.flood``; prints ``{"event": "flood_ready", "tap": "host:port"}`` once it
    listens, then the figures when it stops. Exit 2 on bad arguments."""
    p = argparse.ArgumentParser(prog="python -m testbed.flood", description=__doc__.split("\n\n")[0])
    p.add_argument("--executor", type=_address, required=True, help="the executor's decision address")
    p.add_argument("--brain", type=_address, help="the brain's confirmation address")
    p.add_argument("--tap", type=_address, help="listen here for captured bus traffic (port 0 = any)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0 = until SIGTERM)")
    p.add_argument("--seed", type=int, default=1)
    for name in ("garbage-per-s", "forged-per-s", "decision-replays-per-s", "replay-requests-per-s",
                 "confirmation-replays-per-s"):  # fmt: skip
        p.add_argument(f"--{name}", type=float, default=0.0)
    p.add_argument("--garbage-to-brain", action="store_true")
    args = p.parse_args(argv)
    try:
        rates = FloodRates(args.garbage_per_s, args.garbage_to_brain, args.forged_per_s, args.decision_replays_per_s,
                           args.replay_requests_per_s, args.confirmation_replays_per_s)  # fmt: skip
        flooder = Flooder(rates, args.executor, args.brain, args.tap, args.seed)
    except (ValueError, OSError) as exc:
        print(f"python -m testbed.flood: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, flooder.stop)
    signal.signal(signal.SIGINT, flooder.stop)
    tap = flooder.tap_address
    print(json.dumps({"event": "flood_ready", "tap": f"{tap[0]}:{tap[1]}" if tap else None, "pid": os.getpid()}),
          flush=True)  # fmt: skip
    try:
        figures = flooder.run(args.seconds)
    finally:
        flooder.close()
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
