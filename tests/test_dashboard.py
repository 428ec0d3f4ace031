"""The dashboard command, its read-only mode, and the study note and curves it shows.

The study is built here without training (create_trial with the search space's parameter
names), published with search.note, and served by the real `python -m search.dashboard` in a
subprocess; the tests then talk to optuna-dashboard's HTTP API as the browser would. One test
loads the page in headless Chromium when it is installed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from search.dashboard import main
from search.evaluation.baselines import best_documented
from search.study.config import SearchSpace
from search.study.metadata import git_revision, package_versions
from search.study.studyfile import PRESETS
from search.viewer.curves import CURVE_NAME, publish
from search.viewer.note import study_note
from search.viewer.server import (
    READ_ONLY_REASON,
    ReadOnlyArtifactStore,
    ReadOnlyError,
    open_dashboard_storage,
    startup_warnings,
)
from storage.artifacts import attach_artifact, default_artifact_dir, trial_artifacts
from storage.readonly import read_only_sqlite_url
from tests.conftest import PLAIN_KNOBS, ROOT, missing

# One test process makes this module's shared study once (pytest-xdist's loadgroup).
pytestmark = pytest.mark.xdist_group("dashboard")

STUDY = "fashion-dash"
CHROMIUM = Path("/usr/bin/chromium")
STARTUP_SECONDS = 60
SPACE = SearchSpace()
DISTRIBUTIONS = {  # as search/space.py suggests them, for a one-layer network
    "n_layers": IntDistribution(*SPACE.n_layers),
    "n_units_l0": IntDistribution(*SPACE.n_units, log=True),
    "dropout_l0": FloatDistribution(*SPACE.dropout),
    "activation": CategoricalDistribution(SPACE.activations),
    "learning_rate": FloatDistribution(*SPACE.learning_rate, log=True),
    "optimizer": CategoricalDistribution(SPACE.optimizers),
    "batch_size": CategoricalDistribution(SPACE.batch_sizes),
    "batch_norm": CategoricalDistribution(SPACE.batch_norm),
    "weight_decay": FloatDistribution(*SPACE.weight_decay, log=True),
    "standardize": CategoricalDistribution(SPACE.standardize),
    "lr_schedule": CategoricalDistribution(SPACE.lr_schedules),
    "label_smoothing": FloatDistribution(*SPACE.label_smoothing),
}
BEST_DOC = best_documented("fashion")
REPORT = {  # the part of search.report.build_report's dict that the note reads
    "best_documented": {"id": BEST_DOC.id, "test_accuracy": BEST_DOC.best_documented_accuracy()},
    "retrained": [
        {
            "label": "trial 1",
            "n_runs": 3,
            "test_accuracy_mean": 0.8812,
            "test_accuracy_std": 0.0021,
            "margin_to_best_documented": 0.8812 - BEST_DOC.best_documented_accuracy(),
        }
    ],
}


@dataclass(frozen=True)
class Published:
    url: str
    db: Path
    artifact_dir: Path
    study_id: int
    trial_id: int  # of the best trial, which carries the uploaded file
    artifact_id: str
    payload: bytes


def _params(units: int, lr: float) -> dict:
    return {
        "n_layers": 1,
        "n_units_l0": units,
        "dropout_l0": 0.2,
        "activation": "relu",
        "learning_rate": lr,
        "optimizer": "adam",
        "batch_size": 128,
        **PLAIN_KNOBS,
    }


def _attrs(epochs: int, best_epoch: int, reason: str) -> dict:
    return {
        "n_params": 101_770,
        "epochs_run": epochs,
        "best_epoch": best_epoch,
        "train_seconds": 12.5,
        "val_loss": 0.31,
        "stop_reason": reason,
    }


def build_study(db: Path) -> optuna.Study:
    """A small finished study, recorded as search/study.py records one, without training."""
    url = f"sqlite:///{db}"
    study = optuna.create_study(storage=url, study_name=STUDY, direction="maximize")
    config = PRESETS["fashion"].with_overrides(study_name=STUDY, max_epochs=3).to_dict()
    study.set_user_attr("config", config)
    study.set_user_attr("versions", package_versions())
    study.set_user_attr("git_revision", git_revision())
    study.set_user_attr("data_source", "synthetic IDX files (test)")
    for units, lr, curve in ((64, 1e-3, [0.7, 0.8, 0.82]), (128, 3e-3, [0.72, 0.84, 0.86])):
        study.add_trial(
            create_trial(
                params=_params(units, lr),
                distributions=DISTRIBUTIONS,
                value=max(curve),
                intermediate_values={epoch: v for epoch, v in enumerate(curve, start=1)},
                user_attrs=_attrs(len(curve), len(curve), "max_epochs"),
            )
        )
    study.add_trial(
        create_trial(
            params=_params(32, 1e-4),
            distributions=DISTRIBUTIONS,
            state=TrialState.PRUNED,
            intermediate_values={1: 0.5},
            user_attrs={**_attrs(1, 1, "pruned"), "pruned_at_epoch": 1},
        )
    )
    return study


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    folder = tmp_path_factory.mktemp("dashboard")
    db = folder / "studies.db"
    study = build_study(db)
    storage = study._storage
    artifacts = folder / "artifacts"
    publish(study, storage, artifacts, REPORT)
    upload = folder / "model-summary.txt"
    payload = b"a small file standing in for a retrained model\n"
    upload.write_bytes(payload)
    best = study.best_trial
    store = optuna.artifacts.FileSystemArtifactStore(artifacts)
    artifact_id = attach_artifact(store, storage, STUDY, upload, best)
    study_id = storage.get_study_id_from_name(STUDY)
    return Published(
        url=f"sqlite:///{db}",
        db=db,
        artifact_dir=artifacts,
        study_id=study_id,
        trial_id=storage.get_trial_id_from_study_id_trial_number(study_id, best.number),
        artifact_id=artifact_id,
        payload=payload,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _get_json(url: str) -> dict:
    status, body = _request("GET", url)
    assert status == 200, f"GET {url}: {status} {body[:200]!r}"
    return json.loads(body)


def _start(
    published: Published, log: Path, *extra: str, exits: list[int] | None = None
) -> Iterator[str]:
    """Run `python -m search.dashboard` until the test is done; yields the study page's URL.
    Stopped with SIGTERM; its exit status is appended to `exits` (-9: it had to be killed)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_")}
    command = [
        sys.executable,
        "-m",
        "search.dashboard",
        "--study",
        STUDY,
        "--storage",
        published.url,
        "--port",
        str(port),
        *extra,
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"dashboard exited early: {log.read_text()}"
            try:
                if _request("GET", f"{base}/api/meta")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"dashboard did not answer: {log.read_text()}"
            time.sleep(0.2)
        page = f"{base}/dashboard/studies/{published.study_id}"
        assert f"open {page}" in log.read_text(), "the command prints the study page to open"
        yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if exits is not None:
            exits.append(process.returncode)


@pytest.fixture(scope="module")
def server(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start(published, tmp_path_factory.mktemp("log") / "dashboard.log")


@pytest.fixture(scope="module")
def read_only_server(
    published: Published, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("log") / "dashboard-ro.log"
    yield from _start(published, log, "--read-only")


def test_sigterm_stops_the_dashboard_with_exit_status_0(published, tmp_path):
    # `kill PID`, systemd, a script's background job: a clean stop (status 0), as after Ctrl-C.
    exits: list[int] = []
    log = tmp_path / "dashboard.log"
    started = _start(published, log, exits=exits)
    next(started)  # serving
    started.close()  # SIGTERM
    assert exits == [0], f"exit status {exits} (-15: died by the signal):\n{log.read_text()}"
    assert "Traceback" not in log.read_text()


def _base(page: str) -> str:
    return page.split("/dashboard/")[0]


def test_dashboard_lists_the_study_with_trials_note_and_artifacts(server, published):
    base = _base(server)
    studies = _get_json(f"{base}/api/studies")["study_summaries"]
    assert STUDY in [s["study_name"] for s in studies], "the study is listed"
    detail = _get_json(f"{base}/api/studies/{published.study_id}?after=0")
    trials = {t["number"]: t for t in detail["trials"]}
    assert len(trials) == 3, "every trial, pruned included"
    assert [v["value"] for v in trials[0]["intermediate_values"]] == [0.7, 0.8, 0.82]
    attrs = {a["key"] for a in trials[2]["user_attrs"]}
    expected = {"n_params", "epochs_run", "best_epoch", "train_seconds", "pruned_at_epoch"}
    assert expected | {"val_loss"} <= attrs, "the objective's user attributes reach the page"
    assert "## Best so far" in detail["note"]["body"], "the study note is there"
    best = trials[1]
    names = {a["filename"] for a in best["artifacts"]}
    assert {"model-summary.txt", CURVE_NAME.format(number=1)} <= names, "both files listed"


def test_dashboard_serves_artifacts_byte_for_byte(server, published):
    base = _base(server)
    status, body = _request(
        "GET", f"{base}/artifacts/{published.study_id}/{published.trial_id}/{published.artifact_id}"
    )
    assert (status, body) == (200, published.payload), "the download equals the uploaded file"
    curve = next(
        m
        for m in trial_artifacts(optuna.storages.RDBStorage(published.url), STUDY, 1)
        if m["filename"] == CURVE_NAME.format(number=1)
    )
    status, body = _request(
        "GET", f"{base}/artifacts/{published.study_id}/{published.trial_id}/{curve['artifact_id']}"
    )
    assert status == 200 and body.startswith(b"\x89PNG"), "the learning curve is a PNG"


def test_dashboard_read_only_refuses_deleting_study_artifact_and_note(read_only_server, published):
    base = _base(read_only_server)
    artifact = f"{published.study_id}/{published.trial_id}/{published.artifact_id}"
    refused = (403, json.dumps({"reason": READ_ONLY_REASON}).encode())
    got = _request("DELETE", f"{base}/api/studies/{published.study_id}")
    assert got == refused, "deleting the study is refused with 403 and the reason"
    got = _request("DELETE", f"{base}/api/artifacts/{artifact}")
    assert got == refused, "deleting an artifact is refused with 403 and the reason"
    got = _request(
        "PUT", f"{base}/api/studies/{published.study_id}/note", {"version": 99, "body": "x"}
    )
    assert got == refused, "editing the note is refused with 403 and the reason"
    studies = _get_json(f"{base}/api/studies")["study_summaries"]
    assert STUDY in [s["study_name"] for s in studies], "the study is still there"
    assert _request("GET", f"{base}/artifacts/{artifact}") == (200, published.payload)
    note = _get_json(f"{base}/api/studies/{published.study_id}?after=0")["note"]["body"]
    assert note.startswith(f"# Study `{STUDY}`"), "the note is unchanged"


def test_open_dashboard_storage_read_only_sqlite_refuses_writes(published):
    storage = open_dashboard_storage(published.url, read_only=True)
    study_id = storage.get_study_id_from_name(STUDY)
    with pytest.raises(optuna.exceptions.StorageInternalError):
        storage.delete_study(study_id)
    with pytest.raises(optuna.exceptions.StorageInternalError):
        storage.set_study_user_attr(study_id, "x", 1)
    assert storage.get_study_id_from_name(STUDY) == study_id, "reads still work"


def test_open_dashboard_storage_read_only_server_refuses_writes(server_url):
    writer = optuna.storages.RDBStorage(server_url)
    reader = None
    try:
        optuna.create_study(storage=writer, study_name=STUDY)
        reader = open_dashboard_storage(server_url, read_only=True)
        study_id = reader.get_study_id_from_name(STUDY)
        with pytest.raises(optuna.exceptions.StorageInternalError):
            reader.delete_study(study_id)
        with pytest.raises(optuna.exceptions.StorageInternalError):
            reader.set_study_system_attr(study_id, "dashboard:note_ver", 1)
        assert writer.get_study_id_from_name(STUDY) == study_id, "the study is still there"
    finally:
        for storage in (writer, reader):
            if storage is not None:
                storage.engine.dispose()  # a database still connected cannot be dropped


def test_read_only_sqlite_url_opens_that_very_file_read_only(tmp_path):
    db = tmp_path / "a dir#1" / "s 1%.db"  # characters that URLs and SQLite URIs treat apart
    db.parent.mkdir()
    writer = optuna.storages.RDBStorage("sqlite://", engine_kwargs={"creator": _connect(db)})
    optuna.create_study(storage=writer, study_name="x")
    before = sorted(tmp_path.rglob("*"))
    reader = optuna.storages.RDBStorage(read_only_sqlite_url(str(db)), skip_table_creation=True)
    assert [s.study_name for s in reader.get_all_studies()] == ["x"], "the very file is opened"
    with pytest.raises(optuna.exceptions.StorageInternalError):
        reader.set_study_user_attr(reader.get_study_id_from_name("x"), "k", 1)
    assert sorted(tmp_path.rglob("*")) == before, "no stray database is created"


def _connect(path: Path):
    """A sqlite3 connection factory: a URL cannot name this path, so the test avoids one."""
    import sqlite3

    return lambda: sqlite3.connect(str(path), check_same_thread=False)


def test_read_only_artifact_store_refuses_write_and_remove(published):
    store = ReadOnlyArtifactStore(optuna.artifacts.FileSystemArtifactStore(published.artifact_dir))
    with pytest.raises(ReadOnlyError):
        store.remove(published.artifact_id)
    with pytest.raises(ReadOnlyError), open(os.devnull, "rb") as empty:
        store.write("new", empty)
    with store.open_reader(published.artifact_id) as handle:
        assert handle.read() == published.payload, "reads still work"


def test_dashboard_unknown_study_exits_2_with_one_line(published, capsys):
    assert main(["--study", "no-such-study", "--storage", published.url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-study" in err and STUDY in err, err


def test_dashboard_missing_sqlite_file_exits_2_and_creates_nothing(tmp_path, capsys):
    db = tmp_path / "missing.db"
    assert main(["--study", STUDY, "--storage", f"sqlite:///{db}", "--read-only"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not db.exists(), "no database is created"


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://alice:s3cr3t-pw@127.0.0.1:1/test", "mysql://bob:s3cr3t-pw@h:x/db"],
)
def test_dashboard_bad_storage_url_exits_2_and_masks_the_password(url, capsys):
    assert main(["--study", STUDY, "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s3cr3t-pw" not in err, err


def test_default_artifact_dir_sits_beside_a_sqlite_file(tmp_path):
    assert default_artifact_dir(f"sqlite:///{tmp_path}/s.db") == tmp_path / "artifacts"
    assert default_artifact_dir("postgresql+psycopg://u@h/db") == Path("artifacts").resolve()
    mine = str(tmp_path / "mine")
    assert default_artifact_dir("postgresql+psycopg://u@h/db", mine) == Path(mine)


def test_startup_warnings_name_the_missing_authentication_off_loopback():
    sqlite, server = "sqlite:///s.db", "postgresql+psycopg://u:pw@h/db"
    for host in ("127.0.0.1", "localhost", "::1"):
        assert startup_warnings(host, 8080, sqlite, read_only=False) == [], host
    for host in ("0.0.0.0", "192.168.1.4", "example.org", "::"):
        (line,) = startup_warnings(host, 8080, sqlite, read_only=False)
        assert "no authentication" in line and "delete" in line, host
    (line,) = startup_warnings("0.0.0.0", 8080, sqlite, read_only=True)
    assert "delete" not in line, "read-only: nothing can be deleted"
    (advice,) = startup_warnings("127.0.0.1", 8080, server, read_only=True)
    assert "GRANT SELECT" in advice and "pw" not in advice, "a server needs a read-only role"


def test_dashboard_port_in_use_exits_2_with_one_line(published, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--study", STUDY, "--storage", published.url, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port" in err, err


def test_study_note_states_space_search_data_best_and_baselines(published):
    study = optuna.load_study(study_name=STUDY, storage=published.url)
    note = study_note(study, study._storage, REPORT)
    for text in (
        "`n_units_l{i}`: 32 to 2048 (log scale)",  # the search space
        "`weight_decay`: 1e-06 to 0.1 (log scale, decoupled)",
        "`lr_schedule`: constant, cosine",
        "`learning_rate`: 0.0001 to 0.01",
        "sampler: `tpe`",
        "pruner: `hyperband`",
        "synthetic IDX files (test)",  # the data
        "Trial **1**: validation accuracy **0.8600**, 101,770 parameters",  # the best so far
        "| n_units_l0 | 128 |",
        f"Best documented test accuracy: **{BEST_DOC.best_documented_accuracy():.2%}** "
        f"({BEST_DOC.id}",
        "trial 1, 3 seeds, test accuracy **88.12 ± 0.21%**, margin **",  # the report's retrain
        f"pt** vs {BEST_DOC.id}",
        CURVE_NAME.format(number=1),
    ):
        assert text in note, f"{text!r} missing from the note:\n{note}"


def test_study_note_gives_one_seed_its_figure_alone(tmp_path):
    study = build_study(tmp_path / "s.db")
    [entry] = REPORT["retrained"]
    one_seed = {**REPORT, "retrained": [{**entry, "n_runs": 1, "test_accuracy_std": 0.0}]}
    note = study_note(study, study._storage, one_seed)
    needle = "trial 1, 1 seed, test accuracy **88.12%**, margin **"
    assert needle in note, f"as the report's table: no '± 0.00', '1 seed':\n{note}"


def test_publish_is_idempotent(tmp_path):
    study = build_study(tmp_path / "s.db")
    first = publish(study, study._storage, tmp_path / "artifacts")
    assert len(first) == 2, "one curve per complete trial"
    storage = study._storage
    version = storage.get_study_system_attrs(study._study_id)["dashboard:note_ver"]
    assert publish(study, storage, tmp_path / "artifacts") == [], "nothing attached twice"
    after = storage.get_study_system_attrs(study._study_id)["dashboard:note_ver"]
    assert after == version, "an unchanged note is not saved again"
    assert len(trial_artifacts(study._storage, STUDY, 1)) == 1


def test_publish_links_a_curve_again_after_it_was_deleted_in_the_dashboard(tmp_path):
    study = build_study(tmp_path / "s.db")
    storage = study._storage
    publish(study, storage, tmp_path / "artifacts")
    (meta,) = trial_artifacts(storage, STUDY, 1)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, 1)
    # What optuna-dashboard's DELETE /api/artifacts/... leaves behind: the key, set to null.
    key = f"dashboard:artifacts:{trial_id}:{meta['artifact_id']}"
    storage.set_study_system_attr(study._study_id, key, json.dumps(None))
    assert len(publish(study, storage, tmp_path / "artifacts")) == 1, "the curve is back"


def test_dashboard_page_in_headless_chromium_shows_the_study(server, tmp_path):
    if not CHROMIUM.is_file():
        missing(f"{CHROMIUM} (apt-get install chromium) for the real-browser check")
    common = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=15000",
    ]

    def chromium(*args: str) -> subprocess.CompletedProcess:
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        return subprocess.run(
            [*common, f"--user-data-dir={profile}", *args, server],
            capture_output=True,
            text=True,
            timeout=180,
        )

    dom = chromium("--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert STUDY in dom.stdout, "the rendered page names the study"
    shot = tmp_path / "study-page.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1400,1000")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000


def test_dashboard_shows_a_pareto_study_with_named_objectives_front_and_note(server, published):
    """A Pareto study as search.run stores one (two values, the curve attribute, metric names):
    the dashboard's API names both objectives and returns the front; the note explains it."""
    url = published.url
    study = optuna.create_study(
        storage=url, study_name=f"{STUDY}-pareto", directions=["maximize", "minimize"]
    )
    study.set_metric_names(["val_accuracy", "n_params"])
    config = PRESETS["fashion"].with_overrides(study_name=study.study_name, pareto=True)
    study.set_user_attr("config", config.to_dict())
    points = ((64, 1e-3, [0.7, 0.8, 0.82], 50_890), (128, 3e-3, [0.72, 0.84, 0.86], 101_770))
    for units, lr, curve, size in (*points, (32, 1e-4, [0.6, 0.7, 0.75], 200_000)):
        study.add_trial(
            create_trial(
                params=_params(units, lr),
                distributions=DISTRIBUTIONS,
                values=[max(curve), size],
                user_attrs={**_attrs(3, 3, "max_epochs"), "curve": curve, "n_params": size},
            )
        )
    storage = study._storage
    publish(study, storage, published.artifact_dir)
    study_id = storage.get_study_id_from_name(study.study_name)
    detail = _get_json(f"{_base(server)}/api/studies/{study_id}?after=0")
    assert detail["directions"] == ["maximize", "minimize"]
    assert detail["objective_names"] == ["val_accuracy", "n_params"]
    assert sorted(t["number"] for t in detail["best_trials"]) == [0, 1], "the third is dominated"
    body = detail["note"]["body"]
    assert "A Pareto study" in body and "| 1 | 101,770 | 0.8600 |" in body
    # A Pareto trial's curve (no intermediate values) still gets its learning-curve artifact.
    best = {t["number"]: t for t in detail["trials"]}[1]
    assert CURVE_NAME.format(number=1) in {a["filename"] for a in best["artifacts"]}
