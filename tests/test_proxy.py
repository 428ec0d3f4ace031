"""The storage proxy (`search.proxy`, storage.proxy_server / proxy_client): URLs, the heartbeat
the proxy adds to Optuna's, every command through a proxy, and workers on real servers.

Heartbeats are made old by moving their stored time back, not by waiting, except in the kill -9
test, which measures the real time from a machine's death to its trial's retry.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import wsgiref.util
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

import search.proxy
from search.status import main as status_main
from storage.errors import StorageError
from storage.proxy_client import BEAT_KEY, heartbeat, open_proxy
from storage.proxy_server import (
    ProxyBackend,
    ProxyCache,
    Reaper,
    failure_bound,
    open_backend,
)
from storage.rdb import open_storage
from storage.urls import parse_proxy_url
from tests.conftest import ROOT, assert_one_line_error, clean_env, run_cli, write_dataset

X = FloatDistribution(0.0, 1.0)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# The kill -9 test's heartbeat: short here; README's figure for the default (10 s) was measured
# with SEARCH_TEST_PROXY_HEARTBEAT=10.
KILL_HEARTBEAT = int(os.environ.get("SEARCH_TEST_PROXY_HEARTBEAT", "2"))


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_proxy(url: str, log: Path, heartbeat: int = 10) -> tuple[subprocess.Popen, str]:
    """`python -m search.proxy` for `url` on a free port, answering; its grpc:// URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "search.proxy", "--storage", url, "--port", str(port)]
        + ["--heartbeat", str(heartbeat)],
        cwd=ROOT,
        env={**clean_env(), "PYTHONPATH": str(ROOT)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    proxy_url = f"grpc://127.0.0.1:{port}"
    try:
        open_proxy(proxy_url, ready_seconds=60).close()
    except StorageError:
        process.kill()
        raise AssertionError(f"the proxy did not answer: {log.read_text()[-2000:]}") from None
    return process, proxy_url


def _stop(process: subprocess.Popen, timeout: float = 20) -> int:
    """SIGTERM, then SIGKILL after `timeout` s; the exit status (-9: it did not stop by then).
    SIGTERM: a test run started in the background (nohup, CI scripts) ignores SIGINT."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def test_sigterm_stops_the_proxy_with_exit_status_0(tmp_path: Path):
    # `kill PID`, systemd, or a script that started it in the background (which ignores SIGINT):
    # exit status 0, as after Ctrl-C, not death by the signal.
    process, _ = _start_proxy(f"sqlite:///{tmp_path / 's.db'}", tmp_path / "proxy.log")
    code = _stop(process, timeout=15)
    log = (tmp_path / "proxy.log").read_text()
    assert code == 0, f"exit status {code} (-9: still serving 15 s after SIGTERM):\n{log[-2000:]}"
    assert "Traceback" not in log, log


@pytest.fixture
def sqlite_proxy(tmp_path: Path):
    """A proxy in front of a SQLite file holding study 'fashion-status' with finished trials."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="fashion-status", storage=url, direction="maximize")
    for value in (0.8, 0.9):
        study.add_trial(
            optuna.trial.create_trial(value=value, params={"x": value}, distributions={"x": X})
        )
    process, proxy_url = _start_proxy(url, tmp_path / "proxy.log")
    yield url, proxy_url
    _stop(process)


# --- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("grpc://127.0.0.1:13001", ("127.0.0.1", 13001)),
        ("grpc://proxy.example", ("proxy.example", 13000)),
        ("GRPC://[::1]:5000/", ("::1", 5000)),
    ],
)
def test_parse_proxy_url_reads_host_and_port(url, expected):
    assert parse_proxy_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["grpc://", "grpc://host:notaport", "grpc://host:70000", "grpc://h:1/db", "grpc://u:pw@h:1"],
)
def test_parse_proxy_url_refuses_malformed_urls_without_the_password(url):
    with pytest.raises(StorageError, match="expected grpc://HOST:PORT") as caught:
        parse_proxy_url(url)
    assert "pw@" not in str(caught.value)


