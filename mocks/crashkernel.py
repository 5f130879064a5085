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
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mocks.fence_kdump import Notifier
from mocks.host import Event, HostRecord, HostState, SimulatedHost
from mocks.kdump import DumpSpec, KdumpWriter
from mocks.layouts import host_layout

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
        if not config.armed or config.dump_target is None or faults.kdump_not_armed:
            host.call_later(host.scaled(config.panic_timeout), lambda: host.fire_if(epoch, Event.REBOOT))
            return
        writer = self._new_writer(
            "sysrq" if record.event == Event.SYSRQ_CRASH.value else "unknown_nmi",
            hung=record.before == HostState.HUNG.value,
        )
        with self._lock:
            self._writer = writer
        self._advance(writer, epoch)

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
