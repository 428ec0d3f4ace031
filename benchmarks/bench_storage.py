"""Storage throughput and latency under many simulated workers: SQLite, PostgreSQL, MariaDB,
and PostgreSQL behind the service's gRPC storage proxy (`search.proxy`).

No training: each worker runs Optuna's per-trial storage traffic as `study.optimize` would with
the service's storage (`storage.open_storage` with heartbeats): the heartbeat stale check, ask,
one suggest_float, three reports, a few ms of "work" while a heartbeat thread runs, and tell.
Behind the proxy a worker beats through it and the proxy itself checks for stale trials (as
`search.run --storage grpc://...` does), so there is no per-trial stale check. Every call is
timed; errors are counted by kind, refused connections apart; afterwards the stored trial numbers
are checked (unique, contiguous, none lost). Each backend and worker count gets a fresh database,
created and dropped by this script; its server's connections are sampled during the row.

A worker is a thread with its own storage (its own connection pool or gRPC channel); workers are
spread over at most --max-processes spawned processes, so 1,000 of them fit the machine.

    python benchmarks/bench_storage.py --quick     # 1 and 8 workers x 20 trials: under 2 minutes
    python benchmarks/bench_storage.py             # 1 to 64 workers x 50 trials: about 15 minutes
    python benchmarks/bench_storage.py --backends postgresql proxy --workers 64 256 1000 \
        --trials-per-worker 10                     # the proxy against the database it serves
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

import common
import numpy as np
import optuna
import sqlalchemy
from optuna.trial import TrialState

from search.cli import positive_int
from storage import open_storage
from storage.proxy_client import heartbeat as proxy_heartbeat
from storage.proxy_client import open_proxy
from storage.proxy_server import DEFAULT_THREADS
from storage.rdb import close, first_line

BACKENDS = ("sqlite", "postgresql", "mysql", "proxy")
SERVER_OF = {"postgresql": "postgresql", "mysql": "mysql", "proxy": "postgresql"}
# What a server answers when its connection limit is reached (PostgreSQL, MySQL/MariaDB).
REFUSED = ("too many clients", "too many connections", "remaining connection slots")
REFUSED_MARK = "refused (connection limit): "
# The servers of tests/conftest.py; the database named here is only used to create and drop
# the benchmark's own databases.
ADMIN_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
}
PHASES = ("stale", "ask", "report", "tell")  # timed calls, in trial order
MAX_PROCESSES = 16  # worker threads are spread over this many processes at most
STUDY = "bench_storage"
N_REPORTS = 3
QUICK = {"workers": [1, 8], "trials_per_worker": 20}
FULL = {"workers": [1, 8, 32, 64], "trials_per_worker": 50}


@dataclass(frozen=True)
class Job:
    """What one worker process needs (picklable: workers are spawned)."""

    url: str  # a database URL, or grpc://HOST:PORT of a proxy
    n_trials: int
    sleep_seconds: float
    heartbeat: int | None
    sampler: str

    @property
    def behind_proxy(self) -> bool:
        return self.url.startswith("grpc://")


@dataclass
class Row:
    backend: str
    n_workers: int
    skipped: str = ""  # reason, when the row was not run
    n_opened: int = 0  # workers whose storage opened
    attempted: int = 0
    told: int = 0
    refused: int = 0  # connections the database server turned away
    peak_connections: int | None = None  # the server's connections to the row's database
    startup_seconds: float = 0.0
    wall_seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    errors: Counter = field(default_factory=Counter)
    check: str = ""  # "PASS" or "FAIL: why"
    states: str = ""
    lost: int = 0  # workers that reported nothing
    records: list = field(default_factory=list)


# --- one worker process ------------------------------------------------------------------------


def _error_kind(phase: str, exc: BaseException, url: str) -> str:
    """`phase: Type: driver message`; Optuna's StorageInternalError says only "during the
    commit", so the database error it wraps is named instead."""
    name = type(exc).__name__
    if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ is not None:
        exc = exc.__cause__
        name = f"StorageInternalError from {type(exc).__name__}"
    message = first_line(exc, url)
    # Told on the whole message: the shortened one may have lost the server's words.
    refused = REFUSED_MARK if any(text in message.lower() for text in REFUSED) else ""
    return f"{refused}{phase}: {name}: {message[:160]}"


