"""Study files: the user's own data and space, described in TOML, run end to end.

Real small data from scikit-learn (the wine table, written to CSV and Parquet) and a synthetic
.npz of a non-image shape; each end-to-end test runs a few short trials through the CLI, then
checks the report and reloads a saved model with plain Keras.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from search.errors import UsageError
from search.run import main
from search.study.config import SearchSpace, StudyConfig
from search.study.studyfile import PRESETS, load, preset_names
from tests.conftest import run_cli

QUICK = ["--n-trials", "2", "--max-epochs", "2", "--seeds", "2", "--retrain-top", "1"]


def wine_frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scikit-learn's wine table: 178 rows, 13 numeric columns, text labels, one text column
    (and a column name with '/', which Keras input names do not allow)."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["label"] = frame.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    frame["colour"] = np.where(frame["color_intensity"] > 5, "dark", "light")
    order = np.random.default_rng(seed).permutation(len(frame))
    return frame.iloc[order[:140]], frame.iloc[order[140:]]


def write_study(folder: Path, text: str, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def wine_study(folder: Path, *, suffix: str = "csv", test: bool = True) -> Path:
    train, held_out = wine_frames()
    for frame, stem in ((train, "wine_train"), (held_out, "wine_test")):
        if suffix == "csv":
            frame.to_csv(folder / f"{stem}.{suffix}", index=False)
        else:
            frame.to_parquet(folder / f"{stem}.{suffix}", index=False)
    lines = [
        "[study]",
        'name = "wine"',
        "[data]",
        f'train = "wine_train.{suffix}"',
        'target = "label"',
    ]
    if test:
        lines.append(f'test = "wine_test.{suffix}"')
    return write_study(folder, "\n".join(lines) + "\n")


def run_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m search.run ARGS` in a fresh process whose working folder is `folder`."""
    return run_cli(*args, cwd=folder)


def refused(capsys, *argv: str) -> str:
    """Run the CLI in-process, expect exit status 2 and one line; return that line."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# --- the format ------------------------------------------------------------------------------


def test_presets_are_the_shipped_study_files():
    assert preset_names() == ["fashion", "fashion-baselines", "mnist", "mnist-baselines"]
    fashion = load("fashion")
    assert fashion == StudyConfig(preset="fashion", dataset="fashion", study_name="fashion")
    assert load("mnist-baselines").mode == "baselines"
    assert PRESETS["mnist"].dataset == "mnist"


def test_minimal_study_file_has_the_preset_defaults_and_paths_relative_to_it(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    path = write_study(
        folder, '[study]\nname = "wine"\n[data]\ntrain = "a.csv"\ntarget = "label"\n'
    )
    config = load(str(path))
    assert config.train == str(folder / "a.csv")
    assert config.test is None
    assert config.target == "label"
    assert config.study_name == "wine"
    assert config.space == SearchSpace()
    assert (config.n_trials, config.max_epochs, config.seeds) == (
        PRESETS["fashion"].n_trials,
        PRESETS["fashion"].max_epochs,
        PRESETS["fashion"].seeds,
    )


def test_every_section_of_a_full_study_file_is_read(tmp_path):
    path = write_study(
        tmp_path,
        """
