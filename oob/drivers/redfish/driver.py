"""Redfish BMC driver: system discovery, capabilities, power, NMI.

URIs are never built or compared literally: oob follows the ``@odata.id`` and
``target`` the BMC gives (iLO echoes or redirects slash forms, OpenBMC mixes them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oob.drivers.base import BmcDriver
from oob.drivers.redfish.transport import RedfishTransport
from oob.drivers.redfish.vendors import Vendor, detect_vendor, normalise_reset_values
from oob.drivers.tls import TlsPolicy
from oob.errors import BmcUnreachable, NmiUnsupported, UsageError
from oob.model import ActionResult, BmcInfo, Host, NmiSupport, PowerAction, PowerState

RESET_ACTION = "#ComputerSystem.Reset"

#: ResetType values for each action, in order of preference
_RESET_TYPES: dict[PowerAction, tuple[str, ...]] = {
    PowerAction.ON: ("On", "ForceOn"),
    PowerAction.OFF: ("ForceOff",),
    PowerAction.SHUTDOWN: ("GracefulShutdown",),
    PowerAction.RESET: ("ForceRestart",),
    PowerAction.CYCLE: ("PowerCycle",),
}


@dataclass(frozen=True)
class SessionUsage:
    """What the BMC's SessionService says, read with oob's own session (counted in ``open``)."""

    #: ``Members@odata.count`` of the Sessions collection (None: not told)
    open: int | None
    #: ``SessionTimeout`` in seconds
    timeout: int | None
    #: ``ServiceEnabled``
    enabled: bool | None
    #: the vendor's ``bmc.kind`` (for its known session limit)
    vendor: str

    def to_dict(self) -> dict[str, Any]:
        return {"open": self.open, "timeout": self.timeout, "enabled": self.enabled, "vendor": self.vendor}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _odata_id(link: Any) -> str | None:
    if isinstance(link, dict) and isinstance(link.get("@odata.id"), str):
        return str(link["@odata.id"])
    return None


def _last_segment(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


class RedfishDriver(BmcDriver):
    method = "redfish"

    def __init__(
        self,
        host: Host,
        password: str,
        tls: TlsPolicy,
        *,
        connect_attempts: int = 3,
        on_retry: Callable[[str], None] | None = None,
        cycle_wait_s: float = 60.0,
    ) -> None:
        super().__init__()
        if not host.bmc.username:
            raise UsageError(f"host '{host.name}': key 'bmc.username' is required for Redfish", host=host.name)
        self.host = host
        self.tls = tls
        self._cycle_wait_s = cycle_wait_s
        self._transport = RedfishTransport(
            host.bmc.redfish_url,
            host.bmc.username,
            password,
            tls,
            timeout=host.bmc.timeout,
            connect_attempts=connect_attempts,
            on_retry=on_retry,
        )
        self._system_uri: str | None = None
        self._system: dict[str, Any] | None = None
        self._reset: tuple[str, NmiSupport] | None = None

    def __repr__(self) -> str:
        return f"RedfishDriver({self.host.name!r}, {self.host.bmc.redfish_url!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        if not self.tls.verifies:
            self.warnings.append(
                f"TLS certificate of {self.host.bmc.redfish_url} is NOT verified (insecure) for host {self.host.name}"
            )
        self._transport.open()

    def close(self) -> None:
        self._transport.close()

    # -- discovery ------------------------------------------------------------------------

    def system_uri(self) -> str:
        if self._system_uri is None:
            self._system_uri = self._find_system()
        return self._system_uri

    def _find_system(self) -> str:
        root = self._transport.root
        systems_uri = _odata_id(root.get("Systems")) or "/redfish/v1/Systems"
        members = self._transport.get(systems_uri).body.get("Members") or []
        uris = [uri for uri in (_odata_id(m) for m in members) if uri]
        wanted = self.host.bmc.system
        if wanted:
            for uri in uris:
                if _last_segment(uri) == wanted.strip("/"):
                    return uri
            ids = ", ".join(_last_segment(u) for u in uris) or "none"
            raise UsageError(
                f"host '{self.host.name}': key 'bmc.system': the BMC has no system '{wanted}' (it has: {ids})",
                host=self.host.name,
            )
        if not uris:
            raise BmcUnreachable("the BMC lists no systems in its Systems collection", retryable=False)
        if len(uris) > 1:
            ids = ", ".join(_last_segment(u) for u in uris)
            raise UsageError(
                f"host '{self.host.name}': the BMC manages {len(uris)} systems ({ids}); "
                "set bmc.system in the inventory",
                host=self.host.name,
            )
        return uris[0]

    def system(self, *, fresh: bool = False) -> dict[str, Any]:
        if self._system is None or fresh:
            body = self._transport.get(self.system_uri()).body
            self._system = body if isinstance(body, dict) else {}
        return self._system

    def _reset_action(self) -> tuple[str, NmiSupport]:
        """The Reset target and the ResetType values the BMC offers, and how we know."""
        if self._reset is not None:
            return self._reset
        action = (self.system().get("Actions") or {}).get(RESET_ACTION)
        if not isinstance(action, dict) or not isinstance(action.get("target"), str):
            raise NmiUnsupported("this BMC offers no ComputerSystem.Reset action for the system")
        target = str(action["target"])
        inline = action.get("ResetType@Redfish.AllowableValues")
        if isinstance(inline, list):
            values = normalise_reset_values(inline)
            support = NmiSupport("Nmi" in values, "inline", values)
        elif isinstance(action.get("@Redfish.ActionInfo"), str):
            support = self._from_action_info(str(action["@Redfish.ActionInfo"]))
        else:
            support = NmiSupport(None, "unadvertised")
        self._reset = (target, support)
        return self._reset

    def _from_action_info(self, uri: str) -> NmiSupport:
        try:
            body = self._transport.get(uri).body
        except BmcUnreachable as exc:
            if exc.retryable:
                raise
            self.warnings.append(f"could not read ResetActionInfo {uri} ({exc.message}); allowed values unknown")
            return NmiSupport(None, "unadvertised")
        for parameter in (body or {}).get("Parameters") or []:
            if isinstance(parameter, dict) and parameter.get("Name") == "ResetType":
                values = normalise_reset_values(parameter.get("AllowableValues") or [])
                return NmiSupport("Nmi" in values, "actioninfo", values)
        return NmiSupport(None, "unadvertised")

    def nmi_support(self) -> NmiSupport:
        return self._reset_action()[1]

    def power_state(self) -> PowerState:
        return PowerState.parse(self.system(fresh=True).get("PowerState"))

    def _manager(self) -> dict[str, Any]:
        links = (self.system().get("Links") or {}).get("ManagedBy") or []
        uri = _odata_id(links[0]) if links else None
        if uri is None:
            managers = _odata_id(self._transport.root.get("Managers"))
            if managers:
                try:
                    members = self._transport.get(managers).body.get("Members") or []
                    uri = _odata_id(members[0]) if members else None
                except BmcUnreachable:
                    uri = None
        if uri is None:
            return {}
        try:
            body = self._transport.get(uri).body
        except BmcUnreachable:
            return {}
        return body if isinstance(body, dict) else {}

    def session_usage(self) -> SessionUsage | None:
        """Open sessions and their timeout, from the SessionService, with the session already open.

        None when the service has no SessionService (HTTP Basic).  Two GETs, nothing opened.
        """
        root = self._transport.root
        service_uri = _odata_id(root.get("SessionService"))
        if service_uri is None:
            return None
        service = self._transport.get(service_uri).body
        service = service if isinstance(service, dict) else {}
        sessions_uri = _odata_id(service.get("Sessions")) or _odata_id((root.get("Links") or {}).get("Sessions"))
        count: int | None = None
        if sessions_uri:
            collection = self._transport.get(sessions_uri).body
            if isinstance(collection, dict):
                count = _int(collection.get("Members@odata.count"))
                if count is None and isinstance(collection.get("Members"), list):
                    count = len(collection["Members"])
        enabled = service.get("ServiceEnabled")
        kind = self.host.bmc.kind if self.host.bmc.kind not in ("auto", "redfish") else self.vendor().kind
        return SessionUsage(count, _int(service.get("SessionTimeout")),
                            enabled if isinstance(enabled, bool) else None, kind)

    def vendor(self, manager: dict[str, Any] | None = None) -> Vendor:
        return detect_vendor(self._transport.root, manager)

    def info(self) -> BmcInfo:
        system = self.system(fresh=True)
        manager = self._manager()
        vendor = self.vendor(manager)
        support = self.nmi_support()
        warnings = list(self.warnings)
        kind = self.host.bmc.kind
        if kind not in ("auto", "redfish", "ipmi") and kind != vendor.kind and vendor.kind != "redfish":
            warnings.append(f"inventory says bmc.kind = '{kind}' but the BMC looks like {vendor.label}")
        if support.offered is None:
            warnings.append("the BMC does not say which ResetType values it accepts; Nmi is tried without a check")
        model = " ".join(str(p) for p in (system.get("Manufacturer"), system.get("Model")) if p) or None
        return BmcInfo(
            host=self.host.name,
            method=self.method,
            vendor=vendor.label,
            model=model,
            firmware=str(manager.get("FirmwareVersion")) if manager.get("FirmwareVersion") else None,
            power=PowerState.parse(system.get("PowerState")),
            nmi=support,
            system_id=str(system.get("Id")) if system.get("Id") else _last_segment(self.system_uri()),
            manager=str(manager.get("Model")) if manager.get("Model") else None,
            redfish_version=str(self._transport.root.get("RedfishVersion") or "") or None,
            warnings=tuple(warnings),
        )

    # -- actions --------------------------------------------------------------------------

    def _post_reset(self, action: str, reset_type: str) -> ActionResult:
        target, _ = self._reset_action()
        reply = self._transport.post_action(target, {"ResetType": reset_type})
        task = reply.headers.get("Location") if reply.status == 202 else None
        return ActionResult(
            host=self.host.name,
            action=action,
            method=self.method,
            status=reply.status,
            bmc_message=reply.bmc_message,
            task=task,
            sent=(reset_type,),
        )

    def send_nmi(self) -> ActionResult:
        support = self.nmi_support()
        if support.offered is False:
            offered = ", ".join(support.allowed) or "nothing"
            where = "ResetActionInfo" if support.source == "actioninfo" else "ResetType@Redfish.AllowableValues"
            raise NmiUnsupported(
                f"NMI not supported by this BMC: its {where} offers {offered}, not Nmi",
                host=self.host.name,
            )
        return self._post_reset("nmi", "Nmi")

    def _choose(self, action: PowerAction, support: NmiSupport) -> str | None:
        candidates = _RESET_TYPES[action]
        if support.offered is None:
            return candidates[0]
        for candidate in candidates:
            if candidate in support.allowed:
                return candidate
        return None

    def power(self, action: PowerAction) -> ActionResult:
        _, support = self._reset_action()
        reset_type = self._choose(action, support)
        if reset_type is not None:
            return self._post_reset(action.value, reset_type)
        if action is PowerAction.CYCLE:
            off, on = self._choose(PowerAction.OFF, support), self._choose(PowerAction.ON, support)
            if off and on:
                return self._cycle_by_off_on(off, on)
        offered = ", ".join(support.allowed) or "nothing"
        raise NmiUnsupported(
            f"power {action.value} is not offered by this BMC (it offers {offered})", host=self.host.name
        )

    def _cycle_by_off_on(self, off: str, on: str) -> ActionResult:
        self._post_reset("cycle", off)
        deadline = time.monotonic() + self._cycle_wait_s
        while self.power_state() is not PowerState.OFF:
            if time.monotonic() > deadline:
                raise BmcUnreachable(
                    f"the host did not power off within {self._cycle_wait_s:.0f} s; not powering it on",
                    retryable=False,
                )
            time.sleep(1.0)
        result = self._post_reset("cycle", on)
        return ActionResult(
            host=result.host,
            action="cycle",
            method=self.method,
            status=result.status,
            bmc_message=result.bmc_message,
            task=result.task,
            sent=(off, on),
        )
