"""oob: crash a hung Linux server on purpose, through its BMC, and collect the kdump.

The library core (inventory, drivers, runbooks) is importable by runbook automation;
the CLI in :mod:`oob.cli` is a thin layer over it.
"""

__version__ = "0.1.0"
