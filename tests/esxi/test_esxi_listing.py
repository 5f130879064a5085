"""The readers of ``vmdumper -l`` and ``vim-cmd`` output, on their own: one reading per line
or none, and crafted lines (a megabyte of separators) read as nothing."""

from __future__ import annotations

import pytest

from oob.drivers.esxi import commands
from oob.drivers.esxi.listing import (
    MAX_LINE,
    first_line,
    parse_fault,
    parse_getallvms,
    parse_power_state,
    parse_vmdumper,
)
from oob.model import PowerState

CFG = "/vmfs/volumes/5d35e7d8-e8df636f-46b9-0025907d9d5c/web01/web01.vmx"


def line(name: str, *, key: str = "wid", cfg: str = CFG) -> str:
    return f'{key}=2099719 pid=-1 cfgFile="{cfg}" uuid="56 4d 74 f8 c8 22 41 27-a3 88 49 df 8b dc d6 63" displayName="{name}" vmxCartelID=2099713'


def test_a_documented_line_and_the_older_vmid_form() -> None:
    for key in ("wid", "vmid"):
        (vm,) = parse_vmdumper(line("web 01", key=key) + "\n").vms
        assert (vm.wid, vm.cartel, vm.cfg_file, vm.display_name) == (2099719, 2099713, CFG, "web 01")


def test_quotes_in_a_name_are_kept_when_the_line_reads_one_way() -> None:
    (vm,) = parse_vmdumper(line('we"b" 01 vmxCartelID=1') + "\n").vms
    assert vm.display_name == 'we"b" 01 vmxCartelID=1'


def test_a_line_with_two_readings_names_no_vm() -> None:
    crafted = line('evil" uuid="" displayName="web01')
    listing = parse_vmdumper(crafted + "\n" + line("db01") + "\n", "web01")
    assert [vm.display_name for vm in listing.vms] == ["db01"]
    assert listing.unread == 1 and len(listing.suspicious) == 1
    # a path may hold the separators too
    assert parse_vmdumper(line("x", cfg='/a" uuid="1" displayName="web01/b.vmx')).vms == ()


def test_a_megabyte_of_separators_reads_as_nothing() -> None:
    crafted = ('wid=1 pid=-1 cfgFile="' + '" uuid="" displayName="' * 400 + '" vmxCartelID=1')[:MAX_LINE]
    listing = parse_vmdumper("\n".join([crafted] * 128) + "\n" + line("web01"), "web01")
    assert [vm.display_name for vm in listing.vms] == ["web01"] and listing.unread == 128
    brackets = "1 web01" + " [" * 4000 + " x.vmx"
    registered = parse_getallvms("\n".join([brackets] * 128), "web01")
    assert registered.vms == () and registered.unread == 128 and registered.suspicious


def test_getallvms_columns() -> None:
    text = (
        "Vmid   Name          File                              Guest OS        Version   Annotation\n"
        "1      web 01        [datastore 1] web 01/web 01.vmx   rhel9_64Guest   vmx-19    line one\n"
        "the annotation's second line\n"
        "12     db01          [ds2] db01/db01.vmx               rhel9_64Guest   vmx-21\n"
        "13     odd [1] name  [ds2] odd/odd.vmx                 rhel9_64Guest   vmx-21\n"
    )
    listing = parse_getallvms(text, "odd [1] name")
    assert [(vm.vmid, vm.name, vm.file) for vm in listing.vms] == [
        (1, "web 01", "[datastore 1] web 01/web 01.vmx"),
        (12, "db01", "[ds2] db01/db01.vmx"),
    ]
    # "odd [1] name [ds2] ..." has two places the file could start: not read, and suspicious
    assert listing.unread == 1 and len(listing.suspicious) == 1


def test_power_states_and_faults() -> None:
    assert parse_power_state("Retrieved runtime info\nPowered on\n") is PowerState.ON
    assert parse_power_state("Retrieved runtime info\nPowered off\n") is PowerState.OFF
    assert parse_power_state("Retrieved runtime info\nSuspended\n") is PowerState.OFF
    assert parse_power_state("Retrieved runtime info\nPowered on\nPowered off\n") is None
    assert parse_power_state("") is None
    fault = '(vim.fault.InvalidPowerState) {\n   msg = "The attempted operation cannot be performed"\n}\n'
    assert parse_fault("Powering on VM:\n" + fault) == "vim.fault.InvalidPowerState"
    assert parse_fault("   x = (vim.fault.NotFound) {\n") is None
    assert first_line("\n\n  \x1b[2Jhello\n") == "\\x1b[2Jhello"


def test_ids_are_positive_and_bounded_before_a_command_carries_them() -> None:
    assert parse_vmdumper(line("web01").replace("wid=2099719", "wid=0")).vms == ()
    assert parse_vmdumper(line("web01").replace("wid=2099719", "wid=9999999999999999999")).vms == ()
    assert parse_getallvms("0 web01 [ds] a/a.vmx g vmx-19\n").vms == ()
    assert commands.nmi(2099719) == "vmdumper 2099719 nmi"
    for bad in (0, -1, True, 2**63):
        with pytest.raises(ValueError):
            commands.nmi(bad)
    with pytest.raises(ValueError):
        commands.power("on; reboot", 1)


def test_a_line_separator_in_a_name_does_not_start_a_line() -> None:
    # str.splitlines would break at U+2028 and let the name's second half read as a VM's line
    forged = "x\u2028" + line("web01").replace("wid=2099719", "wid=5")
    listing = parse_vmdumper(line(forged) + "\n", "web01")
    assert [vm.display_name for vm in listing.vms] == []
    assert listing.unread == 1 and listing.suspicious
