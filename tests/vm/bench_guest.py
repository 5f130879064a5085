"""How long the test guest takes under TCG: boot to "kdump armed", and for each NMI the
crash kernel coming up, the complete dump, the guest armed again; and a memory-only
hypervisor dump.  Figures only (the tests assert none):

    python -m tests.vm.bench_guest [ROUNDS]
"""

from __future__ import annotations

import sys
import time

import libvirt

from tests.vm.fixture import running_guest
from tests.vm.guest import CRASH_UP_LINE


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 2
    started = time.monotonic()
    with running_guest("oob-vm-bench") as guest:
        print(
            f"fixture ready {time.monotonic() - started:.1f} s "
            f"(domain start to kdump armed {guest.timings['boot_to_armed_s']:.1f} s)"
        )
        conn = libvirt.open(guest.uri)
        try:
            dom = conn.lookupByName(guest.domain)
            for index in range(rounds):
                before, mark = guest.dump_dirs(), guest.serial_mark()
                nmi = time.monotonic()
                dom.injectNMI(0)
                guest.wait_for_serial(CRASH_UP_LINE, since=mark)
                crash_up = time.monotonic() - nmi
                dump = guest.wait_dump(before=before, since=mark)
                complete = time.monotonic() - nmi
                guest.wait_saved(since=mark)
                guest.ensure_armed()
                armed = time.monotonic() - nmi
                size = (dump / "vmcore").stat().st_size
                print(
                    f"NMI {index + 1}: crash kernel up {crash_up:.1f} s, complete dump {complete:.1f} s "
                    f"({size / 2**20:.0f} MiB), armed again {armed:.1f} s"
                )
                path = guest.scratch_dir / f"memory-only-{index}.kdump"
                begin = time.monotonic()
                dom.coreDumpWithFormat(
                    str(path),
                    libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB,
                    libvirt.VIR_DUMP_MEMORY_ONLY | libvirt.VIR_DUMP_LIVE,
                )
                print(
                    f"memory-only kdump-zlib dump {time.monotonic() - begin:.1f} s "
                    f"({path.stat().st_size / 2**20:.0f} MiB)"
                )
        finally:
            conn.close()
        closing = time.monotonic()
    print(f"teardown {time.monotonic() - closing:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
