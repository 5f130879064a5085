"""``--workers N``: hosts planned and sent by N worker processes instead of one.

One process spends one CPU at most (Python's GIL): at a thousand BMCs oob is bound by it
(about 7 ms of CPU per host, mostly the HTTP stack), and a client with more cores can
use them.  The parent keeps everything that makes a run safe — the host locks, the repeat
guard, the confirmation (``--workers`` needs ``--yes``), the report — and hands each worker
a share of the hosts, whole hosts only (every host's conversation with its BMC stays in one
process, one request at a time).  A worker runs the same code the parent would
(:func:`oob.runbook.nmi._plan_and_send_each`) with its own audit log handle on the same
file (records of one run, one run id; the log's lock keeps processes' records whole) and
sends its events and outcomes back over a pipe.

Stops: a worker runs in a session of its own and ignores SIGINT (a terminal's Ctrl-C is the
parent's to decide) and takes SIGTERM/SIGHUP, or the parent's word when the parent is stopped
(or gone: its socket closes),
as the CLI does: no NMI starts afterwards, requests in flight get
:data:`~oob.defaults.IN_FLIGHT_GRACE_S`, then are ended.  A worker that ends without
reporting leaves its hosts to the audit log: a host whose ``nmi.sending`` of this run has
no ``nmi.sent``/``nmi.failed`` after it is "outcome unknown" (the NMI may have left), one
with none was never sent.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oob.audit import AuditLog
from oob.errors import OobError, OutcomeUnknown
from oob.events import Emit
from oob.model import Host
from oob.runbook.common import Outcome, Status

if TYPE_CHECKING:
    from oob.runbook.nmi import NmiRequest

#: seconds the parent waits for a worker that reported all (or died) to exit
_REPORT_WAIT_S = 30.0
#: seconds a worker told to abort (a second Ctrl-C) has before it is killed
_ABORT_WAIT_S = 5.0
_TICK_S = 0.2


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection
    hosts: list[Host]


def _start(share: list[Host], request: NmiRequest, audit: AuditLog | None) -> _Worker:
    """A worker process: ``python -m oob.runbook.workers FD``, its job sent over the socket
    FD.  A fresh interpreter (no fork: this process runs threads whose locks a fork would
    copy held), and not multiprocessing's spawn, which imports the caller's ``__main__``
    again: a runbook script calling :func:`oob.nmi` without a ``__main__`` guard would run
    itself a second time."""
    ours, theirs = socket.socketpair()
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    # this very oob, wherever the caller found it
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "oob.runbook.workers", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
            # a session of its own: a terminal's Ctrl-C (sent to the whole foreground group)
            # never reaches it, even while it starts; the parent tells it what to do
            start_new_session=True,
        )
    finally:
        theirs.close()
    conn = Connection(ours.detach())
    conn.send((share, request, audit, logging.getLogger("oob").getEffectiveLevel()))
    return _Worker(process, conn, share)


def plan_and_send_in_workers(
    hosts: Sequence[Host],
    request: NmiRequest,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event,
    workers: int,
) -> dict[str, Outcome]:
    """:func:`~oob.runbook.nmi._plan_and_send_each` over ``workers`` processes."""
    shares = [list(hosts[i::workers]) for i in range(workers) if hosts[i::workers]]
    each = replace(request, parallel=max(1, request.parallel // len(shares)), workers=1)
    started: list[_Worker] = []
    outcomes: dict[str, Outcome] = {}
    try:
        for share in shares:
            started.append(_start(share, each, audit))
        _collect(started, emit, audit, cancel, outcomes)
    except BaseException:
        # a second Ctrl-C, or a bug here: the workers end their requests in flight now
        for worker in started:
            _tell(worker, "abort")
        for worker in started:
            try:
                worker.process.wait(_ABORT_WAIT_S)
            except subprocess.TimeoutExpired:
                worker.process.kill()
        raise
    finally:
        for worker in started:
            worker.conn.close()
    for worker in started:
        _reap(worker)
    return outcomes


def _reap(worker: _Worker) -> int:
    """The worker's exit status once it has exited (killed if it lingers past the wait)."""
    try:
        return worker.process.wait(_REPORT_WAIT_S)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        return worker.process.wait()


