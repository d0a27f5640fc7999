"""Bounded retries for venue calls: capped exponential backoff with full jitter (tenacity).

A call is retried only on :class:`~executor.venue.errors.TemporaryVenueError` (and, for reads,
the caller maps ambiguity to temporary); it stops after ``attempts`` tries or ``deadline_s`` of
elapsed time, whichever comes first (DESIGN.md invariant 4: retries are bounded in count and
time). Each retry logs one structured ``venue_retry`` event and counts in a metric.

Defaults: first wait up to 0.2 s, doubling to a 2 s cap, 6 attempts, 15 s — inside Binance's
guidance to back off on 429 rather than hammer (a 429 that is ignored escalates to a 418 IP ban;
https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from .errors import TemporaryVenueError

__all__ = ["RetryPolicy"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry one venue call.

    Attributes:
        attempts: total tries, >= 1.
        deadline_s: stop retrying once this much time has passed since the first try.
        base_s: upper bound of the first wait; each later bound doubles (full jitter).
        cap_s: largest wait.
    """

    attempts: int = 6
    deadline_s: float = 15.0
    base_s: float = 0.2
    cap_s: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.deadline_s <= 0 or self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError(f"bad retry policy {self!r}")

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        what: str,
        log: Any = None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> T:
        """Await ``fn()`` until it returns, raises a non-temporary error, or the budget runs out
        (the last :class:`TemporaryVenueError` is then re-raised).

        Args:
            fn: the call; a new awaitable per attempt.
            what: names the call in the retry event (e.g. ``"fetch_order td…e7"``).
            log: structlog logger (default ``venue``).
            on_retry: called with the error before each wait (metrics).
        """
        logger = log if log is not None else structlog.get_logger("venue")
        t0 = time.monotonic()
        try:  # the first attempt outside tenacity: the common case costs one await
            return await fn()
        except TemporaryVenueError as exc:
            first_error: TemporaryVenueError = exc
        if self.attempts == 1:
            raise first_error

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            logger.warning("venue_retry", call=what, attempt=state.attempt_number + 1, wait_s=round(wait, 3),
                           error=type(exc).__name__, detail=str(exc))  # fmt: skip
            if on_retry is not None and exc is not None:
                on_retry(exc)

        first_wait = min(self.cap_s, self.base_s) * random.random()  # full jitter, like the later waits
        logger.warning("venue_retry", call=what, attempt=1, wait_s=round(first_wait, 3),
                       error=type(first_error).__name__, detail=str(first_error))  # fmt: skip
        if on_retry is not None:
            on_retry(first_error)
        await asyncio.sleep(first_wait)
        left_s = max(self.deadline_s - (time.monotonic() - t0), 0.0)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts - 1) | stop_after_delay(left_s),
            wait=wait_random_exponential(multiplier=self.base_s, max=self.cap_s),
            retry=retry_if_exception_type(TemporaryVenueError),
            before_sleep=before_sleep,
            reraise=True,
        )

        async def attempt() -> T:
            return await fn()

        return await retrying(attempt)
