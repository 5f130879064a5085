"""Free space at the inventory's ``dump.target``, measured from where oob runs.

``file://``: :func:`shutil.disk_usage` of the directory (a local disk or an NFS export
mounted here), in a daemon thread so a hung NFS server costs ``timeout`` seconds, not the
run.  ``ssh://``: ``df -P -k PATH`` on the dump server over one SSH connection (keys and
known_hosts as for the watcher).  Read-only.
"""

from __future__ import annotations

import asyncio
import shutil
import threading

from oob.dump.targets import SshOptions, SshPool, asyncssh_errors, parse_target
from oob.errors import OobError
from oob.preflight.facts import df_script, parse_df

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
        return asyncio.run(_ssh_df(url, ssh, timeout))
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


async def _ssh_df(url: str, ssh: SshOptions | None, timeout: float) -> Measured:
    spec = parse_target(url)
    where = spec.location()
    try:
        conn = await asyncio.wait_for(SshPool(ssh).connect(spec), timeout)
    except OobError as exc:
        return f"free space at {where} not measured: {exc.message}"
    except TimeoutError:
        return f"free space at {where} not measured: no SSH connection within {timeout:g} s"
    try:
        result = await asyncio.wait_for(conn.run("sh -s", input=df_script(spec.path), check=False), timeout)
        output = f"{result.stdout or ''}{result.stderr or ''}"
    except (asyncssh_errors(), TimeoutError, OSError) as exc:
        return f"free space at {where} not measured: {exc or type(exc).__name__}"
    finally:
        conn.close()
    available, error = parse_df(output)
    if available is None:
        return f"free space at {where} not measured: {error}"
    return where, available
