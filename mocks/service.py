"""The Redfish application of one mock BMC: a request in, a response out, no sockets.

Routes are kept apart from state (the sushy-tools habit): the service reads the static
:class:`~mocks.resources.ServiceModel` of its flavour and the live state it is given (the
simulated host, faults, sessions, counters), and returns a :class:`Response` that the
HTTPS layer (:mod:`mocks.https`) writes — or, for faults that act on the connection, a
directive in :attr:`Response.after`.
"""

from __future__ import annotations

import base64
import binascii
import collections
import copy
import datetime
import json
import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .bmc_logs import RedfishLogs, event_log_for
from .faults import AfterApply, Faults, FaultState
from .host import SimulatedHost
from .messages import STATUS_MESSAGES, MessageRef, error_body, success_body
from .resources import BMC_AUTHORITY, INLINE_VALUES, MY_SESSION, RESET_ACTION, ROOT, Json, ServiceModel
from .sessions import Session, SessionLimitReached, SessionStore

log = logging.getLogger(__name__)

RESET_ACTION_NAME = "ComputerSystem.Reset"


@dataclass(frozen=True)
class Request:
    method: str
    #: path with query, as sent
    target: str
    #: header names in lower case
    headers: Mapping[str, str]
    body: bytes = b""
    client: str = "127.0.0.1"
    #: ``host:port`` the client addressed (for absolute Location headers)
    authority: str = "127.0.0.1"

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: "hold": send nothing and keep the connection; "reset": send nothing, reset the connection
    after: AfterApply | None = None
    #: seconds to wait before sending (the ``latency_ms`` fault)
    delay: float = 0.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def match(self, username: object, password: object) -> bool:
        return (
            isinstance(username, str)
            and isinstance(password, str)
            and secrets.compare_digest(username.encode(), self.username.encode())
            and secrets.compare_digest(password.encode(), self.password.encode())
        )


