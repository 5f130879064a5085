"""The static resource tree of a flavour, built from its captures.

Build steps, each a small function below:

1. load the capture folders (the first one wins, later ones fill gaps);
2. take the captured Session out as the template of new sessions;
3. synthesize what a trimmed capture lacks, in the vendor's style (Systems and Managers
   collections, SessionService, Sessions collection, the Reset ActionInfo);
4. prune every link to a resource the mock does not serve and every action other than
   ``ComputerSystem.Reset`` (the mock advertises exactly what it implements);
5. keep only what is reachable from the service root.

The result is cached per flavour and never mutated; :mod:`mocks.service` renders copies
with the live state (power, sessions, faults) filled in.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bmc_logs import add_log_resources
from .flavours import Flavour, get_flavour

CAPTURES_DIR = Path(__file__).resolve().parent / "captures"
ROOT = "/redfish/v1"
RESET_ACTION = "#ComputerSystem.Reset"
INLINE_VALUES = "ResetType@Redfish.AllowableValues"
#: stands for the caller's own session in the iLO Sessions collection; filled at render time
MY_SESSION = "{MySession}"
#: stands for the BMC's own ``host:port``; captured web URLs of the real BMC are rewritten to it
BMC_AUTHORITY = "{BmcAuthority}"
_CAPTURED_URL = re.compile(r"^(https?)://\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(/.*)?$")
#: properties whose string value is a URI the validator (and clients) would follow
_LINK_KEYS = ("@Redfish.ActionInfo", "Uri", "DataSourceUri", "TargetComponentURI", "Members@odata.nextLink")

Json = dict[str, Any]
#: maps a URI to its lookup key (see :func:`canonical`)
KeyFn = Callable[[str], str]


class CaptureError(RuntimeError):
    """A capture lacks something every flavour needs (service root, a ComputerSystem)."""


def canonical(path: str, case_insensitive: bool = False) -> str:
    """The lookup key of a URI: no query, no fragment, no trailing slash."""
    path = path.split("#", 1)[0].split("?", 1)[0]
    path = path.rstrip("/") or "/"
    return path.lower() if case_insensitive else path


@dataclass(frozen=True)
class ResetInfo:
    #: the action target as the capture writes it
    target: str
    #: inline ``ResetType@Redfish.AllowableValues``, None when the capture has none
    inline: tuple[str, ...] | None
    #: ``@Redfish.ActionInfo`` URI, None when the capture has none
    action_info: str | None
    action_info_values: tuple[str, ...] | None

    @property
    def advertised(self) -> tuple[str, ...]:
        """Every value offered in either place, inline order first."""
        values: list[str] = []
        for value in (self.inline or ()) + (self.action_info_values or ()):
            if value not in values:
                values.append(value)
        return tuple(values)


@dataclass(frozen=True)
class ServiceModel:
    flavour: Flavour
    #: canonical key -> resource template (read-only: render copies)
    resources: Mapping[str, Json]
    system: str
    reset: ResetInfo
    session_service: str
    sessions: str
    #: the Sessions collection's ``@odata.id`` as the vendor writes it
    sessions_uri: str
    #: other URIs that serve the Sessions collection (iDRAC 3.x ``/redfish/v1/Sessions``)
    session_aliases: frozenset[str]
    session_template: Json

    def key(self, path: str) -> str:
        return canonical(path, self.flavour.case_insensitive)

    def is_sessions(self, key: str) -> bool:
        return key == self.sessions or key in self.session_aliases

    def session_key_prefix(self) -> str:
        return self.sessions + "/"


@functools.cache
def model_for(flavour_name: str) -> ServiceModel:
    return build_model(get_flavour(flavour_name))


def build_model(flavour: Flavour) -> ServiceModel:
    def key(path: str) -> str:
        return canonical(path, flavour.case_insensitive)

    resources = _load(flavour.captures, key)
    _serve_expanded(resources, key)
    session_template = _take_session_template(resources)
    root = resources.get(key(ROOT))
    if root is None:
        raise CaptureError(f"{flavour.name}: no service root in {flavour.captures}")
    context = "@odata.context" in root

    system_key = _ensure_collection(
        resources,
        root,
        "Systems",
        "#ComputerSystem.",
        "ComputerSystemCollection",
        "Computer System Collection",
        key,
        context,
    )
    if system_key is None:
        raise CaptureError(f"{flavour.name}: no ComputerSystem in {flavour.captures}")
    _ensure_collection(
        resources, root, "Managers", "#Manager.", "ManagerCollection", "Manager Collection", key, context
    )
    service_key, sessions_key, aliases = _ensure_session_service(resources, root, key, context)
    reset = _reset_info(flavour, resources, resources[system_key], key, context)
    add_log_resources(flavour, resources, key, system_key, context)
    if session_template is None:
        session_template = _synthesized_session(context)

    collection = resources[sessions_key]
    collection["Members"] = []
    collection["Members@odata.count"] = 0
    _mark_my_session(collection)
    for resource in resources.values():
        _own_urls(resource)

    served = set(resources) | aliases
    reset_key = key(reset.target)
    for resource in resources.values():
        _prune(resource, lambda uri: key(uri) in served, lambda uri: key(uri) == reset_key, top=True)
    reachable = _reachable(resources, key(ROOT), key, aliases)
    resources = {k: v for k, v in resources.items() if k in reachable}

    return ServiceModel(
        flavour=flavour,
        resources=resources,
        system=system_key,
        reset=reset,
        session_service=service_key,
        sessions=sessions_key,
        sessions_uri=str(collection["@odata.id"]),
        session_aliases=frozenset(aliases),
        session_template=session_template,
    )


def _load(folders: tuple[str, ...], key: KeyFn) -> dict[str, Json]:
    resources: dict[str, Json] = {}
    for folder in folders:
        for resource in _read_capture(folder):
            resource = copy.deepcopy(resource)
            # DSP0266 reserves this annotation for mockups: a live service never sends it
            resource.pop("@Redfish.Copyright", None)
            resources.setdefault(key(resource["@odata.id"]), resource)
    return resources


def _serve_expanded(resources: dict[str, Json], key: KeyFn) -> None:
    """An expanded resource inside another (iDRAC's Oem.Dell.DellSystem) is served at its own URI."""
    found: list[Json] = []

    def walk(node: Any, nested: bool) -> None:
        if isinstance(node, dict):
            odata_id = node.get("@odata.id")
            if nested and isinstance(odata_id, str) and "#" not in odata_id and "@odata.type" in node:
                found.append(node)
            for value in node.values():
                walk(value, True)
        elif isinstance(node, list):
            for item in node:
                walk(item, True)

    for resource in list(resources.values()):
        walk(resource, False)
    for node in found:
        resources.setdefault(key(node["@odata.id"]), copy.deepcopy(node))


@functools.cache
def _read_capture(folder: str) -> tuple[Json, ...]:
    path = CAPTURES_DIR / folder
    if not path.is_dir():
        raise CaptureError(f"capture folder {path} is missing")
    return tuple(json.loads(file.read_text(encoding="utf-8")) for file in sorted(path.glob("*.json")))


def _type(resource: Mapping[str, Any]) -> str:
    return str(resource.get("@odata.type", ""))


def _take_session_template(resources: dict[str, Json]) -> Json | None:
    """Captured Session resources are examples, not live sessions: keep one as the template."""
    template = None
    for resource_key in [k for k, v in resources.items() if _type(v).startswith("#Session.")]:
        resource = resources.pop(resource_key)
        template = template or resource
    return template


def _link(resource: Mapping[str, Any], *path: str) -> str | None:
    node: Any = resource
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, Mapping) and isinstance(node.get("@odata.id"), str):
        return str(node["@odata.id"])
    return None


