"""Diagnostics: SMART, hardware inventory, quick tests and a reuse / repair / recycle verdict.

Public entry points:

* :func:`diagnostics.health.drive_health` ``(device_path, runner) -> DriveHealth`` - SMART status
  (passed / failed / unknown), key attributes and the drive verdict; ``to_dict()`` is what
  certificates embed.
* :func:`diagnostics.smart.read_smart`, :func:`diagnostics.smart.run_self_test` - smartctl JSON
  through the runner; self-tests confirmed from the self-test log, cancellable, abortable.
* :func:`diagnostics.inventory.collect_inventory` - DMI, CPU, RAM modules, storage, GPU, network,
  battery wear, displays (EDID); what cannot be read is listed in ``unavailable``.
* :mod:`diagnostics.hwtests` - bounded, cancellable CPU / RAM / drive-read / battery tests.
* :mod:`diagnostics.grading` + ``diagnostics/rules.toml`` - the documented, configurable rules.
* :func:`diagnostics.diagnose.diagnose` and :mod:`diagnostics.cli` - ``station diagnose``.
"""
