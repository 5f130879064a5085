"""VMware ESXi guests (``bmc.kind = "esxi"``): NMI, power and identity over SSH to the host.

The "BMC" of such a host is its ESXi hypervisor: ``bmc.address`` names the ESXi host
(``HOST``, ``HOST:PORT`` or ``ssh://USER@HOST[:PORT]``) and ``bmc.domain`` the VM's display
name.  oob opens **one** SSH connection to the ESXi host (:mod:`oob.ssh`: keys only, the
host key checked against known_hosts, bounded) and runs VMware's own tools there
(docs/ESXI.md):

- the NMI: ``vmdumper -l`` finds the running VM's world ID by its display name, then
  ``vmdumper WID nmi`` — the listing is read again right before sending, and the command
  carries the world ID found in it only when that line's display name is exactly
  ``bmc.domain`` and no other line could be the same VM;
- power: ``vim-cmd vmsvc/getallvms`` finds its vmid, ``vim-cmd vmsvc/power.getstate VMID``
  and ``vim-cmd vmsvc/power.on|off|shutdown|reset VMID``;
- identity: ``vmware -v``.

Exactly once: a failure before the action's ``exec`` request may have left (connect, login,
host key, a listing, the channel refused) certainly did nothing — a ``NotDelivered``
error; once it may have left, a lost connection, the deadline, a missing exit status or an
exit status other than 0 (VMware documents none for ``vmdumper``) is ``OutcomeUnknown`` and
the action is never sent again (:mod:`oob.drivers.esxi.remote` decides by asyncssh's state,
never by a message).

Whose SSH settings: the user and port come from ``bmc.address``, else the OpenSSH client
configuration (``~/.ssh/config`` or ``$OOB_SSH_CONFIG``: Host, HostName, User, Port,
IdentityFile, ProxyJump, UserKnownHostsFile), else OpenSSH's defaults; the known_hosts file
is the inventory's ``ssh.known_hosts`` when set.  The guest's own ``ssh.user``, ``ssh.key``,
``ssh.port`` and ``ssh.jump`` are the guest's, not the ESXi host's: they are not used.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from oob import asyncbridge
from oob.drivers.base import BmcDriver
from oob.drivers.esxi import commands
from oob.drivers.esxi.listing import (
    Listing,
    RegisteredVm,
    RunningVm,
    first_line,
    parse_fault,
    parse_getallvms,
    parse_power_state,
    parse_vmdumper,
)
from oob.drivers.esxi.remote import ANSWER_LIMIT, LISTING_LIMIT, CommandFailed, Reply, Stage, run
from oob.errors import (
    BmcProtocolError,
    BmcRefused,
    BmcUnreachable,
    OobError,
    OutcomeUnknown,
    SafetyRefusal,
    TlsError,
    UsageError,
)
from oob.model import ActionResult, BmcInfo, Host, NmiSupport, PowerAction, PowerState
from oob.safetext import printable
from oob.ssh import CLOSE_TIMEOUT, SshAddress, SshErrors, SshOptions, close_connection, connect

#: an ESXi host's SSH: cannot connect or log in (exit 3, nothing was sent); its host key is
#: unknown or changed: its identity did not check out, like a BMC's certificate (exit 3, never
#: retried, never gone around)
ESXI_SSH = SshErrors(BmcUnreachable, TlsError)
#: a vim-cmd fault that says the VM was in the wrong state for the action: nothing was done
_WRONG_STATE = "vim.fault.InvalidPowerState"


def esxi_address(host: Host) -> SshAddress:
    """``bmc.address`` (checked by the inventory) as an SSH address."""
    text = host.bmc.address.strip()
    parts = urlsplit(text if "://" in text else f"ssh://{text}")
    if parts.scheme != "ssh" or not parts.hostname or parts.password is not None:
        raise UsageError(
            f"host '{host.name}': bmc.address must name the ESXi host as HOST, HOST:PORT or ssh://USER@HOST[:PORT]",
            host=host.name,
        )
    try:
        port = parts.port
    except ValueError:
        raise UsageError(
            f"host '{host.name}': bmc.address has a port that is not a number", host=host.name
        ) from None
    return SshAddress(
        parts.username or None,
        parts.hostname,
        port,
        jump=None,  # the ssh configuration's ProxyJump for this host, if any
        identity_files=(),
        known_hosts=host.ssh.known_hosts,
    )


class EsxiDriver(BmcDriver):
    method = "esxi"

    def __init__(self, host: Host, *, options: SshOptions | None = None) -> None:
        super().__init__()
        if not host.bmc.domain:
            raise UsageError(
                f"host '{host.name}': bmc.kind 'esxi' needs bmc.domain, the VM's display name", host=host.name
            )
        self.host = host
        self.vm_name: str = host.bmc.domain
        self.address = esxi_address(host)
        self.timeout = host.bmc.timeout
        self.options = options or SshOptions(connect_timeout=self.timeout)
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"EsxiDriver({self.host.name!r}, {self.address.where!r}, {self.vm_name!r})"

    @property
    def _where(self) -> str:
        return f"ESXi host {self.address.where}"

    @property
    def _vm(self) -> str:
        return f"VM '{printable(self.vm_name)}'"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        # the bridge's net: every hop's connect is bounded by connect_timeout already
        net = self.options.connect_timeout * 9 + 5
        try:
            self._conn = asyncbridge.run(connect(self.address, self.options, ESXI_SSH), timeout=net)
        except OobError as exc:
            exc.for_host(self.host.name)
            raise
        except TimeoutError:
            raise BmcUnreachable(
                f"ssh {self.address.where}: no connection within {net:g} s",
                host=self.host.name,
                retryable=False,
            ) from None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            asyncbridge.run(close_connection(conn), timeout=CLOSE_TIMEOUT + 1)
        except Exception:  # noqa: BLE001 - close never raises: the connection is dropped instead
            conn.abort()

    # -- running one command ----------------------------------------------------------------

    def _run(self, command: str, *, limit: int, stop_when_full: bool, stage: Stage) -> Reply:
        if self._conn is None:
            raise BmcUnreachable(f"{self._where}: not connected", host=self.host.name, retryable=False)
        coro = run(
            self._conn, command, timeout=self.timeout, limit=limit, stop_when_full=stop_when_full, stage=stage
        )
        try:
            return asyncbridge.run(coro, timeout=self.timeout + 2)
        except TimeoutError:
            # the bridge's net fired: the coroutine was cancelled wherever it was
            raise CommandFailed(f"no answer within {self.timeout:g} s", stage) from None

    def _read(self, command: str) -> Reply:
        """A command that only reads: any failure is ``NotDelivered`` (nothing was changed)."""
        try:
            reply = self._run(command, limit=LISTING_LIMIT, stop_when_full=True, stage=Stage())
        except CommandFailed as exc:
            raise BmcUnreachable(
                f"{self._where}: {command}: {printable(exc.reason)}", host=self.host.name, retryable=False
            ) from None
        if reply.overflow:
            raise BmcProtocolError(
                f"{self._where}: {command} printed more than {LISTING_LIMIT // 1024} KiB; not read",
                host=self.host.name,
            )
        if reply.exit_status != 0:
            said = first_line(reply.said)
            how = (
                f"exit status {reply.exit_status}"
                if reply.exit_status is not None
                else f"signal {printable(reply.exit_signal)}"
            )
            raise BmcUnreachable(
                f"{self._where}: {command} failed ({how})" + (f": {said}" if said else ""),
                host=self.host.name,
                retryable=False,
                bmc_message=said,
            )
        return reply

    # -- finding the VM ---------------------------------------------------------------------

    def _running(self) -> RunningVm | None:
        """The running VM of this display name (``vmdumper -l``), None when it is not running."""
        listing = parse_vmdumper(self._read(commands.LIST_RUNNING).text, self.vm_name)
        matches = [vm for vm in listing.vms if vm.display_name == self.vm_name]
        self._check_listing(listing, commands.LIST_RUNNING)
        if len(matches) > 1:
            files = " and ".join(f"'{printable(vm.cfg_file)}' (world ID {vm.wid})" for vm in matches)
            raise SafetyRefusal(
                f"{len(matches)} running VMs on {self._where} have the display name '{printable(self.vm_name)}': "
                f"{files}; oob will not choose (rename one, or give bmc.domain a unique name)",
                host=self.host.name,
            )
        if not matches:
            return None
        found = matches[0]
        # a world ID or cartel ID on two lines: one of them is not what it says (a crafted name)
        if sum(vm.wid == found.wid or vm.cartel == found.cartel for vm in listing.vms) > 1:
            raise BmcProtocolError(
                f"{self._where}: {commands.LIST_RUNNING} lists world ID {found.wid} more than once; not sending",
                host=self.host.name,
            )
        return found

    def _registered(self) -> RegisteredVm:
        """The registered VM of this name (``vim-cmd vmsvc/getallvms``)."""
        listing = parse_getallvms(self._read(commands.LIST_REGISTERED).text, self.vm_name)
        matches = [vm for vm in listing.vms if vm.name == self.vm_name]
        self._check_listing(listing, commands.LIST_REGISTERED)
        if len(matches) > 1:
            files = " and ".join(f"'{printable(vm.file)}' (vmid {vm.vmid})" for vm in matches)
            raise SafetyRefusal(
                f"{len(matches)} VMs on {self._where} are named '{printable(self.vm_name)}': {files}; "
                "oob will not choose (rename one, or give bmc.domain a unique name)",
                host=self.host.name,
            )
        if not matches:
            raise UsageError(
                f"no VM named '{printable(self.vm_name)}' is registered on {self._where} "
                f"({len(listing.vms)} VMs listed by {commands.LIST_REGISTERED}); check bmc.domain "
                "(the VM's display name, exactly)",
                host=self.host.name,
            )
        found = matches[0]
        if sum(vm.vmid == found.vmid for vm in listing.vms) > 1:
            # an annotation line crafted to look like a VM's line
            raise BmcProtocolError(
                f"{self._where}: {commands.LIST_REGISTERED} lists vmid {found.vmid} more than once; not acting",
                host=self.host.name,
            )
        return found

    def _check_listing(self, listing: Listing[Any], command: str) -> None:
        if listing.suspicious:
            raise SafetyRefusal(
                f"{self._where}: {command} has a line that names '{printable(self.vm_name)}' but cannot be read "
                f"one way only ({listing.suspicious[0]}); oob will not guess which VM it is",
                host=self.host.name,
            )
        if listing.cut:
            raise BmcProtocolError(
                f"{self._where}: {command} printed more lines than oob reads", host=self.host.name
            )
        if listing.unread:
            self.warnings.append(
                f"{command}: {listing.unread} line(s) not in the documented form were skipped"
            )

    # -- reading ------------------------------------------------------------------------------

    def _state_of(self, vm: RegisteredVm) -> PowerState:
        reply = self._read(commands.power_state(vm.vmid))
        state = parse_power_state(reply.text)
        if state is None:
            said = first_line(reply.said)
            self.warnings.append(f"power.getstate answered no known state ({said or 'nothing'})")
            return PowerState.UNKNOWN
        return state

    def power_state(self) -> PowerState:
        return self._state_of(self._registered())

    def nmi_support(self) -> NmiSupport:
        # every ESXi since 4 has vmdumper's nmi.  The listing is read here too, so that two
        # running VMs of this name or a crafted line are refused while planning, before the
        # question and the audit record; whether the VM runs is power_state's to say
        self._running()
        return NmiSupport(True, "vmdumper")

    def info(self) -> BmcInfo:
        vm = self._registered()
        power = self._state_of(vm)
        version: str | None = None
        try:
            version = first_line(self._read(commands.VERSION).text)
        except BmcUnreachable as exc:
            self.warnings.append(f"could not read the ESXi version: {exc.message}")
        running = None
        if power is PowerState.ON:
            try:
                running = self._running()
            except OobError as exc:
                self.warnings.append(f"could not read the VM's world ID: {exc.message}")
        world = f", world ID {running.wid}" if running else ""
        return BmcInfo(
            host=self.host.name,
            method=self.method,
            vendor="VMware",
            model="ESXi virtual machine",
            firmware=version,
            power=power,
            nmi=NmiSupport(True, "vmdumper"),
            system_id=f"vmid {vm.vmid}",
            manager=f"{self._where}, {self._vm} ({printable(vm.file)}){world}",
            warnings=tuple(self.warnings),
        )

    # -- actions ------------------------------------------------------------------------------

    def _act(self, command: str, what: str) -> Reply:
        """Run an action once.  ``NotDelivered`` only when its exec request certainly did not
        leave; every later failure is ``OutcomeUnknown``."""
        stage = Stage()
        try:
            reply = self._run(command, limit=ANSWER_LIMIT, stop_when_full=False, stage=stage)
        except CommandFailed as exc:
            if not stage.opened:
                raise BmcUnreachable(
                    f"{self._where}: {what} not sent ({command}: {printable(exc.reason)})",
                    host=self.host.name,
                    retryable=False,
                ) from None
            raise OutcomeUnknown(
                f"{self._where}: {command} was sent but {printable(exc.reason)}: the {what} may have been applied, "
                "so it is not sent again",
                host=self.host.name,
            ) from None
        if reply.exit_status is None:
            raise OutcomeUnknown(
                f"{self._where}: {command} ended by signal {printable(reply.exit_signal)}, without an exit status: "
                f"the {what} may have been applied, so it is not sent again",
                host=self.host.name,
            )
        return reply

    def send_nmi(self) -> ActionResult:
        # the world ID is read again here, right before sending: a VM restarted since the
        # plan runs under a new one, and the command carries the one this listing shows
        vm = self._running()
        if vm is None:
            raise SafetyRefusal(
                f"{self._vm} is not running on {self._where} (not in {commands.LIST_RUNNING}): powered off or "
                "suspended, an NMI would do nothing; not sending",
                host=self.host.name,
            )
        command = commands.nmi(vm.wid)
        reply = self._act(command, "NMI")
        said = first_line(reply.said)
        if reply.exit_status != 0:
            # VMware documents no exit statuses for vmdumper: a failure status does not say
            # the NMI was not delivered
            raise OutcomeUnknown(
                f"{self._where}: {command} exited with status {reply.exit_status}"
                + (f" ({said})" if said else "")
                + ": the NMI may have been delivered, so it is not sent again",
                host=self.host.name,
                bmc_message=said,
            )
        return ActionResult(
            host=self.host.name, action="nmi", method=self.method, status=0, bmc_message=said, sent=(command,)
        )

    def power(self, action: PowerAction) -> ActionResult:
        vm = self._registered()
        sent: list[str] = []
        for verb in commands.POWER_VERBS[action]:
            command = commands.power(verb, vm.vmid)
            reply = self._act(command, f"power {verb}")
            said = first_line(reply.said)
            fault = parse_fault(reply.said)
            if reply.exit_status == 0 and fault is None:
                sent.append(command)
                continue
            done = f" after {', '.join(sent)} succeeded" if sent else ""
            if fault == _WRONG_STATE and not sent:
                # hostd answered that the VM's state does not allow it: the action did not start
                # (after a first step of a cycle was applied, "not delivered" would be untrue)
                raise BmcRefused(
                    f"{self._where} refused {command}: the VM is not in a state for power {verb}",
                    host=self.host.name,
                    bmc_message=said,
                )
            raise OutcomeUnknown(
                f"{self._where}: {command} ended with exit status {reply.exit_status}"
                + (f" ({printable(fault)})" if fault else "")
                + f"{done}: it may have been applied, so it is not sent again",
                host=self.host.name,
                bmc_message=said,
            )
        # vim-cmd says "Powering on VM:" and the like: the commands sent say more
        return ActionResult(
            host=self.host.name, action=action.value, method=self.method, status=0, sent=tuple(sent)
        )
