"""The simulated host behind each mock BMC: power, a crash lifecycle, and time.

States and what moves a host between them (``TRANSITIONS``)::

    off --power on--> rebooting --reboot_time--> running --hang--> hung
                                                    |                |
                                                    '------NMI-------'
                                                           v
                      rebooting <--panic_timeout-- panicked --capture kernel--> dumping
                          ^        (kdump not armed)                               |
                          '-------------------- dump written (or failed) ----------'
                        (off instead, with the fault poweroff_after_dump)

Any power action works from any state (off, restart, power cycle); an NMI panics a
*running* host too, as ``kernel.unknown_nmi_panic=1`` does — only oob refuses to crash a
healthy host.  The timed steps run on a :class:`Timers` (the fleet's
:class:`mocks.scheduler.Scheduler`) after durations multiplied by ``scale``; what happens
while ``panicked`` and ``dumping`` is up to the crash kernel (:mod:`mocks.crashkernel`),
which watches the host and fires ``kdump`` and ``reboot`` through :meth:`SimulatedHost.fire_if`.

How the host hangs (``HostConfig.hang_kind``) decides the kernel log its kdump saves
after an NMI to it while hung (:mod:`mocks.kernellog`); :attr:`SimulatedHost.uptime`
gives that log its time stamps.

What the host prints on its serial console (ttyS0) goes to :attr:`SimulatedHost.console`
(:class:`HostConsole`): the boot banner and login prompt when it comes up, the panic, and
(from :mod:`mocks.crashkernel`) the crash kernel's boot and kdump's messages.  The mock
BMC's Serial-over-LAN (:mod:`mocks.ipmi_sol`) streams it to whoever activated it.

A host without timers (``SimulatedHost("h")`` on its own) boots instantly and, with no
crash kernel attached, stays ``panicked`` after an NMI (as with ``kernel.panic=0``).

Every timed step carries the host's *epoch*, which changes with every state change: a
step scheduled before a power action finds the epoch moved on and does nothing, so a
host powered off mid-dump writes nothing more and never "finishes" rebooting.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from .faults import HostFaults, merge_host_faults
from .fence_kdump import DEFAULT_INTERVAL, Node
from .fence_kdump import nodes as fence_kdump_nodes
from .kernellog import hang_kind
from .layouts import host_layout


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
    """A clock that moves only when told to; ``sleep`` advances it instantly.

    Whatever was waiting for the new time (a :class:`mocks.scheduler.Scheduler` registers
    itself with :meth:`on_advance`) runs inside :meth:`advance`, on the caller's thread.
    """

    current: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _listeners: list[Callable[[], None]] = field(default_factory=list, repr=False, compare=False)

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
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_advance(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)


class Timers(Protocol):
    """Runs a callback later on the host's clock (:class:`mocks.scheduler.Scheduler`)."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> None: ...


class HostState(StrEnum):
    OFF = "off"
    RUNNING = "running"
    #: the OS no longer answers; only an NMI (or a power action) gets it out
    HUNG = "hung"
    #: an NMI arrived: the kernel panicked; the crash kernel boots (or, without one, the
    #: panic timeout reboots the machine)
    PANICKED = "panicked"
    #: the crash kernel's kdump is writing the dump
    DUMPING = "dumping"
    #: firmware and OS coming up: the probe stays silent until ``running``
    REBOOTING = "rebooting"
    #: the name before the lifecycle had more states (an alias of PANICKED)
    PANIC = "panicked"

    @property
    def powered(self) -> bool:
        return self is not HostState.OFF


class Event(StrEnum):
    """What can happen to a host; BMC reset types map onto the first five."""

    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    RESTART = "restart"
    TOGGLE = "toggle"
    NMI = "nmi"
    HANG = "hang"
    #: a hung host recovers by itself (set through the fleet API)
    RECOVER = "recover"
    #: the crash kernel starts saving the dump
    KDUMP = "kdump"
    #: the crash kernel (or the panic timeout) reboots the machine
    REBOOT = "reboot"
    #: the OS is up: the probe answers again
    BOOTED = "booted"
    #: ``echo c > /proc/sysrq-trigger`` on the running host (``oob drill``'s default)
    SYSRQ_CRASH = "sysrq_crash"