class Stats:
    """Counters the control API shows: requests served and Resets applied by type."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.resets: collections.Counter[str] = collections.Counter()

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def count_reset(self, reset_type: str) -> None:
        with self._lock:
            self.resets[reset_type] += 1

    def resets_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.resets)


@dataclass(frozen=True)
class _Principal:
    #: None for HTTP Basic authentication
    session: Session | None


class RedfishService:
    def __init__(
        self,
        model: ServiceModel,
        host: SimulatedHost,
        faults: FaultState,
        sessions: SessionStore,
        credentials: Credentials,
        stats: Stats,
    ) -> None:
        self.model = model
        self.flavour = model.flavour
        self.host = host
        self.faults = faults
        self.sessions = sessions
        self.credentials = credentials
        self.stats = stats
        self._reset_key = model.key(model.reset.target)
        self._action_info_key = model.key(model.reset.action_info) if model.reset.action_info else None
        #: the BMC's event log as this flavour's LogServices show it (shared with IPMI's SEL)
        self.logs = RedfishLogs(model.flavour, model.resources, model.key, event_log_for(host))

    # ----------------------------------------------------------------- entry point

    def handle(self, request: Request) -> Response:
        response = self._handle(request)
        latency_ms = self.faults.current.latency_ms
        if latency_ms and response.after is None:
            response.delay = latency_ms / 1000
        return response

    def _handle(self, request: Request) -> Response:
        self.stats.count_request()
        if self.faults.take_connection_reset():
            return Response(0, after="reset")
        status = self.faults.take_http_status()
        if status is not None:
            key, args = STATUS_MESSAGES.get(status, ("GeneralError", ()))
            args = tuple(request.path if a == "%URI%" else a for a in args)
            return self._error(status, MessageRef(key, args))
        try:
            return self._route(request)
        except Exception:  # a bug in the mock: answer like a BMC would, and say so in the log
            log.exception("%s: internal error on %s %s", self.flavour.name, request.method, request.target)
            return self._error(500, MessageRef("InternalError"))

    # ----------------------------------------------------------------- routing

    def _route(self, request: Request) -> Response:
        path = request.path
        method = request.method.upper()
        if self.flavour.slash == "redirect" and path.startswith(ROOT) and not path.endswith("/"):
            # iLO 5 < 1.40 serves only the slash form
            query = request.target[len(path) :]
            return Response(308, headers=[("Location", path + "/" + query), *self._common_headers()])
        key = self.model.key(path)
        slash = path.endswith("/")
        faults = self.faults.current
        if key == "/redfish":
            return self._get_only(method, {"v1": "/redfish/v1/"}, "GET")
        if key == self.model.key(ROOT):
            # the service root is readable without authentication, as on every BMC
            return self._get_only(method, self._render(key, request, None, faults), "GET")
        session_resource = self._is_session_resource(key)
        if session_resource and faults.no_session_service:
            return self._not_found(path)
        if self.model.is_sessions(key) and method == "POST":
            return self._login(request, slash, faults)
        principal = self._authenticate(request, faults)
        if principal is None:
            return self._error(401, MessageRef("NoValidSession"))
        if key == self._reset_key:
            if method != "POST":
                return self._error(405, MessageRef("OperationNotAllowed"), allow="POST")
            return self._reset(request)
        if self.model.is_sessions(key):
            return self._get_only(
                method, self._render(self.model.sessions, request, principal, faults), "GET, POST"
            )
        if key.startswith(self.model.session_key_prefix()):
            return self._session_member(method, key, path, slash)
        if self.logs.handles(key):
            return self._log_entries(method, key, request)
        if key in self.model.resources:
            return self._get_only(method, self._render(key, request, principal, faults), "GET")
        return self._not_found(path)

    def _log_entries(self, method: str, key: str, request: Request) -> Response:
        """An Entries collection (one page of it) or one entry, rendered from the live log."""
        query = request.target[len(request.path) :].lstrip("?")
        document = self.logs.render(key, query)
        if document is None:
            return self._not_found(request.path)
        slash = request.path.endswith("/")
        self._uri_forms(document, slash)
        next_link = document.get("Members@odata.nextLink")
        if isinstance(next_link, str):
            path, _, next_query = next_link.partition("?")
            document["Members@odata.nextLink"] = f"{self._uri_form(path, slash)}?{next_query}"
        return self._get_only(method, document, "GET")

    def _is_session_resource(self, key: str) -> bool:
        return (
            key == self.model.session_service
            or self.model.is_sessions(key)
            or key.startswith(self.model.session_key_prefix())
        )

    def _get_only(self, method: str, document: Json, allow: str) -> Response:
        if method not in ("GET", "HEAD"):
            return self._error(405, MessageRef("OperationNotAllowed"), allow=allow)
        response = self._json(200, document)
        response.headers.append(("Allow", allow))
        if method == "HEAD":
            response.body = b""
        return response

    # ----------------------------------------------------------------- authentication

    def _authenticate(self, request: Request, faults: Faults) -> _Principal | None:
        token = request.headers.get("x-auth-token")
        if token and not faults.no_session_service:
            session = self.sessions.by_token(token)
            return _Principal(session) if session else None
        authorization = request.headers.get("authorization", "")
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or faults.auth_failure:
            return None
        try:
            username, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return _Principal(None) if self.credentials.match(username, password) else None

    def _login(self, request: Request, slash: bool, faults: Faults) -> Response:
        body = _json_body(request.body)
        if not isinstance(body, dict):
            return self._error(400, MessageRef("MalformedJSON"))
        username, password = body.get("UserName"), body.get("Password")
        if faults.auth_failure or not self.credentials.match(username, password):
            if self.flavour.message_style == "ilo":
                return self._error(401, MessageRef("NoValidSession"))
            return self._error(401, MessageRef("ResourceAtUriUnauthorized", (request.path, "Unauthorized")))
        try:
            session = self.sessions.create(str(username), limit=faults.session_limit)
        except SessionLimitReached:
            return self._error(self.flavour.session_limit_status, MessageRef("SessionLimitExceeded"))
        uri = self._uri_form(self._session_uri(session.id), slash)
        location = f"https://{request.authority}{uri}" if self.flavour.absolute_location else uri
        response = self._json(201, self._render_session(session, slash, request.client))
        response.headers += [("X-Auth-Token", session.token), ("Location", location)]
        return response

    def _session_member(self, method: str, key: str, path: str, slash: bool) -> Response:
        session_id = key[len(self.model.session_key_prefix()) :]
        session = self._find_session(session_id)
        if session is None or "/" in session_id:
            return self._not_found(path)
        if method == "DELETE":
            self.sessions.delete(session.id)
            if self.flavour.logout_body:
                return self._json(
                    self.flavour.logout_status,
                    success_body(self.flavour.message_style, self.flavour.registry),
                )
            return Response(self.flavour.logout_status, headers=self._common_headers())
        return self._get_only(method, self._render_session(session, slash, None), "GET, DELETE")

    def _find_session(self, session_id: str) -> Session | None:
        if not self.flavour.case_insensitive:
            return self.sessions.get(session_id)
        return next((s for s in self.sessions.all() if s.id.lower() == session_id.lower()), None)

    # ----------------------------------------------------------------- the Reset action

    def advertised_reset_types(self) -> tuple[str, ...]:
        nmi_hidden = self.faults.current.nmi_not_offered
        return tuple(v for v in self.model.reset.advertised if not (nmi_hidden and v == "Nmi"))

    def accepted_reset_types(self) -> set[str]:
        """What a Reset POST may carry: the advertised values the host can apply (and the
        values a flavour's misspelt list stands for)."""
        offered = set(self.advertised_reset_types()) | set(self.flavour.also_accepts)
        return {v for v in offered if self.host.can_apply(v)}

    def _reset(self, request: Request) -> Response:
        body = _json_body(request.body)
        if not isinstance(body, dict):
            return self._error(400, MessageRef("MalformedJSON"))
        reset_type = body.get("ResetType")
        if reset_type is None:
            return self._error(
                400, MessageRef("ActionParameterMissing", (RESET_ACTION_NAME, "ResetType"), ("#/ResetType",))
            )
        if not isinstance(reset_type, str) or reset_type not in self.accepted_reset_types():
            if self.flavour.value_not_in_list == "PropertyValueNotInList":
                args: tuple[str, ...] = (str(reset_type), "ResetType")
            else:
                args = (str(reset_type), "ResetType", RESET_ACTION_NAME)
            return self._error(400, MessageRef(self.flavour.value_not_in_list, args, ("#/ResetType",)))
        self.host.apply_reset(reset_type)
        self.stats.count_reset(reset_type)
        after = self.faults.take_after_apply()
        if after is not None:
            return Response(0, after=after)
        if self.flavour.reset_body:
            return self._json(
                self.flavour.reset_status, success_body(self.flavour.message_style, self.flavour.registry)
            )
        return Response(self.flavour.reset_status, headers=self._common_headers())

    # ----------------------------------------------------------------- rendering

    def _render(self, key: str, request: Request, principal: _Principal | None, faults: Faults) -> Json:
        slash = request.path.endswith("/")
        document = copy.deepcopy(self.model.resources[key])
        _fill(document, BMC_AUTHORITY, request.authority)
        if key == self.model.key(ROOT) and faults.no_session_service:
            document.pop("SessionService", None)
            document.get("Links", {}).pop("Sessions", None)
        if key == self.model.system:
            document["PowerState"] = self.host.power
            action = document.get("Actions", {}).get(RESET_ACTION, {})
            if INLINE_VALUES in action:
                action[INLINE_VALUES] = self._offered(action[INLINE_VALUES], faults)
        if key == self._action_info_key:
            for parameter in document.get("Parameters", []):
                if parameter.get("Name") == "ResetType" and "AllowableValues" in parameter:
                    parameter["AllowableValues"] = self._offered(parameter["AllowableValues"], faults)
        if key == self.model.sessions:
            self._fill_sessions(document, principal)
        self._uri_forms(document, slash)
        return document

    @staticmethod
    def _offered(values: list[str], faults: Faults) -> list[str]:
        return [v for v in values if not (faults.nmi_not_offered and v == "Nmi")]

    def _fill_sessions(self, document: Json, principal: _Principal | None) -> None:
        members = [{"@odata.id": self._session_uri(s.id)} for s in self.sessions.all()]
        document["Members"] = members
        document["Members@odata.count"] = len(members)
        mine = principal.session if principal else None
        for vendor in document.get("Oem", {}).values():
            links = vendor.get("Links", {}) if isinstance(vendor, dict) else {}
            if links.get("MySession") == {"@odata.id": MY_SESSION}:
                if mine is None:
                    del links["MySession"]
                else:
                    links["MySession"] = {"@odata.id": self._session_uri(mine.id)}

    def _session_uri(self, session_id: str) -> str:
        return f"{self.model.sessions_uri.rstrip('/')}/{session_id}"

    def _render_session(self, session: Session, slash: bool, client: str | None) -> Json:
        document = copy.deepcopy(self.model.session_template)
        old_id = document.get("Id")
        document["@odata.id"] = self._session_uri(session.id)
        document["Id"] = session.id
        document["UserName"] = session.username
        if old_id and document.get("Name") == old_id:
            document["Name"] = session.id
        created = datetime.datetime.fromtimestamp(session.created, datetime.UTC)
        if "CreatedTime" in document:
            document["CreatedTime"] = created.isoformat(timespec="seconds")
        if "ExpirationTime" in document:
            document["ExpirationTime"] = (created + datetime.timedelta(hours=1)).isoformat(timespec="seconds")
        if client is not None and "ClientOriginIPAddress" in document:
            document["ClientOriginIPAddress"] = client
        hpe = document.get("Oem", {}).get("Hpe")
        if isinstance(hpe, dict):
            stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
            hpe.update({"LoginTime": stamp, "AccessTime": stamp, "UserExpires": stamp})
            if client is not None:
                hpe["UserIP"] = client
        self._uri_forms(document, slash)
        return document

    def _uri_form(self, uri: str, slash: bool) -> str:
        """A link in the form this flavour writes it for a request with (or without) a slash."""
        habit = self.flavour.slash
        if habit == "tolerant" or "#" in uri or not uri.startswith(ROOT):
            return uri
        if habit == "redirect" or slash:
            return uri if uri.endswith("/") else uri + "/"
        return uri.rstrip("/") or "/"

    def _uri_forms(self, node: Any, slash: bool) -> None:
        """Rewrite, in place, every link in ``node`` to the form of :meth:`_uri_form`."""
        if self.flavour.slash == "tolerant":
            return
        if isinstance(node, dict):
            for name, value in node.items():
                if name in ("@odata.id", "target", "@Redfish.ActionInfo") and isinstance(value, str):
                    node[name] = self._uri_form(value, slash)
                else:
                    self._uri_forms(value, slash)
        elif isinstance(node, list):
            for item in node:
                self._uri_forms(item, slash)

    # ----------------------------------------------------------------- responses

    def _common_headers(self) -> list[tuple[str, str]]:
        return [("OData-Version", "4.0"), ("Server", self.flavour.server_header)]

    def _json(self, status: int, document: Mapping[str, Any]) -> Response:
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json; charset=utf-8"), *self._common_headers()]
        return Response(status, body, headers)

    def _error(self, status: int, ref: MessageRef, allow: str | None = None) -> Response:
        response = self._json(status, error_body(self.flavour.message_style, self.flavour.registry, ref))
        if allow:
            response.headers.append(("Allow", allow))
        return response

    def _not_found(self, path: str) -> Response:
        return self._error(404, MessageRef("ResourceMissingAtURI", (path,)))


def _fill(node: Any, placeholder: str, value: str) -> None:
    """Replace ``placeholder`` inside every string of ``node``, in place."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for name, item in list(items):
        if isinstance(item, str) and placeholder in item:
            node[name] = item.replace(placeholder, value)
        elif isinstance(item, (dict, list)):
            _fill(item, placeholder, value)


def _json_body(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None
