"""Notifications to where incidents already go: a generic webhook, Slack, PagerDuty.

    --notify generic=env:OOB_HOOK_URL      POST the event's JSON document to the URL
    --notify slack=file:/etc/oob/slack-url  a Slack incoming webhook (``text`` + ``blocks``)
    --notify pagerduty=env:PD_ROUTING_KEY   PagerDuty Events API v2: trigger, then resolve

The part after ``=`` is a credential reference (``env:``, ``file:``, ``keyring:`` as for BMC
passwords, :mod:`oob.secrets`): a webhook URL holds its secret, so it is never on the command
line, in a log or in a message — messages name the reference. PagerDuty's reference is the
routing key; its endpoint is ``https://events.pagerduty.com/v2/enqueue`` unless
``pagerduty=REF@URL`` names another (a proxy, a test server).

What is sent: one document per host and event when its outcome is known — the NMI sent
(or its outcome unknown), the dump complete (with the verdict of the kernel log's analysis),
failed, stalled, or late. PagerDuty: ``trigger`` when the NMI goes out (the host hung and was
crashed) and again, at ``error`` severity, when no dump comes; ``resolve`` when the dump is
complete; one ``dedup_key`` per host and run.

Delivery never delays or changes the runbook: documents queue to one background thread that
posts with a 5 s timeout and up to 3 attempts (tenacity; only connection errors, 429 and 5xx
are retried), redirects not followed. At the end of the run the queue gets a few seconds to
drain; what could not be delivered is reported as one warning line per target.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from oob.errors import OobError, UsageError
from oob.events import Event, EventKind
from oob.model import Host, SecretRef

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
TIMEOUT_S = 5.0
ATTEMPTS = 3
#: how long the end of a run waits for deliveries still queued
DRAIN_S = 10.0
#: documents queued at most (a run over thousands of hosts must not grow this unbounded)
MAX_QUEUED = 10_000

#: the events that carry a host's outcome, and what each means for an incident
_OUTCOMES: dict[str, str] = {
    EventKind.NMI_SENT: "nmi_sent",
    EventKind.NMI_OUTCOME_UNKNOWN: "nmi_outcome_unknown",
    EventKind.DUMP_COMPLETE: "dump_complete",
    EventKind.DUMP_FAILED: "dump_failed",
    EventKind.DUMP_STALLED: "dump_stalled",
    EventKind.TIMEOUT: "timeout",
    EventKind.FAILED: "failed",
}


class NotifyFormat(StrEnum):
    GENERIC = "generic"
    SLACK = "slack"
    PAGERDUTY = "pagerduty"


@dataclass(frozen=True)
class NotifyTarget:
    format: NotifyFormat
    #: the webhook URL (generic, Slack) or the routing key (PagerDuty)
    secret: SecretRef
    #: PagerDuty's endpoint
    url: str | None = None

    @property
    def label(self) -> str:
        """How messages name it: ``slack (env:SLACK_URL)`` — never the URL."""
        return f"{self.format.value} ({self.secret.describe()})"


def parse_target(text: str) -> NotifyTarget:
    """``FORMAT=REF`` (``pagerduty=REF@URL``) from ``--notify``; one clear line when wrong."""
    from oob.secrets import parse_secret_ref

    name, sep, ref = text.partition("=")
    try:
        fmt = NotifyFormat(name.strip().lower())
    except ValueError:
        fmt = None
    if not sep or fmt is None or not ref:
        known = ", ".join(f.value for f in NotifyFormat)
        raise UsageError(f"--notify: expected FORMAT=REFERENCE ({known}; e.g. slack=env:SLACK_URL)")
    url = None
    if fmt is NotifyFormat.PAGERDUTY:
        ref, at, url_text = ref.partition("@")
        url = url_text if at else PAGERDUTY_URL
        if not url.startswith(("https://", "http://")):
            raise UsageError("--notify pagerduty=REF@URL: the URL must be http(s)://")
    if not ref.startswith(("env:", "file:", "keyring:")):
        raise UsageError(
            f"--notify {fmt.value}=...: give a reference (env:VAR, file:PATH or keyring:SERVICE/USER), "
            "not the URL or key itself: it holds a secret and would be seen in the process list"
        )
    return NotifyTarget(fmt, parse_secret_ref(ref), url)


def document(event: Event, command: str) -> dict[str, Any] | None:
    """The generic JSON document for an outcome event (None: not an outcome)."""
    outcome = _OUTCOMES.get(str(event.kind)) if event.kind else None
    if outcome is None or not event.host:
        return None
    data = event.data
    if outcome == "dump_stalled" and data.get("state") != "stalled":
        return None  # stalled but still waited for (--stall-grace): not an outcome yet
    doc: dict[str, Any] = {
        "source": "oob",
        "command": command,
        "host": event.host,
        "outcome": outcome,
        "level": str(event.level),
        "message": event.message,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for key in ("via", "bmc", "at", "path", "location", "size", "state"):
        if key in data:
            doc[key] = data[key]
    analysis = data.get("analysis")
    if isinstance(analysis, dict) and isinstance(analysis.get("verdict"), dict):
        verdict = analysis["verdict"]
        doc["verdict"] = {k: verdict.get(k) for k in ("kind", "headline", "summary", "confidence", "culprit")}
    return doc


def slack_body(doc: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (notifications) and ``blocks`` (the channel)."""
    icon = {"dump_complete": ":white_check_mark:", "nmi_sent": ":zap:"}.get(
        doc["outcome"], ":rotating_light:"
    )
    text = f"{icon} oob: {doc['host']}: {doc['message']}"
    fields = [f"*outcome*: {doc['outcome']}"]
    if "verdict" in doc and doc["verdict"].get("headline"):
        fields.append(
            f"*why it hung*: {doc['verdict']['headline']} ({doc['verdict']['confidence']} confidence)"
        )
    if doc.get("location"):
        fields.append(f"*dump*: {doc['location']}")
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f} for f in fields]},
        ],
    }


