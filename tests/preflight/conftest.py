"""The inventory fixtures of tests/inventory, for the ssh.* keys."""

from tests.dump.conftest import ssh_options, sshd  # noqa: F401 - the real sshd fixtures of tests/dump
from tests.inventory.conftest import load, load_error, write  # noqa: F401