def test_open_proxy_names_the_fix_when_nothing_answers():
    started = time.monotonic()
    with pytest.raises(StorageError, match="cannot reach the storage proxy.*search.proxy"):
        open_proxy(f"grpc://127.0.0.1:{_free_port()}", ready_seconds=1)
    assert time.monotonic() - started < 10, "gives up after its wait, not later"


# --- the heartbeat ------------------------------------------------------------------------------


class _Recorder:
    """A storage stand-in that records beats; the first `failures` calls raise."""

    def __init__(self, failures: int = 0) -> None:
        self.beats: list[tuple[int, str, float]] = []
        self.failures = failures

    def set_trial_system_attr(self, trial_id: int, key: str, value: int) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("proxy restarting")
        self.beats.append((trial_id, key, time.monotonic()))


def test_heartbeat_beats_at_once_then_every_interval_and_stops_with_the_trial():
    recorder = _Recorder()
    started = time.monotonic()
    with heartbeat(recorder, 7, 0.05):
        time.sleep(0.3)
    ended = len(recorder.beats)
    time.sleep(0.15)
    assert recorder.beats[0][:2] == (7, BEAT_KEY)
    assert recorder.beats[0][2] - started < 0.05, "the first beat is sent at once"
    assert ended >= 4, f"a beat every interval: {ended} in 0.3 s at 0.05 s"
    assert len(recorder.beats) == ended, "no beat after the trial ended"


def test_heartbeat_survives_a_failed_beat(caplog):
    recorder = _Recorder(failures=1)
    with heartbeat(recorder, 3, 0.05):
        time.sleep(0.2)
    assert recorder.beats, "beats after the failed one got through"
    assert "heartbeat of trial 3 not sent" in caplog.text


def _backend(tmp_path: Path) -> tuple[optuna.storages.BaseStorage, ProxyBackend, optuna.Study]:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    cached = open_backend(url, heartbeat=1)
    rdb = open_storage(url, heartbeat_interval=1, kind=ProxyBackend)
    study = optuna.create_study(study_name="s", storage=cached, direction="maximize")
    return cached, rdb, study


def _beat_ages(rdb: ProxyBackend) -> dict[int, dt.datetime]:
    with rdb.engine.connect() as connection:
        tables = sqlalchemy.MetaData()
        tables.reflect(connection, only=("trial_heartbeats",))
        beats = tables.tables["trial_heartbeats"]
        query = sqlalchemy.select(beats.c.trial_id, beats.c.heartbeat)
        return {trial_id: beat for trial_id, beat in connection.execute(query)}


def _age_beat(rdb: ProxyBackend, trial_id: int, seconds: float) -> None:
    with rdb.engine.begin() as connection:
        tables = sqlalchemy.MetaData()
        tables.reflect(connection, only=("trial_heartbeats",))
        beats = tables.tables["trial_heartbeats"]
        stamped = connection.execute(
            sqlalchemy.select(beats.c.heartbeat).where(beats.c.trial_id == trial_id)
        ).scalar_one()
        connection.execute(
            sqlalchemy.update(beats)
            .where(beats.c.trial_id == trial_id)
            .values(heartbeat=stamped - dt.timedelta(seconds=seconds))
        )


def test_proxy_backend_records_a_beat_as_a_heartbeat_not_an_attribute(tmp_path):
    cached, rdb, study = _backend(tmp_path)
    trial = study.ask({"x": X})
    cached.set_trial_system_attr(trial._trial_id, BEAT_KEY, 1)
    cached.set_trial_system_attr(trial._trial_id, "other", 2)
    stored = rdb.get_trial(trial._trial_id)
    assert BEAT_KEY not in stored.system_attrs, "a beat is not stored as an attribute"
    assert stored.system_attrs["other"] == 2, "other attributes are stored as usual"
    assert trial._trial_id in _beat_ages(rdb), "Optuna's heartbeat record was written"


