"""Smoke run of bench/hub_scale.py (a few hundred certificates): the benchmark itself keeps working.

The real figures (up to a million certificates) come from running the script by hand; see
hub/README.md.  This needs PostgreSQL (skipped without it, except in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.testing import PostgresUnavailable, _pg_bin

ROOT = Path(__file__).resolve().parent.parent


def test_the_scale_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    try:
        _pg_bin("initdb")
    except PostgresUnavailable as e:
        if "CI" in os.environ:
            pytest.fail(e.message)
        pytest.skip(e.message)
    out = tmp_path / "scale.json"
    argv = [sys.executable, "bench/hub_scale.py", "--stations", "4", "--sizes", "200,400"]
    argv += [
        "--concurrency",
        "4",
        "--http-sample",
        "40",
        "--lookups",
        "20",
        "--workers",
        "2",
        "--batch",
        "10",
        "--json",
        str(out),
    ]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "ingest, 2 hub processes" in r.stdout and "lookup verify_page" in r.stdout
    results = json.loads(out.read_text())
    assert [x["count"] >= x["size"] for x in results] == [True, True]
    for x in results:
        assert x["broken_links"] == 0
        for key in ("ingest_1_hub", "ingest_2_hubs"):  # (per request, rate, load, CPU), A/B
            assert [run[0] for run in x[key]] == [0, 10] and all(run[1] > 0 for run in x[key])
            assert all(run[3]["hub"] > 0 for run in x[key])  # CPU per certificate, where it went
        assert set(x["lookups"]) == {"id", "serial", "asset_number", "station", "verify_page"}
        assert set(x["recent_station"]) == {"ingesting process", "fresh process"}
        assert 1000 < x["bytes_per_certificate"] < 100_000
