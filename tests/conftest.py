"""Shared fixtures: tiny synthetic data (as arrays and as IDX files) and a CLI runner."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from search.data import Split

ROOT = Path(__file__).resolve().parent.parent
# Real data for the few tests that need it: ../shared/data beside the repository by default.
REAL_FASHION = Path(
    os.environ.get("SEARCH_TEST_FASHION_DIR", ROOT.parent / "shared" / "data" / "fashion-mnist")
)


def missing(what: str) -> None:
    """Fail under CI=true, where every database, dataset and browser must be there; elsewhere
    skip. Either way the message names what is missing."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"missing under CI: {what}", pytrace=False)
    pytest.skip(f"missing: {what}")


def assert_one_line_error(capsys, code: int, *needles: str) -> str:
    """A command's refusal: exit status 2 and one line on stderr holding every needle."""
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, f"one line, got: {err!r}"
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def _real_fashion() -> None:
    if not (REAL_FASHION / "train-images-idx3-ubyte.gz").is_file():
        missing(f"real Fashion-MNIST files not in {REAL_FASHION} (set SEARCH_TEST_FASHION_DIR)")


needs_real_fashion = pytest.mark.usefixtures("_real_fashion")


# The space-version-2 knobs at their plainest: a trial dict of the old seven parameters plus
# these is a plain network (no batch norm or standardisation, constant rate, no smoothing).
PLAIN_KNOBS = {
    "batch_norm": False,
    "weight_decay": 1e-6,
    "standardize": False,
    "lr_schedule": "constant",
    "label_smoothing": 0.0,
}


# Fixtures that run `search.run` end to end (worker processes, training): every test using one
# is `slow`, so the quick command (`pytest -m "not slow"`) leaves it out.
_END_TO_END_FIXTURES = {"made_study", "retrained"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _END_TO_END_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 28x28 images whose class is a bright horizontal band: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 * label + 4 : 2 * label + 7, :] = 230
    return images, labels


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_dataset(folder: Path, n_train: int = 400, n_test: int = 100) -> Path:
    """The four standard IDX files of a synthetic dataset in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = synthetic_images(n, seed)
        write_idx(folder / f"{part}-images-idx3-ubyte", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte", labels)
    return folder


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data")


@pytest.fixture(scope="module")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic IDX files shared by a module's tests that only read them."""
    return write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_split() -> Split:
    images, labels = synthetic_images(360, seed=3)
    x = (images.astype(np.float32) / 255.0)[..., None]
    return Split(x[:300], labels[:300], x[300:], labels[300:], source="synthetic")


def tiny_candidate(split: Split, max_epochs: int):
    """A baseline candidate of one 8-unit layer on `split`, for tests of the retrain harness."""
    from models import ModelParams, build_dense
    from search.evaluation.candidates import Candidate

    params = ModelParams(units=(8,), dropouts=(0.0,))
    return Candidate(
        kind="baseline",
        config_key="tiny",
        label="tiny",
        params={},
        build=lambda: build_dense(params, split.input_shape),
        batch_size=64,
        max_epochs=max_epochs,
        patience=None,
        monitor="val_loss",
    )


def clean_env() -> dict[str, str]:
    """The environment without the caller's SEARCH_* settings, for tests of the defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_")}


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m search.run ARGS` in a fresh process, working in `cwd` (where reports/ and
    artifacts/ are written): by default a fresh temporary folder, never the checkout, whose
    reports/ may hold the user's own runs. One worker unless ARGS say `--workers`: the tests'
    trial counts and lines assume one process (tests/test_workers.py is about several)."""
    full_env = {**clean_env(), "PYTHONPATH": str(ROOT), **(env or {})}
    workers = [] if "--workers" in args else ["--workers", "1"]
    with tempfile.TemporaryDirectory(prefix="search-run-") as scratch:
        return subprocess.run(
            [sys.executable, "-m", "search.run", *args, *workers],
            cwd=cwd or scratch,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=600,
        )


REAL_MNIST = Path(
    os.environ.get("SEARCH_TEST_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist")
)


@pytest.fixture
def _real_mnist() -> None:
    if not (REAL_MNIST / "train-images-idx3-ubyte.gz").is_file():
        missing(f"real MNIST files not in {REAL_MNIST} (set SEARCH_TEST_MNIST_DIR)")


needs_real_mnist = pytest.mark.usefixtures("_real_mnist")


# --- real database servers (PostgreSQL, MariaDB) for the tests of shared storage -------------

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/{db}",
}
_ADMIN_DB = {"postgresql": "test", "mysql": "test"}


def _admin_engine(kind: str):
    import sqlalchemy as sa

    return sa.create_engine(
        SERVERS[kind].format(db=_ADMIN_DB[kind]),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,  # a fresh connection each time: tests restart the server
        connect_args={"connect_timeout": 5},
    )


@pytest.fixture(params=sorted(SERVERS))
def server_url(request) -> str:
    """A fresh, empty database on a real local server, dropped afterwards."""
    yield from _fresh_database(request.param)


@pytest.fixture
def postgres_url() -> str:
    yield from _fresh_database("postgresql")


@pytest.fixture
def stoppable_postgres_url() -> str:
    """A fresh PostgreSQL database for a test that stops or restarts the server: it waits until
    no other test process uses the server, and keeps them off it until it ends."""
    yield from _fresh_database("postgresql", exclusive=True)


# The suite runs in two processes (pytest-xdist). A test that stops the PostgreSQL server holds
# this file's lock exclusively; every other test on that server holds it shared.
_POSTGRES_LOCK = Path(tempfile.gettempdir()) / "keras-search-tests-postgresql.lock"


@contextlib.contextmanager
def postgres_in_use(*, exclusive: bool = False) -> Iterator[None]:
    """Hold the PostgreSQL server for this test: shared, or alone to stop it."""
    with open(_POSTGRES_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture
def mysql_url() -> str:
    yield from _fresh_database("mysql")


def _fresh_database(kind: str, *, exclusive: bool = False):
    """A fresh database on `kind`'s server; PostgreSQL's under the tests' server lock."""
    locked = kind == "postgresql"
    with postgres_in_use(exclusive=exclusive) if locked else contextlib.nullcontext():
        yield from _database_on(kind)


def _database_on(kind: str):
    import uuid

    import sqlalchemy as sa

    name = f"search_t_{uuid.uuid4().hex[:10]}"
    engine = _admin_engine(kind)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        missing(f"{kind} server at 127.0.0.1 is unreachable ({type(exc.orig).__name__})")
    try:
        yield SERVERS[kind].format(db=name)
    finally:
        drop = (
            f"DROP DATABASE {name} WITH (FORCE)"
            if kind == "postgresql"
            else f"DROP DATABASE {name}"
        )
        with engine.connect() as connection:
            connection.execute(sa.text(drop))
        engine.dispose()
