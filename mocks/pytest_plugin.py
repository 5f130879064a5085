"""pytest fixtures for the mock BMC fleet; load with ``pytest_plugins = ["mocks.pytest_plugin"]``.

``mock_fleet_factory``
    ``start(vendors=[...], count=1, **Fleet.start options) -> Fleet``; every fleet it started
    is stopped when the test ends (its workdir lives in the test's ``tmp_path``).
``mock_fleet``
    One BMC of each main flavour, with a control API.
``mock_ipmi_fleet``
    The same plus one ``ipmi`` (IPMI-only) BMC, every BMC also answering IPMI on UDP
    (``ipmi=True``; each BMC's ``ipmi_port``, ``nmi_count_ipmi``...).
``mock_hung_fleet``
    One BMC of each main flavour, all also answering IPMI (``ami`` offers no Redfish NMI),
    whose hosts are hung (probes silent) and dump to ``tmp_path / "crash"`` in RHEL, SUSE
    and Debian layouts in turn, at ``scale=0.02``: an NMI gives a complete dump about 0.6 s
    later and a host answering again at about 1.2 s.  Its inventory
    (``fleet.write_inventory``) is ready for ``oob crash``.
``mock_hang_fleet``
    Like ``mock_hung_fleet`` with five BMCs (:data:`HANG_FLEET_VENDORS`), each host hung a
    different way (:data:`HANG_FLEET_KINDS`, in that order): the kernel log each dump saves
    shows a hard hang, a soft lockup, hung tasks, an RCU stall or an Oops before the NMI panic
    (:mod:`mocks.kernellog`).  Any fleet takes ``hang_kind=`` the same way.
``mock_http``
    ``session(fleet) -> requests.Session`` trusting only the fleet's CA (the environment's
    ``REQUESTS_CA_BUNDLE`` is ignored); closed when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .flavours import MAIN_FLAVOURS
from .fleet import Fleet
from .kernellog import HANG_KINDS

#: the time scale of ``mock_hung_fleet``: a crash cycle of about 1.2 s
HUNG_FLEET_SCALE = 0.02
#: ``mock_hang_fleet``: the BMCs, and how each one's host hangs
HANG_FLEET_VENDORS = ("ilo5", "idrac9", "openbmc", "supermicro", "ami")
HANG_FLEET_KINDS = HANG_KINDS


@pytest.fixture
def mock_fleet_factory(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    started: list[Fleet] = []

    def start(vendors: list[str] | tuple[str, ...] = MAIN_FLAVOURS, count: int = 1, **options: Any) -> Fleet:
        options.setdefault("workdir", tmp_path / f"mock-fleet-{len(started) + 1}")
        options.setdefault("control", "127.0.0.1:0")
        fleet = Fleet.start(vendors=vendors, count=count, **options)
        started.append(fleet)
        return fleet

    yield start
    for fleet in reversed(started):
        fleet.stop()


@pytest.fixture
def mock_fleet(mock_fleet_factory: Callable[..., Fleet]) -> Fleet:
    return mock_fleet_factory(MAIN_FLAVOURS)


@pytest.fixture
def mock_ipmi_fleet(mock_fleet_factory: Callable[..., Fleet]) -> Fleet:
    return mock_fleet_factory((*MAIN_FLAVOURS, "ipmi"), ipmi=True)


@pytest.fixture
def mock_hung_fleet(mock_fleet_factory: Callable[..., Fleet], tmp_path: Path) -> Fleet:
    return mock_fleet_factory(
        MAIN_FLAVOURS, ipmi=True, dump_root=tmp_path / "crash", hung=True, scale=HUNG_FLEET_SCALE
    )


@pytest.fixture
def mock_hang_fleet(mock_fleet_factory: Callable[..., Fleet], tmp_path: Path) -> Fleet:
    return mock_fleet_factory(
        HANG_FLEET_VENDORS,
        ipmi=True,
        dump_root=tmp_path / "crash",
        hung=True,
        scale=HUNG_FLEET_SCALE,
        hang_kind=HANG_FLEET_KINDS,
    )


@pytest.fixture
def mock_http() -> Iterator[Callable[[Fleet], requests.Session]]:
    sessions: list[requests.Session] = []

    def session(fleet: Fleet) -> requests.Session:
        http = requests.Session()
        http.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace ``verify``
        http.verify = str(fleet.ca_file)
        sessions.append(http)
        return http

    yield session
    for http in sessions:
        http.close()
