"""What every BMC driver offers. Runbooks talk to this, never to a library."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from types import TracebackType
from typing import Self

from oob.model import ActionResult, BmcInfo, NmiSupport, PowerAction, PowerState
from oob.signals.bmclog import BmcLog, LogCollector, SourceStatus, Window


class BmcDriver(ABC):
    #: "redfish", "ipmi", "libvirt" or "esxi"
    method: str = ""

    def __init__(self) -> None:
        #: things the engineer should know that did not stop the work
        self.warnings: list[str] = []

    def __enter__(self) -> Self:  # each driver's own type, so callers see its own methods
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def open(self) -> None:
        """Connect and authenticate. Raises NotDelivered subclasses only."""

    @abstractmethod
    def close(self) -> None:
        """Release the session on the BMC. Never raises."""

    @abstractmethod
    def power_state(self) -> PowerState: ...

    @abstractmethod
    def nmi_support(self) -> NmiSupport: ...

    @abstractmethod
    def info(self) -> BmcInfo: ...

    @abstractmethod
    def power(self, action: PowerAction) -> ActionResult: ...

    @abstractmethod
    def send_nmi(self) -> ActionResult:
        """Send one NMI, exactly once. OutcomeUnknown if it may have been applied."""

    def read_event_log(self, since: datetime | None = None, until: datetime | None = None) -> BmcLog:
        """The BMC's own event log entries between ``since`` and ``until`` (aware datetimes,
        either open).  A log the BMC does not offer or oob cannot read is said in the
        result's ``sources``, never raised; only failing to reach the BMC at all raises.

        This default: a driver that reads no logs offers none."""
        host = getattr(self, "host", None)  # drivers keep their inventory Host there
        collector = LogCollector(str(getattr(host, "name", "")), self.method, Window(since, until))
        collector.source(
            "event log",
            SourceStatus.NOT_OFFERED,
            detail=f"oob reads no event log over {self.method or 'this driver'}",
        )
        return collector.result()
