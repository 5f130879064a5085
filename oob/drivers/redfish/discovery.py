"""What oob learnt about a Redfish BMC, kept between runs, so that a warm NMI is a login,
one read of the system, the POST and the logout.

Kept per BMC (its origin and the inventory's ``bmc.system``), in a private directory
(``$OOB_CACHE_DIR``, else ``$XDG_CACHE_HOME/oob``, else ``~/.cache/oob``):

* the login URI (or that the BMC takes HTTP Basic), so the service root is not read;
* the system's URI, so the Systems collection is not read;
* the Reset action's ActionInfo URI and the ResetType values it listed;
* the vendor, and the SHA-256 of the certificate the facts were learnt behind.

Never kept: the power state and the Reset action's target, which come from the system
resource read on every run (the same GET that reads the power state).  So a cached fact
only ever steers reads and the login, never where the NMI goes.

An entry is used only when it is younger than :data:`TTL_S`, ``--refresh`` was not given,
and the BMC presents the certificate it was learnt behind (checked on the first
connection; a different one drops the entry and discovery starts again in the same
session).  A cached URI the BMC no longer answers (404 at the system, a login URI that is
gone) drops the entry too, and oob discovers afresh: a read or a login never acted on
anything.  A cache that cannot be read or written is never a reason to fail: oob then
simply discovers, as it would the first time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oob.audit import private_directory
from oob.drivers.redfish.uris import Origin, safe_path
from oob.errors import OobError

log = logging.getLogger("oob.redfish")

#: how long what was learnt is trusted (firmware updates change URIs rarely; a day bounds it)
TTL_S = 24 * 3600.0
#: an entry is a few hundred bytes; anything larger is not oob's
MAX_ENTRY_BYTES = 16 * 1024
_VERSION = 1


@dataclass(frozen=True)
class Discovery:
    """The facts of one BMC that do not change from one NMI to the next."""

    #: where sessions are created; None: the BMC has no SessionService (HTTP Basic)
    login_uri: str | None
    system_uri: str
    #: ``@Redfish.ActionInfo`` of the Reset action and the ResetType values it listed
    action_info_uri: str | None = None
    action_info_values: tuple[str, ...] | None = None
    #: ``bmc.kind`` of the vendor detected from the service root ("redfish" when unknown)
    vendor: str = "redfish"
    #: SHA-256 of the certificate the facts were learnt behind (None over http)
    certificate: str | None = None
    #: when they were learnt (seconds since the epoch)
    learnt_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "login_uri": self.login_uri,
            "system_uri": self.system_uri,
            "action_info_uri": self.action_info_uri,
            "action_info_values": list(self.action_info_values)
            if self.action_info_values is not None
            else None,
            "vendor": self.vendor,
            "certificate": self.certificate,
            "learnt_at": self.learnt_at,
        }

    @classmethod
    def from_json(cls, data: Any, origin: Origin) -> Discovery | None:
        """The entry, or None when it is not one oob wrote (every URI checked like a BMC's)."""
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            return None
        try:
            login = data.get("login_uri")
            info = data.get("action_info_uri")
            values = data.get("action_info_values")
            learnt = data.get("learnt_at")
            vendor = data.get("vendor")
            certificate = data.get("certificate")
            if values is not None and not (
                isinstance(values, list) and len(values) <= 64 and all(isinstance(v, str) for v in values)
            ):
                return None
            if not isinstance(learnt, (int, float)) or not isinstance(vendor, str) or len(vendor) > 32:
                return None
            if certificate is not None and not (isinstance(certificate, str) and len(certificate) == 64):
                return None
            return cls(
                login_uri=None if login is None else safe_path(login, origin, field="cached login URI"),
                system_uri=safe_path(data.get("system_uri"), origin, field="cached system URI"),
                action_info_uri=None
                if info is None
                else safe_path(info, origin, field="cached ActionInfo URI"),
                action_info_values=None if values is None else tuple(values),
                vendor=vendor,
                certificate=certificate,
                learnt_at=float(learnt),
            )
        except OobError:
            return None


def cache_directory() -> Path | None:
    """Where entries live; None when caching is off (``OOB_CACHE_DIR=off``)."""
    configured = os.environ.get("OOB_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "none") else Path(configured) / "redfish"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "oob" / "redfish"


class DiscoveryCache:
    """Entries of one directory; every failure to use it is logged (``-v``) and ignored."""

    def __init__(self, directory: Path, *, ttl_s: float = TTL_S) -> None:
        self.directory = directory
        self.ttl_s = ttl_s

    @staticmethod
    def key(origin: Origin, system: str | None) -> str:
        text = f"{origin.base}|{(system or '').strip('/')}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str, origin: Origin) -> Discovery | None:
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.debug("discovery cache %s not read: %s", path, exc.strerror or exc)
            return None
        try:
            with os.fdopen(fd, "rb") as file:
                data = file.read(MAX_ENTRY_BYTES + 1)
        except OSError as exc:
            log.debug("discovery cache %s not read: %s", path, exc.strerror or exc)
            return None
        if len(data) > MAX_ENTRY_BYTES:
            return None
        try:
            entry = Discovery.from_json(json.loads(data), origin)
        except (ValueError, UnicodeDecodeError):
            entry = None
        if entry is None or not 0 <= time.time() - entry.learnt_at <= self.ttl_s:
            return None
        return entry

    def save(self, key: str, entry: Discovery) -> None:
        try:
            private_directory(self.directory, "discovery cache")
            temporary = self.directory / f".{key}.{os.getpid()}.tmp"
            fd = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
            with os.fdopen(fd, "w") as file:
                json.dump(entry.to_json(), file)
            os.replace(temporary, self._path(key))
        except (OSError, OobError) as exc:
            log.debug("discovery cache not written: %s", exc)

    def drop(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.debug("discovery cache entry not removed: %s", exc.strerror or exc)


def default_cache() -> DiscoveryCache | None:
    directory = cache_directory()
    return DiscoveryCache(directory) if directory is not None else None
