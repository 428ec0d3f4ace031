"""Progress output of several local workers: one bar in the parent, every trial line once."""

from __future__ import annotations

import queue

import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from search.study.config import SearchSpace
from search.study.progress import Progress, SharedBar


def _worker_progress(events: queue.Queue, index: int) -> Progress:
    return Progress(
        target=10,
        finished=0,
        max_epochs=20,
        timeout=None,
        space=SearchSpace(),
        prefix=f"[w{index}] ",
        events=events,
    )


def _finished_trial(study: optuna.Study, value: float) -> optuna.trial.FrozenTrial:
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=value,
            params={"n_layers": 1},
            distributions={"n_layers": IntDistribution(1, 3)},
            user_attrs={"epochs_run": 3, "stop_reason": "patience", "n_params": 1234},
        )
    )
    return study.trials[-1]


def test_shared_bar_prints_each_workers_trial_lines_and_tracks_their_epochs(capsys):
    events: queue.Queue = queue.Queue()
    bar = SharedBar(events, target=10, finished=0)
    w0, w1 = _worker_progress(events, 0), _worker_progress(events, 1)
    study = optuna.create_study(direction="maximize")

    w0.on_epoch(0, 1, {"val_accuracy": 0.5})
    w1.on_epoch(1, 2, {"val_accuracy": 0.75})
    w0(study, _finished_trial(study, 0.8))
    w1.on_epoch(1, 3, {"val_accuracy": 0.8})
    bar.close()  # writes what is still queued

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("[w0] [1/10 ") and "trial   0 COMPLETE patience" in lines[0]
    assert "val_acc 0.8000" in lines[0] and "best 0.8000 (#0)" in lines[0]
    # w0's trial is over, so only w1's running trial stays on the bar, at its last epoch.
    assert bar.status == {"[w1]": "trial 1 epoch 3/20 val_acc 0.8000"}


def test_a_worker_with_a_shared_bar_draws_no_bar_of_its_own():
    events: queue.Queue = queue.Queue()
    progress = _worker_progress(events, 0)
    assert progress.bar.disable
    progress.on_epoch(4, 2, {"val_accuracy": 0.6})
    assert events.get_nowait() == ("epoch", "[w0]", "trial 4 epoch 2/20 val_acc 0.6000")
