"""The distribution, its kdump service, and where its kdump config says dumps go.

RHEL/Fedora ``/etc/kdump.conf`` (``path``, ``nfs``, ``ssh``), SUSE ``/etc/sysconfig/kdump``
(``KDUMP_SAVEDIR``), Debian/Ubuntu ``/etc/default/kdump-tools`` (``KDUMP_COREDIR``,
``NFS``, ``SSH``); and RHEL's ``fence_kdump_nodes`` / ``fence_kdump_args``, to which machines its
crash kernel says "kdump has started" (:mod:`oob.signals.fence_kdump`).  Where each lands (docs/KDUMP.md, "where they land"): RHEL nfs
``srv:/export`` + ``path /var/crash`` -> ``srv:/export/var/crash``; ssh -> ``path`` on the
server; SUSE ``nfs://HOST/DIR`` -> ``HOST:/DIR``; Debian NFS is mounted over
``KDUMP_COREDIR``, so the export itself.  Pure functions, no I/O.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

#: os-release ID / ID_LIKE words -> family
_FAMILIES: dict[str, str] = {
    "rhel": "rhel",
    "fedora": "rhel",
    "centos": "rhel",
    "rocky": "rhel",
    "almalinux": "rhel",
    "ol": "rhel",
    "sles": "suse",
    "sled": "suse",
    "suse": "suse",
    "opensuse": "suse",
    "opensuse-leap": "suse",
    "opensuse-tumbleweed": "suse",
    "debian": "debian",
    "ubuntu": "debian",
}
#: family -> (systemd unit, config file)
SERVICE: dict[str, str] = {"rhel": "kdump", "suse": "kdump", "debian": "kdump-tools"}
CONFIG: dict[str, str] = {
    "rhel": "/etc/kdump.conf",
    "suse": "/etc/sysconfig/kdump",
    "debian": "/etc/default/kdump-tools",
}


def family(os_release: dict[str, str]) -> str | None:
    words = [os_release.get("ID", ""), *os_release.get("ID_LIKE", "").split()]
    for word in words:
        found = _FAMILIES.get(word.lower())
        if found:
            return found
    return None


@dataclass(frozen=True)
class ConfiguredTarget:
    #: "local", "nfs", "ssh"
    kind: str
    #: where the dump directories land: a path on the host (local), on the NFS server, or
    #: on the SSH server
    path: str
    server: str | None = None
    user: str | None = None
    #: the config lines it came from, for messages
    source: str = ""

    def describe(self) -> str:
        if self.kind == "local":
            return f"{self.path} (local)"
        who = f"{self.user}@{self.server}" if self.user else self.server
        return f"{who}:{self.path} ({self.kind})"

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "server": self.server,
            "user": self.user,
            "path": self.path,
            "source": self.source,
        }


def _assignments(text: str) -> dict[str, str]:
    """Shell-style ``KEY="value"`` lines (sysconfig, /etc/default)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value, comments=True)
        except ValueError:
            parts = [value.strip()]
        values[key.strip()] = parts[0] if parts else ""
    return values


def _split_server(text: str) -> tuple[str | None, str]:
    user, _, server = text.rpartition("@")
    return (user or None), server


def rhel_target(text: str) -> ConfiguredTarget:
    directives: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(" ")
            directives[key] = value.strip()
    path = directives.get("path", "/var/crash")
    if "nfs" in directives:
        server, _, export = directives["nfs"].partition(":")
        return ConfiguredTarget(
            "nfs",
            posixpath.normpath(posixpath.join(export or "/", path.lstrip("/"))),
            server,
            source=f"nfs {directives['nfs']}; path {path}",
        )
    if "ssh" in directives:
        user, server = _split_server(directives["ssh"])
        return ConfiguredTarget(
            "ssh", posixpath.normpath(path), server, user, source=f"ssh {directives['ssh']}; path {path}"
        )
    return ConfiguredTarget("local", posixpath.normpath(path), source=f"path {path}")


