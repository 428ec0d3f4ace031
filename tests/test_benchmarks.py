"""The benchmark scripts run end to end in their quick mode and print the figures they promise.

Each script runs as users run it (`python benchmarks/bench_X.py`) in a fresh process, with
--no-record so benchmarks/RESULTS.md and the PNGs are left alone. The real Fashion-MNIST files
come from env SEARCH_TEST_FASHION_DIR (handed to the scripts as SEARCH_DATA_DIR) and the database
servers are those of tests/conftest.py; without them a test skips with the reason, or fails
under CI=true. About 3 minutes in all on 2 cores.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import _admin_engine, missing, postgres_in_use

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # worker processes, real servers or scripts
BENCHMARKS = ROOT / "benchmarks"
FASHION_TRAIN = "train-images-idx3-ubyte"


def fashion_dir() -> str:
    """The real Fashion-MNIST folder: env SEARCH_TEST_FASHION_DIR, else SEARCH_DATA_DIR."""
    folder = os.environ.get("SEARCH_TEST_FASHION_DIR") or os.environ.get("SEARCH_DATA_DIR")
    if not folder:
        missing("real Fashion-MNIST: set SEARCH_TEST_FASHION_DIR to a folder with its IDX files")
    if not any((Path(folder) / f"{FASHION_TRAIN}{ext}").is_file() for ext in (".gz", "")):
        missing(f"real Fashion-MNIST: no {FASHION_TRAIN}.gz in {folder} (SEARCH_TEST_FASHION_DIR)")
    return folder


def fashion_env() -> dict[str, str]:
    """This environment with SEARCH_DATA_DIR set to the real Fashion-MNIST folder."""
    return {**os.environ, "SEARCH_DATA_DIR": fashion_dir()}


def _run(
    script: str, *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The script in a fresh process. The timeout only guards against a hang: the quick modes
    take 0.5 to 3 minutes here, and a busy CI machine (the suite runs two tests at a time) has
    taken nearly twice that."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=ROOT,
        env=env,
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


def test_bench_storage_quick_measures_every_backend_and_worker_count():
    with postgres_in_use():  # not while another test stops the server
        result = _run("bench_storage.py", "--quick", "--no-record")
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    assert "ask p50/p99 ms" in result.stdout, "the table names its units"
    latency = r"\d+\.\d / \d+\.\d"
    unreachable = []
    for backend in ("sqlite", "postgresql", "mysql", "proxy"):
        for workers, trials in (("1", 20), ("8", 160)):
            row = _table_row(result.stdout, backend, workers)
            assert row is not None, f"no row for {backend} x {workers} in:\n{result.stdout}"
            if row.rstrip(" |").endswith("SKIPPED"):
                unreachable.append(backend)
                continue
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            told, startup, wall, rate, stale, *latencies, errors, refused, peak, check = cells[2:]
            assert told == f"{trials}/{trials}", f"{workers} x 20 trials not all told: {row}"
            assert float(wall) > 0 and float(rate) > 0 and float(startup) >= 0, row
            # Behind the proxy the proxy checks for stale trials, not each worker.
            assert stale == "-" if backend == "proxy" else re.fullmatch(latency, stale), row
            assert all(re.fullmatch(latency, cell) for cell in latencies), row
            assert refused == "0", f"no connection refused at {workers} workers: {row}"
            assert peak == "-" if backend == "sqlite" else int(peak) >= 1, row
            assert errors.isdigit() and check == "PASS", f"trial numbers not checked: {row}"
    if unreachable:
        reasons = [line for line in result.stdout.splitlines() if ": skipped: " in line]
        missing("database servers of tests/conftest.py: " + "; ".join(dict.fromkeys(reasons)))


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


def _bench_databases() -> dict[str, int]:
    """bench_storage's databases on the PostgreSQL server, with their open connections."""
    import sqlalchemy as sa

    engine = _admin_engine("postgresql")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT d.datname, count(a.pid) FROM pg_database d LEFT JOIN "
                    "pg_stat_activity a ON a.datname = d.datname "
                    "WHERE d.datname LIKE 'bench\\_%' GROUP BY d.datname"
                )
            )
            return {name: n for name, n in rows}
    except sa.exc.OperationalError as exc:
        missing(f"PostgreSQL at 127.0.0.1:5432 (tests/conftest.py): {exc}")
    finally:
        engine.dispose()


