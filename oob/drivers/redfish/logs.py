"""Reading a Redfish service's LogServices (iLO IML/IEL, iDRAC Sel/Lclog, OpenBMC EventLog...).

Everything goes through the driver's :class:`~oob.drivers.redfish.transport.RedfishTransport`:
one origin, every link checked by ``safe_path``, bodies bounded.  On top of that:

* **Bounds.**  At most :data:`MAX_SERVICES` logs per LogServices collection,
  :data:`MAX_PAGES` pages and :data:`MAX_ENTRIES` entries per log, :data:`MAX_FETCHES`
  entries fetched one by one (a collection listing bare links), and a total time budget.
  A log cut short is ``truncated``, never silently complete.
* **Paging.**  ``Members@odata.nextLink`` is followed only when its path passes
  ``safe_path`` and its query is nothing but ``$skip``/``$top`` numbers, which oob
  rebuilds itself; a link that does not move forward ends the log (``truncated``).
* **Order.**  Services differ (iLO and iDRAC list newest first, bmcweb oldest first) and
  say nothing about it, so oob never relies on it: it watches the entries' times, and
  only on a log seen to be newest first does it stop at the first page that lies wholly
  before the window.  A log seen to be oldest first and longer than the bounds is read
  from its tail with ``$skip`` when the service root says ``TopSkipQuery``.
* **Hostile entries.**  Each entry is checked for shape; strings are bounded
  (:func:`oob.signals.bmclog.bounded_text`); an unparseable ``Created`` is skipped and
  counted.

Logs that are not event logs (BMC journal, POST codes, dumps, host console) are left out
by their Id.  Nothing here raises for one bad log: it is reported ``unreadable`` with the
reason, and the other logs are still read.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from oob.drivers.redfish.transport import RedfishTransport
from oob.errors import BmcProtocolError, OobError
from oob.signals.bmclog import (
    LogCollector,
    LogEntry,
    SourceStatus,
    bounded_text,
    classify,
    parse_severity,
    parse_time,
)

#: LogServices read per collection
MAX_SERVICES = 8
#: pages followed per log
MAX_PAGES = 20
#: entries read per log
MAX_ENTRIES = 2000
#: entries fetched one by one, per log, when a collection lists bare links
MAX_FETCHES = 50
#: seconds all logs of one BMC may take together
TIME_BUDGET = 60.0

#: LogService Ids that are not event logs (case-insensitive): BMC journal, POST codes,
#: dumps, host console, audit and security logs
SKIPPED_IDS = frozenset(
    {"journal", "postcodes", "hostlogger", "dump", "crashdump", "faultlog", "sl", "auditlog", "audit"}
)


@dataclass
class _Budget:
    deadline: float

    def left(self) -> bool:
        return time.monotonic() < self.deadline


class LogReader:
    """Reads every LogService linked from the resources it is given into a collector."""

    def __init__(
        self, transport: RedfishTransport, collector: LogCollector, *, budget: float = TIME_BUDGET
    ) -> None:
        self._transport = transport
        self._collector = collector
        self._budget = _Budget(time.monotonic() + budget)
        features = transport.root.get("ProtocolFeaturesSupported")
        self._top_skip = isinstance(features, dict) and features.get("TopSkipQuery") is True
        self._done: set[str] = set()

    def read_owner(self, resource: dict[str, Any], owner: str) -> bool:
        """Every log of a system or manager; False when it links no LogServices."""
        link = resource.get("LogServices")
        uri = link.get("@odata.id") if isinstance(link, dict) else None
        if uri is None:
            return False
        try:
            collection = self._transport.get(uri, field=f"{owner} LogServices").body
        except OobError as exc:
            self._collector.source(f"{owner} LogServices", SourceStatus.UNREADABLE, detail=exc.message)
            return True
        members = collection.get("Members") if isinstance(collection, dict) else None
        if not isinstance(members, list):
            self._collector.source(
                f"{owner} LogServices", SourceStatus.UNREADABLE, detail="not a collection (no Members list)"
            )
            return True
        for index, member in enumerate(members):
            if index >= MAX_SERVICES:
                self._collector.source(
                    f"{owner} LogServices",
                    SourceStatus.TRUNCATED,
                    detail=f"{len(members) - MAX_SERVICES} more logs not read (oob reads {MAX_SERVICES})",
                )
                break
            service_uri = member.get("@odata.id") if isinstance(member, dict) else None
            if not isinstance(service_uri, str):
                self._collector.source(
                    f"{owner} LogServices[{index}]", SourceStatus.UNREADABLE, detail="not a link"
                )
                continue
            self._read_service(service_uri, owner)
        return True

    # -- one log ------------------------------------------------------------------------------

    def _read_service(self, uri: str, owner: str) -> None:
        name = f"{owner} {bounded_text(uri.rstrip('/').rsplit('/', 1)[-1], 40) or '?'}"
        if uri.rstrip("/").lower() in self._done:
            return
        self._done.add(uri.rstrip("/").lower())
        if uri.rstrip("/").rsplit("/", 1)[-1].lower() in SKIPPED_IDS:
            return
        if not self._budget.left():
            self._collector.source(name, SourceStatus.TRUNCATED, detail="time budget spent before this log")
            return
        try:
            service = self._transport.get(uri, field=f"{name} LogService").body
            if not isinstance(service, dict):
                raise BmcProtocolError("the LogService is not a JSON object")
            if service.get("ServiceEnabled") is False:
                self._collector.source(name, SourceStatus.NOT_OFFERED, detail="disabled on the BMC")
                return
            entries = service.get("Entries")
            entries_uri = entries.get("@odata.id") if isinstance(entries, dict) else None
            if entries_uri is None:
                self._collector.source(name, SourceStatus.NOT_OFFERED, detail="the log links no Entries")
                return
            status, seen, detail = self._read_entries(entries_uri, name)
        except OobError as exc:
            self._collector.source(name, SourceStatus.UNREADABLE, detail=exc.message)
            return
        self._collector.source(name, status, seen=seen, detail=detail)

    def _read_entries(self, uri: str, name: str) -> tuple[SourceStatus, int, str | None]:
        source = name.rsplit(" ", 1)[-1]
        since = self._collector.window.since
        seen = 0
        fetches = 0
        times: list[Any] = []
        paging: str | None = None
        last_skip = -1
        jumped = False
        for page_number in range(MAX_PAGES):
            if not self._budget.left():
                return SourceStatus.TRUNCATED, seen, "time budget spent"
            try:
                page = self._transport.get(uri, field=f"{name} Entries", paging=paging).body
            except OobError as exc:
                if page_number == 0:
                    raise
                # what the earlier pages gave stands; the link (off the origin...) is not followed
                return SourceStatus.TRUNCATED, seen, exc.message
            if not isinstance(page, dict) or not isinstance(page.get("Members"), list):
                raise BmcProtocolError("the Entries collection has no Members list")
            page_times = []
            for member in page["Members"]:
                if seen >= MAX_ENTRIES:
                    return SourceStatus.TRUNCATED, seen, f"more than {MAX_ENTRIES} entries"
                if isinstance(member, dict) and set(member) <= {"@odata.id"}:
                    if fetches >= MAX_FETCHES:
                        return (
                            SourceStatus.TRUNCATED,
                            seen,
                            f"more than {MAX_FETCHES} entries listed as links",
                        )
                    fetches += 1
                    try:
                        member = self._transport.get(member.get("@odata.id"), field=f"{name} entry").body
                    except OobError as exc:
                        return SourceStatus.TRUNCATED, seen, exc.message
                seen += 1
                entry = entry_from_redfish(member, source)
                self._collector.add(entry)
                if entry is not None:
                    page_times.append(entry.time)
            times.extend(page_times)
            newest_first = len(times) >= 2 and all(a >= b for a, b in itertools.pairwise(times))
            oldest_first = len(times) >= 2 and all(a <= b for a, b in itertools.pairwise(times))
            if since is not None and newest_first and page_times and page_times[-1] < since:
                return SourceStatus.READ, seen, None  # the rest is older than the window
            next_link = page.get("Members@odata.nextLink")
            if next_link is None:
                return SourceStatus.READ, seen, None
            next_uri, parameter, skip = _next_page(next_link)
            if next_uri is None or skip <= last_skip:
                return SourceStatus.TRUNCATED, seen, "a next-page link oob will not follow"
            count = page.get("Members@odata.count")
            if (
                page_number == 0
                and not jumped
                and oldest_first
                and parameter == "$skip"
                and self._top_skip
                and isinstance(count, int)
                and not isinstance(count, bool)
                and count > MAX_ENTRIES
            ):
                # oldest first and too long to read whole: its tail is where the incident is
                skip = count - (MAX_ENTRIES - seen)
                jumped = True
            last_skip = skip
            uri, paging = next_uri, f"{parameter}={skip}"
        return SourceStatus.TRUNCATED, seen, f"more than {MAX_PAGES} pages"


def _next_page(link: object) -> tuple[str | None, str, int]:
    """The path, the paging parameter (``$skip``, or iLO's ``page``) and its number of a
    ``Members@odata.nextLink``; (None, "", -1) for anything else.  Only the number is kept:
    oob writes the query it sends itself."""
    refused: tuple[str | None, str, int] = (None, "", -1)
    if not isinstance(link, str) or len(link) > 1024:
        return refused
    path, _, query = link.partition("?")
    try:
        values = dict(parse_qsl(query, strict_parsing=True, max_num_fields=2)) if query else {}
    except ValueError:
        return refused
    for parameter, allowed in (("$skip", {"$skip", "$top"}), ("page", {"page"})):
        value = values.get(parameter, "")
        if parameter in values and not set(values) - allowed and value.isdigit() and int(value) < 10**9:
            return path, parameter, int(value)
    return refused


def entry_from_redfish(member: object, source: str) -> LogEntry | None:
    """A LogEntry from a Redfish one; None when its time cannot be read (counted by the caller)."""
    if not isinstance(member, dict):
        return None
    when = parse_time(member.get("Created"))
    if when is None:
        when = parse_time(member.get("EventTimestamp"))
    if when is None:
        return None
    message = bounded_text(member.get("Message")) or bounded_text(member.get("Name")) or "(no message)"
    message_id = bounded_text(member.get("MessageId"), 120)
    sensor = bounded_text(member.get("SensorType"), 60)
    return LogEntry(
        time=when,
        severity=parse_severity(member.get("Severity"), member.get("MessageSeverity")),
        source=source,
        message=message,
        kind=classify(message=message, message_id=message_id, sensor=sensor),
        message_id=message_id,
        sensor=sensor,
        raw_id=bounded_text(member.get("Id"), 64),
    )
