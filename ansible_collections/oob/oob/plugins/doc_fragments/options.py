"""Options every oob module shares, documented once (``extends_documentation_fragment``)."""

from __future__ import annotations


class ModuleDocFragment:
    # common: targets, inventory, via, insecure, parallel
    COMMON = r"""
options:
  targets:
    description: Hosts, as oob selects them (names, globs, C(@group), ranges such as C(node[01-20]), C(all)).
    type: list
    elements: str
    required: true
  inventory:
    description:
      - oob inventory files (TOML, YAML, or an Ansible YAML inventory, read as it is).
      - Default C($OOB_INVENTORY) of the module's environment (a C(:)-separated list).
    type: list
    elements: path
    default: []
  via:
    description: Use (or check) one method instead of the inventory's order.
    type: str
    choices: [redfish, ipmi]
  insecure:
    description: Do not verify the BMCs' TLS certificates (a warning names the targets).
    type: bool
    default: false
  parallel:
    description: Hosts worked on at once.
    type: int
    default: 8
"""

    # audit: audit_log
    AUDIT = r"""
options:
  audit_log:
    description:
      - oob's audit log, where every NMI is recorded and where the repeat guard looks.
      - Default C($OOB_AUDIT_LOG), else C(~/.local/state/oob/audit.jsonl).
    type: path
"""

    # ssh: known_hosts, accept_new_host_key, ssh_key, ssh_config
    SSH = r"""
options:
  known_hosts:
    description: known_hosts file for SSH to the hosts and dump servers (default the inventory's C(ssh.known_hosts), then ~/.ssh's).
    type: path
  accept_new_host_key:
    description: Trust an SSH server whose key is not in known_hosts yet, and record it (a changed key is still refused).
    type: bool
    default: false
  ssh_key:
    description: Private key files for SSH (default the inventory's C(ssh.key), the agent, ~/.ssh/id_*).
    type: list
    elements: path
    default: []
  ssh_config:
    description: OpenSSH client configuration file (default C($OOB_SSH_CONFIG), else ~/.ssh/config).
    type: path
"""
