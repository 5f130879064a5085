"""libvirt driver: KVM/QEMU and Xen (libxl) guests through their hypervisor's libvirt.

Importing this package does not import Python's libvirt binding; building a driver does
(:mod:`oob.drivers.libvirt.binding`)."""

from oob.drivers.libvirt.driver import LibvirtDriver

__all__ = ["LibvirtDriver"]
