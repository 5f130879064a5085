# Apache-2.0 (see the oob project's licence)
"""What the oob modules share: their parameters, the mapping onto oob's request dataclasses,
and how a run becomes a module result.

The modules run oob's library API (:mod:`oob.api`) in the module's own Python, on the machine
where oob is installed (the controller: ``delegate_to: localhost`` or ``connection: local``),
never the ``oob`` CLI.  Every oob error is one line and its exit code, never a traceback.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # type: ignore[import-untyped]

try:
    import oob.api
    from oob.errors import OobError, UsageError
    from oob.safetext import printable
except ImportError:
    OOB_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    OOB_IMPORT_ERROR = None

#: the host selection and what every oob run takes
COMMON_ARGS: dict[str, dict[str, Any]] = {
    "targets": {"type": "list", "elements": "str", "required": True},
    "inventory": {"type": "list", "elements": "path", "default": []},
    "via": {"type": "str", "choices": ["redfish", "ipmi"]},
    "insecure": {"type": "bool", "default": False},
    "parallel": {"type": "int", "default": 8},
}
AUDIT_ARGS: dict[str, dict[str, Any]] = {"audit_log": {"type": "path"}}
#: SSH to the hosts (preflight) and the dump servers (crash): paths only, never secrets
SSH_ARGS: dict[str, dict[str, Any]] = {
    "known_hosts": {"type": "path"},
    "accept_new_host_key": {"type": "bool", "default": False},
    "ssh_key": {"type": "list", "elements": "path", "default": [], "no_log": False},
    "ssh_config": {"type": "path"},
}

#: ``oob preflight`` exits 8 when a host is not ready (1 is oob's "internal error")
NOT_READY_EXIT = 8
USAGE_EXIT = 2


def argument_spec(*arg_groups: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = {}
    for group in arg_groups:
        spec.update(group)
    return spec


def new_module(spec: dict[str, dict[str, Any]]) -> AnsibleModule:
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if OOB_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("oob"), exception=OOB_IMPORT_ERROR, exit_code=USAGE_EXIT)
    if module.params["parallel"] < 1:
        module.fail_json(msg="parallel must be at least 1", exit_code=USAGE_EXIT)
    if module.params["insecure"]:
        targets = ", ".join(printable(t) for t in module.params["targets"])
        module.warn(f"insecure: the BMC certificates of {targets} are not verified")
    return module


def driver_options(params: Mapping[str, Any]) -> Any:
    from oob.runbook.methods import DriverOptions

    return DriverOptions(via=params["via"], insecure=params["insecure"])


def ssh_options(params: Mapping[str, Any]) -> Any:
    """Only what the parameters set, as the CLI's flags: the rest is the inventory's and
    ~/.ssh/config's."""
    from oob.ssh import SshOptions

    if params["ssh_config"] is not None:
        from pathlib import Path

        if not Path(params["ssh_config"]).is_file():
            raise UsageError(f"ssh_config: {params['ssh_config']} is not a readable file")
    return SshOptions(
        known_hosts=params["known_hosts"],
        accept_new_host_key=params["accept_new_host_key"],
        identity_files=tuple(params["ssh_key"]),
        config=(params["ssh_config"],) if params["ssh_config"] is not None else None,
    )


def seconds(name: str, value: Any, *, zero_ok: bool = False) -> float:
    """A duration parameter: a number of seconds, or oob's text (``90s``, ``15m``, ``1h30m``)."""
    from oob.cli.dumpopts import parse_duration

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UsageError(f"{name}: {printable(value)!r} is not a duration (like 90, 90s, 15m, 2h, 1h30m)")
    if isinstance(value, str):
        value = 0.0 if zero_ok and value.strip() == "0" else parse_duration(value, name)
    if value < 0 or (value == 0 and not zero_ok):
        raise UsageError(f"{name} must be more than 0 seconds")
    return float(value)


def plain(data: Any) -> Any:
    """JSON types only (oob's enums are str subclasses; Ansible gets plain values), as the
    CLI's ``--json`` writes them."""
    return json.loads(json.dumps(data, default=str))


def one_line(host: str, error: Any, status: str) -> str:
    """oob's own message for one host, its name first, with no control characters."""
    text = str(error) if error is not None else status
    if not text.startswith(f"{host}:"):
        text = f"{host}: {text}"
    return printable(text)


def run(module: AnsibleModule, work: Callable[[], dict[str, Any]]) -> None:
    """``work`` returns the module's result (``exit_code`` and ``msg`` included); an oob error
    before any host's result is a failure with its one line and exit code."""
    try:
        result = work()
    except OobError as exc:
        module.fail_json(msg=printable(str(exc)), exit_code=exc.exit_code, changed=False)
    except Exception as exc:  # noqa: BLE001 - a bug in oob or here: one line, not a traceback
        # whether an NMI left before it is not known here: the audit log says
        text = f"internal error: {type(exc).__name__}: {exc} (oob's audit log records every NMI sent)"
        module.fail_json(msg=printable(text), exit_code=1)
    if result["exit_code"] != 0:
        module.fail_json(**result)
    module.exit_json(**result)


def failures(rows: Sequence[tuple[str, int, Any, str]]) -> str:
    """One line naming each host that did not end well: (host, exit code, error, status)."""
    return "; ".join(one_line(host, error, status) for host, code, error, status in rows if code != 0)


__all__ = [
    "AUDIT_ARGS",
    "COMMON_ARGS",
    "NOT_READY_EXIT",
    "SSH_ARGS",
    "argument_spec",
    "driver_options",
    "failures",
    "new_module",
    "oob",
    "plain",
    "run",
    "seconds",
    "ssh_options",
]
