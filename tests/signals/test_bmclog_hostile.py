"""A hostile Redfish BMC's LogServices: links off the origin, odd paging, bad times, huge and
control-laden texts.  oob reads what it safely can, says what it could not, and sends nothing
anywhere but the BMC's origin (the bystander on 127.0.0.2 must see nothing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from oob.drivers.redfish import logs
from oob.signals.bmclog import MAX_TEXT, EntryKind, SourceStatus, summary_lines
from tests.hostile.server import SYSTEM, Answer, Behaviour, HostileServer, default_root, default_system

SERVICES = "/redfish/v1/Systems/1/LogServices"
LOG = f"{SERVICES}/Log1"
ENTRIES = f"{LOG}/Entries"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _stamp(minutes_ago: float) -> str:
    return (NOW - dt.timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def _entry(number: int, minutes_ago: float, message: str = "Server reset.", **extra: Any) -> dict[str, Any]:
    return {
        "@odata.id": f"{ENTRIES}/{number}",
        "Id": str(number),
        "Created": _stamp(minutes_ago),
        "Message": message,
        "Severity": "OK",
        **extra,
    }


def _answers(
    pages: dict[str, dict[str, Any]], *, services: list[str] | None = None
) -> dict[tuple[str, str], Answer]:
    answers = {
        ("GET", SYSTEM): Answer(body={**default_system(), "LogServices": {"@odata.id": SERVICES}}),
        ("GET", SERVICES): Answer(
            body={"@odata.id": SERVICES, "Members": [{"@odata.id": uri} for uri in services or [LOG]]}
        ),
        ("GET", LOG): Answer(body={"@odata.id": LOG, "Id": "Log1", "Entries": {"@odata.id": ENTRIES}}),
    }
    for target, body in pages.items():
        answers[("GET", target)] = Answer(body={"@odata.id": ENTRIES, **body})
    return answers


def _read(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any], answers: Any, **window: Any
) -> tuple[Any, HostileServer]:
    server = hostile_bmc(Behaviour(answers=answers))
    with hostile_driver(server) as driver:
        log = driver.read_event_log(**window)
    return log, server


def test_hostile_entries_are_bounded_counted_and_shown_escaped(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    members = [
        _entry(1, 1, "\x1b[2J\x1b]0;pwned\x07NMI Diagnostic Interrupt." + "x" * 50_000, Severity="Critical"),
        _entry(2, 2, "Memory ECC uncorrectable error.", MessageId={"not": "a string"}),
        {**_entry(3, 3), "Created": "2026-11-30T05:00:00"},  # no offset
        {**_entry(4, 4), "Created": ["a", "list"]},
        "not an object",
        _entry(5, 60 * 24 * 30),  # a month ago: outside
    ]
    log, server = _read(
        hostile_bmc,
        hostile_driver,
        _answers({ENTRIES: {"Members": members}}),
        since=NOW - dt.timedelta(hours=1),
    )
    assert (log.seen, log.kept, log.bad_time, log.outside) == (6, 2, 3, 1)
    assert [e.kind for e in log.entries] == [EntryKind.MEMORY, EntryKind.NMI]
    assert log.entries[0].message_id is None
    assert all(len(e.message) <= MAX_TEXT for e in log.entries)
    lines = summary_lines(log)
    assert all("\x1b" not in line and "\x07" not in line for line in lines)
    assert [s.status for s in log.sources] == [SourceStatus.READ]
    assert server.sessions_open == 0


def test_a_next_page_off_the_origin_is_not_followed(
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
) -> None:
    off_origin = f"{bystander.url}{ENTRIES}?$skip=1"
    log, _ = _read(
        hostile_bmc,
        hostile_driver,
        _answers({ENTRIES: {"Members": [_entry(1, 1)], "Members@odata.nextLink": off_origin}}),
    )
    assert log.kept == 1
    (source,) = log.sources
    assert source.status is SourceStatus.TRUNCATED and source.seen == 1
    assert bystander.count() == 0


def test_next_pages_with_other_queries_or_going_back_end_the_log(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    pages = {
        ENTRIES: {"Members": [_entry(1, 1)], "Members@odata.nextLink": f"{ENTRIES}?$skip=1"},
        f"{ENTRIES}?$skip=1": {"Members": [_entry(2, 2)], "Members@odata.nextLink": f"{ENTRIES}?$skip=1"},
    }
    log, server = _read(hostile_bmc, hostile_driver, _answers(pages))
    assert log.kept == 2 and log.sources[0].status is SourceStatus.TRUNCATED
    assert server.count("GET", f"{ENTRIES}?$skip=1") == 1  # the loop is not followed

    for query in (
        "$filter=Severity%20eq%20%27Critical%27",
        "token=abc&$skip=1",
        "$skip=-1",
        "$skip=1&$skip=2&$top=1",
    ):
        pages = {ENTRIES: {"Members": [_entry(1, 1)], "Members@odata.nextLink": f"{ENTRIES}?{query}"}}
        log, server = _read(hostile_bmc, hostile_driver, _answers(pages))
        assert log.sources[0].status is SourceStatus.TRUNCATED, query
        assert server.count("GET", f"{ENTRIES}?{query}") == 0


def test_an_endless_log_stops_at_the_page_bound(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    pages = {}
    for page in range(logs.MAX_PAGES + 5):
        target = ENTRIES if page == 0 else f"{ENTRIES}?$skip={page}"
        pages[target] = {
            "Members": [_entry(page + 1, 1)],
            "Members@odata.nextLink": f"{ENTRIES}?$skip={page + 1}",
        }
    log, server = _read(hostile_bmc, hostile_driver, _answers(pages))
    (source,) = log.sources
    assert source.status is SourceStatus.TRUNCATED and "pages" in (source.detail or "")
    assert source.seen == logs.MAX_PAGES
    assert sum(server.count("GET", t) for t in pages) == logs.MAX_PAGES


def test_a_newest_first_log_stops_at_the_window(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    pages = {
        ENTRIES: {"Members": [_entry(1, 1), _entry(2, 5)], "Members@odata.nextLink": f"{ENTRIES}?$skip=2"},
        f"{ENTRIES}?$skip=2": {
            "Members": [_entry(3, 100), _entry(4, 200)],
            "Members@odata.nextLink": f"{ENTRIES}?$skip=4",
        },
        f"{ENTRIES}?$skip=4": {"Members": [_entry(5, 300)]},
    }
    log, server = _read(hostile_bmc, hostile_driver, _answers(pages), since=NOW - dt.timedelta(minutes=10))
    assert log.kept == 2 and log.sources[0].status is SourceStatus.READ
    assert server.count("GET", f"{ENTRIES}?$skip=4") == 0  # wholly before the window: not asked for


def test_one_unreadable_log_does_not_hide_the_others(
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
) -> None:
    answers = _answers(
        {ENTRIES: {"Members": [_entry(1, 1, "NMI Diagnostic Interrupt.")]}},
        services=[f"{bystander.url}/redfish/v1/Systems/1/LogServices/Evil", f"{SERVICES}/Broken", LOG],
    )
    answers[("GET", f"{SERVICES}/Broken")] = Answer(500, body={"error": {"message": "\x1b[31mboom"}})
    log, _ = _read(hostile_bmc, hostile_driver, answers)
    statuses = [s.status for s in log.sources]
    assert statuses == [SourceStatus.UNREADABLE, SourceStatus.UNREADABLE, SourceStatus.READ]
    assert len(log.nmi_entries) == 1
    assert bystander.count() == 0


def test_an_oldest_first_log_too_long_to_read_is_read_from_its_tail(
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With TopSkipQuery, oob jumps to the last MAX_ENTRIES entries, where the incident is."""
    monkeypatch.setattr(logs, "MAX_ENTRIES", 10)
    root = {**default_root(), "ProtocolFeaturesSupported": {"TopSkipQuery": True}}
    tail = f"{ENTRIES}?$skip=42"  # 50 entries, 2 read, 8 more allowed
    pages = {
        ENTRIES: {
            "Members": [_entry(1, 600), _entry(2, 590)],
            "Members@odata.count": 50,
            "Members@odata.nextLink": f"{ENTRIES}?$skip=2",
        },
        tail: {"Members": [_entry(n, 50 - n) for n in range(43, 51)], "Members@odata.count": 50},
    }
    answers = _answers(pages)
    answers[("GET", "/redfish/v1/")] = Answer(body=root)
    log, server = _read(hostile_bmc, hostile_driver, answers)
    assert server.count("GET", f"{ENTRIES}?$skip=2") == 0
    assert server.count("GET", tail) == 1
    assert log.seen == 10 and log.sources[0].status is SourceStatus.READ
