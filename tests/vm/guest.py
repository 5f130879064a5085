"""The test guest: a Debian kernel and a tiny initramfs that arms kdump, built once.

Nothing is installed on this machine: the kernel package is fetched with ``apt-get
download`` and only the files the guest needs are taken out of it (``dpkg-deb
--fsys-tarfile``); the initramfs is a cpio (newc, gzip) written here from busybox-static,
kexec-tools' ``kexec`` and ``vmcore-dmesg`` (with the libraries ``ldd`` names) and the
virtio/9p modules, loaded with ``insmod`` in dependency order (no modprobe, no depmod).

The hypervisor boots the ELF ``vmlinux`` inside the bzImage (QEMU's PVH entry: no
decompression in the TCG guest, ~4 s less per boot) when it has a PVH note; the crash
kernel is the bzImage itself.  The same kernel and initramfs serve both kernels; ``/init``
tells them apart by ``/proc/vmcore``:

- first kernel: ``kernel.unknown_nmi_panic=1`` (so QEMU's ``inject-nmi``, an NMI with no
  reason bits on x86, panics it), the crash kernel loaded with ``kexec -p`` from the
  read-only 9p share ``oobboot`` (RHEL's crash command line: ``irqpoll nr_cpus=1
  reset_devices``), then :data:`ARMED_LINE` on the serial console, then idle;
- crash kernel: the dump written on the 9p share ``oobdump`` the way RHEL's kdump writes a
  local target (``127.0.0.1-%Y-%m-%d-%H:%M:%S/``: ``vmcore-dmesg-incomplete.txt`` renamed
  ``vmcore-dmesg.txt``, ``vmcore-incomplete`` renamed ``vmcore``, then ``kexec-dmesg.log``),
  a plain copy of ``/proc/vmcore`` (an ELF dump, as with RHEL's ``core_collector cp``), then
  :data:`SAVED_LINE` and a reboot (RHEL's default final action; ``oobvm.final=poweroff`` on
  the command line powers off instead).

The build lands in :func:`cache_dir` (``.venv/tools/vm-guest`` unless ``OOB_VM_GUEST_CACHE``
says otherwise), one directory per kernel release; the initramfs is rebuilt when anything
that goes into it changes (:func:`_initrd_key`). ``python -m tests.vm.guest`` builds it
(scripts/test does, so a CI run builds it once before the suite).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from oob.dump.formats import bytes_reader, read_elf

REPO = Path(__file__).resolve().parents[2]

#: printed by the first kernel's /init once ``kexec -p`` succeeded and
#: /sys/kernel/kexec_crash_loaded says 1
ARMED_LINE = "oob-vm-guest: kdump armed"
NOT_ARMED_LINE = "oob-vm-guest: kdump NOT armed"
#: printed by the crash kernel's /init after the dump directory is complete
SAVED_LINE = "oob-vm-guest: dump saved"
#: printed first by /init in the first kernel and in the crash kernel
FIRST_UP_LINE = "oob-vm-guest: first kernel up"
CRASH_UP_LINE = "oob-vm-guest: crash kernel up"
#: 9p mount tags: the guest image (read-only, for kexec -p) and the dump directory
BOOT_TAG = "oobboot"
DUMP_TAG = "oobdump"

#: modules /init loads, leaves first; dependencies are found from each module's .modinfo
#: (qemu_fw_cfg hands the guest's VMCOREINFO to QEMU, so a hypervisor dump names its kernel)
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "qemu_fw_cfg")

BUSYBOX = Path("/bin/busybox")
#: kexec-tools binaries carried with their libraries
KEXEC_TOOLS = (Path("/sbin/kexec"), Path("/sbin/vmcore-dmesg"))

INIT = r"""#!/bin/busybox sh
# PID 1 of the oob test guest, for the first kernel and the crash kernel alike.
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "oob-vm-guest: $*"; }
# kept alive so the kernel never sees PID 1 exit (that would be a second, unrelated panic)
idle() { while :; do sleep 3600; done; }
cmdline_value() {
    for word in $(cat /proc/cmdline); do
        case "$word" in "$1"=*) echo "${word#*=}"; return;; esac
    done
}
for module in $(cat /etc/oob-vm/modules); do
    insmod "/lib/modules/$module.ko" || say "insmod $module failed"
