"""The libvirt "BMC": a virtual machine's hypervisor, reached through libvirt.

``bmc.address`` is a libvirt URI (``qemu:///system``, ``qemu+ssh://root@kvm07/system``,
``xen+ssh://…``, ``test:///…``), ``bmc.domain`` the guest's name or UUID.  The NMI is
``virDomainInjectNMI``; power is ``create``/``destroy``/``shutdown``/``reset``.

Credentials are libvirt's own (SSH keys and ``~/.ssh/config`` for ``+ssh``, the PKI for
``+tls``, SASL's configuration): oob opens the connection with an authentication callback
that never prompts and never passes a secret, and adds ``no_tty=1`` to an ``+ssh`` URI so
that ssh fails instead of asking for a password on the terminal.

Every call runs with a deadline (:mod:`oob.drivers.libvirt.calls`, ``bmc.timeout`` seconds):
libvirt's own calls have none.  Errors are judged by libvirt's error code
(:mod:`oob.drivers.libvirt.codes`).

A **paused** guest (``virsh suspend``, or paused by QEMU on an I/O error or a watchdog)
reads as power On — it exists and holds its memory — but oob will not inject an NMI into
it: QEMU would hold the interrupt until someone resumes the guest, and the crash would
then come at a moment nobody chose.  oob says so and refuses (exit 7); ``oob dump`` works
on a paused guest.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from oob.drivers.base import BmcDriver
from oob.drivers.libvirt.binding import libvirt_module
from oob.drivers.libvirt.calls import CallTimedOut, call_with_deadline
from oob.drivers.libvirt.codes import (
    AUTH,
    REFUSED_BEFORE_ACTING,
    UNSUPPORTED,
    code_name,
    codes,
    error_code,
    error_words,
    said,
)
from oob.errors import (
    ActionUnsupported,
    BmcAuthError,
    BmcRefused,
    BmcUnreachable,
    NotDelivered,
    OobError,
    OutcomeUnknown,
    SafetyRefusal,
    UsageError,
)
from oob.model import ActionResult, BmcInfo, Host, NmiSupport, PowerAction, PowerState

_T = TypeVar("_T")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
#: libvirt drivers that implement virDomainInjectNMI (libvirt's API support table,
#: libvirt.org/hvsupport.html: qemu since 0.9.2, test since 5.6.0; libxl never has)
NMI_DRIVERS = ("QEMU", "TEST")
#: what to do instead where libvirt has no inject-NMI: Xen's own tool, on the Xen host
_NMI_ELSEWHERE = {
    "Xen": "libvirt's Xen (libxl) driver has no inject-NMI; on the Xen host run: xl trigger DOMAIN nmi"
}
#: what each virDomainState means as a power state (numbers from libvirt.h, stable ABI)
_STATES: dict[int, tuple[str, PowerState]] = {
    0: ("nostate", PowerState.UNKNOWN),
    1: ("running", PowerState.ON),
    2: ("blocked", PowerState.ON),  # running, waiting on I/O: still on
    3: ("paused", PowerState.ON),
    4: ("shutting down", PowerState.POWERING_OFF),
    5: ("shut off", PowerState.OFF),
    6: ("crashed", PowerState.OFF),  # stopped by the hypervisor: no CPU left to interrupt
    7: ("suspended by guest power management", PowerState.OFF),
}
STATE_PAUSED = 3
STATE_SHUTOFF = 5


def with_no_tty(uri: str) -> str:
    """``+ssh`` URIs get ``no_tty=1``: ssh then never asks for a password on the terminal."""
    parts = urlsplit(uri)
    if not parts.scheme.endswith("+ssh") or "no_tty=" in parts.query:
        return uri
    return uri + ("&" if parts.query else "?") + "no_tty=1"


class LibvirtDriver(BmcDriver):
    method = "libvirt"

    def __init__(
        self,
        host: Host,
        *,
        connect_attempts: int = 1,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        if host.bmc.kind != "libvirt" or not host.bmc.domain:
            raise UsageError(
                f"host '{host.name}': libvirt reaches only hosts with bmc.kind = 'libvirt' and bmc.domain",
                host=host.name,
            )
        self.host = host
        self.uri = host.bmc.address.strip()
        self.domain_ref = host.bmc.domain or ""
        self.timeout = host.bmc.timeout
        # connecting again to a daemon that refused or is absent finds it the same a
        # moment later: one attempt (the parameters stay for the factory's signature)
        del connect_attempts, on_retry
        self._libvirt: ModuleType = libvirt_module()
        self._conn: Any = None
        self._dom: Any = None

    def __repr__(self) -> str:
        return f"LibvirtDriver({self.host.name!r}, {self.uri!r}, {self.domain_ref!r})"

    # -- plumbing -------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"guest '{said(self.domain_ref)}' on {said(self.uri)}"

    @property
    def domain(self) -> Any:
        if self._dom is None:
            raise BmcUnreachable("the libvirt connection is not open", host=self.host.name, retryable=False)
        return self._dom

    @property
    def connection(self) -> Any:
        if self._conn is None:
            raise BmcUnreachable("the libvirt connection is not open", host=self.host.name, retryable=False)
        return self._conn

    def _error(self, exc: Exception) -> tuple[int | None, str]:
        code = error_code(exc)
        return code, error_words(exc)

    def read(self, what: str, call: Callable[[], _T]) -> _T:
        """A read: any failure certainly changed nothing (BmcUnreachable, exit 3)."""
        try:
            return call_with_deadline(call, self.timeout, what)
        except CallTimedOut:
            raise BmcUnreachable(
                f"libvirt did not answer {what} within {self.timeout:g} s ({said(self.uri)})",
                host=self.host.name,
                retryable=False,
            ) from None
        except self._libvirt.libvirtError as exc:
            code, words = self._error(exc)
            if code in codes(self._libvirt, AUTH):
                raise BmcAuthError(
                    f"libvirt refused the login for {what}: {words}", host=self.host.name
                ) from None
            raise BmcUnreachable(
                f"libvirt could not {what}: {words}", host=self.host.name, retryable=False
            ) from None

    def act(self, what: str, call: Callable[[], _T], *, subject: str) -> _T:
        """An action, issued once: refused by code → NotDelivered; anything else after it
        was issued → OutcomeUnknown.  Never retried."""
        try:
            return call_with_deadline(call, self.timeout, what)
        except CallTimedOut:
            raise OutcomeUnknown(
                f"libvirt did not answer {what} within {self.timeout:g} s: {subject} may have been "
                "applied, so it is not sent again",
                host=self.host.name,
            ) from None
        except self._libvirt.libvirtError as exc:
            code, words = self._error(exc)
            name = code_name(self._libvirt, code) if code is not None else "no error code"
            if code in codes(self._libvirt, UNSUPPORTED):
                raise ActionUnsupported(
                    f"{subject} is not supported for this guest: libvirt answered {what} with {name}",
                    host=self.host.name,
                    bmc_message=words,
                ) from None
            if code in codes(self._libvirt, REFUSED_BEFORE_ACTING):
                raise BmcRefused(
                    f"libvirt refused {what} ({name})", host=self.host.name, bmc_message=words
                ) from None
            raise OutcomeUnknown(
                f"{what} failed after it was issued ({name}): {subject} may have been applied, "
                "so it is not sent again",
                host=self.host.name,
                bmc_message=words,
            ) from None

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        libvirt = self._libvirt

        def no_prompt(_credentials: Any, _data: Any) -> int:
            return -1  # oob never asks for, nor passes, a libvirt credential

        auth = [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], no_prompt, None]
        uri = with_no_tty(self.uri)
        try:
            self._conn = call_with_deadline(lambda: libvirt.openAuth(uri, auth, 0), self.timeout, "connect")
        except CallTimedOut:
            raise BmcUnreachable(
                f"cannot connect to libvirt at {said(self.uri)}: no answer within {self.timeout:g} s",
                host=self.host.name,
                retryable=False,
            ) from None
        except libvirt.libvirtError as exc:
            code, words = self._error(exc)
            if code in codes(libvirt, AUTH):
                raise BmcAuthError(
                    f"libvirt at {said(self.uri)} refused the login: {words}", host=self.host.name
                ) from None
            raise BmcUnreachable(
                f"cannot connect to libvirt at {said(self.uri)}: {words} (is the libvirt daemon running there?)",
                host=self.host.name,
                retryable=False,
            ) from None
        try:
            self._dom = self._lookup()
        except OobError:
            self.close()
            raise

    def _lookup(self) -> Any:
        libvirt, conn, ref = self._libvirt, self._conn, self.domain_ref
        by_uuid = bool(_UUID.match(ref))
        what = "find the guest"
        try:
            return call_with_deadline(
                (lambda: conn.lookupByUUIDString(ref)) if by_uuid else (lambda: conn.lookupByName(ref)),
                self.timeout,
                what,
            )
        except CallTimedOut:
            raise BmcUnreachable(
                f"libvirt at {said(self.uri)} did not answer within {self.timeout:g} s",
                host=self.host.name,
                retryable=False,
            ) from None
        except libvirt.libvirtError as exc:
            code, words = self._error(exc)
            if code == libvirt.VIR_ERR_NO_DOMAIN:
                kind = "UUID" if by_uuid else "name"
                raise BmcUnreachable(
                    f"no guest with {kind} '{said(ref)}' on {said(self.uri)} (check bmc.domain: virsh list --all)",
                    host=self.host.name,
                    retryable=False,
                ) from None
            raise BmcUnreachable(
                f"libvirt could not {what}: {words}", host=self.host.name, retryable=False
            ) from None

    def close(self) -> None:
        conn, self._conn, self._dom = self._conn, None, None
        if conn is None:
            return
        try:
            call_with_deadline(conn.close, min(self.timeout, 5.0), "close")
        except Exception:  # noqa: BLE001 - closing never raises (BmcDriver.close)
            pass

    # -- reading --------------------------------------------------------------------------

    def state(self) -> tuple[int, int]:
        """libvirt's (state, reason) of the guest."""
        state, reason = self.read("read the guest's state", lambda: self.domain.state())
        return int(state), int(reason)

    def power_state(self) -> PowerState:
        state, _reason = self.state()
        word, power = _STATES.get(state, ("unknown", PowerState.UNKNOWN))
        note = f"the guest is {word} (libvirt state {state})"
        if state == STATE_PAUSED and note not in self.warnings:
            self.warnings.append(f"{note}: oob will not inject an NMI until it is resumed (virsh resume)")
        elif power is PowerState.OFF and state != STATE_SHUTOFF and note not in self.warnings:
            self.warnings.append(note)
        return power

    def driver_type(self) -> str:
        return said(self.read("read the driver's name", lambda: self.connection.getType()))

    def nmi_offer(self) -> NmiSupport:
        kind = self.driver_type()
        if kind in NMI_DRIVERS:
            return NmiSupport(True, f"libvirt {kind} driver", ("InjectNMI",))
        return NmiSupport(False, _NMI_ELSEWHERE.get(kind, f"libvirt's {kind} driver has no inject-NMI"))

    def nmi_support(self) -> NmiSupport:
        """Offered, or ActionUnsupported saying what to do instead (a bare "not offered"
        would not tell the engineer about ``xl trigger``); a paused guest is refused here,
        while oob plans, so that no ``nmi.sending`` record (which the repeat guard counts)
        is written for an NMI that is never sent."""
        offer = self.nmi_offer()
        if offer.offered is False:
            raise ActionUnsupported(f"NMI not offered through libvirt: {offer.source}", host=self.host.name)
        self._refuse_if_paused()
        return offer

    def _refuse_if_paused(self) -> None:
        if self.state()[0] == STATE_PAUSED:
            raise SafetyRefusal(
                "the guest is paused: QEMU would hold the NMI until it is resumed and the crash would "
                "come then; resume it (virsh resume) or dump it from outside (oob dump); nothing was sent",
                host=self.host.name,
            )

    def is_active(self) -> bool:
        return bool(self.read("read whether the guest runs", lambda: self.domain.isActive()))

    def memory_bytes(self) -> int:
        """The guest's memory (its maximum): what a memory-only dump holds at most."""
        info = self.read("read the guest's memory size", lambda: self.domain.info())
        return int(info[1]) * 1024

    @property
    def hypervisor_host(self) -> str | None:
        """The machine the URI names (``user@host``), None for a local URI: where files
        the hypervisor writes end up."""
        parts = urlsplit(self.uri)
        if not parts.hostname:
            return None
        return f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname

    def dump_memory(self, path: str, **options: Any) -> Any:
        """The guest's memory to ``path`` on the hypervisor's machine
        (:func:`oob.drivers.libvirt.memdump.dump_memory`, its options)."""
        from oob.drivers.libvirt.memdump import dump_memory

        return dump_memory(self, path, **options)

    def info(self) -> BmcInfo:
        warnings = list(self.warnings)
        conn, dom = self.connection, self.domain
        kind = self.driver_type()
        firmware = manager = model = None
        try:
            version = int(self.read("read the hypervisor's version", conn.getVersion))
            library = int(self.read("read libvirt's version", conn.getLibVersion))
            firmware = _version(version)
            name = said(self.read("read the guest's name", dom.name))
            uuid = said(self.read("read the guest's UUID", dom.UUIDString))
            os_type = said(self.read("read the guest's OS type", dom.OSType))
            _state, max_kib, _mem, vcpus, _cpu = self.read("read the guest's info", dom.info)
            model = f"{os_type} guest, {vcpus} vCPU, {int(max_kib) // 1024} MiB"
            manager = f"libvirt {_version(library)} at {said(self.uri)}, guest '{name}' ({uuid})"
        except BmcUnreachable as exc:
            warnings.append(f"could not read everything about the guest: {exc.message}")
            uuid = None
        return BmcInfo(
            host=self.host.name,
            method=self.method,
            vendor=f"libvirt {kind}",
            model=model,
            firmware=firmware,
            power=self.power_state(),
            nmi=self.nmi_offer(),
            system_id=uuid,
            manager=manager,
            warnings=tuple(warnings + [w for w in self.warnings if w not in warnings]),
        )

    # -- actions --------------------------------------------------------------------------

    def send_nmi(self) -> ActionResult:
        self._refuse_if_paused()  # again: it may have been paused since oob planned
        dom = self.domain
        self.act("virDomainInjectNMI", lambda: dom.injectNMI(0), subject="the NMI")
        return self._done("nmi", "InjectNMI", answer="virDomainInjectNMI returned")

    def power(self, action: PowerAction) -> ActionResult:
        dom = self.domain
        subject = f"power {action.value}"
        # said before anything is issued, the same way whatever libvirt driver answers
        active = self.is_active()
        if action is PowerAction.ON and active:
            raise BmcRefused("the guest is already running: nothing to power on", host=self.host.name)
        if action is not PowerAction.ON and not active:
            raise BmcRefused(f"the guest is not running: nothing to {action.value}", host=self.host.name)
        if action is PowerAction.ON:
            self.act("virDomainCreate", dom.create, subject=subject)
            return self._done(action.value, "Create")
        if action is PowerAction.OFF:
            self.act("virDomainDestroy", dom.destroy, subject=subject)
            return self._done(action.value, "Destroy")
        if action is PowerAction.SHUTDOWN:
            self.act("virDomainShutdown", dom.shutdown, subject=subject)
            return self._done(action.value, "Shutdown")
        if action is PowerAction.RESET:
            self.act("virDomainReset", lambda: dom.reset(0), subject=subject)
            return self._done(action.value, "Reset")
        return self._cycle()

    def _cycle(self) -> ActionResult:
        """Destroy, wait (bounded) for the guest to be off, create."""
        dom = self.domain
        self.act("virDomainDestroy", dom.destroy, subject="power cycle")
        deadline = time.monotonic() + self.timeout
        try:
            while self.state()[0] != STATE_SHUTOFF:
                if time.monotonic() >= deadline:
                    raise OutcomeUnknown(
                        f"the guest was destroyed but is not shut off after {self.timeout:g} s; "
                        "not starting it (see virsh domstate)",
                        host=self.host.name,
                    )
                time.sleep(0.2)
            self.act("virDomainCreate", dom.create, subject="power on after the power off")
        except NotDelivered as exc:
            # the off half happened: this is no longer "nothing was done"
            raise OutcomeUnknown(
                f"the guest was powered off but starting it again failed: {exc.message}; "
                "it is probably off now (oob power on HOST)",
                host=self.host.name,
                bmc_message=exc.bmc_message,
            ) from None
        return self._done("cycle", "Destroy", "Create")

    def _done(self, action: str, *sent: str, answer: str | None = None) -> ActionResult:
        return ActionResult(
            host=self.host.name,
            action=action,
            method=self.method,
            sent=sent,
            answer=answer or f"virDomain{'+'.join(sent)} returned",
        )


def _version(number: int) -> str:
    """libvirt's packed version (major * 1,000,000 + minor * 1,000 + release) as text."""
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
