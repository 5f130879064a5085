"""-v shows each request made of a BMC (method, path, status, time), never a secret."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import CliResult, write_inventory


def test_verbose_lists_the_requests_and_nothing_secret(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    password = fleet.password_file.read_text().strip()
    quiet = oob("bmc", "info", "idrac9-1", "-i", str(inventory))
    loud = oob("-v", "bmc", "info", "idrac9-1", "-i", str(inventory))
    assert quiet.code == 0 and loud.code == 0, loud.stderr
    lines = [line for line in loud.stderr.splitlines() if "oob.redfish.requests" in line]
    assert any(re.search(r"GET /redfish/v1/ -> HTTP 200 in \d+ ms", line) for line in lines), loud.stderr
    assert any(re.search(r"POST /redfish/v1/.*Sessions -> HTTP 20\d", line) for line in lines), lines
    assert any(re.search(r"DELETE /redfish/v1/.*Sessions/\S+ -> HTTP 20\d", line) for line in lines), lines
    assert "oob.redfish.requests" not in quiet.stderr
    for secret in (password, "X-Auth-Token", "Password"):
        assert secret not in loud.stderr
