"""A large fleet (50 BMCs of every flavour) starts, answers and stops without leaking threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from mocks.flavours import REDFISH_FLAVOURS
from mocks.fleet import Fleet

pytest_plugins = ["mocks.pytest_plugin"]


def _mock_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mock-")]


def test_fifty_of_each_flavour(
    mock_fleet_factory: Callable[..., Fleet], mock_http: Callable[[Fleet], requests.Session]
) -> None:
    started = time.monotonic()
    fleet = mock_fleet_factory(sorted(REDFISH_FLAVOURS), count=50)
    assert len(fleet.bmcs) == 50 * len(REDFISH_FLAVOURS)
    assert len({b.port for b in fleet.bmcs}) == len(fleet.bmcs)
    assert len({b.fingerprint for b in fleet.bmcs}) == len(fleet.bmcs)
    assert fleet.bmc("dmtf-50").url.startswith("https://127.0.0.1:")
    # idle BMCs cost no thread: one accept loop, the control API and the hosts' probe listener
    # serve them all (the hosts' timer thread starts with the first timed step)
    assert sorted(_mock_threads()) == ["mock-bmc-accept", "mock-fleet-control", "mock-host-liveness"]
    http = mock_http(fleet)
    for bmc in fleet.bmcs:
        assert http.get(bmc.url + "/redfish/v1/", timeout=10).status_code == 200, bmc.name
    assert sum(b.requests for b in fleet.bmcs) == len(fleet.bmcs)
    http.close()
    fleet.stop()
    assert _mock_threads() == []
    assert time.monotonic() - started < 60
