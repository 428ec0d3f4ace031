"""The proxy's side: Optuna's gRPC storage proxy in front of one study database, with the
heartbeat rule Optuna's proxy leaves out.

Many workers talk to one proxy process (`python -m search.proxy`), which alone holds database
connections (one per answering thread, whatever the number of workers) and caches finished
trials.
Optuna's gRPC client has no heartbeat, so a worker beats by setting the trial system attribute
`BEAT_KEY` (storage.proxy_client); `ProxyBackend` records each such call as Optuna's own
heartbeat, on the database's clock, instead of storing it. A `Reaper` thread then does for every
study what a worker with heartbeats does at each trial's start: Optuna's `fail_stale_trials`,
whose retry callback queues the silent trial's configuration again. A dead worker machine's
trial is thus failed within grace period + reap interval of its last beat, with nobody else
having to start a trial. Beside Optuna's service the proxy answers one more method,
`WAITING_METHOD`: a study's WAITING trials alone, which each worker's ask looks for
(storage.proxy_client).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import optuna
from optuna.storages._cached_storage import _CachedStorage  # private: Optuna is pinned
from optuna.storages._grpc import servicer as grpc_servicer  # private, as above
from optuna.storages._grpc.auto_generated import api_pb2
from optuna.storages._grpc.server import make_server  # private, as above
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from storage.proxy_client import BEAT_KEY, WAITING_METHOD
from storage.rdb import ResilientRDBStorage, grace_period, open_storage

REAP_SECONDS = 5.0  # how often the proxy looks for silent trials
DEFAULT_THREADS = 10  # Optuna's own default for the proxy's thread pool
_log = logging.getLogger(__name__)


class ProxyBackend(ResilientRDBStorage):
    """The RDB storage behind the proxy: a worker's beat becomes a heartbeat record."""

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if key == BEAT_KEY:
            self.record_heartbeat(trial_id)
            return
        super().set_trial_system_attr(trial_id, key, value)


class CoalescedCache(_CachedStorage):
    """Optuna's caching layer (what `optuna.storages.get_storage` wraps an RDBStorage in), whose
    refresh from the database serves every request that was waiting for it.

    Before answering for a study, the cache re-reads the study's unfinished trials from the
    database, one request at a time. With hundreds of workers each holding a running trial, every
    ask queued behind a read of all of them. A refresh that began after a request arrived has
    seen every write made before it, so that request needs no refresh of its own.
    """

    def __init__(self, backend: optuna.storages.RDBStorage) -> None:
        super().__init__(backend)
        self._refreshing = threading.Lock()
        self._refresh_began: dict[int, float] = {}  # study id -> start of its last refresh

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        asked = time.monotonic()
        with self._refreshing:
            if self._refresh_began.get(study_id, -math.inf) > asked:
                return  # served by the refresh that ran while this request waited
            began = time.monotonic()
            super()._read_trials_from_remote_storage(study_id)
            self._refresh_began[study_id] = began


class Reaper(threading.Thread):
    """Every `every` seconds, fail the silent running trials of every study and retry them."""

    def __init__(self, storage: optuna.storages.BaseStorage, every: float = REAP_SECONDS) -> None:
        super().__init__(name="proxy-reaper", daemon=True)
        self.storage, self.every = storage, every
        self._studies: dict[int, optuna.Study] = {}  # by study id: a name can be reused
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.reap_once()
            except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
                # The database is away: look again at the next round.
                _log.warning("stale-trial check skipped (%s)", type(exc).__name__)
            except Exception:  # noqa: BLE001 - one bad round must not end the reaping for good
                _log.exception("stale-trial check failed; trying again in %.0f s", self.every)

    def stop(self) -> None:
        self._stop.set()

    def reap_once(self) -> None:
        """One round over every study in the storage."""
        with warnings.catch_warnings():
            # fail_stale_trials is "experimental" in Optuna's terms.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            studies = {}
            for frozen in self.storage.get_all_studies():
                study = self._studies.get(frozen._study_id)
                try:
                    if study is None:
                        study = optuna.load_study(
                            study_name=frozen.study_name,
                            storage=self.storage,
                            sampler=optuna.samplers.RandomSampler(),  # never samples; cheap
                        )
                    optuna.storages.fail_stale_trials(study)
                except KeyError:  # deleted since the listing
                    continue
                studies[frozen._study_id] = study
            self._studies = studies  # deleted studies are forgotten


def open_backend(
    url: str, heartbeat: int, threads: int = DEFAULT_THREADS
) -> optuna.storages.BaseStorage:
    """The database behind the proxy, with Optuna's caching layer (its proxy documentation asks
    for it: a bare RDBStorage reads every trial on every request) refreshed for many requests at
    once (`CoalescedCache`), and a connection kept open for each answering thread and the
    reaper."""
    return CoalescedCache(
        open_storage(url, heartbeat_interval=heartbeat, kind=ProxyBackend, pool_size=threads + 1)
    )


def serve(
    storage: optuna.storages.BaseStorage,
    *,
    host: str,
    port: int,
    threads: int = DEFAULT_THREADS,
    reap_every: float = REAP_SECONDS,
) -> None:
    """Serve `storage` (from `open_backend`) on host:port until interrupted; reap meanwhile."""
    reaper = Reaper(storage, reap_every)
    reaper.start()
    try:
        # What optuna.storages.run_grpc_proxy_server does, with the one method added.
        server = make_server(storage, host, port, ThreadPoolExecutor(max_workers=threads))
        server.add_generic_rpc_handlers((waiting_trials_handler(storage),))
        server.start()
        server.wait_for_termination()
    finally:
        reaper.stop()


def waiting_trials_handler(storage: optuna.storages.BaseStorage) -> grpc.GenericRpcHandler:
    """The gRPC handler of `WAITING_METHOD`: the study's WAITING trials, nothing else."""

    def get_waiting(
        request: api_pb2.GetTrialsRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetTrialsReply:
        try:
            trials = storage.get_all_trials(
                request.study_id, deepcopy=False, states=(TrialState.WAITING,)
            )
        except KeyError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return api_pb2.GetTrialsReply(trials=[grpc_servicer._to_proto_trial(t) for t in trials])

    service, method = WAITING_METHOD.strip("/").split("/")
    return grpc.method_handlers_generic_handler(
        service,
        {
            method: grpc.unary_unary_rpc_method_handler(
                get_waiting,
                request_deserializer=api_pb2.GetTrialsRequest.FromString,
                response_serializer=api_pb2.GetTrialsReply.SerializeToString,
            )
        },
    )


def failure_bound(heartbeat: int, reap_every: float = REAP_SECONDS) -> float:
    """At most this many seconds from a worker's death to its trial failed and retried: its last
    beat is at most as old as its death, stale a grace period after it, seen within one round."""
    return grace_period(heartbeat) + reap_every
