"""IPMI BMC driver: power status and control, NMI, BMC identity, over RMCP+ (lanplus).

The NMI is Chassis Control (NetFn 0x00, Cmd 0x02) with data 0x04, "pulse diagnostic
interrupt" — what ``ipmitool chassis power diag``, ``ipmipower --pulse`` and pyghmi's
``set_power('diag')`` send.  oob sends it itself, through :meth:`IpmiClient.send_once`,
rather than with ``set_power``: that helper first reads the power state and then sends
the request with pyghmi's retransmission on, which could put a second NMI on the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from oob.drivers.base import BmcDriver
from oob.drivers.ipmi.client import IpmiClient, Reply
from oob.drivers.ipmi.codes import (
    COMPLETION_OUTCOME_UNKNOWN,
    COMPLETION_UNSUPPORTED,
    ChassisControl,
    completion_name,
    manufacturer_name,
)
from oob.drivers.ipmi.sel import read_sel
from oob.errors import ActionUnsupported, BmcRefused, BmcUnreachable, OobError, OutcomeUnknown, UsageError
from oob.model import ActionResult, BmcInfo, Host, NmiSupport, PowerAction, PowerState
from oob.signals.bmclog import BmcLog, LogCollector, Window

NETFN_CHASSIS = 0x00
NETFN_APP = 0x06
CMD_GET_CHASSIS_STATUS = 0x01
CMD_CHASSIS_CONTROL = 0x02
CMD_GET_DEVICE_ID = 0x01

_DIRECTIVES: dict[PowerAction, ChassisControl] = {
    PowerAction.ON: ChassisControl.POWER_UP,
    PowerAction.OFF: ChassisControl.POWER_DOWN,
    PowerAction.SHUTDOWN: ChassisControl.SOFT_SHUTDOWN,
    PowerAction.RESET: ChassisControl.HARD_RESET,
    PowerAction.CYCLE: ChassisControl.POWER_CYCLE,
}

#: what an engineer can do about a refusal, by completion code
_HINTS: dict[int, str] = {
    0xD4: "the IPMI user needs operator or administrator privilege",
    0xC0: "the BMC is busy; try again in a moment",
    0xD2: "the BMC is still starting; try again in a moment",
}


def _bcd(value: int) -> str:
    return f"{value >> 4}{value & 0x0F}"


class IpmiDriver(BmcDriver):
    method = "ipmi"

    def __init__(
        self,
        host: Host,
        password: str,
        *,
        connect_attempts: int = 3,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        if not host.bmc.username:
            raise UsageError(f"host '{host.name}': key 'bmc.username' is required for IPMI", host=host.name)
        self.host = host
        self._client = IpmiClient(
            host.bmc.hostname,
            host.bmc.ipmi_port,
            host.bmc.username,
            password,
            timeout=host.bmc.timeout,
            connect_attempts=connect_attempts,
            on_retry=on_retry,
        )

    def __repr__(self) -> str:
        return f"IpmiDriver({self.host.name!r}, {self._client.where!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        try:
            self._client.open()
        except OobError as exc:
            exc.for_host(self.host.name)
            raise

    def close(self) -> None:
        self._client.close()

    @property
    def cipher_suite(self) -> int | None:
        """The RMCP+ cipher suite of the open session (3 or 17)."""
        return self._client.cipher_suite

    # -- reading --------------------------------------------------------------------------

    def _read(self, netfn: int, command: int, what: str) -> Reply:
        reply = self._client.read(netfn, command, what=what)
        if reply.code != 0:
            raise BmcUnreachable(
                f"the BMC answered {what} with {completion_name(reply.code)}",
                host=self.host.name,
                retryable=False,
                bmc_message=completion_name(reply.code),
            )
        return reply

    def power_state(self) -> PowerState:
        reply = self._read(NETFN_CHASSIS, CMD_GET_CHASSIS_STATUS, "Get Chassis Status")
        if not reply.data:
            return PowerState.UNKNOWN
        return PowerState.ON if reply.data[0] & 0x01 else PowerState.OFF

    def nmi_support(self) -> NmiSupport:
        # Chassis Control is mandatory in IPMI 2.0; whether the diagnostic-interrupt option
        # is wired up only shows in the answer (0xCC when it is not), which send_nmi maps.
        return NmiSupport(True, "ipmi")

    def info(self) -> BmcInfo:
        warnings = list(self.warnings)
        vendor, firmware, manager = "IPMI BMC", None, None
        try:
            data = self._read(NETFN_APP, CMD_GET_DEVICE_ID, "Get Device ID").data
        except BmcUnreachable as exc:
            warnings.append(f"could not read the BMC's identity: {exc.message}")
        else:
            if len(data) >= 11:
                manufacturer = data[6] | data[7] << 8 | (data[8] & 0x0F) << 16
                product = data[9] | data[10] << 8
                vendor = manufacturer_name(manufacturer)
                firmware = f"{data[2] & 0x7F}.{_bcd(data[3])}"
                version = f"{data[4] & 0x0F}.{data[4] >> 4}"
                suite = f", cipher suite {self.cipher_suite}" if self.cipher_suite else ""
                manager = f"IPMI {version} BMC, device ID 0x{data[0]:02X}, product ID 0x{product:04X}{suite}"
            else:
                warnings.append(f"Get Device ID answered {len(data)} bytes, fewer than the 11 required")
        return BmcInfo(
            host=self.host.name,
            method=self.method,
            vendor=vendor,
            model=None,
            firmware=firmware,
            power=self.power_state(),
            nmi=self.nmi_support(),
            manager=manager,
            warnings=tuple(warnings),
        )

    # -- actions --------------------------------------------------------------------------

    def read_event_log(self, since: datetime | None = None, until: datetime | None = None) -> BmcLog:
        """The SEL's entries in the window (:mod:`oob.drivers.ipmi.sel`)."""
        collector = LogCollector(self.host.name, self.method, Window(since, until))
        self.warnings.extend(read_sel(self._client, collector))
        return collector.result()

    def send_nmi(self) -> ActionResult:
        return self._chassis_control("nmi", ChassisControl.PULSE_DIAGNOSTIC_INTERRUPT)

    def power(self, action: PowerAction) -> ActionResult:
        return self._chassis_control(action.value, _DIRECTIVES[action])

    def _chassis_control(self, action: str, directive: ChassisControl) -> ActionResult:
        what = directive.label
        try:
            reply = self._client.send_once(NETFN_CHASSIS, CMD_CHASSIS_CONTROL, (directive.value,), what=what)
        except (BmcUnreachable, OutcomeUnknown) as exc:
            exc.for_host(self.host.name)
            raise
        if reply.code == 0:
            return ActionResult(
                host=self.host.name, action=action, method=self.method, status=0, sent=(what,)
            )
        said = completion_name(reply.code)
        if reply.code in COMPLETION_OUTCOME_UNKNOWN:
            raise OutcomeUnknown(
                f"the BMC answered {what} with {said}: it may or may not have been applied, "
                "so it is not sent again",
                host=self.host.name,
                bmc_message=said,
            )
        hint = _HINTS.get(reply.code)
        if reply.code == 0xD5 and directive is ChassisControl.POWER_CYCLE:
            hint = "IPMI power cycle needs the host on; is it off? (use power on)"
        suffix = f"; {hint}" if hint else ""
        if reply.code in COMPLETION_UNSUPPORTED:
            subject = "NMI (pulse diagnostic interrupt)" if action == "nmi" else f"power {action}"
            raise ActionUnsupported(
                f"{subject} is not supported by this BMC over IPMI: it answered {what} with {said}{suffix}",
                host=self.host.name,
                bmc_message=said,
            )
        raise BmcRefused(f"the BMC refused {what}: {said}{suffix}", host=self.host.name, bmc_message=said)
