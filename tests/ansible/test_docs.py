"""The modules' documentation, as ansible-doc reads it, says what their argument specs take."""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.ansible.conftest import ANSIBLE_PLAYBOOK, ansible_environ

MODULES = ("oob_nmi", "oob_preflight", "oob_crash")


def _documented(tmp_path: Path) -> dict[str, Any]:
    environ = ansible_environ(tmp_path / "ansible")
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK.parent / "ansible-doc"), "-j", *(f"oob.oob.{m}" for m in MODULES)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr.upper(), proc.stderr
    return {name.rsplit(".", 1)[1]: doc for name, doc in json.loads(proc.stdout).items()}


def test_every_option_is_documented_as_the_module_takes_it(tmp_path: Path) -> None:
    docs = _documented(tmp_path)
    assert set(docs) == set(MODULES)
    for name in MODULES:
        spec = importlib.import_module(f"ansible_collections.oob.oob.plugins.modules.{name}").ARGUMENT_SPEC
        doc = docs[name]["doc"]
        options = doc["options"]
        assert set(options) == set(spec), name
        for option, arg in spec.items():
            documented = options[option]
            assert documented["type"] == arg["type"], (name, option)
            assert documented.get("elements") == arg.get("elements"), (name, option)
            assert documented.get("default") == arg.get("default"), (name, option)
            assert documented.get("required", False) == arg.get("required", False), (name, option)
            assert documented.get("choices") == arg.get("choices"), (name, option)
            assert documented["description"], (name, option)
        assert docs[name]["examples"].strip() and docs[name]["return"]["exit_code"]["type"] == "int"
        assert doc["attributes"]["check_mode"]["support"] == "full"