_POWERED = [s for s in HostState if s.powered]

#: (state, event) -> next state.  A pair that is absent leaves the state unchanged.
TRANSITIONS: dict[tuple[HostState, Event], HostState] = {
    (HostState.OFF, Event.POWER_ON): HostState.REBOOTING,
    (HostState.OFF, Event.TOGGLE): HostState.REBOOTING,
    **{(s, Event.POWER_OFF): HostState.OFF for s in _POWERED},
    **{(s, Event.TOGGLE): HostState.OFF for s in _POWERED},
    **{(s, Event.RESTART): HostState.REBOOTING for s in _POWERED},
    (HostState.RUNNING, Event.HANG): HostState.HUNG,
    (HostState.HUNG, Event.RECOVER): HostState.RUNNING,
    (HostState.RUNNING, Event.NMI): HostState.PANICKED,
    (HostState.HUNG, Event.NMI): HostState.PANICKED,
    # only a running host has a shell to write the trigger from
    (HostState.RUNNING, Event.SYSRQ_CRASH): HostState.PANICKED,
    (HostState.PANICKED, Event.KDUMP): HostState.DUMPING,
    (HostState.PANICKED, Event.REBOOT): HostState.REBOOTING,
    (HostState.DUMPING, Event.REBOOT): HostState.REBOOTING,
    (HostState.REBOOTING, Event.BOOTED): HostState.RUNNING,
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

#: what :meth:`SimulatedHost.set_state` accepts, and the event each one fires
SETTABLE_STATES: dict[str, Event] = {"hung": Event.HANG, "running": Event.RECOVER}

MIB = 1024 * 1024
#: the uptime of a kernel when its host answers the probe after a reboot
BOOT_UPTIME = 25.0


#: bytes of console output a host keeps (a BMC's SOL buffer is about this small)
CONSOLE_KEEP = 64 * 1024

ConsoleListener = Callable[[bytes], None]


class HostConsole:
    """The host's serial port: what it printed (the last :data:`CONSOLE_KEEP` bytes) and
    who is listening.  Listeners run on the writing thread and must not block."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept = bytearray()
        self._listeners: list[ConsoleListener] = []
        #: bytes printed since the host was made
        self.written = 0

    def write(self, text: str | bytes) -> None:
        """Print ``text``; a str's line ends become CR LF, as a serial console sends them."""
        data = (
            text.encode("utf-8", "replace").replace(b"\n", b"\r\n") if isinstance(text, str) else bytes(text)
        )
        with self._lock:
            self._kept += data
            del self._kept[: max(0, len(self._kept) - CONSOLE_KEEP)]
            self.written += len(data)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(data)

    def kernel_lines(self, uptime: float, lines: list[str] | tuple[str, ...]) -> None:
        """Kernel messages, each stamped ``[uptime]`` as printk does on the console."""
        self.write("".join(f"[{uptime:12.6f}] {line}\n" for line in lines))

    def listen(self, listener: ConsoleListener) -> Callable[[], None]:
        """Call ``listener(bytes)`` with everything printed from now on; returns the way to stop."""
        with self._lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop

    @property
    def text(self) -> str:
        """What the console still holds, as text (for tests)."""
        with self._lock:
            return self._kept.decode("utf-8", "replace")


class HostStateError(ValueError):
    """A state the host cannot be put in from where it is (power it on, wait for the dump)."""


@dataclass(frozen=True)
class HostConfig:
    """How one simulated machine behaves.  Durations are seconds *before* the fleet's scale.

    At scale 1 the defaults take about a minute from NMI to ``running``: 15 s for the
    crash kernel to boot, 1 s of kernel log, 16 s of vmcore (1 MiB at 64 KiB/s), 30 s to
    reboot; at scale 0.02 the same takes about 1.2 s.
    """

    #: the host's own address: its probe listens there and network dumps carry it
    address: str | None = None
    #: the directory its kdump writes into (``/var/crash`` or a dump server's); None: no
    #: kdump target at all, so the host behaves as not armed
    dump_target: Path | None = None
    #: a :data:`mocks.layouts.HOST_LAYOUTS` name (or a family alias such as ``rhel``)
    layout: str = "rhel-local"
    #: a crash kernel is loaded (``/sys/kernel/kexec_crash_loaded`` = 1)
    armed: bool = True
    #: bytes of memory image kdump writes
    dump_size: int = MIB
    #: bytes per second kdump writes
    dump_rate: float = 64 * 1024
    #: NMI -> the capture kernel has booted and makes the dump directory
    boot_delay: float = 15.0
    #: time kdump spends saving the kernel log before the vmcore
    dmesg_delay: float = 1.0
    #: reset (or kdump's final reboot) -> the OS answers its probe again
    reboot_time: float = 30.0
    #: ``kernel.panic``: a panic without a crash kernel reboots after this long
    panic_timeout: float = 10.0
    #: how the host hangs (:data:`mocks.kernellog.HANG_KINDS`): an NMI to the *hung* host
    #: saves the kernel log of that hang; None: the plain NMI panic alone
    hang_kind: str | None = None
    #: ``fence_kdump_nodes``: where the crash kernel sends fence_kdump's "kdump has started"
    #: once booted (:func:`mocks.fence_kdump.nodes`: ``"127.0.0.1:7410"``, ``(addr, port)``, a
    #: list); empty: not configured, nothing sent
    fence_kdump: tuple[Node, ...] = ()
    #: ``fence_kdump_args -i``: seconds between rounds, until the dump ends
    fence_kdump_interval: float = DEFAULT_INTERVAL

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", host_layout(self.layout).name)
        object.__setattr__(self, "fence_kdump", fence_kdump_nodes(self.fence_kdump))
        if self.fence_kdump_interval <= 0:
            raise ValueError("fence_kdump_interval must be positive")
        if self.hang_kind is not None:
            object.__setattr__(self, "hang_kind", hang_kind(self.hang_kind).value)
        if self.dump_size <= 0 or self.dump_rate <= 0:
            raise ValueError("dump_size and dump_rate must be positive")
        for name in ("boot_delay", "dmesg_delay", "reboot_time", "panic_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class HostRecord:
    """One thing that happened to the host, for tests and the control API."""

    at: float
    event: str
    before: str
    after: str
    #: the host's epoch right after this event: what a step it starts must still find
    epoch: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at, "event": self.event, "before": self.before, "after": self.after}


Watcher = Callable[["SimulatedHost", HostRecord], None]


@dataclass
class SimulatedHost:
    name: str
    clock: Clock = field(default_factory=RealClock)
    #: multiplies every duration of the lifecycle (0.01 = a hundred times faster)
    scale: float = 1.0
    state: HostState = HostState.RUNNING
    config: HostConfig = field(default_factory=HostConfig)
    #: where timed steps run; None: reboots are instant and nothing else is timed
    timers: Timers | None = None
    faults: HostFaults = field(default_factory=HostFaults)
    nmi_count: int = 0
    history: list[HostRecord] = field(default_factory=list)
    since: float = field(default=0.0)
    #: the directory of the host's latest dump, once its kdump made one
    dump_directory: Path | None = None
    #: that dump: "writing", "complete", "stalled", "failed"
    dump_status: str | None = None
    #: its serial console (ttyS0)
    console: HostConsole = field(default_factory=HostConsole, repr=False, compare=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    _watchers: list[Watcher] = field(default_factory=list, repr=False, compare=False)
    _epoch: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("scale must be positive")
        self.since = self.clock.now()
        self._changed = threading.Condition(self._lock)
        # a server has been up for days when the fleet starts: 1 to 40, the same for a name
        self._booted_at = self.since
        self._uptime_at_boot = 86_400.0 + zlib.crc32(self.name.encode()) % (39 * 86_400)
        self._watchers.append(_console_chatter)

    @property
    def uptime(self) -> float:
        """Seconds since the host's kernel started, in the host's time (durations / scale)."""
        with self._lock:
            return self._uptime_at_boot + (self.clock.now() - self._booted_at) / self.scale

    def watch(self, callback: Watcher) -> None:
        """Call ``callback(host, record)`` after every event (the crash kernel starts here).

        Callbacks run on the thread that fired the event (a BMC request thread, the
        scheduler's thread), after the host's lock is released, and must not block.
        """
        with self._lock:
            self._watchers.append(callback)

    # -- what the BMC and the probe see

    @property
    def power(self) -> str:
        """The Redfish PowerState: "On" or "Off"."""
        return "On" if self.state.powered else "Off"

    @property
    def answers_probe(self) -> bool:
        """The OS is up: sshd sends its banner."""
        return self.state is HostState.RUNNING

    @property
    def address(self) -> str | None:
        return self.config.address

    @property
    def epoch(self) -> int:
        """Changes with every state change (see the module's docstring)."""
        with self._lock:
            return self._epoch

    def scaled(self, seconds: float) -> float:
        """A lifecycle duration as this host experiences it."""
        return seconds * self.scale

    def can_apply(self, reset_type: str) -> bool:
        return reset_type in RESET_EVENTS or reset_type == "PowerCycle"

    # -- what happens to it

    def apply_reset(self, reset_type: str) -> HostState:
        """Apply a Redfish ResetType; returns the new state.  Unknown types raise ValueError."""
        if reset_type == "PowerCycle":
            # off then on, as one action: the host always ends up booting
            with self._lock:
                records = self._apply(Event.POWER_OFF) if self.state.powered else []
                records += self._apply(Event.POWER_ON)
                after = self.state
            self._notify(records)
            return after
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

    def sysrq_crash(self) -> HostState:
        """``echo c > /proc/sysrq-trigger``: a running host panics ("sysrq triggered crash")."""
        return self._fire(Event.SYSRQ_CRASH)

    def set_state(self, state: str) -> HostState:
        """``"hung"`` (a running host stops answering) or ``"running"`` (a hung one recovers).

        Anything else, or from a state those do not apply to, raises HostStateError: a host
        that is off is powered on through the BMC, and a crash runs its course.
        """
        event = SETTABLE_STATES.get(state)
        if event is None:
            raise HostStateError(f"a host can be set {' or '.join(SETTABLE_STATES)}, not {state!r}")
        with self._lock:
            if self.state.value == state:
                return self.state
            if (self.state, event) not in TRANSITIONS:
                raise HostStateError(
                    f"{self.name} is {self.state.value}: only a running host can hang and only a hung one "
                    "recover (use power actions, or wait for the crash to run its course)"
                )
            records = self._apply(event)
            after = self.state
        self._notify(records)
        return after

    def fire_if(self, epoch: int, event: Event) -> int | None:
        """Fire ``event`` only if nothing changed the state since ``epoch`` (timed steps).

        Returns the epoch after the event, or None when the host had moved on (nothing fired).
        """
        with self._lock:
            if self._epoch != epoch:
                return None
            records = self._apply(event)
            epoch = self._epoch
        self._notify(records)
        return epoch

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        """Run ``callback`` after ``delay`` clock seconds (already scaled) on the host's timers."""
        if self.timers is None:
            raise RuntimeError(f"{self.name} has no timers: timed steps need a scheduler")
        self.timers.call_later(delay, callback)

    # -- configuration, faults, dump bookkeeping

    def configure(self, **changes: Any) -> HostConfig:
        """Replace fields of :attr:`config` (see :class:`HostConfig`); applies from the next event."""
        with self._lock:
            self.config = replace(self.config, **changes)
            return self.config

    def set_faults(self, changes: dict[str, object]) -> HostFaults:
        """Merge host faults (``kdump_not_armed``, ``dump_stall``, ...); FaultError if unknown."""
        with self._lock:
            self.faults = merge_host_faults(self.faults, changes)
            return self.faults

    def clear_faults(self) -> HostFaults:
        with self._lock:
            self.faults = HostFaults()
            return self.faults

    def note_dump(self, directory: Path | None, status: str) -> None:
        """The crash kernel reports where the latest dump is and how it stands."""
        with self._lock:
            if directory is not None:
                self.dump_directory = directory
            self.dump_status = status

    def wait_for(self, state: HostState | str, timeout: float) -> bool:
        """Block until the host is in ``state`` (True) or ``timeout`` real seconds pass (False)."""
        wanted = HostState(state)
        with self._changed:
            return self._changed.wait_for(lambda: self.state is wanted, timeout)

    # -- the state machine

    def _fire(self, event: Event) -> HostState:
        with self._lock:
            records = self._apply(event)
            after = self.state
        self._notify(records)
        return after

    def _apply(self, event: Event) -> list[HostRecord]:
        """One transition, under the lock; watchers are told later, outside it."""
        before = self.state
        if event is Event.NMI:
            # recorded even when it changes nothing (host off): the BMC did deliver it
            self.nmi_count += 1
        after = TRANSITIONS.get((before, event), before)
        if event is Event.NMI and self.faults.nmi_ignored:
            after = before  # "Dazed and confused, but trying to continue"
        if event is Event.REBOOT and before is HostState.DUMPING and self.faults.poweroff_after_dump:
            after = HostState.OFF  # kdump's final action: poweroff
        stuck = event is Event.REBOOT and self.faults.no_reboot
        if (
            after is HostState.REBOOTING
            and not stuck
            and (self.timers is None or self.config.reboot_time <= 0)
        ):
            after = HostState.RUNNING  # nothing to wait for: the host is up at once
        now = self.clock.now()
        if after is not before:
            self.state = after
            self.since = now
            if after is HostState.RUNNING and before is not HostState.HUNG:
                # a fresh kernel: it took about this long from the firmware to the probe
                self._booted_at, self._uptime_at_boot = now, BOOT_UPTIME
            self._epoch += 1
            self._changed.notify_all()
            if after is HostState.REBOOTING and not stuck:
                self._boot_later()
        record = HostRecord(now, event.value, before.value, after.value, self._epoch)
        self.history.append(record)
        return [record]

    def _boot_later(self) -> None:
        epoch = self._epoch
        self.call_later(self.scaled(self.config.reboot_time), lambda: self.fire_if(epoch, Event.BOOTED))

    def _notify(self, records: list[HostRecord]) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for record in records:
            for callback in watchers:
                callback(self, record)

    def to_dict(self) -> dict[str, object]:
        with self._lock:
            return {
                "state": self.state.value,
                "power": self.power,
                "since": self.since,
                "nmi_count": self.nmi_count,
                "address": self.config.address,
                "layout": self.config.layout,
                "hang_kind": self.config.hang_kind,
                "fence_kdump": [str(node) for node in self.config.fence_kdump],
                "armed": self.config.armed and self.config.dump_target is not None,
                "dump_target": str(self.config.dump_target) if self.config.dump_target else None,
                "dump_dir": str(self.dump_directory) if self.dump_directory else None,
                "dump_status": self.dump_status,
                "faults": self.faults.active(),
                "history": [record.to_dict() for record in self.history[-20:]],
            }


#: layout family -> what getty shows on the serial console before the login prompt (/etc/issue)
ISSUE: dict[str, str] = {
    "rhel": "Red Hat Enterprise Linux 9.4 (Plow)\nKernel 5.14.0-427.13.1.el9_4.x86_64 on an x86_64\n",
    "suse": "Welcome to SUSE Linux Enterprise Server 15 SP6  (x86_64) - Kernel 6.4.0-150600.23.25-default (ttyS0).\n",
    "debian": "Debian GNU/Linux 12 {name} ttyS0\n",
}


def _console_chatter(host: SimulatedHost, record: HostRecord) -> None:
    """What the first kernel and getty print on the console as the host comes up or stops."""
    if record.event == Event.BOOTED.value:
        issue = ISSUE.get(host_layout(host.config.layout).family.split("-")[0], ISSUE["rhel"])
        host.console.write(f"\n{issue.format(name=host.name)}\n{host.name} login: ")
    elif record.event == Event.POWER_OFF.value and record.before != record.after:
        host.console.kernel_lines(host.uptime, ("reboot: Power down",))
