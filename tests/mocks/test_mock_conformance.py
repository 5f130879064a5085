"""DMTF's Redfish Service Validator against every flavour, offline, in parallel subprocesses.

Each flavour must pass with no failure except the ones its real capture causes; those are
listed below with the capture that has them, and the set of failures must equal the list
exactly: a new failure is a bug in the mock, a missing one means a vendor quirk was lost.

The schemas are the repository's own copy of the DSP8010 files the validator needs
(tests/data/redfish-schemas, see SOURCES.md there); a test fails when it needs one more.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mocks.flavours import REDFISH_FLAVOURS
from mocks.fleet import Fleet

pytest_plugins = ["mocks.pytest_plugin"]

SCHEMA_DATA = Path(__file__).resolve().parents[1] / "data" / "redfish-schemas"
SCHEMAS = SCHEMA_DATA / "csdl"
#: namespaces of every schema in the DSP8010 bundle (csdl/<name>_v1.xml), copied here or not
DSP8010_NAMESPACES = frozenset((SCHEMA_DATA / "dsp8010-schemas.txt").read_text().split())
VALIDATOR = "import sys; from redfish_service_validator.console_scripts import main; sys.exit(main())"

#: (resource URI, property path, error class) of each failure the imitated capture causes
EXPECTED_FAILURES: dict[str, set[tuple[str, str, str]]] = {
    # capture intel_s2600bpb: Intel BMC 1.93 puts "BootOrder" at the top of the ComputerSystem
    # (ComputerSystem.v1_5_0 has it only under Boot)
    "intel": {("/redfish/v1/Systems/QSBP74100021", "/BootOrder", "Unknown Property Error")},
    # Not listed, because the validator does not check annotation values: Supermicro X12's
    # "GracefulShutdownGracefulRestart" in ResetType@Redfish.AllowableValues passes, and the
    # mock keeps it (see test_mock_resources).
}


@dataclass(frozen=True)
class Failure:
    uri: str
    prop: str
    kind: str
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.uri, self.prop, self.kind)


@dataclass(frozen=True)
class ValidatorRun:
    returncode: int
    failures: tuple[Failure, ...]
    #: the FAIL column of the summary table (None when the table is missing)
    summary_fails: int | None
    #: namespaces of the types and actions whose schema the validator did not find
    unlocated: frozenset[str]
    output: str
    seconds: float


_VALIDATING = re.compile(r"Validating (?P<uri>\S+)\.\.\.\s*$")
_FAIL = re.compile(r" - ERROR - FAIL - (?P<rest>.*)$")
_PROPERTY = re.compile(r"^(?P<prop>/\S*) \((?P<value>.*?)\): (?P<message>.*)$")
_SUMMARY_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNLOCATED = re.compile(
    r"Unable to locate the schema definition for the '#?(?P<name>[^'.]+)[^']*' (?:type|action)"
)


def parse_validator_log(log: str) -> list[Failure]:
    """FAIL entries of the validator's debug log, each tied to the resource being validated."""
    failures: list[Failure] = []
    uri = ""
    for line in log.splitlines():
        if match := _VALIDATING.search(line):
            uri = match["uri"].rstrip("/") or "/"
        elif match := _FAIL.search(line):
            rest = match["rest"]
            prop = _PROPERTY.match(rest)
            message = prop["message"] if prop else rest
            failures.append(
                Failure(uri, prop["prop"] if prop else "", message.split(":", 1)[0].strip(), message)
            )
    return failures


def unlocated_namespaces(log: str) -> frozenset[str]:
    """Namespaces the validator found no schema for (a FAIL, or a WARN that skips the object)."""
    return frozenset(match["name"] for match in _UNLOCATED.finditer(log))


def parse_summary_fails(output: str) -> int | None:
    for line in _ANSI.sub("", output).splitlines():
        if match := _SUMMARY_ROW.match(line.strip()):
            return int(match[3])
    return None


