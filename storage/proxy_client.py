"""The worker's side of Optuna's gRPC storage proxy: the client for a `grpc://HOST:PORT` URL,
and the heartbeat Optuna's client lacks.

Optuna's `GrpcStorageProxy` speaks the storage API to `search.proxy`, which alone holds the
database connections. It has no heartbeat, so a worker machine that dies would leave its trial
RUNNING for ever. Here a running trial beats instead by setting the trial system attribute
`BEAT_KEY` every interval; the proxy turns each such call into Optuna's own heartbeat record
(stamped with the database's clock) and fails and retries trials that stop beating
(`storage.proxy_server`).

Every `study.ask()` first looks for a WAITING trial to claim (a retried configuration, the warm
start). Optuna's client answers that from a copy of the whole study, brought up to date with
every RUNNING trial on each call: with hundreds of workers, each ask moved hundreds of trials.
`ProxyClient` asks the proxy for the WAITING trials alone (`WAITING_METHOD`, served beside
Optuna's own service by `storage.proxy_server`), and falls back to Optuna's way against a proxy
that lacks it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Container, Iterable, Iterator

import grpc
import optuna
from optuna.storages._grpc import servicer as grpc_servicer  # private: Optuna is pinned
from optuna.storages._grpc.auto_generated import api_pb2
from optuna.trial import TrialState

from storage.errors import StorageError
from storage.urls import parse_proxy_url

READY_SECONDS = 10  # how long a client waits for the proxy to answer at start-up
# Set by a running trial's worker through the proxy; never stored (see storage.proxy_server).
BEAT_KEY = "search:heartbeat"
# The proxy's one method beyond Optuna's service: a study's WAITING trials, in Optuna's own
# GetTrials messages (study_id in; the trials out).
WAITING_METHOD = "/search.Proxy/GetWaitingTrials"
_log = logging.getLogger(__name__)
PROXY_HINT = "start it with: python -m search.proxy --storage DATABASE_URL --port PORT"


def open_proxy(url: str, *, ready_seconds: float = READY_SECONDS) -> optuna.storages.BaseStorage:
    """Optuna's gRPC client for the proxy at `url`, once the proxy answers; StorageError if not."""
    host, port = parse_proxy_url(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        proxy = ProxyClient(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=ready_seconds)
    except ConnectionError:
        proxy.close()
        raise StorageError(
            f"cannot reach the storage proxy at {url} within {ready_seconds:g} s; {PROXY_HINT}"
        ) from None
    return proxy


class ProxyClient(optuna.storages.GrpcStorageProxy):
    """Optuna's gRPC client, asking the proxy for a study's WAITING trials alone (see above)."""

    def _setup(self) -> None:  # also run when a client is unpickled in a worker process
        super()._setup()
        self._get_waiting = self._channel.unary_unary(
            WAITING_METHOD,
            request_serializer=api_pb2.GetTrialsRequest.SerializeToString,
            response_deserializer=api_pb2.GetTrialsReply.FromString,
        )
        self._proxy_has_waiting = True  # until a proxy without the method says otherwise

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[optuna.trial.FrozenTrial]:
        if self._proxy_has_waiting and _waiting_only(states):
            try:
                reply = self._get_waiting(api_pb2.GetTrialsRequest(study_id=study_id))
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise KeyError(exc.details()) from exc
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                self._proxy_has_waiting = False  # Optuna's own proxy: its way from now on
            else:
                trials = [grpc_servicer._from_proto_trial(t) for t in reply.trials]
                return sorted(trials, key=lambda t: t.number)
        return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)


def _waiting_only(states: Container[TrialState] | None) -> bool:
    return isinstance(states, Iterable) and set(states) == {TrialState.WAITING}


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