def test_reaper_fails_a_silent_trial_and_queues_its_configuration_again(tmp_path):
    cached, rdb, study = _backend(tmp_path)
    silent = study.ask({"x": X})
    alive = study.ask({"x": X})
    for trial in (silent, alive):
        cached.set_trial_system_attr(trial._trial_id, BEAT_KEY, 1)
    _age_beat(rdb, silent._trial_id, 3600)  # silent for an hour; grace is 12 s at heartbeat 1
    Reaper(cached).reap_once()
    trials = {t.number: t for t in rdb.get_all_trials(study._study_id)}
    assert trials[silent.number].state == TrialState.FAIL, "the silent trial is failed"
    assert trials[alive.number].state == TrialState.RUNNING, "a trial that beats is left alone"
    retries = [t for t in trials.values() if t.state == TrialState.WAITING]
    assert len(retries) == 1 and retries[0].params == trials[silent.number].params
    assert retries[0].user_attrs["retry_of"] == silent.number


def test_reaper_follows_a_study_deleted_and_made_again_under_its_name(tmp_path):
    cached, rdb, study = _backend(tmp_path)
    reaper = Reaper(cached)
    reaper.reap_once()  # knows study "s"
    optuna.delete_study(study_name="s", storage=cached)
    optuna.create_study(study_name="other", storage=cached)  # takes the freed study id
    again = optuna.create_study(study_name="s", storage=cached, direction="maximize")
    assert again._study_id != study._study_id
    silent = again.ask({"x": X})
    cached.set_trial_system_attr(silent._trial_id, BEAT_KEY, 1)
    _age_beat(rdb, silent._trial_id, 3600)
    reaper.reap_once()
    assert rdb.get_trial(silent._trial_id).state == TrialState.FAIL, "the new study is reaped"


def test_reaper_goes_on_after_a_round_that_failed(caplog):
    rounds, second = [], threading.Event()

    class Flaky(Reaper):
        def reap_once(self) -> None:
            rounds.append(1)
            if len(rounds) == 1:
                raise RuntimeError("something no one foresaw")
            second.set()

    reaper = Flaky(optuna.storages.InMemoryStorage(), every=0.01)
    reaper.start()
    try:
        assert second.wait(5), "a second round ran after the failed one"
    finally:
        reaper.stop()
    assert "stale-trial check failed" in caplog.text


def test_one_cache_refresh_serves_the_requests_that_waited_for_it(tmp_path, monkeypatch):
    rdb = open_storage(f"sqlite:///{tmp_path / 'c.db'}", kind=ProxyBackend)
    cache = ProxyCache(rdb)
    study_id = cache.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "c")
    reads, read = [], rdb._get_trials

    def slow_read(*args, **kwargs):
        reads.append(threading.get_ident())
        time.sleep(0.2)  # a read of hundreds of running trials
        return read(*args, **kwargs)

    monkeypatch.setattr(rdb, "_get_trials", slow_read)
    asks = [threading.Thread(target=cache.get_all_trials, args=(study_id,)) for _ in range(8)]
    for ask in asks:
        ask.start()
    for ask in asks:
        ask.join()
    assert 1 <= len(reads) <= 3, f"8 requests at once, {len(reads)} database reads"
    # A request still sees every write made before it, wherever it was made.
    rdb.create_new_trial(study_id)
    assert [t.number for t in cache.get_all_trials(study_id)] == [0]
    assert len(reads) <= 4


def test_the_cache_answers_a_running_trial_created_through_it_as_the_database_holds_it(
    tmp_path, monkeypatch
):
    """Each ask and tell reads its running trial; the proxy answers from memory a trial created
    through it, and what it answers is what the database would: every kind of write, values
    that do not survive storage unchanged (a tuple, NaN, infinity) included."""
    _check_cached_copy(f"sqlite:///{tmp_path / 'c.db'}", monkeypatch)


def test_the_cached_copy_is_the_servers_too(server_url, monkeypatch):
    """The same on PostgreSQL and MariaDB (whose DATETIME keeps whole seconds: the start time is
    the stored one, not Python's)."""
    _check_cached_copy(server_url, monkeypatch)