def _ensure_collection(
    resources: dict[str, Json],
    root: Json,
    name: str,
    member_type: str,
    collection_type: str,
    title: str,
    key: KeyFn,
    context: bool,
) -> str | None:
    """Make sure the root's collection ``name`` exists; returns the key of its first member."""
    uri = _link(root, name) or f"{ROOT}/{name}"
    collection = resources.get(key(uri))
    if collection is None:
        members = [v["@odata.id"] for k, v in sorted(resources.items()) if _type(v).startswith(member_type)]
        if not members:
            return None
        collection = _synthesized_collection(uri, collection_type, title, members, context)
        resources[key(uri)] = collection
        root.setdefault(name, {"@odata.id": uri})
    for member in collection.get("Members", []):
        member_key = key(member.get("@odata.id", ""))
        if member_key in resources:
            return member_key
    return None


def _synthesized_collection(
    uri: str, collection_type: str, title: str, members: list[str], context: bool
) -> Json:
    resource: Json = {
        "@odata.id": uri,
        "@odata.type": f"#{collection_type}.{collection_type}",
        "Name": title,
        "Members": [{"@odata.id": m} for m in members],
        "Members@odata.count": len(members),
    }
    if context:
        resource["@odata.context"] = f"/redfish/v1/$metadata#{collection_type}.{collection_type}"
    return resource


