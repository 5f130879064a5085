"""Vendor flavours: which captures a mock BMC serves and which habits it imitates.

A flavour is data, not code: the resources come from the vendor captures in
``mocks/captures/`` (see ``captures/SOURCES.md``) and the habits below say how the
vendor answers what a capture cannot show (status codes, error shapes, URI forms).
Each flavour's ``notes`` say where every habit comes from; "assumed" marks a habit we
have no capture or document for and chose to keep the mock plausible.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from .messages import MessageStyle

#: how the service treats a trailing slash on a request URI
#: ``tolerant``: both forms served, bodies as captured;
#: ``echo``: both forms served, every link in the body takes the caller's form (iLO 5 >= 1.40);
#: ``redirect``: the slash-less form answers 308 to the slash form, links end in "/" (iLO 5 < 1.40)
SlashHabit = Literal["tolerant", "echo", "redirect"]
#: ``ilo``: ``<user>`` + 16 hex digits + 8 hex digits; ``counter``: 1, 2, 3...; ``hex``: random hex
SessionIdStyle = Literal["ilo", "counter", "hex"]


@dataclass(frozen=True)
class Flavour:
    name: str
    description: str
    #: ``bmc.kind`` in the oob inventory
    kind: str
    #: capture folders; the first is the firmware imitated, later ones (same vendor) only fill
    #: resources the first lacks
    captures: tuple[str, ...]
    message_style: MessageStyle
    #: Base registry prefix of MessageIds, e.g. "Base.1.4"
    registry: str
    slash: SlashHabit = "tolerant"
    #: iLO resolves URIs case-insensitively (its docs use /redfish/v1/systems/1)
    case_insensitive: bool = False
    #: status of a successful ComputerSystem.Reset, and whether a success body comes with it
    reset_status: int = 204
    reset_body: bool = False
    #: status of a successful session DELETE, and whether a success body comes with it
    logout_status: int = 204
    logout_body: bool = False
    #: Base message for a ResetType outside the advertised values
    value_not_in_list: str = "ActionParameterValueNotInList"
    session_limit_status: int = 503
    session_ids: SessionIdStyle = "counter"
    #: first session id for ``counter`` ids (real services do not restart at 1)
    first_session_id: int = 1
    #: the ``Location`` of a new session is an absolute URL
    absolute_location: bool = False
    #: the ActionInfo repeats the inline AllowableValues (used where it was not captured)
    action_info_mirrors_inline: bool = False
    #: ResetTypes the firmware applies although its advertised list spells them wrongly
    also_accepts: tuple[str, ...] = ()
    server_header: str = "mock-bmc"
    notes: tuple[str, ...] = ()
    #: False for a BMC without Redfish: no HTTPS listener, IPMI only (``bmc.kind = "ipmi"``)
    redfish: bool = True
    #: what IPMI Get Device ID reports as manufacturer: the vendor's IANA enterprise number
    #: (assumed: there is no IPMI capture; 0 = unspecified where the vendor's is not certain)
    ipmi_manufacturer_id: int = 0

    @property
    def ipmi_only(self) -> bool:
        """Served over IPMI whatever the fleet's ``ipmi`` option says, never over Redfish."""
        return not self.redfish


