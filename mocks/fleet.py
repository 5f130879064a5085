"""A fleet of mock BMCs on loopback (Redfish over HTTPS, IPMI over UDP), for tests and ``oob mock serve``.

::

    from mocks.fleet import Fleet

    with Fleet.start(vendors=["ilo5", "idrac9"], count=2, workdir=tmp_path, control="127.0.0.1:0") as fleet:
        bmc = fleet.bmc("ilo5-1")          # https://127.0.0.1:PORT, trusted through fleet.ca_file
        fleet.set_faults("ilo5-1", latency_ms=200)
        ...
    # every listener, connection and thread is closed here

    with Fleet.start(vendors=["ami", "ipmi"], ipmi=True) as fleet:
        fleet.bmc("ami-1").ipmi_port       # the same host also answers IPMI 2.0 (lanplus) on UDP
        fleet.set_faults("ami-1", ipmi_drop_after_apply=True)

BMC names are ``<flavour>-<n>``, n counting from 1 per flavour.  The ``ipmi`` flavour is
IPMI only and answers IPMI whatever ``ipmi`` says; one IPMI server thread serves every
IPMI endpoint of the fleet.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from mocks.bmc import MockBmc
from mocks.control import ControlServer
from mocks.faults import Faults
from mocks.flavours import MAIN_FLAVOURS, get_flavour
from mocks.host import Clock, RealClock
from mocks.https import ConnectionHub
from mocks.inventory_writer import InventoryHost, TlsMode, render_inventory, write_atomically
from mocks.loopback import loopback_address, loopback_endpoint
from mocks.service import Credentials
from mocks.tls import FleetCA

if TYPE_CHECKING:  # the IPMI server loads pyghmi: imported only when a fleet serves IPMI
    from mocks.ipmi_server import CipherMode, IpmiMockServer

PASSWORD_FILE = "bmc-password"
CA_FILE = "ca.pem"


class Fleet:
    def __init__(
        self,
        *,
        bind: str,
        workdir: Path,
        owns_workdir: bool,
        credentials: Credentials,
        clock: Clock,
        scale: float,
    ) -> None:
        self.bind = bind
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self.credentials = credentials
        self.clock = clock
        self.scale = scale
        self.ca = FleetCA(workdir / CA_FILE)
        self.password_file = workdir / PASSWORD_FILE
        write_atomically(self.password_file, credentials.password)
        self.bmcs: list[MockBmc] = []
        self._by_name: dict[str, MockBmc] = {}
        self._hub = ConnectionHub()
        self._control: ControlServer | None = None
        self._ipmi: IpmiMockServer | None = None
        #: the cipher mode of every IPMI endpoint; None when no BMC answers IPMI
        self.ipmi_cipher_mode: CipherMode | None = None
        self._stopped = False

    @classmethod
    def start(
        cls,
        vendors: Iterable[str] = MAIN_FLAVOURS,
        count: int = 1,
        bind: str = "127.0.0.1",
        workdir: str | os.PathLike[str] | None = None,
        control: str | None = None,
        *,
        username: str = "admin",
        password: str | None = None,
        clock: Clock | None = None,
        scale: float = 1.0,
        ipmi: bool = False,
        ipmi_cipher_mode: CipherMode = "strict",
    ) -> Fleet:
        """Start ``count`` BMCs of every flavour in ``vendors``, all listening when this returns.

        ``control`` (``HOST:PORT``, port 0 for any) also starts the control API.  Without
        ``workdir`` a temporary directory holds the CA and password file and is removed by
        :meth:`stop`.  ``password`` defaults to a random one (see :attr:`password_file`).
        ``ipmi`` makes every BMC also answer IPMI 2.0 on UDP (same address, its own port,
        same host and credentials); ``ipmi_cipher_mode`` is ``"strict"`` (suite 3 only,
        other proposals refused so clients fall back) or ``"always3"`` (suite 3 whatever
        was proposed, as stock pyghmi and VirtualBMC answer).
        Raises ValueError for an unknown flavour or cipher mode, a count below 1 or a
        non-loopback address.
        """
        flavours = [get_flavour(name) for name in _unique(vendors)]
        if not flavours:
            raise ValueError("no vendor flavour given")
        if count < 1:
            raise ValueError("count must be at least 1")
        address = loopback_address(bind)
        control_endpoint = loopback_endpoint(control) if control is not None else None
        serves_ipmi = ipmi or any(flavour.ipmi_only for flavour in flavours)
        if serves_ipmi:
            from mocks.ipmi_server import CIPHER_MODES

            if ipmi_cipher_mode not in CIPHER_MODES:
                raise ValueError(f"ipmi_cipher_mode must be one of {', '.join(CIPHER_MODES)}")
        if workdir is None:
            directory, owns = Path(tempfile.mkdtemp(prefix="oob-mock-fleet-")), True
        else:
            directory, owns = Path(workdir).absolute(), False
            directory.mkdir(parents=True, exist_ok=True)
        fleet = cls(
            bind=address,
            workdir=directory,
            owns_workdir=owns,
            credentials=Credentials(
                username, password if password is not None else secrets.token_urlsafe(12)
            ),
            clock=clock or RealClock(),
            scale=scale,
        )
        try:
            for flavour in flavours:
                for n in range(1, count + 1):
                    fleet._add(
                        MockBmc(
                            f"{flavour.name}-{n}",
                            flavour,
                            address,
                            fleet._hub,
                            fleet.ca,
                            fleet.credentials,
                            fleet.clock,
                            scale,
                        )
                    )
            for bmc in fleet.bmcs:
                bmc.start()
            if serves_ipmi:
                fleet._serve_ipmi(every=ipmi, cipher_mode=ipmi_cipher_mode)
            if control_endpoint is not None:
                fleet._control = ControlServer(fleet, *control_endpoint)
                fleet._control.start()
        except BaseException:
            fleet.stop()
            raise
        return fleet

    def _add(self, bmc: MockBmc) -> None:
        self.bmcs.append(bmc)
        self._by_name[bmc.name] = bmc

    def _serve_ipmi(self, *, every: bool, cipher_mode: CipherMode) -> None:
        """One IPMI server (one thread, one select loop) for every BMC that answers IPMI."""
        from mocks.ipmi_server import IpmiMockServer

        self._ipmi = IpmiMockServer()
        self.ipmi_cipher_mode = cipher_mode
        for bmc in self.bmcs:
            if every or bmc.flavour.ipmi_only:
                bmc.serve_ipmi(self._ipmi, cipher_mode)
        self._ipmi.start()

    # -- looking things up

    def bmc(self, name: str) -> MockBmc:
        """The BMC called ``name``; KeyError when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no BMC named {name!r}; the fleet has {', '.join(self._by_name)}") from None

    @property
    def ca_file(self) -> Path:
        return self.ca.ca_file

    @property
    def ipmi_server(self) -> IpmiMockServer | None:
        """The server behind every IPMI endpoint; None when no BMC answers IPMI."""
        return self._ipmi

    @property
    def control_url(self) -> str | None:
        return self._control.url if self._control else None

    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password

    # -- changing things

    def set_faults(self, name: str, **faults: Any) -> Faults:
        return self.bmc(name).set_faults(faults)

    def clear_faults(self, name: str) -> Faults:
        return self.bmc(name).clear_faults()

    def set_power(self, name: str, state: str) -> None:
        self.bmc(name).set_power(state)

    # -- describing the fleet

    def write_inventory(
        self,
        path: str | os.PathLike[str],
        tls: TlsMode = "ca",
        password: Literal["file"] | str = "file",
    ) -> Path:
        """Write an oob inventory of the fleet (TOML, mode 0600, atomically); returns its path.

        ``password`` is ``"file"`` (reference :attr:`password_file`) or ``"env:VAR"``.
        """
        if password == "file":
            password_ref = f"file:{self.password_file}"
        elif password.startswith("env:") and len(password) > 4:
            password_ref = password
        else:
            raise ValueError("password must be 'file' or 'env:VAR'")
        hosts = [
            InventoryHost(
                bmc.name,
                bmc.vendor,
                bmc.flavour.kind,
                bmc.inventory_address,
                bmc.address,
                bmc.fingerprint if bmc.has_redfish else None,
                ipmi_port=bmc.ipmi_port,
            )
            for bmc in self.bmcs
        ]
        text = render_inventory(
            hosts, username=self.username, password_ref=password_ref, ca_file=self.ca_file, tls=tls
        )
        return write_atomically(Path(path), text)

    def describe(self) -> dict[str, object]:
        """The summary the CLI prints when ready (no secrets)."""
        return {
            "control": self.control_url,
            "ca_file": str(self.ca_file),
            "password_file": str(self.password_file),
            "username": self.username,
            "ipmi_cipher_mode": self.ipmi_cipher_mode,
            "bmcs": [
                {
                    "name": b.name,
                    "vendor": b.vendor,
                    "url": b.url if b.has_redfish else None,
                    "address": b.inventory_address,
                    "ipmi_port": b.ipmi_port,
                }
                for b in self.bmcs
            ],
        }

    # -- stopping

    def stop(self) -> None:
        """Close every listener, connection (held ones included) and thread.  Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._control is not None:
            self._control.stop()
        for bmc in self.bmcs:
            bmc.stop()
        if self._ipmi is not None:
            self._ipmi.stop()  # joins its thread and closes every UDP socket
        # wakes what still waits (latency, held connections), then joins every thread
        self._hub.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        name = name.strip()
        if name and name not in seen:
            seen.append(name)
    return seen