def _check_cached_copy(url: str, monkeypatch) -> None:
    rdb = open_storage(url, kind=ProxyBackend)
    cache = ProxyCache(rdb)
    study_id = cache.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "c")
    trial_id = cache.create_new_trial(study_id)
    cache.set_trial_param(trial_id, "lr", 0.01, FloatDistribution(1e-4, 1.0, log=True))
    cache.set_trial_param(trial_id, "units", 3.0, optuna.distributions.IntDistribution(1, 8))
    activations = optuna.distributions.CategoricalDistribution(("relu", "gelu", None))
    cache.set_trial_param(trial_id, "activation", 1.0, activations)
    for step, value in enumerate([0.5, float("nan"), float("inf"), float("-inf")]):
        cache.set_trial_intermediate_value(trial_id, step, value)
    cache.set_trial_intermediate_value(trial_id, 0, 0.6)  # a step written again
    cache.set_trial_user_attr(trial_id, "shape", (2, 3))
    cache.set_trial_system_attr(trial_id, "fixed_params", {"a": (1,)})
    cache.set_trial_system_attr(trial_id, BEAT_KEY, 1)

    stored = rdb.get_trial(trial_id)
    monkeypatch.setattr(rdb, "get_trial", lambda _: pytest.fail("a running trial read again"))
    answered = cache.get_trial(trial_id)
    assert repr(answered) == repr(stored), "the cached copy is the database's (NaN != NaN)"
    assert answered.params["activation"] == "gelu" and answered.user_attrs["shape"] == [2, 3]
    monkeypatch.undo()

    # Finished, it is read from the database (its completion time is the database's).
    cache.set_trial_state_values(trial_id, TrialState.COMPLETE, [0.9])
    assert repr(cache.get_trial(trial_id)) == repr(rdb.get_trial(trial_id))
    assert cache.get_trial(trial_id).datetime_complete is not None
    rdb.engine.dispose()


def test_a_trial_failed_behind_the_caches_back_is_read_from_the_database(tmp_path):
    """Another writer (a worker on the database itself) fails a trial the proxy holds: the next
    write through the proxy is refused by the database, and the proxy stops answering from its
    copy."""
    rdb = open_storage(f"sqlite:///{tmp_path / 'c.db'}", kind=ProxyBackend)
    cache = ProxyCache(rdb)
    study_id = cache.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "c")
    trial_id = cache.create_new_trial(study_id)
    rdb.set_trial_state_values(trial_id, TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        cache.set_trial_intermediate_value(trial_id, 0, 0.5)
    assert cache.get_trial(trial_id).state == TrialState.FAIL
    # Without a write: the next refresh (any worker's read of the study) shows it.
    other = cache.create_new_trial(study_id)
    rdb.set_trial_state_values(other, TrialState.FAIL)
    cache.get_all_trials(study_id)
    assert cache.get_trial(other).state == TrialState.FAIL


def test_waiting_trials_are_read_alone_and_can_then_be_claimed_and_written(tmp_path, monkeypatch):
    """The WAITING method reads the WAITING trials from the database without a refresh of the
    running ones; a trial it returns can be claimed and written through the cache."""
    rdb = open_storage(f"sqlite:///{tmp_path / 'c.db'}", kind=ProxyBackend)
    cache = ProxyCache(rdb)
    study = optuna.create_study(study_name="w", storage=cache)
    running = [study.ask({"x": X}) for _ in range(3)]
    optuna.create_study(study_name="w", storage=rdb, load_if_exists=True).enqueue_trial({"x": 0.5})
    monkeypatch.setattr(
        cache, "_read_trials_from_remote_storage", lambda _: pytest.fail("a refresh")
    )
    (waiting,) = cache.waiting_trials(study._study_id)
    assert waiting.system_attrs["fixed_params"] == {"x": 0.5}
    assert waiting.number not in {t.number for t in running}
    assert cache.set_trial_state_values(waiting._trial_id, TrialState.RUNNING)
    cache.set_trial_param(waiting._trial_id, "x", 0.5, X)
    assert rdb.get_trial(waiting._trial_id).params == {"x": 0.5}
    assert cache.waiting_trials(study._study_id) == []


def test_failure_bound_is_grace_period_plus_one_reap_round():
    assert failure_bound(10) == 2 * 10 + 10 + 5.0, "the README's 35 s for the defaults"


# --- the command and every command through a proxy -----------------------------------------------


def test_proxy_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'p.db'}"
    cases = [
        (["--storage", "grpc://127.0.0.1:1"], "not another proxy"),
        (["--storage", "not a url"], "malformed storage URL"),
        (["--storage", "postgresql+psycopg://alice:s3cret@127.0.0.1:1/x"], "cannot reach"),
    ]
    for argv, needle in cases:
        err = assert_one_line_error(capsys, search.proxy.main(argv), needle)
        assert "s3cret" not in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code = search.proxy.main(["--storage", db, "--port", port])
        assert_one_line_error(capsys, code, "--port")


