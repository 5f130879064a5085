"""One mock BMC: a simulated host, reached through Redfish over HTTPS, IPMI over UDP, or both.

Every BMC serves Redfish unless its flavour is IPMI only (``ipmi``).  :meth:`MockBmc.serve_ipmi`
adds an IPMI endpoint on the fleet's :class:`mocks.ipmi_server.IpmiMockServer`, tied to the
*same* :class:`SimulatedHost`: an NMI or a power change through one protocol shows through
the other, and :attr:`MockBmc.nmi_count` counts NMIs from both.

The Redfish-only attributes (``url``, ``port``, ``fingerprint``, ``listener``, ``service``)
raise :class:`NoRedfish`, an AttributeError, on an IPMI-only BMC instead of being Optional:
most callers use Redfish BMCs and should not have to check for None; ``has_redfish`` (or
``hasattr``) tells them apart.

The host behind the BMC has its own address and probe port (:mod:`mocks.liveness`), a
dump target, and a crash kernel (:mod:`mocks.crashkernel`) that writes its dump after an
NMI; its faults (``kdump_not_armed``, ``dump_stall``...) are set with the BMC's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .crashkernel import CrashKernel
from .faults import FAULT_NAMES, HOST_FAULT_NAMES, FaultError, Faults, FaultState, validate_changes
from .flavours import Flavour
from .host import Clock, HostConfig, SimulatedHost, Timers
from .https import ConnectionHub, HttpsListener
from .layouts import host_layout
from .liveness import LivenessServer
from .loopback import url_host
from .resources import model_for
from .service import Credentials, RedfishService, Stats
from .sessions import SessionStore
from .tls import FleetCA

if TYPE_CHECKING:  # importing the IPMI server loads pyghmi: only fleets that serve IPMI pay for it
    from .ipmi_server import CipherMode, IpmiBmc, IpmiMockServer

#: fleet fault name -> the fault of :data:`mocks.ipmi_server.FAULTS` it sets on the IPMI side
#: (spelt out, not imported, for the reason above; a test checks the two agree)
IPMI_FAULTS: dict[str, str] = {
    "ipmi_down": "down",  # every datagram dropped, as by a firewall: clients time out
    "ipmi_drop_after_apply": "drop_after_apply",  # next NMI applied, its answer never sent
    "ipmi_nmi_unsupported": "nmi_unsupported",  # NMI answered 0xCC
    "ipmi_nmi_refused": "nmi_refused",  # NMI answered 0xD5
}


class NoRedfish(AttributeError):
    """A Redfish attribute of a BMC that serves IPMI only."""


@dataclass(frozen=True)
class _Redfish:
    """The Redfish half of a BMC: its service and HTTPS listener."""

    service: RedfishService
    listener: HttpsListener
    #: SHA-256 of the DER certificate, lower-case hex
    fingerprint: str


class MockBmc:
    def __init__(
        self,
        name: str,
        flavour: Flavour,
        bind: str,
        hub: ConnectionHub,
        ca: FleetCA,
        credentials: Credentials,
        clock: Clock,
        scale: float = 1.0,
        *,
        host_config: HostConfig | None = None,
        timers: Timers | None = None,
        liveness: LivenessServer | None = None,
    ) -> None:
        self.name = name
        self.flavour = flavour
        self.credentials = credentials
        self.host = SimulatedHost(
            name, clock=clock, scale=scale, config=host_config or HostConfig(), timers=timers
        )
        self.crash_kernel = CrashKernel(self.host)
        self._liveness = liveness
        #: the port of the host's SSH-like probe listener, once :meth:`start` opened it
        self.probe_port: int | None = None
        #: the Redfish faults (IPMI faults live on :attr:`ipmi`)
        self.faults = FaultState()
        self.sessions = SessionStore(flavour.session_ids, flavour.first_session_id)
        self.stats = Stats()
        self._bind = bind
        self._redfish: _Redfish | None = None
        if flavour.redfish:
            certificate = ca.issue(bind)
            service = RedfishService(
                model_for(flavour.name), self.host, self.faults, self.sessions, credentials, self.stats
            )
            listener = HttpsListener(name, bind, 0, certificate.context, service.handle, hub)
            self._redfish = _Redfish(service, listener, certificate.fingerprint)
        #: the IPMI endpoint, once :meth:`serve_ipmi` made one
        self.ipmi: IpmiBmc | None = None
        # serialises fault changes that open or close the listener
        self._lock = threading.Lock()

    # -- lifecycle

    def start(self) -> None:
        if self._redfish is not None:
            self._redfish.listener.open()
        address = self.host.address
        if self._liveness is not None and address is not None and self.probe_port is None:
            self.probe_port = self._liveness.add(self.host, address)

    def serve_ipmi(self, server: IpmiMockServer, cipher_mode: CipherMode = "strict") -> IpmiBmc:
        """Answer IPMI on ``server`` too, on this BMC's address and a free UDP port."""
        from .ipmi_server import DeviceIdentity

        if self.ipmi is not None:
            raise RuntimeError(f"{self.name} already serves IPMI on port {self.ipmi.port}")
        self.ipmi = server.add_bmc(
            self.host,
            username=self.username,
            password=self.password,
            name=self.name,
            address=self.address,
            port=0,
            cipher_mode=cipher_mode,
            identity=DeviceIdentity(manufacturer_id=self.flavour.ipmi_manufacturer_id),
        )
        return self.ipmi

    def stop(self) -> None:
        """Close the HTTPS listener (the IPMI socket closes with the fleet's IPMI server)."""
        if self._redfish is not None:
            self._redfish.listener.close()

    # -- what tests look at

    @property
    def vendor(self) -> str:
        """The flavour name (``ilo5``, ``idrac9``...)."""
        return self.flavour.name

    @property
    def has_redfish(self) -> bool:
        return self._redfish is not None

    @property
    def protocols(self) -> tuple[str, ...]:
        """``("redfish",)``, ``("redfish", "ipmi")`` or ``("ipmi",)``."""
        return tuple(p for p, on in (("redfish", self.has_redfish), ("ipmi", self.ipmi is not None)) if on)

    @property
    def address(self) -> str:
        """The IP address the BMC listens on (HTTPS and UDP alike)."""
        return self._bind

    @property
    def inventory_address(self) -> str:
        """``bmc.address`` for oob: the Redfish URL, or the bare IP of an IPMI-only BMC."""
        return self.url if self._redfish is not None else self.address

    @property
    def service(self) -> RedfishService:
        return self._need_redfish("service").service

    @property
    def listener(self) -> HttpsListener:
        return self._need_redfish("listener").listener

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the BMC's certificate (lower-case hex)."""
        return self._need_redfish("fingerprint").fingerprint

    @property
    def port(self) -> int:
        """The HTTPS port."""
        return self._need_redfish("port").listener.port

    @property
    def url(self) -> str:
        return f"https://{url_host(self.address)}:{self._need_redfish('url').listener.port}"

    @property
    def ipmi_port(self) -> int | None:
        """The UDP port IPMI answers on; None when this BMC does not serve IPMI."""
        return self.ipmi.port if self.ipmi is not None else None

    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password

    @property
    def nmi_count(self) -> int:
        """NMIs the host received, through either protocol."""
        return self.host.nmi_count

    @property
    def nmi_count_redfish(self) -> int:
        return self.stats.resets_snapshot().get("Nmi", 0)

    @property
    def nmi_count_ipmi(self) -> int:
        return self.ipmi.nmi_count if self.ipmi is not None else 0

    @property
    def power(self) -> str:
        return self.host.power

    @property
    def host_state(self) -> str:
        """``running``, ``hung``, ``panicked``, ``dumping``, ``rebooting`` or ``off``."""
        return self.host.state.value

    @property
    def host_address(self) -> str | None:
        """The host's own address (where its probe listens; what network dumps are named by)."""
        return self.host.address

    @property
    def probe(self) -> str | None:
        """oob's ``probe`` inventory key for this host: ``ssh:ADDRESS:PORT``."""
        if self.host.address is None or self.probe_port is None:
            return None
        return f"ssh:{self.host.address}:{self.probe_port}"

    @property
    def dump_target(self) -> Path | None:
        """The directory the host's kdump writes into (its own, or one shared by many)."""
        return self.host.config.dump_target

    @property
    def dump_family(self) -> str:
        """``dump.layout`` for oob: rhel, suse or debian."""
        return host_layout(self.host.config.layout).family

    @property
    def open_sessions(self) -> int:
        """Open Redfish sessions (IPMI sessions: ``to_dict()["ipmi"]["open_sessions"]``)."""
        return len(self.sessions)

    @property
    def requests(self) -> int:
        """Requests served through either protocol."""
        return self.requests_redfish + self.requests_ipmi

    @property
    def requests_redfish(self) -> int:
        return self.stats.requests

    @property
    def requests_ipmi(self) -> int:
        """IPMI requests inside established sessions (session setup not included)."""
        return self.ipmi.request_count if self.ipmi is not None else 0

    @property
    def resets(self) -> dict[str, int]:
        """Redfish Resets applied, by ResetType."""
        return self.stats.resets_snapshot()

    @property
    def is_listening(self) -> bool:
        """The HTTPS listener is open (always False for an IPMI-only BMC)."""
        return self._redfish is not None and self._redfish.listener.is_open

    @property
    def ipmi_answering(self) -> bool:
        return self.ipmi is not None and "down" not in self.ipmi.faults

    # -- what tests change

    def set_faults(self, changes: Mapping[str, Any] | None = None, /, **more: Any) -> Faults:
        """Merge Redfish and IPMI (``ipmi_*``) faults into the current ones.

        Returns the Redfish faults (:meth:`fault_dict` shows both kinds).  Unknown names,
        wrong types, or switching on a fault of a protocol this BMC does not serve raise
        FaultError, and then nothing changes.
        """
        merged = {**(changes or {}), **more}
        unknown = sorted(set(merged) - set(FAULT_NAMES) - set(IPMI_FAULTS) - set(HOST_FAULT_NAMES))
        if unknown:
            known = ", ".join((*FAULT_NAMES, *IPMI_FAULTS, *HOST_FAULT_NAMES))
            raise FaultError(f"unknown fault(s): {', '.join(unknown)}; known: {known}")
        redfish = validate_changes({k: v for k, v in merged.items() if k in FAULT_NAMES})
        ipmi = self._ipmi_changes({k: v for k, v in merged.items() if k in IPMI_FAULTS})
        host = {k: v for k, v in merged.items() if k in HOST_FAULT_NAMES}
        default = Faults()
        switched_on = [k for k, v in redfish.items() if getattr(default, k) != v]
        if switched_on and self._redfish is None:
            raise FaultError(
                f"{self.name} serves IPMI only: Redfish fault(s) {', '.join(switched_on)} do not apply "
                f"(IPMI faults: {', '.join(IPMI_FAULTS)})"
            )
        with self._lock:
            self.host.set_faults(host)  # validates first: a bad value changes nothing
            faults = self.faults.update(redfish)
            for name, enabled in ipmi.items():
                if self.ipmi is not None:
                    self.ipmi.set_fault(IPMI_FAULTS[name], enabled)
            self._follow_down(faults)
            return faults

    def _ipmi_changes(self, changes: Mapping[str, object]) -> dict[str, bool]:
        for name, value in changes.items():
            if not isinstance(value, bool):
                raise FaultError(f"fault {name} takes true or false, not {value!r}")
            if value and self.ipmi is None:
                raise FaultError(
                    f"fault {name}: {self.name} does not serve IPMI (start the fleet with ipmi=True / --ipmi)"
                )
        return {name: bool(value) for name, value in changes.items()}

    def clear_faults(self) -> Faults:
        """Clear every fault: Redfish, IPMI and the host's."""
        with self._lock:
            self.host.clear_faults()
            faults = self.faults.clear()
            if self.ipmi is not None:
                self.ipmi.clear_faults()
            self._follow_down(faults)
            return faults

    def fault_dict(self) -> dict[str, object]:
        """Every fault and its value: Redfish, ``ipmi_*``, then the host's (same keys on every BMC)."""
        active = self.ipmi.faults if self.ipmi is not None else frozenset()
        ipmi = {name: fault in active for name, fault in IPMI_FAULTS.items()}
        return {**self.faults.current.to_dict(), **ipmi, **self.host.faults.to_dict()}

    def set_power(self, state: str) -> None:
        self.host.set_power(state)

    def _follow_down(self, faults: Faults) -> None:
        if self._redfish is None:
            return
        listener = self._redfish.listener
        if faults.down and listener.is_open:
            listener.close()
        elif not faults.down and not listener.is_open:
            listener.open()  # same port: clients see the BMC come back where it was

    def _need_redfish(self, attribute: str) -> _Redfish:
        if self._redfish is None:
            raise NoRedfish(f"{self.name} ({self.vendor}) serves IPMI only: it has no Redfish {attribute}")
        return self._redfish

    # -- the control API's view

    def to_dict(self) -> dict[str, object]:
        redfish = self._redfish
        return {
            "name": self.name,
            "vendor": self.vendor,
            "kind": self.flavour.kind,
            "description": self.flavour.description,
            "protocols": list(self.protocols),
            "address": self.inventory_address,
            "url": self.url if redfish else None,
            "ip": self.address,
            "port": redfish.listener.port if redfish else None,
            "ipmi_port": self.ipmi_port,
            "listening": self.is_listening,
            "power": self.power,
            "host_state": self.host_state,
            "host_address": self.host_address,
            "probe": self.probe,
            "dump_target": str(self.dump_target) if self.dump_target else None,
            "dump_layout": self.dump_family,
            "dump_dir": str(self.host.dump_directory) if self.host.dump_directory else None,
            "host": self.host.to_dict(),
            "nmi_count": self.nmi_count,
            "nmi_count_redfish": self.nmi_count_redfish,
            "nmi_count_ipmi": self.nmi_count_ipmi,
            "open_sessions": self.open_sessions,
            "requests": self.requests,
            "requests_redfish": self.requests_redfish,
            "requests_ipmi": self.requests_ipmi,
            "resets": self.resets,
            "reset_types": list(redfish.service.advertised_reset_types()) if redfish else [],
            "faults": self.fault_dict(),
            "fingerprint": redfish.fingerprint if redfish else None,
            "ipmi": self._ipmi_dict(),
        }

    def _ipmi_dict(self) -> dict[str, object] | None:
        ipmi = self.ipmi
        if ipmi is None:
            return None
        return {
            "address": ipmi.address,
            "port": ipmi.port,
            "cipher_mode": ipmi.cipher_mode,
            "answering": self.ipmi_answering,
            "open_sessions": len(ipmi.sessions),
            "nmi_count": ipmi.nmi_count,
            "requests": ipmi.request_count,
            # Chassis Control requests by data byte ("0x04" = NMI), answered or not
            "chassis_controls": {f"0x{k:02x}": v for k, v in sorted(dict(ipmi.chassis_controls).items())},
            "cipher_refusals": ipmi.cipher_refusals,
            "auth_failures": ipmi.auth_failures,
            "dropped": ipmi.dropped,
            "faults": sorted(ipmi.faults),
        }
