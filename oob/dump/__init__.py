"""Watching kdump write crash dumps: targets, layouts, formats, panic lines, the watcher.

    from oob.dump import DumpWatcher, WatchOptions
    async with DumpWatcher(hosts, WatchOptions(), emit=emit) as watcher:
        baseline = await watcher.take_baseline()      # before the NMI
        results = await watcher.watch(baseline)       # after it

Synchronous callers use :class:`BlockingDumpWatcher` (same methods, no ``await``).
"""

from oob.dump.formats import VmcoreFormat, detect_format
from oob.dump.layouts import DirName, Family, FileInfo, Verdict, assess, families_for, parse_dir_name
from oob.dump.matching import HostMatcher
from oob.dump.panic import PanicInfo, panic_lines
from oob.dump.targets import (
    DumpTarget,
    FileTarget,
    Listing,
    SshTarget,
    Targets,
    TargetSpec,
    call_bounds,
    parse_target,
)
from oob.dump.watcher import (
    Baseline,
    BlockingDumpWatcher,
    DumpResult,
    DumpState,
    DumpWatcher,
    WatchOptions,
    watch_dumps,
)
from oob.ssh import SshOptions

__all__ = [
    "Baseline",
    "BlockingDumpWatcher",
    "DirName",
    "DumpResult",
    "DumpState",
    "DumpTarget",
    "DumpWatcher",
    "Family",
    "FileInfo",
    "FileTarget",
    "HostMatcher",
    "Listing",
    "PanicInfo",
    "SshOptions",
    "SshTarget",
    "TargetSpec",
    "Targets",
    "Verdict",
    "VmcoreFormat",
    "WatchOptions",
    "assess",
    "call_bounds",
    "detect_format",
    "families_for",
    "panic_lines",
    "parse_dir_name",
    "parse_target",
    "watch_dumps",
]
