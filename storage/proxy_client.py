"""The worker's side of Optuna's gRPC storage proxy: the client for a `grpc://HOST:PORT` URL,
and the heartbeat Optuna's client lacks.

Optuna's `GrpcStorageProxy` speaks the storage API to `search.proxy`, which alone holds the
database connections. It has no heartbeat, so a worker machine that dies would leave its trial
RUNNING for ever. Here a running trial beats instead by setting the trial system attribute
`BEAT_KEY` every interval; the proxy turns each such call into Optuna's own heartbeat record
(stamped with the database's clock) and fails and retries trials that stop beating
(`storage.proxy_server`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator

import optuna

from storage.errors import StorageError
from storage.urls import parse_proxy_url

READY_SECONDS = 10  # how long a client waits for the proxy to answer at start-up
# Set by a running trial's worker through the proxy; never stored (see storage.proxy_server).
BEAT_KEY = "search:heartbeat"
_log = logging.getLogger(__name__)
PROXY_HINT = "start it with: python -m search.proxy --storage DATABASE_URL --port PORT"


def open_proxy(url: str, *, ready_seconds: float = READY_SECONDS) -> optuna.storages.BaseStorage:
    """Optuna's gRPC client for the proxy at `url`, once the proxy answers; StorageError if not."""
    host, port = parse_proxy_url(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        proxy = optuna.storages.GrpcStorageProxy(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=ready_seconds)
    except ConnectionError:
        proxy.close()
        raise StorageError(
            f"cannot reach the storage proxy at {url} within {ready_seconds:g} s; {PROXY_HINT}"
        ) from None
    return proxy


def is_proxy(storage: optuna.storages.BaseStorage) -> bool:
    return isinstance(storage, optuna.storages.GrpcStorageProxy)


@contextlib.contextmanager
def heartbeat(
    storage: optuna.storages.BaseStorage, trial_id: int, interval: float
) -> Iterator[None]:
    """Beat for `trial_id` through the proxy every `interval` seconds while the block runs.

    The first beat is sent at once: a trial without any beat is never counted stale. A beat that
    fails (the proxy restarting) is skipped; the next is tried at the usual interval, so a short
    outage does not get a live trial failed.
    """
    stop = threading.Event()

    def beat() -> None:
        count = 0
        while True:
            count += 1
            try:
                storage.set_trial_system_attr(trial_id, BEAT_KEY, count)
            except Exception as exc:  # noqa: BLE001 - a missed beat must not end the trial
                _log.warning(
                    "heartbeat of trial %s not sent (%s); trying again at the next beat",
                    trial_id,
                    type(exc).__name__,
                )
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"proxy-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