def suse_target(text: str) -> ConfiguredTarget:
    value = _assignments(text).get("KDUMP_SAVEDIR", "/var/crash") or "/var/crash"
    source = f"KDUMP_SAVEDIR={value}"
    if "://" not in value:
        return ConfiguredTarget("local", posixpath.normpath(value), source=source)
    parts = urlsplit(value)
    path = posixpath.normpath(parts.path or "/")
    if parts.scheme == "file":
        return ConfiguredTarget("local", path, source=source)
    if parts.scheme == "nfs":
        return ConfiguredTarget("nfs", path, parts.hostname, source=source)
    if parts.scheme in ("ssh", "sftp"):
        return ConfiguredTarget("ssh", path, parts.hostname, parts.username, source=source)
    return ConfiguredTarget(parts.scheme or "local", path, parts.hostname, parts.username, source=source)


def debian_target(text: str) -> ConfiguredTarget:
    values = _assignments(text)
    coredir = values.get("KDUMP_COREDIR", "/var/crash") or "/var/crash"
    if values.get("NFS"):
        server, _, export = values["NFS"].partition(":")
        return ConfiguredTarget(
            "nfs", posixpath.normpath(export or "/"), server, source=f"NFS={values['NFS']}"
        )
    if values.get("SSH"):
        user, server = _split_server(values["SSH"])
        return ConfiguredTarget(
            "ssh",
            posixpath.normpath(coredir),
            server,
            user,
            source=f"SSH={values['SSH']}; KDUMP_COREDIR={coredir}",
        )
    return ConfiguredTarget("local", posixpath.normpath(coredir), source=f"KDUMP_COREDIR={coredir}")


#: fence_kdump_send's default port (fence-agents), what ``fence_kdump_args`` leaves out
FENCE_KDUMP_PORT = 7410


@dataclass(frozen=True)
class FenceKdumpConfig:
    """RHEL kdump.conf's ``fence_kdump_nodes`` and ``fence_kdump_args`` (kdump.conf(5))."""

    #: the machines the crash kernel tells "kdump has started", as written (names or IPs)
    nodes: tuple[str, ...]
    #: the port from ``-p``/``--ipport`` in ``fence_kdump_args`` (None when it is not a number)
    port: int | None = FENCE_KDUMP_PORT
    args: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"nodes": list(self.nodes), "port": self.port, "args": self.args}


def _directives(text: str) -> dict[str, str]:
    """kdump.conf's ``directive value...`` lines (the last one of a name wins, as kdumpctl reads
    them); comments and blank lines skipped."""
    directives: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            parts = line.split(None, 1)
            directives[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return directives


def fence_kdump_config(text: str) -> FenceKdumpConfig:
    """What /etc/kdump.conf says about fence_kdump (no nodes: not configured)."""
    directives = _directives(text)
    nodes = tuple(directives.get("fence_kdump_nodes", "").split())
    args = directives.get("fence_kdump_args", "")
    port: int | None = FENCE_KDUMP_PORT
    words = args.split()
    for index, word in enumerate(words):
        value: str | None = None
        if word in ("-p", "--ipport"):
            value = words[index + 1] if index + 1 < len(words) else ""
        elif word.startswith("--ipport="):
            value = word.partition("=")[2]
        elif word.startswith("-p") and len(word) > 2:
            value = word[2:]
        if value is not None:
            port = int(value) if value.isascii() and value.isdigit() and 0 < int(value) < 65536 else None
    return FenceKdumpConfig(nodes, port, args)


def configured_target(family_name: str, text: str) -> ConfiguredTarget:
    return {"rhel": rhel_target, "suse": suse_target, "debian": debian_target}[family_name](text)


def debian_disabled(text: str) -> bool:
    """Debian's ``USE_KDUMP=0`` switches kdump-tools off whatever the service says."""
    return _assignments(text).get("USE_KDUMP", "1").strip() == "0"
