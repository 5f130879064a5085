"""Which vendor's Redfish service this is, and the vendor habits oob must allow for.

Detected from the service root (``Vendor``, ``Oem`` keys, ``Name``) and, failing that,
from the manager (OpenBMC's bmcweb names its manager ``bmc`` with Model ``OpenBmc``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Vendor:
    key: str
    #: shown to people
    label: str
    #: the inventory's ``bmc.kind`` for this vendor
    kind: str


HPE = Vendor("hpe", "HPE iLO", "ilo")
DELL = Vendor("dell", "Dell iDRAC", "idrac")
LENOVO = Vendor("lenovo", "Lenovo XCC", "xcc")
SUPERMICRO = Vendor("supermicro", "Supermicro", "supermicro")
OPENBMC = Vendor("openbmc", "OpenBMC", "openbmc")
AMI = Vendor("ami", "AMI MegaRAC", "redfish")
GENERIC = Vendor("generic", "Redfish", "redfish")

#: open Redfish sessions a vendor's BMC allows, where a source gives the number (docs/REDFISH.md:
#: "Supermicro 16"; iDRAC's is not given there, only that exhaustion locks logins out ~20 min)
SESSION_LIMITS: dict[str, int] = {"supermicro": 16}

_BY_NAME = {
    "hpe": HPE,
    "hp": HPE,
    "dell": DELL,
    "lenovo": LENOVO,
    "supermicro": SUPERMICRO,
    "ami": AMI,
    "openbmc": OPENBMC,
}


def _string(value: Any) -> str:
    """A field the BMC meant as text, else "" (a hostile BMC may send any JSON there)."""
    return value if isinstance(value, str) else ""


def detect_vendor(root: dict[str, Any], manager: dict[str, Any] | None = None) -> Vendor:
    vendor_field = _string(root.get("Vendor")).strip().lower()
    if vendor_field in _BY_NAME:
        return _BY_NAME[vendor_field]
    oem = root.get("Oem") or {}
    if isinstance(oem, dict):
        for key in oem:
            if key.lower() in _BY_NAME:
                return _BY_NAME[key.lower()]
    name = _string(root.get("Name"))
    if name.startswith(("HPE ", "HP ")):
        return HPE
    product = _string(root.get("Product")).lower()
    if "dell" in product:
        return DELL
    if manager:
        model = _string(manager.get("Model")).lower()
        if "openbmc" in model:
            return OPENBMC
        if "xclarity" in model:
            return LENOVO
        if model.startswith("ilo"):
            return HPE
    links = root.get("Links")
    service = links.get("ManagerProvidingService") if isinstance(links, dict) else None
    provider = service.get("@odata.id") if isinstance(service, dict) else None
    if isinstance(provider, str) and provider.rstrip("/").endswith("/Managers/bmc"):
        return OPENBMC
    return GENERIC


# Supermicro X12 firmware lists "GracefulShutdownGracefulRestart" in its
# ResetType@Redfish.AllowableValues (two values run together); it accepts both halves.
_RUN_TOGETHER = {"GracefulShutdownGracefulRestart": ("GracefulShutdown", "GracefulRestart")}


def normalise_reset_values(values: list[Any]) -> tuple[str, ...]:
    result: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        for part in _RUN_TOGETHER.get(value, (value,)):
            if part not in result:
                result.append(part)
    return tuple(result)