[study]
name = "full"
seed = 3
[data]
train = "x.npz"
val_fraction = 0.2
[search]
n_trials = 7
timeout = 90.5
max_epochs = 4
pruner = "median"
sampler = "random"
warm_start = false
[space]
n_layers = [1, 2]
n_units = [16, 64]
activations = ["relu", "tanh"]
batch_sizes = [32]
[retrain]
top = 1
seeds = 2
""",
    )
    config = load(str(path))
    assert (config.seed, config.val_fraction, config.n_trials, config.timeout) == (3, 0.2, 7, 90.5)
    assert (config.pruner, config.sampler, config.warm_start) == ("median", "random", False)
    assert config.space.n_units == (16, 64)
    assert config.space.activations == ("relu", "tanh")
    assert config.space.batch_sizes == (32,)
    assert config.space.dropout == SearchSpace().dropout
    assert (config.retrain_top, config.seeds) == (1, 2)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[data]\ntrain = "a.npz"\n[serch]\nn_trials = 3\n', "[serch]"),
        ('[data]\ntrain = "a.npz"\n[search]\ntrials = 3\n', "'trials'"),
        ('[data]\ntrain = "a.npz"\n[search]\nn_trials = "many"\n', "n_trials must be"),
        ('[data]\ntrain = "a.npz"\n[search]\nn_trials = 0\n', "n-trials must be a positive"),
        ('[data]\ntrain = "a.npz"\n[search]\nwarm_start = 1\n', "warm_start must be true or"),
        ('[data]\ntrain = "a.npz"\n[space]\ndropout = [0.2, 1.5]\n', "dropout must lie in [0, 1)"),
        ('[data]\ntrain = "a.npz"\n[space]\nn_units = [64]\n', "n_units is a range"),
        ('[data]\ntrain = "a.npz"\n[space]\nactivations = ["relu", "magic"]\n', "activations"),
        ('[data]\ntrain = "a.npz"\n[space]\nwidth = [1, 2]\n', "'width' in [space]"),
        ('[data]\ntrain = "a.npz"\n[study]\ntask = "ranking"\n', "unknown task 'ranking'"),
        ('[data]\nbuiltin = "mnist"\n[study]\ntask = "regression"\n', "not regression"),
        ('[data]\ntrain = "a.csv"\n', "[data] target is missing"),
        ('[data]\ntrain = "a.npz"\ntarget = "y"\n', "target applies to CSV and Parquet"),
        ("[study]\nname = 'x'\n", "[data] needs either train"),
        ("[data\ntrain = 1", "is not valid TOML"),
    ],
)
def test_bad_study_files_are_refused_naming_the_key(tmp_path, text, names):
    path = write_study(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load(str(path))
    assert names in str(caught.value)
    assert str(path) in str(caught.value)


def test_cli_refuses_a_bad_study_file_with_one_line_and_status_2(tmp_path, capsys):
    path = write_study(tmp_path, '[data]\ntrain = "a.npz"\n[search]\nmax_epochs = -1\n')
    line = refused(capsys, "--study", str(path), "--storage", f"sqlite:///{tmp_path}/s.db")
    assert "max-epochs must be a positive integer" in line
    assert not (tmp_path / "s.db").exists(), "nothing stored"
    assert "unknown study 'nope'" in refused(capsys, "--study", "nope")


# --- bad data: one line, exit 2, no study touched --------------------------------------------


def _bad_data_cases(folder: Path) -> dict[str, tuple[str, str]]:
    """name -> (study file text, what the error line must say)."""
    train, _ = wine_frames()
    train.drop(columns=["alcohol"]).to_csv(folder / "fewer_columns.csv", index=False)
    train.to_csv(folder / "train.csv", index=False)
    train.assign(label="barolo").to_csv(folder / "one_class.csv", index=False)
    with_nan = train.copy()
    with_nan.iloc[[3, 7], 1] = np.nan
    with_nan.to_csv(folder / "nan.csv", index=False)
    train.iloc[:20].to_csv(folder / "tiny.csv", index=False)
    train.assign(when=pd.Timestamp("2026-01-01")).to_parquet(folder / "dates.parquet")
    (folder / "broken.parquet").write_bytes(b"not parquet at all")
    np.savez(folder / "nan.npz", x_train=np.full((50, 3), np.inf), y_train=np.arange(50) % 2)
    np.savez(folder / "nox.npz", inputs=np.zeros((50, 3)), y_train=np.zeros(50))
    head = '[data]\ntarget = "label"\n'
    return {
        "missing file": (head + 'train = "absent.csv"\n', "absent.csv is missing"),
        "missing target column": (
            '[data]\ntarget = "quality"\ntrain = "train.csv"\n',
            "no target column 'quality'; its columns are alcohol",
        ),
        "one class": (head + 'train = "one_class.csv"\n', "single class (barolo)"),
        "nan values": (head + 'train = "nan.csv"\n', "'malic_acid': 2, first at row 4"),
        "too few rows": (head + 'train = "tiny.csv"\n', "leave 2 for validation"),
        "unencodable column": (head + 'train = "dates.parquet"\n', "column 'when' holds"),
        "unreadable file": (head + 'train = "broken.parquet"\n', "cannot be read as PARQUET"),
        "test columns differ": (
            head + 'train = "train.csv"\ntest = "fewer_columns.csv"\n',
            "missing: alcohol",
        ),
        "npz infinite values": ('[data]\ntrain = "nan.npz"\n', "150 NaN or infinite values"),
        "npz without x_train": ('[data]\ntrain = "nox.npz"\n', "no array x_train"),
    }


def test_bad_data_is_refused_with_one_line_and_no_study_touched(tmp_path, capsys):
    db = tmp_path / "s.db"
    for name, (text, expected) in _bad_data_cases(tmp_path).items():
        path = write_study(tmp_path, f'[study]\nname = "bad"\n{text}', name="bad.toml")
        line = refused(capsys, "--study", str(path), "--storage", f"sqlite:///{db}")
        assert expected in line, f"{name}: {line}"
        assert not db.exists() or not optuna.get_all_study_names(f"sqlite:///{db}"), name


# --- end to end --------------------------------------------------------------------------------


def test_parquet_and_csv_of_one_table_give_the_same_split(tmp_path):
    from search.data import load_split, load_test

    splits = []
    for suffix in ("csv", "parquet"):
        folder = tmp_path / suffix
        folder.mkdir()
        source = load(str(wine_study(folder, suffix=suffix))).data_source()
        split = load_split(source)
        splits.append((split, load_test(source, split=split)))
    (a, (ax, ay)), (b, (bx, by)) = splits
    np.testing.assert_allclose(a.x_train, b.x_train, rtol=1e-6)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    np.testing.assert_allclose(ax, bx, rtol=1e-6)
    assert a.classes == b.classes == ("barbera", "barolo", "grignolino")
    # 13 standardised numeric columns and the text column as 2 values + 1 unseen slot.
    assert a.input_shape == (13 + 3,)


@pytest.mark.slow
def test_a_table_study_runs_end_to_end_and_its_model_scores_raw_rows(tmp_path):
    import keras

    suffix = "csv"  # Parquet gives the same split (test above)
    path = wine_study(tmp_path, suffix=suffix)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    done = run_in(tmp_path, "--study", str(path), "--storage", storage, *QUICK)
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name="wine", storage=storage)
    assert study.user_attrs["config"]["target"] == "label"
    assert set(study.user_attrs["data_sha256"]) == {
        str(tmp_path / f"wine_train.{suffix}"),
        str(tmp_path / f"wine_test.{suffix}"),
    }
    report = json.loads((tmp_path / "reports" / "wine" / "report.json").read_text())
    assert report["baselines"] == [] and report["best_documented"] is None
    best = report["retrained"][0]
    run = best["runs"][0]
    # The saved model takes raw columns (text included) and gives the stored test figure.
    signature = json.loads((Path(run["model_path"]).parent / "signature.json").read_text())
    assert signature["classes"] == ["barbera", "barolo", "grignolino"]
    assert signature["columns"]["od280/od315_of_diluted_wines"] == "od280_od315_of_diluted_wines"
    model = keras.models.load_model(run["model_path"])
    rows = (
        pd.read_csv(tmp_path / "wine_test.csv")
        if suffix == "csv"
        else pd.read_parquet(tmp_path / "wine_test.parquet")
    )
    probabilities = model.predict(
        {signature["columns"][c]: rows[c].to_numpy() for c in signature["columns"]}, verbose=0
    )
    predicted = [signature["classes"][i] for i in probabilities.argmax(axis=1)]
    accuracy = float(np.mean(np.array(predicted) == rows["label"].to_numpy()))
    assert accuracy == pytest.approx(run["test_accuracy"])


@pytest.mark.slow
def test_an_npz_study_of_any_input_shape_runs_and_resumes_only_on_the_same_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3, 5)).astype(np.float32)
    y = np.where(x[:, 0, 0] + x[:, 1, 2] > 0, "up", "down")
    np.savez(
        tmp_path / "series.npz", x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:]
    )
    path = write_study(
        tmp_path, '[study]\nname = "series"\n[data]\ntrain = "series.npz"\ntest = "series.npz"\n'
    )
    storage = f"sqlite:///{tmp_path / 's.db'}"
    done = run_in(tmp_path, "--study", str(path), "--storage", storage, *QUICK)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "reports" / "series" / "report.json").read_text())
    assert report["retrained"][0]["test_accuracy_mean"] > 0.6, "a learnable rule, learnt"
    assert len(report["retrained"][0]["runs"]) == 2

    # Without a test file: searched, retrained, and reported on validation alone, labelled so.
    untested = write_study(
        tmp_path, '[study]\nname = "untested"\n[data]\ntrain = "series.npz"\n', name="u.toml"
    )
    alone = run_in(tmp_path, "--study", str(untested), "--storage", storage, *QUICK)
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert "no test set; validation accuracy" in alone.stdout
    report = json.loads((tmp_path / "reports" / "untested" / "report.json").read_text())
    assert report["has_test"] is False
    assert report["headline"]["label"] == "validation accuracy"
    entry = report["retrained"][0]
    assert entry["test_accuracy_mean"] is None and entry["val_accuracy_mean"] > 0.5
    markdown = (tmp_path / "reports" / "untested" / "report.md").read_text()
    assert "**No held-out test set**" in markdown

    # The same data resumes; changed data or a changed space is refused and nothing is added.
    study = optuna.load_study(study_name="series", storage=storage)
    n_trials = len(study.trials)
    np.savez(
        tmp_path / "series.npz", x_train=x[:290], y_train=y[:290], x_test=x[300:], y_test=y[300:]
    )
    changed = run_in(tmp_path, "--study", str(path), "--storage", storage, *QUICK)
    assert changed.returncode == 2
    assert "series.npz changed since study 'series' was made" in changed.stderr
    narrowed = write_study(
        tmp_path, path.read_text() + "[space]\nn_layers = [1, 1]\n", name="narrow.toml"
    )
    np.savez(
        tmp_path / "series.npz", x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:]
    )
    other_space = run_in(tmp_path, "--study", str(narrowed), "--storage", storage, *QUICK)
    assert other_space.returncode == 2
    assert "another search space (n_layers differ)" in other_space.stderr
    assert len(optuna.load_study(study_name="series", storage=storage).trials) == n_trials


def diabetes_study(folder: Path) -> Path:
    """scikit-learn's diabetes table (442 rows, 10 numeric columns, a numeric target)."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = frame["sex"].map({1.0: "f", 2.0: "m"})  # a text column among the numbers
    order = np.random.default_rng(0).permutation(len(frame))
    frame.iloc[order[:360]].to_csv(folder / "train.csv", index=False)
    frame.iloc[order[360:]].to_csv(folder / "test.csv", index=False)
    text = (
        '[study]\nname = "diabetes"\ntask = "regression"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\ntarget = "target"\n'
    )
    return write_study(folder, text)


