"""One host's bug never takes the other hosts' results with it."""

from __future__ import annotations

import pytest

from oob.errors import OobError, SafetyRefusal
from oob.model import Host
from oob.runbook.common import Outcome, internal_error, run_per_host


def _work(host: Host) -> Outcome:
    if host.name == "bad":
        raise RecursionError("maximum recursion depth exceeded")
    if host.name == "refused":
        raise SafetyRefusal("no", host=host.name)
    return Outcome(host.name, "nmi", "ok")


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_bug_for_one_host_becomes_that_hosts_result(parallel: int) -> None:
    hosts = [Host(name="a"), Host(name="bad"), Host(name="b")]
    results = run_per_host(
        hosts,
        _work,
        parallel,
        on_bug=lambda h, exc: Outcome.from_error(h.name, "nmi", internal_error(h, exc)),
    )
    assert [(r.host, r.status, r.exit_code) for r in results] == [
        ("a", "ok", 0),
        ("bad", "failed", 1),
        ("b", "ok", 0),
    ]
    assert results[1].error is not None and "RecursionError" in results[1].error.message


def test_oob_errors_still_propagate_and_bugs_without_a_handler_too() -> None:
    with pytest.raises(OobError):
        run_per_host([Host(name="refused")], _work, 1, on_bug=lambda h, exc: Outcome(h.name, "nmi", "ok"))
    with pytest.raises(RecursionError):
        run_per_host([Host(name="bad")], _work, 1)
