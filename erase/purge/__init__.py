"""Firmware purge, hidden-area handling and the NIST SP 800-88 planner.

* :mod:`erase.purge.probe` asks the drive what it can do (hdparm, nvme-cli, sg3-utils) through the
  station's command runner and parses the answers (pure parsers, tested on recorded outputs);
* :mod:`erase.purge.rules` has one rule per firmware method (can it run here, the level it reaches
  *on this media*, its time, why not), in a table per protocol;
* :mod:`erase.purge.planner` turns a drive, its capabilities and a policy into an ordered plan of
  steps (:mod:`erase.purge.plan`): hidden areas first, then the first rule that purges, and every
  other method with the reason it is not used;
* :mod:`erase.purge.steps` runs firmware steps and never trusts an exit code: each step is followed
  by the drive's own status and a read-back of the data (:mod:`erase.purge.evidence`);
* :mod:`erase.purge.machine` says which machine commands go to: the real one, or a recorded one
  replayed from fixtures (``TABULA_REPLAY_MACHINE``), as a runner wrapper.
"""
