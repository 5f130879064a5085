"""A fake ESXi shell for the tests: ``vmdumper``, ``vim-cmd`` and ``vmware`` as small scripts
that print what VMware's documentation and public examples show (docs/ESXI.md), over the
state in one JSON file, and record every NMI they deliver in a counter file.

The scripts run under a real sshd (:mod:`mocks.sshd`) whose login puts their directory
first on PATH, so ``vmdumper -l`` sent by oob over SSH runs the fake.  Knobs (state keys):

- ``vms``: ``[{vmid, wid, cartel, name, power ("on"/"off"), cfg}]``;
- ``listing_file``: a file whose bytes ``vmdumper -l`` prints instead (hostile listings);
- ``nmi_then``: after recording an NMI, ``"sleep"`` (no answer until killed) or ``"drop"``
  (kill this SSH session's sshd processes: the connection drops without an exit status);
- ``nmi_exit``: the exit status of ``vmdumper WID nmi`` after recording it (default 0).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = r"""#!{python} -IS
import json, os, signal, sys, time
STATE = {state!r}
NMI_LOG = {nmi_log!r}
LISTENER_PID_FILE = {pid_file!r}
TOOL = {tool!r}

def load():
    with open(STATE) as f:
        return json.load(f)

def save(state):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, STATE)

def out(text):
    sys.stdout.write(text)
    sys.stdout.flush()

def fault(name, msg):
    out("(vim.fault.%s) {{\n   faultCause = (vmodl.MethodFault) null,\n   faultMessage = <unset>,\n   msg = \"%s\"\n   msg = \"Received SOAP response fault from [<cs p:00000000, TCP:localhost:8307>]: powerOn\"\n}}\n" % (name, msg))

def drop_connection():
    # kill this login's sshd processes (not the listener): the TCP connection ends and
    # the client never gets an exit status
    with open(LISTENER_PID_FILE) as f:
        listener = int(f.read().split()[0])
    pid = os.getppid()
    victims = []
    while pid > 1 and pid != listener:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        if name.startswith("sshd"):
            victims.append(pid)
        pid = parent
    for victim in victims:
        os.kill(victim, signal.SIGKILL)
    time.sleep(2)

def vmdumper(args):
    state = load()
    if args == ["-l"]:
        if state.get("listing_file"):
            with open(state["listing_file"], "rb") as f:
                sys.stdout.buffer.write(f.read())
            return 0
        for vm in state["vms"]:
            if vm["power"] == "on":
                out('wid=%d pid=-1 cfgFile="%s" uuid="%s" displayName="%s" vmxCartelID=%d\n' % (
                    vm["wid"], vm["cfg"], vm.get("uuid", "56 4d 74 f8 c8 22 41 27-a3 88 49 df 8b dc d6 63"),
                    vm["name"], vm["cartel"]))
        return 0
    if len(args) == 2 and args[1] == "nmi":
        wid = int(args[0])
        if not any(vm["power"] == "on" and vm["wid"] == wid for vm in state["vms"]):
            sys.stderr.write("Unable to find world %d\n" % wid)
            return 1
        with open(NMI_LOG, "a") as f:
            f.write("%d\n" % wid)
        then = state.get("nmi_then")
        if then == "sleep":
            time.sleep(5)  # longer than the tests' 1 s deadline; ends soon after on its own
        elif then == "drop":
            drop_connection()
        return int(state.get("nmi_exit", 0))
    sys.stderr.write("usage: vmdumper -l | vmdumper <wid> <command>\n")
    return 2

