"""One command on the ESXi host's SSH connection: bounded, and knowing how far it got.

Whether an NMI may have been sent is decided by *where* a failure happened, read from
asyncssh's own objects, never from an error message:

1. before the session channel is open (the channel-open request refused, the connection
   already gone, the deadline passed while opening): the command was certainly not sent —
   :attr:`Stage.opened` is False;
2. once asyncssh has called our session's ``connection_made`` (the server confirmed the
   channel), the ``exec`` request goes out in the same synchronous step of asyncssh's
   ``create``: from then on the command may have reached the host and run —
   :attr:`Stage.opened` is True, and a lost connection, a refused or unanswered ``exec``
   request, the deadline, or a channel that closes without an exit status all leave the
   outcome unknown.

The output kept is bounded (:data:`LISTING_LIMIT` for listings, :data:`ANSWER_LIMIT` for an
action's answer); a listing that overflows is abandoned at once (the channel is aborted),
an action's further output is drained and dropped so its exit status can still arrive.
Every call has a deadline that holds (``asyncio.timeout`` here, and the bridge's own net).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

#: bytes of a listing kept (``vmdumper -l`` is ~250 bytes per running VM, 1,024 VMs at most)
LISTING_LIMIT = 1024 * 1024
#: bytes of an action's answer kept (``vmdumper WID nmi`` and ``vim-cmd`` say a line or two)
ANSWER_LIMIT = 64 * 1024


@dataclass
class Stage:
    """How far one command got; written on the asyncio loop, read by the caller afterwards."""

    #: the session channel was confirmed: the exec request may have been sent from here on
    opened: bool = False


@dataclass(frozen=True)
class Reply:
    stdout: bytes
    stderr: bytes
    #: None: the channel closed without one (the connection dropped, or the host said nothing)
    exit_status: int | None
    exit_signal: str | None
    #: more output came than was kept
    overflow: bool

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def said(self) -> str:
        """stdout and stderr, as text (for a fault or a message)."""
        return (self.stdout + b"\n" + self.stderr).decode("utf-8", errors="replace")


class CommandFailed(Exception):
    """The command did not end with an exit status; ``stage.opened`` tells whether it may
    have run."""

    def __init__(self, reason: str, stage: Stage) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


@dataclass
class _Collected:
    limit: int
    stop_when_full: bool
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    overflow: bool = False
    exit_status: int | None = None
    exit_signal: str | None = None
    lost: BaseException | None = None
    #: the channel, once the server confirmed it
    chan: Any = None


def _session_class() -> type[Any]:
    """asyncssh is imported on first use (the CLI starts fast without it)."""
    import asyncssh

    class Session(asyncssh.SSHClientSession):  # type: ignore[type-arg]
        def __init__(self, stage: Stage, collected: _Collected, closed: asyncio.Future[None]) -> None:
            self._stage = stage
            self._collected = collected
            self._closed = closed
            self._chan: Any = None

        def connection_made(self, chan: Any) -> None:
            # the server confirmed the channel; asyncssh sends the exec request right after
            self._chan = chan
            self._collected.chan = chan
            self._stage.opened = True

        def data_received(self, data: bytes, datatype: Any) -> None:
            collected = self._collected
            buffer = collected.stderr if datatype == asyncssh.EXTENDED_DATA_STDERR else collected.stdout
            room = collected.limit - len(buffer)
            if len(data) > room:
                collected.overflow = True
                if collected.stop_when_full and self._chan is not None:
                    self._chan.abort()
            if room > 0:
                buffer += data[:room]

        def exit_status_received(self, status: int) -> None:
            self._collected.exit_status = status

        def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
            self._collected.exit_signal = signal

        def connection_lost(self, exc: Exception | None) -> None:
            self._collected.lost = exc
            if not self._closed.done():
                self._closed.set_result(None)

    return Session


async def run(
    conn: Any, command: str, *, timeout: float, limit: int, stop_when_full: bool, stage: Stage
) -> Reply:
    """Run ``command`` (a fixed string from :mod:`oob.drivers.esxi.commands`) on ``conn``.

    Raises :class:`CommandFailed` when no exit status came back (connection lost, refused,
    deadline); ``stage`` says how far it got."""
    import asyncssh

    from oob.ssh import reason_of

    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()
    collected = _Collected(limit, stop_when_full)
    session_class = _session_class()
    try:
        async with asyncio.timeout(timeout):
            chan, _ = await conn.create_session(
                lambda: session_class(stage, collected, closed), command, encoding=None
            )
            # nothing to read on stdin: no command here waits for input (a command that
            # already ended has a closed channel: nothing to tell it)
            with contextlib.suppress(OSError, asyncssh.Error):
                chan.write_eof()
            await closed
    except TimeoutError:
        _abort(collected.chan)
        raise CommandFailed(f"no answer within {timeout:g} s", stage) from None
    except (asyncssh.Error, OSError) as exc:
        _abort(collected.chan)
        raise CommandFailed(reason_of(exc), stage) from None
    except BaseException:
        _abort(collected.chan)
        raise
    if collected.exit_status is None and collected.exit_signal is None and not collected.overflow:
        why = reason_of(collected.lost) if collected.lost is not None else "the channel closed"
        raise CommandFailed(f"{why} before the command's exit status came back", stage)
    return Reply(
        bytes(collected.stdout),
        bytes(collected.stderr),
        collected.exit_status,
        collected.exit_signal,
        collected.overflow,
    )


def _abort(chan: Any) -> None:
    if chan is not None:
        chan.abort()
