"""Tabula station: drive discovery, protection, job orchestration, CLI and TUI."""

__version__ = "0.1.0"
