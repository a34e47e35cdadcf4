"""Diagnostics: SMART, hardware inventory, quick tests and a reuse / repair / recycle verdict."""