def test_a_regression_study_file_minimises_rmse_without_label_smoothing(tmp_path):
    config = load(str(diabetes_study(tmp_path)))
    assert config.task_spec.direction == "minimize"
    assert config.task_spec.monitor == "val_rmse"
    assert config.space.label_smoothing == (0.0, 0.0), "label smoothing is for classes"
    assert config.warm_start_params()["label_smoothing"] == 0.0


@pytest.mark.slow
def test_a_regression_study_runs_end_to_end_and_beats_predicting_the_mean(tmp_path):
    import keras

    path = diabetes_study(tmp_path)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    done = run_in(
        tmp_path,
        "--study",
        str(path),
        "--storage",
        storage,
        "--n-trials",
        "3",
        "--max-epochs",
        "15",
        "--seeds",
        "2",
        "--retrain-top",
        "1",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name="diabetes", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert all(t.intermediate_values for t in study.trials), "RMSE reported every epoch"
    report = json.loads((tmp_path / "reports" / "diabetes" / "report.json").read_text())
    assert report["task"] == "regression" and report["headline"]["key"] == "test_rmse"
    best = report["retrained"][0]
    test = pd.read_csv(tmp_path / "test.csv")
    train = pd.read_csv(tmp_path / "train.csv")
    mean_rmse = float(np.sqrt(np.mean((test["target"] - train["target"].mean()) ** 2)))
    assert best["test_rmse_mean"] < 0.9 * mean_rmse, (best["test_rmse_mean"], mean_rmse)
    assert "test RMSE" in (tmp_path / "reports" / "diabetes" / "report.md").read_text()
    # The saved model predicts in the target's own units from raw rows.
    run = best["runs"][0]
    signature = json.loads((Path(run["model_path"]).parent / "signature.json").read_text())
    assert signature["classes"] == []
    model = keras.models.load_model(run["model_path"])
    predicted = model.predict(
        {signature["columns"][c]: test[c].to_numpy() for c in signature["columns"]}, verbose=0
    ).reshape(-1)
    rmse = float(np.sqrt(np.mean((predicted - test["target"].to_numpy()) ** 2)))
    assert rmse == pytest.approx(run["test_rmse"], rel=1e-4)


def test_the_readme_study_files_are_valid(tmp_path):
    import re

    from tests.conftest import ROOT

    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) >= 2, "the minimal and the complete example"
    for index, block in enumerate(blocks):
        config = load(str(write_study(tmp_path, block, name=f"readme{index}.toml")))
        assert config.train is not None


def test_a_study_file_reads_a_folder_of_idx_files(tmp_path):
    from search.data import load_split, load_test
    from tests.conftest import write_dataset

    write_dataset(tmp_path / "images", n_train=200, n_test=50)
    path = write_study(
        tmp_path, '[study]\nname = "own"\n[data]\ntrain = "images"\ntest = "images"\n'
    )
    config = load(str(path))
    split = load_split(config.data_source(), val_fraction=config.val_fraction)
    assert split.input_shape == (28, 28, 1) and len(split.x_train) + len(split.x_val) == 200
    # The file's labels (digits here) map to ids in sorted order, and back.
    assert list(split.classes) == sorted(split.classes) and set(split.classes) <= set(range(10))
    assert set(split.y_train.tolist()) <= set(range(split.n_classes))
    x_test, y_test = load_test(config.data_source(), split=split)
    assert len(x_test) == len(y_test) == 50
