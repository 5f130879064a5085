"""Events flow back from runbooks to renderers (console, JSON lines, audit log).

Runbooks never print: they call an ``emit`` function with these.  Every event kind is
declared once, in :class:`EventKind`, with what it means; README's list of events is
tested against this declaration (tests/unit/test_event_kinds.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    PROGRESS = "progress"
    ERROR = "error"


class EventKind(StrEnum):
    """The JSON `event` name of every event oob emits (`--json` lines, `on_event`)."""

    # crash, drill, nmi
    PREFLIGHT = "preflight"
    """A host passed the crash preflight: method, power, NMI support, probe, dump target."""
    REFUSED = "refused"
    """A host was refused before anything was sent (the reason in `message`, `error`)."""
    FALLBACK = "fallback"
    """A method could not deliver; the next one is used (`fallback_reason`)."""
    WARNING = "warning"
    """Something the engineer should know that did not stop the work."""
    AUDIT_RECORD_MISSING = "audit_record_missing"
    """An action happened but its audit record could not be written."""
    NMI_SENDING = "nmi_sending"
    """The NMI request is about to leave."""
    NMI_SENT = "nmi_sent"
    """The BMC accepted the NMI (`via`, `at`, `answer`)."""
    NMI_OUTCOME_UNKNOWN = "nmi_outcome_unknown"
    """The NMI request left and no answer came back: it may have been applied; never resent."""
    SYSRQ_SENDING = "sysrq_sending"
    """oob drill is about to write `c` to /proc/sysrq-trigger over SSH."""
    SYSRQ_SENT = "sysrq_sent"
    """The SysRq crash was triggered."""
    HOST_BACK = "host_back"
    """After its dump, the host answers its probe again."""
    HOST_NOT_BACK = "host_not_back"
    """The host did not answer its probe within `--reboot-grace`."""
    POWERED_OFF_AFTER_DUMP = "powered_off_after_dump"
    """After its dump the BMC reports the host off (kdump's final action poweroff/halt): said at once, not after `--reboot-grace`."""
    RECOVERING = "recovering"
    """`--recover`: the host is being power-cycled, or powered on after it powered off (`action`, the reason in `message`)."""
    RECOVERED = "recovered"
    """The power cycle or power on was accepted (`action`, `via`, `sent`)."""
    FAILED = "failed"
    """The host ends without a complete dump (`status`), or a recovery failed."""
    INTERRUPTED = "interrupted"
    """Ctrl-C, SIGTERM or SIGHUP: the watch stopped."""
    SUMMARY = "summary"
    """The run's counts by status, and its exit code."""
    # preflight
    READINESS = "readiness"
    """One host's kdump readiness: every check with its status and reason."""
    # power
    POWER_STATUS = "power.status"
    """A host's power state."""
    POWER_ON = "power.on"
    """The BMC accepted power on."""
    POWER_OFF = "power.off"
    """The BMC accepted power off (ForceOff)."""
    POWER_SHUTDOWN = "power.shutdown"
    """The BMC accepted a graceful shutdown."""
    POWER_RESET = "power.reset"
    """The BMC accepted a reset (ForceRestart)."""
    POWER_CYCLE = "power.cycle"
    """The BMC accepted a power cycle."""
    # the dump watcher (oob.dump.events)
    DUMP_DIR_APPEARED = "dump_dir_appeared"
    """A new dump directory for the host appeared on its target."""
    DUMP_PROGRESS = "dump_progress"
    """The dump is being written (`bytes`, `rate`)."""
    DUMP_STALLED = "dump_stalled"
    """The dump stopped growing for `--stall-after`: the watch stops waiting for it (`state` `stalled`), or waits `--stall-grace` longer first."""
    DUMP_COMPLETE = "dump_complete"
    """The dump is complete by its distribution's rule (path, size, format, panic lines, and the `analysis` of its kernel log: why the host hung)."""
    DUMP_FAILED = "dump_failed"
    """kdump says the dump failed."""
    TIMEOUT = "timeout"
    """No complete dump by `--timeout`."""
    DUMP_INTERRUPTED = "dump_interrupted"
    """The watch was stopped by a signal before the dump was complete."""
    DUMP_SUSPICIOUS = "dump_suspicious"
    """An entry of the dump is a link, FIFO or device: never read, never counted."""
    DUMP_DIRS_SKIPPED = "dump_dirs_skipped"
    """Several new dump directories for one host: the newest is followed, the others (`skipped`) are not."""
    DUMP_UNATTRIBUTED = "dump_unattributed"
    """A new dump directory that cannot be told to belong to one host."""
    DUMP_TARGET_PROBLEM = "dump_target_problem"
    """The dump target cannot be read right now (the watch goes on until its deadline)."""

    # oob dump (a hypervisor writes a guest's memory: oob.runbook.hvdump)
    VM_DUMP_STARTED = "vm_dump_started"
    """The hypervisor was asked to write the guest's memory (`path`, `where`: here or the hypervisor's machine, `live`, `after`)."""
    VM_DUMP_PROGRESS = "vm_dump_progress"
    """The hypervisor's dump job so far (`elapsed_s`, `processed`, `total`, `percent` when the hypervisor says)."""
    VM_DUMP_WRITTEN = "vm_dump_written"
    """The guest's memory is written (`path`, `format`: kdump-zlib, elf or native, `bytes` when local, `skipped` formats)."""
    VM_DUMP_FAILED = "vm_dump_failed"
    """The hypervisor did not write the dump (`error`, `message`)."""

    # analyze
    DUMP_ANALYSED = "dump_analysed"
    """`oob analyze` read a dump's kernel log: the `analysis` object (verdict, findings, kernel)."""
    ANALYSIS_FAILED = "analysis_failed"
    """`oob analyze` could not read a kernel log for a dump (`message`, `error`)."""
    # BMC event logs (oob.signals.bmclog)
    BMC_LOG_ENTRIES = "bmc_log_entries"
    """The BMC's own event log entries in the incident window (`window`, `entries`, `nmi_entries`, `hardware_errors`, `sources`: each log read, truncated, unreadable or not offered; counts `seen`, `kept`, `outside`, `skipped_bad_time`)."""

    # fence_kdump (oob.signals.fence_kdump)
    KDUMP_STARTED = "kdump_started"
    """The host's crash kernel sent its first fence_kdump message: the NMI took effect and kdump is starting (`at`, `sender`)."""
    FENCE_KDUMP_IGNORED = "fence_kdump_ignored"
    """A datagram on the fence_kdump port was ignored: malformed, or from an address no watched host has (`sender`, `reason`); said once per sender, the rest counted."""

    # serial console (oob.signals.console)
    CONSOLE_RECORDING = "console_recording"
    """The host's serial console is being recorded over IPMI Serial-over-LAN, from before the NMI (`path`)."""
    CONSOLE_UNAVAILABLE = "console_unavailable"
    """The serial console could not be opened (why in `message`); the NMI is sent anyway."""
    CONSOLE_MILESTONE = "console_milestone"
    """The console showed a step of the crash (`milestone`: panic, crash_kernel, kdump_saving, kdump_saved, kdump_failed or rebooting; `line`, `at`)."""
    CONSOLE_SAVED = "console_saved"
    """The console recording ended (`path`, `bytes`, `milestones`, `problem`; `last_lines` when something went wrong)."""


@dataclass(frozen=True)
class Event:
    level: Level
    message: str
    host: str | None = None
    #: machine-readable name (the JSON "event"); None: the level says it
    kind: EventKind | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": str(self.kind or self.level),
            "level": str(self.level),
            "message": self.message,
        }
        if self.host:
            out["host"] = self.host
        out.update(self.data)
        return out


Emit = Callable[[Event], None]


def discard(event: Event) -> None:
    """An emit that drops everything, for library callers that do not care."""


def event_table() -> str:
    """README's table of events, made from :class:`EventKind` (``python -m oob.events``)."""
    import ast
    import inspect

    # the docstrings under the members are the documentation; read them from the source
    docs: dict[str, str] = {}
    tree = ast.parse(inspect.getsource(EventKind))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for assign, doc in itertools.pairwise(body):
        if (
            isinstance(assign, ast.Assign)
            and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant)
        ):
            docs[assign.targets[0].id] = str(doc.value.value)  # type: ignore[attr-defined]
    rows = ["| event | meaning |", "|---|---|"]
    rows += [f"| `{kind.value}` | {docs.get(kind.name, '')} |" for kind in EventKind]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(event_table(), end="")
