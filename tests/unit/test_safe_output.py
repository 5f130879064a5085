"""Nothing a BMC, a host or a dump target wrote reaches the terminal raw.

``printable`` escapes control and format characters visibly; every console renderer, the
error line of ``handle_errors`` and the log lines show outside text through it and never
read it as rich markup; JSON lines carry it exactly (``json.dumps`` escapes controls).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from oob.cli.common import handle_errors, setup_logging
from oob.dump.panic import PanicInfo
from oob.dump.watcher import DumpResult, DumpState
from oob.errors import BmcRefused, DumpTimeout, OobError
from oob.events import Event
from oob.preflight.checks import CheckResult
from oob.render.console import ConsoleRenderer, print_plain
from oob.render.crash import CrashConsole, CrashJson
from oob.render.drill import DrillConsole, DrillJson
from oob.render.dump import JsonLines, LiveConsole
from oob.render.jsonl import JsonRenderer, json_line
from oob.render.preflight import PreflightConsole, PreflightJson
from oob.render.text import cell, confirmation_lines, plain_line, safe, safe_lines
from oob.runbook.common import Outcome
from oob.runbook.crash import CrashOutcome, CrashReport
from oob.runbook.drill import DrillOutcome, DrillReport
from oob.runbook.preflight import HostReadiness, PreflightReport
from oob.safetext import is_printable, printable

# What a crashed host, a dump server or a BMC may hand us.
TITLE = "\x1b]0;title\x07"  # OSC: sets the terminal window title
CLEAR = "\x1b[2J"  # CSI: clears the screen
DIRECTORY = f"127.0.0.1-kdump-test-{TITLE}{CLEAR}\rX"
PANIC = f"Kernel panic - not syncing: NMI: Not continuing {TITLE}\x9b6n\x1b[1A"
BMC_MESSAGE = f"{CLEAR}[bold red]pwned[/] [link=https://evil.example]click[/link] :skull:\r\x07"
HOST = f"web01{TITLE}"
LOCATION = f"file:///srv/crash/{DIRECTORY}"

#: bytes that must never leave for the terminal from outside text
RAW = ("\x1b", "\x9b", "\r", "\x07")
#: the SGR sequences rich itself writes for our styles on a terminal
SGR = re.compile(r"\x1b\[[0-9;]*m")


def assert_clean(text: str) -> None:
    for char in RAW:
        assert char not in text, f"raw {char!r} in {text!r}"
    assert re.search("[\ud800-\udfff\u202a-\u202e\u2066-\u2069]", text) is None, text


def assert_clean_terminal(text: str) -> None:
    """Output of a console forced onto a terminal: only rich's own SGR sequences."""
    assert "\x1b" in text, "rich styled nothing: the terminal was not forced"
    assert_clean(SGR.sub("", text))


# ---------------------------------------------------------------------------------------------
# printable


