#!/usr/bin/python
# Apache-2.0 (see the oob project's licence)
"""oob_nmi: one NMI per host through its BMC, with oob's safety checks."""

from __future__ import annotations

from typing import Any

DOCUMENTATION = r"""
module: oob_nmi
short_description: Send one non-maskable interrupt (NMI) per host through its BMC
description:
  - Runs oob's C(nmi) runbook through oob's library API (never the C(oob) command). It plans every
    host (BMC reachable, credentials work, power On, NMI offered), then sends B(one) NMI per host
    by the first method that can (the inventory's C(bmc.methods), Redfish then IPMI).
  - Calling the module is the confirmation, as C(oob nmi --yes).
  - An NMI is never sent twice. A host that got one within the last 15 minutes (oob's audit log
    says so) is refused with oob's message and the task fails; nothing is resent. Set
    O(allow_repeat) to send another on purpose.
  - A request that left without an answer is reported as outcome unknown (exit code 6) and
    B(not) resent.
  - Check mode is oob's dry run: every host is planned, no NMI is sent.
  - Runs where oob is installed, normally the controller (a task with C(delegate_to) localhost, or
    C(connection) local); BMC passwords come from the inventory's references
    (C(env:), C(file:), C(keyring:)), never from module arguments.
version_added: "0.1.0"
author: oob
requirements:
  - oob (its Python package) in the Python that runs the module (C(ansible_python_interpreter))
extends_documentation_fragment:
  - oob.oob.options.common
  - oob.oob.options.audit
options:
  allow_repeat:
    description: Send even to a host that got an NMI within the last 15 minutes.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: oob's dry run, nothing is sent.
notes:
  - Select several hosts in one task (O(targets)) with C(run_once), rather than one task per host,
    so that oob sees them together (two hosts behind one BMC are refused).
"""

EXAMPLES = r"""
- name: NMI the hung host (one NMI, recorded in oob's audit log)
  oob.oob.oob_nmi:
    targets: [web42]
    inventory: [/etc/oob/inventory.toml]
  delegate_to: localhost
  register: nmi

- name: The hosts of this play, from the very Ansible inventory it runs with
  oob.oob.oob_nmi:
    targets: "{{ ansible_play_hosts }}"
    inventory: ["{{ inventory_file }}"]
  delegate_to: localhost
  run_once: true

- name: Plan only
  oob.oob.oob_nmi:
    targets: ["@rack7"]
  check_mode: true
  delegate_to: localhost
"""

RETURN = r"""
results:
  description: One object per host, oob's own report (as C(oob nmi --json)).
  returned: when the hosts were selected
  type: list
  elements: dict
  sample:
    - host: web42
      action: nmi
      status: ok
      via: redfish
      at: "2026-11-30T05:40:01.123+00:00"
      exit_code: 0
sent:
  description: The hosts an NMI was sent to (also those whose answer never came, status C(unknown)).
  returned: when the hosts were selected
  type: list
  elements: str
exit_code:
  description: oob's exit code (the worst of the hosts'); 0 when every host is done, 7 refused for safety, 6 outcome unknown...
  returned: always
  type: int
msg:
  description: oob's one-line message for each host that did not end well.
  returned: on failure
  type: str
"""

from ansible_collections.oob.oob.plugins.module_utils.oob_common import (  # noqa: E402
    AUDIT_ARGS,
    COMMON_ARGS,
    argument_spec,
    failures,
    new_module,
    plain,
    run,
)

ARGUMENT_SPEC = argument_spec(COMMON_ARGS, AUDIT_ARGS, {"allow_repeat": {"type": "bool", "default": False}})


def main() -> None:
    module = new_module(ARGUMENT_SPEC)
    params = module.params

    def work() -> dict[str, Any]:
        import oob.api

        outcomes = oob.api.nmi(
            params["targets"],
            inventory=params["inventory"],
            audit_log=params["audit_log"],
            via=params["via"],
            insecure=params["insecure"],
            dry_run=module.check_mode,
            allow_repeat=params["allow_repeat"],
            parallel=params["parallel"],
        )
        sent = [o.host for o in outcomes if o.status in ("ok", "unknown") and not module.check_mode]
        exit_code = max((o.exit_code for o in outcomes), default=0)
        result = {
            "changed": bool(sent),
            "results": plain([o.to_dict() for o in outcomes]),
            "sent": sent,
            "exit_code": exit_code,
        }
        if exit_code:
            result["msg"] = failures([(o.host, o.exit_code, o.error, str(o.status)) for o in outcomes])
        return result

    run(module, work)


if __name__ == "__main__":
    main()
