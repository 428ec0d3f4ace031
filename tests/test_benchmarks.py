"""The benchmark scripts run end to end in their quick mode and print the rows they promise.

Each script runs as users run it (`python benchmarks/bench_X.py`) in a fresh process, with
--no-record so benchmarks/RESULTS.md and memory.png are left alone. About 1.5 minutes in all on
2 cores.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def _run(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _table_row(stdout: str, *cells: str) -> str | None:
    """The first table line whose leading cells are `cells`."""
    for line in stdout.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if line.startswith("|") and parts[: len(cells)] == list(cells):
            return line
    return None


def test_bench_storage_quick_prints_a_checked_row_per_backend_and_worker_count():
    result = _run(
        "bench_storage.py", "--quick", "--no-record", "--backends", "sqlite", "postgresql"
    )
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    for backend in ("sqlite", "postgresql"):
        for workers in ("1", "8"):
            row = _table_row(result.stdout, backend, workers)
            assert row is not None, f"no row for {backend} x {workers} in:\n{result.stdout}"
            # A server that is down makes a SKIPPED row; otherwise the number check must pass.
            assert row.rstrip(" |").endswith(("PASS", "SKIPPED")), f"row not checked: {row}"
    sqlite_row = _table_row(result.stdout, "sqlite", "8")
    assert re.search(r"\| 160/160 +\|", sqlite_row), (
        f"8 workers x 20 trials not all told: {sqlite_row}"
    )
    assert "ask p50/p99 ms" in result.stdout, "the table names its units"


def test_bench_storage_reports_an_unreachable_server_as_skipped():
    result = _run(
        "bench_storage.py",
        "--no-record",
        "--backends",
        "postgresql",
        "--workers",
        "1",
        "--trials-per-worker",
        "1",
        "--postgresql-admin-url",
        "postgresql+psycopg://postgres@127.0.0.1:1/test",  # nothing listens on port 1
        timeout=60,
    )
    assert result.returncode == 0, f"a skipped backend is no failure:\n{result.stderr}"
    row = _table_row(result.stdout, "postgresql", "1")
    assert row is not None and "SKIPPED" in row, f"no skipped row in:\n{result.stdout}"
    assert "skipped: postgresql server at" in result.stdout, "the reason is printed"


def test_bench_memory_quick_prints_rss_of_both_modes_growth_and_plot(tmp_path: Path):
    png = tmp_path / "memory.png"
    result = _run("bench_memory.py", "--quick", "--no-record", "--plot", str(png))
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    for trial in ("1", "10", "16"):
        row = _table_row(result.stdout, trial)
        assert row is not None, f"no RSS row after trial {trial} in:\n{result.stdout}"
        figures = re.findall(r"\| +[+-]?\d+\.\d +", row)
        assert len(figures) == 4, f"RSS and change of both modes: {row}"
    assert _table_row(result.stdout, "50") is None, "16 quick trials print no trial-50 row"
    for mode in ("service", "in-process"):
        assert re.search(
            rf"- {mode}: growth from trial 10 to the highest RSS after it: [+-]\d+\.\d MB",
            result.stdout,
        ), result.stdout
    assert "a fresh worker process every 6 trials" in result.stdout
    assert png.stat().st_size > 1000, "the RSS plot was drawn"


def test_bench_search_quick_compares_all_four_methods_and_draws_them(tmp_path: Path):
    png = tmp_path / "search.png"
    result = _run("bench_search.py", "--quick", "--no-record", "--plot", str(png), timeout=400)
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    for method in ("service", "tpe-nopruning", "random-median", "kerastuner"):
        row = _table_row(result.stdout, method, "1")
        assert row is not None, f"no summary row for {method} in:\n{result.stdout}"
        best = row.split("|")[3].strip()
        assert re.fullmatch(r"0\.\d{4}", best), f"{method} finished no trial in 20 s: {row}"
    assert "trials per hour, service vs TPE without pruning" in result.stdout
    assert png.stat().st_size > 1000, "the best-so-far plot was drawn"
