"""Faults in the retrain stage against real servers and real files: a database restart, kill -9
while a model is being written, a full disk under a SQLite study. Each prints its figure."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from storage.results import ResultStore
from tests.conftest import ROOT, clean_env, missing, write_dataset

pytestmark = pytest.mark.slow  # real servers, search.run processes

RETRAIN = ["--n-trials", "2", "--max-epochs", "3", "--seeds", "3", "--retrain-top", "2"]
OUTAGE = 6.0  # seconds the database stays down: several epochs of the retrain


def _command(url: str, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "search.run", "--study", "fashion", "--storage", url,
        "--data-dir", str(data), "--pruner", "none", "--workers", "1", *extra,
    ]  # fmt: skip


def _runs(url: str) -> list:
    store = ResultStore(url)
    try:
        return store.runs("fashion")
    finally:
        store.close()


def _wait_for(predicate, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except Exception:  # noqa: BLE001 - the table or study may not exist yet
            found = None
        if found:
            return found
        time.sleep(every)
    return None


def _assert_every_run_once(url: str, configurations: int, seeds: int) -> list:
    runs = [r for r in _runs(url) if r.kind == "trial"]
    keys = [(r.config_key, r.seed) for r in runs]
    assert len(keys) == len(set(keys)) == configurations * seeds, keys
    for run in runs:
        assert Path(run.model_path).is_file(), run.model_path
    return runs


def test_database_down_during_the_retrain_stage_loses_nothing(stoppable_postgres_url, tmp_path):
    url = stoppable_postgres_url  # this test has the server to itself while it runs
    data = write_dataset(tmp_path / "data", n_train=2000, n_test=200)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        run = subprocess.Popen(
            _command(url, data, *RETRAIN, "--no-warm-start"),
            cwd=tmp_path, env={**clean_env(), "PYTHONPATH": str(ROOT)},
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert _wait_for(lambda: _runs(url), 300), "the retrain stage stored a run"
        # Down for several epochs (stop, wait, start): a restart alone can fall between two
        # database calls and test nothing.
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        cluster = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
        stopped = time.monotonic()
        try:
            subprocess.run([*cluster, "stop"], check=True, timeout=120)
            time.sleep(OUTAGE)
        finally:  # whatever happens, the server the other tests need comes back
            subprocess.run([*cluster, "start"], check=True, timeout=120)
        down = time.monotonic() - stopped
        run.wait(timeout=600)
    text = log.read_text()
    assert run.returncode == 0, text[-3000:]
    _assert_every_run_once(url, configurations=2, seeds=3)
    assert [r for r in _runs(url) if r.kind == "ensemble"], "the ensemble was built"
    assert "report:" in text
    print(f"\nPostgreSQL down {down:.1f} s during the retrain: run completed, 6 runs once")


def test_kill_9_while_a_model_is_saved_leaves_no_half_model_and_the_rerun_finishes(tmp_path):
    data = write_dataset(tmp_path / "data", n_train=2000, n_test=200)
    url = f"sqlite:///{tmp_path / 's.db'}"
    # The warm-start network (about a million parameters) writes a file of several MB.
    argv = _command(url, data, "--n-trials", "1", "--max-epochs", "2", "--seeds", "3")
    env = {**clean_env(), "PYTHONPATH": str(ROOT)}
    models = tmp_path / "artifacts" / "models" / "fashion"
    first = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def partial_file() -> list[Path]:
        if first.poll() is not None:
            raise AssertionError("search.run ended before a model was being written")
        return list(models.glob(".partial-*.keras")) if models.is_dir() else []

    caught = _wait_for(partial_file, timeout=300, every=0.002)
    os.killpg(first.pid, signal.SIGKILL)  # search.run and any worker it has
    first.wait(timeout=30)
    assert caught, "kill -9 landed while a model was being written"
    whole = [p for p in models.glob("*.keras") if not p.name.startswith(".partial-")]
    import keras

    for path in whole:  # whatever carries a final name is a whole model
        keras.models.load_model(path, compile=False)

    started = time.monotonic()
    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "half-written by a process that was killed" in again.stdout
    assert "is gone; retrained here" in again.stdout, "the dead process's claim is taken over"
    assert not list(models.glob(".partial-*")), "no half-written file is left"
    runs = _assert_every_run_once(url, configurations=1, seeds=3)
    for run in runs:
        keras.models.load_model(run.model_path, compile=False)
    print(
        f"\nkill -9 during a model save: {len(whole)} whole models kept, the rerun finished "
        f"the other runs in {time.monotonic() - started:.0f} s"
    )


def test_kill_9_of_a_retrain_process_loses_no_run(tmp_path):
    # --workers 2 retrains in two processes (search/evaluation/parallel.py). One killed while
    # it trains: the parent reports it, takes over its claim (its process is gone) and trains
    # what it left, so every run is stored once and the ensemble is built.

    data = write_dataset(tmp_path / "data", n_train=2000, n_test=200)
    url = f"sqlite:///{tmp_path / 's.db'}"
    argv = _command(url, data, "--workers", "2", *RETRAIN, "--max-epochs", "8")
    run = subprocess.Popen(argv, cwd=tmp_path, env={**clean_env(), "PYTHONPATH": str(ROOT)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines, victim = [], None
    for line in run.stdout:
        lines.append(line)
        pids = re.match(r"retrain: 2 processes, pids \[(\d+), (\d+)\]", line)
        if pids:
            victim = int(pids.group(1))
        if victim and line.startswith("[r0] ") and "epoch 1/" in line:
            os.kill(victim, signal.SIGKILL)  # in the middle of its first run
            break
    assert victim, "".join(lines)[-3000:]
    rest, _ = run.communicate(timeout=600)
    text = "".join(lines) + rest
    assert run.returncode == 0, text[-3000:]
    assert f"process {victim} stopped with exit status -9" in text, text[-3000:]
    assert f"its process {socket.gethostname()}:{victim} is gone; retrained here" in text
    _assert_every_run_once(url, configurations=2, seeds=3)
    assert [r for r in _runs(url) if r.kind == "ensemble"], "the ensemble was built"
    print("\nkill -9 of one of two retrain processes: its run retrained by the parent, 6 runs once")


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB tmpfs: room for the study database, not for a retrained model."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        missing(f"a tmpfs mount for the full-disk test (needs root): {mounted.stderr.decode()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_under_a_sqlite_study_ends_clearly_and_keeps_the_trials(small_disk, tmp_path):
    data = write_dataset(tmp_path / "data", n_train=1000, n_test=100)
    url = f"sqlite:///{small_disk / 's.db'}"
    argv = _command(url, data, "--n-trials", "2", "--max-epochs", "2", "--seeds", "2",
                    "--retrain-top", "1")  # fmt: skip
    env = {**clean_env(), "PYTHONPATH": str(ROOT)}
    full = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert full.returncode == 1, full.stderr[-2000:]
    errors = [line for line in full.stderr.splitlines() if line.startswith("search.run:")]
    assert len(errors) == 1 and "no space left on the device writing" in errors[0], full.stderr
    assert "Traceback" not in full.stderr
    study = optuna.load_study(study_name="fashion", storage=url)
    before = [(t.number, t.state, t.value, t.params) for t in study.trials]
    assert len(before) == 2 and all(
        t.state == optuna.trial.TrialState.COMPLETE for t in study.trials
    )
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()
    assert not list(small_disk.rglob(".partial-*")), "no half-written model left"

    # Room again: the same command resumes, the trials are those of before.
    subprocess.run(["mount", "-o", "remount,size=128m", str(small_disk)], check=True)
    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    study = optuna.load_study(study_name="fashion", storage=url)
    assert [(t.number, t.state, t.value, t.params) for t in study.trials] == before
    report = json.loads((tmp_path / "reports" / "fashion" / "report.json").read_text())
    assert len(report["retrained"][0]["runs"]) == 2
    print("\nfull disk: one line, exit 1, trials intact; after remounting, the rerun finished")
