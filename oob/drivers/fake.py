"""An in-process BMC for tests: no socket, no subprocess, no thread of its own.

:class:`FakeBmc` is the state of one simulated BMC (the host's power, the ResetType values
it accepts and whether it says so, sessions, which methods answer) and keeps count of what
was done to it (logins per method, open sessions, every action it *applied*).  Failures are
scripted per stage (login, read, NMI, power action) and per method, and may strike before
or *after* the BMC applied the action — the case oob must never answer with a second NMI.
:class:`FakeDriver` is a :class:`~oob.drivers.base.BmcDriver` working on one FakeBmc for
one method; :class:`FakeFleet` maps host names or BMC addresses to FakeBmcs and is the
factory :func:`oob.drivers.factory.use_drivers` takes, so runbooks run unchanged on it::

    from oob.drivers.factory import use_drivers
    from oob.drivers.fake import Fault, FakeFleet, Stage

    fleet = FakeFleet()
    bmc = fleet.add("10.0.0.5")                          # bmc.address of the host(s)
    bmc.fail(Stage.NMI, Fault.OUTCOME_UNKNOWN, method="redfish", applied=True)
    with use_drivers(fleet):
        outcomes = run_nmi(hosts, NmiRequest(assume_yes=True), confirm=..., emit=..., audit=...)
    assert bmc.nmis_applied() == 1 and bmc.logins("ipmi") == 0 and bmc.open_sessions() == 0

Every method is thread safe: runbooks drive several hosts, and so several drivers on one
FakeBmc, from worker threads.  What the fake does not model: retries inside a transport,
TLS, timing (nothing ever sleeps), Redfish tasks.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from oob.drivers.base import BmcDriver
from oob.drivers.redfish.driver import RESET_TYPES  # the same order of preference as the real driver
from oob.errors import (
    ActionUnsupported,
    BmcAuthError,
    BmcProtocolError,
    BmcRefused,
    BmcUnreachable,
    OobError,
    OutcomeUnknown,
    TlsError,
    UsageError,
)
from oob.model import METHODS, ActionResult, BmcInfo, Host, NmiSupport, PowerAction, PowerState
from oob.signals.bmclog import BmcLog, EntryKind, LogCollector, LogEntry, Severity, SourceStatus, Window

if TYPE_CHECKING:
    from oob.drivers.redfish.driver import SessionUsage

#: what a BMC that offers everything lists as ResetType@Redfish.AllowableValues
ALLRESET_TYPES: tuple[str, ...] = (
    "On",
    "ForceOn",
    "ForceOff",
    "GracefulShutdown",
    "ForceRestart",
    "GracefulRestart",
    "PowerCycle",
    "Nmi",
)


#: the power state after each ResetType (Nmi changes nothing the BMC can see)
_AFTER: dict[str, PowerState] = {
    "On": PowerState.ON,
    "ForceOn": PowerState.ON,
    "ForceOff": PowerState.OFF,
    "GracefulShutdown": PowerState.OFF,
    "PushPowerButton": PowerState.OFF,
    "ForceRestart": PowerState.ON,
    "GracefulRestart": PowerState.ON,
    "PowerCycle": PowerState.ON,
}

#: IPMI Chassis Control (IPMI 2.0 section 28.3) as the IPMI driver names it in ``ActionResult.sent``
_CHASSIS: dict[str, str] = {
    "ForceOff": "chassis control 0x00 (power down)",
    "On": "chassis control 0x01 (power up)",
    "PowerCycle": "chassis control 0x02 (power cycle)",
    "ForceRestart": "chassis control 0x03 (hard reset)",
    "Nmi": "chassis control 0x04 (pulse diagnostic interrupt)",
    "GracefulShutdown": "chassis control 0x05 (soft shutdown)",
}
_IPMI_ACTION: dict[PowerAction, str] = {
    PowerAction.ON: "On",
    PowerAction.OFF: "ForceOff",
    PowerAction.SHUTDOWN: "GracefulShutdown",
    PowerAction.RESET: "ForceRestart",
    PowerAction.CYCLE: "PowerCycle",
}


class Stage(StrEnum):
    """Where a scripted failure strikes."""

    #: ``open()``: connect and authenticate
    LOGIN = "login"
    #: ``power_state()``, ``nmi_support()``, ``info()``, ``session_usage()``
    READ = "read"
    #: ``send_nmi()``
    NMI = "nmi"
    #: ``power()``
    POWER = "power"


class Fault(StrEnum):
    """What a scripted failure raises."""

    UNREACHABLE = "unreachable"  # BmcUnreachable: nothing answered
    TLS = "tls"  # TlsError: the certificate is not trusted
    AUTH = "auth"  # BmcAuthError: credentials refused (or no session free)
    REFUSED = "refused"  # BmcRefused: the BMC answered the action with an error
    UNSUPPORTED = "unsupported"  # ActionUnsupported
    PROTOCOL = "protocol"  # BmcProtocolError: an answer oob will not follow
    OUTCOME_UNKNOWN = "outcome_unknown"  # OutcomeUnknown: the request left, no answer came back
    BUG = "bug"  # any other exception (``Failure.bug``, RuntimeError by default): a bug


class Advertise(StrEnum):
    """How the BMC says which ResetType values it accepts (Redfish)."""

    INLINE = "inline"  # ResetType@Redfish.AllowableValues
    ACTIONINFO = "actioninfo"  # @Redfish.ActionInfo
    NONE = "unadvertised"  # neither: oob sends Nmi unchecked


@dataclass(frozen=True)
class Failure:
    """One scripted failure (see :meth:`FakeBmc.fail`)."""

    stage: Stage
    fault: Fault
    #: "redfish", "ipmi", or None for both
    method: str | None = None
    #: the BMC applies the action (NMI, power) before the failure strikes: an answer lost
    #: after the fact, or a BMC that says no and does it anyway
    applied: bool = False
    #: how many times it strikes before it is spent; None: every time
    times: int | None = None
    message: str | None = None
    bmc_message: str | None = None
    #: what ``Fault.BUG`` raises
    bug: type[Exception] = RuntimeError

    def matches(self, stage: Stage, method: str) -> bool:
        return self.stage is stage and self.method in (None, method)

    def error(self, host: str) -> Exception:
        text = self.message or f"scripted {self.fault.value} failure at {self.stage.value} (fake BMC)"
        if self.fault is Fault.BUG:
            return self.bug(text)
        errors: dict[Fault, Callable[[], OobError]] = {
            Fault.UNREACHABLE: lambda: BmcUnreachable(
                text, host=host, retryable=False, bmc_message=self.bmc_message
            ),
            Fault.TLS: lambda: TlsError(text, host=host),
            Fault.AUTH: lambda: BmcAuthError(text, host=host, bmc_message=self.bmc_message),
            Fault.REFUSED: lambda: BmcRefused(text, host=host, bmc_message=self.bmc_message),
            Fault.UNSUPPORTED: lambda: ActionUnsupported(text, host=host, bmc_message=self.bmc_message),
            Fault.PROTOCOL: lambda: BmcProtocolError(text, host=host, bmc_message=self.bmc_message),
            Fault.OUTCOME_UNKNOWN: lambda: OutcomeUnknown(text, host=host, bmc_message=self.bmc_message),
        }
        return errors[self.fault]()


@dataclass(frozen=True)
class Applied:
    """An action the BMC performed."""

    method: str
    #: the Redfish ResetType it amounts to ("Nmi", "ForceOff", "On", ...), also over IPMI
    reset_type: str
    #: the host's name as the driver's inventory entry gave it
    host: str


@dataclass(frozen=True)
class Request:
    """One call a driver made on the BMC, in order (``FakeBmc.requests``)."""

    method: str
    #: "login", "logout", "power_state", "nmi_support", "info", "sessions", "nmi", or the
    #: power action ("on", "off", "shutdown", "reset", "cycle")
    operation: str
    #: "ok", "applied" (an action performed), or the fault / exception raised
    result: str


#: called after the BMC applied an action: ``hook(bmc, applied)`` (e.g. write a crash dump)
ApplyHook = Callable[["FakeBmc", Applied], None]


@dataclass(eq=False)
class FakeBmc:
    """The state of one simulated BMC and its host.  Fields may be set between runs;
    counters are read through the methods below."""

    power: PowerState = PowerState.ON
    #: the ResetType values the BMC accepts (Redfish); IPMI accepts every chassis control
    reset_types: tuple[str, ...] = ALLRESET_TYPES
    #: how (whether) the BMC lists ``reset_types``
    advertise: Advertise = Advertise.INLINE
    #: whether IPMI's pulse-diagnostic-interrupt is wired up (else it answers 0xCC)
    ipmi_nmi: bool = True
    #: the methods that answer at all ("redfish", "ipmi"); the others are unreachable
    methods: frozenset[str] = frozenset(METHODS)
    #: if set, the password the BMC accepts (compared with the host's resolved bmc.password)
    password: str | None = None
    #: sessions the BMC allows at once per method (a login beyond is refused); None: no limit
    session_limit: int | None = None
    #: sessions other users hold open (counted toward the limit and in session_usage)
    other_sessions: int = 0
    #: the Redfish SessionService's SessionTimeout, seconds
    session_timeout: int | None = 1800
    #: what the BMC says about itself
    kind: str = "openbmc"
    vendor: str = "Fake BMC"
    model: str | None = "Fake Server"
    firmware: str | None = "1.0"
    #: things every driver reports after login (driver.warnings)
    warnings: tuple[str, ...] = ()
    #: called (outside the BMC's lock) after every applied action
    on_apply: ApplyHook | None = None
    #: the BMC's event log (``read_event_log``); an applied NMI adds its entry; None: the
    #: BMC offers no log
    event_log: list[LogEntry] | None = field(default_factory=list)

    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _failures: list[Failure] = field(default_factory=list, init=False, repr=False)
    _strikes: Counter[int] = field(default_factory=Counter, init=False, repr=False)
    _logins: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    _sessions: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    _applied: list[Applied] = field(default_factory=list, init=False, repr=False)
    _requests: list[Request] = field(default_factory=list, init=False, repr=False)

    # -- scripting ------------------------------------------------------------------------

    def fail(
        self,
        stage: Stage,
        fault: Fault,
        *,
        method: str | None = None,
        applied: bool = False,
        times: int | None = None,
        message: str | None = None,
        bmc_message: str | None = None,
        bug: type[Exception] = RuntimeError,
    ) -> Failure:
        """From now on, ``stage`` over ``method`` (None: both) raises ``fault`` — ``times``
        times, or always.  ``applied``: an NMI or power action is performed first.  The
        first matching failure that is not spent strikes."""
        if method is not None and method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
        failure = Failure(stage, fault, method, applied, times, message, bmc_message, bug)
        with self._lock:
            self._failures.append(failure)
        return failure

    def heal(self) -> None:
        """Forget every scripted failure."""
        with self._lock:
            self._failures.clear()
            self._strikes.clear()

    # -- what happened --------------------------------------------------------------------

    def logins(self, method: str | None = None) -> int:
        """Login attempts (``open()`` calls), refused ones included."""
        with self._lock:
            return self._logins[method] if method else sum(self._logins.values())

    def open_sessions(self, method: str | None = None) -> int:
        """oob's sessions open now (``other_sessions`` not included): 0 after every run."""
        with self._lock:
            return self._sessions[method] if method else sum(self._sessions.values())

    def nmis_applied(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for a in self._applied if a.reset_type == "Nmi" and method in (None, a.method))

    def power_actions_applied(self, method: str | None = None) -> list[str]:
        """The ResetType of every power action performed, in order."""
        with self._lock:
            return [
                a.reset_type for a in self._applied if a.reset_type != "Nmi" and method in (None, a.method)
            ]

    @property
    def applied(self) -> list[Applied]:
        with self._lock:
            return list(self._applied)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    # -- drivers --------------------------------------------------------------------------

    def driver(self, host: Host, method: str) -> FakeDriver:
        """A driver (not yet opened) for ``host`` over ``method``, as ``make_driver`` builds one."""
        if method == "redfish":
            return FakeRedfishDriver(self, host)
        if method == "ipmi":
            return FakeDriver(self, host, "ipmi")
        raise UsageError(f"host '{host.name}': unknown BMC method '{method}'", host=host.name)

    # -- used by FakeDriver (with the lock held unless said) --------------------------------

    def _note(self, method: str, operation: str, result: str) -> None:
        self._requests.append(Request(method, operation, result))

    def _strike(self, stage: Stage, method: str) -> Failure | None:
        for index, failure in enumerate(self._failures):
            if failure.matches(stage, method) and (
                failure.times is None or self._strikes[index] < failure.times
            ):
                self._strikes[index] += 1
                return failure
        return None

    def _unstrike(self, failure: Failure) -> None:
        index = next(i for i, f in enumerate(self._failures) if f is failure)
        self._strikes[index] -= 1

    def _apply(self, method: str, reset_type: str, host: str) -> Applied:
        applied = Applied(method, reset_type, host)
        self._applied.append(applied)
        if reset_type == "Nmi" and self.event_log is not None:
            self.event_log.append(
                LogEntry(
                    time=datetime.now(UTC),
                    severity=Severity.CRITICAL,
                    source="SEL" if method == "ipmi" else "EventLog",
                    message="Critical Interrupt: Front Panel NMI / Diagnostic Interrupt",
                    kind=EntryKind.NMI,
                    sensor="Critical Interrupt",
                    raw_id=str(len(self.event_log) + 1),
                )
            )
        if reset_type in _AFTER:
            self.power = _AFTER[reset_type]
        return applied

    def _hook(self, applied: Applied | None) -> None:
        """Outside the lock: a hook may take its time, or look at the BMC."""
        if applied is not None and self.on_apply is not None:
            self.on_apply(self, applied)


