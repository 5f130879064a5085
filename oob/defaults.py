"""Defaults the command line shows in its help: plain constants, so that ``oob --help``
imports nothing else for them."""

#: hosts handled at once unless ``--parallel`` says otherwise: each host's work is one
#: conversation with its own BMC (never two at once with one BMC, each paced), so the bound is
#: this machine's, not the BMCs'; 64 threads waiting on BMCs cost little
DEFAULT_PARALLEL = 64
#: the most ``--parallel`` takes
MAX_PARALLEL = 1024
