"""The objective: per-epoch reports, the trial's attributes, pruning."""

import optuna
from optuna.trial import TrialState

from search.study.objective import Objective
from search.study.studyfile import PRESETS
from tests.conftest import PLAIN_KNOBS

CONFIG = PRESETS["fashion"].with_overrides(max_epochs=2, patience=5)
FIXED = {
    "n_layers": 1,
    "n_units_l0": 64,
    "dropout_l0": 0.1,
    "activation": "relu",
    "learning_rate": 3e-3,
    "optimizer": "adam",
    "batch_size": 64,
    **PLAIN_KNOBS,
}


def test_objective_with_fixed_trial_learns_and_records_attributes(tiny_split):
    trial = optuna.trial.FixedTrial(FIXED)
    value = Objective(CONFIG, tiny_split)(trial)
    assert 0.5 < value <= 1.0, "bands are learnable well above the 0.1 chance level"
    attrs = trial.user_attrs
    assert attrs["n_params"] == 784 * 64 + 64 + 64 * 10 + 10
    assert attrs["epochs_run"] == 2 and attrs["stop_reason"] == "max_epochs"
    assert attrs["best_epoch"] in (1, 2)
    assert attrs["train_seconds"] > 0 and attrs["val_loss"] > 0


def test_objective_reports_every_epoch_and_its_value_is_the_best(tiny_split):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.enqueue_trial(FIXED)
    study.optimize(Objective(CONFIG, tiny_split), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2], "one value per epoch, step = epoch"
    assert trial.value == max(trial.intermediate_values.values())


def test_objective_gets_pruned_and_keeps_its_intermediate_values(tiny_split):
    # Accuracy can never reach 1.01, so the threshold pruner stops the trial after epoch 1.
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01)
    )
    study.enqueue_trial(FIXED)
    study.optimize(Objective(CONFIG, tiny_split), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    assert trial.user_attrs["pruned_at_epoch"] == 1
    assert trial.user_attrs["stop_reason"] == "pruned"
    assert "n_params" in trial.user_attrs and "val_loss" in trial.user_attrs


def test_objective_first_rung_comes_after_the_first_epoch(tiny_split):
    # min_resource=1 means "one epoch": successive halving's first rung must judge a trial
    # after its first epoch (with 0-based steps it first judged after the second).
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    )
    for _ in range(3):  # three earlier trials that were excellent after one epoch
        earlier = study.ask()
        earlier.report(0.999, step=1)
        assert not earlier.should_prune(), "the best at a rung is promoted"
        study.tell(earlier, 0.999)
    study.enqueue_trial({**FIXED, "learning_rate": 1e-5})  # far from 0.999 after one epoch
    study.optimize(Objective(CONFIG, tiny_split), n_trials=1)
    trial = study.trials[-1]
    assert trial.state == TrialState.PRUNED, "judged at the first rung, after epoch 1"
    assert list(trial.intermediate_values) == [1]
    assert trial.user_attrs["pruned_at_epoch"] == 1


def test_a_trial_without_a_finite_figure_fails_and_the_search_goes_on(tiny_split):
    # A regression network fed NaN inputs has a NaN validation RMSE in its epoch: no finite
    # figure. The worker's loop catches Diverged, so the study records a failed trial and
    # carries on with the next one instead of the worker process crashing (it did).
    from dataclasses import replace

    from search.study.objective import Diverged

    broken = replace(
        tiny_split,
        x_train=tiny_split.x_train * float("nan"),
        y_train=tiny_split.y_train.astype("float32"),
        y_val=tiny_split.y_val.astype("float32"),
        classes=(),
        task="regression",
    )
    config = CONFIG.with_overrides(task="regression", train="table.csv", dataset="table.csv")
    study = optuna.create_study(direction="minimize")
    regression = {**FIXED, "label_smoothing": 0.0, "activation": "tanh"}  # relu turns NaN to 0
    study.enqueue_trial(regression)
    study.enqueue_trial(regression)
    study.optimize(Objective(config, broken), n_trials=2, catch=(Diverged,))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    assert study.trials[0].user_attrs["stop_reason"] == "diverged"


def test_a_trial_running_at_the_deadline_stops_at_its_epoch_end_and_keeps_its_best(tiny_split):
    # A deadline already past: the trial stops after its first epoch instead of training all
    # its epochs, and completes with that epoch's figure, marked as stopped by the timeout.
    import time

    config = CONFIG.with_overrides(max_epochs=50, patience=50)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.enqueue_trial(FIXED)
    study.optimize(Objective(config, tiny_split, deadline=time.time() - 1), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["stop_reason"] == "timeout"
    assert trial.user_attrs["epochs_run"] == 1 and list(trial.intermediate_values) == [1]
    assert trial.value == trial.intermediate_values[1]


def test_the_search_ends_within_an_epoch_of_its_timeout(tiny_split):
    # The worker's loop hands its deadline to the objective: a search whose timeout falls in
    # the middle of a long trial ends with that trial stopped, not trained to the end.
    import time

    from search.study.loop import search_stage

    config = CONFIG.with_overrides(max_epochs=400, patience=400, timeout=4.0, n_trials=5)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.enqueue_trial(FIXED)
    began = time.time()
    search_stage(config, study, study._storage, tiny_split, "memory")
    elapsed = time.time() - began
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert finished and finished[-1].user_attrs["stop_reason"] == "timeout"
    assert all(t.user_attrs["epochs_run"] < 400 for t in finished)
    per_epoch = max(t.user_attrs["train_seconds"] / t.user_attrs["epochs_run"] for t in finished)
    assert elapsed < 4.0 + 10 * per_epoch + 5, f"{elapsed:.1f} s for a 4-s timeout"
