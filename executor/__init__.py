"""The executor: a core (journal, ledger, venues behind one interface) wrapped by an async app.

Public API re-exported here; modules are private implementation.
"""

from .core import ExecutorCore, Outcome, Pending
from .journal import (
    SCHEMA_VERSION,
    DecisionState,
    Journal,
    JournalConflict,
    JournalCorrupt,
    JournaledDecision,
    JournalError,
    JournalMismatch,
)
from .ledger import DUST_REL_TOL, POSITION_REL_TOL, Fill, Ledger, LedgerError, Position
from .venue.paper import (
    DEFAULT_FEE_BPS,
    PaperFill,
    PaperRefusal,
    PaperVenue,
    paper_venue_ref,
)

__all__ = [
    "DEFAULT_FEE_BPS",
    "DUST_REL_TOL",
    "POSITION_REL_TOL",
    "SCHEMA_VERSION",
    "DecisionState",
    "ExecutorCore",
    "Fill",
    "Journal",
    "JournalConflict",
    "JournalCorrupt",
    "JournalError",
    "JournalMismatch",
    "JournaledDecision",
    "Ledger",
    "LedgerError",
    "Outcome",
    "PaperFill",
    "PaperRefusal",
    "PaperVenue",
    "Pending",
    "Position",
    "paper_venue_ref",
]
