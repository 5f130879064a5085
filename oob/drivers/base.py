"""What every BMC driver offers. Runbooks talk to this, never to a library."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from oob.model import ActionResult, BmcInfo, NmiSupport, PowerAction, PowerState


class BmcDriver(ABC):
    #: "redfish" or "ipmi"
    method: str = ""

    def __init__(self) -> None:
        #: things the engineer should know that did not stop the work
        self.warnings: list[str] = []

    def __enter__(self) -> BmcDriver:
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