def test_bench_storage_killed_mid_row_stops_its_workers_and_drops_its_database():
    # Alone on the server: a database that appears is this run's.
    with postgres_in_use(exclusive=True):
        before = set(_bench_databases())
        process = subprocess.Popen(
            [sys.executable, str(BENCHMARKS / "bench_storage.py"), "--no-record"]
            + ["--backends", "postgresql", "--workers", "4", "--sleep-ms", "20"]
            + ["--trials-per-worker", "100000"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while True:  # until the row's workers are connected to its database
                ours = {k: n for k, n in _bench_databases().items() if k not in before}
                if any(n >= 4 for n in ours.values()):
                    break
                assert process.poll() is None, f"the script ended early:\n{process.stdout.read()}"
                assert time.monotonic() < deadline, f"no workers on a bench database: {ours}"
                time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode == 128 + signal.SIGTERM, f"exit {process.returncode}:\n{output}"
        assert "Traceback" not in output, output
        assert not set(_bench_databases()) - before, "the killed row's database was dropped"
        _no_process_left(process.pid)


def _working_in(folders: set[Path]) -> list[str]:
    """Processes whose working directory lies in one of `folders` (a run's search.run and its
    workers), after a moment for the last to exit."""
    found: list[str] = []
    for _ in range(20):
        found = []
        for link in Path("/proc").glob("[0-9]*/cwd"):
            try:
                where = link.resolve(strict=True)
            except OSError:  # gone, or not ours to read
                continue
            if any(where == f or f in where.parents for f in folders):
                found.append(link.parent.name)
        if not found:
            return []
        time.sleep(0.5)
    return found


def _no_process_left(group: int) -> None:
    """No process of the session `group` (a killed script's) is still running."""
    for _ in range(40):  # the last children may take a moment to exit
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    pytest.fail("processes of the killed benchmark are still running")


def test_bench_memory_quick_prints_rss_of_both_modes_growth_and_plot(tmp_path: Path):
    png = tmp_path / "memory.png"
    folder = fashion_dir()
    result = _run(
        "bench_memory.py", "--quick", "--no-record", "--plot", str(png), env=fashion_env()
    )
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    for trial in ("1", "10", "12"):
        row = _table_row(result.stdout, trial)
        assert row is not None, f"no RSS row after trial {trial} in:\n{result.stdout}"
        figures = re.findall(r"\| +[+-]?\d+\.\d +", row)
        assert len(figures) == 4, f"RSS and change of both modes: {row}"
    assert _table_row(result.stdout, "50") is None, "12 quick trials print no trial-50 row"
    for mode in ("service", "in-process"):
        assert re.search(
            rf"- {mode}: growth from trial 10 to the highest RSS after it: [+-]\d+\.\d MB",
            result.stdout,
        ), result.stdout
    assert "a fresh worker process every 5 trials" in result.stdout
    for mode in ("service", "in-process"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"- {mode}:"))
        source = Path(line.rsplit("; data ", 1)[-1]).resolve()
        assert source == Path(folder).resolve(), f"{mode} did not train on the real files: {line}"
    assert png.stat().st_size > 1000, "the RSS plot was drawn"


def test_bench_search_quick_runs_five_arms_and_retrains_each_choice_on_the_test_set(
    tmp_path: Path,
):
    png = tmp_path / "search.png"
    result = _run(
        "bench_search.py",
        "--quick",
        "--no-record",
        "--plot",
        str(png),
        env=fashion_env(),
    )
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    arms = ("service", "tpe-nopruning", "random-hyperband", "kerastuner-hyperband")
    arms += ("kerastuner-bayes",)
    for arm in arms:
        row = _table_row(result.stdout, arm, "1")
        assert row is not None, f"no summary row for {arm} in:\n{result.stdout}"
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        best_val, test = float(cells[2]), float(cells[3])
        networks, epochs, cpu, startup, retrain = (float(c) for c in cells[6:11])
        assert 0 < best_val <= 1, f"{arm}: a trial completed within the budget: {row}"
        assert 0 < test <= 1, f"{arm}: its choice was retrained and tested: {row}"
        assert networks > 0 and epochs > 0, f"{arm}: networks and epochs per hour: {row}"
        assert cpu > 0, f"{arm}: the run's process tree was charged CPU time: {row}"
        assert 0 < startup < 60, f"{arm}: the first trial started within the 60 s budget: {row}"
        assert retrain > 0, f"{arm}: the retrain's seconds are reported apart: {row}"
    trainers = re.findall(r"KerasTuner processes that trained: (.*)", result.stdout)
    assert trainers == ["tuner0, tuner1"] * 2, (
        "each KerasTuner arm ran KerasTuner's distributed mode, two tuner processes training "
        f"(as the service's two workers): {trainers}"
    )
    for arm in arms[1:]:
        paired = rf"paired difference, service minus {arm}, retrained test accuracy: [+-]\d+\.\d\d"
        assert re.search(paired + r" points \(1 repeat: no interval\)", result.stdout), arm
        target = rf"target: service's retrained test accuracy at least 1\.0 point above {arm}'s"
        # One repeat gives no interval, so no test-accuracy target can pass.
        assert re.search(target + r".*: MISSED$", result.stdout, re.MULTILINE), arm
    assert re.search(r"target: time to 89% validation accuracy .*: (PASS|MISSED)", result.stdout)
    assert "git revision" in result.stdout, "the record says which code was measured"
    assert png.stat().st_size > 1000, "validation curves and test marks were drawn"


def test_bench_quality_quick_runs_the_command_end_to_end_and_reports_validation_choices():
    result = _run("bench_quality.py", "--quick", "--no-record", env=fashion_env())
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    row = _table_row(result.stdout, "1", "0")
    assert row is not None, f"no row for run 1 in:\n{result.stdout}"
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    best_val, chosen, chosen_val, chosen_test = cells[2:6]
    assert re.fullmatch(r"\d+\.\d\d%", best_val), row
    assert re.fullmatch(r"trial \d+", chosen), f"the configuration ranked first: {row}"
    assert re.fullmatch(r"\d+\.\d\d%", chosen_val), row
    assert re.fullmatch(r"\d+\.\d\d ± \d+\.\d\d%", chosen_test), "mean ± sd over seeds"
    assert re.search(r"chosen configuration's test accuracy, mean over 1 runs: \d", result.stdout)
    assert re.search(r"epochs per second in the search, mean: \d+\.\d\d", result.stdout)
    kept = re.search(r"^run 1 kept in (\S+) ", result.stdout, re.MULTILINE)
    assert kept, "the run says where its study and report are"
    assert (Path(kept.group(1)) / "reports" / "fashion" / "report.json").is_file()
    shutil.rmtree(kept.group(1))


def test_bench_pareto_quick_compares_the_front_rule_with_no_pruning_and_survives_a_kill():
    # Two repeats asked, killed (SIGTERM) while the second runs: the first is reported.
    runs_before = set(Path(tempfile.gettempdir()).glob("bench-pareto-*"))
    process = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / "bench_pareto.py"), "--quick", "--no-record"]
        + ["--repeats", "2"],
        cwd=ROOT,
        env=fashion_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    # Only against a hang: the quick run takes 1.5 minutes here, 3 on a busy CI machine.
    guard = threading.Timer(900, os.killpg, (process.pid, signal.SIGKILL))
    guard.start()
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("repeat 2/2:"):
                time.sleep(10)  # its search.run is under way
                process.send_signal(signal.SIGTERM)
                break
        rest, _ = process.communicate(timeout=120)
    finally:
        guard.cancel()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    stdout = "".join(lines) + rest
    assert process.returncode == 0, f"the script failed:\n{stdout}"
    assert "stopped by hand after 1 of 2 repeats" in stdout, stdout
    assert _table_row(stdout, "2") is None, f"the unfinished repeat is left out:\n{stdout}"
    _no_process_left(process.pid)
    runs = set(Path(tempfile.gettempdir()).glob("bench-pareto-*")) - runs_before
    assert len(runs) == 3, f"two runs of repeat 1 and the killed one: {runs}"
    assert not _working_in(runs), "the killed run's search.run and workers were ended"
    for arm in ("pruned", "no pruning"):
        row = _table_row(stdout, "1", arm)
        assert row is not None, f"no row for {arm} in:\n{stdout}"
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        history = [float(c) for c in cells[3:9]]
        assert history == sorted(history), f"a front's hypervolume never shrinks: {row}"
        assert history[-1] > 0, f"no front point inside the reference: {row}"
        trials, pruned = int(cells[9]), int(cells[10])
        assert trials > 0 and (pruned == 0 if arm == "no pruning" else pruned <= trials)
    assert re.search(r"trials per hour, mean: pruned \d+, no pruning \d+ \(\d", stdout)
    assert re.search(r"final hypervolume, mean: pruned \d\.\d{4}", stdout)


