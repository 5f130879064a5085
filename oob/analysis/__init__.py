"""Why the host hung: reading the kernel log a dump saved, and handing over to ``crash``."""
