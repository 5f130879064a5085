"""Redfish driver: the little Redfish oob needs, on requests, with one origin per BMC
(see transport.py for why not python-redfish-library)."""
