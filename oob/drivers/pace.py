"""A request pace per BMC, shared by every thread of this process.

BMCs are small computers: a fleet run that sends many hosts' requests to one chassis
manager (blades behind one BMC, ``bmc.system``) must not flood it. Each BMC address gets
at most one request per ``interval`` seconds from this process.
"""

from __future__ import annotations

import threading
import time

#: default gap between two requests to one BMC (at most 20 requests per second)
DEFAULT_INTERVAL = 0.05


class Pacer:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> float:
        """Block until this BMC may get the next request; returns the seconds waited."""
        with self._lock:
            now = time.monotonic()
            delay = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if delay:
            time.sleep(delay)
        return delay


_pacers: dict[str, Pacer] = {}
_registry_lock = threading.Lock()


def pacer_for(bmc: str, interval: float = DEFAULT_INTERVAL) -> Pacer:
    """The one pacer of this BMC (keyed by its address) in this process."""
    with _registry_lock:
        pacer = _pacers.get(bmc)
        if pacer is None:
            pacer = _pacers[bmc] = Pacer(interval)
        return pacer