def _timed(record: dict, phase: str, call, *args, **kwargs):
    """Run `call`, adding its duration in ms to the phase's latencies when it succeeds."""
    start = time.perf_counter()
    result = call(*args, **kwargs)
    record["latencies"][phase].append((time.perf_counter() - start) * 1000.0)
    return result


@contextlib.contextmanager
def _heartbeat(storage: optuna.storages.BaseStorage, trial_id: int, job: Job, index: int):
    """Behind the proxy, the service's own beat through it; else what Optuna's heartbeat thread
    does during a trial, on the public storage methods: record a heartbeat, wait, repeat until
    the trial ends; it dies on its first error."""
    seconds = job.heartbeat
    if not seconds:
        yield
        return
    if job.behind_proxy:
        with proxy_heartbeat(storage, trial_id, seconds):
            yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(seconds):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{index}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _one_trial(study: optuna.Study, storage, job: Job, record: dict) -> None:
    """One trial's storage traffic, in the order optuna/study/_optimize.py:_run_trial makes it."""
    record["attempted"] += 1
    if job.heartbeat is not None and not job.behind_proxy:
        try:
            _timed(record, "stale", optuna.storages.fail_stale_trials, study)
        except Exception as exc:  # the benchmark counts every failure by kind and goes on
            record["errors"][_error_kind("stale", exc, job.url)] += 1
    try:
        trial = _timed(record, "ask", study.ask)
    except Exception as exc:
        record["errors"][_error_kind("ask", exc, job.url)] += 1
        return
    record["numbers"].append(trial.number)
    phase = "suggest"
    try:
        with _heartbeat(storage, trial._trial_id, job, record["index"]):
            x = trial.suggest_float("x", -1.0, 1.0)
            phase = "report"
            for step in range(N_REPORTS):
                _timed(record, "report", trial.report, x * x + 1.0 / (step + 1), step)
            time.sleep(job.sleep_seconds)
        phase = "tell"
        _timed(record, "tell", study.tell, trial, x * x)
        record["completed"].append(trial.number)
    except Exception as exc:
        record["errors"][_error_kind(phase, exc, job.url)] += 1
        with contextlib.suppress(Exception):
            study.tell(trial, state=TrialState.FAIL)


def _worker(job: Job, indices: list[int], ready, start, results) -> None:
    """Entry point of a spawned process: one thread per worker in `indices`."""
    warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with optimize", etc.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    records = {index: _new_record(index) for index in indices}

    def count_thread_death(hook: threading.ExceptHookArgs) -> None:
        # A heartbeat thread ends on its first exception: count it, skip the traceback.
        name = hook.thread.name if hook.thread is not None else ""
        index = int(name.rsplit("-", 1)[1]) if name.startswith("heartbeat-") else indices[0]
        where = "heartbeat thread died" if name.startswith("heartbeat-") else "a thread died"
        records[index]["errors"][_error_kind(where, hook.exc_value, job.url)] += 1

    threading.excepthook = count_thread_death
    threads = [
        threading.Thread(target=_slot, args=(job, records[i], ready, start, results))
        for i in indices
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _new_record(index: int) -> dict:
    return {
        "index": index,
        "attempted": 0,
        "numbers": [],
        "completed": [],
        "latencies": {p: [] for p in PHASES},
        "errors": Counter(),
        "start": 0.0,
        "end": 0.0,
    }


def _slot(job: Job, record: dict, ready, start, results) -> None:
    """One worker: open its own storage, wait for the common start, run its trials."""
    index = record["index"]
    try:
        if job.behind_proxy:
            storage = open_proxy(job.url, ready_seconds=60)  # its own gRPC channel
        else:
            rdb = open_storage(job.url, heartbeat_interval=job.heartbeat)
            # The caching layer a study puts around an RDB storage, made here to be called
            # directly.
            storage = optuna.storages.get_storage(rdb)
        sampler = (
            optuna.samplers.TPESampler(seed=index)
            if job.sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=index)
        )
        study = optuna.load_study(study_name=STUDY, storage=storage, sampler=sampler)
    except Exception as exc:
        record["errors"][_error_kind("open", exc, job.url)] += 1
        ready.put(index)
        results.put(record)
        return
    record["opened"] = True
    ready.put(index)
    start.wait()
    # time.monotonic is CLOCK_MONOTONIC on Linux: one clock for every process of the machine.
    record["start"] = time.monotonic()
    for _ in range(job.n_trials):
        _one_trial(study, storage, job, record)
    record["end"] = time.monotonic()
    close(storage if job.behind_proxy else rdb)
    results.put(record)


