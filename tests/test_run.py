"""`search.run` in-process on synthetic IDX files: the study, resume, and every bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from search.run import build_parser, main
from tests.conftest import assert_one_line_error, write_idx

# One test process makes this module's shared study once (pytest-xdist's loadgroup).
pytestmark = pytest.mark.xdist_group("run")

FAST = ["--max-epochs", "1", "--no-retrain", "--seed", "1", "--workers", "1"]


def _study(db: Path, name: str = "fashion") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_study(db: Path, data_dir: Path) -> Path:
    """A SQLite file holding a 'fashion' study with two finished trials."""
    code = main(
        [
            "--study",
            "fashion",
            "--storage",
            f"sqlite:///{db}",
            "--data-dir",
            str(data_dir),
            "--n-trials",
            "2",
            *FAST,
        ]
    )
    assert code == 0
    return db


@pytest.fixture(scope="module")
def kept_study(tmp_path_factory, shared_data_dir) -> Path:
    """A study that tests of bad input must leave byte-for-byte as it is."""
    return _make_study(tmp_path_factory.mktemp("kept") / "s.db", shared_data_dir)


@pytest.fixture
def made_study(tmp_path, kept_study) -> Path:
    """A copy of the module's study (made once from `shared_data_dir`) for this test to change:
    each search.run with its worker process costs about 20 s here."""
    return Path(shutil.copyfile(kept_study, tmp_path / "s.db"))


def test_run_stores_the_study_with_its_records(made_study, shared_data_dir):
    study = _study(made_study)
    assert _finished(study) == 2
    for trial in study.trials:
        assert trial.intermediate_values, "one value per epoch"
        assert {"n_layers", "activation", "learning_rate"} <= set(trial.params)
        assert {"n_params", "epochs_run", "train_seconds"} <= set(trial.user_attrs)
    attrs = study.user_attrs
    assert attrs["config"]["dataset"] == "fashion" and attrs["config"]["max_epochs"] == 1
    assert "storage" not in attrs["config"], "the URL may hold a password"
    assert "keras" in attrs["versions"] and "optuna" in attrs["versions"]
    assert attrs["git_revision"]
    assert attrs["data_source"] == str(shared_data_dir.resolve())


def test_run_resumes_until_the_study_wide_target(made_study, shared_data_dir, capsys):
    argv = [
        "--study",
        "fashion",
        "--storage",
        f"sqlite:///{made_study}",
        "--data-dir",
        str(shared_data_dir),
        *FAST,
    ]
    assert main([*argv, "--n-trials", "3"]) == 0
    assert _finished(_study(made_study)) == 3, "exactly one more trial to reach 3"
    capsys.readouterr()
    assert main([*argv, "--n-trials", "3"]) == 0
    assert "nothing to search" in capsys.readouterr().out
    assert len(_study(made_study).trials) == 3, "a reached target starts no trial"


def test_run_resumed_study_does_not_replay_the_first_draws(made_study, shared_data_dir):
    argv = [
        "--study",
        "fashion",
        "--storage",
        f"sqlite:///{made_study}",
        "--data-dir",
        str(shared_data_dir),
        "--sampler",
        "random",
        *FAST,
    ]
    assert main([*argv, "--n-trials", "4", "--study-name", "r"]) == 0
    assert main([*argv, "--n-trials", "8", "--study-name", "r"]) == 0
    params = [tuple(sorted(t.params.items())) for t in _study(made_study, "r").trials]
    assert len(set(params)) == len(params) == 8


def test_run_help_documents_every_flag():
    text = build_parser().format_help()
    for flag in (
        "--study",
        "--storage",
        "--study-name",
        "--n-trials",
        "--timeout",
        "--sampler",
        "--pruner",
        "--max-epochs",
        "--limit-train",
        "--data-dir",
        "--seed",
        "--no-retrain",
    ):
        assert flag in text


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--study", "cifar"], "unknown study 'cifar'"),
        (["--study", "fashion", "--n-trials", "0"], "--n-trials"),
        (["--study", "fashion", "--n-trials", "-3"], "--n-trials"),
        (["--study", "fashion", "--n-trials", "many"], "--n-trials"),
        (["--study", "fashion", "--timeout", "0"], "--timeout"),
        (["--study", "fashion", "--timeout", "nan"], "--timeout"),
        (["--study", "fashion", "--max-epochs", "0"], "--max-epochs"),
        (["--study", "fashion", "--limit-train", "-5"], "--limit-train"),
        (["--study", "fashion", "--limit-train", "5"], "--limit-train"),
        (["--study", "fashion", "--seed", "-1"], "--seed"),
        (["--study", "fashion", "--pruner", "magic"], "--pruner"),
    ],
)
def test_run_rejects_nonsense_flags_in_one_line(kept_study, shared_data_dir, capsys, extra, needle):
    before = _digest(kept_study)
    argv = ["--storage", f"sqlite:///{kept_study}", "--data-dir", str(shared_data_dir), *extra]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors exit from parse_args
        code = exit_.code
    assert_one_line_error(capsys, code, needle)
    assert _digest(kept_study) == before, "the stored study is untouched"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("not a url", "malformed storage URL"),
        ("oracle://scott:tiger@db/orcl", "unsupported database"),
        ("postgresql+nosuchdriver://u@127.0.0.1/test", "driver"),
        ("sqlite:////no/such/folder/s.db", "does not exist"),
        ("sqlite://", "in-memory"),
    ],
)
def test_run_rejects_bad_storage_urls_in_one_line(data_dir, capsys, url, needle):
    code = main(["--study", "fashion", "--storage", url, "--data-dir", str(data_dir), *FAST])
    assert_one_line_error(capsys, code, needle)


def test_run_refuses_a_file_that_is_not_a_database(tmp_path, data_dir, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n")
    code = main(
        [
            "--study",
            "fashion",
            "--storage",
            f"sqlite:///{notes}",
            "--data-dir",
            str(data_dir),
            *FAST,
        ]
    )
    assert_one_line_error(capsys, code, "not a SQLite database")
    assert notes.read_text() == "my notes, not a database\n"


def test_run_unreachable_server_fails_fast_without_printing_the_password(data_dir, capsys):
    url = "postgresql+psycopg://alice:s3cr3t-pw@127.0.0.1:1/test"  # nothing listens on port 1
    code = main(["--study", "fashion", "--storage", url, "--data-dir", str(data_dir), *FAST])
    err = assert_one_line_error(capsys, code, "cannot reach database", "alice:***@")
    assert "s3cr3t-pw" not in err


def test_run_malformed_url_with_password_is_masked(data_dir, capsys):
    url = "postgresql+psycopg://bob:hunter2@127.0.0.1:notaport/test"
    code = main(["--study", "fashion", "--storage", url, "--data-dir", str(data_dir), *FAST])
    err = assert_one_line_error(capsys, code)
    assert "hunter2" not in err


def test_run_missing_data_leaves_the_study_untouched(made_study, tmp_path, capsys):
    before = _digest(made_study)
    code = main(
        [
            "--study",
            "fashion",
            "--storage",
            f"sqlite:///{made_study}",
            "--data-dir",
            str(tmp_path / "nowhere"),
            *FAST,
        ]
    )
    assert_one_line_error(capsys, code, "does not exist", "--data-dir")
    assert _digest(made_study) == before


def test_run_corrupt_data_names_the_file_and_creates_no_database(tmp_path, data_dir, capsys):
    write_idx(data_dir / "train-images-idx3-ubyte", np.zeros(7, np.uint8))
    db = tmp_path / "new.db"
    code = main(
        ["--study", "fashion", "--storage", f"sqlite:///{db}", "--data-dir", str(data_dir), *FAST]
    )
    assert_one_line_error(capsys, code, "train-images-idx3-ubyte", "corrupt")
    assert not db.exists(), "bad input creates no database"


def test_run_refuses_a_study_made_for_another_dataset(made_study, shared_data_dir, capsys):
    before = _finished(_study(made_study))
    code = main(
        [
            "--study",
            "mnist",
            "--study-name",
            "fashion",
            "--storage",
            f"sqlite:///{made_study}",
            "--data-dir",
            str(shared_data_dir),
            *FAST,
        ]
    )
    assert_one_line_error(capsys, code, "searches 'fashion', not 'mnist'")
    assert _finished(_study(made_study)) == before


def test_run_refuses_to_mix_a_study_of_the_older_search_space(made_study, shared_data_dir, capsys):
    study = _study(made_study)
    old = {k: v for k, v in study.user_attrs["config"].items() if k != "space_version"}
    study.set_user_attr("config", old)  # as a version-1 study recorded it: no version
    before = _digest(made_study)
    argv = ["--study", "fashion", "--storage", f"sqlite:///{made_study}"]
    code = main([*argv, "--data-dir", str(shared_data_dir), "--n-trials", "4", *FAST])
    assert_one_line_error(capsys, code, "search space version 1", "--study-name fashion-v2")
    assert _digest(made_study) == before, "nothing is added to the old study"


def test_run_without_tensorflow_names_the_install_in_one_line(data_dir, capsys, monkeypatch):
    # TensorFlow comes with an extra ('cpu' or 'gpu'): a bare `pip install -e .` has none.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorflow" else real(name, *a),
    )
    code = main(["--study", "fashion", "--data-dir", str(data_dir), *FAST])
    assert_one_line_error(capsys, code, "TensorFlow is not installed", ".[cpu]", ".[gpu]")
