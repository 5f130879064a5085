"""The crash, drill and watch reports at 80, 120 and 200 columns.

A compact table no wider than the terminal, one line per host, then per host a
``key: value`` block in which the dump's location, the BMC's URL and the panic line each
sit whole on one line of the output — never folded or cut by rich — so they can be copied.
The consoles are the ones a terminal gets (rich, forced onto a terminal, recording).
"""

from __future__ import annotations

import re
from io import StringIO

import pytest
from rich.cells import cell_len
from rich.console import Console

from oob.dump.formats import VmcoreFormat
from oob.dump.panic import PanicInfo
from oob.dump.watcher import DumpResult, DumpState
from oob.errors import DumpTimeout, OutcomeUnknown, SafetyRefusal
from oob.render.crash import CrashConsole
from oob.render.drill import DrillConsole
from oob.render.dump import LiveConsole
from oob.runbook.crash import CrashOutcome, CrashReport, CrashStatus
from oob.runbook.drill import DrillOutcome, DrillReport

WIDTHS = (80, 120, 200)
TARGET = "file:///var/crash"
PANIC = "Kernel panic - not syncing: NMI: Not continuing"
SGR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

#: host → (BMC URL, dump directory): long enough that a table holding them could not fit
HOSTS = {
    "db-primary-01.prod.example.com": (
        "https://bmc-db-primary-01.oob.prod.example.com:8443",
        "db-primary-01.prod.example.com/198.51.100.41-2026-11-30-03:27:29",
    ),
    "web02": ("https://127.0.0.1:40389", "web02/127.0.0.1-2026-11-30-03:27:31"),
    "cache-03": ("https://[fd00:1234::17]:443", "cache-03/2026-11-30-03-27"),
    "batch-04": ("https://127.0.0.1:40391", None),
    "old-05": ("127.0.0.1", None),
}
LZO = VmcoreFormat("kdump-compressed", compression="lzo")


def complete(host: str, directory: str, size: int = 3 << 30) -> DumpResult:
    return DumpResult(
        host=host,
        state=DumpState.COMPLETE,
        target=TARGET,
        message="dump complete",
        directory=directory.rsplit("/", 1)[1],
        path=f"/var/crash/{directory}",
        location=f"{TARGET}/{directory}",
        family="rhel",
        vmcore="vmcore",
        size=size,
        format=LZO,
        panic=PanicInfo(("NMI received for unknown reason 3d on CPU 0.", PANIC), "unknown_nmi"),
        seconds=187.0,
    )


def crash_report() -> CrashReport:
    (h1, h2, h3, h4, h5) = HOSTS
    return CrashReport(
        [
            CrashOutcome(
                h1,
                HOSTS[h1][0],
                CrashStatus.COMPLETE,
                0,
                via="redfish",
                nmi_at="2026-11-30T03:27:29+00:00",
                dump=complete(h1, str(HOSTS[h1][1])),
                host_back=True,
                back_after_s=412.0,
            ),
            CrashOutcome(
                h2,
                HOSTS[h2][0],
                CrashStatus.COMPLETE,
                0,
                via="ipmi",
                fallback_reason="redfish: NMI not supported by this BMC (it offers On, ForceOff)",
                nmi_at="2026-11-30T03:27:31+00:00",
                dump=complete(h2, str(HOSTS[h2][1]), size=512 << 20),
            ),
            CrashOutcome(
                h3,
                HOSTS[h3][0],
                CrashStatus.TIMEOUT,
                5,
                via="redfish",
                nmi_at="2026-11-30T03:27:30+00:00",
                error=DumpTimeout("no complete dump within 900 s", host=h3),
                dump=DumpResult(
                    host=h3,
                    state=DumpState.TIMEOUT,
                    target=TARGET,
                    message="no complete dump within 900 s (last state: writing)",
                    directory="2026-11-30-03-27",
                    path=f"/var/crash/{HOSTS[h3][1]}",
                    location=f"{TARGET}/{HOSTS[h3][1]}",
                    vmcore="vmcore",
                    size=1 << 30,
                ),
                notes=(f"to follow it again: oob watch {h3} --since 2026-11-30T03:27:30+00:00",),
            ),
            CrashOutcome(
                h4,
                HOSTS[h4][0],
                CrashStatus.REFUSED,
                7,
                error=SafetyRefusal(
                    "host does not look healthy: ssh answers; use --force to crash it anyway", host=h4
                ),
            ),
            CrashOutcome(
                h5,
                HOSTS[h5][0],
                CrashStatus.UNKNOWN,
                6,
                via="ipmi",
                nmi_at="2026-11-30T03:27:32+00:00",
                error=OutcomeUnknown("no answer to the NMI request: it may have been applied", host=h5),
            ),
        ]
    )


def recording(width: int) -> tuple[Console, Console]:
    def console() -> Console:
        return Console(
            file=StringIO(), width=width, force_terminal=True, record=True, color_system="truecolor"
        )

    return console(), console()


