"""VMware ESXi guests over SSH to their host: ``bmc.kind = "esxi"`` (see :mod:`.driver`)."""

from oob.drivers.esxi.driver import EsxiDriver

__all__ = ["EsxiDriver"]
