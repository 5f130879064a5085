"""The mock BMC fleet, as oob's own commands (``oob demo``, ``oob mock serve``) load it.

Installed, the fleet is the package ``oob_mock`` (the repository's ``mocks/`` folder,
shipped under a name that cannot collide with anyone's ``mocks``); in a checkout that is
not installed, it is ``mocks`` itself. Its modules import each other relatively, so both
names work.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def mock_module(name: str) -> ModuleType:
    """The fleet's module ``name`` (``fleet``, ``cli``, ...)."""
    try:
        return importlib.import_module(f"oob_mock.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != "oob_mock":
            raise
    return importlib.import_module(f"mocks.{name}")
