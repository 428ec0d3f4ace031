"""Several workers sharing one study on real PostgreSQL and MariaDB servers.

Each test makes and drops its own database (tests/conftest.py). Models and data are tiny: the
point is the storage, the heartbeats and the retries, not the training.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT, clean_env, run_cli, write_dataset

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

pytestmark = pytest.mark.slow  # worker processes, real servers or scripts


def _load(url: str, name: str = "fashion") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def _assert_intact(study: optuna.Study) -> None:
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(len(numbers))), "trial numbers unique and contiguous"
    assert not [t.number for t in study.trials if t.state == TrialState.RUNNING], "no zombie"
    for trial in study.trials:
        if trial.state in FINISHED:
            assert trial.intermediate_values, f"trial {trial.number} kept its epochs"
            assert "n_params" in trial.user_attrs
        if trial.state == TrialState.COMPLETE:
            assert trial.value == max(trial.intermediate_values.values())


def test_workers_share_one_study_and_stop_at_the_target(server_url, data_dir):
    result = run_cli(
        "--study",
        "fashion",
        "--storage",
        server_url,
        "--data-dir",
        str(data_dir),
        "--workers",
        "2",
        "--n-trials",
        "6",
        "--max-epochs",
        "1",
        "--no-retrain",
        "--no-warm-start",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    study = _load(server_url)
    _assert_intact(study)
    finished = len(study.get_trials(states=FINISHED))
    assert 6 <= finished <= 7, "target met, overshoot at most workers - 1"
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2, f"both workers ran trials: {workers}"


def test_workers_share_one_sqlite_study_safely(tmp_path, data_dir):
    # SQLite's transactions are serialized (storage.rdb.serialize_sqlite), so several local
    # workers may share one file: every trial is intact and both workers trained.
    db = tmp_path / "s.db"
    result = run_cli(
        "--study",
        "fashion",
        "--storage",
        f"sqlite:///{db}",
        "--data-dir",
        str(data_dir),
        "--workers",
        "2",
        "--n-trials",
        "6",
        "--max-epochs",
        "1",
        "--no-retrain",
        "--no-warm-start",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    study = _load(f"sqlite:///{db}")
    _assert_intact(study)
    assert 6 <= len(study.get_trials(states=FINISHED)) <= 7, "target met, overshoot <= 1"
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2, f"both workers ran trials: {workers}"
    # The parent prints every worker's trial lines (search/study/progress.py, SharedBar): each
    # finished trial once, under its worker's prefix.
    for trial in study.get_trials(states=FINISHED):
        pattern = rf"^\[w[01]\] \[\d+/6 .*\] trial +{trial.number} {trial.state.name}"
        line = re.compile(pattern, re.M)
        assert len(line.findall(result.stdout)) == 1, (trial.number, result.stdout[-2000:])


def test_two_workers_retrain_in_two_processes_each_run_once(tmp_path, data_dir):
    # --workers 2 also retrains two runs at a time (search/evaluation/parallel.py): the runs are
    # split between two processes through their claims, each stored once, and the parent then
    # only averages the ensemble.
    import sqlalchemy as sa

    db = tmp_path / "s.db"
    result = run_cli(
        "--study",
        "fashion",
        "--storage",
        f"sqlite:///{db}",
        "--data-dir",
        str(data_dir),
        "--workers",
        "2",
        "--n-trials",
        "3",
        "--max-epochs",
        "1",
        "--retrain-top",
        "2",
        "--seeds",
        "2",
        "--no-warm-start",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        runs = connection.execute(
            sa.text("SELECT config_key, seed FROM search_retrain_runs WHERE kind = 'trial'")
        ).all()
        owners = connection.execute(sa.text("SELECT owner FROM search_retrain_claims")).all()
    assert len(runs) == len(set(runs)) == 4, f"2 configurations x 2 seeds, once each: {runs}"
    assert len({owner for (owner,) in owners}) == 2, f"both processes trained: {owners}"
    assert re.search(r"^retrain: 2 processes, pids", result.stdout, re.M), result.stdout[-2000:]
    for prefix in ("[r0] ", "[r1] "):
        assert re.search(
            rf"^{re.escape(prefix)}\[\d/4\] trial \d+ seed \d+: test ", result.stdout, re.M
        )
    assert "already retrained" not in result.stdout and "left to it" not in result.stdout, (
        "each process says only what it trains, the parent's pass found every run stored"
    )
    assert "ensemble" in result.stdout


def test_worker_processes_are_replaced_after_their_share_of_trials(tmp_path, data_dir):
    db = tmp_path / "s.db"
    result = run_cli(
        "--study",
        "fashion",
        "--storage",
        f"sqlite:///{db}",
        "--data-dir",
        str(data_dir),
        "--n-trials",
        "5",
        "--trials-per-process",
        "2",
        "--workers",
        "1",
        "--max-epochs",
        "1",
        "--no-retrain",
        "--no-warm-start",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    study = _load(f"sqlite:///{db}")
    _assert_intact(study)
    assert len(study.get_trials(states=FINISHED)) == 5, "the target, not more"
    pids = [t.user_attrs["worker"].rsplit(":", 1)[1] for t in study.trials]
    assert len(set(pids)) == 3, f"2 + 2 + 1 trials in three processes: {pids}"
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4], pids
    assert str(os.getpid()) not in pids
    assert result.stdout.count("going on in a fresh process") == 2, result.stdout
    assert "done in" in result.stdout and "best: trial" in result.stdout, "one summary"


def _start_and_open(url: str, barrier, results, index: int) -> None:
    """One of eight processes opening the same empty database at the same moment."""
    try:
        from search.study.resume import open_study
        from search.study.studyfile import PRESETS
        from storage import open_storage

        config = PRESETS["fashion"].with_overrides(storage=url, warm_start=False)
        barrier.wait(timeout=60)
        storage = open_storage(url, heartbeat_interval=10)
        study = open_study(config, storage, "synthetic")
        trial = study.ask()
        study.tell(trial, 0.5 + index / 100)
        results.put((index, "ok"))
    except BaseException as exc:  # noqa: BLE001 - the parent reports whatever went wrong
        results.put((index, f"{type(exc).__name__}: {exc}"))


def test_eight_workers_starting_at_once_on_an_empty_database(server_url):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(8), context.Queue()
    processes = [
        context.Process(target=_start_and_open, args=(server_url, barrier, results, i))
        for i in range(8)
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    assert outcomes == {i: "ok" for i in range(8)}, outcomes
    study = _load(server_url)
    assert sorted(t.number for t in study.trials) == list(range(8))
    assert optuna.get_all_study_names(server_url) == ["fashion"], "one study, created once"


def _search_command(url: str, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "search.run",
        "--study",
        "fashion",
        "--storage",
        url,
        "--data-dir",
        str(data),
        "--pruner",
        "none",
        "--no-retrain",
        "--no-warm-start",
        "--workers",  # one worker process per command unless `extra` says more
        "1",
        *extra,
    ]


def _running_trial(url: str, up_to_epoch: int) -> optuna.trial.FrozenTrial | None:
    """A trial that has reported 1 to up_to_epoch epochs (its worker process is in its
    attributes): one with most of its training still ahead."""
    try:
        study = _load(url)
    except KeyError:
        return None
    for trial in study.get_trials(states=(TrialState.RUNNING,)):
        epochs = len(trial.intermediate_values)
        if trial.user_attrs.get("worker") and 0 < epochs <= up_to_epoch:
            return trial
    return None


def test_sigterm_to_the_run_stops_its_workers_and_fails_their_trials(tmp_path):
    # What a service manager (systemd, Kubernetes, `kill PID`) sends to search.run alone. Without
    # a handler the run would end at once and leave its worker processes training unwatched.
    # Started with SIGINT ignored, as under nohup or as a shell script's background job: its
    # workers then ignore SIGINT too, so the stop must reach them as SIGTERM (passed on as
    # SIGINT, it left them training for the 30-s fallback, and the trial seen running
    # completed). 6,000 images and 40 epochs: that trial has many seconds of training ahead.
    data = write_dataset(tmp_path / "data", n_train=6000, n_test=50)
    url = f"sqlite:///{tmp_path / 'term.db'}"
    argv = _search_command(url, data, "--workers", "2", "--n-trials", "50", "--max-epochs", "40")
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115
    run = subprocess.Popen(
        [*argv, "--patience", "40"],
        cwd=ROOT,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline, running = time.monotonic() + 180, None
        while running is None and time.monotonic() < deadline and run.poll() is None:
            running = _running_trial(url, up_to_epoch=4)
            time.sleep(0.3)
        assert running is not None, "a trial was seen running"
        workers = {
            int(t.user_attrs["worker"].rsplit(":", 1)[1])
            for t in _load(url).trials
            if t.user_attrs.get("worker")
        }
        run.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = run.wait(timeout=90)
        took = time.monotonic() - sent
    finally:
        if run.poll() is None:
            run.kill()
        log.close()
    text = (tmp_path / "run.log").read_text()
    assert code == 143, text[-2000:]
    assert "stopped by SIGTERM; finished trials are stored" in text
    assert "Traceback" not in text, text[-2000:]
    assert took < 30, f"the workers took the stop at once, not at the 30-s fallback ({took:.0f} s)"
    study = _load(url)
    assert not study.get_trials(states=(TrialState.RUNNING,)), "no trial left running"
    assert study.trials[running.number].state == TrialState.FAIL, "the trial it stopped is FAIL"
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every worker process has ended


def test_kill_minus_9_of_one_worker_fails_and_retries_its_trial(postgres_url, tmp_path):
    # Trials of a few seconds each, so that one can be killed while it trains.
    data = write_dataset(tmp_path / "data", n_train=3000, n_test=50)
    argv = _search_command(
        postgres_url,
        data,
        "--n-trials",
        "8",
        "--max-epochs",
        "8",
        "--patience",
        "8",
        "--heartbeat",
        "1",
        "--timeout",
        "400",
    )
    env = clean_env()
    logs = [open(tmp_path / f"w{i}.log", "w") for i in range(3)]  # noqa: SIM115
    workers = [
        subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        deadline, victim = time.monotonic() + 180, None
        while victim is None and time.monotonic() < deadline:
            victim = _running_trial(postgres_url, up_to_epoch=4)
            time.sleep(0.3)
        assert victim is not None, "a trial was seen running"
        killed_pid = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
        os.kill(killed_pid, signal.SIGKILL)
        killed_at = time.time()
        for worker in workers:
            worker.wait(timeout=400)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        for log in logs:
            log.close()
    texts = [Path(log.name).read_text() for log in logs]
    assert [w.returncode for w in workers] == [0, 0, 0], [text[-1500:] for text in texts]
    assert sum("killed by signal 9" in text for text in texts) == 1, "its run started another"
    study = _load(postgres_url)
    _assert_intact(study)
    assert study.trials[victim.number].state == TrialState.FAIL, "the killed trial is FAIL"
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1 and retries[0].state in FINISHED, "its configuration was retried"
    assert retries[0].params == victim.params
    assert len(study.get_trials(states=FINISHED)) >= 8
    delay = retries[0].datetime_start.timestamp() - killed_at
    print(f"\nkill -9 to retry start: {delay:.1f} s (its run fails it at once; heartbeat 1 s)")


@pytest.mark.slow
def test_database_restart_during_a_study_loses_no_finished_trial(stoppable_postgres_url, tmp_path):
    url = stoppable_postgres_url  # this test has the server to itself while it runs
    data = write_dataset(tmp_path / "data", n_train=2000, n_test=50)
    argv = _search_command(url, data, "--n-trials", "10", "--max-epochs", "3", "--heartbeat", "2")
    env = clean_env()
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        before = []
        while time.monotonic() < deadline:
            try:
                before = [
                    (t.number, t.state, t.value) for t in _load(url).trials if t.state in FINISHED
                ]
            except Exception:  # noqa: BLE001 - the study may not exist yet
                before = []
            if len(before) >= 3:
                break
            time.sleep(0.5)
        assert len(before) >= 3
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            timeout=120,
        )
        worker.wait(timeout=600)
    text = log.read_text()
    assert worker.returncode == 0, text[-3000:]
    study = _load(url)
    after = {t.number: (t.number, t.state, t.value) for t in study.trials}
    for number, state, value in before:
        assert after[number] == (number, state, value), f"finished trial {number} unchanged"
    assert len(study.get_trials(states=FINISHED)) >= 10
    print("\n".join(line for line in text.splitlines() if "database" in line.lower()))


def test_heartbeat_survives_a_failed_beat(tmp_path, monkeypatch, caplog):
    from storage import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=1)
    study = optuna.create_study(storage=storage)
    trial_id = study.ask()._trial_id
    real_beat, failing = optuna.storages.RDBStorage.record_heartbeat, [True]

    def flaky(self, beat_trial_id):  # the first beat meets an outage, the next gets through
        if failing and failing.pop():
            raise optuna.exceptions.StorageInternalError("database is locked")
        real_beat(self, beat_trial_id)

    monkeypatch.setattr(optuna.storages.RDBStorage, "record_heartbeat", flaky)
    with caplog.at_level("WARNING"):
        storage.record_heartbeat(trial_id)  # must not raise: the thread would die with it
    assert "not recorded" in caplog.text, "the failed beat is logged"
    storage.record_heartbeat(trial_id)
    assert trial_id in _beats(storage), "the next beat is recorded"


def _beats(storage) -> set[int]:
    import sqlalchemy as sa

    with storage.engine.connect() as connection:
        tables = sa.MetaData()
        tables.reflect(connection, only=("trial_heartbeats",))
        rows = connection.execute(sa.select(tables.tables["trial_heartbeats"].c.trial_id))
        return {row[0] for row in rows}


def test_mysql_creation_lock_timeout_stops_with_a_clear_error(mysql_url, monkeypatch):
    import sqlalchemy as sa

    import storage.rdb
    from storage.errors import StorageError

    monkeypatch.setattr(storage.rdb, "INIT_LOCK_SECONDS", 1)
    holder = sa.create_engine(mysql_url)
    with holder.connect() as connection:  # another worker holds the lock and never lets go
        key = f"optuna-init-{storage.rdb._INIT_LOCK_KEY}"
        assert connection.execute(sa.text("SELECT GET_LOCK(:k, 5)"), {"k": key}).scalar() == 1
        with pytest.raises(StorageError, match="could not take the table-creation lock"):
            storage.rdb.open_storage(mysql_url)
        tables = connection.execute(sa.text("SHOW TABLES")).fetchall()
        assert tables == [], "nothing was created without the lock"
    holder.dispose()
