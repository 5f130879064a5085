"""``python -m oob.bench transport``: threads or asyncio for the Redfish fan-out, by measurement.

The same NMI conversation with each of N iDRAC-flavour mock BMCs, certificate verified
against the fleet's CA:

    POST /redfish/v1/SessionService/Sessions
                                         session login (X-Auth-Token, Location) at the URI
                                         the specification fixes, as oob's first login does
    GET /redfish/v1/Systems/System.Embedded.1
    POST its ComputerSystem.Reset        {"ResetType": "Nmi"}, on a NEW connection (oob's rule:
                                         an action never goes out on a reused keep-alive one)
    DELETE the session                   on the action's connection, as oob's transport does

two TLS handshakes and four HTTPS exchanges per BMC, by each contestant:

* ``threads``: oob's own :class:`~oob.drivers.redfish.transport.RedfishTransport` (public
  methods only: ``open``, ``get``, ``post_action``, ``close``) in a ThreadPoolExecutor of
  C workers, as ``oob nmi --parallel C`` runs it;
* ``asyncio``: one event loop, ``httpx.AsyncClient`` (one per BMC for the keep-alive part,
  a second one for the action and the logout: a fresh connection), an
  ``asyncio.Semaphore(C)``, one SSL context for the fleet (oob's transport shares one per
  trust too), the same origin checks (:func:`~oob.drivers.redfish.uris.safe_path`), body
  bound and JSON checks (:func:`~oob.drivers.redfish.bodies.parse_json`), a total deadline
  per request and no retry at all;
* ``threads x P``: the best ``threads`` row (fastest with every NMI counted) split across
  P = ``os.cpu_count()`` worker processes, each with a P-th of the BMCs and of C.

Below 50 ms of latency oob's pace per BMC (:mod:`oob.drivers.pace`: a request every 50 ms
at most) makes the ``threads`` rows wait; at real BMCs' latencies it never does.

Each contestant runs in a child process of its own (``python -m oob.benchtransport``, its
job, password included, on stdin: never on argv) against a fresh fleet started in this
process, which does nothing else meanwhile, so the mock's CPU is this process's.  The
child's CPU (user + system, its worker processes included) and peak RSS come from GNU
time (``/usr/bin/time -f "%M %U %S"``: wait4's rusage, from a small process of its own,
see :func:`oob.benchfanout._run_child`); for ``threads x P`` the RSS is the sum of every
process's own peak.  CPU ms per host is the fan-out's CPU alone (interpreter start and
imports left out; they are in "CPU s").  Nothing is asserted: benchmarks are not tests.
The exit code is 1 when a row's NMIs (as the mock counted them) are not N, else 0.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oob.benchchild import run_child
from oob.drivers.redfish.bodies import MAX_BODY_BYTES, parse_json
from oob.drivers.redfish.transport import STANDARD_SESSIONS
from oob.drivers.redfish.uris import Origin, safe_path
from oob.errors import BmcProtocolError
from oob.fdlimit import raise_open_files_limit
from oob.safetext import printable

if TYPE_CHECKING:
    import httpx

#: oob's default ``bmc.timeout``: the total of one request, for every contestant
REQUEST_TIMEOUT = 15.0
#: the iDRAC's system, as a script written for iDRACs names it
IDRAC_SYSTEM = "/redfish/v1/Systems/System.Embedded.1"
_HEADERS = {"Accept": "application/json", "OData-Version": "4.0", "Accept-Encoding": "identity"}
_NMI = {"ResetType": "Nmi"}
#: an error's message shown at most this long (it is the child's, about a mock BMC)
_MESSAGE_CHARS = 160


# -- the child side: one contestant's fan-out, in a process of its own


@dataclass
class Outcome:
    """What a child reports on stdout (one JSON object)."""

    sent: int = 0
    failed: int = 0
    requests: int = 0
    #: CPU seconds (user + system) and wall seconds of the fan-out alone
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    #: the sum of the peak RSS of every process of the contestant (MiB)
    rss_mib: float = 0.0
    #: failures by exception type, and the first one's message
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    def failure(self, error: BaseException) -> None:
        self.failed += 1
        kind = type(error).__name__
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if not self.first_error:
            self.first_error = printable(f"{kind}: {error}" if str(error) else kind)[:_MESSAGE_CHARS]


@dataclass(frozen=True)
class Job:
    kind: str
    urls: list[str]
    username: str
    password: str = field(repr=False)  # travels on the child's stdin, never on argv
    ca_file: str
    concurrency: int
    #: worker processes (``split`` only)
    workers: int = 1

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _own_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(fanout: Callable[[Outcome], None]) -> Outcome:
    outcome = Outcome()
    cpu, start = _cpu_seconds(), time.perf_counter()
    fanout(outcome)
    outcome.wall_seconds = time.perf_counter() - start
    outcome.cpu_seconds = _cpu_seconds() - cpu
    outcome.rss_mib = _own_peak_rss_mib()
    return outcome


def _threads(job: Job) -> Outcome:
    from oob.drivers.redfish.transport import RedfishTransport
    from oob.drivers.tls import TlsPolicy

    tls = TlsPolicy("ca_file", cafile=job.ca_file)

    def conversation(url: str) -> int:
        transport = RedfishTransport(url, job.username, job.password, tls, timeout=REQUEST_TIMEOUT)
        try:
            transport.open()
            system = transport.get(IDRAC_SYSTEM, field="the system")
            transport.post_action(
                _reset_target(system.body), _NMI, field="Actions.#ComputerSystem.Reset.target"
            )
        finally:
            transport.close()  # the session's DELETE; never raises
        return transport.request_count

    def fanout(outcome: Outcome) -> None:
        with ThreadPoolExecutor(max_workers=job.concurrency, thread_name_prefix="bmc") as pool:
            futures = [pool.submit(conversation, url) for url in job.urls]
            for future in futures:
                try:
                    requests = future.result()
                except Exception as error:  # noqa: BLE001 - a failed host is counted, never fatal
                    outcome.failure(error)
                    continue
                outcome.sent += 1
                outcome.requests += requests

    return _timed(fanout)


def _reset_target(system: object) -> object:
    """The system's ComputerSystem.Reset target (checked by whoever follows it)."""
    actions = system.get("Actions") if isinstance(system, dict) else None
    reset = actions.get("#ComputerSystem.Reset") if isinstance(actions, dict) else None
    return reset.get("target") if isinstance(reset, dict) else None


