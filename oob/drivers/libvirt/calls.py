"""Calls into libvirt with a deadline that holds.

libvirt's calls block in C with no timeout of their own: a connect over ``qemu+ssh`` to a
host that drops packets, or an RPC to a daemon that stopped answering, can hang for
minutes.  Each call runs in a daemon thread; the caller waits at most ``seconds`` and
then goes on without it (the thread is abandoned, and ends when libvirt gives up).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


class CallTimedOut(Exception):
    """The call did not return within its deadline; it may still be running."""


def call_with_deadline(call: Callable[[], _T], seconds: float, what: str) -> _T:
    """``call()``'s result or exception, or :class:`CallTimedOut` after ``seconds``."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, whatever it is
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"libvirt {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise CallTimedOut(f"{what} did not return within {seconds:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
