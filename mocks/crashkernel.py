"""What a simulated host does after its kernel panics: the crash kernel and kdump, or nothing.

:class:`CrashKernel` watches one :class:`~mocks.host.SimulatedHost`.  When an NMI panics
it, the crash kernel (if armed) runs a :class:`~mocks.kdump.KdumpWriter` into the host's
dump target one step at a time on the host's timers — directory, kernel log, vmcore in
chunks, final rename or README — then reboots the host.  Without a crash kernel the
panic timeout (``kernel.panic``) reboots the host and no dump is written.

When the host has ``fence_kdump`` nodes (:mod:`mocks.fence_kdump`), the booted crash kernel
sends them fence_kdump's "kdump has started" before the dump begins, then every interval
until the dump ends.

Each step runs only if the host's epoch is the one it was scheduled in: a power action
in between ends the dump where it was (no more writes, no rename, no reboot).

The dump directory's name carries the crashed host's time; two crashes of one host in the
same minute would get the same name (SUSE and Debian names stop at minutes), so the host's
clock is taken to have moved on by a minute for each name already there, as oob must
never rely on the name's time anyway.

The host's serial console (:attr:`SimulatedHost.console`) shows it all as a real one
does: the panic (the same lines the dump's kernel log ends with), the crash kernel
booting (``Linux version``, a command line with ``elfcorehdr=``), kdump's own messages
(RHEL's ``kdump: saving vmcore`` ... ``kdump: saving vmcore complete`` or ``failed``, as
``kdump.sh`` prints them; Debian's ``kdump-tools: saved vmcore in ...`` from
``kdump-config``; SUSE hosts print RHEL's lines, a simplification), the final action and
``reboot: Restarting system``.  Without a crash
kernel: the panic, ``Rebooting in N seconds..`` and the end-of-panic marker.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .fence_kdump import Notifier
from .host import Event, HostRecord, HostState, SimulatedHost
from .kdump import DumpSpec, KdumpWriter, Step, dmesg_text
from .layouts import host_layout

#: the running kernel each family's dump names in its header and log
KERNELS: dict[str, str] = {
    "rhel": "5.14.0-427.13.1.el9_4.x86_64",
    "suse": "6.4.0-150600.23.25-default",
    "debian": "6.1.0-21-amd64",
}
#: KdumpWriter.state -> SimulatedHost.dump_status
DUMP_STATUS: dict[str, str] = {
    "dumping": "writing",
    "done": "complete",
    "stalled": "stalled",
    "failed": "failed",
}
#: kdump writes in about this many pieces, so a watcher sees the vmcore grow
CHUNKS = 16


@dataclass
class CrashKernel:
    host: SimulatedHost

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._writer: KdumpWriter | None = None
        #: fence_kdump_send in the crash kernel (when the host has fence_kdump nodes)
        self.fence_kdump = Notifier(self.host)
        self.host.watch(self._on_event)

    @property
    def writer(self) -> KdumpWriter | None:
        """The writer of the latest dump (None before the first)."""
        with self._lock:
            return self._writer

    def _on_event(self, host: SimulatedHost, record: HostRecord) -> None:
        if (
            record.event not in (Event.NMI.value, Event.SYSRQ_CRASH.value)
            or record.after != HostState.PANICKED.value
        ):
            return
        if record.before == HostState.PANICKED.value:
            return  # an NMI to a host that already panicked changes nothing
        if host.timers is None:
            return  # a host on its own: no time passes, it stays panicked (kernel.panic=0)
        # the epoch of the panic itself: a power action since (on another thread) ends this crash
        epoch = record.epoch
        config, faults = host.config, host.faults
        panic = "sysrq" if record.event == Event.SYSRQ_CRASH.value else "unknown_nmi"
        if not config.armed or config.dump_target is None or faults.kdump_not_armed:
            console_panic_without_kdump(host, panic)
            host.call_later(host.scaled(config.panic_timeout), lambda: self._reboot(epoch))
            return
        writer = self._new_writer(panic, hung=record.before == HostState.HUNG.value)
        with self._lock:
            self._writer = writer
        console_panic(host, writer.spec)
        self._advance(writer, epoch)

    def _reboot(self, epoch: int) -> None:
        if self.host.epoch == epoch:
            self.host.console.kernel_lines(self.host.uptime, ("reboot: Restarting system",))
        self.host.fire_if(epoch, Event.REBOOT)

    def _new_writer(self, panic: str = "unknown_nmi", hung: bool = False) -> KdumpWriter:
        host, config, faults = self.host, self.host.config, self.host.faults
        assert config.dump_target is not None
        layout = host_layout(config.layout)
        identity = {"ip": config.address, "hostname": host.name, None: None}[layout.identity]
        spec = DumpSpec(
            layout=layout.writer,
            identity=identity,
            hostname=host.name,
            size=config.dump_size,
            chunk=max(4096, min(64 * 1024, config.dump_size // CHUNKS)),
            rate=config.dump_rate,
            boot_delay=config.boot_delay,
            dmesg_delay=config.dmesg_delay,
            fault="stall" if faults.dump_stall else "disk_full" if faults.disk_full else None,
            kernel=KERNELS[layout.family],
            seed=host.nmi_count,
            panic=panic,
            # the log shows the hang only if the host was hung when the NMI came
            hang_kind=config.hang_kind if hung else None,
            uptime=host.uptime if hung and config.hang_kind else None,
        )
        crash_time = datetime.now().replace(microsecond=0)
        for minutes in range(24 * 60):
            then = replace(spec, crash_time=crash_time + timedelta(minutes=minutes))
            writer = KdumpWriter(config.dump_target, then, host.clock, host.scale)
            if not (config.dump_target / writer.directory_name()).exists():
                return writer
        raise RuntimeError(f"{host.name}: a day of dump directory names is already taken")

    def _advance(self, writer: KdumpWriter, epoch: int) -> None:
        """One kdump step, then the next one scheduled after the time it takes."""
        host = self.host
        if host.epoch != epoch:
            return  # powered off or reset since: this dump ends where it was
        if writer.state == "panicked":
            # the crash kernel has booted: kdump's initramfs sends fence_kdump before it dumps,
            # and goes on until the dump ends (the host reboots) or another crash begins
            self.fence_kdump.start(
                lambda: self.writer is writer and host.state in (HostState.PANICKED, HostState.DUMPING)
            )
        step = writer.step()
        console_kdump_step(host, writer, step)
        if step is None:
            host.note_dump(None, DUMP_STATUS.get(writer.state, writer.state))
            if writer.state != "stalled":
                # kdump's final action, on success and (failure_action) on failure alike
                host.fire_if(epoch, Event.REBOOT)
            return
        if step.action == "mkdir":
            host.note_dump(writer.directory, "writing")
            moved_on = host.fire_if(epoch, Event.KDUMP)
            if moved_on is None:
                return
            epoch = moved_on
        host.call_later(host.scaled(step.wait), lambda: self._advance(writer, epoch))


# -- the serial console ------------------------------------------------------------------------

#: what kexec appends to the crash kernel's command line (RHEL's KDUMP_COMMANDLINE_APPEND)
CRASH_CMDLINE_APPEND = (
    "irqpoll nr_cpus=1 reset_devices cgroup_disable=memory mce=off numa=off udev.children-max=2 "
    "panic=10 acpi_no_memhotplug transparent_hugepage=never nokaslr hest_disable novmcoredd cma=0 hugetlb_cma=0"
)
#: the crash kernel's uptime when kdump starts, as printed on real consoles (initrd, systemd)
KDUMP_UPTIME = 4.8


def _family(host: SimulatedHost) -> str:
    return host_layout(host.config.layout).family


def console_panic(host: SimulatedHost, spec: DumpSpec) -> None:
    """The panic as the crashed kernel prints it, then the crash kernel's first lines."""
    log = dmesg_text(spec).splitlines()
    # the console shows the end of the kernel log: a hung host's reports (after the last of
    # its ordinary chatter, mocks.kernellog), else from the trigger's first line on.  They
    # come out at once here, where a real console would have shown the reports as they came.
    chatter = [i + 1 for i, line in enumerate(log) if "perf: interrupt took too long" in line]
    starts = chatter or [
        i for i, line in enumerate(log) if "Uhhuh. NMI" in line or "sysrq: Trigger a crash" in line
    ]
    if not starts:
        starts = [i for i, line in enumerate(log) if "Kernel panic - not syncing" in line] or [0]
    host.console.write("".join(line + "\n" for line in log[starts[-1] :]))
    kernel = spec.kernel
    host.console.kernel_lines(
        0.0,
        (
            f"Linux version {kernel} (mockbuild@x86-vm-07.build.eng.example.com) (gcc (GCC) 11.4.1 20231218) "
            "#1 SMP PREEMPT_DYNAMIC Thu Apr 4 20:44:13 EDT 2024",
            f"Command line: elfcorehdr=0xbf000000 BOOT_IMAGE=(hd0,gpt2)/vmlinuz-{kernel} ro console=ttyS0,115200 "
            + CRASH_CMDLINE_APPEND,
            "x86/fpu: Supporting XSAVE feature 0x001: 'x87 floating point registers'",
            "BIOS-provided physical RAM map:",
            f"Kernel command line: elfcorehdr=0xbf000000 BOOT_IMAGE=(hd0,gpt2)/vmlinuz-{kernel} ro "
            "console=ttyS0,115200 " + CRASH_CMDLINE_APPEND,
        ),
    )
    host.console.kernel_lines(0.412, ("Run /init as init process",))