def pagerduty_body(doc: dict[str, Any], routing_key: str, dedup_key: str) -> dict[str, Any]:
    """An Events API v2 event: resolve on a complete dump, trigger otherwise."""
    if doc["outcome"] == "dump_complete":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    severity = "warning" if doc["outcome"] == "nmi_sent" else "error"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": f"{doc['host']}: {doc['message']}"[:1024],
            "source": doc["host"],
            "severity": severity,
            "component": "kdump",
            "group": "oob",
            "class": doc["outcome"],
            "custom_details": doc,
        },
    }


@dataclass
class Notifier:
    """Queues documents for ``targets`` and posts them from one background thread.

    ``observe`` is meant to wrap the runbook's emit: ``emit = notifier.wrap(renderer.event)``.
    """

    targets: Sequence[NotifyTarget]
    command: str = "oob"
    #: the inventory's ``notify`` of each host, on top of ``targets``
    per_host: Mapping[str, Sequence[NotifyTarget]] = field(default_factory=dict)
    #: for tests: the HTTP client factory (an httpx.Client)
    client_factory: Callable[[], Any] | None = None
    failures: dict[str, str] = field(default_factory=dict)
    delivered: int = 0
    dropped: int = 0

    def __post_init__(self) -> None:
        self._queue: queue.Queue[tuple[NotifyTarget, str, dict[str, Any]] | None] = queue.Queue(MAX_QUEUED)
        self._secrets: dict[NotifyTarget, str] = {}
        self._run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._thread: threading.Thread | None = None

    def start(self) -> Notifier:
        """Resolve every reference now (a missing one is exit 2 before anything is crashed)."""
        from oob.secrets import resolve_secret

        for target in self._every():
            if target not in self._secrets:
                self._secrets[target] = resolve_secret(target.secret, host=f"--notify {target.format.value}")
        if self._secrets:
            self._thread = threading.Thread(target=self._deliver_all, name="oob-notify", daemon=True)
            self._thread.start()
        return self

    def wrap(self, emit: Callable[[Event], None]) -> Callable[[Event], None]:
        def both(event: Event) -> None:
            emit(event)
            self.observe(event)

        return both

    def _every(self) -> list[NotifyTarget]:
        found = dict.fromkeys(self.targets)
        for targets in self.per_host.values():
            found.update(dict.fromkeys(targets))
        return list(found)

    def observe(self, event: Event) -> None:
        if not self._secrets:
            return
        doc = document(event, self.command)
        if doc is None:
            return
        for target in dict.fromkeys([*self.targets, *self.per_host.get(doc["host"], ())]):
            try:
                self._queue.put_nowait((target, doc["host"], doc))
            except queue.Full:
                self.dropped += 1

    def close(self, drain_s: float = DRAIN_S) -> list[str]:
        """Wait (at most ``drain_s``) for queued deliveries; one warning line per failed target."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(drain_s)
            if self._thread.is_alive():
                pending = self._queue.qsize()
                for target in self._every():
                    self.failures.setdefault(
                        target.label, f"not all delivered within {drain_s:.0f} s ({pending} left)"
                    )
        lines = [f"notification to {label} failed: {why}" for label, why in self.failures.items()]
        if self.dropped:
            lines.append(f"{self.dropped} notifications dropped: more than {MAX_QUEUED} queued")
        return lines

    # -- the delivery thread ---------------------------------------------------------------------
    def _deliver_all(self) -> None:
        client = self._client()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                target, host, doc = item
                try:
                    self._post(client, target, host, doc)
                    self.delivered += 1
                except Exception as exc:  # noqa: BLE001 - a notification never stops the runbook
                    self.failures[target.label] = _describe(exc)
        finally:
            client.close()

    def _client(self) -> Any:
        if self.client_factory is not None:
            return self.client_factory()
        import httpx

        # trust_env off: a proxy or CA bundle from the environment is not silently used
        return httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False)

    def _post(self, client: Any, target: NotifyTarget, host: str, doc: dict[str, Any]) -> None:
        import httpx
        from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

        secret = self._secrets[target]
        if target.format is NotifyFormat.PAGERDUTY:
            assert target.url is not None
            url, body = target.url, pagerduty_body(doc, secret, f"oob-{host}-{self._run_id}")
        elif target.format is NotifyFormat.SLACK:
            url, body = secret, slack_body(doc)
        else:
            url, body = secret, doc

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, httpx.HTTPStatusError):
                return exc.response.status_code == 429 or exc.response.status_code >= 500
            return isinstance(exc, httpx.TransportError)

        @retry(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=0.3, max=2),
            retry=retry_if_exception(retryable),
            reraise=True,
        )
        def send() -> None:
            response = client.post(url, json=body)
            response.raise_for_status()

        send()


def _describe(exc: BaseException) -> str:
    """What went wrong, without the URL (it holds the secret)."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer within the timeout"
    if isinstance(exc, httpx.TransportError):
        return f"cannot connect ({type(exc).__name__})"
    if isinstance(exc, OobError):
        return exc.message
    return type(exc).__name__


def notifier_for(specs: Sequence[str] | None, command: str, hosts: Sequence[Host] = ()) -> Notifier:
    """``--notify`` values and each host's inventory ``notify``, parsed and their references
    resolved (exit 2 when one is wrong, before anything is done)."""
    per_host = {host.name: tuple(parse_target(spec) for spec in host.notify) for host in hosts if host.notify}
    return Notifier([parse_target(spec) for spec in specs or ()], command=command, per_host=per_host).start()
