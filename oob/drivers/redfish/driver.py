"""Redfish BMC driver: system discovery, capabilities, power, NMI.

URIs are never built or compared literally: oob follows the ``@odata.id`` and
``target`` the BMC gives (iLO echoes or redirects slash forms, OpenBMC mixes them),
each checked by the transport to stay on the BMC's origin.  Every value is checked for
its shape before use: a BMC that answers with a list where an object belongs gets a
``BmcProtocolError`` naming the field, never a TypeError.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oob.drivers.base import BmcDriver
from oob.drivers.redfish.discovery import Discovery, DiscoveryCache
from oob.drivers.redfish.logs import LogReader
from oob.drivers.redfish.transport import (
    STANDARD_SYSTEMS,
    CachedLogin,
    LoginUriGone,
    RedfishTransport,
    requests_log,
)
from oob.drivers.redfish.uris import safe_path
from oob.drivers.redfish.vendors import Vendor, detect_vendor, normalise_reset_values
from oob.drivers.tls import TlsPolicy
from oob.errors import ActionUnsupported, BmcHttpError, BmcProtocolError, BmcUnreachable, UsageError
from oob.model import ActionResult, BmcInfo, Host, NmiSupport, PowerAction, PowerState
from oob.signals.bmclog import BmcLog, LogCollector, SourceStatus, Window

RESET_ACTION = "#ComputerSystem.Reset"

#: ResetType values for each action, in order of preference
RESET_TYPES: dict[PowerAction, tuple[str, ...]] = {
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


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _object(value: Any, what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, else BmcProtocolError naming ``what``."""
    if not isinstance(value, dict):
        raise BmcProtocolError(f"the BMC's {what} is {_kind(value)}, not a JSON object")
    return value


def _optional(container: dict[str, Any], key: str, kind: type, what: str) -> Any:
    """``container[key]`` when absent (None) or of ``kind``, else BmcProtocolError."""
    value = container.get(key)
    if value is not None and not isinstance(value, kind):
        raise BmcProtocolError(f"the BMC's {what} is {_kind(value)}, not {_kind(kind())}")
    return value


def _link(container: dict[str, Any], key: str, what: str) -> Any:
    """The ``@odata.id`` of the link ``container[key]`` (None when absent); the transport
    checks the URI itself when it is followed."""
    link = _optional(container, key, dict, what)
    if link is None:
        return None
    if "@odata.id" not in link:
        raise BmcProtocolError(f"the BMC's {what} is not a link (no @odata.id)")
    return link["@odata.id"]


def _member_uris(collection: Any, what: str) -> list[Any]:
    body = _object(collection, what)
    members = _optional(body, "Members", list, f"{what} Members")
    uris: list[Any] = []
    for index, member in enumerate(members or []):
        member = _object(member, f"{what} Members[{index}]")
        if "@odata.id" not in member:
            raise BmcProtocolError(f"the BMC's {what} Members[{index}] is not a link (no @odata.id)")
        uris.append(member["@odata.id"])
    return uris


