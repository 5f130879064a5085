"""How oob trusts a BMC's certificate.

Three ways, chosen per BMC from the inventory: a certificate pinned by its SHA-256
fingerprint (the usual case for self-signed BMC certificates), a CA file, or the system
CA bundle.  Verification is off only when the user says so, and then oob says so too.

The Redfish transport's one urllib3 pool manager per BMC gets ``verify`` (the CA file,
or False when a fingerprint is pinned) and the pool options of
:meth:`TlsPolicy.pool_kwargs`, so every connection it opens is checked the same way.
Environment variables such as REQUESTS_CA_BUNDLE never change what is trusted: urllib3
reads none of them.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

from oob.errors import UsageError
from oob.model import BmcConfig

_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
    "/etc/ssl/ca-bundle.pem",  # SUSE
    "/etc/ssl/cert.pem",  # Alpine, macOS
)


def system_ca_bundle() -> str:
    """Path of the system CA bundle, falling back to certifi's."""
    default = ssl.get_default_verify_paths().cafile
    for candidate in (default, *_SYSTEM_BUNDLES):
        if candidate and os.path.isfile(candidate):
            return candidate
    try:
        import certifi

        return str(certifi.where())
    except ImportError as exc:  # pragma: no cover - certifi comes with requests
        raise UsageError("no system CA bundle found; set bmc.ca_file or bmc.fingerprint") from exc


def normalise_fingerprint(value: str) -> str:
    text = value.strip().lower()
    text = text.removeprefix("sha256:")
    text = text.replace(":", "").replace(" ", "")
    if len(text) != 64 or any(ch not in "0123456789abcdef" for ch in text):
        raise UsageError(f"not a SHA-256 fingerprint: {value!r} (expected 64 hex digits)")
    return text


@dataclass(frozen=True)
class TlsPolicy:
    #: "fingerprint", "ca_file", "system" or "insecure"
    mode: str
    cafile: str | None = None
    fingerprint: str | None = None

    @property
    def verifies(self) -> bool:
        return self.mode != "insecure"

    def describe(self) -> str:
        if self.mode == "fingerprint":
            return f"pinned certificate sha256:{self.fingerprint}"
        if self.mode == "ca_file":
            return f"CA file {self.cafile}"
        if self.mode == "system":
            return f"system CA bundle {self.cafile}"
        return "NOT VERIFIED (insecure)"

    @property
    def verify(self) -> str | bool:
        """The CA file certificates are verified against, or False (pinned or insecure)."""
        return self.cafile if self.cafile else False

    def pool_kwargs(self) -> dict[str, Any]:
        """urllib3 pool options every connection to this BMC gets (the pinned fingerprint).

        urllib3 checks ``assert_fingerprint`` inside ``connect()``, right after the
        handshake and before the request is written: a wrong certificate never sees a
        byte of it.  Given to the BMC's pool manager, it applies to every connection it opens.
        """
        return {"assert_fingerprint": self.fingerprint} if self.fingerprint else {}


def tls_policy_for(bmc: BmcConfig, *, insecure: bool = False) -> TlsPolicy:
    """Decide how to trust this BMC. A pinned fingerprint wins over any CA."""
    if bmc.fingerprint:
        return TlsPolicy("fingerprint", fingerprint=normalise_fingerprint(bmc.fingerprint))
    if insecure or not bmc.verify:
        return TlsPolicy("insecure")
    if bmc.ca_file:
        if not os.path.isfile(bmc.ca_file):
            raise UsageError(f"bmc.ca_file {bmc.ca_file} does not exist")
        return TlsPolicy("ca_file", cafile=bmc.ca_file)
    return TlsPolicy("system", cafile=system_ca_bundle())
