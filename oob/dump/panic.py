"""The lines of a dump's kernel log that say why the kernel panicked.

Only the end of the dmesg file is read (:data:`DMESG_TAIL`): the panic is the last thing
the crashed kernel printed.  Texts are those of ``arch/x86/kernel/nmi.c``,
``drivers/watchdog/hpwdt.c``, ``drivers/tty/sysrq.c`` and ``kernel/panic.c``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: bytes read from the end of the dmesg file
DMESG_TAIL = 256 * 1024
#: panic lines kept (the last ones: a crafted log could match on every line) and their
#: length at most, in characters
MAX_LINES = 16
MAX_LINE = 512

# "[ 1234.567890] text", "<0>[ 1234.5] text" (vmcore-dmesg keeps the level on some versions),
# or "text" alone
_PREFIX = re.compile(r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[CT]\d+\]\s?)?")

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("unknown_nmi", re.compile(r"Uhhuh\. NMI received for unknown reason")),
    ("unknown_nmi", re.compile(r"Do you have a strange power saving mode enabled\?")),
    ("unknown_nmi", re.compile(r"Dazed and confused, but trying to continue")),
    ("iock_nmi", re.compile(r"NMI: IOCK error")),
    ("serr_nmi", re.compile(r"NMI: PCI system error \(SERR\)")),
    ("hpwdt_nmi", re.compile(r"An NMI occurred")),
    ("sysrq", re.compile(r"(?:sysrq|SysRq) ?: Trigger a crash")),
    ("panic", re.compile(r"Kernel panic - not syncing: ")),
)


@dataclass(frozen=True)
class PanicInfo:
    #: the matching lines, in log order, without their timestamps
    lines: tuple[str, ...]
    #: "unknown_nmi", "iock_nmi", "serr_nmi", "hpwdt_nmi", "sysrq", "other" or "none"
    cause: str

    @property
    def panic_line(self) -> str | None:
        """``Kernel panic - not syncing: ...``, the one line for a summary."""
        return next((line for line in reversed(self.lines) if "Kernel panic - not syncing" in line), None)

    def to_dict(self) -> dict[str, object]:
        return {"cause": self.cause, "lines": list(self.lines)}


NO_PANIC = PanicInfo((), "none")


def panic_lines(text: str) -> PanicInfo:
    """The panic lines of a kernel log, and what caused the panic."""
    found: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw.rstrip("\r")).strip()
        for cause, pattern in _PATTERNS:
            if pattern.search(line):
                found.append((cause, line))
                break
    if not found:
        return NO_PANIC
    # a log may hold an earlier warning; what counts is what led to the last panic
    kept = tuple(
        line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for _, line in found[-MAX_LINES:]
    )
    return PanicInfo(kept, _cause(found))


def _cause(found: list[tuple[str, str]]) -> str:
    panic = next((line for cause, line in reversed(found) if cause == "panic"), None)
    if panic is not None:
        if "NMI IOCK error" in panic:
            return "iock_nmi"
        if "sysrq triggered crash" in panic:
            return "sysrq"
        if "NMI: Not continuing" in panic:
            causes = {cause for cause, _ in found}
            for cause in ("unknown_nmi", "serr_nmi", "iock_nmi"):
                if cause in causes:
                    return cause
    for cause, _ in reversed(found):
        if cause != "panic":
            return cause
    return "other"


def decode_log(data: bytes) -> str:
    """Kernel logs are mostly ASCII; never fail on a stray byte (or a tail cut mid-character)."""
    return data.decode("utf-8", "replace")