def vim_cmd(args):
    state = load()
    if args == ["vmsvc/getallvms"]:
        out("Vmid   Name                 File                                   Guest OS          Version   Annotation\n")
        for vm in state["vms"]:
            out("%-6d %-20s [datastore1] %s/%s.vmx   rhel9_64Guest     vmx-19    %s\n" % (
                vm["vmid"], vm["name"], vm.get("dir", "vm%d" % vm["vmid"]), vm.get("dir", "vm%d" % vm["vmid"]),
                vm.get("annotation", "")))
        return 0
    if len(args) == 2 and args[0].startswith("vmsvc/power."):
        verb = args[0].split(".", 1)[1]
        vmid = int(args[1])
        vm = next((v for v in state["vms"] if v["vmid"] == vmid), None)
        if vm is None:
            out("(vim.fault.NotFound) {{\n   msg = \"Unable to find a VM corresponding to \\\"%d\\\"\"\n}}\n" % vmid)
            return 1
        if verb == "getstate":
            out("Retrieved runtime info\n%s\n" % ("Powered on" if vm["power"] == "on" else "Powered off"))
            return 0
        wanted = {{"on": "on", "off": "off", "shutdown": "off", "reset": "on"}}[verb]
        if (verb == "on" and vm["power"] == "on") or (verb in ("off", "shutdown", "reset") and vm["power"] == "off"):
            fault("InvalidPowerState", "The attempted operation cannot be performed in the current state (%s)."
                  % ("Powered on" if vm["power"] == "on" else "Powered off"))
            return 1
        with open(STATE + ".power.log", "a") as f:
            f.write("%s %d\n" % (verb, vmid))
        if verb == "on":
            vm["wid"] += 1000
            vm["cartel"] += 1000
        vm["power"] = wanted
        save(state)
        out({{"on": "Powering on VM:\n", "off": "Powering off VM:\n", "reset": "Reset VM:\n", "shutdown": ""}}[verb])
        return 0
    sys.stderr.write("Unknown command: '%s'\n" % " ".join(args))
    return 1

def vmware(args):
    if args == ["-v"]:
        out("VMware ESXi 8.0.2 build-22380479\n")
        return 0
    return 1

sys.exit({{"vmdumper": vmdumper, "vim-cmd": vim_cmd, "vmware": vmware}}[TOOL](sys.argv[1:]))
"""


@dataclass
class FakeEsxi:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    @property
    def nmi_log(self) -> Path:
        return self.root / "nmi.log"

    @classmethod
    def create(cls, root: Path, listener_pid_file: Path) -> FakeEsxi:
        fake = cls(root)
        fake.bin.mkdir(parents=True, exist_ok=True)
        for tool in ("vmdumper", "vim-cmd", "vmware"):
            path = fake.bin / tool
            path.write_text(
                SCRIPT.format(
                    python=sys.executable,
                    state=str(fake.state_path),
                    nmi_log=str(fake.nmi_log),
                    pid_file=str(listener_pid_file),
                    tool=tool,
                )
            )
            path.chmod(0o755)
        fake.reset()
        return fake

    def reset(self, vms: list[dict[str, Any]] | None = None, **knobs: Any) -> None:
        for path in (self.nmi_log, Path(f"{self.state_path}.power.log")):
            path.unlink(missing_ok=True)
        self.write({"vms": vms if vms is not None else [vm("web01", 1)], **knobs})

    def write(self, state: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(state))

    def state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.state_path.read_text())
        return loaded

    def nmis(self) -> list[int]:
        """World IDs that got an NMI, in order."""
        if not self.nmi_log.exists():
            return []
        return [int(line) for line in self.nmi_log.read_text().split()]

    def power_log(self) -> list[str]:
        path = Path(f"{self.state_path}.power.log")
        return path.read_text().splitlines() if path.exists() else []


def vm(
    name: str, vmid: int, *, power: str = "on", directory: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One VM of the fake's state (world ID and cartel ID derived from the vmid)."""
    folder = directory or f"vm{vmid}"
    return {
        "vmid": vmid,
        "wid": 2099700 + vmid * 10,
        "cartel": 2099690 + vmid * 10,
        "name": name,
        "power": power,
        "dir": folder,
        "cfg": f"/vmfs/volumes/5d35e7d8-e8df636f-46b9-0025907d9d5c/{folder}/{folder}.vmx",
        **extra,
    }


def environment_line(public_key: str, path: Path) -> str:
    """An authorized_keys line whose logins get ``path`` first on PATH."""
    return f'environment="PATH={path}:{os.environ.get("PATH", "/usr/bin:/bin")}" {public_key}'
