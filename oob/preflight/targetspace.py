"""Free space at the inventory's ``dump.target``, measured from where oob runs.

``file://``: :func:`shutil.disk_usage` of the directory (a local disk or an NFS export
mounted here), in a daemon thread so a hung NFS server costs ``timeout`` seconds, not the
run.  ``ssh://``: ``df -P -k PATH`` on the dump server over one SSH connection
(:mod:`oob.ssh`, as for the watcher), through :mod:`oob.asyncbridge` with a deadline.
Read-only.
"""

from __future__ import annotations

import asyncio
import shutil
import threading

from oob import asyncbridge
from oob.dump.targets import parse_target
from oob.errors import OobError
from oob.preflight.facts import df_script, parse_df
from oob.ssh import CLOSE_TIMEOUT, DUMP_SERVER, SshOptions, close_connection, connect, run_script

#: (where, bytes free), or why it was not measured
Measured = tuple[str, int] | str


def measure(url: str, ssh: SshOptions | None = None, *, timeout: float = 30.0) -> Measured:
    try:
        spec = parse_target(url)
    except OobError as exc:
        return f"dump.target not understood: {exc.message}"
    if spec.scheme == "file":
        return _disk_usage(spec.path, timeout)
    if spec.scheme == "ssh":
        options = ssh or SshOptions()
        # the net under the coroutine's own bounds: connect, then df, then close
        deadline = min(options.connect_timeout, timeout) + timeout + CLOSE_TIMEOUT + 1.0
        try:
            return asyncbridge.run(_ssh_df(url, options, timeout), timeout=deadline)
        except TimeoutError:
            return f"free space at {spec.location()} not measured: no answer within {deadline:g} s"
    return f"free space not measured ({spec.scheme}:// target)"


def _disk_usage(path: str, timeout: float) -> Measured:
    answer: list[Measured] = []

    def work() -> None:
        try:
            answer.append((path, shutil.disk_usage(path).free))
        except OSError as exc:
            answer.append(f"cannot measure {path}: {exc.strerror or exc}")

    thread = threading.Thread(target=work, name="oob-disk-usage", daemon=True)
    thread.start()
    thread.join(timeout)
    if not answer:
        return f"{path} did not answer within {timeout:g} s (a hung NFS mount?)"
    return answer[0]


async def _ssh_df(url: str, ssh: SshOptions, timeout: float) -> Measured:
    spec = parse_target(url)
    where = spec.location()
    try:
        conn = await asyncio.wait_for(connect(spec.ssh, ssh, DUMP_SERVER), timeout)
    except OobError as exc:
        return f"free space at {where} not measured: {exc.message}"
    except TimeoutError:
        return f"free space at {where} not measured: no SSH connection within {timeout:g} s"
    try:
        ran = await run_script(conn, df_script(spec.path), timeout=timeout)
    finally:
        await close_connection(conn)
    if ran.rc is None and not ran.stdout:
        return f"free space at {where} not measured: {ran.stderr}"
    available, error = parse_df(ran.stdout + ran.stderr)
    if available is None:
        return f"free space at {where} not measured: {error}"
    return where, available
