"""Help without framework internals, one-line usage errors, global options before the
command, "did you mean" for power actions, preflight's own not-ready exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oob.cli.app import hoist_global_options
from tests.conftest import CliResult, write_inventory

COMMANDS = [
    ["nmi"],
    ["crash"],
    ["power"],
    ["watch"],
    ["preflight"],
    ["drill"],
    ["bmc", "info"],
    ["inventory", "list"],
    ["inventory", "check"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_has_examples_and_selectors_and_no_internals(
    command: list[str], oob: Callable[..., CliResult]
) -> None:
    result = oob(*command, "--help")
    assert result.code == 0, result.stderr
    text = result.stdout
    assert "<list[str]>" not in text and "{TARGET" not in text and "python -m" not in text
    assert text.startswith(f"Usage: oob {' '.join(command)} ")
    assert "Examples:" in text
    assert "TARGET..." in text and "@group" in text
    # fits an 80-column terminal: the examples too (they are not rewrapped)
    assert max(len(line) for line in text.splitlines()) <= 80
    if command[0] in ("nmi", "crash", "power", "bmc"):
        # the selectors are spelt out, and one host without an inventory is shown
        assert "@group" in text and "comma lists" in text and "all" in text
        assert "--bmc" in text and "--password-env" in text


def test_usage_errors_are_one_line_exit_2(oob: Callable[..., CliResult]) -> None:
    for args in (["nmi", "--bogus"], ["power"], ["nope"], ["nmi", "web01", "--parallel", "0"]):
        result = oob(*args)
        assert result.code == 2, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("oob: error: "), (args, result.stderr)
        assert "╭" not in result.stderr and "Usage:" not in result.stderr


def test_mock_serve_usage_errors_in_the_same_style(oob: Callable[..., CliResult]) -> None:
    for args in (["--bogus"], ["--count", "x"], ["--count", "0"]):
        result = oob("mock", "serve", *args)
        assert result.code == 2, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("oob: error: "), (args, result.stderr)


def test_power_action_did_you_mean(oob: Callable[..., CliResult]) -> None:
    reboot = oob("power", "web01", "reboot")
    assert reboot.code == 2
    assert "did you mean reset or cycle?" in reboot.stderr and len(reboot.stderr.splitlines()) == 1
    typo = oob("power", "web01", "stauts")
    assert typo.code == 2 and "did you mean status?" in typo.stderr


def test_global_options_before_the_command() -> None:
    assert hoist_global_options(["-v", "nmi", "web01"]) == ["nmi", "-v", "web01"]
    assert hoist_global_options(["-i", "inv.toml", "--json", "bmc", "info", "all"]) == [
        "bmc", "info", "-i", "inv.toml", "--json", "all",
    ]  # fmt: skip
    assert hoist_global_options(["--inventory=x.toml", "-n", "power", "a", "off"]) == [
        "power", "--inventory=x.toml", "-n", "a", "off",
    ]  # fmt: skip
    # nothing global in front: left alone
    assert hoist_global_options(["nmi", "-v", "web01"]) == ["nmi", "-v", "web01"]
    assert hoist_global_options(["--version"]) == ["--version"]


def test_global_verbose_and_dry_run_before_the_command(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml"))
    result = oob("-v", "-n", "-i", inventory, "nmi", "openbmc-1", "--json")
    assert result.code == 0, result.stderr
    assert result.record("openbmc-1")["status"] == "dry-run"
    assert fleet.bmc("openbmc-1").nmi_count == 0


def test_insecure_warns_on_every_command(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml"))
    for args in (["power", "openbmc-1", "status"], ["bmc", "info", "openbmc-1"], ["nmi", "openbmc-1", "-n"]):
        result = oob(*args, "-i", inventory, "--insecure", "--json")
        assert result.code == 0, (args, result.stderr)
        assert "--insecure: BMC certificates are NOT verified" in result.stderr, args
        assert "openbmc-1" in result.stderr


def test_shell_completion_is_offered(oob: Callable[..., CliResult]) -> None:
    result = oob("--show-completion", "bash")
    assert result.code == 0, result.stderr
    assert "_oob_completion" in result.stdout


def test_preflight_not_ready_is_not_exit_1(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    fleet.set_faults("openbmc-1", auth_failure=True)
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml", timeout=3))
    result = oob("preflight", "openbmc-1", "-i", inventory, "--json")
    # 1 is oob's own internal error; "not ready" has its own code
    assert result.code == 8, result.stderr
    assert next(r for r in result.records if r.get("host") == "openbmc-1")["ready"] is False
