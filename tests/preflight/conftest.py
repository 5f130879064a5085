"""The inventory fixtures of tests/inventory, for the ssh.* keys."""

from tests.inventory.conftest import load, load_error, write  # noqa: F401
