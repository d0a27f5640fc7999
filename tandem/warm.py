"""Warm children for ``tandem paper`` (issue #17): the brain and the executor started before the
parent has imported its own modules or checked a single input, so that the three interpreters'
start-up — about a quarter of a second of imports each — runs side by side on two cores instead
of one after the other.

A warm child (``python -m tandem.warm brain|executor``) imports its process's modules and then
waits, having read, bound and created nothing, for one JSON line on stdin:
``{"argv": [...], "stderr": "<path>", "stdout": "pipe" | "devnull"}``. It then appends its
standard error to ``stderr`` (the run directory's log, which the parent has opened) and runs
exactly as ``python -m brain|executor ARGV`` would, with the same exit codes. End of file instead
of that line — the parent refused an input, or died — and it exits 0 having done nothing. An
import that fails is written to that log once the child is started, and it exits 1.

This is the zygote of Android and of multiprocessing's ``forkserver``, without the fork: each child
is a fresh interpreter, so nothing of the parent's state (loggers, threads) reaches it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

__all__ = ["ROLES", "WarmChild", "main"]

ROLES = ("executor", "brain")
"""The processes a warm child can become, by their ``python -m`` module."""


class WarmChild:
    """One warm child as seen by the parent: :meth:`start` gives it its command line; :meth:`close`
    stops one that was never started (it has created nothing)."""

    def __init__(self, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"a warm child is one of {ROLES}, not {role!r}")
        self.role = role
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, "-m", "tandem.warm", role], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.started = False

    def start(self, argv: list[str], stderr: Path, *, stdout: bool) -> subprocess.Popen[str]:
        """Run the child as ``python -m <role> argv``, its standard error appended to ``stderr`` and
        its stdout kept as a pipe (``stdout``) or sent to ``/dev/null``; returns its process.

        Raises:
            RuntimeError: the child died before it read its command line (killed; an interpreter
                that cannot start): its standard error is in the message. An import that fails
                is not this: the child reports it in ``stderr`` once started, and exits 1.
        """
        proc = self.proc
        assert proc.stdin is not None and proc.stderr is not None
        self.started = True
        line = json.dumps({"argv": argv, "stderr": str(stderr), "stdout": "pipe" if stdout else "devnull"})
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.close()
        except OSError:  # BrokenPipeError: it is gone before reading its command line
            proc.wait()
            err = proc.stderr.read()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):  # stdin: its unsent line fails to flush again
                    stream.close()
            raise RuntimeError(f"the {self.role} exited with {proc.returncode} before it started:\n{err[-2000:]}")
        proc.stderr.close()  # its standard error is the log now; an import that failed is reported there
        return proc

    def close(self) -> None:
        """Stop a child never started (it has only imported modules); nothing for a started one."""
        if self.started:
            return
        self.started = True
        self.proc.kill()  # before its stdin closes: at end of file it would exit 0 by itself
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _reopen(fd: int, path: str, flags: int) -> None:
    """Point file descriptor ``fd`` of this process at ``path``."""
    new = os.open(path, flags)
    os.dup2(new, fd)
    os.close(new)


def main(argv: list[str] | None = None) -> int:
    """The child's side: import, wait for the command line, become the process."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ROLES:
        print(f"usage: python -m tandem.warm {{{'|'.join(ROLES)}}}", file=sys.stderr)
        return 2
    failed = None
    try:
        run = importlib.import_module(f"{args[0]}.main").main  # what `python -m <role>` runs
    except Exception:  # reported in the log it is given, where `python -m` would have written it
        failed = traceback.format_exc()
    line = sys.stdin.readline()
    if not line:
        return 0  # the parent will not start this run: nothing was created
    order = json.loads(line)
    _reopen(2, order["stderr"], os.O_WRONLY | os.O_APPEND)  # the parent created it, with its first line
    if order["stdout"] == "devnull":
        _reopen(1, os.devnull, os.O_WRONLY)
    _reopen(0, os.devnull, os.O_RDONLY)
    if failed is not None:
        sys.stderr.write(failed)
        return 1
    return run(order["argv"])


if __name__ == "__main__":
    sys.exit(main())