class FakeDriver(BmcDriver):
    """A :class:`BmcDriver` on a :class:`FakeBmc`, for one method; behaves like the real
    driver of that method where runbooks can tell (errors, NmiSupport, ActionResult)."""

    def __init__(self, bmc: FakeBmc, host: Host, method: str) -> None:
        super().__init__()
        if method not in METHODS:
            raise UsageError(f"host '{host.name}': unknown BMC method '{method}'", host=host.name)
        self.bmc = bmc
        self.host = host
        self.method = method
        self._open = False

    def __repr__(self) -> str:
        return f"FakeDriver({self.host.name!r}, {self.method!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        if self._open:
            raise RuntimeError(f"{self!r} is already open")
        bmc = self.bmc
        with bmc._lock:
            bmc._logins[self.method] += 1
            try:
                self._login_checks()
            except Exception as exc:
                bmc._note(self.method, "login", _name(exc))
                raise
            bmc._sessions[self.method] += 1
            bmc._note(self.method, "login", "ok")
            self.warnings.extend(bmc.warnings)
        self._open = True

    def _login_checks(self) -> None:
        bmc, name = self.bmc, self.host.name
        if self.method not in bmc.methods:
            what = "IPMI over LAN" if self.method == "ipmi" else "the Redfish service"
            raise BmcUnreachable(f"connection refused: {what} does not answer (fake BMC)", host=name)
        failure = bmc._strike(Stage.LOGIN, self.method)
        if failure is not None:
            raise failure.error(name)
        if bmc.password is not None and self._password() != bmc.password:
            raise BmcAuthError("the BMC refused the credentials (fake BMC)", host=name)
        in_use = bmc._sessions[self.method] + (bmc.other_sessions if self.method == "redfish" else 0)
        if bmc.session_limit is not None and in_use >= bmc.session_limit:
            raise BmcAuthError(
                f"no session free: all {bmc.session_limit} are in use (fake BMC)",
                host=name,
                bmc_message="SessionLimitExceeded",
            )

    def _password(self) -> str:
        from oob.drivers.factory import resolve_password

        return resolve_password(self.host)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        with self.bmc._lock:
            self.bmc._sessions[self.method] -= 1
            self.bmc._note(self.method, "logout", "ok")

    # -- reads ----------------------------------------------------------------------------

    def _read(self, operation: str) -> None:
        """Checks a read may go ahead (opened, no scripted failure); the lock is held."""
        if not self._open:
            raise RuntimeError(f"{self!r}: {operation} before open() or after close()")
        failure = self.bmc._strike(Stage.READ, self.method)
        if failure is not None:
            error = failure.error(self.host.name)
            self.bmc._note(self.method, operation, _name(error))
            raise error
        self.bmc._note(self.method, operation, "ok")

    def power_state(self) -> PowerState:
        with self.bmc._lock:
            self._read("power_state")
            return self.bmc.power

    def nmi_support(self) -> NmiSupport:
        with self.bmc._lock:
            self._read("nmi_support")
            return self._support()

    def _support(self) -> NmiSupport:
        bmc = self.bmc
        if self.method == "ipmi":
            return NmiSupport(True, "ipmi")
        if bmc.advertise is Advertise.NONE:
            return NmiSupport(None, "unadvertised")
        return NmiSupport("Nmi" in bmc.reset_types, bmc.advertise.value, tuple(bmc.reset_types))

    def info(self) -> BmcInfo:
        with self.bmc._lock:
            self._read("info")
            bmc = self.bmc
            redfish = self.method == "redfish"
            return BmcInfo(
                host=self.host.name,
                method=self.method,
                vendor=bmc.vendor,
                model=bmc.model if redfish else None,
                firmware=bmc.firmware,
                power=bmc.power,
                nmi=self._support(),
                system_id="1" if redfish else None,
                manager=f"{bmc.vendor} manager",
                redfish_version="1.15.0" if redfish else None,
                warnings=tuple(self.warnings),
            )

    def read_event_log(self, since: datetime | None = None, until: datetime | None = None) -> BmcLog:
        with self.bmc._lock:
            self._read("read_event_log")
            collector = LogCollector(self.host.name, self.method, Window(since, until))
            if self.bmc.event_log is None:
                collector.source("event log", SourceStatus.NOT_OFFERED, detail="the fake BMC offers no log")
                return collector.result()
            for entry in self.bmc.event_log:
                collector.add(entry)
            collector.source("event log", SourceStatus.READ, seen=len(self.bmc.event_log))
            return collector.result()

    # -- actions --------------------------------------------------------------------------

    def send_nmi(self) -> ActionResult:
        return self._act(Stage.NMI, "nmi", None)

    def power(self, action: PowerAction) -> ActionResult:
        return self._act(Stage.POWER, action.value, action)

    def _reset_types_for(self, action: PowerAction) -> tuple[str, ...]:
        """What is sent for ``action``, in order, as the real driver of this method chooses
        (the lock is held)."""
        if self.method == "ipmi":
            return (_IPMI_ACTION[action],)
        bmc = self.bmc
        if bmc.advertise is Advertise.NONE:
            return (RESET_TYPES[action][0],)
        offered = [t for t in RESET_TYPES[action] if t in bmc.reset_types]
        if offered:
            return (offered[0],)
        if action is PowerAction.CYCLE and "ForceOff" in bmc.reset_types and "On" in bmc.reset_types:
            return ("ForceOff", "On")
        return ()

    def _act(self, stage: Stage, action: str, power: PowerAction | None) -> ActionResult:
        """``power`` None: the NMI."""
        bmc, name = self.bmc, self.host.name
        applied: list[Applied] = []
        try:
            with bmc._lock:
                if not self._open:
                    raise RuntimeError(f"{self!r}: {action} before open() or after close()")
                reset_types = ("Nmi",) if power is None else self._reset_types_for(power)
                self._refuse_unoffered(action, reset_types)
                failure = bmc._strike(stage, self.method)
                if failure is not None and not failure.applied:
                    error = failure.error(name)
                    bmc._note(self.method, action, _name(error))
                    raise error
                try:
                    self._refuse_impossible(action, reset_types)
                except OobError:
                    if failure is not None:  # it strikes after applying: nothing was applied
                        bmc._unstrike(failure)
                    raise
                applied = [bmc._apply(self.method, t, name) for t in reset_types]
                if failure is not None:
                    error = failure.error(name)
                    bmc._note(self.method, action, f"applied, then {_name(error)}")
                    raise error
                bmc._note(self.method, action, "applied")
        finally:
            # the host reacts to what reached it, whatever the answer said
            for done in applied:
                bmc._hook(done)
        sent = tuple(_CHASSIS[t] for t in reset_types) if self.method == "ipmi" else reset_types
        return ActionResult(
            host=name,
            action=action,
            method=self.method,
            status=0 if self.method == "ipmi" else 204,
            sent=sent,
        )

    def _refuse_unoffered(self, action: str, reset_types: tuple[str, ...]) -> None:
        """What the real drivers refuse before sending anything (the lock is held)."""
        bmc, name = self.bmc, self.host.name
        if not reset_types:
            offered = ", ".join(bmc.reset_types) or "nothing"
            bmc._note(self.method, action, "unsupported")
            raise ActionUnsupported(
                f"power {action} is not offered by this BMC (it offers {offered})", host=name
            )
        support = self._support()
        if action == "nmi" and support.offered is False:
            bmc._note(self.method, action, "unsupported")
            raise ActionUnsupported(
                f"NMI not supported by this BMC: it offers {', '.join(support.allowed) or 'nothing'},"
                " not Nmi",
                host=name,
            )

    def _refuse_impossible(self, action: str, reset_types: tuple[str, ...]) -> None:
        """What the BMC itself answers with an error, having done nothing (the lock is held)."""
        bmc, name = self.bmc, self.host.name
        if self.method == "ipmi" and action == "nmi" and not bmc.ipmi_nmi:
            bmc._note(self.method, action, "unsupported")
            raise ActionUnsupported(
                "NMI (pulse diagnostic interrupt) is not supported by this BMC over IPMI: it "
                "answered with invalid data field in request (fake BMC)",
                host=name,
                bmc_message="invalid data field in request",
            )
        unaccepted = [t for t in reset_types if t not in bmc.reset_types] if self.method == "redfish" else []
        if unaccepted:
            bmc._note(self.method, action, "refused")
            raise BmcRefused(
                f"the BMC refused ResetType {unaccepted[0]} (fake BMC)",
                host=name,
                bmc_message="ActionParameterNotSupported",
            )
        if reset_types[0] in ("ForceRestart", "PowerCycle") and bmc.power is PowerState.OFF:
            bmc._note(self.method, action, "refused")
            raise BmcRefused(f"the BMC refused power {action}: the host is off (fake BMC)", host=name)


