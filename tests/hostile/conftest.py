"""Fixtures for attack tests: hostile Redfish BMCs and bystanders on loopback, with their own CA.

* ``hostile_ca``: a trustme CA, leaf certificates for 127.0.0.1/127.0.0.2/localhost
  ("main", and "other": same names, another key, for a certificate swapped mid-session),
  the server contexts and the leaves' SHA-256 fingerprints.
* ``hostile_bmc(behaviour, address=..., tls=...)``: start a :class:`HostileServer`.
* ``bystander``: a TLS server on 127.0.0.2 with a certificate oob *would* trust (same
  CA, right names) that answers everything with success: whatever reaches it went
  somewhere oob must never send anything.  ``plain_bystander``: the same over http.
* ``hostile_host(server, ...)``: an inventory ``Host`` for a server; ``hostile_driver``
  the Redfish driver for it (library level).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oob.model import BmcConfig, Host
from tests.hostile.server import Answer, Behaviour, HostileServer

PASSWORD = "hostile-Secret-Pa55word"
USERNAME = "operator"


@dataclass
class HostileCA:
    ca_file: Path
    contexts: dict[str, ssl.SSLContext]
    fingerprints: dict[str, str]


@pytest.fixture(scope="session")
def hostile_ca(tmp_path_factory: pytest.TempPathFactory) -> HostileCA:
    import trustme

    ca = trustme.CA()
    directory = tmp_path_factory.mktemp("hostile-ca")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    contexts: dict[str, ssl.SSLContext] = {}
    fingerprints: dict[str, str] = {}
    for name in ("main", "other"):
        leaf = ca.issue_cert("127.0.0.1", "127.0.0.2", "localhost")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        contexts[name] = context
        der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
        fingerprints[name] = hashlib.sha256(der).hexdigest()
    return HostileCA(ca_file, contexts, fingerprints)


@pytest.fixture
def hostile_bmc(hostile_ca: HostileCA) -> Iterator[Callable[..., HostileServer]]:
    started: list[HostileServer] = []

    def start(
        behaviour: Behaviour | None = None, *, address: str = "127.0.0.1", tls: bool = True
    ) -> HostileServer:
        server = HostileServer(
            behaviour or Behaviour(), address=address, contexts=hostile_ca.contexts, tls=tls
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _welcoming() -> Behaviour:
    return Behaviour(
        answer_all=Answer(
            200, body={"@odata.id": "/redfish/v1/", "Links": {}}, headers={"X-Auth-Token": "bystander"}
        )
    )


@pytest.fixture
def bystander(hostile_bmc: Callable[..., HostileServer]) -> HostileServer:
    return hostile_bmc(_welcoming(), address="127.0.0.2")


@pytest.fixture
def plain_bystander(hostile_bmc: Callable[..., HostileServer]) -> HostileServer:
    return hostile_bmc(_welcoming(), address="127.0.0.2", tls=False)


@pytest.fixture
def hostile_host(hostile_ca: HostileCA) -> Callable[..., Host]:
    def make(
        server: HostileServer, *, timeout: float = 2.0, fingerprint: str | None = None, name: str = "victim"
    ) -> Host:
        bmc = BmcConfig(
            kind="redfish",
            address=server.url,
            username=USERNAME,
            ca_file=None if fingerprint else str(hostile_ca.ca_file),
            fingerprint=fingerprint,
            timeout=timeout,
            methods=("redfish",),
        )
        return Host(name=name, bmc=bmc)

    return make


@pytest.fixture
def hostile_driver(hostile_host: Callable[..., Host]) -> Callable[..., Any]:
    from oob.drivers.redfish.driver import RedfishDriver
    from oob.drivers.tls import tls_policy_for

    def make(server: HostileServer, *, attempts: int = 1, **host_options: Any) -> RedfishDriver:
        host = hostile_host(server, **host_options)
        return RedfishDriver(host, PASSWORD, tls_policy_for(host.bmc), connect_attempts=attempts)

    return make
