"""``python -m oob.bench fanout``: oob against the reference tools over N mock BMCs (figures only).

Side by side in one run, each contestant on a fresh mock fleet started here (loopback only,
in this process, which does nothing else while a contestant runs, so its CPU and peak RSS
are the mock's; every BMC on an address of its own, 127.1.0.1 up, as in a real fleet where
oob takes one address for one BMC):

* ``oob nmi all --yes --json`` over N iDRAC-flavour Redfish BMCs, once per ``--parallel``,
  cold (nothing known of the BMCs) and warm (a second run: the discovery cache filled),
  and warm with ``bmc.auth = "basic"``, and cold with ``--workers`` one per CPU,
  against a sequential python-redfish-library loop (login, POST ComputerSystem.Reset Nmi,
  logout) over the same N;
* ``oob nmi all --yes --json`` over N IPMI BMCs against FreeIPMI's ``ipmipower --pulse``
  (the password in a 0600 configuration file, never on argv);
* ``oob preflight all --json`` over N hosts that answer SSH (the mock's ``host_ssh``),
  skipped with the reason when the mock cannot give N hosts SSH.

Each row: wall time, requests per host (the mock's counters: Redfish requests; for IPMI
the requests inside sessions, session setup not counted), NMIs the mock counted (must equal
N: a row that does not is marked and the exit code is 1), the client's peak RSS and CPU
seconds (its own process, from GNU time; per host too) and the mock's CPU seconds and peak
RSS (``Fleet.usage``).  Then the
ratios.  Nothing is asserted: benchmarks are not tests.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oob.benchchild import Child, run_child

if TYPE_CHECKING:
    from mocks.fleet import Fleet

#: what a contestant runs against a fleet: argv and its stdin
Command = Callable[["Fleet", Path, dict[str, str]], tuple[list[str], str | None]]

#: python-redfish-library's loop, run in a process of its own; reads its job from stdin
_REDFISH_LOOP = r"""
import json, sys
import redfish
job = json.load(sys.stdin)
password = open(job["password_file"], encoding="utf-8").read().rstrip("\r\n")
failed = 0
for url in job["urls"]:
    client = redfish.redfish_client(base_url=url, username=job["username"], password=password,
                                    cafile=job["ca_file"], timeout=30, max_retry=1)
    client.login(auth="session")
    reply = client.post(job["system"] + "/Actions/ComputerSystem.Reset", body={"ResetType": "Nmi"})
    failed += reply.status not in (200, 202, 204)
    client.logout()
