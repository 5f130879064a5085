"""Numbers of the IPMI specification that oob shows by name.

Completion codes: IPMI 2.0 table 5-2 (and Chassis Control, section 28.3).
RMCP+ status codes: table 13-15.  Manufacturer IDs: IANA private enterprise numbers.
"""

from __future__ import annotations

from enum import IntEnum

#: IPMI 2.0 table 5-2
COMPLETION_CODES: dict[int, str] = {
    0x00: "command completed normally",
    0xC0: "node busy",
    0xC1: "invalid command",
    0xC2: "command invalid for given LUN",
    0xC3: "timeout while processing command",
    0xC4: "out of space",
    0xC5: "reservation cancelled or invalid reservation ID",
    0xC6: "request data truncated",
    0xC7: "request data length invalid",
    0xC8: "request data field length limit exceeded",
    0xC9: "parameter out of range",
    0xCA: "cannot return number of requested data bytes",
    0xCB: "requested sensor, data, or record not present",
    0xCC: "invalid data field in request",
    0xCD: "command illegal for specified sensor or record type",
    0xCE: "command response could not be provided",
    0xCF: "cannot execute duplicated request",
    0xD0: "SDR repository in update mode",
    0xD1: "device in firmware update mode",
    0xD2: "BMC initialization in progress",
    0xD3: "destination unavailable",
    0xD4: "insufficient privilege level",
    0xD5: "command not supported in present state",
    0xD6: "command sub-function has been disabled or is unavailable",
    0xFF: "unspecified error",
}

#: The BMC says it could not finish or could not answer: it may have acted already.
COMPLETION_OUTCOME_UNKNOWN: frozenset[int] = frozenset({0xC3, 0xCE})
#: The command (or this option of it) is not implemented, or switched off.
COMPLETION_UNSUPPORTED: frozenset[int] = frozenset({0xC1, 0xC9, 0xCC, 0xD6})

#: IPMI 2.0 table 13-15
RMCP_STATUS: dict[int, str] = {
    0x01: "insufficient resources to create a session",
    0x02: "invalid session ID",
    0x03: "invalid payload type",
    0x04: "invalid authentication algorithm",
    0x05: "invalid integrity algorithm",
    0x06: "no matching authentication payload",
    0x07: "no matching integrity payload",
    0x08: "inactive session ID",
    0x09: "invalid role",
    0x0A: "unauthorized role or privilege level requested",
    0x0B: "insufficient resources to create a session at the requested role",
    0x0C: "invalid name length",
    0x0D: "unauthorized name",
    0x0E: "unauthorized GUID",
    0x0F: "invalid integrity check value",
    0x10: "invalid confidentiality algorithm",
    0x11: "no cipher suite match with proposed security algorithms",
    0x12: "illegal or unrecognized parameter",
}
#: RMCP+ statuses that mean "no security algorithms in common"
RMCP_NO_COMMON_CIPHER: frozenset[int] = frozenset({0x04, 0x05, 0x06, 0x07, 0x10, 0x11})
#: RMCP+ statuses about the user: name, role or privilege
RMCP_USER_REFUSED: frozenset[int] = frozenset({0x09, 0x0A, 0x0C, 0x0D})
#: RMCP+ statuses about the BMC's session table
RMCP_NO_SESSION_SLOT: frozenset[int] = frozenset({0x01, 0x0B})


class ChassisControl(IntEnum):
    """Chassis Control (NetFn 0x00, Cmd 0x02) data byte, IPMI 2.0 section 28.3."""

    POWER_DOWN = 0x00
    POWER_UP = 0x01
    POWER_CYCLE = 0x02
    HARD_RESET = 0x03
    PULSE_DIAGNOSTIC_INTERRUPT = 0x04
    SOFT_SHUTDOWN = 0x05

    @property
    def label(self) -> str:
        return f"chassis control 0x{self.value:02X} ({self.name.lower().replace('_', ' ')})"


#: IANA private enterprise numbers of BMC makers, as Get Device ID reports them
MANUFACTURERS: dict[int, str] = {
    2: "IBM",
    11: "HP",
    343: "Intel",
    674: "Dell",
    2011: "Huawei",
    5771: "Cisco",
    7244: "Quanta",
    10368: "Fujitsu",
    10876: "Supermicro",
    15370: "Giga-Byte",
    19046: "Lenovo",
    20301: "IBM System x (Lenovo)",
    20974: "AMI",
    47196: "HPE",
    49622: "ASRock Rack",
    49871: "OpenBMC",
}


def completion_name(code: int) -> str:
    """``0xCC (invalid data field in request)``."""
    if code == 0xFFFF:
        return "no response"
    name = COMPLETION_CODES.get(code)
    if name is None and 0x01 <= code <= 0x7E:
        name = "device-specific (OEM) code"
    elif name is None and 0x80 <= code <= 0xBE:
        name = "command-specific code"
    return f"0x{code:02X} ({name or 'unknown code'})"


def rmcp_status_name(code: int) -> str:
    """``0x0D (unauthorized name)``."""
    return f"0x{code:02X} ({RMCP_STATUS.get(code, 'unknown RMCP+ status')})"


def manufacturer_name(enterprise: int) -> str:
    if enterprise in MANUFACTURERS:
        return MANUFACTURERS[enterprise]
    if enterprise == 0:
        return "unspecified manufacturer"
    return f"IANA enterprise {enterprise}"