def _ensure_session_service(
    resources: dict[str, Json], root: Json, key: KeyFn, context: bool
) -> tuple[str, str, set[str]]:
    """SessionService and its Sessions collection; returns their keys and the aliases."""
    service_uri = _link(root, "SessionService") or f"{ROOT}/SessionService"
    root.setdefault("SessionService", {"@odata.id": service_uri})
    service = resources.get(key(service_uri))
    if service is None:
        service = {
            "@odata.id": service_uri,
            "@odata.type": "#SessionService.v1_1_8.SessionService",
            "Id": "SessionService",
            "Name": "Session Service",
            "Description": "Session Service",
            "ServiceEnabled": True,
            "SessionTimeout": 1800,
            "Status": {"State": "Enabled", "Health": "OK"},
            "Sessions": {"@odata.id": f"{service_uri.rstrip('/')}/Sessions"},
        }
        if context:
            service["@odata.context"] = "/redfish/v1/$metadata#SessionService.SessionService"
        resources[key(service_uri)] = service
    sessions_uri = _link(service, "Sessions") or f"{ROOT}/SessionService/Sessions"
    if key(sessions_uri) not in resources:
        resources[key(sessions_uri)] = {
            "@odata.id": sessions_uri,
            "@odata.type": "#SessionCollection.SessionCollection",
            "Name": "Session Collection",
            "Members": [],
            "Members@odata.count": 0,
        }
        if context:
            resources[key(sessions_uri)]["@odata.context"] = (
                "/redfish/v1/$metadata#SessionCollection.SessionCollection"
            )
    root_sessions = _link(root, "Links", "Sessions")
    if root_sessions is None:
        root.setdefault("Links", {})["Sessions"] = {"@odata.id": sessions_uri}
        root_sessions = sessions_uri
    aliases = {key(root_sessions)} - {key(sessions_uri)}
    return key(service_uri), key(sessions_uri), aliases


def _reset_info(
    flavour: Flavour, resources: dict[str, Json], system: Json, key: KeyFn, context: bool
) -> ResetInfo:
    action = system.get("Actions", {}).get(RESET_ACTION)
    if not isinstance(action, dict) or not isinstance(action.get("target"), str):
        raise CaptureError(f"{flavour.name}: the ComputerSystem has no {RESET_ACTION} target")
    inline = tuple(action[INLINE_VALUES]) if isinstance(action.get(INLINE_VALUES), list) else None
    info_uri = action.get("@Redfish.ActionInfo")
    info_values: tuple[str, ...] | None = None
    if isinstance(info_uri, str):
        info = resources.get(key(info_uri))
        if info is None:
            info = _synthesized_action_info(info_uri, inline or (), context)
            resources[key(info_uri)] = info
        parameter = _reset_parameter(info)
        if flavour.action_info_mirrors_inline and inline is not None:
            parameter["AllowableValues"] = list(inline)
        info_values = tuple(parameter.get("AllowableValues", ()))
    return ResetInfo(
        target=action["target"],
        inline=inline,
        action_info=info_uri if isinstance(info_uri, str) else None,
        action_info_values=info_values,
    )


