"""Why the host hung: reading the kernel log a dump saved, and handing over to ``crash``.

    from oob.analysis import analyze_text
    analysis = analyze_text(open("vmcore-dmesg.txt").read())
    analysis.verdict.headline     # "soft lockup in nmihang"

:func:`analyze_text` is pure (no I/O) and fast: one pass over the lines with anchored
patterns, a few milliseconds for a 10,000-line log. Finding a dump's log on a target and
extracting one from a vmcore are :mod:`oob.analysis.source`'s job.
"""

from __future__ import annotations

from oob.analysis.kernellog import MAX_LINE_CHARS, read_log
from oob.analysis.model import Analysis, Confidence, Finding, FindingKind, Frame, Task, Verdict
from oob.analysis.verdict import decide, facts_of

__all__ = [
    "Analysis",
    "Confidence",
    "Finding",
    "FindingKind",
    "Frame",
    "Task",
    "Verdict",
    "analyze_bytes",
    "analyze_text",
]

#: the most of a log analysed; a kernel's ring buffer is at most a few MiB, so more than
#: this is not a kernel log (the end is kept: the crash is at the end)
MAX_LOG_BYTES = 16 * 1024 * 1024
#: a log in which more than this share of bytes is not text is called binary
BINARY_SHARE = 0.10


def analyze_text(text: str, *, source: str = "text", notes: tuple[str, ...] = ()) -> Analysis:
    """Findings and verdict of one kernel log's text."""
    parsed = read_log(text)
    found_notes = list(notes)
    if parsed.lines_cut:
        found_notes.append(
            f"{parsed.lines_cut} lines longer than {MAX_LINE_CHARS} characters were read only that far"
        )
    if parsed.findings_dropped:
        found_notes.append(f"{parsed.findings_dropped} reports in the middle of the log were not kept")
    verdict = decide(parsed, found_notes)
    return Analysis(
        facts_of(parsed), tuple(parsed.findings), verdict, source=source, notes=tuple(found_notes)
    )


def analyze_bytes(data: bytes, *, source: str = "text", cut: bool = False) -> Analysis:
    """Analyse raw bytes of a log file: decoded safely, binary and oversized input said so.

    ``cut`` says the caller read only the end of a longer file.
    """
    notes: list[str] = []
    if len(data) > MAX_LOG_BYTES:
        data = data[-MAX_LOG_BYTES:]
        cut = True
    if cut:
        notes.append(f"only the last {len(data) // 1024} KiB of the log were read")
    if data:
        sample = data[:65536]
        binary = sum(1 for b in sample if b < 9 or 13 < b < 32 or b == 127)
        if binary > BINARY_SHARE * len(sample):
            notes.append("the file is not text (binary bytes): not a kernel log")
            data = b""
    text = data.decode("utf-8", "replace").replace("\x00", "")
    return analyze_text(text, source=source, notes=tuple(notes))
