"""Notifications: payloads per format, retries, failures as warnings, secrets kept out of sight.

A real HTTP server on 127.0.0.1 records what arrives on the wire."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from oob.errors import UsageError
from oob.events import Event, EventKind, Level
from oob.notify import Notifier, parse_target


class Hook:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.fail_first = 0
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append((self.path, body))
                if hook.fail_first > 0:
                    hook.fail_first -= 1
                    self.send_response(503)
                else:
                    self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/SECRET-TOKEN"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    server = Hook()
    monkeypatch.setenv("OOB_TEST_HOOK", server.url)
    monkeypatch.setenv("OOB_TEST_PD_KEY", "R0UTINGKEY")
    yield server
    server.close()


def events() -> list[Event]:
    verdict = {
        "kind": "soft_lockup",
        "headline": "soft lockup in ext4",
        "summary": "...",
        "confidence": "high",
        "culprit": "ext4",
    }
    return [
        Event(Level.INFO, "NMI sent via redfish (HTTP 204)", "web01", EventKind.NMI_SENT, {"via": "redfish"}),
        Event(Level.INFO, "dump progress", "web01", EventKind.DUMP_PROGRESS, {"bytes": 1}),
        Event(
            Level.INFO,
            "dump complete: /var/crash/x/vmcore",
            "web01",
            EventKind.DUMP_COMPLETE,
            {"location": "kdump@dumps:/var/crash/x", "size": 42, "analysis": {"verdict": verdict}},
        ),
        Event(Level.WARNING, "no growth", "web02", EventKind.DUMP_STALLED, {"state": "writing"}),
        Event(Level.ERROR, "stalled", "web02", EventKind.DUMP_STALLED, {"state": "stalled"}),
    ]


def run(*specs: str) -> tuple[Notifier, list[str]]:
    notifier = Notifier([parse_target(spec) for spec in specs], command="oob crash").start()
    for event in events():
        notifier.observe(event)
    return notifier, notifier.close()


def test_generic_documents_one_per_outcome(hook: Hook) -> None:
    _, warnings = run("generic=env:OOB_TEST_HOOK")
    assert warnings == []
    docs = [body for _, body in hook.received]
    assert [(d["host"], d["outcome"]) for d in docs] == [
        ("web01", "nmi_sent"),
        ("web01", "dump_complete"),
        ("web02", "dump_stalled"),
    ]
    assert docs[1]["verdict"]["headline"] == "soft lockup in ext4"
    assert docs[1]["location"] == "kdump@dumps:/var/crash/x" and docs[1]["command"] == "oob crash"


def test_slack_message(hook: Hook) -> None:
    run("slack=env:OOB_TEST_HOOK")
    body = hook.received[1][1]
    assert body["text"] == ":white_check_mark: oob: web01: dump complete: /var/crash/x/vmcore"
    assert body["blocks"][0]["type"] == "section"
    context = [e["text"] for e in body["blocks"][1]["elements"]]
    assert "*why it hung*: soft lockup in ext4 (high confidence)" in context


def test_pagerduty_trigger_then_resolve_with_one_dedup_key(hook: Hook) -> None:
    endpoint = hook.url.replace("/hook/SECRET-TOKEN", "/v2/enqueue")
    run(f"pagerduty=env:OOB_TEST_PD_KEY@{endpoint}")
    paths = {path for path, _ in hook.received}
    assert paths == {"/v2/enqueue"}
    trigger, resolve, stalled = (body for _, body in hook.received)
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == "R0UTINGKEY"
    assert trigger["payload"]["severity"] == "warning" and trigger["payload"]["source"] == "web01"
    assert resolve == {
        "routing_key": "R0UTINGKEY",
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    assert stalled["payload"]["severity"] == "error" and stalled["dedup_key"] != trigger["dedup_key"]


def test_retries_then_delivers(hook: Hook) -> None:
    hook.fail_first = 2
    notifier, warnings = run("generic=env:OOB_TEST_HOOK")
    assert warnings == []
    assert len(hook.received) == 3 + 2  # two 503s retried
    assert notifier.delivered == 3


def test_a_failing_hook_is_a_warning_naming_the_reference_only(hook: Hook) -> None:
    hook.status = 400
    _, warnings = run("generic=env:OOB_TEST_HOOK")
    assert warnings == ["notification to generic (env:OOB_TEST_HOOK) failed: HTTP 400"]
    assert len(hook.received) == 3  # a 4xx is not retried
    assert "SECRET-TOKEN" not in " ".join(warnings)


def test_nobody_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OOB_TEST_HOOK", f"http://127.0.0.1:{port}/x")
    _, warnings = run("generic=env:OOB_TEST_HOOK")
    assert warnings == ["notification to generic (env:OOB_TEST_HOOK) failed: cannot connect (ConnectError)"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("slack=https://hooks.slack.com/services/T/B/X", "give a reference"),
        ("teams=env:X", "expected FORMAT=REFERENCE"),
        ("generic", "expected FORMAT=REFERENCE"),
        ("pagerduty=env:K@ftp://x", r"must be http\(s\)://"),
    ],
)
def test_bad_specs_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_target(spec)
    assert "hooks.slack.com" not in caught.value.message


def test_inventory_notify_goes_to_that_host_only(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    from oob.model import Host
    from oob.notify import notifier_for

    hosts = [Host("web01", notify=("generic=env:OOB_TEST_HOOK",)), Host("web02")]
    notifier = notifier_for(None, "oob crash", hosts)
    for event in events():
        notifier.observe(event)
    assert notifier.close() == []
    assert sorted({body["host"] for _, body in hook.received}) == ["web01"]
