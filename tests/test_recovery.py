"""Crash recovery on one machine: the supervisor's fail-and-retry, the retry's attributes, and
the worker attribute a trial carries from its first moment (SQLite, no training needed)."""

from __future__ import annotations

import os
import socket
import warnings

import optuna
from optuna.trial import TrialState

from search.study.objective import Objective
from search.study.studyfile import PRESETS
from search.study.supervisor import fail_trials_of
from storage.rdb import RetryStaleTrial, open_storage

ME = f"{socket.gethostname()}:{os.getpid()}"


def _study(tmp_path) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1)
    return optuna.create_study(storage=storage, study_name="s"), storage


def test_fail_trials_of_survives_a_trial_another_worker_failed_first(tmp_path, monkeypatch):
    study, storage = _study(tmp_path)
    trial = study.ask()
    trial.set_user_attr("worker", ME)
    seen_running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    # Between the supervisor's look and its write, the heartbeat rule failed the trial.
    storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    monkeypatch.setattr(study, "get_trials", lambda **_: seen_running)
    assert fail_trials_of(study, storage, os.getpid()) == [], "nothing failed twice, no raise"


def test_retry_of_a_stale_trial_does_not_inherit_the_dead_worker(tmp_path):
    study, storage = _study(tmp_path)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("worker", "lost-machine:123")
    trial.set_user_attr("n_params", 10)
    storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    RetryStaleTrial(max_retry=2)(study, storage.get_trial(trial._trial_id))
    [retry] = study.get_trials(states=(TrialState.WAITING,))
    assert "worker" not in retry.user_attrs, "the retry will run in another process"
    assert retry.user_attrs["retry_of"] == trial.number and retry.user_attrs["n_params"] == 10


def test_objective_names_its_worker_before_sampling_can_fail(tmp_path, tiny_split):
    study, _ = _study(tmp_path)
    study.enqueue_trial({"n_layers": 1, "n_units_l0": 0})  # 0 units: ModelParams refuses it
    config = PRESETS["fashion"].with_overrides(max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the enqueued value lies outside the range
        study.optimize(Objective(config, tiny_split), n_trials=1, catch=(ValueError,))
    [trial] = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["worker"] == ME, "a failed trial still says where it ran"