def console_panic_without_kdump(host: SimulatedHost, panic: str) -> None:
    """No crash kernel: the panic, the panic timeout, and the end marker; nothing boots."""
    reason = "sysrq triggered crash" if panic == "sysrq" else "NMI: Not continuing"
    first = (
        ("sysrq: Trigger a crash",)
        if panic == "sysrq"
        else (
            "Uhhuh. NMI received for unknown reason 3d on CPU 0.",
            "Do you have a strange power saving mode enabled?",
        )
    )
    timeout = host.config.panic_timeout
    host.console.kernel_lines(
        host.uptime,
        (
            *first,
            f"Kernel panic - not syncing: {reason}",
            f"CPU: 0 PID: 0 Comm: swapper/0 Not tainted {KERNELS.get(_family(host), KERNELS['rhel'])} #1",
            "Kernel Offset: disabled",
            *((f"Rebooting in {timeout:g} seconds..",) if timeout > 0 else ()),
            f"---[ end Kernel panic - not syncing: {reason} ]---",
        ),
    )


def console_kdump_step(host: SimulatedHost, writer: KdumpWriter, step: Step | None) -> None:
    """kdump's own messages for the step just taken (None: kdump has finished)."""
    family = _family(host)
    directory = writer.directory.name if writer.directory is not None else ""
    uptime = KDUMP_UPTIME + 0.05 * len(writer.history)
    if family == "debian":
        lines = _debian_lines(writer, step, directory)
    else:
        lines = _rhel_lines(writer, step, directory)
    if lines:
        host.console.kernel_lines(uptime, lines)
    if step is None and writer.state != "stalled":
        # RHEL's kdump.sh names its final action; Debian's kdump-config just reboots
        final = ("kdump[550]: Executing final action systemctl reboot -f",) if family != "debian" else ()
        host.console.kernel_lines(uptime + 0.2, (*final, "reboot: Restarting system"))