class FakeRedfishDriver(FakeDriver):
    """The Redfish fake; like :class:`~oob.drivers.redfish.driver.RedfishDriver` it can
    read the SessionService (``oob preflight``)."""

    def __init__(self, bmc: FakeBmc, host: Host) -> None:
        super().__init__(bmc, host, "redfish")

    def session_usage(self) -> SessionUsage:
        from oob.drivers.redfish.driver import SessionUsage

        with self.bmc._lock:
            self._read("sessions")
            bmc = self.bmc
            return SessionUsage(
                bmc._sessions["redfish"] + bmc.other_sessions, bmc.session_timeout, True, bmc.kind
            )


def _name(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, OobError) else type(exc).__name__


class FakeFleet:
    """FakeBmcs by host name or BMC address; call it as a driver factory.

    A host is found by its inventory name first, then by its ``bmc.address`` — so two host
    names with one ``bmc.address`` reach one BMC, as they would in a real data centre.  A
    host found under neither is unreachable (BmcUnreachable), as a wrong address would be.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bmcs: dict[str, FakeBmc] = {}

    def add(self, key: str, bmc: FakeBmc | None = None) -> FakeBmc:
        """Put ``bmc`` (a new default FakeBmc if None) under a host name or BMC address."""
        bmc = bmc if bmc is not None else FakeBmc()
        with self._lock:
            self._bmcs[key] = bmc
        return bmc

    def __getitem__(self, key: str) -> FakeBmc:
        with self._lock:
            return self._bmcs[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._bmcs

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._bmcs))

    def bmcs(self) -> list[FakeBmc]:
        """Every distinct FakeBmc (one added under two keys counts once)."""
        with self._lock:
            unique: dict[int, FakeBmc] = {id(b): b for b in self._bmcs.values()}
        return list(unique.values())

    def find(self, host: Host) -> FakeBmc | None:
        with self._lock:
            return self._bmcs.get(host.name) or self._bmcs.get(host.bmc.address)

    def __call__(self, host: Host, method: str) -> BmcDriver:
        bmc = self.find(host)
        if bmc is None:
            raise BmcUnreachable(
                f"no BMC answers at {host.bmc.address or '(no bmc.address)'} (fake fleet)",
                host=host.name,
                retryable=False,
            )
        return bmc.driver(host, method)

    def nmis_applied(self) -> int:
        return sum(b.nmis_applied() for b in self.bmcs())

    def open_sessions(self) -> int:
        return sum(b.open_sessions() for b in self.bmcs())
