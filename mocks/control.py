"""The fleet's control API: plain HTTP + JSON on loopback, for tests in other processes.

Routes::

    GET    /bmcs                 every BMC (name, vendor, address, power, nmi_count, ...)
    GET    /bmcs/NAME            one BMC
    POST   /bmcs/NAME/faults     merge a JSON object of faults (unknown names -> 400)
    DELETE /bmcs/NAME/faults     clear every fault
    POST   /bmcs/NAME/power      {"state": "On" | "Off"}
    POST   /bmcs/NAME/host       {"state": "hung" | "running"}: the host hangs, or recovers
                                 (and/or {"hang_kind": "softlockup" | ... | null}: how it hangs,
                                 i.e. the kernel log its next dump saves)
    POST   /bmcs/NAME/hardware-error  {"kind": "machine_check" | "memory_ecc" | "pcie" | "psu"}:
                                 the BMC logs a hardware error now (Redfish logs and IPMI SEL)

A BMC's object counts both protocols (``nmi_count``, ``requests``) and each one apart
(``nmi_count_redfish``, ``nmi_count_ipmi``, ``requests_redfish``, ``requests_ipmi``); it
gives ``ipmi_port`` (null without IPMI) and, under ``ipmi``, the IPMI endpoint's details.
Faults take the Redfish names and the IPMI ones (``ipmi_down``, ``ipmi_drop_after_apply``,
``ipmi_nmi_unsupported``, ``ipmi_nmi_refused``) in the same object, and the host's
(``kdump_not_armed``, ``dump_stall``, ``disk_full``, ``no_reboot``, ``nmi_ignored``).

The host behind each BMC shows as ``host_state`` (``running``, ``hung``, ``panicked``,
``dumping``, ``rebooting``, ``off``), ``host_address``, ``probe`` (``ssh:ADDRESS:PORT``),
``dump_target``, ``dump_layout`` and ``dump_dir`` (its latest dump; null before one), with
details under ``host``.  A host state the host cannot take from where it is answers 409.

Unknown BMC names answer 404.  Errors are ``{"error": "one line"}``.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .bmc_logs import event_log_for
from .faults import FaultError
from .host import HostStateError
from .kernellog import hang_kind
from .loopback import url_host

if TYPE_CHECKING:
    from .bmc import MockBmc
    from .fleet import Fleet

log = logging.getLogger(__name__)


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlServer:
    def __init__(self, fleet: Fleet, bind: str, port: int = 0) -> None:
        handler = type("ControlHandler", (_ControlHandler,), {"fleet": fleet})
        self._server = ThreadingHTTPServer((bind, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mock-fleet-control",
            daemon=True,
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{url_host(str(host))}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


class _ControlHandler(BaseHTTPRequestHandler):
    # one request per connection: no idle keep-alive thread outlives the fleet
    protocol_version = "HTTP/1.0"
    fleet: Fleet

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def do_DELETE(self) -> None:
        self._answer(self._delete)

    def _answer(self, route: Any) -> None:
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        try:
            status, document = route(parts)
        except _HttpError as error:
            status, document = error.status, {"error": str(error)}
        except FaultError as error:
            status, document = 400, {"error": str(error)}
        except HostStateError as error:
            status, document = 409, {"error": str(error)}
        body = json.dumps(document, indent=2).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _get(self, parts: list[str]) -> tuple[int, object]:
        if parts == ["bmcs"]:
            return 200, [bmc.to_dict() for bmc in self.fleet.bmcs]
        if len(parts) == 2 and parts[0] == "bmcs":
            return 200, self._bmc(parts[1]).to_dict()
        if parts == []:
            return 200, self.fleet.describe()
        raise _HttpError(404, f"no route GET {self.path}")

    def _post(self, parts: list[str]) -> tuple[int, object]:
        body = self._body()
        if len(parts) == 3 and parts[0] == "bmcs" and parts[2] == "faults":
            bmc = self._bmc(parts[1])
            if not isinstance(body, dict):
                raise _HttpError(400, "faults must be a JSON object")
            bmc.set_faults(body)
            return 200, {"name": bmc.name, "faults": bmc.fault_dict()}
        if len(parts) == 3 and parts[0] == "bmcs" and parts[2] == "power":
            bmc = self._bmc(parts[1])
            state = body.get("state") if isinstance(body, dict) else None
            if state not in ("On", "Off"):
                raise _HttpError(400, 'power takes {"state": "On"} or {"state": "Off"}')
            bmc.set_power(state)
            return 200, bmc.to_dict()
        if len(parts) == 3 and parts[0] == "bmcs" and parts[2] == "host":
            bmc = self._bmc(parts[1])
            settings = body if isinstance(body, dict) else {}
            state = settings.get("state")
            kind = settings.get("hang_kind")
            try:
                checked = hang_kind(kind).value if isinstance(kind, str) else None
            except ValueError as error:
                raise _HttpError(400, str(error)) from None
            if kind is not None and checked is None:
                raise _HttpError(400, "hang_kind is a name or null")
            if not (state is None and "hang_kind" in settings):
                if state not in ("hung", "running"):
                    raise _HttpError(400, 'host takes {"state": "hung"} or {"state": "running"}')
                bmc.host.set_state(state)
            if "hang_kind" in settings:  # applies from the host's next crash
                bmc.host.configure(hang_kind=checked)
            return 200, bmc.to_dict()
        if len(parts) == 3 and parts[0] == "bmcs" and parts[2] == "hardware-error":
            bmc = self._bmc(parts[1])
            kind = body.get("kind") if isinstance(body, dict) else None
            try:
                record = event_log_for(bmc.host).inject(str(kind))
            except ValueError as error:
                raise _HttpError(400, str(error)) from None
            return 200, {"name": bmc.name, "logged": str(kind), "id": record.id}
        raise _HttpError(404, f"no route POST {self.path}")

    def _delete(self, parts: list[str]) -> tuple[int, object]:
        if len(parts) == 3 and parts[0] == "bmcs" and parts[2] == "faults":
            bmc = self._bmc(parts[1])
            bmc.clear_faults()
            return 200, {"name": bmc.name, "faults": bmc.fault_dict()}
        raise _HttpError(404, f"no route DELETE {self.path}")

    def _bmc(self, name: str) -> MockBmc:
        try:
            return self.fleet.bmc(name)
        except KeyError:
            raise _HttpError(404, f"no BMC named {name!r}") from None

    def _body(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise _HttpError(400, "the body is not valid JSON") from None

    def log_message(self, format: str, *args: object) -> None:
        log.debug("control: %s", format % args)