def test_proxy_command_warns_off_loopback_and_masks_the_password(tmp_path, capsys, monkeypatch):
    served = {}
    monkeypatch.setattr(search.proxy, "serve", lambda storage, **where: served.update(where))
    monkeypatch.setattr(search.proxy, "open_backend", lambda url, heartbeat, threads: object())
    code = search.proxy.main(
        ["--storage", "postgresql+psycopg://u:pw-secret@127.0.0.1/x", "--host", "0.0.0.0"]
        + ["--port", str(_free_port())]
    )
    out, err = capsys.readouterr()
    assert code == 0 and served["host"] == "0.0.0.0"
    assert "neither encrypts nor authenticates" in err
    assert "pw-secret" not in out + err and "u:***@" in out


def test_commands_through_a_proxy(sqlite_proxy, tmp_path, capsys):
    database, proxy = sqlite_proxy
    optuna.load_study(study_name="fashion-status", storage=database).ask()  # one running
    assert status_main(["--study", "fashion-status", "--storage", proxy]) == 0
    out = capsys.readouterr().out
    assert "2 complete" in out and "best: trial 1, value 0.9" in out
    assert "trial 2: worker unknown" in out and "heartbeat checked by the proxy" in out
    # Reaping is the proxy's job; the report needs the database's own tables.
    code = status_main(["--study", "fashion-status", "--storage", proxy, "--reap"])
    assert_one_line_error(capsys, code, "--reap", "database URL")
    report = subprocess.run(
        [sys.executable, "-m", "search.report", "--study", "fashion-status", "--storage", proxy],
        cwd=tmp_path,
        env={**clean_env(), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert report.returncode == 2 and "give --storage the database URL" in report.stderr
    baselines = run_cli("--study", "fashion-baselines", "--storage", proxy)
    assert baselines.returncode == 2 and "database URL" in baselines.stderr
    assert optuna.get_all_study_names(database) == ["fashion-status"], "nothing created"


def test_dashboard_reads_a_study_through_a_proxy(sqlite_proxy, tmp_path):
    from search.viewer.server import build_app, open_dashboard_storage

    _, proxy = sqlite_proxy
    app = build_app(open_dashboard_storage(proxy, read_only=True), tmp_path, read_only=True)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/studies"}
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status == ["200 OK"] and b"fashion-status" in body, body[:2000]


# --- real servers -------------------------------------------------------------------------------


def _intact(study: optuna.Study) -> None:
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(len(numbers))), "trial numbers unique and contiguous"
    assert not [t.number for t in study.trials if t.state == TrialState.RUNNING], "no zombie"


@pytest.mark.slow
def test_workers_share_one_study_through_the_proxy(server_url, data_dir, tmp_path):
    process, proxy = _start_proxy(server_url, tmp_path / "proxy.log")
    try:
        result = run_cli(
            "--study", "fashion", "--storage", proxy, "--data-dir", str(data_dir),
            "--workers", "2", "--n-trials", "6", "--max-epochs", "1", "--no-warm-start",
        )  # fmt: skip
    finally:
        _stop(process)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "retrain: skipped" in result.stdout and "database URL" in result.stdout
    study = optuna.load_study(study_name="fashion", storage=server_url)
    _intact(study)
    finished = study.get_trials(states=FINISHED)
    assert 6 <= len(finished) <= 7, "target met, overshoot at most workers - 1"
    assert all(t.intermediate_values for t in finished), "every epoch reported through the proxy"
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2, "both workers ran trials"


def _running_trial_of(url: str) -> optuna.trial.FrozenTrial | None:
    try:
        study = optuna.load_study(study_name="fashion", storage=url)
    except KeyError:
        return None
    for trial in study.get_trials(states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("worker") and 0 < len(trial.intermediate_values) <= 3:
            return trial
    return None


@pytest.mark.slow
def test_kill_minus_9_of_a_machine_behind_the_proxy_fails_and_retries_its_trial(
    postgres_url, tmp_path
):
    """A whole machine (search.run and its worker) dies: the proxy fails its trial and queues
    it again within failure_bound; the other machine meets the budget exactly."""
    data = write_dataset(tmp_path / "data", n_train=3000, n_test=200)
    beat = str(KILL_HEARTBEAT)
    process, proxy = _start_proxy(postgres_url, tmp_path / "proxy.log", heartbeat=KILL_HEARTBEAT)
    argv = [
        sys.executable, "-m", "search.run", "--study", "fashion", "--storage", proxy,
        "--data-dir", str(data), "--pruner", "none", "--no-retrain", "--no-warm-start",
        "--n-trials", "5", "--max-epochs", "8", "--patience", "8", "--heartbeat", beat,
        "--workers", "1",
    ]  # fmt: skip
    env = {**clean_env(), "PYTHONPATH": str(ROOT)}
    logs = [(tmp_path / f"machine{i}.log").open("w") for i in range(2)]
    # Its own session, so that kill -9 can take the whole machine: search.run and its worker.
    doomed = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=logs[0], stderr=subprocess.STDOUT, start_new_session=True
    )
    survivor = None
    try:
        deadline, victim = time.monotonic() + 180, None
        while victim is None and time.monotonic() < deadline:
            victim = _running_trial_of(postgres_url)
            time.sleep(0.3)
        assert victim is not None, "a trial of the doomed machine was seen running"
        survivor = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=logs[1], stderr=subprocess.STDOUT
        )
        os.killpg(doomed.pid, signal.SIGKILL)
        killed_at = time.time()
        retried_after = None
        while retried_after is None and time.time() - killed_at < 120:
            study = optuna.load_study(study_name="fashion", storage=postgres_url)
            if any(t.user_attrs.get("retry_of") == victim.number for t in study.trials):
                retried_after = time.time() - killed_at
            time.sleep(0.2)
        assert survivor.wait(timeout=400) == 0, (tmp_path / "machine1.log").read_text()[-2000:]
    finally:
        for machine in (doomed, survivor):
            if machine is not None and machine.poll() is None:
                machine.kill()
        for log in logs:
            log.close()
        _stop(process)
    bound = failure_bound(KILL_HEARTBEAT)
    study = optuna.load_study(study_name="fashion", storage=postgres_url)
    # When the proxy failed it (its retry is queued in the same step), not when this loop, whose
    # reads of the study slow down under load, first saw the retry.
    failed = study.trials[victim.number].datetime_complete
    failed_after = None if failed is None else failed.timestamp() - killed_at
    print(
        f"\nkill -9 of a machine to its trial failed and queued again: {failed_after} s "
        f"(seen {retried_after} s; heartbeat {KILL_HEARTBEAT} s; bound {bound:.0f} s)"
    )
    assert retried_after is not None, "the trial was retried"
    assert failed_after is not None and 0 < failed_after <= bound + 2, tmp_path / "proxy.log"
    _intact(study)
    assert study.trials[victim.number].state == TrialState.FAIL, "the dead machine's trial"
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1 and retries[0].state in FINISHED and retries[0].params == victim.params
    assert len(study.get_trials(states=FINISHED)) == 5, "the budget, exactly: one machine left"
    # Retrain and report straight from the database, as the run behind the proxy advised.
    retrain = run_cli(
        "--study", "fashion", "--storage", postgres_url, "--data-dir", str(data),
        "--n-trials", "5", "--retrain-top", "1", "--seeds", "1", "--max-epochs", "2",
        cwd=tmp_path,
    )  # fmt: skip
    assert retrain.returncode == 0, retrain.stderr[-2000:]
    assert (tmp_path / "reports" / "fashion" / "report.md").is_file()