@pytest.mark.parametrize("code", [*range(0x20), 0x7F, *range(0x80, 0xA0)])
def test_printable_escapes_every_c0_del_and_c1(code: int) -> None:
    shown = printable(f"a{chr(code)}b")
    assert shown == f"a\\x{code:02x}b"
    assert is_printable(shown)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (TITLE, "\\x1b]0;title\\x07"),
        (CLEAR, "\\x1b[2J"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x9b2J", "\\x9b2J"),
        ("done\rfake", "done\\x0dfake"),
        ("tab\there", "tab\\x09here"),
    ],
)
def test_printable_escapes_escape_sequences_visibly(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@pytest.mark.parametrize(
    "char",
    [
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",
        "\u200e",
        "\u200f",
        "\u061c",
        "\u200b",
        "\u200d",
        "\u2060",
        "\ufeff",
        "\u2028",
        "\u2029",
    ],
)
def test_printable_escapes_bidi_and_invisible_format_characters(char: str) -> None:
    assert printable(f"abc{char}def") == f"abc\\u{ord(char):04x}def"


def test_printable_escapes_tag_characters_unambiguously() -> None:
    assert printable("a\U000e0041b") == "a\\U000e0041b"


def test_printable_escapes_lone_surrogates_from_undecodable_bytes() -> None:
    name = b"web\x9b\xff01".decode("utf-8", "surrogateescape")
    shown = printable(name)
    assert shown == "web\\udc9b\\udcff01"
    shown.encode("utf-8")  # a terminal write can no longer fail on it


def test_printable_leaves_rich_markup_and_ordinary_unicode_alone() -> None:
    text = "[bold red]x[/] [link=https://evil.example]y[/link] :skull: é 日本 🙂 \\x1b"
    assert printable(text) == text
    assert is_printable(text)


def test_printable_keep_newlines_keeps_only_newlines() -> None:
    assert printable("one\ntwo\r\x1b[2J", keep_newlines=True) == "one\ntwo\\x0d\\x1b[2J"
    assert printable("one\ntwo") == "one\\x0atwo"


def test_printable_takes_any_object() -> None:
    assert printable(OobError(f"bad {CLEAR}", host=HOST)) == "web01\\x1b]0;title\\x07: bad \\x1b[2J"


@given(st.text())
def test_printable_output_is_always_safe(text: str) -> None:
    shown = printable(text)
    assert is_printable(shown)
    assert_clean(shown)
    assert "\n" not in shown


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))))
def test_printable_does_not_touch_ordinary_text(text: str) -> None:
    assert printable(text) == text


# ---------------------------------------------------------------------------------------------
# the building blocks renderers use


def render(renderable: Any, terminal: bool = False) -> str:
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    console = Console(
        file=buffer,
        force_terminal=terminal,
        color_system="truecolor" if terminal else None,
        highlight=False,
        markup=False,
        emoji=False,
        width=300,
    )
    console.print(renderable)
    return buffer.getvalue()


def test_safe_text_is_never_markup() -> None:
    shown = render(safe(BMC_MESSAGE, "bold"))
    assert_clean(shown)
    assert "[bold red]pwned[/] [link=https://evil.example]click[/link] :skull:" in shown
    assert "\\x1b[2J" in shown and "\\x0d\\x07" in shown


def test_safe_text_on_a_forced_terminal_keeps_only_our_styles() -> None:
    from rich.table import Table

    table = Table()
    table.add_column("HOST")
    table.add_column("WHY")
    table.add_row(cell(HOST), safe_lines([LOCATION, PANIC], "red"))
    shown = render(table, terminal=True)
    assert_clean_terminal(shown)
    assert TITLE not in shown and CLEAR not in shown
    assert "web01\\x1b]0;title\\x07" in shown
    assert "\\x9b6n\\x1b[1A" in shown
    # no hyperlink escape (OSC 8) from a [link=...] in a BMC's words
    assert "\x1b]8;" not in render(safe(BMC_MESSAGE), terminal=True)


def test_cell_shows_a_dash_for_nothing() -> None:
    assert render(cell(None)).strip() == "-"
    assert render(cell("")).strip() == "-"
    assert render(cell(0)).strip() == "0"


def test_safe_lines_escapes_each_line_on_its_own() -> None:
    shown = render(safe_lines(["first", f"second\nfake: line{CLEAR}"]))
    assert shown.splitlines() == ["first", "second\\x0afake: line\\x1b[2J"]


def test_plain_line_and_confirmation_lines_are_escaped() -> None:
    assert plain_line(f"{HOST}\r") == "web01\\x1b]0;title\\x07\\x0d"
    lines = confirmation_lines([f"{HOST:<20} BMC 192.0.2.10  via redfish  power On{CLEAR}", "plain"])
    for line in lines:
        assert_clean(line)
    assert lines[1] == "plain"
    assert lines[0].endswith("power On\\x1b[2J")


# ---------------------------------------------------------------------------------------------
# each renderer, fed hostile strings


