"""The command line: thin Typer commands over :mod:`oob.runbook`.

Heavy libraries (requests, asyncssh, rich tables) are imported inside the commands so
that ``oob --help`` stays fast.
"""