# --- the driver ----------------------------------------------------------------------------------


def _collect(box, processes: list, n: int, deadline: float) -> list:
    """Up to n items from a queue; stops early when every process has exited or at deadline."""
    items: list = []
    while len(items) < n and time.monotonic() < deadline:
        try:
            items.append(box.get(timeout=1.0))
        except queue.Empty:
            if all(p.exitcode is not None for p in processes):
                with contextlib.suppress(queue.Empty):
                    while len(items) < n:
                        items.append(box.get(timeout=0.5))
                break
    return items


def run_row(backend: str, n_workers: int, args: argparse.Namespace, job_args: dict) -> Row:
    row = Row(backend, n_workers)
    server = SERVER_OF.get(backend)
    with common.fresh_database(args.admin_urls.get(server)) as url:
        storage = open_storage(url)  # creates Optuna's tables once, before the workers
        optuna.create_study(study_name=STUDY, storage=storage)
        with contextlib.ExitStack() as stack:
            target = url
            if backend == "proxy":
                beat = job_args["heartbeat"] or 10
                target = stack.enter_context(_proxy(url, beat, args.proxy_threads))
            if server is not None:
                row.peak_connections = 0
                stack.enter_context(_count_connections(args.admin_urls[server], url, row))
            _run_workers(Job(url=target, **job_args), n_workers, args, row)
        row.check, row.states = check_numbers(storage, row.records, row.lost)
        storage.engine.dispose()
    return row


def _run_workers(job: Job, n_workers: int, args: argparse.Namespace, row: Row) -> None:
    context = multiprocessing.get_context("spawn")
    ready, results, start = context.Queue(), context.Queue(), context.Event()
    n_processes = min(n_workers, args.max_processes)
    processes = [
        context.Process(
            target=_worker,
            args=(job, list(range(p, n_workers, n_processes)), ready, start, results),
            daemon=True,
        )
        for p in range(n_processes)
    ]
    began = time.monotonic()
    deadline = began + args.timeout
    try:
        for process in processes:
            process.start()
        _collect(ready, processes, n_workers, deadline)
        row.startup_seconds = time.monotonic() - began
        go = time.monotonic()
        start.set()
        records = _collect(results, processes, n_workers, deadline)
        for process in processes:
            process.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:  # also on Ctrl-C or a kill: no worker outlives its row (or holds its database)
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    row.lost = n_workers - len(records)
    if row.lost:
        row.errors[f"{row.lost} worker(s) reported nothing (crashed or timed out)"] += row.lost
    ends = [r["end"] for r in records if r["end"]]
    row.wall_seconds = (max(ends) if ends else time.monotonic()) - go
    for record in records:
        row.n_opened += "opened" in record
        row.attempted += record["attempted"]
        row.told += len(record["completed"])
        row.errors.update(record["errors"])
        for phase in PHASES:
            row.latencies[phase] += record["latencies"][phase]
    row.refused = sum(n for kind, n in row.errors.items() if _is_refusal(kind))
    row.records = records


