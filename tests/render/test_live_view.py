"""The live view: one row per host, moved on by events, a bar only for a known total.

The rows are drawn by the same code the running view calls at each refresh
(``LiveView.render``), onto a recording console forced onto a terminal; the renderers are
fed the events the runbooks emit (oob.events.EventKind)."""

from __future__ import annotations

import threading
from io import StringIO

from rich.console import Console

from oob.dump import events as dump_events
from oob.dump.watcher import DumpResult, DumpState
from oob.events import Event, EventKind, Level
from oob.render.crash import CrashConsole
from oob.render.dump import LiveConsole
from oob.render.live import LiveView

HOSTS = ["web01", "web02", "db03", "cache04"]
BAR = "━"


def terminal(width: int = 120) -> Console:
    return Console(file=StringIO(), width=width, force_terminal=True, record=True, color_system="truecolor")


def rows(view: LiveView) -> list[str]:
    console = terminal()
    console.print(view.render())
    return console.export_text().splitlines()


def row_of(view: LiveView, host: str) -> str:
    (line,) = [line for line in rows(view) if line.split()[0] == host]
    return line


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_view(first_state: str = "planning") -> tuple[LiveView, Clock]:
    view = LiveView(terminal(), HOSTS, first_state)
    clock = Clock()
    view.clock = clock
    return view, clock


def progress(host: str, size: int, rate: float, **extra: object) -> Event:
    event = dump_events.Progress(host, "dir", "vmcore", size, rate, "writing").to_event()
    return Event(event.level, event.message, event.host, event.kind, {**event.data, **extra})


def finished(host: str, state: DumpState, size: int = 0) -> Event:
    result = DumpResult(
        host=host, state=state, target="file:///var/crash", message=f"dump {state}", size=size
    )
    return dump_events.Finished(host, result).to_event()


def test_one_row_per_host_through_a_whole_run() -> None:
    view, clock = make_view()
    assert [line.split()[:2] for line in rows(view)] == [[host, "planning"] for host in HOSTS]
    for host in HOSTS:
        view.event(
            Event(Level.INFO, "preflight ok", host, EventKind.PREFLIGHT, {"via": "redfish", "power": "On"})
        )
    assert all(line.split()[1:] == ["ready", "via", "redfish,", "power", "On"] for line in rows(view))
    view.event(Event(Level.INFO, "NMI sent", "web01", EventKind.NMI_SENT, {"via": "redfish"}))
    view.event(Event(Level.INFO, "NMI sent", "web02", EventKind.NMI_SENT, {"via": "ipmi"}))
    view.event(Event(Level.INFO, "NMI sent", "db03", EventKind.NMI_SENT, {"via": "redfish"}))
    view.event(Event(Level.ERROR, "the BMC refused: no Nmi", "cache04", EventKind.REFUSED))
    clock.now += 65
    assert "waiting" in row_of(view, "web01") and "1:05" in row_of(view, "web01")
    assert "for kdump (NMI via ipmi)" in row_of(view, "web02")
    assert "refused" in row_of(view, "cache04") and "the BMC refused: no Nmi" in row_of(view, "cache04")

    view.event(progress("web01", 512 << 20, 80 << 20))
    assert "writing" in row_of(view, "web01")
    assert "512.0 MiB at 80.0 MiB/s" in row_of(view, "web01")
    # makedumpfile's output size is not known: no bar, never one drawn full
    assert BAR not in "\n".join(rows(view))

    stalled = dump_events.Stalled("web02", "dir", "vmcore", 1 << 30, 120.0, "vmcore-incomplete").to_event()
    view.event(stalled)
    assert "stalled" in row_of(view, "web02") and "no growth for 120 s at 1.0 GiB" in row_of(view, "web02")

    view.event(finished("web01", DumpState.COMPLETE, size=3 << 30))
    clock.now += 300
    assert "complete" in row_of(view, "web01") and "3.0 GiB" in row_of(view, "web01")
    assert "1:05" in row_of(view, "web01")  # its clock stopped at the end
    view.event(Event(Level.INFO, "host is back", "web01", EventKind.HOST_BACK))
    assert "host back" in row_of(view, "web01")

    view.event(finished("db03", DumpState.FAILED))
    assert "failed" in row_of(view, "db03")
    # Ctrl-C: what was still going is interrupted; what had ended stays as it ended
    view.event(Event(Level.WARNING, "interrupted: stopped watching", None, EventKind.INTERRUPTED))
    assert "interrupted" in row_of(view, "web02")
    assert "complete" in row_of(view, "web01") and "failed" in row_of(view, "db03")
    assert "refused" in row_of(view, "cache04")
    # a host never has a second row
    assert sorted(line.split()[0] for line in rows(view)) == sorted(HOSTS)


