"""Redfish driver: python-redfish-library behind oob's own error tree and retry policy."""
