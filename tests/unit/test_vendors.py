import json
from pathlib import Path

import pytest

from oob.drivers.redfish.vendors import detect_vendor, normalise_reset_values

CAPTURES = Path(__file__).resolve().parents[2] / "mocks" / "captures"


@pytest.mark.parametrize(
    ("folder", "manager_file", "expected"),
    [
        ("hpe-ilo5-2.72_dl385-gen10plus-v2", None, "hpe"),
        ("hpe-ilo5-1.1x_dl180-gen10_proliantutils", None, "hpe"),
        ("dell-idrac9-6.00_r750", None, "dell"),
        ("dell-idrac9-3.34_r640_sushy", None, "dell"),
        ("lenovo-xcc-tgbt42s-2.83_sr670v2", None, "lenovo"),
        ("supermicro-x13-11.01.01_sys-821ge-tnhr", None, "supermicro"),
        ("supermicro-x12_sys-510t-mr_bmclib", None, "supermicro"),
        ("ami-megarac_gigabyte-h262-z63", None, "ami"),
        ("openbmc-bmcweb-2.15.0-dev", "redfish_v1_Managers_bmc.json", "openbmc"),
        ("dmtf-public-rackmount1", None, "generic"),
    ],
)
def test_vendor_from_real_service_roots(folder: str, manager_file: str | None, expected: str) -> None:
    root = json.loads((CAPTURES / folder / "redfish_v1.json").read_text())
    manager = json.loads((CAPTURES / folder / manager_file).read_text()) if manager_file else None
    assert detect_vendor(root, manager).key == expected


def test_supermicro_run_together_value_is_split() -> None:
    values = ["On", "ForceOff", "GracefulShutdownGracefulRestart", "ForceRestart", "Nmi", "ForceOn"]
    assert normalise_reset_values(values) == (
        "On",
        "ForceOff",
        "GracefulShutdown",
        "GracefulRestart",
        "ForceRestart",
        "Nmi",
        "ForceOn",
    )
