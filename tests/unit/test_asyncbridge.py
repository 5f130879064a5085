"""oob.asyncbridge: one loop for every thread; a deadline and a cancel event that hold, and
a call given up on is cancelled on the loop, never awaited by the caller."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from oob import asyncbridge


async def _answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


def test_results_and_errors_come_back_and_every_thread_shares_one_loop() -> None:
    assert asyncbridge.run(_answer(42)) == 42

    async def loop_id() -> int:
        return id(asyncio.get_running_loop())

    seen: list[int] = []
    threads = [threading.Thread(target=lambda: seen.append(asyncbridge.run(loop_id()))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 4 and len(set(seen)) == 1 and seen[0] == asyncbridge.run(loop_id())

    async def fails() -> None:
        raise ValueError("from the coroutine")

    with pytest.raises(ValueError, match="from the coroutine"):
        asyncbridge.run(fails())


def test_a_timeout_inside_the_coroutine_is_its_own_not_the_deadline() -> None:
    async def times_out() -> None:
        raise TimeoutError("inner")

    with pytest.raises(TimeoutError, match="inner"):
        asyncbridge.run(times_out(), timeout=30)


def test_the_deadline_abandons_a_hung_call_and_cancels_it_on_the_loop() -> None:
    cancelled = threading.Event()

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match="no answer within 0.2 s"):
        asyncbridge.run(hangs(), timeout=0.2)
    assert cancelled.wait(10)


def test_the_cancel_event_stops_the_wait_and_the_call() -> None:
    cancel = threading.Event()
    started = threading.Event()
    cancelled = threading.Event()

    async def hangs() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def press_ctrl_c() -> None:
        if started.wait(10):
            cancel.set()

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(concurrent.futures.CancelledError):
        asyncbridge.run(hangs(), cancel=cancel)
    assert cancelled.wait(10)


def test_calling_it_from_the_loop_itself_is_refused() -> None:
    async def nested() -> str:
        inner = _answer(1)
        try:
            asyncbridge.run(inner)
        except RuntimeError as exc:
            return str(exc)
        return "not refused"

    assert "own loop" in asyncbridge.run(nested())
