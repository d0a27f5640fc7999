"""Venue errors: every foreign exception becomes one of three kinds, in one place per adapter.

- :class:`TemporaryVenueError`: the request had no effect (rate limit, a read that failed, a
  timestamp rejection); the same request may be sent again after a pause.
- :class:`AmbiguousVenueError`: the request may or may not have taken effect (timeout, dropped
  connection, 5xx on an order). Binance: "HTTP 5XX return codes are used for internal errors; the
  issue is on Binance's side. It is important to NOT treat this as a failure operation; the
  execution status is UNKNOWN and could have been a success"
  (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-api-information).
  An order is looked up by its client order id before anything is resubmitted.
- :class:`PermanentVenueError`: refused for good (insufficient balance, filter failure, bad
  symbol, authentication); carries the :class:`~protocol.RejectCode` and the
  :class:`~protocol.Status` (FAILED from a venue, REJECTED from a pre-trade check) to confirm with.

  - :class:`StopWouldTrigger`: a stop order refused because the market is already through its
    trigger (Binance USDⓈ-M -2021 "Order would immediately trigger.", spot -2010 "Stop price would
    trigger immediately."): the stop would have fired at once, so the exit order gateway sells
    instead (DESIGN.md invariant 3: a protective level is never silently dropped).
  - :class:`OrderAbsent`: the venue says no order has this client order id (Binance -2013 "Order
    does not exist.", -2011 "Unknown order sent."): the one form "absent" takes after translation.
    :meth:`~executor.venue.base.Venue.fetch_order` and :meth:`~executor.venue.base.Venue.cancel`
    answer it with ``None``; from any other call it is a refusal like its base class.
"""

from __future__ import annotations

from protocol import RejectCode, Status

__all__ = [
    "AmbiguousVenueError",
    "OrderAbsent",
    "OwnershipConflict",
    "PermanentVenueError",
    "StopWouldTrigger",
    "TemporaryVenueError",
    "VenueError",
]


class VenueError(Exception):
    """Base. ``detail`` says what and where (venue, call, client order id, the venue's message)."""

    kind = "venue"

    def __init__(self, detail: str, reject_code: RejectCode = RejectCode.VENUE_ERROR) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reject_code = reject_code


class TemporaryVenueError(VenueError):
    """Nothing happened; retry after backing off."""

    kind = "temporary"


class AmbiguousVenueError(VenueError):
    """Maybe it happened; look the order up by client order id before any resubmission."""

    kind = "ambiguous"


class PermanentVenueError(VenueError):
    """Refused; do not retry. ``reject_code`` is what the confirmation carries."""

    kind = "permanent"

    def __init__(self, detail: str, reject_code: RejectCode = RejectCode.VENUE_ERROR,
                 status: Status = Status.FAILED) -> None:  # fmt: skip
        super().__init__(detail, reject_code)
        self.status = status


class StopWouldTrigger(PermanentVenueError):
    """A stop order the venue refused because its trigger is already crossed (it would fire at once)."""

    kind = "permanent"


class OrderAbsent(PermanentVenueError):
    """The venue has no order with the client order id asked about (``kind`` stays ``permanent``:
    the metric's ``kind`` label values do not change)."""

    kind = "permanent"


class OwnershipConflict(PermanentVenueError):
    """A protective order was created, amended or cancelled by a module other than the gateway."""

    kind = "ownership"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, RejectCode.GUARD, Status.REJECTED)
