"""The errors every tandem process shares: a bad setting, and a storage fault that stops it.

Bad input (:class:`ConfigError`, and the input errors of each module) ends a process with exit
code 2 before it creates anything; a storage fault (:class:`StorageFault`) ends it with
:data:`STORAGE_FAULT_EXIT`.
"""

from __future__ import annotations

__all__ = ["STORAGE_FAULT_EXIT", "ConfigError", "StorageFault"]


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


STORAGE_FAULT_EXIT = 3
"""Exit code of a process stopped by a storage fault (:class:`StorageFault`): distinct from 1 (a
run that failed) and 2 (bad input), so a supervisor — compose's restart policy — restarts it on the
same run directory, where it resumes from its journal."""


class StorageFault(RuntimeError):
    """A write the process cannot go on without failed for good (a journal write after bounded
    retries, an output file): disk full, an I/O error, a journal locked too long. The process stops
    with :data:`STORAGE_FAULT_EXIT`; the message names the file and the error."""
