"""A libvirt guest on the command line, without an inventory (``--bmc URI --kind libvirt --domain``)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import CliResult

GUEST = ("--bmc", "test:///default", "--kind", "libvirt", "--domain", "test")


def test_a_guest_named_on_the_command_line(oob: Callable[..., CliResult]) -> None:
    status = oob("power", "status", *GUEST, "--json")
    assert status.code == 0, status.stderr
    assert json.loads(status.stdout.splitlines()[0])["power"] == "On"

    sent = oob("nmi", *GUEST, "--yes", "--json")
    assert sent.code == 0, sent.stderr
    [result] = [json.loads(line) for line in sent.stdout.splitlines() if '"action": "nmi"' in line]
    assert (result["host"], result["via"], result["status"]) == ("test", "libvirt", "ok")
    again = oob("nmi", *GUEST, "--yes", "--json")  # the repeat guard knows the guest by name
    assert again.code == 7


def test_a_guest_flag_needs_a_hypervisor_kind(oob: Callable[..., CliResult], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OOB_TEST_BMC_PW", "x")
    result = oob(
        "nmi", "--bmc", "https://192.0.2.1", "--password-env", "OOB_TEST_BMC_PW", "--domain", "g", "-y"
    )
    assert result.code == 2
    assert "set --kind to 'libvirt' or 'esxi'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_guest_is_one_line_exit_3(oob: Callable[..., CliResult]) -> None:
    result = oob("bmc", "info", "--bmc", "test:///default", "--kind", "libvirt", "--domain", "nosuch")
    assert result.code == 3
    assert "no guest with name 'nosuch'" in result.stdout + result.stderr