# The vendors' base flavours; the older-firmware flavours below differ from them only in
# the fields they name ("other habits as ..."), so a vendor habit is written once.
ILO5 = Flavour(
    name="ilo5",
    description="HPE iLO 5 v2.72 (ProLiant DL385 Gen10 Plus v2)",
    kind="ilo",
    ipmi_manufacturer_id=11,
    captures=("hpe-ilo5-2.72_dl385-gen10plus-v2",),
    message_style="ilo",
    registry="Base.1.4",
    slash="echo",
    case_insensitive=True,
    reset_status=200,
    reset_body=True,
    logout_status=200,
    logout_body=True,
    session_ids="ilo",
    absolute_location=True,
    server_header="HPE-iLO-Server/1.30",
    notes=(
        "resources: capture hpe-ilo5-2.72 (NVIDIA/libredfish)",
        (
            "both slash forms served, links echo the caller's form: iLO 5 changelog, "
            "'Trailing slashes on URIs' (HPEDevCom/redfishdocs), see captures/SOURCES.md"
        ),
        (
            "Reset -> 200 with an error object whose MessageId is Base.1.x.Success: "
            "HPE redfishdocs 'Redfish error responses and messages'"
        ),
        (
            "401 body Base.1.4.NoValidSession, Location an absolute URL, session ids "
            "<user>0000000066be767a...: HPE redfishdocs 'Redfish authentication and sessions' "
            "and the captured session"
        ),
        (
            "logout 200 with the Success error object: assumed (iLO answers every "
            "completed operation that way)"
        ),
    ),
)

IDRAC9 = Flavour(
    name="idrac9",
    description="Dell iDRAC 9 6.00.30.00 (PowerEdge R750)",
    kind="idrac",
    ipmi_manufacturer_id=674,
    captures=("dell-idrac9-6.00_r750",),
    message_style="idrac",
    registry="Base.1.12",
    reset_status=204,
    logout_status=200,
    logout_body=False,
    value_not_in_list="PropertyValueNotInList",
    session_limit_status=400,
    first_session_id=275,
    server_header="Apache",
    notes=(
        "resources: capture dell-idrac9-6.00 (NVIDIA/libredfish)",
        "Reset -> 204 No Content: docs/REDFISH.md (Redfish) and Dell's scripts",
        (
            "an unlisted ResetType -> 400 GeneralError wrapping PropertyValueNotInList "
            "('The value X for the property ResetType is not in the list of acceptable "
            "values.'): quadsproject/badfish#118, DMTF/Redfish-Tacklebox#82"
        ),
        (
            "session limit -> 400 with SessionLimitExceeded: assumed (iDRAC refuses, then "
            "locks the user out; docs/REDFISH.md)"
        ),
        "session ids are counters (captured session 274)",
    ),
)

SUPERMICRO = Flavour(
    name="supermicro",
    description="Supermicro X13 BMC 11.01.01 (SYS-821GE-TNHR)",
    kind="supermicro",
    ipmi_manufacturer_id=10876,
    captures=("supermicro-x13-11.01.01_sys-821ge-tnhr",),
    message_style="smc",
    registry="Base.v1_4_0",
    reset_status=200,
    reset_body=True,
    logout_status=200,
    logout_body=True,
    first_session_id=3,
    server_header="mock-bmc",
    notes=(
        "resources: capture supermicro-x13 (NVIDIA/libredfish); Reset via ActionInfo only",
        (
            "success bodies {'Success': {'code': 'Base.v1_4_0.Success', ...}} and relative "
            "session Location: Supermicro X11 session create/delete quoted in public notes; "
            "assumed unchanged on X13"
        ),
        "session limit 16 in real firmware (docs/REDFISH.md); here only with the session_limit fault",
    ),
)


