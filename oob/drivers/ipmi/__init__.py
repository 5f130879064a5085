"""IPMI 2.0 (RMCP+, lanplus) driver on pyghmi: power, NMI (chassis control 0x04), identity."""

from oob.drivers.ipmi.driver import IpmiDriver

__all__ = ["IpmiDriver"]
