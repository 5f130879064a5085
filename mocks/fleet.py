"""A fleet of mock Redfish BMCs on loopback, for tests and ``oob mock serve``.

::

    from mocks.fleet import Fleet

    with Fleet.start(vendors=["ilo5", "idrac9"], count=2, workdir=tmp_path, control="127.0.0.1:0") as fleet:
        bmc = fleet.bmc("ilo5-1")          # https://127.0.0.1:PORT, trusted through fleet.ca_file
        fleet.set_faults("ilo5-1", latency_ms=200)
        ...
    # every listener, connection and thread is closed here

BMC names are ``<flavour>-<n>``, n counting from 1 per flavour.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

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
    ) -> Fleet:
        """Start ``count`` BMCs of every flavour in ``vendors``, all listening when this returns.

        ``control`` (``HOST:PORT``, port 0 for any) also starts the control API.  Without
        ``workdir`` a temporary directory holds the CA and password file and is removed by
        :meth:`stop`.  ``password`` defaults to a random one (see :attr:`password_file`).
        Raises ValueError for an unknown flavour, a count below 1 or a non-loopback address.
        """
        flavours = [get_flavour(name) for name in _unique(vendors)]
        if not flavours:
            raise ValueError("no vendor flavour given")
        if count < 1:
            raise ValueError("count must be at least 1")
        address = loopback_address(bind)
        control_endpoint = loopback_endpoint(control) if control is not None else None
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
            InventoryHost(bmc.name, bmc.vendor, bmc.flavour.kind, bmc.url, bmc.address, bmc.fingerprint)
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
            "bmcs": [{"name": b.name, "vendor": b.vendor, "url": b.url} for b in self.bmcs],
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
