"""The results table of a first-release database is upgraded in place (storage.results):
regression columns added, test figures made optional, every stored run kept."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage.results import ResultStore, RunRecord

# The table as the first release created it: required test figures, no regression columns.
_old = sa.MetaData()
FIRST_RELEASE = sa.Table(
    "search_retrain_runs",
    _old,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *(sa.Column(name, sa.String(255), nullable=False) for name in ("study_name", "kind")),
    *(sa.Column(name, sa.String(255), nullable=False) for name in ("config_key", "label")),
    sa.Column("trial_number", sa.Integer, nullable=True),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("params_json", sa.Text, nullable=False),
    *(
        sa.Column(name, sa.Float, nullable=False)
        for name in ("test_accuracy", "test_loss", "precision", "recall")
    ),
    sa.Column("val_accuracy", sa.Float, nullable=True),
    *(sa.Column(name, sa.Integer, nullable=False) for name in ("n_params", "epochs_run")),
    sa.Column("max_epochs", sa.Integer, nullable=False),
    sa.Column("best_epoch", sa.Integer, nullable=True),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("history_json", sa.Text, nullable=False),
    sa.Column("model_path", sa.Text, nullable=True),
    sa.Column("artifact_id", sa.String(255), nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.UniqueConstraint("study_name", "kind", "config_key", "seed", name="uq_retrain_run"),
)
OLD_ROW = dict(
    study_name="s",
    kind="trial",
    config_key="old",
    label="trial 0",
    seed=0,
    params_json="{}",
    test_accuracy=0.9,
    test_loss=0.3,
    precision=0.9,
    recall=0.9,
    n_params=10,
    epochs_run=1,
    max_epochs=1,
    seconds=1.0,
    history_json="{}",
    created_at="then",
)


def record(key: str, **figures) -> RunRecord:
    base = dict(test_accuracy=None, test_loss=None, precision=None, recall=None)
    return RunRecord(
        study_name="s",
        kind="trial",
        config_key=key,
        label=key,
        seed=0,
        params={},
        n_params=10,
        epochs_run=1,
        max_epochs=1,
        seconds=1.0,
        history={},
        **{**base, **figures},
    )


def _first_release(url: str) -> None:
    engine = sa.create_engine(url)
    _old.create_all(engine)
    with engine.begin() as connection:
        connection.execute(FIRST_RELEASE.insert().values(**OLD_ROW))
    engine.dispose()


def _check_upgrade(url: str) -> None:
    _first_release(url)
    store = ResultStore(url)
    try:
        assert [r.config_key for r in store.runs("s")] == ["old"], "the old run is kept"
        assert store.add(record("untested")), "a run without test figures is stored"
        assert store.add(record("regression", test_loss=2.0, test_rmse=1.4, test_mae=1.1))
        assert not store.add(record("untested")), "the unique key survived the upgrade"
        runs = {r.config_key: r for r in store.runs("s")}
        assert runs["old"].test_accuracy == pytest.approx(0.9)
        assert runs["untested"].test_accuracy is None
        assert runs["regression"].test_rmse == pytest.approx(1.4)
    finally:
        store.close()
    ResultStore(url).close()  # a second opening finds nothing to upgrade


def test_a_first_release_sqlite_table_is_upgraded(tmp_path):
    _check_upgrade(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.slow
def test_a_first_release_server_table_is_upgraded(server_url):
    _check_upgrade(server_url)
