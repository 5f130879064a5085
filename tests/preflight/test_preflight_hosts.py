"""`oob preflight` end to end: the real CLI against simulated hosts over a real sshd on loopback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, write_inventory

M, G, T = 1 << 20, 1 << 30, 1 << 40


@pytest.fixture(scope="module")
def ready_fleet(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One RHEL, SUSE and Debian host (iLO, iDRAC, OpenBMC), running and ready."""
    from mocks.fleet import Fleet

    tmp = tmp_path_factory.mktemp("ready")
    fleet = Fleet.start(
        vendors=["ilo5", "idrac9", "openbmc"],
        workdir=tmp / "fleet",
        dump_root=tmp / "crash",
        layouts=["rhel", "suse", "debian"],
        scale=0.02,
        host_ssh=True,
    )
    write_inventory(fleet, tmp / "inv.toml")
    yield fleet, tmp / "inv.toml"
    fleet.stop()


def ssh_args(fleet: Any) -> tuple[str, ...]:
    return ("--known-hosts", str(fleet.host_ssh.known_hosts), "--ssh-key", str(fleet.host_ssh.client_key))


def _host(result: CliResult, host: str) -> dict[str, Any]:
    found = [r for r in result.records if r.get("event") == "readiness" and r["host"] == host]
    assert len(found) == 1, result.stdout + result.stderr
    return found[0]


def _check(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in record["checks"] if c["check"] == name)


def test_ready_rhel_suse_debian_hosts_pass(ready_fleet: Any, oob: Callable[..., CliResult]) -> None:
    fleet, inventory = ready_fleet
    result = oob("preflight", "all", "-i", str(inventory), "--json", *ssh_args(fleet))
    assert result.code == 0, result.stdout + result.stderr
    distros = {}
    for bmc in fleet.bmcs:
        record = _host(result, bmc.name)
        assert record["ready"] is True and record["exit_code"] == 0
        assert record["root"] is True
        distros[bmc.name] = record["distro"]
        # target_space measures the test machine's own disk (the mock's dump.target): its
        # verdict depends on that disk, not on the host; it must be measured all the same
        space = _check(record, "target_space")
        assert space["status"] in ("ok", "warn") and "free at dump.target" in space["reason"]
        failing = [
            c for c in record["checks"] if c["status"] in ("fail", "warn") and c["check"] != "target_space"
        ]
        assert failing == [], failing
        assert _check(record, "crash_loaded")["status"] == "ok"
        assert _check(record, "nmi")["via"] == "redfish"
        assert bmc.open_sessions == 0 and bmc.nmi_count == 0
    assert distros == {"ilo5-1": "rhel", "idrac9-1": "suse", "openbmc-1": "debian"}
    # the reservation that applies to this RAM (16 GiB) for each family's default syntax
    assert _check(_host(result, "ilo5-1"), "crashkernel")["crashkernel"]["bytes"] == 256 * M  # ranges
    assert _check(_host(result, "idrac9-1"), "crashkernel")["crashkernel"]["high"] == 242 * M  # ,high ,low
    assert _check(_host(result, "openbmc-1"), "crashkernel")["crashkernel"]["bytes"] == 128 * M
    assert _check(_host(result, "ilo5-1"), "hpwdt")["status"] == "ok"  # an HPE host: checked
    assert _check(_host(result, "openbmc-1"), "hpwdt")["status"] == "skip"
    summary = next(r for r in result.records if r.get("event") == "summary")
    assert summary == {
        "event": "summary",
        "level": "info",
        "message": "summary",
        "hosts": 3,
        "ready": 3,
        "not_ready": [],
        "exit_code": 0,
    }
    human = oob("preflight", "all", "-i", str(inventory), *ssh_args(fleet))
    assert human.code == 0
    assert "3 of 3 host(s) ready" in human.stdout and "CRASH LOADED" in human.stdout


MISSING: list[tuple[str, dict[str, Any], str, str, str]] = [
    (
        "ilo5-1",
        {"crashkernel": "", "crash_size": 0, "loaded": False},
        "crashkernel",
        "fail",
        "no crashkernel= in /proc/cmdline",
    ),
    ("idrac9-1", {"loaded": False}, "crash_loaded", "fail", "kexec_crash_loaded is 0"),
    (
        "openbmc-1",
        {"unknown_nmi_panic": 0},
        "nmi_panic",
        "fail",
        "an NMI from the BMC will not crash the host",
    ),
    ("ilo5-1", {"service_active": False}, "service", "fail", "kdump is inactive"),
    (
        "idrac9-1",
        {"target_path": "/var/crash"},
        "target",
        "warn",
        "mismatch: kdump writes to /var/crash (local)",
    ),
    ("openbmc-1", {"free": 2 * G}, "space", "warn", "only 2G free at"),
    ("openbmc-1", {"panic": 0}, "panic", "warn", "the host hangs instead of rebooting"),
    # the inventory's file:// dump.target (here, on this machine's disk) is smaller than the RAM
    (
        "openbmc-1",
        {"mem_total": 64 * T, "free": 128 * T},
        "target_space",
        "warn",
        "less than the 65536G of RAM",
    ),
]