def _is_refusal(kind: str) -> bool:
    return kind.startswith(REFUSED_MARK)


@contextlib.contextmanager
def _proxy(url: str, heartbeat: int, threads: int):
    """`python -m search.proxy` for `url` on a free port, answering; yields its grpc:// URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "search.proxy", "--storage", url, "--port", str(port)]
        + ["--heartbeat", str(heartbeat), "--threads", str(threads)],
        cwd=common.ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proxy_url = f"grpc://127.0.0.1:{port}"
    try:
        try:
            open_proxy(proxy_url, ready_seconds=60).close()
        except Exception:
            log.seek(0)
            print(f"the proxy did not start:\n{log.read()[-2000:]}", file=sys.stderr)
            raise
        yield proxy_url
    finally:
        log.close()
        process.send_signal(signal.SIGTERM)  # a background job (nohup) ignores SIGINT
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def _count_connections(admin_url: str, url: str, row: Row):
    """Sample the server's connections to the row's database every 0.2 s into row.peak_connections
    (the admin connection that counts them is to another database)."""
    database = sqlalchemy.make_url(url).database
    if sqlalchemy.make_url(admin_url).get_backend_name() == "postgresql":
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = :db"
    else:
        query = "SELECT COUNT(*) FROM information_schema.processlist WHERE db = :db"
    # Autocommit: PostgreSQL keeps one snapshot of its statistics per transaction.
    engine = sqlalchemy.create_engine(
        admin_url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    stop = threading.Event()

    def sample() -> None:
        with engine.connect() as connection:
            while not stop.wait(0.2):
                count = connection.execute(sqlalchemy.text(query), {"db": database}).scalar_one()
                row.peak_connections = max(row.peak_connections or 0, count)

    thread = threading.Thread(target=sample, name="connections", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        engine.dispose()


def check_numbers(
    storage: optuna.storages.BaseStorage, records: list, lost: int
) -> tuple[str, str]:
    """PASS when stored trial numbers are unique and 0..n-1, and no worker's trial is lost."""
    trials = storage.get_all_trials(storage.get_study_id_from_name(STUDY), deepcopy=False)
    numbers = [t.number for t in trials]
    distinct = set(numbers)
    asked = [n for r in records for n in r["numbers"]]
    told = {n for r in records for n in r["completed"]}
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    problems = []
    if len(numbers) != len(distinct):
        problems.append(f"{len(numbers) - len(distinct)} duplicate numbers stored")
    if distinct != set(range(len(distinct))):
        problems.append(f"{len(set(range(len(distinct))) - distinct)} gaps in the numbers")
    if len(asked) != len(set(asked)):
        problems.append(f"{len(asked) - len(set(asked))} numbers handed to two workers")
    if set(asked) - distinct:
        problems.append(f"{len(set(asked) - distinct)} asked numbers not stored")
    if told - complete:
        problems.append(f"{len(told - complete)} told trials not COMPLETE")
    if lost:
        problems.append(f"{lost} workers lost")
    counts = Counter(t.state.name.lower() for t in trials)
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return ("FAIL: " + "; ".join(problems) if problems else "PASS"), states


# --- output --------------------------------------------------------------------------------------

HEADERS = (
    "backend",
    "workers",
    "trials told/attempted",
    "start-up s",
    "wall s",
    "trials/s",
    "stale check p50/p99 ms",
    "ask p50/p99 ms",
    "report p50/p99 ms",
    "tell p50/p99 ms",
    "errors",
    "refused",
    "peak DB connections",
    "numbers",
)


def _percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p99 = np.percentile(values, [50, 99])
    return f"{p50:.1f} / {p99:.1f}"


