"""The fleet's certificate authority and one server certificate per BMC (trustme).

Every BMC gets its own certificate (SAN: its IP and ``localhost``) so that each has its own
SHA-256 fingerprint, as real BMCs do; clients trust the fleet either through the CA file
or by pinning a BMC's fingerprint.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class ServerCertificate:
    context: ssl.SSLContext
    #: SHA-256 of the DER certificate, lower-case hex without colons
    fingerprint: str
    pem: bytes


class FleetCA:
    def __init__(self, ca_file: Path) -> None:
        self._ca = trustme.CA(organization_name="oob mock BMC fleet")
        self.ca_file = ca_file
        self._ca.cert_pem.write_to_path(str(ca_file))

    def issue(self, address: str) -> ServerCertificate:
        leaf = self._ca.issue_cert(address, "localhost", common_name=address)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        leaf.configure_cert(context)
        pem = leaf.cert_chain_pems[0].bytes()
        der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
        return ServerCertificate(context, hashlib.sha256(der).hexdigest(), pem)