def _first_vmcore_write(writer: KdumpWriter, step: Step) -> bool:
    """The first write of the memory image (not the kernel log before it)."""
    if step.action != "write" or step.path is None or "dmesg" in step.path or step.path.endswith(".txt"):
        return False
    image = [s for s in writer.history if s.action == "write" and s.path == step.path]
    return len(image) <= 1


def _rhel_lines(writer: KdumpWriter, step: Step | None, directory: str) -> tuple[str, ...]:
    base = f"/sysroot/var/crash/{directory}"
    if step is None:
        if writer.state == "done":
            return (
                "kdump[540]: saving vmcore complete",
                f"kdump[545]: saving the /run/initramfs/kexec-dmesg.log to {base}/",
            )
        if writer.state == "failed":
            return (
                "kdump[538]: makedumpfile: write_buffer: Can't write the dump file(vmcore-incomplete). "
                "No space left on device",
                "kdump[540]: saving vmcore failed, exitcode:1",
            )
        return ()
    if step.action == "mkdir":
        return (
            "systemd[1]: Starting Kdump Vmcore Save Service...",
            "kdump[480]: Kdump is using the default log level(3).",
            f"kdump[530]: saving to {base}/",
            f"kdump[535]: saving vmcore-dmesg.txt to {base}/",
        )
    if _first_vmcore_write(writer, step):
        return ("kdump[536]: saving vmcore-dmesg.txt complete", "kdump[538]: saving vmcore")
    return ()


def _debian_lines(writer: KdumpWriter, step: Step | None, directory: str) -> tuple[str, ...]:
    base = f"/var/crash/{directory}"
    if step is None:
        if writer.state == "done":
            return (f"kdump-tools[526]:  * kdump-tools: saved vmcore in {base}",)
        if writer.state == "failed":
            return (f"kdump-tools[526]:  * kdump-tools: failed to save vmcore in {base}",)
        return ()
    if step.action == "mkdir":
        return (
            "systemd[1]: Starting kdump-tools-dump.service - Kernel crash dump capture service...",
            "kdump-tools[520]: Starting kdump-tools:",
        )
    if _first_vmcore_write(writer, step):
        return (f"kdump-tools[526]:  * running makedumpfile -c -d 31 /proc/vmcore {base}/dump-incomplete",)
    return ()
