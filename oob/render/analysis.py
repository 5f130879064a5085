"""How a dump's analysis reads in a report: the cause in a few words, then the evidence.

Everything here comes from the crashed host's kernel log (task names, symbols, panic
reasons): callers print it through :func:`oob.render.text.safe`, like every host byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from oob.analysis.model import Analysis
    from oob.signals.bmclog import BmcLog


#: serious reports listed in a host's block of a crash, drill or watch report
REPORTS_IN_BLOCK = 5


def cause(analysis: Analysis | None) -> str | None:
    """The verdict in a few words for a report's column: ``soft lockup in nmihang``."""
    if analysis is None or analysis.verdict.kind is None:
        return None
    verdict = analysis.verdict
    unsure = " (unsure)" if verdict.confidence.value == "low" else ""
    return verdict.headline + unsure


def analysis_pairs(analysis: Analysis | None) -> list[tuple[str, object]]:
    """``key: value`` lines of a host's block: cause, why, evidence, kernel."""
    if analysis is None:
        return []
    verdict = analysis.verdict
    facts = analysis.facts
    pairs: list[tuple[str, object]] = [
        (
            "cause",
            f"{verdict.headline} ({verdict.confidence.value} confidence)"
            if verdict.kind
            else verdict.headline,
        ),
        ("why", verdict.summary),
    ]
    pairs += [("evidence", reason) for reason in verdict.reasons]
    serious = [f for f in analysis.findings if f.serious]
    pairs += [("report", finding_line(f)) for f in serious[:REPORTS_IN_BLOCK]]
    if len(serious) > REPORTS_IN_BLOCK:
        pairs.append(("report", f"... {len(serious) - REPORTS_IN_BLOCK} more (oob analyze, or --json)"))
    kernel = facts.release
    if kernel and facts.tainted:
        kernel += f", tainted {facts.tainted}"
    pairs.append(("kernel", kernel))
    pairs += [("note", note) for note in analysis.notes]
    pairs += handoff_pairs(analysis)
    return pairs


def handoff_pairs(analysis: Analysis) -> list[tuple[str, object]]:
    """How to open the dump in crash: the vmcore's debuginfo, steps first, the command."""
    handoff = analysis.handoff
    if handoff is None:
        return []
    pairs: list[tuple[str, object]] = []
    if handoff.debuginfo is not None:
        have = " (installed here)" if handoff.vmlinux_present else f"; install: {handoff.debuginfo.install}"
        pairs.append(("vmlinux", f"{handoff.debuginfo.namelist}{have}"))
    pairs += [("first", step) for step in handoff.prepare]
    pairs.append(("crash", handoff.crash_command))
    pairs += [("crash note", note) for note in handoff.notes]
    return pairs


def finding_line(finding: Any) -> str:
    """``  15.1 s  soft_lockup  CPU 0  nmihang_spin/0:129  nmihang_spin_preempt_off [nmihang]``"""
    parts = [f"{finding.time:.1f} s" if finding.time is not None else "-", finding.kind.value]
    if finding.cpu is not None:
        parts.append(f"CPU {finding.cpu}")
    if finding.task is not None:
        parts.append(str(finding.task))
    if finding.ip is not None:
        parts.append(str(finding.ip))
    elif finding.culprit_frame is not None:
        # a blocked task has no instruction pointer: where it waits
        parts.append(f"in {finding.culprit_frame}")
    if finding.detail:
        parts.append(finding.detail)
    return "  ".join(parts)


def trace_line(analysis: Analysis) -> str | None:
    """The verdict's call trace, innermost first: ``a [mod] < b < c``."""
    verdict = analysis.verdict
    for finding in analysis.findings:
        for stack in ([finding.stack] if finding.stack else []) + finding.backtraces:
            if stack.ip is not None and stack.ip == verdict.ip and stack.task == verdict.task:
                frames = [str(f) for f in stack.frames()[:12]]
                return " < ".join(frames) if frames else None
    return None


def print_analyses(results: Sequence[Any], console: Console) -> None:
    """``oob analyze``'s report: per dump, a title line and its ``key: value`` lines."""
    from rich.text import Text

    from oob.render.report import print_blocks
    from oob.render.text import safe

    blocks = []
    for result in results:
        analysis = result.analysis
        ok = result.status.value == "analysed"
        name = result.host or result.subject
        message = result.message.removeprefix(f"{result.subject}: ")
        title_text = f"{name}: {message}"
        style = "green" if ok and analysis and analysis.verdict.confidence.value != "low" else "yellow"
        title = Text.assemble(safe(title_text, style if ok else "red"))
        pairs: list[tuple[str, object]] = [
            ("dump", result.location),
            (
                "vmcore",
                f"{result.vmcore}, {result.format.label}"
                if result.vmcore and result.format
                else result.vmcore,
            ),
            ("kdump", result.dump_status if result.dump_status not in (None, "complete") else None),
        ]
        if analysis is not None:
            pairs += [
                pair for pair in analysis_pairs(analysis)[1:] if pair[0] != "report"
            ]  # the title says the cause
            pairs.append(("log", analysis.source))
            pairs += [("report", finding_line(f)) for f in analysis.findings[:40]]
            if len(analysis.findings) > 40:
                pairs.append(("report", f"... {len(analysis.findings) - 40} more (--json has them all)"))
            pairs.append(("trace", trace_line(analysis)))
        if result.fetched:
            pairs.append(("fetched", result.fetched))
        if result.crash_run is not None:
            pairs.append(("crash run", result.crash_run.message))
        pairs += bmc_log_pairs(result.bmc_log)
        blocks.append((title, pairs))
    print_blocks(console, blocks)


def bmc_log_pairs(log: BmcLog | None) -> list[tuple[str, object]]:
    """The BMC event log in a host's block: one summary line, then the NMI's entry and the
    hardware errors (what the log adds to the kernel's), at most 8."""
    if log is None:
        return []
    from oob.signals.bmclog import summary, summary_lines

    marked = [line for line in summary_lines(log) if line.startswith(("!", "*"))]
    return [("bmc log", summary(log)), *(("bmc log", line) for line in marked[:8])]