def _reset_parameter(info: Json) -> Json:
    for parameter in info.get("Parameters", []):
        if parameter.get("Name") == "ResetType":
            return parameter  # type: ignore[no-any-return]
    parameter = {"Name": "ResetType", "Required": True, "DataType": "String", "AllowableValues": []}
    info.setdefault("Parameters", []).append(parameter)
    return parameter


def _synthesized_action_info(uri: str, values: tuple[str, ...], context: bool) -> Json:
    info: Json = {
        "@odata.id": uri,
        "@odata.type": "#ActionInfo.v1_1_2.ActionInfo",
        "Id": uri.rstrip("/").rsplit("/", 1)[-1],
        "Name": "Reset Action Info",
        "Parameters": [
            {"Name": "ResetType", "Required": True, "DataType": "String", "AllowableValues": list(values)}
        ],
    }
    if context:
        info["@odata.context"] = "/redfish/v1/$metadata#ActionInfo.ActionInfo"
    return info


def _synthesized_session(context: bool) -> Json:
    session: Json = {
        "@odata.id": "",
        "@odata.type": "#Session.v1_0_0.Session",
        "Id": "",
        "Name": "User Session",
        "Description": "Manager User Session",
        "UserName": "",
    }
    if context:
        session["@odata.context"] = "/redfish/v1/$metadata#Session.Session"
    return session


def _mark_my_session(collection: Json) -> None:
    """iLO links the caller's own session from the collection's Oem section."""
    for vendor in collection.get("Oem", {}).values():
        links = vendor.get("Links", {}) if isinstance(vendor, dict) else {}
        if isinstance(links.get("MySession"), dict):
            links["MySession"] = {"@odata.id": MY_SESSION}


def _own_urls(node: Any) -> None:
    """A captured URL of the real BMC (iDRAC's ``URLString``) becomes the mock's own."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for name, value in list(items):
        if isinstance(value, str) and (match := _CAPTURED_URL.match(value)):
            node[name] = f"https://{BMC_AUTHORITY}{match[2] or ''}"
        elif isinstance(value, (dict, list)):
            _own_urls(value)


def _prune(node: Any, served: Any, is_reset: Any, top: bool = False) -> bool:
    """Remove links to unserved URIs and unimplemented actions; True: drop ``node`` itself."""
    if isinstance(node, list):
        node[:] = [item for item in node if not _prune(item, served, is_reset)]
        return False
    if not isinstance(node, dict):
        return False
    if isinstance(node.get("target"), str) and not is_reset(node["target"]):
        return True  # an action the mock does not implement
    odata_id = node.get("@odata.id")
    if not top and isinstance(odata_id, str) and odata_id.startswith("/") and not served(odata_id):
        return True
    for name in _LINK_KEYS:
        value = node.get(name)
        if isinstance(value, str) and value.startswith("/") and not served(value):
            del node[name]
    for name in list(node):
        child = node[name]
        if not isinstance(child, (dict, list)):
            continue
        if _prune(child, served, is_reset):
            if name in ("CapabilitiesObject", "SettingsObject"):
                return True  # an annotation without its object is invalid: drop it whole
            del node[name]
            continue
        if isinstance(child, list) and f"{name}@odata.count" in node:
            node[f"{name}@odata.count"] = len(child)
        if name == "@Redfish.CollectionCapabilities" and not child.get("Capabilities"):
            del node[name]
    return False


def _links(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name in ("@odata.id", *_LINK_KEYS) and isinstance(value, str) and value.startswith("/"):
                yield value
            else:
                yield from _links(value)
    elif isinstance(node, list):
        for item in node:
            yield from _links(item)


def _reachable(resources: Mapping[str, Json], start: str, key: KeyFn, aliases: set[str]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        current = resources.get(todo.pop())
        for uri in _links(current):
            target = key(uri)
            if target in aliases:
                continue
            if target in resources and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen
