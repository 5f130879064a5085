"""oob: crash a hung Linux server on purpose, through its BMC, and collect the kdump.

The library core (inventory, drivers, runbooks) is importable by runbook automation;
``oob.crash(...)``, ``oob.nmi(...)``, ``oob.analyze(...)`` and ``oob.select_hosts(...)``
(see :mod:`oob.api`)
run the same runbooks as the CLI, which is a thin layer over them.
"""

from typing import Any

__version__ = "0.1.0"

_API = ("analyze", "analyze_dumps", "crash", "nmi", "select_hosts")


def __getattr__(name: str) -> Any:
    # lazy, so that `oob --help` does not import the runbooks
    if name in _API:
        from oob import api

        return getattr(api, name)
    raise AttributeError(f"module 'oob' has no attribute {name!r}")
