"""Redfish Base-registry messages and the shapes vendors wrap them in.

Every error the mock sends carries ``error.@Message.ExtendedInfo`` (what oob surfaces), but
vendors differ in how much of each message they send, so the body is built in the style
the flavour names:

``ilo``
    ``{"error": {"code": "iLO.0.10.ExtendedInfo", "message": "See @Message.ExtendedInfo ...",
    "@Message.ExtendedInfo": [{"MessageId": ..., "MessageArgs": [...]}]}}`` — ids and args only,
    and a *successful* action answers 200 with the same ``error`` object holding
    ``Base.1.x.Success`` (HPE redfishdocs, "Redfish error responses and messages").
``idrac``
    ``code`` ``Base.1.x.GeneralError`` with the generic message; each ExtendedInfo entry has
    ``Message``, ``Severity``, ``MessageArgs@odata.count`` and ``RelatedProperties``
    (iDRAC 9 answers as seen in badfish#118 and Redfish-Tacklebox#82).
``smc``
    Like ``dmtf`` but with Supermicro's ``Base.v1_4_0.`` message ids; success bodies are
    ``{"Success": {"code": "Base.v1_4_0.Success", "Message": "Successfully Completed Request."}}``
    (X11 session DELETE, quoted in public Redfish notes).
``dmtf``
    The DSP0266 shape as bmcweb writes it: ``code`` and ``message`` of the first message and
    complete ``#Message.v1_1_1.Message`` entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MessageStyle = Literal["ilo", "idrac", "smc", "dmtf"]


@dataclass(frozen=True)
class Message:
    text: str
    severity: str
    resolution: str

    def render(self, args: Sequence[str]) -> str:
        text = self.text
        for index, arg in enumerate(args, start=1):
            text = text.replace(f"%{index}", str(arg))
        return text


#: the Base registry messages the mock uses (wording from DMTF's Base registry)
BASE: dict[str, Message] = {
    "Success": Message("The request completed successfully.", "OK", "None"),
    "GeneralError": Message(
        "A general error has occurred.  See Resolution for information on how to resolve the error.",
        "Critical",
        "None.",
    ),
    "NoValidSession": Message(
        "There is no valid session established with the implementation.",
        "Critical",
        "Establish a session before attempting any operations.",
    ),
    "ResourceAtUriUnauthorized": Message(
        "While accessing the resource at %1, the service received an authorization error %2.",
        "Critical",
        "Ensure that the appropriate access is provided for the service in order for it to access the URI.",
    ),
    "SessionLimitExceeded": Message(
        "The session establishment failed due to the number of simultaneous sessions exceeding the "
        "limit of the implementation.",
        "Critical",
        "Reduce the number of other sessions before trying to establish the session or increase the "
        "limit of simultaneous sessions, if supported.",
    ),
    "ActionParameterMissing": Message(
        "The action %1 requires the parameter %2 to be present in the request body.",
        "Critical",
        "Supply the action with the required parameter in the request body when the request is resubmitted.",
    ),
    "ActionParameterValueNotInList": Message(
        "The value '%1' for the parameter %2 in the action %3 is not in the list of acceptable values.",
        "Warning",
        "Choose a value from the enumeration list that the implementation can support and resubmit "
        "the request if the operation failed.",
    ),
    # iDRAC words it without quotes: "The value GracefulRestart for the property ResetType is not ..."
    "PropertyValueNotInList": Message(
        "The value %1 for the property %2 is not in the list of acceptable values.",
        "Warning",
        "Choose a value from the enumeration list that the implementation can support and resubmit "
        "the request if the operation failed.",
    ),
    "MalformedJSON": Message(
        "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
        "Critical",
        "Ensure that the request body is valid JSON and resubmit the request.",
    ),
    "ResourceMissingAtURI": Message(
        "The resource at the URI '%1' was not found.",
        "Critical",
        "Place a valid resource at the URI or correct the URI and resubmit the request.",
    ),
    "OperationNotAllowed": Message(
        "The HTTP method is not allowed on this resource.",
        "Critical",
        "None.",
    ),
    "InternalError": Message(
        "The request failed due to an internal service error.  The service is still operational.",
        "Critical",
        "Resubmit the request.  If the problem persists, consider resetting the service.",
    ),
    "ServiceTemporarilyUnavailable": Message(
        "The service is temporarily unavailable.  Retry in %1 seconds.",
        "Critical",
        "Wait for the indicated retry duration and retry the operation.",
    ),
}

#: the message an injected ``http_status`` fault carries
STATUS_MESSAGES: dict[int, tuple[str, tuple[str, ...]]] = {
    400: ("GeneralError", ()),
    401: ("NoValidSession", ()),
    404: ("ResourceMissingAtURI", ("%URI%",)),
    405: ("OperationNotAllowed", ()),
    500: ("InternalError", ()),
    503: ("ServiceTemporarilyUnavailable", ("30",)),
}


@dataclass(frozen=True)
class MessageRef:
    """One message to send: a Base key, its arguments and the properties it concerns."""

    key: str
    args: tuple[str, ...] = ()
    related: tuple[str, ...] = ()


def error_body(style: MessageStyle, registry: str, ref: MessageRef) -> dict[str, object]:
    """The JSON body of an error response in the given vendor style."""
    message = BASE[ref.key]
    message_id = f"{registry}.{ref.key}"
    text = message.render(ref.args)
    if style == "ilo":
        entry: dict[str, object] = {"MessageId": message_id}
        if ref.args:
            entry["MessageArgs"] = list(ref.args)
        return {
            "error": {
                "code": "iLO.0.10.ExtendedInfo",
                "message": "See @Message.ExtendedInfo for more information.",
                "@Message.ExtendedInfo": [entry],
            }
        }
    if style == "idrac":
        return {
            "error": {
                "@Message.ExtendedInfo": [
                    {
                        "Message": text,
                        "MessageArgs": list(ref.args),
                        "MessageArgs@odata.count": len(ref.args),
                        "MessageId": message_id,
                        "RelatedProperties": list(ref.related),
                        "RelatedProperties@odata.count": len(ref.related),
                        "Resolution": message.resolution,
                        "Severity": message.severity,
                    }
                ],
                "code": f"{registry}.GeneralError",
                "message": "A general error has occurred. See ExtendedInfo for more information",
            }
        }
    entry = _full_entry(message_id, message, text, ref)
    return {"error": {"code": message_id, "message": text, "@Message.ExtendedInfo": [entry]}}


def success_body(style: MessageStyle, registry: str) -> dict[str, object]:
    """The body a vendor sends with a 200 for a completed action or logout."""
    if style == "ilo":
        return error_body("ilo", registry, MessageRef("Success"))
    if style == "smc":
        return {"Success": {"code": f"{registry}.Success", "Message": "Successfully Completed Request."}}
    ref = MessageRef("Success")
    return {
        "@Message.ExtendedInfo": [
            _full_entry(f"{registry}.Success", BASE["Success"], BASE["Success"].text, ref)
        ]
    }


def _full_entry(message_id: str, message: Message, text: str, ref: MessageRef) -> dict[str, object]:
    entry: dict[str, object] = {
        "@odata.type": "#Message.v1_1_1.Message",
        "MessageId": message_id,
        "Message": text,
        "MessageArgs": list(ref.args),
        "MessageSeverity": message.severity,
        "Resolution": message.resolution,
    }
    if ref.related:
        entry["RelatedProperties"] = list(ref.related)
    return entry
