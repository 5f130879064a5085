"""A real libvirtd (session mode) running the test guest under QEMU TCG, torn down whole.

libvirtd run as root is always the privileged (system) daemon: it ignores XDG_* and uses
/run/libvirt, /etc/libvirt and the ``libvirt-qemu`` user, and refuses ``qemu:///session``.
So the daemon runs unprivileged: as the current user, or as ``nobody`` when the tests run
as root, in a temporary HOME/XDG_CONFIG_HOME/XDG_CACHE_HOME/XDG_RUNTIME_DIR, in the
foreground as our child (killed by its pid at the end).  Clients, root included, reach it
through its socket: ``qemu+unix:///session?socket=<run>/libvirt/libvirt-sock``.
``stdio_handler = "file"`` keeps libvirt from spawning a virtlogd.

The domain (``<domain type='qemu'>``: TCG, no /dev/kvm) boots the guest of
:mod:`tests.vm.guest` directly (kernel, initrd, command line with ``crashkernel=``), one
vCPU, :data:`MEMORY_MIB` of RAM, no network, its serial console to a file, and two 9p
shares (virtio-9p works under TCG and needs no disk image): the guest image read-only
for ``kexec -p``, and the dump directory, where the crash kernel writes RHEL's local
layout: the host reads it as a ``file://`` dump target.  ``accessmode='squash'`` (QEMU's
``security_model=none``): files are plain files of the daemon's user, and the guest root's
chown of what it creates, which an unprivileged QEMU cannot do, is not reported as a
failure (``passthrough`` fails the guest's mkdir with EPERM; ``mapped`` would hide modes and
owners in xattrs, which the watcher does not need).

Nothing here deletes what it did not create, and every wait has a deadline.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import libvirt

from tests.vm.guest import (
    ARMED_LINE,
    BOOT_TAG,
    CRASH_UP_LINE,
    DUMP_TAG,
    FIRST_UP_LINE,
    NOT_ARMED_LINE,
    SAVED_LINE,
    GuestImage,
    ensure_guest,
)

#: 96 MiB is the smallest crash reservation Debian's kernel boots in (its bzImage asks for
#: ~64 MiB to decompress); 320 MiB is the least RAM in which that reservation is found
MEMORY_MIB = 320
CRASHKERNEL = "96M"
#: ``quiet`` keeps boot messages off the emulated serial port; the lines the tests look
#: for are the guest's own and KERN_EMERG
KERNEL_CMDLINE = f"console=ttyS0 crashkernel={CRASHKERNEL} quiet"
QEMU = "/usr/bin/qemu-system-x86_64"
LIBVIRTD = "/usr/sbin/libvirtd"

#: deadlines (seconds), generous for a TCG guest on two busy cores
DAEMON_DEADLINE = 30.0
ARMED_DEADLINE = 180.0
DUMP_DEADLINE = 300.0


class VmFixtureError(RuntimeError):
    """The fixture could not start, or a wait passed its deadline (with the evidence)."""


@dataclass
class VmGuest:
    """What tests (and oob's libvirt driver tests) need from the running guest."""

    #: libvirt URI of the session daemon, usable from any process on this machine
    uri: str
    #: name of the persistent domain
    domain: str
    #: the 9p-shared directory the crash kernel writes dump directories into
    dump_dir: Path
    #: the guest's serial console, as QEMU writes it
    serial_log: Path
    #: a directory the daemon's user may write (hypervisor-side dumps go here)
    scratch_dir: Path
    #: seconds from domain start to :data:`ARMED_LINE`, for the record (never asserted)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def dump_target(self) -> str:
        """The dump directory as oob's ``file://`` dump target."""
        return self.dump_dir.as_uri()

    def serial_text(self) -> str:
        try:
            return self.serial_log.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def serial_mark(self) -> int:
        """Where the serial log ends now: pass it as ``since`` to wait only for what follows."""
        return len(self.serial_text())

    def wait_for_serial(self, *needles: str, since: int = 0, timeout: float = ARMED_DEADLINE) -> str:
        """The first serial line after ``since`` that contains one of ``needles``, within
        ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.serial_text()[since:]
            for line in text.splitlines():
                if any(needle in line for needle in needles):
                    return line
            if time.monotonic() >= deadline:
                raise VmFixtureError(
                    f"no {' or '.join(map(repr, needles))} on the serial console in {timeout:.0f} s:\n{_tail(text)}"
                )
            time.sleep(0.2)

    def wait_armed(self, *, since: int = 0, timeout: float = ARMED_DEADLINE) -> str:
        """Wait for the first kernel to have loaded its crash kernel (after ``since``)."""
        line = self.wait_for_serial(ARMED_LINE, NOT_ARMED_LINE, since=since, timeout=timeout)
        if "NOT armed" in line:
            raise VmFixtureError(f"the guest could not arm kdump:\n{_tail(self.serial_text()[since:])}")
        return line

    def ensure_armed(self, timeout: float = ARMED_DEADLINE) -> str:
        """Leave the guest running with kdump armed, whatever a test did to it (powered it
        off, or crashed it and it is still dumping or rebooting)."""
        conn = libvirt.open(self.uri)
        try:
            dom = conn.lookupByName(self.domain)
            if not dom.isActive():
                mark = self.serial_mark()
                dom.create()
                return self.wait_armed(since=mark, timeout=timeout)
        finally:
            conn.close()
        text = self.serial_text()
        last_boot = max(text.rfind(FIRST_UP_LINE), text.rfind(CRASH_UP_LINE), 0)
        return self.wait_armed(since=last_boot, timeout=timeout)

    def dump_dirs(self) -> set[str]:
        return {p.name for p in self.dump_dir.iterdir() if p.is_dir()}

    def wait_dump(self, *, before: set[str], since: int = 0, timeout: float = DUMP_DEADLINE) -> Path:
        """A new dump directory (not in ``before``) that is complete in RHEL's sense:
        ``vmcore`` present, ``vmcore-incomplete`` gone.  Fails at once if the crash kernel
        said (after serial offset ``since``) that saving failed."""
        deadline = time.monotonic() + timeout
        while True:
            if any(
                SAVED_LINE in line and line.endswith("failed)")
                for line in self.serial_text()[since:].splitlines()
            ):
                raise VmFixtureError(
                    f"the crash kernel could not save the dump:\n{_tail(self.serial_text()[since:])}"
                )
            for name in sorted(self.dump_dirs() - before):
                path = self.dump_dir / name
                if (path / "vmcore").exists() and not (path / "vmcore-incomplete").exists():
                    return path
            if time.monotonic() >= deadline:
                listing = {n: sorted(p.name for p in (self.dump_dir / n).iterdir()) for n in self.dump_dirs()}
                raise VmFixtureError(
                    f"no complete dump in {timeout:.0f} s (dump dir: {listing}):\n{_tail(self.serial_text())}"
                )
            time.sleep(0.5)

    def wait_saved(self, *, since: int = 0, timeout: float = DUMP_DEADLINE) -> str:
        return self.wait_for_serial(SAVED_LINE, since=since, timeout=timeout)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _daemon_user() -> tuple[int, int]:
    """Who runs libvirtd: ourselves, or ``nobody`` when we are root (see module docstring)."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def domain_xml(
    name: str,
    image: GuestImage,
    guest_dir: Path,
    dump_dir: Path,
    serial_log: Path,
    cmdline: str = KERNEL_CMDLINE,
) -> str:
    """The test domain: TCG, one vCPU, direct kernel boot, no network, serial to a file
    (appended to, so offsets into it stay valid across power cycles), the image share
    (read-only) and the dump share."""

    def attr(value: object) -> str:
        return quoteattr(str(value))

    return f"""<domain type='qemu'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{MEMORY_MIB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(guest_dir / image.kernel.name))}</kernel>
    <initrd>{escape(str(guest_dir / image.initrd.name))}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <features><acpi/><vmcoreinfo state='on'/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{escape(QEMU)}</emulator>
    <filesystem type='mount' accessmode='squash'>
      <source dir={attr(guest_dir)}/>
      <target dir={attr(BOOT_TAG)}/>
      <readonly/>
    </filesystem>
    <filesystem type='mount' accessmode='squash'>
      <source dir={attr(dump_dir)}/>
      <target dir={attr(DUMP_TAG)}/>
    </filesystem>
    <serial type='file'>
      <source path={attr(serial_log)} append='on'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


@contextmanager
def running_guest(name: str = "oob-vm-guest", final_action: str = "reboot") -> Iterator[VmGuest]:
    """Build (or reuse) the guest image, start a session libvirtd, define and start the
    domain, wait until kdump is armed; on exit destroy and undefine it, stop the daemon,
    make sure neither it nor QEMU outlives us, and remove the temporary tree.

    ``final_action``: what the crash kernel does once the dump is saved, "reboot" (RHEL's
    default) or "poweroff" (the domain then stops: ``on_poweroff`` is destroy)."""
    if final_action not in ("reboot", "poweroff"):
        raise ValueError(f"final_action must be reboot or poweroff, not {final_action!r}")
    image = ensure_guest()
    uid, gid = _daemon_user()
    # under /tmp when we are root: every parent must be searchable by the daemon's user
    root = Path(tempfile.mkdtemp(prefix="oob-vm-", dir="/tmp" if os.geteuid() == 0 else None))
    daemon: subprocess.Popen[bytes] | None = None
    conn: libvirt.virConnect | None = None
    qemu_pid: int | None = None
    try:
        home, run, config, cache = (root / n for n in ("home", "run", "config", "cache"))
        guest_dir, dump_dir, scratch = root / "guest", root / "dumps", root / "scratch"
        for directory in (home, run, config / "libvirt", cache, guest_dir, dump_dir, scratch):
            directory.mkdir(parents=True)
        run.chmod(0o700)
        (config / "libvirt" / "qemu.conf").write_text('stdio_handler = "file"\n')
        # copies, so the daemon's user can read them wherever the cache lives (e.g. under /root)
        for file in {image.kernel, image.bzimage, image.initrd}:
            shutil.copyfile(file, guest_dir / file.name)
        _chown_tree(root, uid, gid)
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(run),
            "XDG_CONFIG_HOME": str(config),
            "XDG_CACHE_HOME": str(cache),
            "XDG_DATA_HOME": str(home / "data"),
            "LIBVIRT_LOG_OUTPUTS": f"3:file:{home / 'libvirtd.log'}",
        }
        # as root, drop to the daemon's user in the child (None: stay who we are)
        root_run = os.geteuid() == 0
        with open(home / "libvirtd.out", "wb") as out:
            daemon = subprocess.Popen(
                [LIBVIRTD],
                env=env,
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=uid if root_run else None,
                group=gid if root_run else None,
                extra_groups=[] if root_run else None,
            )
        socket = run / "libvirt" / "libvirt-sock"
        if len(os.fsencode(socket)) >= 108:  # sun_path
            raise VmFixtureError(f"socket path too long for AF_UNIX (set TMPDIR shorter): {socket}")
        uri = f"qemu+unix:///session?socket={socket}"
        conn = _connect(uri, socket, daemon, home)
        serial_log = root / "serial.log"
        cmdline = f"{KERNEL_CMDLINE} oobvm.final={final_action}"
        dom = conn.defineXML(domain_xml(name, image, guest_dir, dump_dir, serial_log, cmdline))
        started = time.monotonic()
        dom.create()
        qemu_pid = _qemu_pid(run, name)
        guest = VmGuest(uri=uri, domain=name, dump_dir=dump_dir, serial_log=serial_log, scratch_dir=scratch)
        guest.wait_armed()
        guest.timings["boot_to_armed_s"] = round(time.monotonic() - started, 1)
        yield guest
    finally:
        try:
            _teardown(conn, name, daemon, qemu_pid)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _connect(uri: str, socket: Path, daemon: subprocess.Popen[bytes], home: Path) -> libvirt.virConnect:
    deadline = time.monotonic() + DAEMON_DEADLINE
    while True:
        if daemon.poll() is not None:
            raise VmFixtureError(f"libvirtd exited ({daemon.returncode}):\n{_daemon_log(home)}")
        try:
            # libvirt prints every failed connect on stderr: try only once the socket exists
            if socket.exists():
                return libvirt.open(uri)
        except libvirt.libvirtError:
            pass
        if time.monotonic() >= deadline:
            raise VmFixtureError(f"libvirtd did not answer in {DAEMON_DEADLINE:.0f} s:\n{_daemon_log(home)}")
        time.sleep(0.1)


def _daemon_log(home: Path) -> str:
    parts = []
    for name in ("libvirtd.out", "libvirtd.log"):
        try:
            parts.append(_tail((home / name).read_text(errors="replace"), 20))
        except FileNotFoundError:
            pass
    return "\n".join(parts)


def _qemu_pid(run: Path, name: str) -> int | None:
    try:
        return int((run / "libvirt" / "qemu" / "run" / f"{name}.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours is gone for every purpose here
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _teardown(
    conn: libvirt.virConnect | None, name: str, daemon: subprocess.Popen[bytes] | None, qemu_pid: int | None
) -> None:
    if conn is not None:
        try:
            dom = conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        except libvirt.libvirtError:
            pass  # the daemon is stopped below either way; QEMU is checked by pid
        try:
            conn.close()
        except libvirt.libvirtError:
            pass
    if daemon is not None and daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=15)
    # QEMU is daemonised by libvirt (not our child): stop it by its pid if destroy did not,
    # after checking the pid is still that QEMU (its command line names the domain)
    if qemu_pid is not None and _alive(qemu_pid):
        try:
            cmdline = Path(f"/proc/{qemu_pid}/cmdline").read_bytes()
        except FileNotFoundError:
            cmdline = b""
        if f"guest={name}".encode() in cmdline:
            os.kill(qemu_pid, signal.SIGKILL)
            if not _wait_gone(qemu_pid, 10):
                raise VmFixtureError(f"QEMU (pid {qemu_pid}) outlived the fixture")
