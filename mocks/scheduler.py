"""Run callbacks later, on a :class:`~mocks.host.Clock`: the timer behind every simulated host.

One :class:`Scheduler` serves a whole fleet, so a hundred hosts rebooting or writing
dumps at once cost one thread, not a hundred sleeping ones.  The thread starts with the
first callback (an idle fleet has none) and :meth:`Scheduler.stop` ends it.

With a :class:`~mocks.host.ManualClock` there is no thread at all: due callbacks run in
the thread that advances the clock, inside :meth:`ManualClock.advance`, so a test that
advances the clock sees every consequence when ``advance`` returns.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable

from .host import Clock, ManualClock

log = logging.getLogger(__name__)

THREAD_NAME = "mock-host-timers"


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._queue: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()  # ties run in the order they were scheduled
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._manual = isinstance(clock, ManualClock)
        if isinstance(clock, ManualClock):
            clock.on_advance(self.run_due)

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        """Run ``callback`` once ``delay`` clock seconds have passed (never on the caller's thread).

        Callbacks run one at a time and must be quick (a file write, a state change); one
        that raises is logged and the others still run.  After :meth:`stop` this does nothing.
        """
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._queue, (self.clock.now() + max(0.0, delay), next(self._order), callback))
            if not self._manual and self._thread is None:
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()
            self._cond.notify()

    def run_due(self) -> None:
        """Run every callback whose time has come, including those they schedule for now."""
        while True:
            with self._cond:
                if self._stopped or not self._queue or self._queue[0][0] > self.clock.now():
                    return
                _, _, callback = heapq.heappop(self._queue)
            try:
                callback()
            except Exception:  # a bug in one host's timer must not stop every other host's
                log.exception("simulated host timer failed")

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def stop(self, timeout: float = 5.0) -> None:
        """Drop what is pending and end the thread.  Idempotent."""
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if not self._queue:
                        self._cond.wait()
                        continue
                    wait = self._queue[0][0] - self.clock.now()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopped:
                    return
            self.run_due()
