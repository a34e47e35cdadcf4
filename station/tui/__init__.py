"""Tabula's terminal user interface (Textual).

Only this package imports Textual: the rest of the station stays importable without it, and so do
the modules of this package that compute what the screens show (:mod:`station.tui.model`).
:func:`station.tui.run.run` is what ``station`` (no arguments) and ``station demo`` call; tests build
the app with :func:`station.tui.app.create_app`.
"""
