"""The bottom layer: what Tabula knows of the machine it runs on.

* :mod:`host.errors`: the root of every Tabula error (:class:`~host.errors.TabulaError`), and the
  errors of this layer;
* :mod:`host.runner`: the one place that runs external commands, with its replay, recording and
  dry-run wrappers;
* :mod:`host.identity`, :mod:`host.drives`, :mod:`host.protection`: what a drive is, which drives
  the machine has, and which of them must never be touched;
* :mod:`host.paths`: where the station keeps its state.

Every other package may import this one; this one imports none of them (see the import-linter
contracts in pyproject.toml).
"""
