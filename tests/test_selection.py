"""The test set chooses nothing: rankings, drawn curves and ensemble members read validation."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import sqlalchemy as sa

from search.evaluation.ensemble import choose_members
from search.evaluation.report import build_report, write_report
from storage.results import ResultStore, RunRecord, runs_table


def _run(key: str, seed: int, val: float, test: float, trial_number: int) -> RunRecord:
    return RunRecord(
        study_name="s",
        kind="trial",
        config_key=key,
        label=f"trial {trial_number}",
        seed=seed,
        params={"key": key},
        trial_number=trial_number,
        test_accuracy=test,
        test_loss=0.4,
        precision=test,
        recall=test,
        val_accuracy=val,
        n_params=100,
        epochs_run=2,
        max_epochs=2,
        seconds=1.0,
        history={
            "loss": [1.0, 0.5],
            "val_loss": [1.1, 0.6],
            "accuracy": [0.5, 0.6],
            "val_accuracy": [0.5, val],
        },
    )


@pytest.fixture
def stored(tmp_path):
    """A study with two retrained configurations whose test order contradicts validation."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name="s", direction="maximize")
    study.set_user_attr("config", {"dataset": "fashion"})
    for value in (0.90, 0.80):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": value},
                distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                value=value,
            )
        )
    store = ResultStore(url)
    # Configuration "a" is better on validation, "b" on the test set.
    for seed, (val, test) in enumerate(((0.91, 0.85), (0.93, 0.84))):
        store.add(_run("a", seed, val, test, 0))
    for seed, (val, test) in enumerate(((0.88, 0.95), (0.87, 0.96))):
        store.add(_run("b", seed, val, test, 1))
    store.close()
    return url


def _choices(url: str, out) -> tuple[list[str], str]:
    report = build_report("s", url).data
    write_report("s", url, out)
    first = json.loads((out / "report.json").read_text())["retrained"][0]["label"]
    return [entry["config_key"] for entry in report["retrained"]], first


def test_report_ranks_retrained_configurations_by_validation(stored, tmp_path):
    order, _ = _choices(stored, tmp_path / "r")
    assert order == ["a", "b"], "a has the better validation accuracy, b the better test one"


def test_changing_the_test_figures_changes_no_choice(stored, tmp_path):
    before = _choices(stored, tmp_path / "before")
    engine = sa.create_engine(stored)
    with engine.begin() as connection:  # turn every stored test figure upside down
        connection.execute(
            sa.update(runs_table).values(test_accuracy=1 - runs_table.c.test_accuracy)
        )
    engine.dispose()
    assert _choices(stored, tmp_path / "after") == before


def test_learning_curve_seed_is_the_best_on_validation(stored):
    from search.evaluation.report import best_validation_run

    runs = ResultStore(stored).runs("s", "trial")
    chosen = best_validation_run([r for r in runs if r.config_key == "a"])
    assert chosen.seed == 1, "seed 1 has validation 0.93 (its test figure is the lower one)"


def test_ensemble_members_are_chosen_on_validation_only():
    y = np.array([0, 1, 2, 0])
    good = np.eye(3)[[0, 1, 2, 1]]  # 3 of 4 right
    also = np.eye(3)[[0, 2, 2, 0]]  # 3 of 4 right, errs elsewhere
    bad = np.eye(3)[[1, 0, 0, 2]]  # all wrong
    members = choose_members([bad, good, also], y)
    assert members[0] == 1, "the best single model on validation starts (ties: lowest index)"
    assert 0 not in members, "a model that lowers validation accuracy is never added"
