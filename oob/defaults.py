"""Defaults the command line shows in its help: plain constants, so that ``oob --help``
imports nothing else for them."""

#: hosts handled at once unless ``--parallel`` says otherwise: each host's work is one
#: conversation with its own BMC (never two at once with one BMC, each paced), so the bound is
#: this machine's, not the BMCs'.  Measured at 1,000 BMCs answering in 200 ms on 2 CPUs: 64
#: was bound by the BMCs' latency (18.5 s), 128 and 256 by this machine's CPU (12.3 s); at
#: real BMCs' slower answers the larger number gains the more (python -m oob.bench fanout)
DEFAULT_PARALLEL = 256
#: the most ``--parallel`` takes
MAX_PARALLEL = 1024
#: the most ``--workers`` takes (processes that plan and send; one per CPU is the sense of it)
MAX_WORKERS = 64
#: seconds a request in flight may still take after a stop signal, before it is ended
IN_FLIGHT_GRACE_S = 1.5
