"""The command line itself: one-liners without an inventory, help and usage errors."""
