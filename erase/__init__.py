"""Overwrite engine, verification, per-drive journal and worker (NIST SP 800-88 Clear)."""
