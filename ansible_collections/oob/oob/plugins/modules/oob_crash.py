#!/usr/bin/python
# Apache-2.0 (see the oob project's licence)
"""oob_crash: the whole runbook for hung hosts: one NMI, the dump watched to its end, why it hung."""

from __future__ import annotations

from typing import Any

DOCUMENTATION = r"""
module: oob_crash
short_description: Crash hung hosts through their BMC and collect their kdump (oob's whole runbook)
description:
  - Runs oob's C(crash) runbook through oob's library API (never the C(oob) command), per host -
    preflight (the BMC answers, power On, NMI offered, the host B(looks hung) - its probe does
    not answer, the dump target is readable and a baseline of its dumps is taken), B(one) NMI,
    then the dump watched until complete, stalled, failed or O(timeout), then the host waited
    for (O(reboot_grace)). The result says where the dump is, its state and why the host hung
    (C(dump.analysis.verdict), from the kernel log the dump saved).
  - Calling the module is the confirmation, as C(oob crash --yes).
  - An NMI is never sent twice. A host that got one within the last 15 minutes (oob's audit log)
    is refused with oob's message and the task fails; nothing is resent (O(allow_repeat) to send
    another on purpose). A host that looks healthy is refused unless O(force).
  - Check mode is oob's dry run, every host is planned and probed, no NMI is sent.
  - Runs where oob is installed, normally the controller (a task with C(delegate_to) localhost, or
    C(connection) local); the dump targets must be reachable from there.
version_added: "0.1.0"
author: oob
requirements:
  - oob (its Python package) in the Python that runs the module (C(ansible_python_interpreter))
extends_documentation_fragment:
  - oob.oob.options.common
  - oob.oob.options.audit
  - oob.oob.options.ssh
options:
  timeout:
    description: Give up on the dump after this long, in seconds or oob's durations (C(90s), C(30m), C(1h)).
    type: raw
    default: 30m
  stall_after:
    description: Report a dump stalled after this long without growth.
    type: raw
    default: 2m
  stall_grace:
    description: Keep waiting this much longer for a stalled dump to grow again.
    type: raw
    default: 0
  interval:
    description: Seconds between two looks at each dump target.
    type: float
    default: 0.5
  reboot_grace:
    description: How long to wait for the host to come back after its dump (C(0) - do not wait).
    type: raw
    default: 5m
  probe_timeout:
    description: Seconds the host's probe may take to answer.
    type: float
    default: 3.0
  force:
    description: Crash a host that looks healthy (or cannot be probed).
    type: bool
    default: false
  allow_repeat:
    description: Crash even a host that got an NMI within the last 15 minutes.
    type: bool
    default: false
  recover:
    description: Power-cycle a host that never dumps or does not come back after its dump; power on one that powered off after it.
    type: bool
    default: false
  notify:
    description:
      - Where each host's outcome is posted (NMI sent, dump complete with its verdict, failed,
        stalled), as C(oob crash --notify) - C(FORMAT=REFERENCE) with FORMAT C(generic), C(slack)
        or C(pagerduty) (C(pagerduty=REF@URL) for another endpoint), the URL or key by reference
        only (C(env:VAR), C(file:PATH), C(keyring:SERVICE/USER)).
      - The inventory's C(notify) of each host (C(oob_notify) in an Ansible inventory) is posted
        to as well. A delivery that fails is a warning, never a failure of the task.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: oob's dry run, nothing is sent.
notes:
  - Select several hosts in one task (O(targets)) with C(run_once), rather than one task per host,
    so that oob sees them together (two hosts behind one BMC are refused).
  - The task takes as long as the dump (up to O(timeout)) plus the reboot (up to O(reboot_grace));
    use C(async) for long ones.
"""

EXAMPLES = r"""
- name: Crash the hung host, collect its dump and say why it hung
  oob.oob.oob_crash:
    targets: [web42]
    inventory: [/etc/oob/inventory.toml]
    timeout: 30m
    recover: true
  delegate_to: localhost
  register: crash

- name: Why it hung
  ansible.builtin.debug:
    msg: "{{ crash.results[0].dump.analysis.verdict.headline }} at {{ crash.results[0].dump.location }}"
"""

