"""Running the TUI until the technician quits."""

from __future__ import annotations

import sys
from pathlib import Path

from station.i18n import _
from station.tui.app import create_app


def run(*, jobs_root: Path, include_loop: bool = False, lang: str | None = None, demo: bool = False) -> int:
    """Run the TUI until the technician quits; erasures keep running in their own processes."""
    app = create_app(jobs_root=jobs_root, include_loop=include_loop, lang=lang, demo=demo)
    code = app.run()
    app.stop_sync(timeout=5.0)  # let an upload in flight record its answer (the outbox keeps the rest)
    running = app.running_jobs()
    if running:
        print(
            _("{n} erasure(s) still running in the background. Start Tabula again to follow them.").format(
                n=running
            ),
            file=sys.stderr,
        )
    return code if isinstance(code, int) else 0
