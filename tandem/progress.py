"""``tandem paper``'s progress bar: the brain's ``replay_progress`` lines drawn with tqdm on stderr."""

from __future__ import annotations

import json
import os
import select
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["PROGRESS_INTERVAL_S", "ReplayProgress"]

PROGRESS_INTERVAL_S = 0.2
"""How often the brain reports replay progress when the bar is shown, seconds."""


def _terminal_columns() -> int:
    """Columns of the terminal on stderr; 0 when it reports none or stderr is not one."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0


class ReplayProgress:
    """The brain's ``replay_progress`` JSON lines (its stdout) drawn as a tqdm bar on stderr.

    Read from the poll loop that already watches both processes, with ``select`` on the pipe, not
    from a thread (docs/STYLE.md §11). Other stdout lines (``brain_ready``) are ignored.
    """

    _FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n:,}/{total:,} bars  {rate_fmt}  elapsed {elapsed}  ETA {remaining}"

    def __init__(self, stdout: Any) -> None:
        self._stdout = stdout
        self._fd = stdout.fileno()
        os.set_blocking(self._fd, False)
        self._pending = b""
        self._eof = False
        self.bar: tqdm | None = None

    def wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for output and draw what arrived."""
        if self._eof:
            time.sleep(timeout_s)
        elif select.select([self._fd], [], [], timeout_s)[0]:
            self._read()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self._eof = True
                return
            *lines, self._pending = (self._pending + chunk).split(b"\n")
            for line in lines:
                self._on_line(line)

    def _on_line(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
            done, total = (int(msg["bars"]), int(msg["total"])) if msg.get("event") == "replay_progress" else (-1, 0)
        except (ValueError, TypeError, KeyError, AttributeError):
            return
        if done < 0:
            return
        if self.bar is None:
            from tqdm import tqdm  # here, not at the top: ~25 ms of start-up, and only a terminal shows the bar

            # a pty that reports a 0 x 0 size: tqdm would hide the bar (row 0 is not < 0 rows)
            sized = _terminal_columns() > 0
            self.bar = tqdm(total=total, desc="replay", unit=" bars", unit_scale=True, file=sys.stderr,
                            dynamic_ncols=sized, ncols=None if sized else 100, nrows=None if sized else 24,
                            mininterval=PROGRESS_INTERVAL_S, smoothing=0.3, bar_format=self._FORMAT)  # fmt: skip
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)
        if done >= total:  # the brain's last line: freeze the figures before it writes its outputs
            self.bar.close()

    def close(self) -> None:
        """Draw what is left in the pipe (call once the brain has exited) and close the bar."""
        if not self._eof:
            self._read()
        if self.bar is not None:
            self.bar.close()
        self._stdout.close()
