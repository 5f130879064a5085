#!/usr/bin/python
# Apache-2.0 (see the oob project's licence)
"""oob_preflight: will a dump be written if these hosts hang? Changes nothing."""

from __future__ import annotations

from typing import Any

DOCUMENTATION = r"""
module: oob_preflight
short_description: Check that a crash dump would be written (BMC and kdump readiness), per host
description:
  - Runs oob's C(preflight) through oob's library API (never the C(oob) command). Per host, the
    BMC side (reachable, credentials, TLS as configured, power, NMI offered and how, open
    sessions) and, over SSH to the host (C(ssh.user@address:ssh.port) from the inventory), its
    kdump readiness (crashkernel, kexec_crash_loaded, NMI sysctls, kernel.panic, the kdump
    service, the dump target, free space, hpwdt).
  - Changes nothing on any host or BMC, so C(changed) is always false and check mode runs it
    as it is.
  - The task fails (exit code 8, as C(oob preflight)) when a host is not ready (a failed check,
    or with O(strict) a warning). The results are returned either way; use C(failed_when) to
    collect readiness without failing.
  - Runs where oob is installed, normally the controller (a task with C(delegate_to) localhost, or
    C(connection) local).
version_added: "0.1.0"
author: oob
requirements:
  - oob (its Python package) in the Python that runs the module (C(ansible_python_interpreter))
extends_documentation_fragment:
  - oob.oob.options.common
  - oob.oob.options.ssh
options:
  strict:
    description: Count warnings as not ready too.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The module changes nothing; it runs the same in check mode.
"""

EXAMPLES = r"""
- name: Would these hosts write a dump tonight?
  oob.oob.oob_preflight:
    targets: ["@db"]
    inventory: [/etc/oob/inventory.toml]
  delegate_to: localhost
  run_once: true
  register: readiness
  failed_when: false

- name: The hosts that are not ready
  ansible.builtin.debug:
    msg: "{{ readiness.summary.not_ready }}"
"""

RETURN = r"""
ready:
  description: Every host is ready.
  returned: when the hosts were selected
  type: bool
results:
  description: One readiness object per host, oob's own (as C(oob preflight --json)).
  returned: when the hosts were selected
  type: list
  elements: dict
  contains:
    host: {description: The inventory host., type: str}
    ready: {description: No check failed (with O(strict), none warned)., type: bool}
    distro: {description: "C(rhel), C(suse) or C(debian), as seen over SSH.", type: str}
    checks:
      description: "Each check: C(check), C(side) (C(bmc) or C(host)), C(status) (C(ok), C(warn), C(fail), C(skip)), C(reason), C(needs_root)."
      type: list
      elements: dict
  sample:
    - host: web42
      ready: true
      distro: rhel
      checks:
        - {check: power, side: bmc, status: ok, reason: power On, needs_root: false}
summary:
  description: "C(hosts), C(ready) (a count), C(not_ready) (their names), C(exit_code)."
  returned: when the hosts were selected
  type: dict
exit_code:
  description: 0 when every host is ready, 8 when one is not, 2 for bad input.
  returned: always
  type: int
msg:
  description: Each host that is not ready, with its failed checks and why.
  returned: on failure
  type: str
"""

from ansible_collections.oob.oob.plugins.module_utils.oob_common import (  # noqa: E402
    COMMON_ARGS,
    NOT_READY_EXIT,
    SSH_ARGS,
    argument_spec,
    driver_options,
    new_module,
    plain,
    run,
    ssh_options,
)

ARGUMENT_SPEC = argument_spec(COMMON_ARGS, SSH_ARGS, {"strict": {"type": "bool", "default": False}})


def main() -> None:
    module = new_module(ARGUMENT_SPEC)
    params = module.params

    def work() -> dict[str, Any]:
        import oob.api
        from oob.preflight.checks import FAIL
        from oob.safetext import printable

        report = oob.api.preflight(
            params["targets"],
            inventory=params["inventory"],
            driver=driver_options(params),
            ssh=ssh_options(params),
            strict=params["strict"],
            parallel=params["parallel"],
        )
        summary = report.summary()
        # the runbook's per-host code is 1 for "not ready"; 1 is oob's internal error
        exit_code = NOT_READY_EXIT if report.exit_code == 1 else report.exit_code
        summary["exit_code"] = exit_code
        result = {
            "changed": False,
            "ready": all(h.ready for h in report.hosts),
            "results": plain([h.to_dict() for h in report.hosts]),
            "summary": plain(summary),
            "exit_code": exit_code,
        }
        if exit_code:
            result["msg"] = "; ".join(
                printable(
                    f"{h.host}: not ready: "
                    + ", ".join(f"{c.name}: {c.reason}" for c in h.problems if h.strict or c.status == FAIL)
                )
                for h in report.hosts
                if not h.ready
            )
        return result

    run(module, work)


if __name__ == "__main__":
    main()