async def _exchange(
    client: httpx.AsyncClient, method: str, path: str, body: Any = None
) -> tuple[int, httpx.Headers, Any]:
    """One request within :data:`REQUEST_TIMEOUT` in all: its status, headers and JSON body
    (read up to the body cap, then depth-checked and parsed as oob does)."""
    async with asyncio.timeout(REQUEST_TIMEOUT):
        async with client.stream(method, path, json=body) as response:
            data = bytearray()
            async for chunk in response.aiter_raw():
                data += chunk
                if len(data) > MAX_BODY_BYTES:
                    raise BmcProtocolError(f"{method} {path}: a body larger than {MAX_BODY_BYTES} bytes")
    return response.status_code, response.headers, parse_json(bytes(data))


def _expect(status: int, what: str, origin: Origin) -> None:
    if not 200 <= status < 300:
        raise BmcProtocolError(f"the BMC at {origin} answered {what} with HTTP {status}")


async def _async_conversation(url: str, job: Job, context: ssl.SSLContext) -> int:
    """The conversation with one BMC; the requests it sent.  Never retried."""
    import httpx

    origin = Origin.parse(url)
    options: dict[str, Any] = {
        "base_url": origin.base,
        "verify": context,
        "trust_env": False,
        "follow_redirects": False,
        "timeout": httpx.Timeout(REQUEST_TIMEOUT, connect=5.0),
        "headers": _HEADERS,
    }
    requests = 0
    async with httpx.AsyncClient(**options) as keepalive, httpx.AsyncClient(**options) as fresh:
        login = STANDARD_SESSIONS  # as oob's first login: the root unread
        requests += 1
        credentials = {"UserName": job.username, "Password": job.password}
        status, headers, _ = await _exchange(keepalive, "POST", login, credentials)
        _expect(status, "the login", origin)
        token = headers.get("X-Auth-Token")
        if not (
            token and len(token) <= 4096 and token.isascii() and token.isprintable() and " " not in token
        ):
            raise BmcProtocolError(f"the BMC at {origin} opened a session without a usable X-Auth-Token")
        session = safe_path(headers.get("Location"), origin, field="Location of the new session")
        keepalive.headers["X-Auth-Token"] = fresh.headers["X-Auth-Token"] = token
        logout_on = keepalive
        try:
            requests += 1
            status, _, system = await _exchange(keepalive, "GET", IDRAC_SYSTEM)
            _expect(status, f"GET {IDRAC_SYSTEM}", origin)
            target = safe_path(_reset_target(system), origin, field="Actions.#ComputerSystem.Reset.target")
            logout_on = fresh  # the action opens the fresh client's connection; the logout reuses it
            requests += 1
            status, _, _ = await _exchange(fresh, "POST", target, _NMI)
            _expect(status, f"POST {target}", origin)
        finally:
            requests += 1
            try:
                await _exchange(logout_on, "DELETE", session)
            except Exception:  # noqa: BLE001 - as the transport's close(): the session expires on the BMC
                pass
    return requests