def test_a_bar_only_when_the_total_is_known() -> None:
    view, _ = make_view("waiting")
    view.event(progress("web01", 1 << 30, 0.0, total=4 << 30))
    view.event(progress("web02", 1 << 30, 0.0))
    assert BAR in row_of(view, "web01") and "1.0 GiB of 4.0 GiB" in row_of(view, "web01")
    assert BAR not in row_of(view, "web02") and "1.0 GiB" in row_of(view, "web02")


def test_the_runbooks_last_word_sets_the_end_state() -> None:
    view, _ = make_view()
    view.event(Event(Level.INFO, "NMI sent", "web01", EventKind.NMI_SENT, {"via": "redfish"}))
    view.event(
        Event(Level.ERROR, "no complete dump (timeout)", "web01", EventKind.FAILED, {"status": "timeout"})
    )
    view.event(Event(Level.ERROR, "no answer", "web02", EventKind.NMI_OUTCOME_UNKNOWN))
    view.event(
        Event(Level.ERROR, "no complete dump (unknown)", "web02", EventKind.FAILED, {"status": "unknown"})
    )
    assert row_of(view, "web01").split()[1] == "timeout"
    assert "NMI unknown" in row_of(view, "web02")


def test_events_from_many_threads_keep_one_row_per_host() -> None:
    err = terminal()
    renderer = CrashConsole(HOSTS, out=terminal(), err=err)

    def run(host: str) -> None:
        renderer.event(Event(Level.INFO, "NMI sent", host, EventKind.NMI_SENT, {"via": "redfish"}))
        for size in range(1, 50):
            renderer.event(progress(host, size << 20, 1 << 20))
        renderer.event(finished(host, DumpState.COMPLETE, size=50 << 20))

    with renderer:
        assert renderer._console.view.running
        threads = [threading.Thread(target=run, args=(host,)) for host in HOSTS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        shown = rows(renderer._console.view)
    assert not renderer._console.view.running
    assert sorted(line.split()[0] for line in shown) == sorted(HOSTS)
    assert all(line.split()[1] == "complete" for line in shown)
    # the finished dumps are said once each above the view (copyable lines); progress is not
    text = err.export_text()
    for host in HOSTS:
        assert text.count(f"{host}: dump complete") == 1


def test_without_a_terminal_only_plain_event_lines() -> None:
    err = Console(file=StringIO(), width=120, force_terminal=False, record=True)
    renderer = CrashConsole(HOSTS, out=terminal(), err=err)
    with renderer:
        assert not renderer._console.view.running
        renderer.event(Event(Level.INFO, "NMI sent via redfish", "web01", EventKind.NMI_SENT))
        renderer.event(progress("web01", 1 << 20, 0.0))
        renderer.event(progress("web01", 2 << 20, 0.0))  # within PLAIN_PROGRESS_EVERY: not repeated
        renderer.event(finished("web01", DumpState.COMPLETE, size=2 << 20))
    lines = err.export_text().splitlines()
    assert lines == ["web01: NMI sent via redfish", "web01: vmcore: 1.0 MiB", "web01: dump complete"]


def test_oob_watch_rows_wait_for_kdump_from_the_start() -> None:
    renderer = LiveConsole(HOSTS, out=terminal(), err=terminal())
    clock = Clock()
    renderer.view.clock = clock
    for row in renderer.view.rows.values():
        row.since = clock.now
    clock.now += 42
    shown = rows(renderer.view)
    assert [line.split() for line in shown] == [[host, "waiting", "0:42", "for", "kdump"] for host in HOSTS]
