"""One host on the command line (``--bmc URL``), no inventory file: against the mock fleet."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import CliResult

#: fast settings for oob crash against the scaled mock hosts
FAST = ("--probe-timeout", "0.3", "--interval", "0.1", "--reboot-grace", "15s", "--timeout", "30s")


def _bmc_flags(fleet: Any, name: str) -> list[str]:
    """The one-liner's flags for one mock BMC: its URL, user, password variable and CA."""
    bmc = fleet.bmc(name)
    return [
        "--bmc",
        bmc.inventory_address,
        "--user",
        fleet.username,
        "--password-env",
        "BMC_PW",
        "--ca-file",
        str(fleet.ca_file),
    ]


def _env(fleet: Any) -> dict[str, str]:
    return {"BMC_PW": fleet.password_file.read_text().rstrip("\n")}


def test_power_status_and_off_without_an_inventory(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    password = _env(fleet)["BMC_PW"]
    status = oob("power", *_bmc_flags(fleet, "openbmc-1"), "status", "--json", env=_env(fleet))
    assert status.code == 0, status.stderr
    # the host's name is the BMC's address unless --name says otherwise
    assert status.record("127.0.0.1")["power"] == "On"
    off = oob(
        "power", *_bmc_flags(fleet, "openbmc-1"), "--name", "web01", "off", "-y", "--json", env=_env(fleet)
    )
    assert off.code == 0, off.stderr
    assert off.record("web01")["sent"] == ["ForceOff"]
    assert fleet.bmc("openbmc-1").power == "Off"
    assert fleet.bmc("openbmc-1").open_sessions == 0
    for result in (status, off):
        assert password not in result.stdout + result.stderr


def test_nmi_one_liner_with_global_verbose_before_the_command(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], audit_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    result = oob(
        "-v", "nmi", *_bmc_flags(fleet, "idrac9-1"), "--name", "web01", "-y", "--json", env=_env(fleet)
    )
    assert result.code == 0, result.stderr
    assert result.record("web01")["status"] == "ok"
    assert fleet.bmc("idrac9-1").nmi_count == 1
    # the audit log has the NMI under the host's name, and no password anywhere
    records = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert any(r.get("host") == "web01" for r in records)
    assert _env(fleet)["BMC_PW"] not in audit_path.read_text() + result.stderr + result.stdout
    # the next step names the host; without an inventory, the dump target is the user's to give
    assert "oob watch web01 --since" in result.stderr + result.stdout


def test_bmc_info_pinned_fingerprint_and_password_file(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["xcc"])
    bmc = fleet.bmc("xcc-1")
    result = oob(
        "bmc",
        "info",
        "--bmc",
        bmc.inventory_address,
        "--user",
        fleet.username,
        "--password-file",
        str(fleet.password_file),
        "--fingerprint",
        bmc.fingerprint,
        "--json",
    )
    assert result.code == 0, result.stderr
    record = result.record("127.0.0.1")
    assert record["vendor"] == "Lenovo XCC" and record["nmi"]["offered"] is True


def test_a_wrong_pin_is_refused_as_with_an_inventory(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult]
) -> None:
    fleet = fleet_factory(["openbmc"])
    bmc = fleet.bmc("openbmc-1")
    wrong = "0" * 64
    result = oob(
        "bmc", "info", "--bmc", bmc.inventory_address, "--user", "admin", "--password-env", "BMC_PW",
        "--fingerprint", wrong, "--json", env=_env(fleet),
    )  # fmt: skip
    assert result.code == 3
    assert result.record("127.0.0.1")["error"] == "tls"


def test_crash_one_liner_collects_the_dump(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"], dump_root=tmp_path / "crash", hung=True, scale=0.02)
    bmc = fleet.bmc("openbmc-1")
    result = oob(
        "crash",
        *_bmc_flags(fleet, "openbmc-1"),
        "--name",
        "web01",
        "--address",
        bmc.host_address,
        "--probe",
        bmc.probe,
        "--target",
        bmc.dump_target.as_uri(),
        "-y",
        "--json",
        *FAST,
        env=_env(fleet),
    )
    assert result.code == 0, result.stderr
    final = [r for r in result.records if r.get("event") == "result" and r.get("host") == "web01"]
    assert len(final) == 1 and final[0]["status"] == "complete", result.stdout
    assert bmc.nmi_count == 1


def test_watch_with_a_target_and_no_inventory(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"], dump_root=tmp_path / "crash", hung=True, scale=0.02)
    bmc = fleet.bmc("openbmc-1")
    sent = oob("nmi", *_bmc_flags(fleet, "openbmc-1"), "--name", "web01", "-y", "--json", env=_env(fleet))
    assert sent.code == 0, sent.stderr
    watched = oob(
        "watch",
        "web01",
        "--address",
        bmc.host_address,
        "--target",
        bmc.dump_target.as_uri(),
        "--since",
        "5m",
        "--interval",
        "0.1",
        "--timeout",
        "30s",
        "--json",
    )
    assert watched.code == 0, watched.stderr
    assert any(r.get("event") == "dump_complete" and r.get("host") == "web01" for r in watched.records)


def test_bad_one_liners_are_one_line_exit_2(oob: Callable[..., CliResult], tmp_path: Path) -> None:
    secret = "hunter2-not-a-variable!"
    cases: list[tuple[list[str], str]] = [
        (["nmi", "--bmc", "https://192.0.2.5", "--user", "admin"], "--password-env VAR"),
        (["nmi", "--bmc", "https://192.0.2.5", "--password-env", secret], "NAME of an environment variable"),
        (["nmi", "--bmc", "ftp://192.0.2.5", "--password-env", "X"], "'--bmc'"),
        (["nmi", "--bmc", "https://192.0.2.5", "--password-env", "X", "--kind", "hpe"], "'--kind'"),
        (["nmi", "--bmc", "https://192.0.2.5", "--password-env", "X", "-i", "inv.toml"], "no -i"),
        (["nmi", "--user", "admin", "web01"], "add --bmc URL"),
        (
            ["power", "--bmc", "https://192.0.2.5", "--password-env", "X", "--password-file", "f", "status"],
            "exclude",
        ),
        (["crash", "--bmc", "https://192.0.2.5", "--password-env", "X"], "--address"),
        (["nmi", "--bmc", "https://192.0.2.5", "--password-env", "X", "a", "b"], "one host"),
    ]
    # a password that looks like a variable name is not echoed either
    cases.append((["nmi", "--bmc", "https://192.0.2.5", "--password-env", "Summer2024"], "not set"))
    for args, expected in cases:
        result = oob(*args, "-y", env={"X": "x"})
        assert result.code == 2, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("oob: error: "), (args, result.stderr)
        assert expected in lines[0], (args, lines[0])
        assert secret not in result.stderr and "Summer2024" not in result.stderr
