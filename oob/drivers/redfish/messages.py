"""Pull the BMC's own words out of a Redfish response body.

Redfish errors carry ``error.@Message.ExtendedInfo`` (a list of messages with a
Severity or MessageSeverity); some BMCs put ``@Message.ExtendedInfo`` at the top level
instead.  The most severe entry is the one worth showing an engineer.
"""

from __future__ import annotations

from typing import Any

#: longest piece of a BMC message oob carries (the body itself is already capped)
MAX_MESSAGE = 500
_SEVERITY_RANK = {"critical": 3, "warning": 2, "ok": 1}


def extended_info(body: Any) -> list[dict[str, Any]]:
    """Every ExtendedInfo entry in a response body, wherever the BMC put it."""
    if not isinstance(body, dict):
        return []
    entries: list[Any] = []
    error = body.get("error")
    for holder in (error, body):
        if isinstance(holder, dict) and isinstance(holder.get("@Message.ExtendedInfo"), list):
            entries.extend(holder["@Message.ExtendedInfo"])
    return [entry for entry in entries if isinstance(entry, dict)]


def _severity(entry: dict[str, Any]) -> int:
    value = entry.get("MessageSeverity") or entry.get("Severity") or ""
    return _SEVERITY_RANK.get(value.lower(), 0) if isinstance(value, str) else 0


def _text(value: Any) -> str:
    """A field the BMC meant as text; anything else (objects, lists) is not shown."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value).strip()[:MAX_MESSAGE]
    return ""


def _render(entry: dict[str, Any]) -> str:
    message = _text(entry.get("Message"))
    message_id = _text(entry.get("MessageId"))
    resolution = _text(entry.get("Resolution"))
    text = message or message_id
    if message and message_id:
        text = f"{message} [{message_id}]"
    if resolution and resolution.lower() not in {"none", "none."}:
        text = f"{text} Resolution: {resolution}"
    return text


def most_severe_message(body: Any) -> str | None:
    """The most severe ExtendedInfo message, else ``error.message``, else None."""
    entries = extended_info(body)
    if entries:
        worst = max(entries, key=_severity)
        rendered = _render(worst)
        if rendered:
            return rendered
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = _text(body["error"].get("message"))
        if message:
            return message
    return None


def is_success_body(body: Any) -> bool:
    """iLO answers a successful action with 200 and an ``error`` object whose
    MessageId ends in ``Success``: that is a success, not an error."""
    entries = extended_info(body)
    if not entries:
        return False
    return all(str(entry.get("MessageId", "")).split(".")[-1] == "Success" for entry in entries)