def _asyncio(job: Job) -> Outcome:
    import httpx  # noqa: F401 - imported before the clock starts, as the transport's modules are

    context = ssl.create_default_context(cafile=job.ca_file)

    async def fanout_async(outcome: Outcome) -> None:
        gate = asyncio.Semaphore(job.concurrency)

        async def one(url: str) -> int:
            async with gate:
                return await _async_conversation(url, job, context)

        results = await asyncio.gather(*(one(url) for url in job.urls), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                outcome.failure(result)
            else:
                outcome.sent += 1
                outcome.requests += result

    return _timed(lambda outcome: asyncio.run(fanout_async(outcome)))


def _split(job: Job) -> Outcome:
    """``threads`` in ``job.workers`` processes (fresh interpreters started from this small
    one), each with every ``workers``-th BMC and its share of the concurrency."""
    per_worker = max(1, math.ceil(job.concurrency / job.workers))
    shares = [job.urls[i :: job.workers] for i in range(job.workers)]
    jobs = [
        Job("threads", urls, job.username, job.password, job.ca_file, per_worker) for urls in shares if urls
    ]

    outcome = Outcome(rss_mib=_own_peak_rss_mib())
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="oob-bench-transport-") as scratch, ExitStack() as files:
        children = []
        for index, worker_job in enumerate(jobs):
            out = files.enter_context(Path(scratch, f"{index}.out").open("w+"))
            child = subprocess.Popen(
                [sys.executable, "-m", "oob.benchtransport"],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.DEVNULL,  # oob's log lines; failures come back counted
                text=True,
            )
            assert child.stdin is not None
            child.stdin.write(worker_job.to_json())
            child.stdin.close()
            children.append((child, out))
        for child, out in children:
            child.wait()  # the parent's deadline kills this process group
            out.seek(0)
            try:
                part = Outcome(**json.loads(out.read()))
            except (TypeError, ValueError):
                outcome.failure(RuntimeError(f"a worker exited {child.returncode} without a report"))
                continue
            outcome.sent += part.sent
            outcome.failed += part.failed
            outcome.requests += part.requests
            outcome.cpu_seconds += part.cpu_seconds  # the workers' fan-outs: this process only waits
            outcome.rss_mib += part.rss_mib
            for kind, count in part.errors.items():
                outcome.errors[kind] = outcome.errors.get(kind, 0) + count
            outcome.first_error = outcome.first_error or part.first_error
    outcome.wall_seconds = time.perf_counter() - start
    return outcome