def table_rows(rows: list[Row]) -> list[list[str]]:
    out = []
    for row in rows:
        if row.skipped:
            out.append([row.backend, str(row.n_workers), *["-"] * 11, "SKIPPED"])
            continue
        rate = row.told / row.wall_seconds if row.wall_seconds > 0 else 0.0
        workers = str(row.n_workers)
        if row.n_opened < row.n_workers:
            workers += f" ({row.n_workers - row.n_opened} could not open)"
        out.append(
            [
                row.backend,
                workers,
                f"{row.told}/{row.attempted}",
                f"{row.startup_seconds:.1f}",
                f"{row.wall_seconds:.2f}",
                f"{rate:.1f}",
                *(_percentiles(row.latencies[p]) for p in PHASES),
                str(sum(row.errors.values())),
                str(row.refused),
                "-" if row.peak_connections is None else str(row.peak_connections),
                row.check,
            ]
        )
    return out


def details(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        name = f"{row.backend}, {row.n_workers} workers"
        if row.skipped:
            lines.append(f"- {name}: skipped: {row.skipped}")
            continue
        lines.append(f"- {name}: stored trials {row.states or 'none'}")
        for kind, count in row.errors.most_common():
            lines.append(f"  - {count} x {kind}")
    return lines


def conditions(args: argparse.Namespace) -> str:
    beat = f"every {args.heartbeat} s" if args.heartbeat else "off"
    return (
        f"Each worker is a thread with its own storage (connection pool, or gRPC channel to the "
        f"proxy), in at most {args.max_processes} spawned processes, running "
        f"{args.trials_per_worker} trials; a trial = heartbeat stale check (not behind the "
        f"proxy, which checks itself), ask, suggest_float, {N_REPORTS} x report, "
        f"{args.sleep_ms} ms sleep (the heartbeat thread running), tell. {args.sampler} "
        f"sampler; heartbeat {beat}; storages opened by storage.open_storage; proxy: PostgreSQL "
        f"behind one `python -m search.proxy --threads {args.proxy_threads}`, on this same "
        "machine. refused: errors whose message is the server's connection limit; peak DB "
        "connections: the server's connections to the row's database, sampled every 0.2 s. "
        "Latencies: successful calls only, pooled over "
        "all workers, in milliseconds. wall s: common start signal to the last worker's end "
        "(process start-up excluded, shown as start-up s); trials/s = told trials / wall s. "
        "numbers: stored trial numbers unique and 0..n-1, every asked number stored, every "
        "told trial COMPLETE."
    )


# --- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = common.parser(
        "bench_storage.py",
        "Trials per second, ask/report/tell latency percentiles, errors by kind and a "
        "trial-number check for N simulated worker processes on SQLite, PostgreSQL and "
        "MariaDB (no training). Each backend and worker count runs on a fresh database "
        "that the script creates and drops. Exit status 1 when a trial-number check fails.",
        quick=f"workers {QUICK['workers']}, {QUICK['trials_per_worker']} trials per worker",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        default=list(BACKENDS),
        help="storages to measure: sqlite (a temp file), postgresql, mysql (MariaDB), proxy "
        "(PostgreSQL behind search.proxy). A server that does not answer is reported as "
        "skipped. Default: all four",
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        nargs="+",
        type=positive_int,
        default=None,
        help=f"worker process counts, one row each (default {FULL['workers']}, "
        f"with --quick {QUICK['workers']})",
    )
    parser.add_argument(
        "--trials-per-worker",
        metavar="N",
        type=positive_int,
        default=None,
        help=f"trials each worker runs (default {FULL['trials_per_worker']}, "
        f"with --quick {QUICK['trials_per_worker']})",
    )
    parser.add_argument(
        "--max-processes",
        metavar="N",
        type=positive_int,
        default=MAX_PROCESSES,
        help="worker threads are spread over at most N spawned processes; up to N workers, "
        f"one process each (default {MAX_PROCESSES})",
    )
    parser.add_argument(
        "--proxy-threads",
        metavar="N",
        type=positive_int,
        default=DEFAULT_THREADS,
        help=f"search.proxy's --threads for the proxy rows (default {DEFAULT_THREADS}, its own)",
    )
    parser.add_argument(
        "--sleep-ms",
        metavar="MS",
        type=float,
        default=5.0,
        help="simulated work inside each trial, in milliseconds (default 5)",
    )
    parser.add_argument(
        "--heartbeat",
        metavar="SECONDS",
        type=int,
        default=10,
        help="heartbeat interval in seconds given to open_storage, as search.run's --heartbeat "
        "(default 10, the service's); 0 turns heartbeats and the stale check off",
    )
    parser.add_argument(
        "--sampler",
        choices=("random", "tpe"),
        default="random",
        help="sampler of the workers: random keeps the sampler's own cost out of ask; tpe reads "
        "every finished trial on each ask as the service's sampler does (default random)",
    )
    for backend, name in (("postgresql", "PostgreSQL"), ("mysql", "MySQL/MariaDB")):
        parser.add_argument(
            f"--{backend}-admin-url",
            metavar="URL",
            default=ADMIN_URLS[backend],
            help=f"URL of an existing {name} database used only to CREATE and DROP the "
            f"benchmark's databases (default {ADMIN_URLS[backend]})",
        )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=600.0,
        help="seconds one row (one backend and worker count, start-up included) may take "
        "before its workers are stopped and the row fails (default 600)",
    )
    return parser


