"""Runbooks: compose drivers, safety checks and the audit log. They never print."""
