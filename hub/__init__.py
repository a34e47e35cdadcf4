"""Tabula hub: the central traceability service that stations upload their signed certificates to.

Run it with ``station-hub serve --db URL``; see :mod:`hub.cli` for the admin commands and
``hub/README.md`` for the API, the trust model and the DeviceHub export.
"""
