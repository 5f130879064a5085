"""Append-only audit log of every action that changes a host (JSON lines).

Written *before* an NMI leaves and again after, so that a crash of oob itself still
leaves a trace of what may have been sent. Nothing is ever truncated or rewritten.
Records name the host, BMC and method; never a credential.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oob import whoami
from oob.errors import UsageError

#: how much of the log's end is read to find recent actions
_TAIL_BYTES = 4 * 1024 * 1024


def default_audit_path(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get("OOB_AUDIT_LOG"):
        return Path(environ["OOB_AUDIT_LOG"])
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "oob" / "audit.jsonl"


class AuditLog:
    def __init__(self, path: Path, command: Sequence[str] = ()) -> None:
        self.path = path
        self.run_id = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._user = whoami.user()
        self._operator = whoami.operator()
        # oob never takes secrets on its command line, so the command is safe to record
        self._command = " ".join(command)

    @property
    def lock_dir(self) -> Path:
        return self.path.parent / "locks"

    def recent(self, host: str, events: tuple[str, ...], window_s: float) -> dict[str, Any] | None:
        """The newest record of ``events`` for ``host`` within the last ``window_s`` seconds."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - _TAIL_BYTES))
                tail = handle.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(f"cannot read the audit log {self.path}: {exc.strerror or exc}") from None
        now = datetime.now(UTC)
        for line in reversed(tail):
            try:
                entry = json.loads(line)
                when = datetime.fromisoformat(entry["ts"])
            except (ValueError, KeyError, TypeError):
                continue  # a partial first line of the tail, or a foreign line
            if (now - when).total_seconds() > window_s:
                return None
            if entry.get("host") == host and entry.get("event") in events:
                return dict(entry)
        return None

    def record(self, event: str, host: str | None = None, **fields: Any) -> None:
        entry: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "run": self.run_id,
            "user": self._user,
            "operator": self._operator,
            "event": event,
        }
        if self._command:
            entry["command"] = self._command
        if host is not None:
            entry["host"] = host
        entry.update(fields)
        line = json.dumps(entry, sort_keys=False, default=str) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise UsageError(f"cannot write the audit log {self.path}: {exc.strerror or exc}") from None