print(json.dumps({"failed": failed}))
"""
#: the first BMC's address; the others follow (hosts are at 127.0.1.1 up)
BMC_ADDRESSES = "127.1.0.1"
#: the iDRAC's system, as a script written for iDRACs names it
IDRAC_SYSTEM = "/redfish/v1/Systems/System.Embedded.1"


@dataclass(frozen=True)
class Row:
    label: str
    n: int
    seconds: float
    requests_per_host: float
    nmis: int | None  # None: the contestant sends no NMI (preflight)
    client_rss_mib: float
    #: the client's CPU seconds (user + system), its own process
    client_cpu_seconds: float
    mock_cpu_seconds: float
    mock_rss_mib: float
    exit_code: int
    note: str = ""

    @property
    def nmis_ok(self) -> bool:
        return self.nmis is None or self.nmis == self.n


def _mock_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _clean_env(workdir: Path, ca_file: Path) -> dict[str, str]:
    """No proxies, the fleet's CA for libraries that read the environment, oob's state here."""
    env = {
        k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("OOB_")
    }
    env.update(
        REQUESTS_CA_BUNDLE=str(ca_file),
        CURL_CA_BUNDLE=str(ca_file),
        OOB_AUDIT_LOG=str(workdir / "audit.jsonl"),
        XDG_STATE_HOME=str(workdir / "state"),
        XDG_CACHE_HOME=str(workdir / "cache"),
        PYTHONPATH=os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")) if p
        ),
    )
    return env


def _fleet(vendors: list[str], n: int, workdir: Path, **options: Any) -> Fleet:
    if (Path(__file__).resolve().parents[1] / "mocks" / "fleet.py").is_file():
        from mocks.fleet import Fleet as Mock  # this source checkout's mock, beside this oob
    else:
        from oob_mock.fleet import Fleet as Mock  # type: ignore[no-redef,import-not-found,unused-ignore]  # installed
    return Mock.start(vendors=vendors, count=n, workdir=workdir, **options)


def _contest(
    label: str,
    n: int,
    vendors: list[str],
    fleet_options: dict[str, Any],
    command: Command,
    *,
    sends_nmi: bool = True,
    check: Callable[[Child], str] = lambda child: "",
    timeout: float = 900.0,
    warm: bool = False,
) -> Row:
    """One contestant on a fresh fleet.  ``warm``: oob runs once first (untimed, uncounted)
    so that the timed run finds its discovery cache filled; the timed run then sends
    with ``--allow-repeat`` (the first run's NMIs are in the audit log)."""
    with tempfile.TemporaryDirectory(prefix="oob-bench-fanout-") as work:
        workdir = Path(work)
        fleet = _fleet(vendors, n, workdir / "fleet", bmc_addresses=BMC_ADDRESSES, **fleet_options)
        try:
            env = _clean_env(workdir, fleet.ca_file)
            argv, stdin = command(fleet, workdir, env)
            bmcs = fleet.bmcs

            def counted() -> tuple[int, int]:
                requests = sum(b.requests_redfish if b.has_redfish else b.requests_ipmi for b in bmcs)
                return requests, sum(b.nmi_count for b in bmcs)

            if warm:
                run_child(argv, env, stdin, timeout)
                argv = [*argv, "--allow-repeat"]
            requests_before, nmis_before = counted()
            cpu = _mock_cpu()
            child = run_child(argv, env, stdin, timeout)
            mock_cpu = _mock_cpu() - cpu
            requests_after, nmis_after = counted()
            requests = requests_after - requests_before
            nmis = nmis_after - nmis_before if sends_nmi else None
            usage = fleet.usage()
        finally:
            fleet.stop()
    note = check(child)
    if child.exit_code not in (0, 8) and not note:
        tail = (child.stderr.strip().splitlines() or [""])[-1]
        note = f"exit {child.exit_code}: {tail[:120]}"
    return Row(
        label,
        n,
        child.seconds,
        requests / n,
        nmis,
        child.rss_mib,
        child.cpu_seconds,
        mock_cpu,
        float(usage["peak_rss_mib"]),
        child.exit_code,
        note,
    )


# -- the contestants


def _oob(subcommand: list[str], *, basic: bool = False) -> Command:
    """``oob SUBCOMMAND -i <the fleet's inventory>``; ``basic``: with ``bmc.auth = "basic"``."""

    def command(fleet: Fleet, workdir: Path, env: dict[str, str]) -> tuple[list[str], str | None]:
        inventory = fleet.write_inventory(workdir / "fleet.toml")
        if basic:
            text = inventory.read_text().replace("[defaults]\n", '[defaults]\nbmc.auth = "basic"\n', 1)
            inventory.write_text(text)
        return [sys.executable, "-m", "oob", *subcommand, "-i", str(inventory)], None

    return command


def _redfish_loop(fleet: Fleet, workdir: Path, env: dict[str, str]) -> tuple[list[str], str | None]:
    job = {
        "urls": [b.url for b in fleet.bmcs],
        "username": fleet.username,
        "password_file": str(fleet.password_file),
        "ca_file": str(fleet.ca_file),
        "system": IDRAC_SYSTEM,
    }
    return [sys.executable, "-c", _REDFISH_LOOP], json.dumps(job)


def _ipmipower(fleet: Fleet, workdir: Path, env: dict[str, str]) -> tuple[list[str], str | None]:
    config = workdir / "freeipmi.conf"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(f"password {fleet.password}\n")
    hosts = ",".join(f"{b.address}:{b.ipmi_port}" for b in fleet.bmcs)
    tool = shutil.which("ipmipower") or "ipmipower"
    argv = [tool, "-D", "LAN_2_0", "-u", fleet.username, "--config-file", str(config), "-h", hosts, "--pulse"]
    return argv, None


def _ipmipower_check(n: int) -> Callable[[Child], str]:
    def check(child: Child) -> str:
        ok = sum(1 for line in child.stdout.splitlines() if line.rstrip().endswith(": ok"))
        return "" if ok == n else f"ipmipower said ok for {ok} of {n}"

    return check


def _loop_check(child: Child) -> str:
    try:
        failed = json.loads(child.stdout.strip().splitlines()[-1])["failed"]
    except (IndexError, KeyError, ValueError):
        return f"the loop failed (exit {child.exit_code})"
    return f"{failed} POSTs failed" if failed else ""


# -- the run


def run(n: int, latency_ms: int, parallel: list[int], skip: set[str], timeout: float = 900.0) -> int:
    latency = {"latency_ms": latency_ms}
    contest = functools.partial(_contest, timeout=timeout)  # a stuck contestant is killed, its row marked
    rows: list[Row] = []
    ratios: list[str] = []

    def show(row: Row) -> None:
        rows.append(row)
        nmis = "-" if row.nmis is None else str(row.nmis)
        flag = "" if row.nmis_ok else f"   <<< NMIs COUNTED {row.nmis} != N {row.n} >>>"
        print(
            f"{row.label:<38} {row.n:>5} {row.seconds:9.2f} {row.requests_per_host:9.1f} {nmis:>6} "
            f"{row.client_rss_mib:10.1f} {row.client_cpu_seconds:10.2f} {1000 * row.client_cpu_seconds / row.n:8.2f} "
            f"{row.mock_cpu_seconds:9.2f} {row.mock_rss_mib:9.1f}  {row.note}{flag}",
            flush=True,
        )

    print(
        f"fanout: N = {n}, {latency_ms} ms per Redfish response, oob --parallel {','.join(map(str, parallel))}; "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print(
        f"{'contestant':<38} {'N':>5} {'wall s':>9} {'req/host':>9} {'NMIs':>6} "
        f"{'client MiB':>10} {'client CPU':>10} {'ms/host':>8} {'mock CPU':>9} {'mock MiB':>9}"
    )
    if "redfish" not in skip:
        oob_rows = []
        for p in parallel:
            nmi = _oob(["nmi", "all", "--yes", "--json", "--parallel", str(p)])
            oob_rows.append(contest(f"oob nmi redfish --parallel {p}", n, ["idrac9"], latency, nmi))
            show(oob_rows[-1])
            oob_rows.append(
                contest(f"oob nmi redfish --parallel {p} (warm)", n, ["idrac9"], latency, nmi, warm=True)
            )
            show(oob_rows[-1])
            basic = _oob(["nmi", "all", "--yes", "--json", "--parallel", str(p)], basic=True)
            oob_rows.append(
                contest(f"oob nmi redfish Basic -p {p} (warm)", n, ["idrac9"], latency, basic, warm=True)
            )
            show(oob_rows[-1])
            cpus = os.cpu_count() or 1
            if cpus > 1:  # the hosts shared among one process per CPU
                split = _oob(["nmi", "all", "--yes", "--json", "--parallel", str(p), "--workers", str(cpus)])
                oob_rows.append(
                    contest(f"oob nmi redfish -p {p} --workers {cpus}", n, ["idrac9"], latency, split)
                )
                show(oob_rows[-1])
        if "redfish-loop" not in skip:
            loop = contest(
                "redfish library loop (sequential)", n, ["idrac9"], latency, _redfish_loop, check=_loop_check
            )
            show(loop)
            for row in oob_rows:
                if row.exit_code != 0 or not row.nmis_ok or row.note:
                    continue  # a ratio to a run that did not finish would mislead
                ratios.append(f"{row.label}: {loop.seconds / row.seconds:.1f}x the library loop's speed")
    if "ipmi" not in skip:
        if shutil.which("ipmipower") is None:
            print("ipmipower (FreeIPMI) is not installed: the IPMI comparison is skipped")
        else:
            oob_ipmi = []
            for p in parallel:
                nmi = _oob(["nmi", "all", "--yes", "--json", "--parallel", str(p)])
                oob_ipmi.append(contest(f"oob nmi ipmi --parallel {p}", n, ["ipmi"], {}, nmi))
                show(oob_ipmi[-1])
            pulse = contest("ipmipower --pulse", n, ["ipmi"], {}, _ipmipower, check=_ipmipower_check(n))
            show(pulse)
            for row in oob_ipmi:
                if row.exit_code != 0 or not row.nmis_ok or row.note:
                    continue
                ratios.append(f"{row.label}: {row.seconds / pulse.seconds:.1f}x ipmipower's wall time")
    if "preflight" not in skip:
        p = max(parallel)
        try:
            row = contest(
                f"oob preflight --parallel {p}",
                n,
                ["idrac9"],
                {**latency, "host_ssh": True},
                _oob(["preflight", "all", "--json", "--parallel", str(p)]),
                sends_nmi=False,
            )
        except (RuntimeError, OSError, ValueError) as error:  # the mock's sshd (SshdUnavailable) and hosts
            reason = (str(error).strip().splitlines() or [""])[-1]  # sshd's log ends with its reason
            print(
                f"oob preflight skipped: the mock cannot give {n} hosts SSH ({type(error).__name__}: {reason})"
            )
        else:
            show(row)
    for line in ratios:
        print(line)
    wrong = [row for row in rows if not row.nmis_ok]
    for row in wrong:
        print(f"!!! {row.label}: the mock counted {row.nmis} NMIs for N = {row.n} !!!")
    return 1 if wrong else 0
