"""benchmarks/bench_training.py end to end: the quick run finishes and prints its tables.

Trains for about half a minute on real Fashion-MNIST (env SEARCH_TEST_FASHION_DIR, handed to the
script as SEARCH_DATA_DIR; missing files skip the test, or fail it under CI=true): `slow`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_benchmarks import fashion_dir, fashion_env

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_training.py"
QUICK_MODEL = "784-380-210-10"
QUICK_VARIANTS = ("objective", "fit", "fit+val", "fit spe=8", "fit spe=32", "fit jit")


@pytest.mark.slow
def test_bench_training_quick_prints_table_rows() -> None:
    folder = fashion_dir()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-record"],
        cwd=ROOT,
        env=fashion_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"the quick run failed:\n{result.stderr[-3000:]}"
    lines = result.stdout.splitlines()
    data = next((line for line in lines if line.startswith("data: ")), "")
    assert data.startswith("data: Fashion-MNIST from "), f"not the real files: {data}"
    assert Path(data.split(" from ", 1)[1].split(";")[0]).resolve() == Path(folder).resolve()
    header = next((line for line in lines if "s/epoch" in line and "% of peak" in line), None)
    assert header is not None, f"the speed table's header is missing:\n{result.stdout}"
    # Columns are separated by two or more spaces; variant names hold single spaces.
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines if line.startswith(QUICK_MODEL)]
    rows = {row[2]: row for row in cells if len(row) >= 8}
    for variant in QUICK_VARIANTS:
        assert variant in rows, f"no table row for variant {variant!r}:\n{result.stdout}"
        seconds = float(rows[variant][3])
        assert seconds > 0, f"{variant!r}: s/epoch must be a positive time, got {seconds}"
    assert "storage writes" in result.stdout, "the per-trial overhead table is missing"
    assert "peak:" in result.stdout, "the measured matmul peak is not printed"
    assert "Fastest plain-fit setting" in result.stdout, "the per-shape recommendation is missing"
    assert "not recorded (--no-record)" in result.stdout, "--no-record must not append results"


def test_bench_training_help_documents_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for flag in ("--epochs", "--limit-train", "--models", "--quick", "--no-record", "--data-dir"):
        assert flag in result.stdout, f"--help does not document {flag}"
