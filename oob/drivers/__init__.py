"""BMC drivers. Each translates its library's errors into :mod:`oob.errors` at its boundary."""
