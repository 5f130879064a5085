"""The one retry policy of every driver: retry only what certainly never left.

A request that may have reached the BMC is never retried (an NMI must not go out
twice); only ``NotDelivered`` errors marked ``retryable`` (connection refused, DNS,
connect timeout, a TLS handshake cut short, an IPMI login nobody answered) are, a few
times, with a growing pause, and each retry is logged (``-v`` shows it).  A connect
timeout is not retried: the peer already had the whole timeout to answer.  Whether a failure is one of
those is decided by the driver from where the request failed (for Redfish: the stage
its connection recorded, see :mod:`oob.drivers.redfish.wire`), never from an error's
text.  A certificate that fails verification (``TlsError``) is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from oob.errors import NotDelivered

_T = TypeVar("_T")


def retry_unsent(
    attempt: Callable[[], _T],
    *,
    what: str,
    attempts: int,
    on_retry: Callable[[str], None] | None,
    log: logging.Logger,
) -> _T:
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    def certainly_not_sent(exc: BaseException) -> bool:
        return isinstance(exc, NotDelivered) and exc.retryable

    def before_sleep(state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        message = (
            f"{what}: {exc}; nothing was sent, retrying (attempt {state.attempt_number + 1} of {attempts})"
        )
        if on_retry:
            on_retry(message)
        else:  # shown with -v; at default verbosity one line per method says how it ended
            log.info("%s", message)

    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=0.5, max=4),
        retry=retry_if_exception(certainly_not_sent),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(attempt)