def child_main() -> int:
    """A contestant's process: its job on stdin, its :class:`Outcome` as JSON on stdout."""
    raise_open_files_limit()  # two connections per BMC in flight, and the fleet may be large
    job = Job.from_json(sys.stdin.read())
    runners = {"threads": _threads, "asyncio": _asyncio, "split": _split}
    outcome = runners[job.kind](job)
    print(json.dumps(outcome.__dict__))
    return 0


# -- the parent side: fleets, children, rows


@dataclass(frozen=True)
class Row:
    contestant: str
    concurrency: int
    n: int
    #: the child process's wall time, start to exit (what a user waits for)
    wall_seconds: float
    #: the fan-out's alone (``threads x P``: its worker processes' start included)
    fanout_seconds: float
    #: the child's CPU (user + system) from wait4, interpreter start and workers included
    cpu_seconds: float
    #: the fan-out's CPU per host (interpreter start and imports left out)
    cpu_ms_per_host: float
    rss_mib: float
    mock_cpu_seconds: float
    requests_per_host: float
    nmis: int
    failed: int
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.contestant} C={self.concurrency}"

    @property
    def complete(self) -> bool:
        return self.nmis == self.n and self.failed == 0 and not self.note


def contest(contestant: str, n: int, latency_ms: int, concurrency: int, timeout: float = 900.0) -> Row:
    """One contestant at one concurrency on a fresh fleet of ``n`` iDRAC-flavour BMCs."""
    from .benchfanout import BMC_ADDRESSES, _clean_env, _fleet

    with tempfile.TemporaryDirectory(prefix="oob-bench-transport-") as work:
        workdir = Path(work)
        fleet = _fleet(["idrac9"], n, workdir / "fleet", bmc_addresses=BMC_ADDRESSES, latency_ms=latency_ms)
        try:
            bmcs = fleet.bmcs
            job = Job(
                contestant,
                [b.url for b in bmcs],
                fleet.username,
                fleet.password,
                str(fleet.ca_file),
                concurrency,
                workers=os.cpu_count() or 1,
            )
            env = _clean_env(workdir, fleet.ca_file)
            nmis_before = sum(b.nmi_count for b in bmcs)
            requests_before = sum(b.requests_redfish for b in bmcs)
            cpu = _cpu_seconds()
            child = run_child([sys.executable, "-m", "oob.benchtransport"], env, job.to_json(), timeout)
            mock_cpu = _cpu_seconds() - cpu
            nmis = sum(b.nmi_count for b in bmcs) - nmis_before
            requests = sum(b.requests_redfish for b in bmcs) - requests_before
        finally:
            fleet.stop()
    try:
        outcome = Outcome(**json.loads(child.stdout.strip().splitlines()[-1]))
    except (IndexError, TypeError, ValueError):
        tail = (child.stderr.strip().splitlines() or [""])[-1]
        outcome, note = Outcome(failed=n), f"no report (exit {child.exit_code}): {tail[:120]}"
    else:
        note = outcome.first_error
    rss = outcome.rss_mib if contestant == "split" else child.rss_mib
    return Row(
        contestant,
        concurrency,
        n,
        child.seconds,
        outcome.wall_seconds,
        child.cpu_seconds,
        outcome.cpu_seconds / n * 1000,
        rss,
        mock_cpu,
        requests / n,
        nmis,
        outcome.failed,
        note,
    )


_NAMES = {
    "threads": "threads + RedfishTransport",
    "asyncio": "asyncio + httpx.AsyncClient",
    "split": f"threads x {os.cpu_count() or 1} processes",
}


def _show(row: Row) -> None:
    flag = "" if row.nmis == row.n else f"   <<< NMIs COUNTED {row.nmis} != N {row.n} >>>"
    print(
        f"{_NAMES[row.contestant]:<30} {row.concurrency:>5} {row.wall_seconds:8.2f} {row.fanout_seconds:9.2f} "
        f"{row.cpu_seconds:7.2f} "
        f"{row.cpu_ms_per_host:8.2f} {row.rss_mib:7.1f} {row.mock_cpu_seconds:8.2f} {row.requests_per_host:8.1f} "
        f"{row.nmis:>6} {row.failed:>6}  {row.note}{flag}",
        flush=True,
    )


