"""What oob reads on a live host, and the one shell script that reads it.

The script is plain POSIX sh using only ``id``, ``cat``, ``systemctl``, ``df`` and, where
installed, ``kdumpctl status`` / ``kdump-config status`` (read-only): it runs
unchanged on RHEL/Fedora, SUSE and Debian/Ubuntu, as root or not.  Each item is framed by
``@@oob`` marker lines with the command's exit status, so a file that cannot be read (not
there, permission denied) is told apart from an empty one.  No I/O here: parsing only.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

#: files read by the facts script, in order
FILES: tuple[str, ...] = (
    "/proc/cmdline",
    "/proc/meminfo",
    "/proc/iomem",
    "/proc/modules",
    "/sys/kernel/kexec_crash_size",
    "/sys/kernel/kexec_crash_loaded",
    "/proc/sys/kernel/unknown_nmi_panic",
    "/proc/sys/kernel/panic_on_unrecovered_nmi",
    "/proc/sys/kernel/panic_on_io_nmi",
    "/proc/sys/kernel/panic",
    "/proc/sys/kernel/sysrq",
    "/etc/os-release",
    "/etc/kdump.conf",
    "/etc/sysconfig/kdump",
    "/etc/default/kdump-tools",
)
#: systemd units asked about: RHEL/Fedora and SUSE call it kdump, Debian/Ubuntu kdump-tools
SERVICES: tuple[str, ...] = ("kdump", "kdump-tools")
#: the distribution's own kdump status, where installed (docs/KDUMP.md): RHEL/Fedora ``kdumpctl
#: status`` ("Kdump is operational", on stderr; root only, so not run without it), Debian/Ubuntu
#: ``kdump-config status`` ("ready to kdump").  rc 127: not installed; 126: not run, needs root.
STATUS_TOOLS: tuple[str, ...] = ("kdumpctl", "kdump-config")
ROOT_TOOLS = frozenset({"kdumpctl"})
NOT_INSTALLED, NEEDS_ROOT = 127, 126

MARK = "@@oob"
_ROOT_TOOL_TEST = " || ".join(f'[ "$t" = {tool} ]' for tool in sorted(ROOT_TOOLS))

FACTS_SCRIPT = "\n".join(
    [
        "LC_ALL=C; export LC_ALL",
        f'echo "{MARK} uid"; id -u; echo "{MARK} rc $?"',
        # who the host sees logging in (client address first): the machine fence_kdump must name
        f'echo "{MARK} env SSH_CONNECTION"; echo "${{SSH_CONNECTION:-}}"; echo; echo "{MARK} rc 0"',
        f"for f in {' '.join(FILES)}; do",
        f'  echo "{MARK} file $f"; cat "$f" 2>&1; rc=$?; echo; echo "{MARK} rc $rc"',
        "done",
        f"for s in {' '.join(SERVICES)}; do",
        f'  echo "{MARK} service $s"; systemctl is-active "$s" 2>&1; rc=$?; echo; echo "{MARK} rc $rc"',
        "done",
        "uid=$(id -u 2>/dev/null)",
        f"for t in {' '.join(STATUS_TOOLS)}; do",
        f'  echo "{MARK} status $t"',
        f'  if ! command -v "$t" >/dev/null 2>&1; then echo "not installed"; rc={NOT_INSTALLED}',
        f'  elif [ "$uid" != 0 ] && {{ {_ROOT_TOOL_TEST}; }}; then',
        f'    echo "not run: needs root"; rc={NEEDS_ROOT}',
        '  else "$t" status </dev/null 2>&1; rc=$?; fi',
        f'  echo; echo "{MARK} rc $rc"',
        "done",
        "",
    ]
)


def df_script(path: str) -> str:
    """Free space where a local dump target is (``df -P -k``: POSIX output, 1024-byte blocks)."""
    return f'LC_ALL=C df -P -k {shlex.quote(path)} 2>&1; echo "{MARK} rc $?"\n'


@dataclass(frozen=True)
class Read:
    """One file or command: its text, and whether it worked."""

    text: str
    rc: int

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def denied(self) -> bool:
        return self.rc != 0 and "permission denied" in self.text.lower()

    @property
    def missing(self) -> bool:
        return self.rc != 0 and "no such file" in self.text.lower()

    def value(self) -> str | None:
        return self.text.strip() if self.ok else None

    def integer(self) -> int | None:
        text = self.value()
        if text is None:
            return None
        try:
            return int(text.split()[0])
        except (ValueError, IndexError):
            return None


@dataclass(frozen=True)
class HostFacts:
    uid: int | None
    files: dict[str, Read] = field(default_factory=dict)
    services: dict[str, Read] = field(default_factory=dict)
    #: ``kdumpctl status`` / ``kdump-config status`` (:data:`STATUS_TOOLS`)
    statuses: dict[str, Read] = field(default_factory=dict)
    #: environment variables of the login (``SSH_CONNECTION``)
    env: dict[str, Read] = field(default_factory=dict)
    #: ``df -P -k`` of the configured local dump path: (path, available bytes), when asked
    free: tuple[str, int] | None = None
    free_error: str | None = None

    @property
    def root(self) -> bool | None:
        return None if self.uid is None else self.uid == 0

    def file(self, path: str) -> Read:
        return self.files.get(path, Read("not read", 1))

    def ram(self) -> int | None:
        """MemTotal in bytes."""
        meminfo = self.file("/proc/meminfo").value() or ""
        match = re.search(r"^MemTotal:\s+(\d+)\s*kB", meminfo, re.MULTILINE)
        return int(match[1]) * 1024 if match else None

    def os_release(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for line in (self.file("/etc/os-release").value() or "").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                try:
                    parts = shlex.split(value)
                except ValueError:
                    parts = [value]
                values[key.strip()] = parts[0] if parts else ""
        return values

    def ssh_client(self) -> str | None:
        """The address the host saw oob's SSH connection come from (``SSH_CONNECTION``'s first
        word), when it is an IP address."""
        import ipaddress

        words = (self.env.get("SSH_CONNECTION", Read("", 1)).value() or "").split()
        if not words:
            return None
        try:
            return ipaddress.ip_address(words[0]).compressed
        except ValueError:
            return None

    def module_loaded(self, name: str) -> bool:
        modules = self.file("/proc/modules").value() or ""
        return any(line.split(" ", 1)[0] == name for line in modules.splitlines())

    def crash_kernel_iomem(self) -> list[str]:
        return [
            line.strip()
            for line in (self.file("/proc/iomem").value() or "").splitlines()
            if "crash kernel" in line.lower()
        ]

    def with_free(self, path: str, output: str) -> HostFacts:
        from dataclasses import replace

        available, error = parse_df(output)
        if available is None:
            return replace(self, free_error=error)
        return replace(self, free=(path, available))


def parse_facts(output: str) -> HostFacts:
    uid: int | None = None
    files: dict[str, Read] = {}
    services: dict[str, Read] = {}
    statuses: dict[str, Read] = {}
    env: dict[str, Read] = {}
    kind, name, lines = "", "", []  # type: ignore[var-annotated]
    for line in output.split("\n"):
        if line.startswith(f"{MARK} rc "):
            rc = int(line.split()[2]) if line.split()[2].isdigit() else 1
            text = "\n".join(lines)
            text = text.removesuffix("\n")  # the newline the script adds after every item
            if kind == "uid" and rc == 0 and text.strip().isdigit():
                uid = int(text.strip())
            elif kind == "file":
                files[name] = Read(text, rc)
            elif kind == "service":
                services[name] = Read(text, rc)
            elif kind == "status":
                statuses[name] = Read(text, rc)
            elif kind == "env":
                env[name] = Read(text, rc)
            kind, name, lines = "", "", []
        elif line.startswith(f"{MARK} "):
            parts = line.split(" ", 2)
            kind, name, lines = parts[1], parts[2] if len(parts) > 2 else "", []
        else:
            lines.append(line)
    return HostFacts(uid=uid, files=files, services=services, statuses=statuses, env=env)


def parse_df(output: str) -> tuple[int | None, str | None]:
    """Available bytes from ``df -P -k`` output; (None, why) when it failed."""
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(MARK)]
    rc_line = next((line for line in output.splitlines() if line.startswith(f"{MARK} rc ")), f"{MARK} rc 1")
    if rc_line.split()[-1] != "0" or len(lines) < 2:
        return None, " ".join(lines).strip() or "df gave no answer"
    fields = lines[-1].split()
    try:
        return int(fields[3]) * 1024, None
    except (IndexError, ValueError):
        return None, f"cannot read df's answer: {lines[-1]!r}"