def test_the_log_parser_on_known_lines() -> None:
    log = (
        "2026 - redfish - INFO - Validating /redfish/v1/Systems/1/...\n"
        "2026 - redfish - ERROR - FAIL - /BootOrder ([Array]): Unknown Property Error: The property 'BootOrder' ...\n"
        "2026 - redfish - WARNING - WARN - /IndicatorLED (Off): Deprecated Property Warning: deprecated.\n"
        "2026 - redfish - INFO - Validating /redfish/v1/Nope...\n"
        "2026 - redfish - ERROR - FAIL - Resource Error: Received HTTP 404 when accessing the URI.\n"
    )
    assert [f.key for f in parse_validator_log(log)] == [
        ("/redfish/v1/Systems/1", "/BootOrder", "Unknown Property Error"),
        ("/redfish/v1/Nope", "", "Resource Error"),
    ]
    table = (
        "| PASS | WARN | FAIL | NOT TESTED |\n|  \x1b[32m 70 \x1b[0m |  3  |  \x1b[31m 1 \x1b[0m |  0  |\n"
    )
    assert parse_summary_fails(table) == 1
    unlocated = (
        "WARN - /Oem/Dell ([Object]): Schema Error: Unable to locate the schema definition for the "
        "'DellOem.v1_3_0.DellOemLinks' type.\n"
        "WARN - Schema Error: Unable to locate the schema definition for the '#Chassis.Reset' action.\n"
        "FAIL - /Members/0 ([Link to: /redfish/v1/Chassis/1]): Schema Error: Unable to locate the "
        "schema definition for the 'Chassis.Chassis' type.\n"
    )
    assert unlocated_namespaces(unlocated) == {"DellOem", "Chassis"}
    assert {"Chassis", "ComputerSystem", "Resource"} <= DSP8010_NAMESPACES
    assert "DellOem" not in DSP8010_NAMESPACES


@pytest.fixture(scope="module")
def validator_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ValidatorRun]]:
    assert sorted(SCHEMAS.glob("*.xml")), f"the DMTF schemas are expected at {SCHEMAS}"
    work = tmp_path_factory.mktemp("conformance")
    with Fleet.start(vendors=list(REDFISH_FLAVOURS), workdir=work / "fleet") as fleet:
        env = dict(os.environ)
        # the validator uses verify=False, but nothing it might fetch should trust another CA
        env["REQUESTS_CA_BUNDLE"] = str(fleet.ca_file)
        env.pop("CURL_CA_BUNDLE", None)
        started = time.monotonic()
        procs = {}
        for bmc in fleet.bmcs:
            logdir = work / bmc.vendor
            logdir.mkdir()
            # the password in a 0600 file, never on argv (where a value starting with "-" would
            # also be read as an option)
            config = logdir / "validator.ini"
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as stream:
                stream.write("[Authentication]\npassword = " + bmc.password.replace("%", "%%") + "\n")
            command = [
                sys.executable, "-c", VALIDATOR, "--config", str(config),
                "--rhost", bmc.url, "--user", bmc.username,
                "--authtype", "Session", "--schema_directory", str(SCHEMAS), "--skipschema",
                "--logdir", str(logdir), "--timeout", "20",
            ]  # fmt: skip
            output = (logdir / "stdout.txt").open("w")
            procs[bmc.vendor] = (
                subprocess.Popen(command, cwd=logdir, env=env, stdout=output, stderr=subprocess.STDOUT),
                output,
            )
        runs: dict[str, ValidatorRun] = {}
        for vendor, (proc, output) in procs.items():
            try:
                returncode = proc.wait(timeout=180)
            finally:
                output.close()
            logs = sorted((work / vendor).glob("*/RedfishServiceValidatorDebug_*.log"))
            log = logs[-1].read_text() if logs else ""
            text = (work / vendor / "stdout.txt").read_text()
            runs[vendor] = ValidatorRun(
                returncode,
                tuple(parse_validator_log(log)),
                parse_summary_fails(text),
                unlocated_namespaces(log),
                text,
                time.monotonic() - started,
            )
            assert fleet.bmc(f"{vendor}-1").open_sessions == 0, f"{vendor}: the validator's session leaked"
        yield runs


@pytest.mark.parametrize("vendor", sorted(REDFISH_FLAVOURS))
def test_validator_finds_only_the_capture_s_own_failures(
    vendor: str, validator_runs: dict[str, ValidatorRun]
) -> None:
    run = validator_runs[vendor]
    assert run.summary_fails is not None, f"no summary table in the validator output:\n{run.output[-2000:]}"
    assert run.summary_fails == len(run.failures), "the log and the summary disagree: parser out of date?"
    found = {failure.key for failure in run.failures}
    assert found == EXPECTED_FAILURES.get(vendor, set()), "\n".join(f.message for f in run.failures)
    assert run.returncode == (1 if found else 0)


@pytest.mark.parametrize("vendor", sorted(REDFISH_FLAVOURS))
def test_the_repository_holds_every_dmtf_schema_the_validator_needs(
    vendor: str, validator_runs: dict[str, ValidatorRun]
) -> None:
    # A missing schema is only a WARN for the resource itself (the validator then skips it),
    # so without this check a new resource type in the mock would silently go unvalidated.
    # OEM namespaces (Dell, Hpe, ...) have no DMTF schema; the validator only warns about them.
    missing = sorted(validator_runs[vendor].unlocated & DSP8010_NAMESPACES)
    assert not missing, (
        f"copy {', '.join(f'csdl/{name}_v1.xml' for name in missing)} of DSP8010 2025.4 into {SCHEMAS} "
        "(see SOURCES.md there)"
    )