def test_bench_workers_quick_trains_the_same_networks_in_both_splits():
    result = _run("bench_workers.py", "--quick", "--no-record", env=fashion_env())
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    cores = os.cpu_count() or 1
    split = max(2, cores)
    rows = {}
    for arm in (f"1 x {cores}", f"{split} x {max(1, cores // split)}"):
        row = _table_row(result.stdout, "1", arm)
        assert row is not None, f"no row for {arm} in:\n{result.stdout}"
        rows[arm] = [c.strip() for c in row.strip().strip("|").split("|")]
    # The same 4 networks, each trained the 2 epochs allowed, in both arms.
    assert [(r[3], r[4]) for r in rows.values()] == [("4", "8")] * 2, rows
    assert all(float(r[5]) > 0 and float(r[6]) > float(r[5]) / split for r in rows.values())
    ratio = re.search(r"per repeat: (\d+\.\d\d)\n- mean: (\d+\.\d\d)x", result.stdout)
    assert ratio and ratio.group(1) == ratio.group(2), result.stdout
    assert 0.2 < float(ratio.group(1)) < 5, "a throughput ratio of two real runs"


def test_bench_refit_quick_scores_both_arms_on_the_held_back_validation_split():
    result = _run("bench_refit.py", "--quick", "--no-record", env=fashion_env())
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    row = _table_row(result.stdout, "0")
    assert row is not None, f"no row for seed 0 in:\n{result.stdout}"
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    assert 1 <= int(cells[1]) <= 2, "the best epoch lies within the 2 epochs allowed"
    restore, refit = (float(c.rstrip("%")) for c in cells[2:4])
    assert 0 < restore <= 100 and 0 < refit <= 100
    assert float(cells[4].split()[0]) == pytest.approx(refit - restore, abs=0.011)
    assert "judge V2 = the service's 200 validation images" in result.stdout


