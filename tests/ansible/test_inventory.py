"""One Ansible YAML inventory for both: ansible-playbook selects the hosts, oob reads its bmc_*,
dump_* and oob_* variables from the very same file (the mapping the collection's README gives)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.ansible.conftest import PlaybookRun


def _ansible_name(key: str) -> str:
    """oob's inventory key -> the Ansible variable oob reads for it."""
    if key == "address":
        return "ansible_host"
    section, _, rest = key.partition(".")
    if section in ("bmc", "dump"):
        return f"{section}_{rest}"
    return f"oob_{key.replace('.', '_')}"  # probe, ssh.user, ssh.port, ...


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """TOML's dotted keys (`bmc.address`) come back as nested tables: flatten them again."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def ansible_inventory(toml_path: Path, path: Path) -> Path:
    """The mock fleet's oob inventory rewritten as an Ansible YAML inventory."""
    data = tomllib.loads(toml_path.read_text())
    data = {"defaults": _flat(data["defaults"]), "hosts": {n: _flat(k) for n, k in data["hosts"].items()}}
    groups: dict[str, Any] = {}
    for name, keys in data["hosts"].items():
        for group in keys.get("groups", []):
            groups.setdefault(group, {"hosts": {}})["hosts"][name] = None
    hosts = {
        name: {_ansible_name(k): v for k, v in keys.items() if k != "groups"}
        for name, keys in data["hosts"].items()
    }
    all_vars = {_ansible_name(k): v for k, v in data["defaults"].items()}
    document = {"all": {"vars": all_vars, "hosts": hosts, "children": groups}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def test_a_play_on_ansible_hosts_points_oob_at_its_own_inventory(
    fleet_factory: Callable[..., Any], playbook: Callable[..., PlaybookRun], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ilo5", "idrac9"], hung=True, dump_root=tmp_path / "crash", scale=0.02)
    inventory = ansible_inventory(fleet.write_inventory(tmp_path / "fleet.toml"), tmp_path / "hosts.yml")
    task = {
        "oob.oob.oob_nmi": {
            "targets": "{{ ansible_play_hosts }}",
            "inventory": ["{{ inventory_file }}"],
            "audit_log": str(tmp_path / "oob-audit.jsonl"),
        },
        "run_once": True,
        "delegate_to": "localhost",
        "register": "nmi",
    }
    run = playbook([task], save=["nmi"], hosts="mock", inventory=str(inventory), args=("--limit", "idrac9-1"))
    assert run.code == 0, run.output
    nmi = run.saved["nmi"]
    assert nmi["changed"] is True and nmi["sent"] == ["idrac9-1"]
    assert [(r["host"], r["status"]) for r in nmi["results"]] == [("idrac9-1", "ok")]
    assert fleet.bmc("idrac9-1").nmi_count == 1
    assert fleet.bmc("ilo5-1").nmi_count == 0
