"""Python's libvirt binding, imported only when a libvirt host needs it.

``oob --help`` and every Redfish/IPMI run never import it: the binding is a C extension
built against the machine's libvirt, which most oob users do not have.  When it is
missing, oob says how to install it in one line (exit 2), never with a traceback.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from oob.errors import UsageError

INSTALL_HINT = (
    "oob needs Python's libvirt binding for bmc.kind = 'libvirt': install python3-libvirt "
    "(Debian/Ubuntu: apt install python3-libvirt; RHEL/Fedora: dnf install python3-libvirt), "
    "or pip install 'oob[libvirt]' (libvirt-python: builds against libvirt's headers)"
)

_lock = threading.Lock()
_module: ModuleType | None = None


def _ignore(_context: Any, _error: Any) -> None:
    """libvirt prints every error to stderr by default; oob reports them itself."""


def libvirt_module() -> ModuleType:
    """The ``libvirt`` module, with libvirt's own stderr printing turned off; UsageError
    (exit 2) with how to install it when it is missing."""
    global _module
    with _lock:
        if _module is None:
            try:
                import libvirt
            except ImportError:
                raise UsageError(INSTALL_HINT) from None
            libvirt.registerErrorHandler(_ignore, None)
            _module = libvirt
        return _module