@pytest.fixture
def hostile_outcomes() -> list[Outcome]:
    return [
        Outcome(
            HOST,
            "nmi",
            "failed",
            4,
            via="redfish",
            error=BmcRefused(f"the BMC refused {CLEAR}", bmc_message=BMC_MESSAGE),
            fallback_reason=f"redfish said {TITLE}",
        ),
        Outcome(
            "web02",
            "info",
            "ok",
            via="ipmi",
            detail={"vendor": f"[bold]HPE{CLEAR}", "firmware": "2.72\r", "bmc_message": BMC_MESSAGE},
        ),
    ]


def hostile_events() -> list[Event]:
    return [
        Event("warning", f"BMC says {BMC_MESSAGE}", HOST, "retry"),
        Event("error", f"cannot {CLEAR} log in", HOST, "nmi_outcome_unknown"),
        Event(
            "info",
            f"dump directory appeared: {LOCATION} (rhel layout)",
            HOST,
            "dump_dir_appeared",
            {"directory": DIRECTORY, "location": LOCATION, "target": "file:///srv/crash", "family": "rhel"},
        ),
        Event(
            "progress",
            f"vmcore{TITLE}: 64 KiB",
            HOST,
            "dump_progress",
            {
                "directory": DIRECTORY,
                "file": f"vmcore{TITLE}",
                "bytes": 65536,
                "rate": 0.0,
                "state": "writing",
            },
        ),
        Event(
            "warning",
            f"new dump directory {DIRECTORY} on file:///srv/crash names x; ignored",
            None,
            "dump_unattributed",
            {"directory": DIRECTORY},
        ),
        Event(
            "info",
            f"dump complete: {LOCATION}",
            HOST,
            "dump_complete",
            {"directory": DIRECTORY, "location": LOCATION, "panic": [f"NMI received {CLEAR}", PANIC]},
        ),
    ]


def dump_result(host: str = HOST) -> DumpResult:
    return DumpResult(
        host=host,
        state=DumpState.COMPLETE,
        target="file:///srv/crash",
        message=f"complete {CLEAR}",
        directory=DIRECTORY,
        path=f"/srv/crash/{DIRECTORY}",
        location=LOCATION,
        family="rhel",
        vmcore=f"vmcore{TITLE}",
        size=1 << 20,
        panic=PanicInfo((PANIC,), "unknown_nmi"),
        seconds=90.0,
    )


def failed_result() -> DumpResult:
    return DumpResult(
        host=HOST,
        state=DumpState.FAILED,
        target="file:///srv/crash",
        message=f"kdump says: {BMC_MESSAGE}",
        directory=DIRECTORY,
    )


def crash_report() -> CrashReport:
    return CrashReport(
        [
            CrashOutcome(
                HOST,
                f"192.0.2.10{TITLE}",
                "complete",
                0,
                via="redfish",
                nmi_at="2026-11-30T03:00:00Z",
                dump=dump_result(),
                notes=(f"note {CLEAR}",),
            ),
            CrashOutcome(
                "web02",
                "192.0.2.11",
                "failed",
                5,
                error=DumpTimeout(f"no dump {BMC_MESSAGE}"),
                dump=failed_result(),
            ),
        ]
    )


def preflight_report() -> PreflightReport:
    checks = (
        CheckResult("reachable", "bmc", "ok", "answers"),
        CheckResult("nmi", "bmc", "warn", f"BMC says {BMC_MESSAGE}"),
        CheckResult("crashkernel", "host", "fail", f"cmdline has crashkernel={CLEAR}auto\r", needs_root=True),
        CheckResult("service", "host", f"odd{TITLE}", "what"),
    )
    return PreflightReport([HostReadiness(HOST, "192.0.2.10", checks)])


