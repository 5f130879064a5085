"""``python -m oob.bench transport`` runs, and every contestant sends each NMI exactly once.

A smoke test at tiny N over the real mock fleet (loopback, TLS verified against its CA);
the figures themselves are the benchmark's business, never asserted here.
"""

from __future__ import annotations

import pytest

from oob.bench import main
from oob.benchtransport import measure


def test_every_contestant_sends_one_nmi_per_bmc_as_the_mock_counts_them() -> None:
    rows = measure(3, 0, [2], timeout=120)

    assert [row.contestant for row in rows] == ["threads", "asyncio", "split"]
    for row in rows:
        assert (row.nmis, row.failed, row.note) == (3, 0, ""), row
        assert row.requests_per_host == 4, row  # login, the system, the NMI, logout


def test_bad_concurrency_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["transport", "--concurrency", "64,lots"])

    assert exited.value.code == 2
    assert "--concurrency '64,lots': expected numbers" in capsys.readouterr().err.splitlines()[-1]
