"""The only commands oob runs on an ESXi host: fixed strings and validated integers.

No name, path or other text from the inventory or the host ever goes into a command: a VM
called ``x; reboot`` is found by comparing names in Python, and the command that acts on
it carries its world ID or vmid, an integer checked here.  The commands run through the
login shell of the ESXi user (``sh -c``), as ``ssh esxi 'vmdumper -l'`` would.
"""

from __future__ import annotations

from oob.drivers.esxi.listing import MAX_ID
from oob.model import PowerAction

#: running VMs with their world IDs and display names
LIST_RUNNING = "vmdumper -l"
#: every registered VM with its vmid, name and .vmx file
LIST_REGISTERED = "vim-cmd vmsvc/getallvms"
#: the ESXi version line ("VMware ESXi 8.0.2 build-22380479")
VERSION = "vmware -v"

#: ``vim-cmd vmsvc/power.*`` for each action (cycle is off, then on)
POWER_VERBS: dict[PowerAction, tuple[str, ...]] = {
    PowerAction.ON: ("on",),
    PowerAction.OFF: ("off",),
    PowerAction.SHUTDOWN: ("shutdown",),
    PowerAction.RESET: ("reset",),
    PowerAction.CYCLE: ("off", "on"),
}


def _checked(value: int, what: str) -> int:
    # bool is an int: never a valid ID
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
    return value


def nmi(wid: int) -> str:
    """Send an NMI to the VM whose world ID is ``wid``."""
    return f"vmdumper {_checked(wid, 'world ID')} nmi"


def power_state(vmid: int) -> str:
    return f"vim-cmd vmsvc/power.getstate {_checked(vmid, 'vmid')}"


def power(verb: str, vmid: int) -> str:
    if verb not in ("on", "off", "shutdown", "reset"):
        raise ValueError(f"unknown power verb {verb!r}")
    return f"vim-cmd vmsvc/power.{verb} {_checked(vmid, 'vmid')}"