def test_proxy_client_threads_share_nothing(sqlite_proxy):
    """Many threads, each its own channel, ask and tell through one proxy: numbers unique."""
    _, proxy = sqlite_proxy
    numbers: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        client = open_proxy(proxy)
        study = optuna.load_study(study_name="fashion-status", storage=client)
        for _ in range(5):
            trial = study.ask({"x": X})
            study.tell(trial, 0.5)
            with lock:
                numbers.append(trial.number)
        client.close()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(2, 42)), "40 asks, 40 distinct numbers after the 2"


def test_a_killed_local_worker_is_failed_and_retried_through_the_proxy(sqlite_proxy):
    """What search.run does at once for its own worker process killed by a signal, here through
    the proxy's client (which has no heartbeat callback of its own)."""
    from search.study.supervisor import fail_trials_of

    _, proxy = sqlite_proxy
    client = open_proxy(proxy)
    study = optuna.load_study(study_name="fashion-status", storage=client)
    trial = study.ask({"x": X})
    trial.set_user_attr("worker", f"{socket.gethostname()}:4242")
    assert fail_trials_of(study, client, 4242) == [trial.number]
    trials = study.get_trials(deepcopy=False)
    assert trials[trial.number].state == TrialState.FAIL
    retries = [t for t in trials if t.state == TrialState.WAITING]
    assert len(retries) == 1 and retries[0].user_attrs["retry_of"] == trial.number
    client.close()


