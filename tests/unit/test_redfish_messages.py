from oob.drivers.redfish.messages import is_success_body, most_severe_message

ILO_SUCCESS = {
    "error": {
        "code": "iLO.0.10.ExtendedInfo",
        "message": "See @Message.ExtendedInfo for more information.",
        "@Message.ExtendedInfo": [{"MessageId": "Base.1.4.Success"}],
    }
}


def test_ilo_200_with_error_object_is_success() -> None:
    assert is_success_body(ILO_SUCCESS)


def test_error_body_is_not_success() -> None:
    body = {"error": {"@Message.ExtendedInfo": [{"MessageId": "Base.1.8.ActionParameterValueNotInList"}]}}
    assert not is_success_body(body)
    assert not is_success_body(None)


def test_most_severe_entry_wins_and_names_its_id() -> None:
    body = {
        "error": {
            "code": "Base.1.8.GeneralError",
            "message": "A general error has occurred.",
            "@Message.ExtendedInfo": [
                {"MessageId": "Base.1.8.Success", "Message": "ok", "Severity": "OK"},
                {
                    "MessageId": "Base.1.8.ActionParameterValueNotInList",
                    "Message": "The value 'Nmi' for the parameter ResetType is not in the list of acceptable values.",
                    "MessageSeverity": "Warning",
                    "Resolution": "Choose a value from the enumeration list.",
                },
            ],
        }
    }
    text = most_severe_message(body)
    assert text is not None
    assert text.startswith("The value 'Nmi' for the parameter ResetType")
    assert "[Base.1.8.ActionParameterValueNotInList]" in text
    assert "Resolution: Choose a value" in text


def test_top_level_extended_info_and_plain_message() -> None:
    assert most_severe_message({"@Message.ExtendedInfo": [{"MessageId": "X.Y.Busy"}]}) == "X.Y.Busy"
    assert most_severe_message({"error": {"message": "boom"}}) == "boom"
    assert most_severe_message("not json") is None