@pytest.mark.parametrize(
    ("host", "change", "check", "status", "reason"), MISSING, ids=[m[2] for m in MISSING]
)
def test_each_missing_piece_has_its_own_reason(
    ready_fleet: Any,
    oob: Callable[..., CliResult],
    host: str,
    change: dict[str, Any],
    check: str,
    status: str,
    reason: str,
) -> None:
    fleet, inventory = ready_fleet
    tree = fleet.host_ssh.tree(host)
    before = tree.readiness
    tree.configure(**change)
    try:
        result = oob("preflight", host, "-i", str(inventory), "--json", *ssh_args(fleet))
        strict = oob("preflight", host, "-i", str(inventory), "--json", "--strict", *ssh_args(fleet))
    finally:
        tree.configure(**{k: getattr(before, k) for k in change})
    record = _host(result, host)
    found = _check(record, check)
    assert found["status"] == status, found
    assert reason in found["reason"]
    others = [
        c
        for c in record["checks"]
        if c["status"] in ("fail", "warn")
        and c["check"] != check
        and not (check == "crashkernel" and c["check"] in ("crash_size", "crash_loaded", "service"))
    ]
    assert others == [], others
    # a failure makes the host not ready (exit 8); a warning only with --strict
    assert result.code == (8 if status == "fail" else 0), result.stderr
    assert record["ready"] is (status != "fail")
    assert strict.code == 8 and _host(strict, host)["ready"] is False


def test_service_asks_kdumpctl_or_kdump_config_where_installed(
    ready_fleet: Any, oob: Callable[..., CliResult]
) -> None:
    fleet, inventory = ready_fleet
    result = oob("preflight", "all", "-i", str(inventory), "--json", *ssh_args(fleet))
    rhel, suse, debian = (
        _check(_host(result, name), "service") for name in ("ilo5-1", "idrac9-1", "openbmc-1")
    )
    assert rhel["status"] == "ok" and rhel["status_tool"] == "kdumpctl" and rhel["needs_root"] is True
    assert rhel["reason"] == "kdump is active; kdumpctl status: kdump: Kdump is operational"
    assert debian["status"] == "ok" and debian["status_tool"] == "kdump-config" and "needs_root" not in debian
    assert debian["reason"] == "kdump-tools is active; kdump-config status: current state   : ready to kdump"
    assert suse["status"] == "ok" and "status_tool" not in suse and suse["reason"] == "kdump is active"
    tree = fleet.host_ssh.tree("ilo5-1")
    tree.configure(loaded=False)
    try:
        unloaded = oob("preflight", "ilo5-1", "-i", str(inventory), "--json", *ssh_args(fleet))
    finally:
        tree.configure(loaded=True)
    service = _check(_host(unloaded, "ilo5-1"), "service")
    assert service["status"] == "warn", service
    assert service["reason"] == "kdump is active, but kdumpctl status: kdump: Kdump is not operational"
    tree.configure(uid=1000)
    try:
        user = oob("preflight", "ilo5-1", "-i", str(inventory), "--json", *ssh_args(fleet))
    finally:
        tree.configure(uid=0)
    service = _check(_host(user, "ilo5-1"), "service")
    assert service["status"] == "ok" and service["needs_root"] is True
    assert service["reason"] == "kdump is active; kdumpctl status needs root: not run"


def test_checks_that_need_root_say_so(ready_fleet: Any, oob: Callable[..., CliResult]) -> None:
    fleet, inventory = ready_fleet
    tree = fleet.host_ssh.tree("idrac9-1")  # SUSE: /etc/sysconfig/kdump is root's only
    tree.configure(uid=1000)
    try:
        result = oob("preflight", "idrac9-1", "-i", str(inventory), "--json", *ssh_args(fleet))
        human = oob("preflight", "idrac9-1", "-i", str(inventory), *ssh_args(fleet))
    finally:
        tree.configure(uid=0)
    record = _host(result, "idrac9-1")
    assert record["root"] is False
    assert set(record["needed_root"]) == {"crash_size", "target"}
    target = _check(record, "target")
    assert target["status"] == "warn" and "without root" in target["reason"] and target["needs_root"] is True
    assert "addresses hidden without root" in _check(record, "crash_size")["reason"]
    # what does not need root still works
    assert _check(record, "crash_loaded")["status"] == "ok" and _check(record, "service")["status"] == "ok"
    assert "needed root for crash_size, target" in human.stdout


def test_bmc_side_failures_and_no_ssh(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ami", "xcc"], ipmi=True, dump_root=tmp_path / "crash", scale=0.02, host_ssh=True)
    fleet.set_faults("xcc-1", auth_failure=True)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    # no --ssh-key / --known-hosts: the host's key is unknown, the login refused
    result = oob("preflight", "all", "-i", str(inventory), "--json")
    assert result.code == 8
    ami, xcc = _host(result, "ami-1"), _host(result, "xcc-1")
    assert _check(ami, "nmi")["status"] == "ok" and _check(ami, "nmi")["via"] == "ipmi"
    assert "NMI not supported" in _check(ami, "nmi")["reason"]
    # Redfish refuses the credentials: IPMI is not tried with the same ones (each failed login
    # counts toward the BMC's lockout), and the check says so; --via ipmi tries it on purpose
    auth = _check(xcc, "auth")
    assert auth["status"] == "fail" and "not trying ipmi with the same credentials" in auth["reason"], auth
    via_ipmi = oob("preflight", "xcc-1", "-i", str(inventory), "--json", "--via", "ipmi")
    assert _check(_host(via_ipmi, "xcc-1"), "nmi")["via"] == "ipmi"
    only_redfish = oob("preflight", "xcc-1", "-i", str(inventory), "--json", "--via", "redfish")
    assert _check(_host(only_redfish, "xcc-1"), "auth")["status"] == "fail"
    assert _check(_host(only_redfish, "xcc-1"), "reachable")["status"] == "ok"
    assert _check(ami, "ssh")["status"] == "fail" and "host key unknown" in _check(ami, "ssh")["reason"]
    assert all(b.open_sessions == 0 for b in fleet.bmcs)


def test_bad_input_exits_2(oob: Callable[..., CliResult], tmp_path: Path) -> None:
    result = oob("preflight", "nosuchhost", "-i", str(tmp_path / "missing.toml"))
    assert result.code == 2