done
ninep="trans=virtio,version=9p2000.L,msize=262144"

arm() {
    say "first kernel up"
    echo 1 > /proc/sys/kernel/unknown_nmi_panic
    mkdir -p /guest
    mount -t 9p -o "$ninep,ro" @BOOT_TAG@ /guest || { say "cannot mount @BOOT_TAG@"; idle; }
    # kdumpctl's way: the running command line without crashkernel=, plus RHEL's
    # KDUMP_COMMANDLINE_APPEND essentials
    append=""
    for word in $(cat /proc/cmdline); do
        case "$word" in crashkernel=*) ;; *) append="$append $word";; esac
    done
    append="$append irqpoll nr_cpus=1 reset_devices panic=10"
    # the bzImage: kexec-tools places an ELF vmlinux at its link address, outside the
    # crash reservation, and refuses it ("Invalid memory segment")
    kexec -p /guest/vmlinuz --initrd=/guest/initrd.gz --append="$append" || say "kexec -p failed"
    umount /guest
    if [ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ]; then
        say "kdump armed (kernel $(uname -r), unknown_nmi_panic=$(cat /proc/sys/kernel/unknown_nmi_panic), crash size $(cat /sys/kernel/kexec_crash_size))"
    else
        say "kdump NOT armed"
    fi
    idle
}

save_dump() {
    say "crash kernel up ($(grep -o 'elfcorehdr=[^ ]*' /proc/cmdline)), saving /proc/vmcore"
    mkdir -p /dump
    mount -t 9p -o "$ninep" @DUMP_TAG@ /dump || { say "cannot mount @DUMP_TAG@"; idle; }
    dir="/dump/127.0.0.1-$(date +%Y-%m-%d-%H:%M:%S)"
    mkdir -p "$dir" || say "cannot create $dir"
    vmcore-dmesg /proc/vmcore > "$dir/vmcore-dmesg-incomplete.txt" \
        && mv "$dir/vmcore-dmesg-incomplete.txt" "$dir/vmcore-dmesg.txt"
    # a panic in NMI context never reaches the console before kexec (printk defers in NMI,
    # panic() flushes consoles only after __crash_kexec): relay the crashed kernel's lines
    grep -E "NMI received|Dazed and confused|Kernel panic" "$dir/vmcore-dmesg.txt" \
        | sed "s/^/oob-vm-guest: crashed kernel said: /"
    # RHEL's core_collector for this is "cp"; dd only for its 1 MiB reads and writes (9p
    # moves each write in one message of up to msize)
    start=$(cut -d' ' -f1 /proc/uptime)
    if dd if=/proc/vmcore of="$dir/vmcore-incomplete" bs=1M 2>/dev/null && sync; then
        mv "$dir/vmcore-incomplete" "$dir/vmcore"
        status=ok
    else
        status=failed
    fi
    say "vmcore copied in $(awk -v start="$start" '{ print $1 - start }' /proc/uptime) s"
    dmesg > "$dir/kexec-dmesg.log"
    sync
    umount /dump
    say "dump saved (${dir#/dump/}, $status)"
    case "$(cmdline_value oobvm.final)" in
        poweroff) poweroff -f;;
        *) reboot -f;;
    esac
    idle
}