def table_and_blocks(text: str) -> tuple[list[str], list[list[str]]]:
    """The table's lines, and each block's lines (blocks are separated by blank lines)."""
    chunks = [chunk.splitlines() for chunk in text.strip("\n").split("\n\n")]
    return chunks[0], chunks[1:]


def check_report(text: str, width: int, hosts: list[str], header: str) -> list[list[str]]:
    assert "\x1b" not in text
    table, blocks = table_and_blocks(text)
    assert table[0].startswith(header)
    # one line per host, in order, each host once, nothing wider than the terminal
    assert len(table) == 1 + len(hosts), table
    for line, host in zip(table[1:], hosts, strict=True):
        assert line.startswith(host + " "), (line, host)
    for line in table:
        assert cell_len(line) <= width, line
    # one block per host, titled by it
    assert [block[0].split(":", 1)[0] for block in blocks] == hosts
    for host in hosts:
        assert sum(line.startswith(host + " ") for line in table) == 1
    return blocks


def value(block: list[str], key: str) -> str | None:
    """The value of ``key`` in a block, the whole line after it (None: no such line)."""
    for line in block[1:]:
        if line.startswith(f"  {key}:"):
            return line.split(":", 1)[1].strip()
    return None


@pytest.mark.parametrize("width", WIDTHS)
def test_crash_report_fits_and_keeps_every_token_whole(width: int) -> None:
    out, err = recording(width)
    report = crash_report()
    CrashConsole(list(HOSTS), out=out, err=err).report(report)
    text = out.export_text()
    blocks = check_report(text, width, list(HOSTS), "HOST ")
    by_host = {block[0].split(":", 1)[0]: block for block in blocks}
    for outcome in report.outcomes:
        block = by_host[outcome.host]
        assert value(block, "bmc") == outcome.bmc
        if outcome.dump is not None:
            assert value(block, "dump") == f"{outcome.dump.location}/vmcore"
        if outcome.status == CrashStatus.COMPLETE:
            assert value(block, "panic") == PANIC
            assert value(block, "nmi at") == outcome.nmi_at
        for note in outcome.notes:
            assert value(block, "note") == note
    assert value(by_host["batch-04"], "why") == (
        "host does not look healthy: ssh answers; use --force to crash it anyway"
    )
    assert value(by_host["web02"], "fallback") == (
        "redfish: NMI not supported by this BMC (it offers On, ForceOff)"
    )
    assert by_host["web02"][0] == "web02: complete, NMI via ipmi"
    # every URL and path of the report is whole on one line of the output
    for url, directory in HOSTS.values():
        assert any(line.endswith(f" {url}") for line in text.splitlines()), url
        if directory:
            assert any(line.endswith(f"{TARGET}/{directory}/vmcore") for line in text.splitlines())


def test_a_wide_terminal_shows_more_columns_than_a_narrow_one() -> None:
    headers = {}
    for width in WIDTHS:
        out, err = recording(width)
        CrashConsole(list(HOSTS), out=out, err=err).report(crash_report())
        headers[width] = out.export_text().splitlines()[0].split()
    assert headers[80][:2] == ["HOST", "STATUS"]
    assert len(headers[80]) < len(headers[200])
    assert "PANIC" not in headers[80] and "FORMAT" in headers[200]


@pytest.mark.parametrize("width", WIDTHS)
def test_drill_report_fits(width: int) -> None:
    out, err = recording(width)
    report = DrillReport([DrillOutcome(outcome, "nmi") for outcome in crash_report().outcomes])
    DrillConsole(list(HOSTS), out=out, err=err).report(report)
    blocks = check_report(out.export_text(), width, list(HOSTS), "HOST ")
    first = blocks[0]
    assert value(first, "method") == "nmi"
    assert value(first, "dump") == f"{TARGET}/{HOSTS['db-primary-01.prod.example.com'][1]}/vmcore"
    assert value(first, "panic") == PANIC


@pytest.mark.parametrize("width", WIDTHS)
def test_watch_report_fits(width: int) -> None:
    out, err = recording(width)
    results = [o.dump for o in crash_report().outcomes if o.dump is not None]
    results.append(
        DumpResult(
            host="old-05",
            state=DumpState.FAILED,
            target=TARGET,
            message="kdump says the dump failed",
            details=("kdump: saving vmcore failed", "kdump: dump target /var/crash is full"),
        )
    )
    LiveConsole([r.host for r in results], out=out, err=err).report(results)
    hosts = [r.host for r in results]
    blocks = check_report(out.export_text(), width, hosts, "HOST ")
    for block, result in zip(blocks, results, strict=True):
        if result.location:
            assert value(block, "dump") == f"{result.location}/vmcore"
    assert value(blocks[0], "panic") == PANIC
    assert [line.strip() for line in blocks[-1] if line.startswith("  kdump:")] == [
        "kdump: kdump: saving vmcore failed",
        "kdump: kdump: dump target /var/crash is full",
    ]
