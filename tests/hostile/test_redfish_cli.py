"""The real CLI (`python -m oob nmi ... --json --via redfish`) against hostile BMCs:
the documented exit code, JSON lines on stdout, no traceback, one NMI at most."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.hostile.conftest import PASSWORD, USERNAME
from tests.hostile.server import (
    RESET,
    SESSIONS,
    Answer,
    Behaviour,
    HostileServer,
    elsewhere_than_the_standard_login,
)


def _inventory(path: Path, server: HostileServer, ca_file: Path, timeout: float = 2) -> Path:
    path.write_text(
        "[defaults]\n"
        f'bmc.username = "{USERNAME}"\n'
        'bmc.password = "env:OOB_HOSTILE_PASSWORD"\n'
        f'bmc.ca_file = "{ca_file}"\n'
        f"bmc.timeout = {timeout}\n"
        "\n[hosts.victim]\n"
        'address = "127.0.0.1"\n'
        'bmc.kind = "redfish"\n'
        f'bmc.address = "{server.url}"\n'
    )
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("name", "behaviour", "code", "error"),
    [
        (
            "off-origin target",
            lambda by: Behaviour(reset_target=f"https://127.0.0.2:{by.port}{RESET}"),
            4,
            "bmc_protocol",
        ),
        (
            "off-origin login",
            lambda by: Behaviour(
                sessions_uri=f"@127.0.0.2:{by.port}{SESSIONS}", answers=elsewhere_than_the_standard_login()
            ),
            4,
            "bmc_protocol",
        ),
        (
            "307 on the NMI",
            lambda by: Behaviour(
                answers={("POST", RESET): Answer(307, location=f"https://127.0.0.2:{by.port}{RESET}")}
            ),
            6,
            "outcome_unknown",
        ),
        (
            "garbage after the NMI",
            lambda by: Behaviour(answers={("POST", RESET): Answer(abort="garbage")}),
            6,
            "outcome_unknown",
        ),
        (
            "deep NMI reply",
            lambda by: Behaviour(
                answers={("POST", RESET): Answer(200, body=b"[" * 100_000 + b"]" * 100_000)}
            ),
            0,
            None,
        ),
    ],
)
def test_cli_nmi_against_a_hostile_bmc(
    name: str,
    behaviour: Callable[[HostileServer], Behaviour],
    code: int,
    error: str | None,
    hostile_bmc: Callable[..., HostileServer],
    bystander: HostileServer,
    hostile_ca: Any,
    oob: Callable[..., CliResult],
    tmp_path: Path,
    audit_path: Path,
) -> None:
    bmc = hostile_bmc(behaviour(bystander))
    inventory = _inventory(tmp_path / "inv.toml", bmc, hostile_ca.ca_file)
    result = oob(
        "nmi",
        "victim",
        "-i",
        str(inventory),
        "--yes",
        "--json",
        "--via",
        "redfish",
        env={"OOB_HOSTILE_PASSWORD": PASSWORD},
    )
    assert result.code == code, (name, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert records
    if error is not None:
        assert result.record("victim")["error"] == error
    assert bmc.count("POST", RESET) <= 1
    assert bystander.connections == 0
    assert bmc.sessions_open == 0
    if code in (0, 6):  # the NMI left: the audit log says it was sent or may have been
        events = [json.loads(line)["event"] for line in audit_path.read_text().splitlines()]
        assert events.count("nmi.sending") == 1
        assert ("nmi.sent" in events) is (code == 0)


def test_power_reset_whose_reply_breaks_is_never_repeated_over_ipmi(
    hostile_bmc: Callable[..., HostileServer],
    hostile_ca: Any,
    oob: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    """The double reset: a TLS error while reading the reply was "not sent", so the
    reset went out again over IPMI.  A UDP socket stands where IPMI would go."""
    import socket

    bmc = hostile_bmc(Behaviour(answers={("POST", RESET): Answer(abort="garbage")}))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ipmi:
        ipmi.bind(("127.0.0.1", 0))
        ipmi.setblocking(False)
        inventory = _inventory(tmp_path / "inv.toml", bmc, hostile_ca.ca_file)
        with inventory.open("a") as handle:
            handle.write(f'bmc.methods = ["redfish", "ipmi"]\nbmc.ipmi_port = {ipmi.getsockname()[1]}\n')
        result = oob(
            "power",
            "victim",
            "reset",
            "-i",
            str(inventory),
            "--yes",
            "--json",
            env={"OOB_HOSTILE_PASSWORD": PASSWORD},
        )
        try:
            datagram = ipmi.recv(4096)
        except BlockingIOError:
            datagram = b""
    assert result.code == 6, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.record("victim")["error"] == "outcome_unknown"
    assert bmc.count("POST", RESET) == 1
    assert datagram == b""  # nothing went to IPMI
