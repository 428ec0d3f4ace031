"""`python -m search.run` as a user runs it: a fresh process on a slice of the real data."""

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import REAL_FASHION, REAL_MNIST, needs_real_fashion, needs_real_mnist, run_cli

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

pytestmark = pytest.mark.slow  # real data or servers, worker processes


@needs_real_fashion
def test_cli_fashion_slice_stores_trials_and_resumes_to_a_higher_target(tmp_path):
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    argv = [
        "--study",
        "fashion",
        "--max-epochs",
        "3",
        "--limit-train",
        "2000",
        "--no-retrain",
        "--storage",
        storage,
        "--data-dir",
        str(REAL_FASHION),
    ]
    first = run_cli(*argv, "--n-trials", "6")
    assert first.returncode == 0, first.stderr
    assert "trial   5" in first.stdout, "a line per trial"
    study = optuna.load_study(study_name="fashion", storage=storage)
    trials = study.get_trials(states=FINISHED)
    assert len(trials) == 6
    for trial in trials:
        assert trial.intermediate_values, f"trial {trial.number} has per-epoch values"
        assert "n_params" in trial.user_attrs
        assert trial.params["n_layers"] in range(1, 5)
        assert {f"n_units_l{i}" for i in range(trial.params["n_layers"])} <= set(trial.params)
    # The validation figures are real: 1800 images and 3 epochs beat chance (0.1) easily.
    assert study.best_value > 0.6

    second = run_cli(*argv, "--n-trials", "8")
    assert second.returncode == 0, second.stderr
    study = optuna.load_study(study_name="fashion", storage=storage)
    assert len(study.get_trials(states=FINISHED)) == 8, "the same command adds exactly 2"
    assert len(study.trials) == 8, "no trial failed or was left running"


@needs_real_mnist
def test_cli_mnist_preset_searches_digits(tmp_path):
    storage = f"sqlite:///{tmp_path / 'm.db'}"
    result = run_cli(
        "--study",
        "mnist",
        "--n-trials",
        "2",
        "--max-epochs",
        "2",
        "--limit-train",
        "1000",
        "--no-retrain",
        "--storage",
        storage,
        "--data-dir",
        str(REAL_MNIST),
    )
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="mnist", storage=storage)
    assert len(study.get_trials(states=FINISHED)) == 2
    assert study.user_attrs["config"]["dataset"] == "mnist"


def test_cli_storage_defaults_to_env_then_sqlite_file(tmp_path):
    # An unsupported URL in SEARCH_STORAGE proves the variable is read (fails before any data).
    result = run_cli(
        "--study", "fashion", "--no-retrain", env={"SEARCH_STORAGE": "oracle://u:pw@h/db"}
    )
    assert result.returncode == 2
    assert "unsupported database 'oracle'" in result.stderr and ":pw@" not in result.stderr
