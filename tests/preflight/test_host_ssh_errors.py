"""Whose SSH failed decides the error: the host's own (preflight, drill) is HostSshError
(exit 3, nothing was crashed), a dump server's is DumpTargetError / HostKeyError (exit 5).
Against a real sshd on loopback (mocks/sshd.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mocks.sshd import SshServer, generate_keypair
from oob import asyncbridge
from oob.errors import DumpTargetError, HostKeyError, HostSshError
from oob.events import Event
from oob.model import Host, NmiSupport, PowerState, SshConfig
from oob.preflight.checks import FAIL, OK
from oob.preflight.hostfacts import gather
from oob.preflight.hostssh import HostShell
from oob.runbook.crash import CrashRequest
from oob.runbook.drill import DrillRequest, sysrq_trigger
from oob.runbook.nmi import CrashPlan
from oob.runbook.preflight import PreflightRequest, host_side
from oob.ssh import DUMP_SERVER, HOST, SshAddress, SshOptions, connect
from tests.conftest import CliResult, write_inventory


def _host(server: SshServer) -> Host:
    return Host(name="web01", address=server.host, ssh=SshConfig(user=server.user, port=server.port))


def _unknown_key(server: SshServer, tmp_path: Path) -> SshOptions:
    return SshOptions(
        known_hosts=str(tmp_path / "empty_known_hosts"), identity_files=(str(server.client_key),)
    )


def _stranger(server: SshServer, tmp_path: Path) -> SshOptions:
    generate_keypair(tmp_path / "stranger", "stranger@oob-test")
    return SshOptions(known_hosts=str(server.known_hosts), identity_files=(str(tmp_path / "stranger"),))


def test_the_same_failure_is_the_hosts_or_the_dump_servers_by_whose_ssh_it_is(
    sshd: SshServer,
    tmp_path: Path,
) -> None:
    address = SshAddress(sshd.user, sshd.host, sshd.port)
    unknown = _unknown_key(sshd, tmp_path)
    with pytest.raises(HostSshError, match="host key unknown") as as_host:
        asyncbridge.run(connect(address, unknown, HOST))
    assert as_host.value.exit_code == 3 and as_host.value.kind == "host_ssh"
    with pytest.raises(HostKeyError, match="host key unknown") as as_dump:
        asyncbridge.run(connect(address, unknown, DUMP_SERVER))
    assert as_dump.value.exit_code == 5
    with pytest.raises(HostSshError, match=r"login refused \(publickey\)"):
        asyncbridge.run(connect(address, _stranger(sshd, tmp_path), HOST))
    with pytest.raises(DumpTargetError, match=r"login refused \(publickey\)") as refused:
        asyncbridge.run(connect(address, _stranger(sshd, tmp_path), DUMP_SERVER))
    assert not isinstance(refused.value, HostSshError)


def test_preflight_host_login_failure_is_a_failed_ssh_check_from_a_host_ssh_error(
    sshd: SshServer,
    tmp_path: Path,
) -> None:
    host = _host(sshd)
    with pytest.raises(HostSshError) as raised:
        asyncbridge.run(gather(host, _unknown_key(sshd, tmp_path)))
    assert raised.value.host == "web01" and "host key unknown" in raised.value.message
    checks, view = host_side(host, PreflightRequest(ssh=_stranger(sshd, tmp_path)))
    assert view is None and [c.name for c in checks] == ["ssh"]
    assert checks[0].status == FAIL and "cannot run the checks over SSH" in checks[0].reason
    assert "login refused (publickey)" in checks[0].reason


def test_host_shell_runs_scripts_on_stdin(sshd: SshServer, ssh_options: SshOptions) -> None:
    async def run() -> tuple[str, int | None]:
        async with HostShell(_host(sshd), ssh_options) as shell:
            ran = await shell.run("echo on-the-host; exit 3", timeout=10)
        return ran.stdout, ran.rc

    assert asyncbridge.run(run()) == ("on-the-host\n", 3)
    checks, _ = host_side(_host(sshd), PreflightRequest(ssh=ssh_options))
    assert checks[0].name == "ssh" and checks[0].status == OK


def test_a_sysrq_drill_that_cannot_log_in_fails_with_host_ssh_error_and_crashes_nothing(
    sshd: SshServer,
    tmp_path: Path,
) -> None:
    host = _host(sshd)
    request = DrillRequest(crash=CrashRequest(ssh=_stranger(sshd, tmp_path), expect_hung=False))
    plan = CrashPlan(
        host=host, method="sysrq", power=PowerState.ON, nmi=NmiSupport(offered=None, source="ssh")
    )
    events: list[Event] = []
    outcome = sysrq_trigger(request)(plan, events.append, None)
    assert outcome.status == "failed" and outcome.exit_code == 3
    assert outcome.error is not None and outcome.error.kind == "host_ssh"
    assert (
        "login refused (publickey)" in outcome.error.message
        and "nothing was crashed" in outcome.error.message
    )
    assert not any(e.kind == "sysrq_sent" for e in events)


def test_oob_drill_without_the_hosts_ssh_exits_3_and_crashes_nothing(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(
        ["openbmc"], ipmi=True, dump_root=tmp_path / "crash", layouts=["rhel"], scale=0.02, host_ssh=True
    )
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    # no --known-hosts / --ssh-key: the host's key is unknown to oob
    result = oob(
        "drill",
        "openbmc-1",
        "-i",
        str(inventory),
        "--yes",
        "--json",
        "--probe-timeout",
        "0.3",
        "--timeout",
        "5s",
    )
    assert result.code == 3, result.stdout + result.stderr
    found = [r for r in result.records if r.get("event") == "result" and r["host"] == "openbmc-1"]
    assert len(found) == 1, json.dumps(result.records)
    assert found[0]["error"] == "host_ssh" and "host key unknown" in found[0]["message"]
    assert "nothing was crashed" in found[0]["message"]
    assert fleet.host("openbmc-1").state.value == "running"
    assert not any(r.event == "sysrq_crash" for r in fleet.host("openbmc-1").history)
