"""Retraining the best trials, the test-set figures, idempotence, and the report."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import optuna
import pytest

from search.data import load_test
from search.evaluation.harness import run_candidates
from search.evaluation.metrics import evaluate, macro_precision_recall
from search.evaluation.report import edge_warnings, summarize
from search.evaluation.selection import config_key, select_top
from search.run import main
from storage.artifacts import trial_artifacts
from storage.results import ResultStore, RunRecord
from tests.conftest import PLAIN_KNOBS, tiny_candidate

# One test process makes this module's shared study once (pytest-xdist's loadgroup).
pytestmark = pytest.mark.xdist_group("retrain")

FAST = ["--max-epochs", "2", "--seed", "1"]


def _trial_params(units: int, lr: float = 1e-3) -> dict:
    return {
        "n_layers": 1,
        "n_units_l0": units,
        "dropout_l0": 0.1,
        "activation": "relu",
        "learning_rate": lr,
        "optimizer": "adam",
        "batch_size": 64,
        **PLAIN_KNOBS,
    }


def test_select_top_returns_the_best_distinct_configurations():
    study = optuna.create_study(direction="maximize")
    dists = {
        name: optuna.distributions.CategoricalDistribution([value])
        for name, value in _trial_params(8).items()
        if name != "n_units_l0"
    }
    for units, value in ((32, 0.80), (64, 0.90), (64, 0.91), (128, 0.85), (16, 0.70)):
        study.add_trial(
            optuna.trial.create_trial(
                params=_trial_params(units),
                distributions={
                    **dists,
                    "n_units_l0": optuna.distributions.IntDistribution(8, 1024),
                },
                value=value,
            )
        )
    chosen = select_top(study, 3)
    assert [t.value for t in chosen] == [0.91, 0.85, 0.80], "the 0.90 twin of 0.91 is skipped"
    assert len({config_key(t.params) for t in chosen}) == 3


def test_macro_precision_recall_matches_a_hand_count():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    precision, recall = macro_precision_recall(y_true, y_pred, 3)
    # precision: class0 1/2, class1 2/3, class2 1/1; recall: 1/2, 2/2, 1/2
    assert precision == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert recall == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_evaluate_agrees_with_keras_evaluate(tiny_split):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(tiny_split.x_train, tiny_split.y_train, epochs=1, verbose=0)
    figures = evaluate(model, tiny_split.x_val, tiny_split.y_val)
    loss, accuracy = model.evaluate(tiny_split.x_val, tiny_split.y_val, verbose=0)
    assert figures["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert figures["test_loss"] == pytest.approx(loss, rel=1e-4)


def test_run_candidates_prints_each_model_start_and_epochs_before_its_test_figure(
    tmp_path, tiny_split, capsys
):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    candidate = tiny_candidate(tiny_split, max_epochs=2)
    results = ResultStore(url)
    run_candidates(  # the default log: what `search.run` prints
        [candidate],
        study=study,
        storage=study._storage,
        seeds=[0],
        split=tiny_split,
        test=(tiny_split.x_val, tiny_split.y_val),
        results=results,
        artifact_store=optuna.artifacts.FileSystemArtifactStore(tmp_path),
        model_dir=tmp_path / "models",
    )
    results.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4, f"a start line, one per epoch, the run's figures: {lines}"
    assert lines[0].startswith("[1/1] tiny seed 0: training 6,370 params, at most 2 epochs")
    for epoch, line in enumerate(lines[1:3], start=1):
        assert line.startswith(f"[1/1] tiny seed 0: epoch {epoch}/2 val_acc "), line
        assert "val_loss " in line, line
    assert not any("test" in line for line in lines[:3]), "no test figure before training ends"
    assert "test accuracy" in lines[3] and "2/2 epochs" in lines[3], lines[3]


def test_summarize_gives_mean_and_sample_std():
    runs = [_record(seed, accuracy) for seed, accuracy in enumerate((0.80, 0.82, 0.84))]
    summary = summarize(runs)
    assert summary["n_runs"] == 3
    assert summary["test_accuracy_mean"] == pytest.approx(0.82)
    assert summary["test_accuracy_std"] == pytest.approx(0.02), "sample (n-1) deviation"
    assert summarize(runs[:1])["test_accuracy_std"] == 0.0


def _record(seed: int, accuracy: float) -> RunRecord:
    return RunRecord(
        study_name="s",
        kind="trial",
        config_key="k",
        label="trial 0",
        seed=seed,
        params={},
        test_accuracy=accuracy,
        test_loss=0.5,
        precision=accuracy,
        recall=accuracy,
        n_params=10,
        epochs_run=3,
        max_epochs=5,
        seconds=1.0,
        history={},
    )


def test_edge_warnings_flag_a_best_value_on_the_range_edge():
    study = optuna.create_study(direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(
            params={"learning_rate": 1e-2, "dropout_l0": 0.4},
            distributions={
                "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
                "dropout_l0": optuna.distributions.FloatDistribution(0.0, 0.8),
            },
            value=0.9,
        )
    )
    warnings = edge_warnings(study)
    assert len(warnings) == 1 and "learning_rate" in warnings[0] and "upper edge" in warnings[0]


def test_edge_warnings_leave_a_knob_switched_off_at_zero_alone():
    # The 2026-12-03 MNIST report warned that dropout_l0 = 6.9e-05 "sits on the lower edge of
    # its range [0, 0.6]; the optimum may lie outside": no dropout rate lies below 0.
    study = optuna.create_study(direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(
            params={"dropout_l0": 6.862e-05, "label_smoothing": 0.0, "dropout_l1": 0.59},
            distributions={
                "dropout_l0": optuna.distributions.FloatDistribution(0.0, 0.6),
                "label_smoothing": optuna.distributions.FloatDistribution(0.0, 0.2),
                "dropout_l1": optuna.distributions.FloatDistribution(0.0, 0.6),
            },
            value=0.9,
        )
    )
    warnings = edge_warnings(study)
    assert len(warnings) == 1 and "dropout_l1" in warnings[0] and "upper edge" in warnings[0]


@pytest.fixture(scope="module")
def retrained(tmp_path_factory, shared_data_dir):
    """A tiny study searched and retrained: top 2 configurations x 2 seeds."""
    folder = tmp_path_factory.mktemp("retrained")
    db = folder / "s.db"
    argv = [
        "--study",
        "fashion",
        "--storage",
        f"sqlite:///{db}",
        "--data-dir",
        str(shared_data_dir),
        "--n-trials",
        "3",
        "--retrain-top",
        "2",
        "--seeds",
        "2",
        *FAST,
    ]
    assert main(argv) == 0
    return db, argv


def test_retrain_stores_every_run_with_its_test_figures(retrained):
    db, _ = retrained
    runs = ResultStore(f"sqlite:///{db}").runs("fashion", "trial")
    assert len(runs) == 4, "2 configurations x 2 seeds"
    assert len({r.config_key for r in runs}) == 2
    for run in runs:
        assert 0.0 <= run.test_accuracy <= 1.0 and math.isfinite(run.test_loss)
        assert run.epochs_run >= 1 and run.n_params > 0 and run.seconds > 0
        assert run.history["val_loss"], "learning curves are kept"


def test_retrained_model_reloads_to_the_stored_figure(retrained, shared_data_dir):
    db, _ = retrained
    run = ResultStore(f"sqlite:///{db}").runs("fashion")[0]
    # As a user loads it outside this project (README, Using a saved model): the default retrain
    # trains in worker processes, so this one never imported the project's loss class.
    model = keras.models.load_model(run.model_path, compile=False)
    figures = evaluate(model, *load_test("fashion", str(shared_data_dir)))
    assert figures["test_accuracy"] == pytest.approx(run.test_accuracy, abs=1e-9)
    assert figures["test_loss"] == pytest.approx(run.test_loss, rel=1e-5)


def test_retrained_models_are_artifacts_of_their_trials(retrained):
    db, _ = retrained
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    runs = ResultStore(f"sqlite:///{db}").runs("fashion")
    number = runs[0].trial_number
    linked = {meta["artifact_id"]: meta for meta in trial_artifacts(storage, "fashion", number)}
    for run in (r for r in runs if r.trial_number == number):
        assert linked[run.artifact_id]["filename"].endswith(".keras")
        assert (db.parent / "artifacts" / run.artifact_id).is_file(), "default: beside the db"


def test_retrain_is_idempotent(retrained, capsys):
    db, argv = retrained
    before = ResultStore(f"sqlite:///{db}").runs("fashion")
    assert main(argv) == 0
    assert "already retrained" in capsys.readouterr().out
    assert len(ResultStore(f"sqlite:///{db}").runs("fashion")) == len(before)


def test_report_lists_every_baseline_and_the_retrained_runs(retrained, tmp_path):
    from search.evaluation.report import write_report

    db, _ = retrained
    out = write_report("fashion", f"sqlite:///{db}", tmp_path / "r")
    report = json.loads((out / "report.json").read_text())
    ids = [b["id"] for b in report["baselines"]]
    assert ids[0] == "FM-ALEXNET" and "FM-MLP128" in ids and len(ids) == 8
    shallow = next(b for b in report["baselines"] if b["id"] == "FM-SHALLOW-392-none-d0.8")
    assert shallow["documented"]["test_accuracy"] == pytest.approx(0.8636)
    assert len(report["retrained"]) == 2
    for entry in report["retrained"]:
        assert entry["margin_to_best_documented"] == pytest.approx(
            entry["test_accuracy_mean"] - 0.8671
        )
        for run in entry["runs"]:
            assert __import__("pathlib").Path(run["model_path"]).is_file()
    for name in ("search_history.png", "accuracy_vs_params.png", "learning_curves.png"):
        assert (out / name).stat().st_size > 1000, name
    markdown = (out / "report.md").read_text()
    assert "FM-SHALLOW-2x78-d0.5" in markdown and "not stated" in markdown


def test_search_without_retrain_never_opens_the_test_files(tmp_path, data_dir):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (data_dir / name).write_bytes(b"garbage")
    argv = [
        "--study",
        "fashion",
        "--storage",
        f"sqlite:///{tmp_path / 's.db'}",
        "--data-dir",
        str(data_dir),
        "--n-trials",
        "1",
        "--no-retrain",
        *FAST,
    ]
    assert main(argv) == 0


def test_baselines_preset_reproduces_under_the_same_harness(tmp_path, data_dir, capsys):
    db = tmp_path / "b.db"
    argv = [
        "--study",
        "mnist-baselines",
        "--storage",
        f"sqlite:///{db}",
        "--data-dir",
        str(data_dir),
        "--baselines",
        "MN-SIGMOID-1x32",
        "--seeds",
        "1",
        "--max-epochs",
        "1",
    ]
    assert main(argv) == 0
    runs = ResultStore(f"sqlite:///{db}").runs("mnist", kind="baseline")
    assert [(r.label, r.max_epochs, r.n_params) for r in runs] == [("MN-SIGMOID-1x32", 1, 25_450)]
    out = capsys.readouterr().out
    assert "retrain: 1 configuration x 1 seed;" in out, "singular for one of each"
    assert "[1/1] MN-SIGMOID-1x32 seed 0: epoch 1/1 val_acc " in out, "a line per epoch"


def test_baselines_preset_rejects_an_unknown_id(tmp_path, data_dir, capsys):
    argv = [
        "--study",
        "fashion-baselines",
        "--storage",
        f"sqlite:///{tmp_path / 'b.db'}",
        "--data-dir",
        str(data_dir),
        "--baselines",
        "FM-NOPE",
    ]
    assert main(argv) == 2
    assert "FM-NOPE" in capsys.readouterr().err
    assert not (tmp_path / "b.db").exists()


def test_retrain_adds_an_ensemble_of_the_retrained_models(retrained):
    db, _ = retrained
    store = ResultStore(f"sqlite:///{db}")
    [ensemble] = store.runs("fashion", "ensemble")
    trial_runs = store.runs("fashion", "trial")
    members = ensemble.params["members"]
    assert 1 <= len(members) <= len(trial_runs), "members come from the retrained models"
    by_member = {(r.label, r.seed): r for r in trial_runs}
    assert ensemble.n_params == sum(by_member[(m["label"], m["seed"])].n_params for m in members)
    assert 0.0 <= ensemble.test_accuracy <= 1.0 and ensemble.val_accuracy is not None