if [ -e /proc/vmcore ]; then save_dump; else arm; fi
"""


@dataclass(frozen=True)
class GuestImage:
    """A built guest: the kernel, the initramfs, and the kernel release they are for."""

    #: what the hypervisor boots: the PVH vmlinux, or the bzImage when there is none
    kernel: Path
    #: the bzImage, which the first kernel loads with ``kexec -p`` (as ``vmlinuz``)
    bzimage: Path
    initrd: Path
    release: str


def cache_dir() -> Path:
    """Where built guests are kept: ``$OOB_VM_GUEST_CACHE`` or ``<repo>/.venv/tools/vm-guest``."""
    override = os.environ.get("OOB_VM_GUEST_CACHE")
    return Path(override) if override else REPO / ".venv" / "tools" / "vm-guest"


def ensure_guest(cache: Path | None = None) -> GuestImage:
    """The cached guest, built first if missing or out of date."""
    root = cache or cache_dir()
    kernel_dir = _cached_kernel(root)
    if kernel_dir is None or not _has_modules(kernel_dir):
        kernel_dir = _fetch_kernel(root)
    release = kernel_dir.name
    initrd = kernel_dir / "initrd.gz"
    key = _initrd_key(kernel_dir)
    stamp = kernel_dir / "initrd.key"
    if not initrd.exists() or not stamp.exists() or stamp.read_text() != key:
        _write_atomic(initrd, _initramfs(kernel_dir))
        stamp.write_text(key)
    kernel = kernel_dir / "vmlinux"
    if not kernel.exists():
        kernel = _uncompressed(kernel_dir / "vmlinuz", kernel)
    return GuestImage(kernel=kernel, bzimage=kernel_dir / "vmlinuz", initrd=initrd, release=release)


#: Xen's PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): QEMU boots an ELF vmlinux only with it
_PVH_NOTE = ("Xen", 18)


def _uncompressed(bzimage: Path, vmlinux: Path) -> Path:
    """The ELF vmlinux inside Debian's xz bzImage, when it has a PVH entry (else the bzImage).

    Decompressing it costs the TCG guest about 4 s on every boot; QEMU loads a PVH vmlinux
    directly.  (The crash kernel stays a bzImage: see /init.)"""
    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        return bzimage
    try:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    except lzma.LZMAError:
        return bzimage
    info = read_elf(bytes_reader(elf))
    if info is None or not any((n.name, n.type) == _PVH_NOTE for n in info.notes):
        return bzimage
    _write_atomic(vmlinux, elf)
    return vmlinux


def _cached_kernel(root: Path) -> Path | None:
    """The newest kernel already extracted (a dev machine keeps its kernel across apt updates)."""
    found = sorted(p.parent for p in root.glob("*/vmlinuz") if (p.parent / "modules").is_dir())
    return found[-1] if found else None


def _has_modules(kernel_dir: Path) -> bool:
    try:
        _module_order(kernel_dir / "modules", GUEST_MODULES)
    except RuntimeError:
        return False
    return True


def _kernel_package() -> str:
    """The kernel package Debian's ``linux-image-amd64`` depends on now."""
    out = subprocess.run(
        ["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Depends:\s*(linux-image-\d\S*-amd64)\b", out)
    if not match:
        raise RuntimeError(f"no kernel package in 'apt-cache depends linux-image-amd64': {out!r}")
    return match.group(1)


def _fetch_kernel(root: Path) -> Path:
    """Download the kernel package and take out vmlinuz and the guest's modules."""
    package = _kernel_package()
    release = package.removeprefix("linux-image-")
    with tempfile.TemporaryDirectory(prefix="vm-guest-") as tmp:
        try:
            subprocess.run(["apt-get", "download", "-qq", package], cwd=tmp, check=True, capture_output=True)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(
                f"apt-get download {package} failed: {exc.stderr.decode(errors='replace')}"
            ) from exc
        deb = next(Path(tmp).glob("*.deb"))
        # one staging directory per process: two test runs may build the same cache at once
        staging = root / f".{release}.{os.getpid()}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "modules").mkdir(parents=True)
        _extract_kernel(deb, release, staging)
        target = root / release
        try:
            staging.rename(target)
        except OSError:  # another run got there first (or a stale incomplete directory)
            if _has_modules(target) and (target / "vmlinuz").exists():
                shutil.rmtree(staging)
            else:
                shutil.rmtree(target)
                staging.rename(target)
    return target


def _extract_kernel(deb: Path, release: str, out: Path) -> None:
    """vmlinuz and every ``.ko`` under the virtio, firmware, 9p and netfs/fscache trees: enough for
    :func:`_module_order` to resolve :data:`GUEST_MODULES`."""
    wanted_dirs = ("drivers/virtio/", "drivers/firmware/", "net/9p/", "fs/9p/", "fs/netfs/", "fs/fscache/")
    module_root = f"./lib/modules/{release}/kernel/"
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if member.name == f"./boot/vmlinuz-{release}":
                    dest = out / "vmlinuz"
                elif member.name.startswith(module_root) and member.name.endswith(".ko"):
                    rel = member.name.removeprefix(module_root)
                    if not rel.startswith(wanted_dirs):
                        continue
                    dest = out / "modules" / Path(rel).name
                else:
                    continue
                source = tar.extractfile(member)
                assert source is not None
                dest.write_bytes(source.read())
    if proc.returncode != 0 or not (out / "vmlinuz").exists():
        raise RuntimeError(f"no vmlinuz-{release} in {deb.name}")


def _modinfo(path: Path) -> dict[str, str]:
    """The ``key=value`` strings of a module's ``.modinfo`` section (ELF64 little-endian)."""
    data = path.read_bytes()
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + index * shentsize
        )
        return name, offset, size

    _, names_offset, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        if data[names_offset + name :].split(b"\0", 1)[0] == b".modinfo":
            pairs = (
                item.split(b"=", 1) for item in data[offset : offset + size].split(b"\0") if b"=" in item
            )
            return {key.decode(): value.decode(errors="replace") for key, value in pairs}
    return {}


