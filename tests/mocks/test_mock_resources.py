"""The static resource tree of every flavour: built from the captures, honest about what it serves."""

from __future__ import annotations

from typing import Any

import pytest

from mocks.flavours import FLAVOURS, MAIN_FLAVOURS, REDFISH_FLAVOURS, get_flavour
from mocks.resources import CAPTURES_DIR, RESET_ACTION, _links, model_for


def _targets(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "target":
                found.append(value)
            else:
                found += _targets(value)
    elif isinstance(node, list):
        for item in node:
            found += _targets(item)
    return found


@pytest.mark.parametrize("name", sorted(REDFISH_FLAVOURS))
def test_every_link_leads_to_a_served_resource(name: str) -> None:
    model = model_for(name)
    for key, resource in model.resources.items():
        for uri in _links(resource):
            target = model.key(uri)
            assert target in model.resources or model.is_sessions(target), f"{name}: {key} links {uri}"


@pytest.mark.parametrize("name", sorted(REDFISH_FLAVOURS))
def test_the_only_action_left_is_the_system_reset(name: str) -> None:
    model = model_for(name)
    targets = [t for resource in model.resources.values() for t in _targets(resource)]
    assert targets == [model.reset.target]
    assert RESET_ACTION in model.resources[model.system]["Actions"]


@pytest.mark.parametrize("name", sorted(REDFISH_FLAVOURS))
def test_sessions_and_systems_are_always_served(name: str) -> None:
    model = model_for(name)
    root = model.resources[model.key("/redfish/v1")]
    assert model.key(root["Systems"]["@odata.id"]) in model.resources
    assert model.key(root["SessionService"]["@odata.id"]) == model.session_service
    assert model.is_sessions(model.key(root["Links"]["Sessions"]["@odata.id"]))
    assert model.resources[model.sessions]["Members"] == []


def test_unserved_services_are_not_advertised() -> None:
    root = model_for("ilo5").resources["/redfish/v1"]
    for gone in ("AccountService", "Chassis", "EventService", "JsonSchemas", "CertificateService"):
        assert gone not in root
    system = model_for("idrac9").resources["/redfish/v1/Systems/System.Embedded.1"]
    assert "Bios" not in system and system["Links"]["Chassis"] == []
    assert system["Links"]["Chassis@odata.count"] == 0
    # the vendor's OEM data stays, its links and actions to unserved resources go
    assert system["Oem"]["Dell"]["DellSystem"]["@odata.type"].startswith("#DellSystem.")


@pytest.mark.parametrize(
    ("name", "nmi", "values"),
    [
        (
            "ilo5",
            True,
            (
                "On",
                "ForceOff",
                "GracefulShutdown",
                "ForceRestart",
                "Nmi",
                "PushPowerButton",
                "GracefulRestart",
            ),
        ),
        ("ilo5-slash", True, ("On", "ForceOff", "ForceRestart", "Nmi", "PushPowerButton")),
        ("ami", False, ("GracefulShutdown", "ForceRestart", "ForceOff", "On")),
        ("cray-ex", False, ("ForceOff", "On", "Off")),
        (
            "supermicro-x12",
            True,
            ("On", "ForceOff", "GracefulShutdownGracefulRestart", "ForceRestart", "Nmi", "ForceOn"),
        ),
    ],
)
def test_advertised_reset_values_are_the_captured_ones(name: str, nmi: bool, values: tuple[str, ...]) -> None:
    reset = model_for(name).reset
    assert reset.advertised == values
    assert ("Nmi" in reset.advertised) is nmi


def test_where_the_values_are_advertised() -> None:
    assert model_for("openbmc").reset.inline is None and model_for("openbmc").reset.action_info_values
    xcc = model_for("xcc").reset
    assert xcc.inline and xcc.action_info_values and xcc.inline != xcc.action_info_values  # other order
    x12 = model_for("supermicro-x12")
    # the X12 ActionInfo was not captured: served with the inline values, bug included
    assert x12.reset.action_info_values == x12.reset.inline
    assert x12.reset.action_info and model_for("supermicro-x12").key(x12.reset.action_info) in x12.resources


def test_trimmed_captures_get_collections_in_vendor_style() -> None:
    ami = model_for("ami")
    managers = ami.resources["/redfish/v1/Managers"]
    assert managers["Members"] == [{"@odata.id": "/redfish/v1/Managers/Self"}]
    assert managers["@odata.context"].endswith("#ManagerCollection.ManagerCollection")  # AMI writes contexts
    old = model_for("idrac9-old")
    assert old.session_aliases == {"/redfish/v1/Sessions"}
    assert old.resources["/redfish/v1"]["Links"]["Sessions"]["@odata.id"] == "/redfish/v1/Sessions"


def test_ilo_keys_are_case_insensitive_and_slash_free() -> None:
    model = model_for("ilo5-slash")
    assert model.key("/redfish/v1/Systems/1/") == model.key("/redfish/v1/systems/1") == model.system
    assert model.sessions_uri == "/redfish/v1/SessionService/Sessions/"


def test_main_flavours_and_captures_exist() -> None:
    assert set(MAIN_FLAVOURS) <= set(FLAVOURS)
    for flavour in FLAVOURS.values():
        for folder in flavour.captures:
            assert (CAPTURES_DIR / folder).is_dir()
        assert flavour.notes, f"{flavour.name} must say where its habits come from"
    assert (CAPTURES_DIR / "SOURCES.md").is_file()
    with pytest.raises(ValueError, match="unknown vendor flavour 'ilo7'"):
        get_flavour("ilo7")