def test_bench_ablation_quick_scores_every_knob_and_bench_ensemble_reads_its_models(
    tmp_path: Path,
):
    png, kept = tmp_path / "ablation.png", tmp_path / "predictions"
    result = _run(
        "bench_ablation.py",
        *("--quick", "--no-record", "--plot", str(png), "--keep-predictions", str(kept)),
        env=fashion_env(),
    )
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    full = _table_row(result.stdout, "all knobs", "0")
    assert full is not None, f"no row for the full network in:\n{result.stdout}"
    full_accuracy = float(full.split("|")[4].strip().rstrip("%"))
    for arm in ("no batch norm", "no weight decay", "raw pixels", "constant lr",
                "no label smoothing", "256 units", "half the epochs"):  # fmt: skip
        row = _table_row(result.stdout, arm, "0")
        assert row is not None, f"no row for {arm} in:\n{result.stdout}"
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        accuracy, gain = float(cells[3].rstrip("%")), float(cells[4].split()[0])
        assert gain == pytest.approx(full_accuracy - accuracy, abs=0.011), row
        assert f"- {arm}: gain {gain:+.2f} pt (seeds {gain:+.2f}): one seed" in result.stdout
    assert int(_table_row(result.stdout, "half the epochs", "0").split("|")[3]) == 1
    assert "judge V2 = the service's 200 validation images" in result.stdout
    assert png.stat().st_size > 1000, "the gains were drawn"
    assert len(list(kept.glob("*.npz"))) == 8, "one file of predictions per model"

    result = _run("bench_ensemble.py", "--no-record", "--predictions", str(kept))
    assert result.returncode == 0, f"the script failed:\n{result.stdout}\n{result.stderr}"
    assert "(8 models, 8 configurations)" in result.stdout
    for k in ("2", "3", "4"):  # one model per configuration: a pool of k models
        row = _table_row(result.stdout, k, k)
        assert row is not None, f"no pool of {k} configurations in:\n{result.stdout}"
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert 1 <= int(cells[3]) <= int(k), "greedy chose between one and every model"
        greedy, everyone = (float(c.rstrip("%")) for c in cells[4:6])
        assert float(cells[6].split()[0]) == pytest.approx(everyone - greedy, abs=0.011), row
