"""The status command: counts, heartbeats and staleness, --reap, and its one-line errors.

Studies are built here through ask/tell and create_trial on a SQLite file, never by training;
a heartbeat is made old by moving its stored time back, not by waiting.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution
from optuna.storages._rdb.models import TrialHeartbeatModel
from optuna.trial import TrialState, create_trial

from search.status import main
from search.study.health import format_status, status
from storage.rdb import grace_period, open_storage
from storage.readonly import open_read_only
from tests.conftest import ROOT

STUDY = "fashion-status"
X = FloatDistribution(0.0, 1.0)


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _study(url: str) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    storage = open_storage(url)
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    return study, storage


def _fill(study: optuna.Study) -> None:
    """Adds 2 complete (the best is 0.87), 1 pruned, 1 failed and 1 waiting trial."""
    for value, x in ((0.81, 0.2), (0.87, 0.6)):
        study.add_trial(
            create_trial(
                value=value, params={"x": x}, distributions={"x": X}, user_attrs={"n_params": 1234}
            )
        )
    study.add_trial(
        create_trial(state=TrialState.PRUNED, params={"x": 0.9}, distributions={"x": X})
    )
    study.add_trial(create_trial(state=TrialState.FAIL, params={"x": 0.1}, distributions={"x": X}))
    study.enqueue_trial({"x": 0.5})


def _running(study: optuna.Study, storage: optuna.storages.RDBStorage, *, age: float) -> int:
    """A running trial whose last heartbeat is `age` seconds old; its number."""
    trial = study.ask({"x": X})
    trial.set_user_attr("worker", "node7:4242")
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(STUDY), trial.number
    )
    storage.record_heartbeat(trial_id)
    beat = TrialHeartbeatModel.__table__.c.heartbeat
    with storage.engine.begin() as connection:
        stamped = connection.execute(
            sqlalchemy.select(beat).where(TrialHeartbeatModel.__table__.c.trial_id == trial_id)
        ).scalar_one()
        connection.execute(
            sqlalchemy.update(TrialHeartbeatModel.__table__)
            .where(TrialHeartbeatModel.__table__.c.trial_id == trial_id)
            .values(heartbeat=stamped - dt.timedelta(seconds=age))
        )
    return trial.number


def test_status_counts_trials_by_state_and_names_best(tmp_path: Path) -> None:
    study, storage = _study(_url(tmp_path / "s.db"))
    study.ask()  # running, from a run without heartbeats (asked first: ask takes a waiting one)
    _fill(study)

    summary = status(study, storage, heartbeat=10)

    assert summary["counts"] == {
        "COMPLETE": 2,
        "PRUNED": 1,
        "RUNNING": 1,
        "FAIL": 1,
        "WAITING": 1,
    }, "one count per state, as built"
    assert summary["finished"] == 3, "finished means complete + pruned"
    best = {
        "number": 2,
        "value": 0.87,
        "front": None,
        "figure": "accuracy",
        "params": {"x": 0.6},
        "n_params": 1234,
    }
    assert summary["best"] == best, "trial 0 runs, 1 and 2 complete, 2 scores higher"
    running = summary["running"][0]
    assert running["last_heartbeat"] is None, "a trial that never beat has no heartbeat"
    assert not running["stale"], "Optuna never fails a trial without a beat, so neither do we"
    assert "no heartbeat" in "\n".join(format_status(summary))


def _pareto_status(path: Path, first: str, points: tuple[tuple[float, int], ...]) -> dict:
    """The status of a two-objective study (`first`: the figure's direction; parameters
    minimised) holding one complete trial per (figure, parameters) point."""
    storage = open_storage(_url(path))
    study = optuna.create_study(
        storage=storage, study_name="some-pareto", directions=[first, "minimize"]
    )
    for value, size in points:
        study.add_trial(
            create_trial(
                params={"x": value},
                distributions={"x": FloatDistribution(0, 1)},
                values=[value, size],
                user_attrs={"n_params": size},
            )
        )
    return status(study, storage, heartbeat=10)


def test_status_of_a_pareto_study_names_the_most_accurate_and_the_front(tmp_path: Path) -> None:
    points = ((0.80, 1_000), (0.85, 9_000), (0.70, 20_000))
    summary = _pareto_status(tmp_path / "p.db", "maximize", points)
    assert summary["best"]["number"] == 1 and summary["best"]["front"] == 2
    assert "validation front (accuracy against parameters): 2 trials" in format_status(summary)


def test_status_of_a_regression_pareto_study_names_its_rmse(tmp_path: Path) -> None:
    points = ((0.50, 1_000), (0.40, 9_000), (0.60, 20_000))
    summary = _pareto_status(tmp_path / "r.db", "minimize", points)
    assert summary["best"]["number"] == 1, "the lowest RMSE is the best end of the front"
    lines = format_status(summary)
    assert "validation front (RMSE against parameters): 2 trials" in lines


def test_status_without_complete_trial_says_so(tmp_path: Path) -> None:
    study, storage = _study(_url(tmp_path / "s.db"))
    study.ask()

    summary = status(study, storage, heartbeat=10)

    assert summary["best"] is None
    assert "best: no complete trial yet" in format_status(summary)


def test_status_marks_old_heartbeat_stale_and_fresh_one_alive(tmp_path: Path) -> None:
    study, storage = _study(_url(tmp_path / "s.db"))
    old = _running(study, storage, age=3600)
    fresh = _running(study, storage, age=0)

    running = {r["number"]: r for r in status(study, storage, heartbeat=10)["running"]}

    assert running[old]["stale"], "an hour without a beat is past any grace period"
    assert running[old]["heartbeat_age_seconds"] >= 3600
    assert running[old]["worker"] == "node7:4242", "the worker comes from the user attribute"
    assert not running[fresh]["stale"], f"a beat just now is within {grace_period(10)} s"


def test_status_stale_threshold_follows_heartbeat(tmp_path: Path) -> None:
    study, storage = _study(_url(tmp_path / "s.db"))
    number = _running(study, storage, age=100)

    def stale(heartbeat: int) -> bool:
        return status(study, storage, heartbeat=heartbeat)["running"][0]["stale"]

    assert stale(10), "100 s is past 2 x 10 + 10 s"
    assert not stale(60), f"100 s is within 2 x 60 + 10 s (trial {number})"


def test_main_without_reap_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.db"
    study, storage = _study(_url(path))
    number = _running(study, storage, age=3600)
    _fill(study)
    storage.engine.dispose()
    before = path.read_bytes()

    assert main(["--study", STUDY, "--storage", _url(path)]) == 0

    out = capsys.readouterr().out
    assert path.read_bytes() == before, "looking must not change a byte of the database"
    assert f"trial {number}: node7:4242" in out and "STALE" in out
    assert "2 complete, 1 pruned, 1 running, 1 fail, 1 waiting; 3 finished" in out
    assert "reap:" not in out and "--reap fails" in out, "nothing reaped, only the hint"


def test_main_reap_fails_stale_trial_and_queues_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.db"
    study, storage = _study(_url(path))
    stale = _running(study, storage, age=3600)
    alive = _running(study, storage, age=0)

    assert main(["--study", STUDY, "--storage", _url(path), "--reap", "--heartbeat", "10"]) == 0

    trials = optuna.load_study(study_name=STUDY, storage=_url(path)).get_trials()
    by_number = {t.number: t for t in trials}
    assert by_number[stale].state == TrialState.FAIL, "the stale trial is failed"
    assert by_number[alive].state == TrialState.RUNNING, "a beating trial is left alone"
    (retry,) = [t for t in trials if t.state == TrialState.WAITING]
    assert retry.params == by_number[stale].params, "the retry repeats the configuration"
    assert retry.system_attrs["failed_trial"] == stale
    out = capsys.readouterr().out
    assert f"reap: trial {stale} was stale and is now FAIL" in out
    assert f"queued again as trial {retry.number}" in out


def test_main_reap_with_nothing_stale_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.db"
    study, storage = _study(_url(path))
    number = _running(study, storage, age=100)  # stale for a 10 s heartbeat, not for 60 s

    assert main(["--study", STUDY, "--storage", _url(path), "--reap", "--heartbeat", "60"]) == 0

    assert study.get_trials()[number].state == TrialState.RUNNING, "within 2 x 60 + 10 s"
    assert len(study.get_trials()) == 1, "no retry queued"
    assert "reap: no stale running trial; nothing changed" in capsys.readouterr().out


def test_main_unknown_study_names_existing_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _study(_url(tmp_path / "s.db"))

    assert main(["--study", "nope", "--storage", _url(tmp_path / "s.db")]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1, "one line"
    assert "'nope'" in err and f"'{STUDY}'" in err, "names the study asked for and those there"


def test_main_missing_sqlite_file_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "absent.db"

    assert main(["--study", STUDY, "--storage", _url(path), "--reap"]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no SQLite database file" in err
    assert not path.exists(), "a status check must never create a database"


def test_main_masks_password_of_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://searcher:s3cr3t-pw@127.0.0.1:1/test"

    assert main(["--study", STUDY, "--storage", url]) == 2

    captured = capsys.readouterr()
    assert "s3cr3t-pw" not in captured.out + captured.err, "the password is never printed"
    assert captured.err.count("\n") == 1 and "***" in captured.err


@pytest.mark.parametrize("value", ["0", "-5", "ten"])
def test_main_rejects_non_positive_heartbeat(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--study", STUDY, "--heartbeat", value])

    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1, "one line"


def test_module_runs_as_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "search.status", "--study", STUDY, "--storage", "sqlite:///"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("search.status: error:") and result.stderr.count("\n") == 1


def test_open_read_only_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _study(_url(path))[1].engine.dispose()
    before = path.read_bytes()

    storage = open_read_only(_url(path))
    with pytest.raises(optuna.exceptions.StorageInternalError) as refused:
        storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "another")
    assert "readonly database" in str(refused.value.__cause__), "SQLite's own refusal"
    storage.engine.dispose()

    assert path.read_bytes() == before
