"""A tiny Redfish client for tests of (and against) the mock fleet.

It follows the links each BMC gives (never hard-coded URIs), so the same test runs against
every flavour; it is not oob's driver and does no error translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from .bmc import MockBmc


@dataclass
class Probe:
    http: requests.Session
    bmc: MockBmc
    token: str | None = None
    location: str | None = None
    timeout: float = 10.0
    _root: dict[str, Any] | None = field(default=None, repr=False)

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else self.bmc.url + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token and "X-Auth-Token" not in headers:
            headers["X-Auth-Token"] = self.token
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        return self.http.request(method, self.url(path), headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def root(self) -> dict[str, Any]:
        if self._root is None:
            response = self.get("/redfish/v1/")
            response.raise_for_status()
            self._root = response.json()
        return self._root

    def sessions_uri(self) -> str:
        return str(self.root()["Links"]["Sessions"]["@odata.id"])

    def login(self, username: str | None = None, password: str | None = None) -> requests.Response:
        body = {"UserName": username or self.bmc.username, "Password": password or self.bmc.password}
        response = self.request("POST", self.sessions_uri(), json=body)
        if response.status_code == 201:
            self.token = response.headers["X-Auth-Token"]
            self.location = response.headers["Location"]
        return response

    def logout(self) -> requests.Response:
        assert self.location, "not logged in"
        response = self.request("DELETE", self.location)
        self.token = self.location = None
        return response

    def system_uri(self) -> str:
        collection = self.get(self.root()["Systems"]["@odata.id"])
        collection.raise_for_status()
        return str(collection.json()["Members"][0]["@odata.id"])

    def system(self) -> dict[str, Any]:
        response = self.get(self.system_uri())
        response.raise_for_status()
        return dict(response.json())

    def reset_target(self) -> str:
        return str(self.system()["Actions"]["#ComputerSystem.Reset"]["target"])

    def reset(self, reset_type: str | None, **kwargs: Any) -> requests.Response:
        body = {} if reset_type is None else {"ResetType": reset_type}
        return self.request("POST", self.reset_target(), json=body, **kwargs)
