"""Run real `ansible-playbook` (the venv's ansible-core) with the repository's oob collection.

Each run is private to the test: ANSIBLE_HOME, the temporary directories and the (empty)
configuration live under tmp_path; the inventory is `localhost,` with the local connection,
and the modules run in this very Python, with this checkout first on its path.  Plays write
what they registered to a JSON file the test reads back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


@dataclass
class PlaybookRun:
    code: int
    stdout: str
    stderr: str
    #: what the play saved with `save` (below): registered results by name
    saved: dict[str, Any]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def save_task(path: Path, names: list[str]) -> dict[str, Any]:
    """A task that writes the registered results `names` to `path` as JSON."""
    content = "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"
    return {"name": "save", "ansible.builtin.copy": {"content": content, "dest": str(path), "mode": "0600"}}


def ansible_environ(home: Path) -> dict[str, str]:
    """This environment without ANSIBLE_* and OOB_* settings, Ansible's state under `home`,
    the repository's collection, this Python and this checkout for the modules."""
    for folder in ("home", "tmp", "remote"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    config = home / "ansible.cfg"
    config.write_text("[defaults]\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OOB_"))}
    environ.update(
        {
            "ANSIBLE_CONFIG": str(config),
            "ANSIBLE_HOME": str(home / "home"),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(home / "remote"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_GALAXY_SERVER": "http://127.0.0.1:9/",  # never the network
            # ansible-core refuses to start unless the locale's encoding is UTF-8
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
            # oob's state of this test only (the suite's own OOB_CACHE_DIR went with OOB_*):
            # what the modules learn of the mock BMCs never reaches the user's ~/.cache/oob
            "OOB_CACHE_DIR": str(home / "oob-cache"),
        }
    )
    return environ


@pytest.fixture
def playbook(tmp_path: Path) -> Callable[..., PlaybookRun]:
    """Run a play of `tasks` on `hosts` (localhost); `save` names the registered results to read back."""
    home = tmp_path / "ansible"
    runs = 0

    def run(
        tasks: list[dict[str, Any]],
        save: list[str],
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        hosts: str = "localhost",
        inventory: str = "localhost,",
        timeout: float = 120,
    ) -> PlaybookRun:
        nonlocal runs
        runs += 1
        saved = tmp_path / f"saved{runs}.json"
        play = {
            "hosts": hosts,
            "gather_facts": False,
            "tasks": [*tasks, save_task(saved, save)],
        }
        path = tmp_path / f"play{runs}.yml"
        path.write_text(yaml.safe_dump([play], sort_keys=False))
        environ = ansible_environ(home)
        environ["OOB_AUDIT_LOG"] = str(tmp_path / "audit.jsonl")
        environ.update(env or {})
        proc = subprocess.run(
            [str(ANSIBLE_PLAYBOOK), "-i", inventory, "-c", "local", *args, str(path)],
            capture_output=True,
            text=True,
            env=environ,
            cwd=tmp_path,
            timeout=timeout,
        )
        data = json.loads(saved.read_text()) if saved.exists() else {}
        return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, data)

    return run