RETURN = r"""
results:
  description: One object per host, oob's own report (as C(oob crash --json)'s C(result) lines).
  returned: when the hosts were selected
  type: list
  elements: dict
  contains:
    status:
      description: C(complete), C(dry-run), C(refused), C(failed), C(unknown), C(stalled), C(timeout), C(interrupted).
      type: str
    nmi_at: {description: When the NMI was sent., type: str}
    dump:
      description: "The dump - C(location), C(path), C(state), C(size), C(panic) lines, and C(analysis) (C(verdict) - C(kind), C(headline), C(culprit), C(cpu), C(task), C(confidence); C(findings))."
      type: dict
    host_back: {description: The host answered its probe again after its dump., type: bool}
    after_dump: {description: "C(back), C(not_back) or C(powered_off_after_dump).", type: str}
summary:
  description: "C(hosts), C(by_status) (a count per status), C(exit_code)."
  returned: when the hosts were selected
  type: dict
sent:
  description: The hosts an NMI was sent to (also those whose answer never came, status C(unknown)).
  returned: when the hosts were selected
  type: list
  elements: str
exit_code:
  description: oob's exit code (the worst of the hosts'); 0 when every dump is complete, 5 no complete dump, 7 refused...
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
    SSH_ARGS,
    argument_spec,
    driver_options,
    failures,
    new_module,
    plain,
    run,
    seconds,
    ssh_options,
)

CRASH_ARGS: dict[str, dict[str, Any]] = {
    "timeout": {"type": "raw", "default": "30m"},
    "stall_after": {"type": "raw", "default": "2m"},
    "stall_grace": {"type": "raw", "default": 0},
    "interval": {"type": "float", "default": 0.5},
    "reboot_grace": {"type": "raw", "default": "5m"},
    "probe_timeout": {"type": "float", "default": 3.0},
    "force": {"type": "bool", "default": False},
    "allow_repeat": {"type": "bool", "default": False},
    "recover": {"type": "bool", "default": False},
    # references only (oob refuses a URL or key given as it is)
    "notify": {"type": "list", "elements": "str", "default": [], "no_log": False},
}

ARGUMENT_SPEC = argument_spec(COMMON_ARGS, AUDIT_ARGS, SSH_ARGS, CRASH_ARGS)


def main() -> None:
    module = new_module(ARGUMENT_SPEC)
    params = module.params

    def work() -> dict[str, Any]:
        import oob.api
        from oob.dump.watcher import WatchOptions
        from oob.errors import UsageError
        from oob.events import discard
        from oob.notify import notifier_for
        from oob.safetext import printable

        if params["probe_timeout"] < 0.1:
            raise UsageError("probe_timeout must be at least 0.1 seconds")
        watch = WatchOptions(
            interval=params["interval"],
            stall_after=seconds("stall_after", params["stall_after"]),
            stall_grace=seconds("stall_grace", params["stall_grace"], zero_ok=True),
            timeout=seconds("timeout", params["timeout"]),
        )
        reboot_grace_s = seconds("reboot_grace", params["reboot_grace"], zero_ok=True)
        # each host's own `notify` is in the inventory, so the hosts are needed first; every
        # reference is resolved now (exit 2 before anything is sent)
        hosts = oob.api.select_hosts(params["targets"], params["inventory"])
        notifier = notifier_for(params["notify"], "oob crash", hosts)
        try:
            report = oob.api.crash(
                params["targets"],
                inventory=params["inventory"],
                audit_log=params["audit_log"],
                on_event=notifier.wrap(discard),
                driver=driver_options(params),
                watch=watch,
                ssh=ssh_options(params),
                dry_run=module.check_mode,
                force=params["force"],
                allow_repeat=params["allow_repeat"],
                recover=params["recover"],
                reboot_grace_s=reboot_grace_s,
                probe_timeout_s=params["probe_timeout"],
                parallel=params["parallel"],
            )
        finally:
            # deliveries get a few seconds; a failed one is a warning, never the task's failure
            for line in notifier.close():
                module.warn(printable(line))
        sent = [o.host for o in report.outcomes if o.nmi_at or o.status == "unknown"]
        result = {
            "changed": bool(sent),
            "results": plain([o.to_dict() for o in report.outcomes]),
            "summary": plain(report.summary()),
            "sent": sent,
            "exit_code": report.exit_code,
        }
        if report.exit_code:
            result["msg"] = failures([(o.host, o.exit_code, o.error, str(o.status)) for o in report.outcomes])
        return result

    run(module, work)


if __name__ == "__main__":
    main()
