"""The one error tree of oob. Every class carries the exit code the CLI returns for it.

    OobError                         1  internal error (a bug, or something unforeseen)
    ├── UsageError                   2  bad command line
    │   ├── InventoryError           2  bad inventory file (names file, host, key)
    │   └── SecretError              2  a credential reference cannot be resolved
    ├── NotDelivered                 -  the request certainly never took effect
    │   ├── BmcUnreachable           3  DNS, connection refused, connect timeout
    │   │   ├── TlsError             3  certificate not trusted, fingerprint mismatch
    │   │   └── BmcHttpError         3  the BMC answered a read (GET) with an HTTP error
    │   ├── BmcAuthError             3  credentials refused, session limit reached
    │   ├── HostSshError             3  the host's own SSH (preflight, oob drill's sysrq) refused: nothing crashed
    │   ├── ActionUnsupported        4  the BMC does not offer Nmi (or the power action)
    │   ├── BmcRefused               4  the BMC answered the action with an error
    │   └── BmcProtocolError         4  the BMC answered with something oob will not follow
    │                                   or cannot read (a URI off its origin, a redirect, a
    │                                   body too large or too deep, a wrong shape)
    ├── OutcomeUnknown               6  the request was sent but no answer came back
    ├── DumpTimeout                  5  NMI sent, no complete dump by the deadline
    ├── DumpTargetError              5  the dump target cannot be read (connect, login, path)
    │   └── HostKeyError             5  the dump server's SSH host key is unknown or changed
    ├── DumpUnreadable               5  makedumpfile or crash could not read a local vmcore
    │                                   (cut short, corrupt, not installed)
    ├── AuditLogError                2  the audit log cannot be read or written whole
    └── SafetyRefusal                7  host off or looks healthy, not confirmed, locked

Only ``NotDelivered`` errors may ever be retried or answered by another method: an
``OutcomeUnknown`` NMI may have crashed the host already, and a second one must never
follow it by accident.  Of the ``NotDelivered`` family only ``retryable`` instances
(connection refused, DNS, TLS handshake) are retried automatically.

Not an error, and so no class: ``oob preflight`` exits 8 when a host is not ready, so that
"not ready" never reads as 1, an internal error.
"""

from __future__ import annotations

from typing import Any


class OobError(Exception):
    """Root of every error oob raises on purpose."""

    exit_code: int = 1
    #: short machine-readable name used in JSON output
    kind: str = "internal"

    def __init__(self, message: str, *, host: str | None = None, bmc_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        #: the BMC's own words (most severe @Message.ExtendedInfo entry), when it gave any
        self.bmc_message = bmc_message

    def __str__(self) -> str:
        text = self.message
        if self.bmc_message and self.bmc_message not in text:
            text = f"{text} (BMC says: {self.bmc_message})"
        if self.host:
            text = f"{self.host}: {text}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # across a process boundary (``--workers``): the class and every attribute, whatever
        # its constructor takes (Exception's pickling would call it with the message alone)
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def for_host(self, host: str) -> OobError:
        """Attach the inventory host name, keeping the class (and so the exit code)."""
        if self.host is None:
            self.host = host
        return self

    def report_fields(self) -> dict[str, object]:
        """What a per-host report carries of the error: its kind, message and the BMC's words."""
        data: dict[str, object] = {"error": self.kind, "message": self.message}
        if self.bmc_message:
            data["bmc_message"] = self.bmc_message
        return data

    def to_dict(self) -> dict[str, object]:
        data = {**self.report_fields(), "exit_code": self.exit_code}
        if self.host:
            data["host"] = self.host
        return data


class UsageError(OobError):
    exit_code = 2
    kind = "usage"


class InventoryError(UsageError):
    kind = "inventory"


class SecretError(UsageError):
    kind = "secret"


class NotDelivered(OobError):
    """The request certainly did not take effect: safe to fall back to another method."""

    #: True only when the failure happened before any byte of the request left this machine
    retryable: bool = False


class BmcUnreachable(NotDelivered):
    exit_code = 3
    kind = "unreachable"

    def __init__(
        self, message: str, *, host: str | None = None, retryable: bool = True, bmc_message: str | None = None
    ) -> None:
        super().__init__(message, host=host, bmc_message=bmc_message)
        self.retryable = retryable


class TlsError(BmcUnreachable):
    kind = "tls"

    def __init__(self, message: str, *, host: str | None = None) -> None:
        # a certificate that fails verification will fail again: never retried
        super().__init__(message, host=host, retryable=False)


class BmcHttpError(BmcUnreachable):
    """The BMC answered a read (GET) with an HTTP error status: reachable, but what oob
    needed from it could not be read.  An action's HTTP error is :class:`BmcRefused`."""

    kind = "bmc_http"

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        bmc_message: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, host=host, retryable=False, bmc_message=bmc_message)
        #: the HTTP status the BMC answered with
        self.status = status


class BmcAuthError(NotDelivered):
    exit_code = 3
    kind = "auth"


class ActionUnsupported(NotDelivered):
    exit_code = 4
    kind = "unsupported"


class BmcRefused(NotDelivered):
    """The BMC answered the action with an error status: it did not perform it."""

    exit_code = 4
    kind = "refused"


class BmcProtocolError(NotDelivered):
    """The BMC's answer breaks a rule oob keeps for its own safety: a URI that leaves the
    BMC's origin, a redirect, a body too large or nested too deep, a value of the wrong
    shape.  Raised before an action is sent (so nothing was sent); after an action's
    bytes left, the same finding never turns the outcome into "not sent"."""

    exit_code = 4
    kind = "bmc_protocol"


class HostSshError(NotDelivered):
    """``oob drill`` could not log in to the host, or the write to /proc/sysrq-trigger
    failed: the host was certainly not crashed."""

    exit_code = 3
    kind = "host_ssh"


class OutcomeUnknown(OobError):
    """The request left this machine and no answer came back: it may have been applied."""

    exit_code = 6
    kind = "outcome_unknown"


class DumpTimeout(OobError):
    exit_code = 5
    kind = "dump_timeout"


class DumpTargetError(OobError):
    """The dump target (``ssh://`` server or ``file://`` path) cannot be read: no dump can
    be confirmed, so the exit code is that of a missing dump."""

    exit_code = 5
    kind = "dump_target"


class HostKeyError(DumpTargetError):
    """The dump server's host key is not in known_hosts (accepted only when the user says
    so) or differs from the one recorded there (never accepted)."""

    kind = "host_key"


class DumpUnreadable(OobError):
    """A local vmcore could not be read by makedumpfile (its kernel log) or crash: the file
    is cut short or corrupt, in a form the tool does not take, or the tool is missing.  The
    dump exists; what it would have told is not available."""

    exit_code = 5
    kind = "dump_unreadable"


class AuditLogError(OobError):
    """The audit log cannot be read, or a record cannot be written whole (full disk,
    permissions, a symlink where the log should be).  Before an action oob refuses to act;
    after one, the action's real outcome is reported and the missing record is said."""

    exit_code = 2
    kind = "audit_log"


class SafetyRefusal(OobError):
    exit_code = 7
    kind = "refused_for_safety"


def worst_exit_code(codes: list[int]) -> int:
    """With several hosts the command exits with the worst (highest) code."""
    return max(codes, default=0)


def _rebuild(cls: type[OobError], args: tuple[Any, ...], state: dict[str, Any]) -> OobError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