def run_console(capsys: pytest.CaptureFixture[str], draw: Callable[[], None]) -> tuple[str, str]:
    draw()
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.fixture(params=[False, True], ids=["no-terminal", "forced-terminal"])
def terminal(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Every console test runs twice: piped (no styling) and with rich forced onto a terminal."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    if request.param:
        monkeypatch.setenv("FORCE_COLOR", "1")
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
        monkeypatch.setenv("TTY_COMPATIBLE", "0")
    return bool(request.param)


def check(text: str, terminal: bool) -> None:
    if terminal:
        assert_clean_terminal(text)
    else:
        assert_clean(text)
    assert TITLE not in text and CLEAR not in text


def test_console_renderer(
    capsys: pytest.CaptureFixture[str], terminal: bool, hostile_outcomes: list[Outcome]
) -> None:
    def draw() -> None:
        renderer = ConsoleRenderer(columns=[("vendor", "VENDOR"), ("firmware", "FIRMWARE")])
        for event in hostile_events():
            renderer.event(event)
        renderer.message(f"about to crash {HOST}\nsecond line {CLEAR}")
        renderer.report(hostile_outcomes)

    out, err = run_console(capsys, draw)
    check(out, terminal)
    check(err, terminal)
    plain_err, plain_out = SGR.sub("", err), SGR.sub("", out)
    assert (
        "web01\\x1b]0;title\\x07: warning: BMC says \\x1b[2J[bold red]pwned[/] [link=https://evil.example]click"
        in plain_err
    )
    assert ":skull:" in plain_err  # no emoji either
    assert "second line \\x1b[2J" in plain_err
    assert "[bold]HPE\\x1b[2J" in plain_out and "2.72\\x0d" in plain_out
    assert "BMC says: \\x1b[2J[bold red]pwned[/]" in plain_out
    assert "fallback because redfish said \\x1b]0;title\\x07" in plain_out


def test_print_plain(capsys: pytest.CaptureFixture[str]) -> None:
    print_plain(f"{PANIC}\nnext")
    out = capsys.readouterr().out
    assert_clean(out)
    assert out.splitlines()[1] == "next"


def test_live_console_plain_lines_and_summary(capsys: pytest.CaptureFixture[str], terminal: bool) -> None:
    def draw() -> None:
        renderer = LiveConsole([HOST])
        with renderer:
            for event in hostile_events():
                renderer.event(event)
        renderer.report([dump_result(), failed_result()])

    out, err = run_console(capsys, draw)
    check(out, terminal)
    if terminal:
        # the live progress display moves the cursor itself (rich's \r and cursor codes);
        # none of the host's sequences may be among them
        assert "\x07" not in err and "\x9b" not in err and "\x1b]" not in err and "\x1b[1A\x1b[2J" not in err
        assert CLEAR not in err and TITLE not in err
    else:
        check(err, terminal)
    plain_err, plain_out = SGR.sub("", err), SGR.sub("", out)
    assert (
        "dump directory appeared: file:///srv/crash/127.0.0.1-kdump-test-\\x1b]0;title\\x07\\x1b[2J\\x0dX"
        in plain_err
    )
    assert "Kernel panic - not syncing: NMI: Not continuing \\x1b]0;title\\x07\\x9b6n\\x1b[1A" in plain_err
    assert "kdump says: \\x1b[2J[bold red]pwned[/]" in plain_out
    assert "vmcore\\x1b]0;title\\x07" in plain_out
    assert "web01\\x1b]0;title\\x07" in plain_out
    if terminal:
        assert "web01\\x1b]0;title\\x07" in plain_err  # the progress bar's host column


def test_crash_console(capsys: pytest.CaptureFixture[str], terminal: bool) -> None:
    def draw() -> None:
        renderer = CrashConsole([HOST, "web02"])
        with renderer:
            renderer.message(f"mock fleet {BMC_MESSAGE}")
            renderer.event(Event("info", "NMI sent", HOST, "nmi_sent"))
            for event in hostile_events():
                renderer.event(event)
        renderer.report(crash_report())

    out, err = run_console(capsys, draw)
    check(out, terminal)
    assert TITLE not in err and CLEAR not in err and "\x07" not in err and "\x9b" not in err
    plain_out = SGR.sub("", out)
    assert "192.0.2.10\\x1b]0;title\\x07" in plain_out
    assert LOCATION.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\r", "\\x0d") in plain_out
    assert "NMI: Not continuing \\x1b]0;title\\x07\\x9b6n\\x1b[1A; note \\x1b[2J" in plain_out
    assert "no dump \\x1b[2J[bold red]pwned[/]" in plain_out
    assert "mock fleet \\x1b[2J[bold red]pwned[/]" in SGR.sub("", err)


def test_drill_console(capsys: pytest.CaptureFixture[str], terminal: bool) -> None:
    report = DrillReport([DrillOutcome(outcome, "sysrq") for outcome in crash_report().outcomes])

    def draw() -> None:
        renderer = DrillConsole([HOST, "web02"])
        with renderer:
            renderer.event(Event("warning", f"not ready: {BMC_MESSAGE}", HOST, "readiness", {"ready": False}))
            renderer.event(Event("info", "sysrq sent", HOST, "sysrq_sent"))
            for event in hostile_events():
                renderer.event(event)
        renderer.report(report)

    out, err = run_console(capsys, draw)
    check(out, terminal)
    assert TITLE not in err and CLEAR not in err and "\x07" not in err and "\x9b" not in err
    assert "web01\\x1b]0;title\\x07: not ready: \\x1b[2J[bold red]pwned[/]" in SGR.sub("", err)
    assert "NMI: Not continuing \\x1b]0;title\\x07\\x9b6n" in SGR.sub("", out)


def test_preflight_console(capsys: pytest.CaptureFixture[str], terminal: bool) -> None:
    def draw() -> None:
        renderer = PreflightConsole()
        renderer.event(Event("warning", f"ssh: {BMC_MESSAGE}", HOST, "check"))
        renderer.report(preflight_report())

    out, err = run_console(capsys, draw)
    check(out, terminal)
    check(err, terminal)
    plain_out = SGR.sub("", out)
    assert "BMC says \\x1b[2J[bold red]pwned[/]" in plain_out
    assert "crashkernel=\\x1b[2Jauto\\x0d [needs root]" in plain_out
    assert "odd\\x1b]0;title\\x07" in plain_out
    assert "web01\\x1b]0;title\\x07: needed root for crashkernel" in plain_out


# ---------------------------------------------------------------------------------------------
# JSON output: parseable, faithful, and its stderr lines escaped


def json_records(out: str) -> list[dict[str, Any]]:
    lines = out.splitlines()
    for line in lines:
        assert_clean(line)
        assert line.isascii()
    return [json.loads(line) for line in lines]


def test_json_line_round_trips_every_hostile_string() -> None:
    data = {
        "directory": DIRECTORY,
        "panic": [PANIC],
        "bmc_message": BMC_MESSAGE,
        "name": b"x\xff".decode("utf-8", "surrogateescape") + "\u202e",
    }
    line = json_line(data)
    assert "\n" not in line and line.isascii()
    assert json.loads(line) == data


@given(st.dictionaries(st.text(), st.text()))
def test_json_line_is_one_faithful_line(data: dict[str, str]) -> None:
    line = json_line(data)
    assert "\n" not in line and "\x1b" not in line and "\r" not in line
    assert json.loads(line) == data


def test_json_renderer(capsys: pytest.CaptureFixture[str], hostile_outcomes: list[Outcome]) -> None:
    renderer = JsonRenderer()
    for event in hostile_events():
        renderer.event(event)
    renderer.message(f"hello {CLEAR}")
    renderer.report(hostile_outcomes)
    captured = capsys.readouterr()
    assert_clean(captured.err)
    assert "web01\\x1b]0;title\\x07: warning: BMC says \\x1b[2J" in captured.err
    records = json_records(captured.out)
    assert records[0]["host"] == HOST and records[0]["bmc_message"] == BMC_MESSAGE
    assert records[0]["fallback_reason"] == f"redfish said {TITLE}"
    assert records[1]["firmware"] == "2.72\r"


def test_json_lines_for_dump_events(capsys: pytest.CaptureFixture[str]) -> None:
    renderer = JsonLines()
    for event in hostile_events():
        renderer.event(event)
    captured = capsys.readouterr()
    assert_clean(captured.err)
    assert "warning: new dump directory 127.0.0.1-kdump-test-\\x1b]0;title\\x07" in captured.err
    records = json_records(captured.out)
    appeared = next(r for r in records if r["event"] == "dump_dir_appeared")
    assert appeared["directory"] == DIRECTORY and appeared["host"] == HOST
    complete = next(r for r in records if r["event"] == "dump_complete")
    assert complete["panic"][-1] == PANIC


def test_crash_and_drill_json(capsys: pytest.CaptureFixture[str]) -> None:
    CrashJson().report(crash_report())
    renderer = DrillJson()
    renderer.message(f"fleet {BMC_MESSAGE}")
    renderer.report(DrillReport([DrillOutcome(o, "sysrq") for o in crash_report().outcomes]))
    captured = capsys.readouterr()
    assert_clean(captured.err)
    records = json_records(captured.out)
    assert records[0]["dump"]["directory"] == DIRECTORY and records[0]["dump"]["panic"] == [PANIC]
    assert records[0]["bmc"] == f"192.0.2.10{TITLE}"
    assert records[2]["dump"]["location"] == LOCATION and records[2]["drill"] == "pass"


def test_preflight_json(capsys: pytest.CaptureFixture[str]) -> None:
    renderer = PreflightJson()
    host = preflight_report().hosts[0]
    renderer.event(Event("info", "ready?", HOST, "readiness", host.to_dict()))
    renderer.event(Event("warning", f"ssh: {BMC_MESSAGE}", HOST, "check"))
    captured = capsys.readouterr()
    assert_clean(captured.err)
    (record,) = json_records(captured.out)
    assert record["host"] == HOST
    assert record["checks"][2]["reason"] == f"cmdline has crashkernel={CLEAR}auto\r"


# ---------------------------------------------------------------------------------------------
# the error line and log records


def test_handle_errors_escapes_the_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exit_info, handle_errors(verbose=False):
        raise BmcRefused(f"refused {CLEAR}", host=HOST, bmc_message=BMC_MESSAGE)
    assert exit_info.value.exit_code == BmcRefused.exit_code
    err = capsys.readouterr().err
    assert_clean(err)
    assert err == (
        "oob: error: web01\\x1b]0;title\\x07: refused \\x1b[2J (BMC says: \\x1b[2J[bold red]pwned[/] "
        "[link=https://evil.example]click[/link] :skull:\\x0d\\x07)\n"
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_handle_errors_escapes_internal_errors_and_tracebacks(
    capsys: pytest.CaptureFixture[str], verbose: bool
) -> None:
    with pytest.raises(typer.Exit) as exit_info, handle_errors(verbose=verbose):
        raise ValueError(f"bad shape {TITLE}")
    assert exit_info.value.exit_code == 1
    err = capsys.readouterr().err
    assert_clean(err)
    assert err.splitlines()[-1].startswith("oob: internal error: ValueError: bad shape \\x1b]0;title\\x07")
    assert ("Traceback" in err) is verbose


@pytest.fixture
def oob_logging() -> Iterator[None]:
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "oob_terminal_safe", False)]:
        root.removeHandler(handler)


@pytest.mark.usefixtures("oob_logging")
def test_log_records_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(verbose=True)
    setup_logging(verbose=True)  # a second call adds no second handler
    log = logging.getLogger("oob.drivers.test")
    log.warning("BMC %s answered %r", HOST, BMC_MESSAGE)
    try:
        raise RuntimeError(f"boom {CLEAR}")
    except RuntimeError:
        log.exception("host said %s", PANIC)
    err = capsys.readouterr().err
    assert_clean(err)
    lines = err.splitlines()
    assert lines[0].startswith("oob.drivers.test: BMC web01\\x1b]0;title\\x07 answered ")
    assert lines[1].startswith("oob.drivers.test: host said Kernel panic")
    assert "Traceback (most recent call last):" in lines  # a traceback keeps its lines
    assert lines[-1] == "RuntimeError: boom \\x1b[2J"
