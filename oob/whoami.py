"""Who is acting, for audit records and lock files."""

from __future__ import annotations

import getpass
import os
import socket


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def machine() -> str:
    return socket.gethostname()


def operator() -> str:
    """user@machine"""
    return f"{user()}@{machine()}"
