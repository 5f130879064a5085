"""``oob preflight`` as a real process, logging in to a mock host through a Host alias of the
ssh configuration named by ``$OOB_SSH_CONFIG``: the inventory gives neither ssh.user nor
ssh.port, and the command line neither --ssh-key nor --known-hosts."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oob.ssh import CONFIG_ENV
from tests.conftest import CliResult, write_inventory


def test_preflight_reaches_the_host_through_its_alias(tmp_path: Path, oob: Callable[..., CliResult]) -> None:
    from mocks.fleet import Fleet

    fleet = Fleet.start(
        vendors=["openbmc"],
        workdir=tmp_path / "fleet",
        dump_root=tmp_path / "crash",
        layouts=["debian"],
        scale=0.02,
        host_ssh=True,
    )
    try:
        assert fleet.host_ssh is not None
        bmc = fleet.bmcs[0]
        inventory = tmp_path / "inv.toml"
        write_inventory(fleet, inventory)
        text = inventory.read_text()
        # the host is known by its alias; its SSH login only by the ssh configuration
        text = re.sub(r"(?m)^ssh\.(user|port) = .*\n", "", text)
        text = text.replace(f'address = "{bmc.host.address}"', 'address = "web01-mgmt"', 1)
        assert "ssh.port" not in text and "web01-mgmt" in text
        inventory.write_text(text)
        config = tmp_path / "ssh_config"
        config.write_text(
            "Host web01-mgmt\n"
            f"    HostName {bmc.host.address}\n"
            f"    Port {fleet.host_ssh.port}\n"
            f"    User {fleet.host_ssh.user}\n"
            f"    IdentityFile {fleet.host_ssh.client_key}\n"
            f"    UserKnownHostsFile {fleet.host_ssh.known_hosts}\n"
        )
        assert fleet.host_ssh.port != 22

        result = oob("preflight", "all", "-i", str(inventory), "--json", env={CONFIG_ENV: str(config)})
        records: list[dict[str, Any]] = [r for r in result.records if r.get("event") == "readiness"]
        assert len(records) == 1, result.stdout + result.stderr
        checks = {c["check"]: c for c in records[0]["checks"]}
        assert checks["ssh"]["status"] == "ok", checks["ssh"]
        assert checks["crash_loaded"]["status"] == "ok"
        assert records[0]["distro"] == "debian"
        assert result.code == 0, result.stdout + result.stderr

        # the control: without the file, the alias is no host at all (the name is never looked
        # up: an unreadable configuration fails first)
        missing = oob(
            "preflight", "all", "-i", str(inventory), "--json", env={CONFIG_ENV: str(tmp_path / "no")}
        )
        failed = next(r for r in missing.records if r.get("event") == "readiness")
        ssh = next(c for c in failed["checks"] if c["check"] == "ssh")
        assert ssh["status"] == "fail" and "cannot read the ssh configuration" in ssh["reason"]
        assert bmc.open_sessions == 0 and bmc.nmi_count == 0
    finally:
        fleet.stop()
