"""The stages of one `search.run`, in order: search, then retrain and report, then the note.

Or, for a `*-baselines` preset, the documented baselines reproduced under the same harness.
Bad input is refused before any stage stores anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna

from search.errors import UsageError
from search.evaluation.baselines import select_for_reproduction
from search.evaluation.report import write_report
from search.evaluation.selection import select
from search.study.config import StudyConfig
from search.study.devices import retrain_environment, visible_gpus
from search.study.session import open_everything
from search.study.stage import run_search
from search.viewer.curves import publish
from storage.artifacts import default_artifact_dir
from storage.urls import check_storage_url, is_proxy_url, mask_url

# The retrain stage keeps its runs and claims in the project's own tables of the database, which
# Optuna's storage proxy does not serve.
BEHIND_PROXY = (
    "the retrain stage stores its runs in the database's own tables, which the storage proxy "
    "does not serve"
)


def run(config: StudyConfig) -> int:
    """The whole job (search, then retrain; or the baseline reproductions); the exit status."""
    check_storage_url(config.storage)  # a malformed URL fails here, before anything is opened
    behind_proxy = is_proxy_url(config.storage)
    if behind_proxy and config.mode == "baselines":
        raise UsageError(
            f"{config.study_name}: {BEHIND_PROXY}; reproduce baselines with --storage set to the "
            "database URL"
        )
    if config.mode == "baselines":
        select_for_reproduction(config.dataset, config.baseline_ids)  # unknown ids fail here
    study, storage, data, where = open_everything(config, check_test=True)
    print(
        f"study {study.study_name!r} in {where}; data {data.source} ({len(data.x_train)} train / "
        f"{len(data.x_val)} validation examples)",
        flush=True,
    )
    if config.mode == "search":
        code = run_search(config, study, storage)
        if code != 0:
            return code
        if config.retrain and behind_proxy:
            print(
                f"retrain: skipped: {BEHIND_PROXY}. To retrain and report, run this command "
                "once with --storage set to the database URL (it finds the search done)"
            )
            _publish(config, study, storage)
            return 0
        chosen = select(study, config.retrain_top) if config.retrain else []
        if not chosen:
            if config.retrain:
                print("retrain: no complete trial yet, nothing to retrain")
            _publish(config, study, storage)
            return 0
    # The retrain trains in this process: TensorFlow is loaded only now, after the search,
    # so this process stays small while its worker processes train.
    os.environ.update(retrain_environment(visible_gpus()))
    from search.evaluation.candidates import baseline_candidates, trial_candidates
    from search.evaluation.harness import retrain_stage

    if config.mode == "search":
        candidates = trial_candidates(chosen, config, data)
    else:
        candidates = baseline_candidates(config, data)
    retrain_stage(config, study, storage, data, candidates)
    out = write_report(study.study_name, config.storage, print_table=True)
    _publish(config, study, storage, out / "report.json")
    return 0


def _publish(
    config: StudyConfig,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    report_json: Path | None = None,
) -> None:
    """The study note and the best trials' learning curves, for optuna-dashboard."""
    report = json.loads(report_json.read_text()) if report_json else None
    folder = default_artifact_dir(config.storage, config.artifact_dir)
    attached = publish(study, storage, folder, report)
    where = mask_url(config.storage)
    print(
        f"dashboard: study note written, {len(attached)} new learning curves linked; inspect: "
        f"python -m search.dashboard --study {study.study_name} --storage {where}"
    )
