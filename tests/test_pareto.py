"""The Pareto search: the front rule and the rungs on crafted curves, the choice of front
points, and a `--pareto` run end to end on a slice of real Fashion-MNIST (pruned trials, report
section)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from models.task import CLASSIFICATION, REGRESSION
from search.evaluation.selection import select_front
from search.run import main
from search.study.pareto import (
    MIN_CURVES,
    Finished,
    front_ranks,
    is_rung,
    optimistic_final,
    outranked_at_rung,
    should_stop,
)
from tests.conftest import REAL_FASHION, needs_real_fashion, run_cli

# Four finished trials of 10k..40k parameters. From epoch 1 to their end they gained at most
# 0.10 (the first: 0.70 -> 0.80); from epoch 2 at most 0.05.
FINISHED = [
    Finished(10_000, (0.70, 0.75, 0.80)),
    Finished(20_000, (0.80, 0.84, 0.86)),
    Finished(30_000, (0.82, 0.86, 0.88)),
    Finished(40_000, (0.85, 0.88, 0.90)),
]


def test_optimistic_final_adds_the_largest_later_gain_seen_from_that_epoch():
    assert optimistic_final([0.5], FINISHED, CLASSIFICATION) == pytest.approx(0.60)
    assert optimistic_final([0.5, 0.6], FINISHED, CLASSIFICATION) == pytest.approx(0.65)
    # The best so far counts, not the last epoch (a dip is not held against the trial).
    assert optimistic_final([0.7, 0.6], FINISHED, CLASSIFICATION) == pytest.approx(0.75)


def test_a_trial_beaten_by_a_smaller_finished_trial_even_at_its_best_is_stopped():
    # 50k parameters at 0.70 after one epoch: at best 0.80, and the 40k trial has 0.90.
    assert should_stop([0.70], 50_000, FINISHED, CLASSIFICATION)


def test_a_trial_that_could_still_reach_the_front_goes_on():
    # 50k at 0.85: could reach 0.95, above every smaller trial's 0.90.
    assert not should_stop([0.85], 50_000, FINISHED, CLASSIFICATION)
    # 25k at 0.70: could reach 0.80; only the 10k (0.80, not better) and 20k (0.86) are smaller.
    assert should_stop([0.70], 25_000, FINISHED, CLASSIFICATION)
    assert not should_stop([0.77], 25_000, FINISHED, CLASSIFICATION)  # 0.87 > 0.86: may join


def test_the_smallest_network_so_far_is_never_stopped_however_bad():
    assert not should_stop([0.10], 5_000, FINISHED, CLASSIFICATION)


def test_nothing_is_stopped_before_enough_trials_reached_that_epoch():
    few = FINISHED[: MIN_CURVES - 1]
    assert not should_stop([0.10], 50_000, few, CLASSIFICATION)
    # Epoch 4: no finished trial ran that far, so no gain is known and nothing stops.
    assert not should_stop([0.1, 0.1, 0.1, 0.1], 50_000, FINISHED, CLASSIFICATION)


def test_the_rule_reads_rmse_downwards_for_regression():
    finished = [Finished(10_000 * (i + 1), (2.0 - i * 0.1, 1.5 - i * 0.1)) for i in range(4)]
    # Largest gain from epoch 1: 0.5. At 2.5 after one epoch the trial can reach 2.0 at best;
    # the 10k trial finished at 1.5 (lower is better): stop.
    assert should_stop([2.5], 50_000, finished, REGRESSION)
    assert not should_stop([1.6], 50_000, finished, REGRESSION)  # could reach 1.1 < 1.2


def test_rungs_sit_at_epochs_1_3_9_27():
    assert [e for e in range(1, 30) if is_rung(e)] == [1, 3, 9, 27]


def test_at_a_rung_a_trial_goes_on_only_among_the_best_third_by_fronts():
    # Epoch 1 of FINISHED: (0.70, 10k) (0.80, 20k) (0.82, 30k) (0.85, 40k), one front of four.
    # 50k parameters at 0.85 is dominated by (0.85, 40k): four trials ahead of it, and only
    # ceil(5 / 3) = 2 of the five go on.
    assert outranked_at_rung([0.85], 50_000, FINISHED, CLASSIFICATION)
    # The front rule lets the same trial go on: it could still reach 0.95.
    assert not should_stop([0.85], 50_000, FINISHED, CLASSIFICATION)
    # Not dominated (more accurate than all, or smaller than all): on the first front, goes on.
    assert not outranked_at_rung([0.86], 50_000, FINISHED, CLASSIFICATION)
    assert not outranked_at_rung([0.10], 5_000, FINISHED, CLASSIFICATION)
    # Behind one front of one trial only: 1 ahead < 2 kept.
    one_ahead = [Finished(10_000, (0.9,)), *(Finished(90_000, (0.1,)) for _ in range(3))]
    assert not outranked_at_rung([0.5], 50_000, one_ahead, CLASSIFICATION)
    assert outranked_at_rung([0.05], 95_000, one_ahead, CLASSIFICATION)  # 4 ahead


@pytest.mark.parametrize("task", [CLASSIFICATION, REGRESSION])
def test_front_ranks_match_peeling_the_fronts_one_by_one(task):
    rng = np.random.default_rng(0)
    points = [(round(float(f), 1), int(n)) for f, n in rng.integers(0, 8, (60, 2))]
    points += points[:5]  # equal points share a front

    def dominated(p, by):
        kp, kb = task.sort_key(p[0]), task.sort_key(by[0])
        return kb <= kp and by[1] <= p[1] and (kb < kp or by[1] < p[1])

    expected, rest, rank = {}, set(points), 0
    while rest:
        front = {p for p in rest if not any(dominated(p, q) for q in rest)}
        expected.update(dict.fromkeys(front, rank))
        rest, rank = rest - front, rank + 1
    assert front_ranks(points, task) == [expected[p] for p in points]


def test_rungs_wait_for_enough_trials_and_judge_only_at_rung_epochs():
    assert not outranked_at_rung([0.10], 90_000, FINISHED[: MIN_CURVES - 1], CLASSIFICATION)
    # Epoch 2 is no rung; at epoch 3 the best figure by then counts (0.80 by epoch 3 < 0.86).
    assert not outranked_at_rung([0.1, 0.1], 90_000, FINISHED, CLASSIFICATION)
    assert outranked_at_rung([0.8, 0.1, 0.1], 90_000, FINISHED, CLASSIFICATION)
    assert not outranked_at_rung([0.95, 0.1, 0.1], 90_000, FINISHED, CLASSIFICATION)


def test_rungs_read_rmse_downwards_for_regression():
    finished = [Finished(10_000 * (i + 1), (2.0 - i * 0.1,)) for i in range(4)]
    assert outranked_at_rung([2.5], 50_000, finished, REGRESSION)
    assert not outranked_at_rung([1.0], 50_000, finished, REGRESSION)


def _front_study(points: list[tuple[float, int]]) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, (accuracy, size) in enumerate(points):
        trial = optuna.trial.create_trial(
            params={"n_units_l0": i},
            distributions={"n_units_l0": optuna.distributions.IntDistribution(0, 100)},
            values=[accuracy, size],
            state=TrialState.COMPLETE,
        )
        study.add_trial(trial)
    return study


def test_select_front_takes_the_best_the_smallest_near_it_and_spreads_the_rest():
    # Front (smallest first): 0.80@1k, 0.85@5k, 0.88@20k, 0.897@60k, 0.90@200k; one dominated.
    study = _front_study(
        [(0.80, 1_000), (0.85, 5_000), (0.88, 20_000), (0.897, 60_000), (0.90, 200_000)]
        + [(0.70, 300_000)]
    )
    chosen = select_front(study, 4)
    sizes = [t.values[1] for t in chosen]
    assert sizes[0] == 200_000, "the most accurate first"
    assert sizes[1] == 60_000, "then the smallest within half a point of it"
    assert set(sizes[2:]) == {1_000, 20_000}, "then spread along the rest, both ends included"
    assert 300_000 not in sizes, "a dominated trial is not on the front"
    assert [t.values[1] for t in select_front(study, 1)] == [200_000]


def _run(db: Path, *extra: str) -> int:
    return main(
        [
            "--study",
            "fashion",
            "--pareto",
            "--storage",
            f"sqlite:///{db}",
            "--data-dir",
            str(REAL_FASHION),
            "--limit-train",
            "2000",
            "--max-epochs",
            "3",
            "--seed",
            "1",
            "--workers",  # one worker: the resume below counts trials exactly
            "1",
            *extra,
        ]
    )


@pytest.mark.slow
@needs_real_fashion
def test_pareto_run_prunes_retrains_the_front_and_answers_the_size_question(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "p.db"
    assert _run(db, "--n-trials", "14", "--retrain-top", "2", "--seeds", "1") == 0
    study = optuna.load_study(study_name="fashion-pareto", storage=f"sqlite:///{db}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_accuracy", "n_params"]
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) >= 1, "the default pruning pruned nothing"
    assert states.count(TrialState.COMPLETE) >= MIN_CURVES
    for trial in study.trials:
        assert trial.user_attrs["curve"], "every trial stores its per-epoch figures"
        if trial.state == TrialState.COMPLETE:
            assert trial.values[1] == trial.user_attrs["n_params"]
            assert trial.values[0] == max(trial.user_attrs["curve"])

    report = json.loads((tmp_path / "reports" / "fashion-pareto" / "report.json").read_text())
    section = report["pareto"]
    front_trials = {p["trial"] for p in section["front"]}
    assert front_trials == {t.number for t in study.best_trials}
    retrained = {e["trial_number"] for e in report["retrained"]}
    assert retrained and retrained <= front_trials, "only points of the front are retrained"
    answer = section["answer"]
    assert answer["smallest_near_best"]["n_params"] <= answer["most_accurate"]["n_params"]
    assert "pareto_front.png" in report["plots"]
    assert (tmp_path / "reports" / "fashion-pareto" / "pareto_front.png").stat().st_size > 0
    markdown = (tmp_path / "reports" / "fashion-pareto" / "report.md").read_text()
    assert "Smallest network within half a point" in markdown

    # Resumes like any study: the budget is study-wide.
    assert _run(db, "--n-trials", "16", "--no-retrain") == 0
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 16

    # A one-objective run under the Pareto study's name is refused, and adds nothing.
    capsys.readouterr()
    code = main(
        ["--study", "fashion", "--study-name", "fashion-pareto", "--storage", f"sqlite:///{db}"]
        + ["--data-dir", str(REAL_FASHION), "--limit-train", "2000", "--no-retrain"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "two objectives" in err and len(err.strip().splitlines()) == 1
    assert len(study.get_trials()) == 16


@pytest.mark.slow
def test_two_workers_share_one_pareto_study_on_postgresql(postgres_url, data_dir):
    result = run_cli(
        "--study",
        "fashion",
        "--pareto",
        "--storage",
        postgres_url,
        "--data-dir",
        str(data_dir),
        "--workers",
        "2",
        "--n-trials",
        "6",
        "--max-epochs",
        "2",
        "--no-retrain",
        "--no-warm-start",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    study = optuna.load_study(study_name="fashion-pareto", storage=postgres_url)
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(len(numbers))), "trial numbers unique and contiguous"
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert 6 <= len(finished) <= 7, "target met, overshoot at most workers - 1"
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2, "both workers ran trials"
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.values[1] == trial.user_attrs["n_params"]


def test_pareto_in_a_study_file_and_as_a_flag(tmp_path):
    from search.run import build_parser, resolve_config
    from search.study.studyfile import load

    (tmp_path / "train.npz").write_bytes(b"")
    path = tmp_path / "small.toml"
    path.write_text('[study]\npareto = true\n[data]\ntrain = "train.npz"\n')
    config = load(str(path))
    assert config.pareto and config.retrain_top == 4 and config.study_name == "small"
    assert config.directions == ["maximize", "minimize"]
    assert config.metric_names == ["val_accuracy", "n_params"]
    flagged = resolve_config(build_parser().parse_args(["--study", "fashion", "--pareto"]))
    assert flagged.study_name == "fashion-pareto" and flagged.retrain_top == 4
    named = ["--study", "fashion", "--pareto", "--study-name", "mine", "--retrain-top", "2"]
    chosen = resolve_config(build_parser().parse_args(named))
    assert chosen.study_name == "mine" and chosen.retrain_top == 2
    assert not resolve_config(build_parser().parse_args(["--study", "fashion"])).pareto


def test_pareto_is_refused_for_baseline_reproductions(capsys):
    code = main(["--study", "fashion-baselines", "--pareto"])
    err = capsys.readouterr().err
    assert code == 2 and "--pareto applies to a search" in err and len(err.splitlines()) == 1


def _study_with_finished() -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, finished in enumerate(FINISHED):
        study.add_trial(
            optuna.trial.create_trial(
                params={"n_units_l0": i},
                distributions={"n_units_l0": optuna.distributions.IntDistribution(0, 100)},
                values=[max(finished.curve), finished.n_params],
                user_attrs={"curve": list(finished.curve), "n_params": finished.n_params},
            )
        )
    return study


def test_the_callback_stores_the_curve_and_stops_a_hopeless_trial():
    from search.study.objective import ParetoPruningCallback

    trial = _study_with_finished().ask()
    callback = ParetoPruningCallback(trial, 50_000, CLASSIFICATION, max_epochs=3)
    with pytest.raises(optuna.TrialPruned):
        callback.on_epoch_end(0, {"val_accuracy": 0.70})
    assert trial.user_attrs["curve"] == [0.70]


def test_the_callback_with_rungs_also_stops_a_trial_behind_at_a_rung():
    from search.study.objective import ParetoPruningCallback

    study = _study_with_finished()
    front_only = study.ask()
    ParetoPruningCallback(front_only, 50_000, CLASSIFICATION, 3).on_epoch_end(
        0, {"val_accuracy": 0.85}
    )
    behind = ParetoPruningCallback(study.ask(), 50_000, CLASSIFICATION, 3, rungs=True)
    with pytest.raises(optuna.TrialPruned, match="best 1/3"):
        behind.on_epoch_end(0, {"val_accuracy": 0.85})


def test_the_callback_never_stops_after_the_last_epoch_or_when_told_not_to_prune():
    from search.study.objective import ParetoPruningCallback

    study = _study_with_finished()
    last = ParetoPruningCallback(study.ask(), 50_000, CLASSIFICATION, max_epochs=1)
    last.on_epoch_end(0, {"val_accuracy": 0.70})  # completes anyway: its values inform TPE
    off = study.ask()
    ParetoPruningCallback(off, 50_000, CLASSIFICATION, 3, prune=False).on_epoch_end(
        0, {"val_accuracy": 0.70}
    )
    assert off.user_attrs["curve"] == [0.70], "the unpruned search still stores curves"


def test_a_new_pareto_study_starts_at_both_ends_of_the_front(tmp_path):
    """The accuracy search starts from one wide network; the Pareto search also from the
    smallest the space allows, with the same recipe, so the front's small end is measured."""
    from models import build_dense, trainable_params
    from search.study.resume import open_study
    from search.study.space import sample_params
    from search.study.studyfile import PRESETS
    from storage import open_storage

    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    preset = PRESETS["fashion"].with_overrides(storage=url)

    def enqueued(**overrides) -> list[dict]:
        study = open_study(preset.with_overrides(**overrides), storage, "here")
        return [t.system_attrs["fixed_params"] for t in study.get_trials(deepcopy=False)]

    (wide,) = enqueued(study_name="one")
    small = {k: v for k, v in wide.items() if not k.endswith("_l1")}
    small.update(n_layers=1, n_units_l0=32, dropout_l0=0.0, batch_norm=False)
    assert enqueued(study_name="two", pareto=True) == [wide, small]
    params = sample_params(optuna.trial.FixedTrial(small), preset.space)
    stats = (np.zeros(784, np.float32), np.ones(784, np.float32))  # standardised inputs
    model = build_dense(params, feature_stats=stats, decay_steps=1000)
    assert trainable_params(model) == 784 * 32 + 32 + 32 * 10 + 10, (
        "as small as MN-SIGMOID-1x32 (25,450), within 1/20 of FM-SHALLOW-2x78-d0.5 (617,848)"
    )