def _collect(
    workers: list[_Worker],
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event,
    outcomes: dict[str, Outcome],
) -> None:
    live = {id(w.conn): w for w in workers}
    told = False
    while live:
        if cancel.is_set() and not told:
            told = True
            for worker in live.values():
                _tell(worker, "cancel")
        for conn in wait([w.conn for w in live.values()], timeout=_TICK_S):
            assert isinstance(conn, Connection)
            worker = live[id(conn)]
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                del live[id(conn)]
                code = _reap(worker)
                for host in worker.hosts:
                    if host.name not in outcomes:
                        outcomes[host.name] = _lost(host, audit, code)
                continue
            if kind == "event":
                emit(payload)
            elif kind == "log":  # -v: the worker's lines through this process's handlers
                logging.getLogger(payload.name).handle(payload)
            elif kind == "outcome":
                outcomes[payload.host] = payload
            elif kind == "done":
                del live[id(conn)]


def _tell(worker: _Worker, word: str) -> None:
    try:
        worker.conn.send(word)
    except (OSError, ValueError):  # gone already: its hosts are judged by the audit log
        pass


def _lost(host: Host, audit: AuditLog | None, exit_code: int | None) -> Outcome:
    """A host whose worker ended without reporting it: what the audit log says of it."""
    how = (
        f"exit code {exit_code}"
        if exit_code is not None and exit_code >= 0
        else f"signal {-(exit_code or 0)}"
    )
    record = None
    if audit is not None:
        found = audit.recent(("nmi.sending", "nmi.sent", "nmi.failed"), 24 * 3600, host=host.name)
        record = found if isinstance(found, dict) and found.get("run") == audit.run_id else None
    if record is None:
        error = OobError(f"oob's worker process ended ({how}) before the NMI to this host; nothing was sent")
        return Outcome.from_error(host.name, "nmi", error.for_host(host.name))
    if record.get("event") == "nmi.sent":
        return Outcome(host=host.name, action="nmi", status=Status.OK, via=record.get("via"))
    if record.get("event") == "nmi.failed":
        error = OobError(
            f"{record.get('message', 'failed')} (as the audit log says; its worker ended, {how})"
        )
        return Outcome.from_error(host.name, "nmi", error.for_host(host.name), via=record.get("via"))
    unknown = OutcomeUnknown(
        f"oob's worker process ended ({how}) while the NMI was being sent; it may have reached the BMC"
    )
    return Outcome.from_error(host.name, "nmi", unknown.for_host(host.name), via=record.get("via"))


def _worker_main(fd: int) -> None:
    """One worker: its share of the hosts, planned and sent as the parent would; its events,
    outcomes and log records go to the parent (oob's loggers at the parent's level)."""
    from oob.defaults import IN_FLIGHT_GRACE_S
    from oob.drivers.redfish.wire import abort_in_flight
    from oob.runbook.nmi import _plan_and_send_each

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C does
    conn = Connection(fd)
    hosts, request, audit, log_level = conn.recv()
    cancel = threading.Event()
    sending = threading.Lock()

    def send(message: tuple[str, Any]) -> None:
        with sending:
            conn.send(message)

    def stop() -> None:
        if not cancel.is_set():
            cancel.set()
            grace = threading.Timer(IN_FLIGHT_GRACE_S, abort_in_flight)
            grace.daemon = True
            grace.start()

    class ToParent(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record.msg, record.args = record.getMessage(), None  # the arguments may not pickle
            record.exc_info = record.exc_text = None
            send(("log", record))

    root = logging.getLogger()
    root.handlers[:] = [ToParent()]
    root.setLevel(logging.WARNING)
    logging.getLogger("oob").setLevel(log_level)
    logging.getLogger("urllib3").setLevel(logging.WARNING)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop())

    def listen() -> None:
        while True:
            try:
                word = conn.recv()
            except (EOFError, OSError):  # the parent is gone: stop as if told
                stop()
                return
            if word == "cancel":
                stop()
            elif word == "abort":
                cancel.set()
                abort_in_flight()

    threading.Thread(target=listen, name="oob-worker-listen", daemon=True).start()
    outcomes = _plan_and_send_each(hosts, request, lambda event: send(("event", event)), audit, cancel)
    for outcome in outcomes.values():
        send(("outcome", outcome))
    send(("done", None))


if __name__ == "__main__":
    _worker_main(int(sys.argv[1]))
