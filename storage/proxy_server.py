"""The proxy's side: Optuna's gRPC storage proxy in front of one study database, with the
heartbeat rule Optuna's proxy leaves out.

Many workers talk to one proxy process (`python -m search.proxy`), which alone holds database
connections (one per answering thread, whatever the number of workers) and caches the trials
(`ProxyCache`).
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

import contextlib
import copy
import json
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.storages._cached_storage import _CachedStorage, _StudyInfo  # private: Optuna is pinned
from optuna.storages._grpc import servicer as grpc_servicer  # private, as above
from optuna.storages._grpc.auto_generated import api_pb2
from optuna.storages._grpc.server import make_server  # private, as above
from optuna.storages._rdb import models as rdb_models  # private, as above
from optuna.trial import FrozenTrial, TrialState
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


class ProxyCache(_CachedStorage):
    """Optuna's caching layer (what `optuna.storages.get_storage` wraps an RDBStorage in), made
    for many workers behind one proxy in two ways.

    A refresh serves every request that waited for it. Before answering for a study, the cache
    re-reads the study's unfinished trials from the database, one request at a time: with
    hundreds of workers each holding a running trial, every ask queued behind a read of all of
    them. A refresh that began after a request arrived has seen every write made before it, so
    that request needs no refresh of its own.

    A trial created here is answered from memory while it runs. Optuna's cache keeps only
    finished trials, so every `get_trial` of a running one (each ask reads its new trial, each
    tell the trial it finishes) was six queries. A trial created through this cache is
    "owned": each write to it goes to the database first (which still checks that the trial
    may be written) and then to the cached copy, as the database will read it back. The trial
    stops being owned at its first state change (a finished trial gets its completion time
    from the database, as with Optuna's cache), at any write that fails, or when a refresh
    finds it finished by another writer; it is read from the database from then on. Another
    writer that finishes a trial (a worker on the database itself failing it as stale) is
    thus seen at the next refresh or at the owner's next write, whichever comes first.
    """

    def __init__(self, backend: optuna.storages.RDBStorage) -> None:
        super().__init__(backend)
        self._refreshing = threading.Lock()
        self._refresh_began: dict[int, float] = {}  # study id -> start of its last refresh
        self._owned: set[int] = set()  # running trials created here and written only here
        self._keeps_whole_seconds = backend.engine.dialect.name == "mysql"

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        asked = time.monotonic()
        with self._refreshing:
            if self._refresh_began.get(study_id, -math.inf) > asked:
                return  # served by the refresh that ran while this request waited
            began = time.monotonic()
            super()._read_trials_from_remote_storage(study_id)
            self._refresh_began[study_id] = began

    def waiting_trials(self, study_id: int) -> list[FrozenTrial]:
        """The study's WAITING trials, read from the database alone (each ask looks for one to
        claim; a refresh would re-read every running trial). Those the cache does not know yet
        join it, so that a worker claiming one can write to it; a copy it already holds is left
        to the refreshes."""
        trials = self._backend._get_trials(
            study_id,
            states=(TrialState.WAITING,),
            included_trial_ids=set(),
            trial_id_greater_than=-1,
        )
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyInfo())
            unknown = [
                t for t in trials if t._trial_id not in self._trial_id_to_study_id_and_number
            ]
            self._add_trials_to_cache(study_id, unknown)
            study.unfinished_trial_ids.update(t._trial_id for t in unknown)
        return trials

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        if template_trial is not None:  # a template may be WAITING or finished: not owned
            return trial_id
        # The copy holds the start time as Python made it; MySQL's DATETIME keeps whole seconds.
        stored = self._backend.get_trial(trial_id) if self._keeps_whole_seconds else None
        with self._lock:
            if stored is not None:
                self._studies[study_id].trials[stored.number] = stored
            self._owned.add(trial_id)
        return trial_id

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            if trial_id in self._owned:
                study_id, number = self._trial_id_to_study_id_and_number[trial_id]
                trial = self._studies[study_id].trials[number]
                if trial.state == TrialState.RUNNING:
                    return trial
                self._owned.discard(trial_id)  # a refresh saw it finished by another writer
        return super().get_trial(trial_id)

    def delete_study(self, study_id: int) -> None:
        with self._lock:
            self._owned = {
                trial_id
                for trial_id in self._owned
                if self._trial_id_to_study_id_and_number[trial_id][0] != study_id
            }
        super().delete_study(study_id)

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: optuna.distributions.BaseDistribution,
    ) -> None:
        with self._writing(trial_id) as cached:
            super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
            stored = json_to_distribution(distribution_to_json(distribution))
            cached(
                params={param_name: stored.to_external_repr(param_value_internal)},
                distributions={param_name: stored},
            )

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        with self._writing(trial_id) as cached:
            super().set_trial_intermediate_value(trial_id, step, intermediate_value)
            value_model = rdb_models.TrialIntermediateValueModel
            stored = value_model.stored_repr_to_intermediate_value(
                *value_model.intermediate_value_to_stored_repr(intermediate_value)
            )
            cached(intermediate_values={step: stored})

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._writing(trial_id) as cached:
            super().set_trial_user_attr(trial_id, key, value)
            cached(user_attrs={key: json.loads(json.dumps(value))})

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._writing(trial_id) as cached:
            super().set_trial_system_attr(trial_id, key, value)
            if key != BEAT_KEY:  # a beat is a heartbeat record, not an attribute (ProxyBackend)
                cached(system_attrs={key: json.loads(json.dumps(value))})

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        with self._lock:
            self._owned.discard(trial_id)
        return super().set_trial_state_values(trial_id, state, values)

    @contextlib.contextmanager
    def _writing(self, trial_id: int) -> Iterator[Callable[..., None]]:
        """Around a write to the database: `cached(field={key: value})` then adds the written
        entries to the owned trial's cached copy (a new copy: one already answered is never
        changed). A write that raises disowns the trial."""

        def cached(**entries: dict[Any, Any]) -> None:
            with self._lock:
                if trial_id not in self._owned:
                    return
                study_id, number = self._trial_id_to_study_id_and_number[trial_id]
                trial = copy.copy(self._studies[study_id].trials[number])
                for field, added in entries.items():
                    setattr(trial, field, {**getattr(trial, field), **added})
                self._studies[study_id].trials[number] = trial

        try:
            yield cached
        except BaseException:
            with self._lock:
                self._owned.discard(trial_id)
            raise


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


def open_backend(url: str, heartbeat: int, threads: int = DEFAULT_THREADS) -> ProxyCache:
    """The database behind the proxy, with Optuna's caching layer (its proxy documentation asks
    for it: a bare RDBStorage reads every trial on every request) made for many workers
    (`ProxyCache`), and a connection kept open for each answering thread and the reaper."""
    return ProxyCache(
        open_storage(url, heartbeat_interval=heartbeat, kind=ProxyBackend, pool_size=threads + 1)
    )


def serve(
    storage: ProxyCache,
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


def waiting_trials_handler(storage: ProxyCache) -> grpc.GenericRpcHandler:
    """The gRPC handler of `WAITING_METHOD`: the study's WAITING trials, nothing else."""

    def get_waiting(
        request: api_pb2.GetTrialsRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetTrialsReply:
        try:
            trials = storage.waiting_trials(request.study_id)
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
