"""Inventories: which hosts exist, their BMCs, credential references and dump targets.

    from oob.inventory import load_inventory, inventory_paths
    inv = load_inventory(inventory_paths(cli_paths, os.environ))
    hosts = inv.select(["web*", "@db"])

Two formats: oob's own (TOML or YAML; see ``inventories/example.toml``) and Ansible YAML
inventories (see ``inventories/ansible-hosts.yaml`` and :mod:`oob.inventory.ansible`).
Every problem is an :class:`~oob.errors.InventoryError` of one line
``FILE[:LINE]: host 'NAME': key 'KEY': PROBLEM``; values of passwords are never shown.
"""

from oob.inventory.loader import ENV_VAR, Inventory, inventory_paths, load_inventory
from oob.secrets import check_secrets

__all__ = ["ENV_VAR", "Inventory", "check_secrets", "inventory_paths", "load_inventory"]