def _verdict(rows: list[Row]) -> str:
    """One line: which is faster, and which is cheaper per host, among complete rows."""
    complete = [row for row in rows if row.complete]
    if not complete:
        return "verdict: no contestant sent every NMI"
    fastest = min(complete, key=lambda row: row.wall_seconds)
    cheapest = min(complete, key=lambda row: row.cpu_ms_per_host)

    def best_of(contestant: str, key: Callable[[Row], float]) -> Row | None:
        own = [row for row in complete if row.contestant == contestant]
        return min(own, key=key) if own else None

    parts = [
        f"fastest: {_NAMES[fastest.contestant]} at C={fastest.concurrency} ({fastest.wall_seconds:.2f} s)",
        f"cheapest per host: {_NAMES[cheapest.contestant]} at C={cheapest.concurrency} "
        f"({cheapest.cpu_ms_per_host:.1f} ms CPU)",
    ]
    threads = best_of("threads", lambda row: row.wall_seconds)
    aio = best_of("asyncio", lambda row: row.wall_seconds)
    if threads and aio:
        threads_cpu = min(r.cpu_ms_per_host for r in complete if r.contestant == "threads")
        aio_cpu = min(r.cpu_ms_per_host for r in complete if r.contestant == "asyncio")
        parts.append(
            f"asyncio/threads: {aio.wall_seconds / threads.wall_seconds:.2f}x the wall time, "
            f"{aio_cpu / threads_cpu:.2f}x the CPU per host"
        )
    return "verdict: " + "; ".join(parts)


def measure(
    n: int,
    latency_ms: int,
    concurrency: Sequence[int],
    timeout: float = 900.0,
    show: Callable[[Row], None] = lambda row: None,
) -> list[Row]:
    """Every contestant's rows: threads and asyncio at each concurrency, then the fastest
    complete threads row's concurrency split across ``os.cpu_count()`` processes."""
    rows: list[Row] = []
    for c in concurrency:
        for contestant in ("threads", "asyncio"):
            rows.append(contest(contestant, n, latency_ms, c, timeout))
            show(rows[-1])
    threads = [row for row in rows if row.contestant == "threads" and row.complete] or [
        row for row in rows if row.contestant == "threads"
    ]
    best = min(threads, key=lambda row: row.wall_seconds)
    rows.append(contest("split", n, latency_ms, best.concurrency, timeout))
    show(rows[-1])
    return rows


def _stacks() -> str:
    """The HTTP stacks' versions, and whether httpcore pays for a missing sniffio."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    def installed(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} absent"

    line = ", ".join(installed(name) for name in ("requests", "urllib3", "httpx", "httpcore", "anyio"))
    if find_spec("sniffio") is None:
        # httpcore's current_async_library() imports sniffio on every lock it sets up, and
        # Python does not remember a failed import: a search of sys.path each time
        line += (
            "; sniffio absent (httpcore then retries `import sniffio` for every lock: CPU in asyncio rows)"
        )
    return line


def run(n: int, latency_ms: int, concurrency: Sequence[int], timeout: float = 900.0) -> int:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"transport: N = {n}, {latency_ms} ms per Redfish response, C = {','.join(map(str, concurrency))}; "
        f"{os.cpu_count()} CPUs (load {load:.2f}), Python {sys.version.split()[0]}"
    )
    print(_stacks())
    print(
        f"{'contestant':<30} {'C':>5} {'wall s':>8} {'fan-out s':>9} {'CPU s':>7} {'ms/host':>8} {'MiB':>7} "
        f"{'mock CPU':>8} {'req/host':>8} {'NMIs':>6} {'failed':>6}"
    )
    rows = measure(n, latency_ms, concurrency, timeout, show=_show)
    print(_verdict(rows))
    wrong = [row for row in rows if row.nmis != row.n]
    for row in wrong:
        print(f"!!! {row.label}: the mock counted {row.nmis} NMIs for N = {row.n} !!!")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(child_main())