def _text(value: Any) -> str | None:
    """A value the BMC meant as text, else None (an object is never shown as a name)."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
        return str(value)[:200]
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
        discovery: DiscoveryCache | None = None,
        refresh: bool = False,
    ) -> None:
        super().__init__()
        if not host.bmc.username:
            raise UsageError(
                f"host '{host.name}': key 'bmc.username' is required for Redfish", host=host.name
            )
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
            basic=host.bmc.auth == "basic",
        )
        self._system_uri: str | None = None
        self._system: dict[str, Any] | None = None
        self._reset: tuple[str, NmiSupport] | None = None
        #: the discovery cache (None: off) and what it held for this BMC (None: discover)
        self._discovery = discovery
        self._refresh = refresh
        self._cache_key = DiscoveryCache.key(self._transport.origin, host.bmc.system)
        self._cached: Discovery | None = None
        #: the ActionInfo read this time: (URI, ResetType values)
        self._action_info: tuple[str, tuple[str, ...]] | None = None

    def __repr__(self) -> str:
        return f"RedfishDriver({self.host.name!r}, {self.host.bmc.redfish_url!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        if not self.tls.verifies:
            self.warnings.append(
                f"TLS certificate of {self.host.bmc.redfish_url} is NOT verified (insecure) for host {self.host.name}"
            )
        if self._discovery is not None and not self._refresh:
            self._cached = self._discovery.load(self._cache_key, self._transport.origin)
        if self._cached is not None:
            try:
                basic = self.host.bmc.auth == "basic"
                self._transport.open(cached_login=CachedLogin(None if basic else self._cached.login_uri))
                self._system_uri = self._cached.system_uri
                return
            except LoginUriGone:
                self._forget_discovery()
        self._transport.open()

    def close(self) -> None:
        try:
            self._remember_discovery()
        finally:
            self._transport.close()
            requests_log.debug(
                "%s: %d requests to %s (discovery %s)",
                self.host.name,
                self._transport.request_count,
                self._transport.origin,
                "from the cache" if self._cached is not None else "read from the BMC",
            )

    @property
    def request_count(self) -> int:
        """Requests sent to the BMC so far (each attempt counted), logout included once closed."""
        return self._transport.request_count

    # -- the discovery cache --------------------------------------------------------------

    def _forget_discovery(self) -> None:
        """What the cache said no longer holds: drop it and discover afresh (reads only)."""
        if self._discovery is not None:
            self._discovery.drop(self._cache_key)
        self._cached = None
        self._system_uri = None
        self._system = None
        self._reset = None

    def _remember_discovery(self) -> None:
        """Keep what this session learnt, once the system was read at the URI it names."""
        if self._discovery is None or self._system is None or self._system_uri is None:
            return
        transport = self._transport
        if transport.auth_method not in ("session", "basic"):
            return
        cached = self._cached
        info_uri, info_values = self._action_info or (None, None)
        if info_uri is None and cached is not None:
            info_uri, info_values = cached.action_info_uri, cached.action_info_values
        entry = Discovery(
            login_uri=transport.login_uri
            if transport.login_uri is not None or cached is None
            else cached.login_uri,
            system_uri=self._system_uri,
            action_info_uri=info_uri,
            action_info_values=info_values,
            vendor=cached.vendor if cached is not None else self._vendor_if_known(),
            certificate=transport.certificate,
            learnt_at=cached.learnt_at if cached is not None else time.time(),
        )
        if entry != cached:
            self._discovery.save(self._cache_key, entry)

    def _vendor_if_known(self) -> str:
        """The vendor by the service root if it was read (no request is made for it)."""
        root = self._transport.root_if_read
        return detect_vendor(root, None).kind if root is not None else Discovery.vendor

    # -- discovery ------------------------------------------------------------------------

    def system_uri(self) -> str:
        if self._system_uri is None:
            self._system_uri = self._find_system()
        return self._system_uri

    def _find_system(self) -> str:
        collection = self._systems_collection()
        uris = [
            safe_path(uri, self._transport.origin, field="Systems Members @odata.id")
            for uri in _member_uris(collection, "Systems collection")
        ]
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

    def _systems_collection(self) -> Any:
        """The Systems collection: at the URI the service root names once it was read; before,
        at the specification's fixed URI, and through the root only where that is not it."""
        root = self._transport.root_if_read
        if root is None:
            try:
                return self._transport.get(STANDARD_SYSTEMS, field="the Systems URI").body
            except BmcHttpError as exc:
                if exc.status not in (404, 405):
                    raise
            root = self._transport.root
        systems_uri = _link(root, "Systems", "service root Systems") or STANDARD_SYSTEMS
        return self._transport.get(systems_uri, field="Systems.@odata.id").body

    def system(self, *, fresh: bool = False) -> dict[str, Any]:
        if self._system is None or fresh:
            try:
                body = self._transport.get(self.system_uri(), field="the system's @odata.id").body
            except BmcHttpError as exc:
                if self._cached is None or exc.status not in (404, 410):
                    raise
                self._forget_discovery()  # the cached URI is gone: find the system again
                return self.system(fresh=True)
            if self._cached is not None and self._cached.certificate != self._transport.certificate:
                # another certificate than the facts were learnt behind: learn them again
                self._forget_discovery()
                return self.system(fresh=True)
            self._system = _object(body, "system resource")
        return self._system

    def _reset_action(self) -> tuple[str, NmiSupport]:
        """The Reset target and the ResetType values the BMC offers, and how we know."""
        if self._reset is not None:
            return self._reset
        actions = _optional(self.system(), "Actions", dict, "system Actions")
        action = _optional(actions or {}, RESET_ACTION, dict, f"system Actions.{RESET_ACTION}")
        if action is None:
            raise ActionUnsupported("this BMC offers no ComputerSystem.Reset action for the system")
        # checked now, before anything is sent: an off-origin target is refused, not followed
        target = safe_path(
            action.get("target"), self._transport.origin, field=f"Actions.{RESET_ACTION}.target"
        )
        inline = _optional(
            action, "ResetType@Redfish.AllowableValues", list, "ResetType@Redfish.AllowableValues"
        )
        info_uri = _optional(
            action, "@Redfish.ActionInfo", str, f"Actions.{RESET_ACTION}.@Redfish.ActionInfo"
        )
        if inline is not None:
            values = normalise_reset_values(inline)
            support = NmiSupport("Nmi" in values, "inline", values)
        elif (
            info_uri is not None
            and self._cached is not None
            and self._cached.action_info_values is not None
            and self._cached.action_info_uri
            == safe_path(info_uri, self._transport.origin, field="ActionInfo")
        ):
            values = self._cached.action_info_values
            support = NmiSupport("Nmi" in values, "actioninfo", values)
        elif info_uri is not None:
            support = self._from_action_info(info_uri)
        else:
            support = NmiSupport(None, "unadvertised")
        self._reset = (target, support)
        return self._reset

    def _from_action_info(self, uri: str) -> NmiSupport:
        try:
            body = self._transport.get(uri, field="@Redfish.ActionInfo").body
        except BmcUnreachable as exc:
            if exc.retryable:
                raise
            self.warnings.append(
                f"could not read ResetActionInfo {uri} ({exc.message}); allowed values unknown"
            )
            return NmiSupport(None, "unadvertised")
        parameters = _optional(
            _object(body, "ResetActionInfo"), "Parameters", list, "ResetActionInfo Parameters"
        )
        for parameter in parameters or []:
            if isinstance(parameter, dict) and parameter.get("Name") == "ResetType":
                allowed = _optional(parameter, "AllowableValues", list, "ResetActionInfo AllowableValues")
                values = normalise_reset_values(allowed or [])
                self._action_info = (safe_path(uri, self._transport.origin, field="ActionInfo"), values)
                return NmiSupport("Nmi" in values, "actioninfo", values)
        return NmiSupport(None, "unadvertised")

    def nmi_support(self) -> NmiSupport:
        return self._reset_action()[1]

    def power_state(self) -> PowerState:
        return PowerState.parse(self.system(fresh=True).get("PowerState"))

    def _manager(self) -> dict[str, Any]:
        links = _optional(self.system(), "Links", dict, "system Links") or {}
        managed_by = _optional(links, "ManagedBy", list, "system Links.ManagedBy") or []
        uri = _odata_id(managed_by[0]) if managed_by else None
        if uri is None:
            managers = _link(self._transport.root, "Managers", "service root Managers")
            if managers is not None:
                try:
                    members = _member_uris(
                        self._transport.get(managers, field="Managers.@odata.id").body, "Managers collection"
                    )
                    uri = members[0] if members else None
                except BmcUnreachable:
                    uri = None
        if uri is None:
            return {}
        try:
            body = self._transport.get(uri, field="the manager's @odata.id").body
        except BmcUnreachable:
            return {}
        return _object(body, "manager resource")

    def session_usage(self) -> SessionUsage | None:
        """Open sessions and their timeout, from the SessionService, with the session already open.

        None when the service has no SessionService (HTTP Basic).  Two GETs, nothing opened.
        """
        root = self._transport.root
        service_uri = _link(root, "SessionService", "service root SessionService")
        if service_uri is None:
            return None
        service = _object(
            self._transport.get(service_uri, field="SessionService.@odata.id").body, "SessionService"
        )
        root_links = _optional(root, "Links", dict, "service root Links") or {}
        sessions_uri = _link(service, "Sessions", "SessionService Sessions") or _link(
            root_links, "Sessions", "service root Links.Sessions"
        )
        count: int | None = None
        if sessions_uri is not None:
            collection = self._transport.get(sessions_uri, field="Sessions.@odata.id").body
            if isinstance(collection, dict):
                count = _int(collection.get("Members@odata.count"))
                if count is None and isinstance(collection.get("Members"), list):
                    count = len(collection["Members"])
        enabled = service.get("ServiceEnabled")
        kind = self.host.bmc.kind if self.host.bmc.kind not in ("auto", "redfish") else self.vendor().kind
        return SessionUsage(
            count, _int(service.get("SessionTimeout")), enabled if isinstance(enabled, bool) else None, kind
        )

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
            warnings.append(
                "the BMC does not say which ResetType values it accepts; Nmi is tried without a check"
            )
        model = (
            " ".join(p for p in (_text(system.get("Manufacturer")), _text(system.get("Model"))) if p) or None
        )
        return BmcInfo(
            host=self.host.name,
            method=self.method,
            vendor=vendor.label,
            model=model,
            firmware=_text(manager.get("FirmwareVersion")),
            power=PowerState.parse(system.get("PowerState")),
            nmi=support,
            system_id=_text(system.get("Id")) or _last_segment(self.system_uri()),
            manager=_text(manager.get("Model")),
            redfish_version=_text(self._transport.root.get("RedfishVersion")),
            warnings=tuple(warnings),
        )

    # -- actions --------------------------------------------------------------------------

    def _post_reset(self, action: str, reset_type: str) -> ActionResult:
        target, _ = self._reset_action()
        reply = self._transport.post_action(
            target, {"ResetType": reset_type}, field=f"Actions.{RESET_ACTION}.target"
        )
        # the action was applied: a task URI oob would not follow is left out, never an error
        task: str | None = None
        location = reply.headers.get("Location") if reply.status == 202 else None
        if location is not None:
            try:
                task = safe_path(location, self._transport.origin, field="the task Location")
            except BmcProtocolError as exc:
                self.warnings.append(f"{exc.message}; task not shown")
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
            where = (
                "ResetActionInfo" if support.source == "actioninfo" else "ResetType@Redfish.AllowableValues"
            )
            raise ActionUnsupported(
                f"NMI not supported by this BMC: its {where} offers {offered}, not Nmi",
                host=self.host.name,
            )
        return self._post_reset("nmi", "Nmi")

    def _choose(self, action: PowerAction, support: NmiSupport) -> str | None:
        candidates = RESET_TYPES[action]
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
        raise ActionUnsupported(
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

    # -- event logs -----------------------------------------------------------------------

    def read_event_log(self, since: datetime | None = None, until: datetime | None = None) -> BmcLog:
        """The entries of the system's and the manager's LogServices in the window.

        A log that cannot be read is reported in the result, never raised; only a failure
        to reach the system itself raises (as every other read does).
        """
        collector = LogCollector(self.host.name, self.method, Window(since, until))
        reader = LogReader(self._transport, collector)
        offered = reader.read_owner(self.system(fresh=True), "System")
        manager = self._manager()
        if manager:
            offered = reader.read_owner(manager, "Manager") or offered
        if not offered:
            collector.source(
                "LogServices",
                SourceStatus.NOT_OFFERED,
                detail="neither the system nor its manager links LogServices",
            )
        return collector.result()
