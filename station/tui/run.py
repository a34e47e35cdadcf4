"""Running the TUI until the technician quits."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from station.i18n import _
from station.tui.app import create_app


def run(
    *,
    jobs_root: Path,
    include_loop: bool = False,
    lang: str | None = None,
    demo_drives: Mapping[str, str] | None = None,
) -> int:
    """Run the TUI until the technician quits; erasures keep running in their own processes (except
    the demo's: its drives go away with it, so its erasures are stopped when it quits)."""
    app = create_app(jobs_root=jobs_root, include_loop=include_loop, lang=lang, demo_drives=demo_drives)
    code = app.run()
    app.stop_sync(timeout=5.0)  # let an upload in flight record its answer (the outbox keeps the rest)
    running = 0 if app.demo else app.running_jobs()
    if running:
        print(
            _("{n} erasure(s) still running in the background. Start Tabula again to follow them.").format(
                n=running
            ),
            file=sys.stderr,
        )
    return code if isinstance(code, int) else 0