FLAVOURS: dict[str, Flavour] = {
    f.name: f
    for f in (
        ILO5,
        replace(
            ILO5,
            name="ilo5-slash",
            description="HPE iLO 5 v1.10-1.15 (ProLiant DL180 Gen10), before trailing-slash tolerance",
            captures=(
                "hpe-ilo5-1.1x_dl180-gen10_proliantutils",
                "hpe-ilo5-2.70_xl675d-gen10plus_trailing-slash",
                "hpe-ilo5-2.72_dl385-gen10plus-v2",
            ),
            registry="Base.1.0",
            slash="redirect",
            server_header="HPE-iLO-Server/1.10",
            notes=(
                (
                    "root, system and manager: capture hpe-ilo5-1.1x (openstack/proliantutils), which "
                    "offers no GracefulShutdown/GracefulRestart; collections and SessionService from "
                    "capture hpe-ilo5-2.70, crawled with trailing slashes; the session template from 2.72"
                ),
                (
                    "slash-less URIs answer 308 to the slash form, every link ends in '/': iLO 5 "
                    "changelog (< 1.40), see captures/SOURCES.md"
                ),
                "Reset and logout bodies as ilo5",
            ),
        ),
        IDRAC9,
        replace(
            IDRAC9,
            name="idrac9-old",
            description="Dell iDRAC 9 3.34.34.34 (PowerEdge R640)",
            captures=("dell-idrac9-3.34_r640_sushy", "dell-idrac9-6.00_r750"),
            registry="Base.1.2",
            first_session_id=41,
            notes=(
                (
                    "root, system and managers: capture dell-idrac9-3.34 (openstack/sushy); Systems "
                    "collection and SessionService from the 6.00 capture (same vendor)"
                ),
                (
                    "root Links.Sessions is /redfish/v1/Sessions (captured): the mock serves the "
                    "session collection there too and accepts logins on it"
                ),
                "other habits as idrac9",
            ),
        ),
        Flavour(
            name="openbmc",
            description="OpenBMC bmcweb 2.15.0-dev",
            kind="openbmc",
            captures=("openbmc-bmcweb-2.15.0-dev",),
            message_style="dmtf",
            registry="Base.1.16.0",
            reset_status=200,
            reset_body=True,
            logout_status=200,
            logout_body=True,
            session_ids="hex",
            server_header="bmcweb",
            notes=(
                (
                    "resources: capture openbmc-bmcweb-2.15.0-dev (Cray-HPE/csm-redfish-interface-emulator); "
                    "Reset advertised through ActionInfo only; SessionService and Sessions carry "
                    "trailing slashes in @odata.id while the root links them without (captured)"
                ),
                (
                    "Reset -> 200 with a Base Success message: bmcweb messages::success "
                    "(some versions answer 204: Mellanox/dpu-update#19)"
                ),
                (
                    "errors as bmcweb: code/message of the first message and full Message entries "
                    "(openbmc/bmcweb#266 shows the shape)"
                ),
            ),
        ),
        SUPERMICRO,
        replace(
            SUPERMICRO,
            name="supermicro-x12",
            description="Supermicro X12 BMC, Redfish 1.14.0 (SYS-510T-MR)",
            captures=("supermicro-x12_sys-510t-mr_bmclib", "supermicro-x13-11.01.01_sys-821ge-tnhr"),
            first_session_id=1,
            action_info_mirrors_inline=True,
            also_accepts=("GracefulShutdown", "GracefulRestart"),
            notes=(
                (
                    "root and system: capture supermicro-x12 (bmc-toolbox/bmclib), whose inline "
                    "AllowableValues carry the firmware bug 'GracefulShutdownGracefulRestart' (kept on "
                    "purpose); SessionService and managers from the X13 capture"
                ),
                "the X12 ResetActionInfo was not captured: the mock serves one with the inline values",
                (
                    "'GracefulShutdownGracefulRestart' is a missing comma in the firmware's list, not a "
                    "ResetType: the mock applies GracefulShutdown and GracefulRestart and answers 400 to "
                    "the run-together value itself"
                ),
                "other habits as supermicro",
            ),
        ),
        Flavour(
            name="xcc",
            description="Lenovo XClarity Controller TGBT42S 2.83 (ThinkSystem SR670 V2)",
            kind="xcc",
            ipmi_manufacturer_id=19046,
            captures=("lenovo-xcc-tgbt42s-2.83_sr670v2",),
            message_style="dmtf",
            registry="Base.1.8",
            reset_status=204,
            first_session_id=26,
            server_header="XCC Web Server",
            notes=(
                (
                    "resources: capture lenovo-xcc (NVIDIA/libredfish); Reset advertises both inline "
                    "values and an ActionInfo (other order)"
                ),
                "Reset -> 204: assumed (Lenovo's scripts accept 200 and 204)",
            ),
        ),
        Flavour(
            name="ami",
            description="AMI MegaRAC 12.84.13 (Gigabyte H262-Z63)",
            kind="redfish",
            captures=("ami-megarac_gigabyte-h262-z63",),
            message_style="dmtf",
            registry="Base.1.5",
            reset_status=204,
            server_header="mock-bmc",
            notes=(
                (
                    "resources: capture ami-megarac (Cray-HPE/csm-redfish-interface-emulator); the "
                    "ResetActionInfo offers no Nmi, so a Nmi POST gets 400 "
                    "ActionParameterValueNotInList (docs/REDFISH.md: AMI MegaRAC has no NMI)"
                ),
                "Managers collection synthesized (only Managers/Self was captured)",
                "Reset -> 204: assumed",
            ),
        ),
        Flavour(
            name="cray-ex",
            description="HPE Cray EX425 node BMC",
            kind="redfish",
            captures=("hpe-cray-ex425",),
            message_style="dmtf",
            registry="Base.1.0",
            reset_status=204,
            notes=(
                (
                    "resources: capture hpe-cray-ex425 (Cray-HPE/csm-redfish-interface-emulator); "
                    "ResetActionInfo offers ForceOff, On and the non-standard Off, no Nmi"
                ),
                "Managers collection synthesized",
                "Reset -> 204: assumed",
            ),
        ),
        Flavour(
            name="intel",
            description="Intel BMC 1.93 (S2600BPB)",
            kind="redfish",
            ipmi_manufacturer_id=343,
            captures=("intel_s2600bpb",),
            message_style="dmtf",
            registry="Base.1.0",
            reset_status=204,
            notes=(
                (
                    "resources: capture intel_s2600bpb (Cray-HPE/csm-redfish-interface-emulator); "
                    "inline AllowableValues only"
                ),
                "Managers collection synthesized",
                "Reset -> 204: assumed",
            ),
        ),
        Flavour(
            name="dmtf",
            description="DMTF reference mockup public-rackmount1 (Contoso)",
            kind="redfish",
            captures=("dmtf-public-rackmount1",),
            message_style="dmtf",
            registry="Base.1.17.0",
            reset_status=204,
            session_ids="hex",
            notes=(
                "resources: DMTF/Redfish-Publications public-rackmount1",
                "Reset -> 204 No Content: DSP0266 allows 200, 202 or 204; the DMTF emulators answer 204",
            ),
        ),
        Flavour(
            name="ipmi",
            description="IPMI 2.0 BMC without Redfish (RMCP+ lanplus on UDP only)",
            kind="ipmi",
            # no Redfish service: captures, message style and registry are never read
            captures=(),
            message_style="dmtf",
            registry="",
            redfish=False,
            notes=(
                (
                    "IPMI only: no HTTPS listener; served by mocks.ipmi_server (cipher suite 3, "
                    "Chassis Control incl. 0x04 pulse diagnostic interrupt = NMI), as the many "
                    "fleets still managed over IPMI alone"
                ),
                "Get Device ID: manufacturer 0 (unspecified), firmware 1.0",
            ),
        ),
    )
}

#: flavours with a Redfish service (every one but ``ipmi``)
REDFISH_FLAVOURS: tuple[str, ...] = tuple(name for name, flavour in FLAVOURS.items() if flavour.redfish)

#: what ``--vendors`` defaults to: one flavour per main vendor family of the captures
MAIN_FLAVOURS: tuple[str, ...] = ("ilo5", "ilo5-slash", "idrac9", "openbmc", "supermicro", "xcc", "ami")


def get_flavour(name: str) -> Flavour:
    try:
        return FLAVOURS[name]
    except KeyError:
        raise ValueError(f"unknown vendor flavour {name!r}; known: {', '.join(FLAVOURS)}") from None
