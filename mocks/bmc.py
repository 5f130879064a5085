"""One mock BMC: a flavour's Redfish service, its simulated host, faults and listener."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from mocks.faults import Faults, FaultState
from mocks.flavours import Flavour
from mocks.host import Clock, SimulatedHost
from mocks.https import ConnectionHub, HttpsListener
from mocks.loopback import url_host
from mocks.resources import model_for
from mocks.service import Credentials, RedfishService, Stats
from mocks.sessions import SessionStore
from mocks.tls import FleetCA


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
    ) -> None:
        self.name = name
        self.flavour = flavour
        self.credentials = credentials
        self.host = SimulatedHost(name, clock=clock, scale=scale)
        self.faults = FaultState()
        self.sessions = SessionStore(flavour.session_ids, flavour.first_session_id)
        self.stats = Stats()
        certificate = ca.issue(bind)
        #: SHA-256 of the DER certificate, lower-case hex
        self.fingerprint = certificate.fingerprint
        self.service = RedfishService(
            model_for(flavour.name), self.host, self.faults, self.sessions, credentials, self.stats
        )
        self.listener = HttpsListener(name, bind, 0, certificate.context, self.service.handle, hub)
        # serialises fault changes that open or close the listener
        self._lock = threading.Lock()

    # -- lifecycle

    def start(self) -> None:
        self.listener.open()

    def stop(self) -> None:
        self.listener.close()

    # -- what tests look at

    @property
    def vendor(self) -> str:
        """The flavour name (``ilo5``, ``idrac9``...)."""
        return self.flavour.name

    @property
    def address(self) -> str:
        """The IP address the BMC listens on."""
        return self.listener.bind

    @property
    def port(self) -> int:
        return self.listener.port

    @property
    def url(self) -> str:
        return f"https://{url_host(self.address)}:{self.port}"

    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password

    @property
    def nmi_count(self) -> int:
        return self.host.nmi_count

    @property
    def power(self) -> str:
        return self.host.power

    @property
    def open_sessions(self) -> int:
        return len(self.sessions)

    @property
    def requests(self) -> int:
        return self.stats.requests

    @property
    def resets(self) -> dict[str, int]:
        return self.stats.resets_snapshot()

    @property
    def is_listening(self) -> bool:
        return self.listener.is_open

    # -- what tests change

    def set_faults(self, changes: Mapping[str, Any] | None = None, /, **more: Any) -> Faults:
        """Merge faults into the current ones (unknown names raise FaultError)."""
        with self._lock:
            faults = self.faults.update({**(changes or {}), **more})
            self._follow_down(faults)
            return faults

    def clear_faults(self) -> Faults:
        with self._lock:
            faults = self.faults.clear()
            self._follow_down(faults)
            return faults

    def set_power(self, state: str) -> None:
        self.host.set_power(state)

    def _follow_down(self, faults: Faults) -> None:
        if faults.down and self.listener.is_open:
            self.listener.close()
        elif not faults.down and not self.listener.is_open:
            self.listener.open()  # same port: clients see the BMC come back where it was

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "vendor": self.vendor,
            "kind": self.flavour.kind,
            "description": self.flavour.description,
            "address": self.url,
            "url": self.url,
            "ip": self.address,
            "port": self.port,
            "listening": self.is_listening,
            "power": self.power,
            "host": self.host.to_dict(),
            "nmi_count": self.nmi_count,
            "open_sessions": self.open_sessions,
            "requests": self.requests,
            "resets": self.resets,
            "reset_types": list(self.service.advertised_reset_types()),
            "faults": self.faults.current.to_dict(),
            "fingerprint": self.fingerprint,
        }
