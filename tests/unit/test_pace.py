import pytest

from oob.drivers import pace
from oob.drivers.pace import Pacer, pacer_for


def test_one_pacer_per_bmc() -> None:
    assert pacer_for("https://192.0.2.1") is pacer_for("https://192.0.2.1")
    assert pacer_for("https://192.0.2.1") is not pacer_for("https://192.0.2.2")


def test_back_to_back_requests_are_spaced(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(pace.time, "monotonic", lambda: 100.0)  # a burst: no time passes
    monkeypatch.setattr(pace.time, "sleep", slept.append)
    pacer = Pacer(0.05)
    waits = [pacer.wait() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.05, 0.10, 0.15])
    assert slept == pytest.approx([0.05, 0.10, 0.15])


def test_an_idle_bmc_is_not_delayed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 200.0])
    monkeypatch.setattr(pace.time, "monotonic", lambda: next(clock))
    pacer = Pacer(0.05)
    assert pacer.wait() == 0.0
    assert pacer.wait() == 0.0
