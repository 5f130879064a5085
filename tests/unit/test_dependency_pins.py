"""The dependency ranges in pyproject.toml are the ones installed, and the library
internals oob leans on are still there.

oob subclasses pyghmi's private RMCP+ Session (oob/drivers/ipmi/session.py) and urllib3's
connection classes and pools (oob/drivers/redfish/wire.py).  A new version of either may
move what those subclasses touch; this test says so by name before any IPMI or Redfish
test fails in a puzzling way.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


@pytest.mark.parametrize("requirement", _requirements(), ids=lambda r: r.name)
def test_the_installed_version_is_within_the_declared_range(requirement: Requirement) -> None:
    installed = version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{requirement.name} {installed} is outside {requirement.specifier}"
    )


def test_the_libraries_oob_subclasses_have_upper_bounds() -> None:
    bounded = {r.name.lower(): r for r in _requirements()}
    for name in ("pyghmi", "urllib3", "requests"):
        assert any(spec.operator in ("<", "<=", "==", "~=") for spec in bounded[name].specifier), name


def test_pyghmi_still_has_what_the_session_subclass_touches() -> None:
    from pyghmi.ipmi.private import constants, util
    from pyghmi.ipmi.private import session as pyghmi_session

    session = pyghmi_session.Session
    for method in (
        "__new__",
        "__init__",
        "send_payload",
        "process_pktqueue",
        "awaitresponse",
        "_handle_ipmi_packet",
        "_got_rmcp_response",
        "_timedout",
        "_mark_broken",
    ):
        assert callable(getattr(session, method, None)), f"pyghmi Session.{method} is gone"
    for name in ("WAITING_SESSIONS", "ipv6support", "sessionqueue"):
        assert hasattr(pyghmi_session, name), f"pyghmi session.{name} is gone"
    assert hasattr(constants, "payload_types") and callable(util._monotonic_time)
    # and every module attribute the subclass names in its source is really there
    source = (REPO / "oob" / "drivers" / "ipmi" / "session.py").read_text()
    for name in set(re.findall(r"pyghmi_session\.([A-Za-z_][A-Za-z0-9_]*)", source)):
        assert hasattr(pyghmi_session, name), f"pyghmi session.{name} is gone"
    for name in set(re.findall(r"pyghmi_util\.([A-Za-z_][A-Za-z0-9_]*)", source)):
        assert hasattr(util, name), f"pyghmi util.{name} is gone"


def test_urllib3_still_takes_connection_classes_the_way_the_redfish_wire_installs_them() -> None:
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.poolmanager import PoolManager

    assert HTTPConnectionPool.ConnectionCls is HTTPConnection
    assert HTTPSConnectionPool.ConnectionCls is HTTPSConnection
    assert "pool_classes_by_scheme" in vars(PoolManager(num_pools=1))
    for method in ("connect", "send", "close"):
        assert callable(getattr(HTTPConnection, method))
    assert callable(HTTPAdapter.init_poolmanager)