def test_an_ask_claims_a_waiting_trial_without_reading_the_running_ones(sqlite_proxy):
    """A worker's ask looks for WAITING trials through the proxy's own method, which answers
    those alone: not through Optuna's copy of the whole study, which re-reads every RUNNING
    trial (hundreds, with hundreds of workers) on each call."""
    _, proxy = sqlite_proxy
    client = open_proxy(proxy)
    study = optuna.load_study(study_name="fashion-status", storage=client)
    running = [study.ask({"x": X}) for _ in range(3)]
    study.enqueue_trial({"x": 0.25})

    def whole_study(*args, **kwargs):
        raise AssertionError("the ask read the whole study")

    client._cache.get_all_trials = whole_study
    waiting = client.get_all_trials(study._study_id, states=(TrialState.WAITING,))
    assert [(t.state, t.system_attrs["fixed_params"]) for t in waiting] == [
        (TrialState.WAITING, {"x": 0.25})
    ]
    trial = study.ask({"x": X})
    assert trial.params == {"x": 0.25}, "the enqueued configuration is claimed"
    assert trial.number not in {t.number for t in running}
    assert client.get_all_trials(study._study_id, states=(TrialState.WAITING,)) == []
    client.close()


def test_the_client_falls_back_to_optunas_way_against_optunas_own_proxy(tmp_path):
    """Against a proxy without the WAITING method (Optuna's run_grpc_proxy_server), the client
    finds WAITING trials as Optuna's client does."""
    from optuna.storages._grpc.server import make_server

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="plain", storage=url)
    study.enqueue_trial({"x": 0.5})
    port = _free_port()
    server = make_server(optuna.storages.get_storage(url), "127.0.0.1", port)
    server.start()
    try:
        client = open_proxy(f"grpc://127.0.0.1:{port}")
        study = optuna.load_study(study_name="plain", storage=client)
        waiting = study.get_trials(states=(TrialState.WAITING,))
        assert [t.system_attrs["fixed_params"] for t in waiting] == [{"x": 0.5}]
        assert study.ask({"x": X}).params == {"x": 0.5}
        client.close()
    finally:
        server.stop(grace=None)
