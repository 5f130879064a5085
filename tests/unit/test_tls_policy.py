import os

import pytest

from oob.drivers.tls import normalise_fingerprint, system_ca_bundle, tls_policy_for
from oob.errors import UsageError
from oob.model import BmcConfig

FP = "AB:" * 31 + "CD"


def test_fingerprint_forms_normalise() -> None:
    expected = "ab" * 31 + "cd"
    assert normalise_fingerprint(FP) == expected
    assert normalise_fingerprint("sha256:" + expected.upper()) == expected
    with pytest.raises(UsageError, match="64 hex digits"):
        normalise_fingerprint("abcd")


def test_fingerprint_wins_over_ca_and_insecure() -> None:
    policy = tls_policy_for(BmcConfig(address="192.0.2.1", fingerprint=FP, ca_file="/nope", verify=False))
    assert policy.mode == "fingerprint"
    assert policy.verifies
    assert policy.pool_kwargs() == {"assert_fingerprint": "ab" * 31 + "cd"}
    assert policy.verify is False  # the pin is the check; no CA is consulted


def test_default_is_the_system_bundle_never_unverified(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/dev/null")
    policy = tls_policy_for(BmcConfig(address="192.0.2.1"))
    assert policy.mode == "system"
    assert policy.cafile and os.path.isfile(policy.cafile)
    assert policy.cafile == system_ca_bundle()


def test_insecure_only_when_asked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert tls_policy_for(BmcConfig(address="h", ca_file=str(ca))).mode == "ca_file"
    assert tls_policy_for(BmcConfig(address="h", ca_file=str(ca)), insecure=True).mode == "insecure"
    assert tls_policy_for(BmcConfig(address="h", verify=False)).mode == "insecure"
    assert not tls_policy_for(BmcConfig(address="h", verify=False)).verifies
    with pytest.raises(UsageError, match="does not exist"):
        tls_policy_for(BmcConfig(address="h", ca_file=str(tmp_path / "missing.pem")))


def test_ca_policies_hand_requests_the_ca_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    policy = tls_policy_for(BmcConfig(address="h", ca_file=str(ca)))
    assert policy.verify == str(ca)
    assert policy.pool_kwargs() == {}
    assert tls_policy_for(BmcConfig(address="h", verify=False)).verify is False