def _max_connections(admin_urls: dict[str, str]) -> str:
    """Each server's connection limit, as it says; for the record beside the table."""
    found = []
    for kind, url in admin_urls.items():
        engine = sqlalchemy.create_engine(
            url, poolclass=sqlalchemy.pool.NullPool, connect_args={"connect_timeout": 5}
        )
        query = "SHOW max_connections" if kind == "postgresql" else "SELECT @@max_connections"
        try:
            with engine.connect() as connection:
                found.append(f"{kind} {connection.execute(sqlalchemy.text(query)).scalar_one()}")
        except sqlalchemy.exc.SQLAlchemyError:
            found.append(f"{kind} unreachable")
        finally:
            engine.dispose()
    return ", ".join(found)


def _killed(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A kill unwinds like Ctrl-C: the row's workers and proxy stop, its database is dropped.
    signal.signal(signal.SIGTERM, _killed)
    common.fill_defaults(args, QUICK, FULL)
    if args.heartbeat < 0 or args.sleep_ms < 0:
        print("--heartbeat and --sleep-ms must not be negative", file=sys.stderr)
        return 2
    args.admin_urls = {"postgresql": args.postgresql_admin_url, "mysql": args.mysql_admin_url}
    print(f"max_connections: {_max_connections(args.admin_urls)}", flush=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    job_args = {
        "n_trials": args.trials_per_worker,
        "sleep_seconds": args.sleep_ms / 1000.0,
        "heartbeat": args.heartbeat or None,
        "sampler": args.sampler,
    }
    rows: list[Row] = []
    for backend in args.backends:
        skipped = ""
        for n_workers in args.workers:
            if skipped:
                rows.append(Row(backend, n_workers, skipped=skipped))
                continue
            print(f"{backend}: {n_workers} workers ...", flush=True)
            try:
                rows.append(run_row(backend, n_workers, args, job_args))
            except common.Unreachable as exc:
                skipped = str(exc)
                print(f"{backend}: skipped: {skipped}", flush=True)
                rows.append(Row(backend, n_workers, skipped=skipped))
    table = common.markdown_table(HEADERS, table_rows(rows))
    limits = f"Server connection limits (max_connections): {_max_connections(args.admin_urls)}."
    body = [conditions(args), limits, "", table, "", *details(rows)]
    common.report("bench_storage", "\n".join(body), args)
    failed = [r for r in rows if not r.skipped and r.check != "PASS"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
