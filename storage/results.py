"""The project's own tables of retrained and reproduced runs, beside Optuna's tables.

One row per (study, configuration, seed): a configuration is a search trial's parameters
(`kind="trial"`) or a documented baseline (`kind="baseline"`). The unique key makes re-running
idempotent: what is stored is not trained again, and the report is rebuilt from these rows alone.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from storage.rdb import init_lock, retry_outage, serialize_sqlite

metadata = sa.MetaData()

runs_table = sa.Table(
    "search_retrain_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_name", sa.String(512), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "trial" or "baseline"
    sa.Column("config_key", sa.String(255), nullable=False),
    sa.Column("label", sa.String(255), nullable=False),
    sa.Column("trial_number", sa.Integer, nullable=True),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("params_json", sa.Text, nullable=False),
    # Test figures are absent for a study without a test file; accuracy, precision and recall
    # for regression. Regression's figures (RMSE, MAE) are the three columns after them.
    sa.Column("test_accuracy", sa.Float, nullable=True),
    sa.Column("test_loss", sa.Float, nullable=True),
    sa.Column("precision", sa.Float, nullable=True),
    sa.Column("recall", sa.Float, nullable=True),
    sa.Column("val_accuracy", sa.Float, nullable=True),
    sa.Column("val_rmse", sa.Float, nullable=True),
    sa.Column("test_rmse", sa.Float, nullable=True),
    sa.Column("test_mae", sa.Float, nullable=True),
    sa.Column("n_params", sa.Integer, nullable=False),
    sa.Column("epochs_run", sa.Integer, nullable=False),
    sa.Column("max_epochs", sa.Integer, nullable=False),
    sa.Column("best_epoch", sa.Integer, nullable=True),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("history_json", sa.Text, nullable=False),
    sa.Column("model_path", sa.Text, nullable=True),
    sa.Column("artifact_id", sa.String(255), nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.UniqueConstraint("study_name", "kind", "config_key", "seed", name="uq_retrain_run"),
)


# Who is training which run: a machine claims a run before training it, so any number of
# machines finishing a study together train every run exactly once. A claim is a lease,
# renewed every epoch; one left by a crashed machine expires and another machine takes it over.
claims_table = sa.Table(
    "search_retrain_claims",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_name", sa.String(512), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("config_key", sa.String(255), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),  # host:pid
    sa.Column("lease_until", sa.Float, nullable=False),  # seconds since the epoch, UTC
    sa.UniqueConstraint("study_name", "kind", "config_key", "seed", name="uq_retrain_claim"),
)


@dataclass
class RunRecord:
    """One retrained (or reproduced) run and its test-set figures."""

    study_name: str
    kind: str
    config_key: str
    label: str
    seed: int
    params: dict[str, Any]
    test_accuracy: float | None
    test_loss: float | None
    precision: float | None
    recall: float | None
    n_params: int
    epochs_run: int
    max_epochs: int
    seconds: float
    history: dict[str, list[float]]
    trial_number: int | None = None
    val_accuracy: float | None = None
    val_rmse: float | None = None
    test_rmse: float | None = None
    test_mae: float | None = None
    best_epoch: int | None = None
    model_path: str | None = None
    artifact_id: str | None = None
    created_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["params_json"] = json.dumps(row.pop("params"), sort_keys=True)
        row["history_json"] = json.dumps(row.pop("history"))
        return row

    @classmethod
    def from_row(cls, row: sa.Row) -> RunRecord:
        data = dict(row._mapping)
        data.pop("id", None)
        data["params"] = json.loads(data.pop("params_json"))
        data["history"] = json.loads(data.pop("history_json"))
        return cls(**data)


# The first release's table: the test figures were required and regression had no columns.
_ADDED = ("val_rmse", "test_rmse", "test_mae")
_NOW_NULLABLE = ("test_accuracy", "test_loss", "precision", "recall")


def _upgrade(engine: sa.Engine) -> None:
    """Bring a first-release `search_retrain_runs` to today's columns (Alembic's operations;
    on SQLite a batch copy of the table). Called under the table-creation lock."""
    inspector = sa.inspect(engine)
    if not inspector.has_table(runs_table.name):
        return
    columns = {column["name"]: column for column in inspector.get_columns(runs_table.name)}
    missing = [name for name in _ADDED if name not in columns]
    strict = [name for name in _NOW_NULLABLE if not columns[name]["nullable"]]
    if not (missing or strict):
        return
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    try:
        with engine.begin() as connection:
            operations = Operations(MigrationContext.configure(connection))
            with operations.batch_alter_table(runs_table.name) as batch:
                for name in missing:
                    batch.add_column(sa.Column(name, sa.Float, nullable=True))
                for name in strict:
                    batch.alter_column(name, existing_type=sa.Float, nullable=True)
    except sa.exc.OperationalError:
        # SQLite has no creation lock: another process may have upgraded it meanwhile.
        if any(
            name not in {c["name"] for c in sa.inspect(engine).get_columns(runs_table.name)}
            for name in _ADDED
        ):
            raise


class ResultStore:
    """Reads and writes `search_retrain_runs` in the study's own database."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            serialize_sqlite(self.engine)  # one file, several processes: as Optuna's storage
            _upgrade(self.engine)
            metadata.create_all(self.engine)
        else:
            # Machines finishing together create the tables at once: under Optuna's own lock.
            with init_lock(self.engine):
                _upgrade(self.engine)
                metadata.create_all(self.engine)

    def has(self, study_name: str, kind: str, config_key: str, seed: int) -> bool:
        t = runs_table
        query = sa.select(t.c.id).where(
            t.c.study_name == study_name,
            t.c.kind == kind,
            t.c.config_key == config_key,
            t.c.seed == seed,
        )

        def attempt() -> bool:
            with self.engine.connect() as connection:
                return connection.execute(query).first() is not None

        return retry_outage(attempt)

    def add(self, record: RunRecord) -> bool:
        """Store a run; False (and nothing changed) when that run is stored already."""

        def attempt() -> bool:
            try:
                with self.engine.begin() as connection:
                    connection.execute(runs_table.insert().values(**record.to_row()))
            except sa.exc.IntegrityError:
                return False  # another machine stored it first (say, after our lease ran out)
            return True

        return retry_outage(attempt)

    def claim(
        self, study_name: str, kind: str, config_key: str, seed: int, owner: str, lease: float
    ) -> str | None:
        """Claim a run for `lease` seconds; None when claimed, else the owner holding it.

        A claim that `owner` already holds, or whose lease has run out, is taken over.
        """
        t = claims_table
        key = (
            (t.c.study_name == study_name)
            & (t.c.kind == kind)
            & (t.c.config_key == config_key)
            & (t.c.seed == seed)
        )
        row = {"study_name": study_name, "kind": kind, "config_key": config_key, "seed": seed}

        def attempt() -> str | None:
            now = time.time()
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        t.insert().values(**row, owner=owner, lease_until=now + lease)
                    )
                return None
            except sa.exc.IntegrityError:
                pass
            with self.engine.begin() as connection:
                taken = connection.execute(
                    t.update()
                    .where(key & ((t.c.lease_until < now) | (t.c.owner == owner)))
                    .values(owner=owner, lease_until=now + lease)
                ).rowcount
                if taken == 1:
                    return None
                return connection.execute(sa.select(t.c.owner).where(key)).scalar() or "another"

        return retry_outage(attempt)

    def _move_claim(self, run: tuple, holder: str, owner: str, lease: float) -> bool:
        """Give `holder`'s claim on `run` to `owner` for `lease` seconds from now."""
        study_name, kind, config_key, seed = run
        t = claims_table
        with self.engine.begin() as connection:
            moved = connection.execute(
                t.update()
                .where(
                    (t.c.study_name == study_name)
                    & (t.c.kind == kind)
                    & (t.c.config_key == config_key)
                    & (t.c.seed == seed)
                    & (t.c.owner == holder)
                )
                .values(owner=owner, lease_until=time.time() + lease)
            )
            return moved.rowcount == 1

    def take_over(
        self,
        study_name: str,
        kind: str,
        config_key: str,
        seed: int,
        holder: str,
        owner: str,
        lease: float,
    ) -> bool:
        """Move `holder`'s claim to `owner` (the caller knows `holder` is dead); False when the
        claim changed hands meanwhile."""
        run = (study_name, kind, config_key, seed)
        return retry_outage(lambda: self._move_claim(run, holder, owner, lease))

    def renew(
        self, study_name: str, kind: str, config_key: str, seed: int, owner: str, lease: float
    ) -> bool:
        """Extend `owner`'s claim by `lease` seconds from now; False when the database could not
        be reached (one try: training goes on, the lease still runs; the next epoch renews)."""
        try:
            self._move_claim((study_name, kind, config_key, seed), owner, owner, lease)
        except sa.exc.OperationalError:
            return False
        return True

    def runs(self, study_name: str, kind: str | None = None) -> list[RunRecord]:
        t = runs_table
        query = sa.select(t).where(t.c.study_name == study_name).order_by(t.c.id)
        if kind is not None:
            query = query.where(t.c.kind == kind)

        def attempt() -> list[RunRecord]:
            with self.engine.connect() as connection:
                return [RunRecord.from_row(row) for row in connection.execute(query)]

        return retry_outage(attempt)

    def close(self) -> None:
        self.engine.dispose()
