"""The one bridge from oob's threads to its asyncio code.

The runbooks are threads (one per host, :func:`oob.runbook.common.run_per_host`; Ctrl-C
sets a :class:`threading.Event`); SSH (:mod:`oob.ssh`) and the dump watcher are asyncio.
Every coroutine a thread needs goes through :func:`run`::

    view = asyncbridge.run(gather(host, options), timeout=75)
    results = asyncbridge.run(watcher.watch(baseline), cancel=cancel)

Why it is shaped as it is:

- **One event loop, on one daemon thread, for the whole process** (started on first use).
  Connections outlive one call: the crash runbook opens the dump server's SSH connection
  for the baseline, before the NMI, and the watch after the NMI must use that same
  connection, so both must run on the same loop.  A loop per caller would also mean one
  thread per caller and a lifetime to manage for each.
- **Not** ``asyncio.run`` in a worker thread: on its way out ``asyncio.run`` awaits every
  task still pending and joins the default executor, so one hung call would be waited for
  at the end.  Here a call given up on is cancelled on the loop and the caller returns at
  once: a hung call is abandoned, never awaited (what :mod:`oob.dump.targets` promises).
  The thread is a daemon, so nothing on it holds up the exit either.
- **A deadline** (``timeout``): when it passes the coroutine is cancelled and :func:`run`
  raises :class:`TimeoutError` at once.  The coroutines keep their own, tighter bounds
  (connect, each command, each target call); this one is the net under them.
- **A cancel event** (``cancel``, what Ctrl-C and SIGTERM set): when it is set the coroutine
  is cancelled and :func:`run` raises :class:`concurrent.futures.CancelledError` at once.
  A :class:`KeyboardInterrupt` in the calling thread cancels it too, then propagates.
- The loop's own thread must never call :func:`run` (it would wait for itself): that is a
  :class:`RuntimeError`.  Code already on the loop simply awaits.

``oob watch`` is asyncio from the top (``asyncio.run`` in the main thread, which owns the
signals): it needs no bridge.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")

#: seconds between two looks at the cancel event
POLL = 0.1
THREAD_NAME = "oob-async"

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _the_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_serve, args=(loop,), name=THREAD_NAME, daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def run(
    coro: Coroutine[Any, Any, _T], *, cancel: threading.Event | None = None, timeout: float | None = None
) -> _T:
    """Run ``coro`` on the bridge's loop and wait for its result, at most ``timeout`` seconds
    and only while ``cancel`` is not set (see the module docstring)."""
    loop = _the_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("asyncbridge.run called on the bridge's own loop: await the coroutine instead")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not future.done():
            wait = POLL if cancel is not None else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    if future.cancel():  # abandoned: cancelled on the loop, not awaited here
                        raise TimeoutError(f"no answer within {timeout:g} s")
                    break
                wait = left if wait is None else min(wait, left)
            concurrent.futures.wait([future], timeout=wait)
            if cancel is not None and cancel.is_set() and not future.done():
                future.cancel()
                break
    except BaseException:  # KeyboardInterrupt in this thread: do not leave the call running
        future.cancel()
        raise
    # the result, the coroutine's own exception, or CancelledError when it was cancelled
    return future.result()