def _module_order(modules_dir: Path, wanted: Iterable[str]) -> list[str]:
    """``wanted`` and everything they depend on, each after its dependencies."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in path:
            raise RuntimeError(f"module dependency cycle: {' -> '.join((*path, name))}")
        file = modules_dir / f"{name}.ko"
        if not file.exists():
            raise RuntimeError(f"module {name} is not in {modules_dir}")
        for dep in filter(None, _modinfo(file).get("depends", "").split(",")):
            visit(dep, (*path, name))
        order.append(name)

    for name in wanted:
        visit(name, ())
    return order


def _libraries(binary: Path) -> list[Path]:
    """The shared libraries (and the loader) ``ldd`` names for a binary."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        match = re.search(r"(/\S+) \(0x", line)
        if match:
            libs.append(Path(match.group(1)))
    return libs


def _init_script() -> bytes:
    return INIT.replace("@BOOT_TAG@", BOOT_TAG).replace("@DUMP_TAG@", DUMP_TAG).encode()


def _host_files() -> list[Path]:
    files = [BUSYBOX, *KEXEC_TOOLS]
    for binary in KEXEC_TOOLS:
        files.extend(lib for lib in _libraries(binary) if lib not in files)
    return files


def _initrd_key(kernel_dir: Path) -> str:
    """Changes whenever the initramfs would: the init script, the host binaries, the modules."""
    digest = hashlib.sha256(_init_script())
    digest.update(repr(GUEST_MODULES).encode())
    for file in _host_files():
        stat = file.stat()
        digest.update(f"{file}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for module in sorted((kernel_dir / "modules").glob("*.ko")):
        digest.update(f"{module.name}:{module.stat().st_size}".encode())
    return digest.hexdigest()


class _Cpio:
    """A cpio archive in the kernel's "newc" format (Documentation/driver-api/early-userspace)."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._ino = 1
        self._dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
        self._ino += 1
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self._out.write(header + name.encode() + b"\0")
        self._pad()
        self._out.write(data)
        self._pad()

    def _pad(self) -> None:
        self._out.write(b"\0" * (-self._out.tell() % 4))

    def directory(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path not in self._dirs:
                self._dirs.add(path)
                self._entry(path, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        if "/" in name:
            self.directory(name.rsplit("/", 1)[0])
        self._entry(name, 0o100000 | mode, data)

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name.strip("/"), 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self._out.getvalue()


def _initramfs(kernel_dir: Path) -> bytes:
    modules = _module_order(kernel_dir / "modules", GUEST_MODULES)
    cpio = _Cpio()
    for name in ("bin", "sbin", "proc", "sys", "dev", "etc/oob-vm", "lib/modules", "guest", "dump"):
        cpio.directory(name)
    # the kernel opens /dev/console for init's stdin/stdout before devtmpfs is mounted
    cpio.char_device("dev/console", 5, 1)
    cpio.file("init", _init_script(), 0o755)
    cpio.file("etc/oob-vm/modules", "".join(f"{m}\n" for m in modules).encode())
    for file in _host_files():
        # the path ldd names (e.g. /lib64/ld-linux-x86-64.so.2), the bytes of what it points to
        cpio.file(str(file), file.resolve().read_bytes(), 0o755)
    for module in modules:
        cpio.file(f"lib/modules/{module}.ko", (kernel_dir / "modules" / f"{module}.ko").read_bytes())
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.rename(path)


def main(argv: list[str]) -> int:
    image = ensure_guest(Path(argv[0]) if argv else None)
    print(f"vm guest: {image.release}: {image.kernel} {image.initrd}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
