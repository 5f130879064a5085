"""A fleet of mock Redfish BMCs on loopback, built from real vendor captures.

Start one from Python with :class:`mocks.fleet.Fleet`, from a shell with
``python -m mocks serve``, or in pytest with the fixtures of :mod:`mocks.pytest_plugin`.
"""
