"""The simulated host behind each mock BMC: power and a crash lifecycle.

The host is a small table-driven state machine so that later phases (kdump writing a dump,
the reboot that follows) can be added as new states and transitions without touching the
BMC code, which only calls :meth:`SimulatedHost.apply_reset`.

Time comes from an injectable :class:`Clock`; durations that later phases wait for go
through :meth:`SimulatedHost.scaled`, so tests can run the lifecycle 100x faster with
``scale=0.01`` or step it by hand with :class:`ManualClock`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class Clock(Protocol):
    """Where the host reads time from; :class:`RealClock` or :class:`ManualClock`."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it instantly."""

    current: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def now(self) -> float:
        with self._lock:
            return self.current

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self.current += seconds


class HostState(str, Enum):
    OFF = "off"
    RUNNING = "running"
    #: the OS no longer answers; only an NMI (or a power action) gets it out
    HUNG = "hung"
    #: an NMI arrived while the host was powered: the kernel panics and, later, kdump runs
    PANIC = "panic"

    @property
    def powered(self) -> bool:
        return self is not HostState.OFF


class Event(str, Enum):
    """What can happen to a host; BMC reset types map onto these."""

    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    RESTART = "restart"
    TOGGLE = "toggle"
    NMI = "nmi"
    HANG = "hang"


#: (state, event) -> next state.  A pair that is absent leaves the state unchanged.
TRANSITIONS: dict[tuple[HostState, Event], HostState] = {
    (HostState.OFF, Event.POWER_ON): HostState.RUNNING,
    (HostState.OFF, Event.TOGGLE): HostState.RUNNING,
    **{(s, Event.POWER_OFF): HostState.OFF for s in HostState if s.powered},
    **{(s, Event.TOGGLE): HostState.OFF for s in HostState if s.powered},
    **{(s, Event.RESTART): HostState.RUNNING for s in HostState if s.powered},
    (HostState.RUNNING, Event.HANG): HostState.HUNG,
    (HostState.RUNNING, Event.NMI): HostState.PANIC,
    (HostState.HUNG, Event.NMI): HostState.PANIC,
}

#: Redfish ResetType -> host event.  PowerCycle powers on a host that is off, as the
#: ResetType definition ("power removal followed by a power restore") implies.
RESET_EVENTS: dict[str, Event] = {
    "On": Event.POWER_ON,
    "ForceOn": Event.POWER_ON,
    "ForceOff": Event.POWER_OFF,
    "GracefulShutdown": Event.POWER_OFF,
    # HPE Cray EX offers the non-standard "Off"
    "Off": Event.POWER_OFF,
    "ForceRestart": Event.RESTART,
    "GracefulRestart": Event.RESTART,
    "PushPowerButton": Event.TOGGLE,
    "Nmi": Event.NMI,
}


@dataclass(frozen=True)
class HostRecord:
    """One thing that happened to the host, for tests and the control API."""

    at: float
    event: str
    before: str
    after: str

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at, "event": self.event, "before": self.before, "after": self.after}


@dataclass
class SimulatedHost:
    name: str
    clock: Clock = field(default_factory=RealClock)
    #: multiplies every duration of the lifecycle (0.01 = a hundred times faster)
    scale: float = 1.0
    state: HostState = HostState.RUNNING
    nmi_count: int = 0
    history: list[HostRecord] = field(default_factory=list)
    since: float = field(default=0.0)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    _watchers: list[Callable[[SimulatedHost, HostRecord], None]] = field(
        default_factory=list, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("scale must be positive")
        self.since = self.clock.now()

    def watch(self, callback: Callable[[SimulatedHost, HostRecord], None]) -> None:
        """Call ``callback(host, record)`` after every event (later phases, e.g. kdump, start here).

        Callbacks run on the thread that fired the event (a BMC request thread) and must not block.
        """
        with self._lock:
            self._watchers.append(callback)

    @property
    def power(self) -> str:
        """The Redfish PowerState: "On" or "Off"."""
        return "On" if self.state.powered else "Off"

    def scaled(self, seconds: float) -> float:
        """A lifecycle duration as this host experiences it."""
        return seconds * self.scale

    def can_apply(self, reset_type: str) -> bool:
        return reset_type in RESET_EVENTS or reset_type == "PowerCycle"

    def apply_reset(self, reset_type: str) -> HostState:
        """Apply a Redfish ResetType; returns the new state.  Unknown types raise ValueError."""
        with self._lock:
            if reset_type == "PowerCycle":
                # off then on, as one action: the host always ends up running
                if self.state.powered:
                    self._fire(Event.POWER_OFF)
                return self._fire(Event.POWER_ON)
            event = RESET_EVENTS.get(reset_type)
            if event is None:
                raise ValueError(f"the simulated host cannot apply ResetType {reset_type!r}")
            return self._fire(event)

    def set_power(self, power: str) -> HostState:
        if power not in ("On", "Off"):
            raise ValueError('power must be "On" or "Off"')
        return self._fire(Event.POWER_ON if power == "On" else Event.POWER_OFF)

    def hang(self) -> HostState:
        return self._fire(Event.HANG)

    def _fire(self, event: Event) -> HostState:
        with self._lock:
            before = self.state
            if event is Event.NMI:
                # recorded even when it changes nothing (host off): the BMC did deliver it
                self.nmi_count += 1
            after = TRANSITIONS.get((before, event), before)
            now = self.clock.now()
            record = HostRecord(now, event.value, before.value, after.value)
            self.history.append(record)
            if after is not before:
                self.state = after
                self.since = now
            watchers = list(self._watchers)
        for callback in watchers:
            callback(self, record)
        return after

    def to_dict(self) -> dict[str, object]:
        with self._lock:
            return {
                "state": self.state.value,
                "power": self.power,
                "nmi_count": self.nmi_count,
                "history": [record.to_dict() for record in self.history[-20:]],
            }
