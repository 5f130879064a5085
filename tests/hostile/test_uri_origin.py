"""BMC-supplied URIs stay on the BMC's origin: examples of attacks, and a property for all."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oob.drivers.redfish.uris import Origin, safe_path
from oob.errors import BmcProtocolError

ORIGIN = Origin.parse("https://127.0.0.1:8443")

HOSTILE = [
    "@127.0.0.2:443/redfish/v1/SessionService/Sessions",
    "//127.0.0.2/redfish/v1/Systems/1",
    "//127.0.0.2:8443/redfish/v1/Systems/1",
    "https://127.0.0.2:8443/redfish/v1/Systems/1",
    "https://127.0.0.1:8444/redfish/v1/Systems/1",  # same host, other port
    "http://127.0.0.1:8443/redfish/v1/Systems/1",  # same host and port, plain http
    "https://user@127.0.0.1:8443/redfish/v1/Systems/1",
    "https://127.0.0.1:8443@127.0.0.2/redfish/v1/",
    "/redfish/../../etc/passwd",
    "/redfish/v1/../../x",
    "/redfish/v1/%2e%2e/%2e%2e/x",
    "/redfish/v1/%2F%2F127.0.0.2/x",
    "%2F%2F127.0.0.2/redfish/v1/",
    "/redfish/v1/Systems/1%252F..",
    "\\\\127.0.0.2\\redfish\\v1",
    "/redfish\\..\\..\\x",
    "/redfish/v1/Systems/1@127.0.0.2",
    "/redfish/v1//Systems",
    "/redfish/v1/Systems?x=1",
    "/redfish/v1/Sys tems",
    "/redfish/v1/Systems/1\r\nX-Evil: 1",
    "/redfish/v1/Systems/\u00e91",
    "redfish/v1/Systems/1",
    "/other/v1/Systems/1",
    "",
    "/redfish/v1/%ff",
    "javascript:alert(1)",
    "x" * 5000,
]


@pytest.mark.parametrize("uri", HOSTILE)
def test_off_origin_uris_are_refused_naming_the_bmc_and_the_field(uri: str) -> None:
    with pytest.raises(BmcProtocolError) as caught:
        safe_path(uri, ORIGIN, field="Links.Sessions")
    assert caught.value.exit_code == 4
    assert "Links.Sessions" in caught.value.message
    assert "https://127.0.0.1:8443" in caught.value.message


@pytest.mark.parametrize("value", [None, 7, ["/redfish/v1/"], {"@odata.id": "/redfish/v1/"}])
def test_non_string_uris_are_refused(value: object) -> None:
    with pytest.raises(BmcProtocolError, match="not a string"):
        safe_path(value, ORIGIN, field="target")


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/redfish/v1/", "/redfish/v1/"),
        ("/redfish/v1/Systems/1", "/redfish/v1/Systems/1"),
        ("/redfish/v1/Chassis/1/Thermal#/Fans/0", "/redfish/v1/Chassis/1/Thermal"),
        ("https://127.0.0.1:8443/redfish/v1/Systems/1/", "/redfish/v1/Systems/1/"),
        ("HTTPS://127.0.0.1:8443/redfish/v1/Systems/1", "/redfish/v1/Systems/1"),
        ("/redfish/v1/Systems/System.Embedded.1", "/redfish/v1/Systems/System.Embedded.1"),
        ("/redfish/v1/Systems/1%3A2", "/redfish/v1/Systems/1:2"),
    ],
)
def test_paths_and_same_origin_urls_are_kept_as_paths(uri: str, path: str) -> None:
    assert safe_path(uri, ORIGIN, field="x") == path


def test_default_port_counts_as_the_same_origin() -> None:
    origin = Origin.parse("https://bmc.example.test")
    assert origin.port == 443
    assert safe_path("https://BMC.example.test/redfish/v1/", origin, field="x") == "/redfish/v1/"
    assert safe_path("https://bmc.example.test:443/redfish/v1/", origin, field="x") == "/redfish/v1/"


# Hostile material: pieces an attacker would glue together, and arbitrary text
_PIECES = st.sampled_from(
    [
        "/",
        "//",
        "/redfish/",
        "/redfish/v1/",
        "..",
        ".",
        "@",
        "\\",
        "%2F",
        "%2f",
        "%2e",
        "%25",
        "%40",
        "%5C",
        "127.0.0.2",
        ":443",
        ":8443",
        "https:",
        "http:",
        "//127.0.0.2",
        "#",
        "?",
        "Systems",
        "1",
        " ",
        "\t",
        "\r\n",
        "%00",
        "\u0000",
        "\u00e9",
        "~",
        "+",
        ";",
        "=",
        "&",
    ]
)
_HOSTILE_URIS = st.one_of(
    st.text(max_size=80),
    st.lists(_PIECES, max_size=12).map("".join),
    st.lists(_PIECES, max_size=8).map(lambda parts: "/redfish/v1/" + "".join(parts)),
    st.lists(_PIECES, max_size=8).map(lambda parts: "https://127.0.0.1:8443" + "".join(parts)),
)


@settings(max_examples=600, deadline=None)
@given(_HOSTILE_URIS)
def test_any_accepted_uri_stays_on_the_origin(uri: str) -> None:
    """Whatever is accepted, joined to the origin, is the origin plus a /redfish/ path,
    however urllib, urllib3 and requests read it."""
    import requests
    from urllib3.util import parse_url

    try:
        path = safe_path(uri, ORIGIN, field="f")
    except BmcProtocolError:
        return
    url = ORIGIN.url(path)
    split = urlsplit(url)
    parsed = parse_url(url)
    prepared = urlsplit(str(requests.Request("GET", url).prepare().url))
    for scheme, host, port, got_path in (
        (split.scheme, split.hostname, split.port, split.path),
        (parsed.scheme, parsed.host, parsed.port, parsed.path),
        (prepared.scheme, prepared.hostname, prepared.port, prepared.path),
    ):
        assert (scheme, host, port) == ("https", "127.0.0.1", 8443)
        assert got_path is not None and got_path.startswith("/redfish/")
        assert "//" not in got_path
        assert not any(segment in (".", "..") for segment in got_path.split("/"))
