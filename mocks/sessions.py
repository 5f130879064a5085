"""Redfish sessions of one mock BMC: tokens, ids in the vendor's style, the limit."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass

from .flavours import SessionIdStyle


class SessionLimitReached(Exception):
    pass


@dataclass(frozen=True)
class Session:
    id: str
    token: str
    username: str
    #: wall-clock creation time (for LoginTime-like fields)
    created: float


class SessionStore:
    def __init__(self, id_style: SessionIdStyle = "counter", first_id: int = 1) -> None:
        self._id_style = id_style
        self._counter = itertools.count(first_id)
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}
        #: every session ever created, for tests that check none leaked
        self.created_total = 0

    def _new_id(self, username: str) -> str:
        if self._id_style == "ilo":
            # as iLO: user name, 16 hex digits of time, 8 random hex digits
            return f"{username}{int(time.time()):016x}{secrets.token_hex(4)}"
        if self._id_style == "hex":
            return secrets.token_hex(8)
        return str(next(self._counter))

    def create(self, username: str, limit: int | None = None) -> Session:
        with self._lock:
            if limit is not None and len(self._by_id) >= limit:
                raise SessionLimitReached
            session_id = self._new_id(username)
            while session_id in self._by_id:
                session_id = self._new_id(username)
            session = Session(session_id, secrets.token_hex(16), username, time.time())
            self._by_id[session_id] = session
            self.created_total += 1
            return session

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            return self._by_id.get(session_id)

    def by_token(self, token: str) -> Session | None:
        with self._lock:
            for session in self._by_id.values():
                if secrets.compare_digest(session.token, token):
                    return session
            return None

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._by_id.pop(session_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()

    def all(self) -> list[Session]:
        with self._lock:
            return list(self._by_id.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)
