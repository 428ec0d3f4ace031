"""Where models and plots live, and how a file is linked to a trial in optuna-dashboard.

Files go into an Optuna `FileSystemArtifactStore`; `attach_artifact` links one to its trial (or
to the study) so the dashboard lists it for download on that trial's page.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url

from storage.rdb import retry_outage

DASHBOARD_TRIAL_ARTIFACTS = "dashboard:artifacts:"  # optuna_dashboard.artifact._backend's key


def default_artifact_dir(storage_url: str, artifact_dir: str | None = None) -> Path:
    """Where models and artifacts live: `artifact_dir` if given, else artifacts/ beside a SQLite
    database, else ./artifacts. Shared by the retrain stage, the study note and the dashboard."""
    if artifact_dir:
        return Path(artifact_dir).expanduser()
    url = make_url(storage_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).expanduser().resolve().parent / "artifacts"
    return Path("artifacts").resolve()


def attach_artifact(
    store: optuna.artifacts.FileSystemArtifactStore,
    storage: optuna.storages.BaseStorage,
    study_name: str,
    path: Path,
    trial: FrozenTrial | None = None,
) -> str:
    """Put a file in the artifact store and list it on its trial (or on the study).

    optuna.artifacts.upload_artifact cannot attach to a finished trial (its attributes are
    frozen), and a retrain runs long after its trial finished. optuna-dashboard also lists a
    trial's artifacts from study system attributes named "dashboard:artifacts:<trial_id>:<id>"
    (the key its own uploads used before Optuna had artifacts), so that key links the file to
    its trial in the dashboard. The file is written before the key: a key never points nowhere.
    The database calls wait out an outage (`retry_outage`).
    """
    if trial is None:
        study = retry_outage(lambda: optuna.load_study(study_name=study_name, storage=storage))
        return retry_outage(
            lambda: optuna.artifacts.upload_artifact(
                artifact_store=store, file_path=str(path), study_or_trial=study
            )
        )
    artifact_id = str(uuid.uuid4())
    with open(path, "rb") as handle:
        store.write(artifact_id, handle)
    retry_outage(lambda: _link(storage, study_name, trial.number, artifact_id, path))
    return artifact_id


def _link(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    number: int,
    artifact_id: str,
    path: Path,
) -> None:
    """The dashboard's key for a trial's artifact."""
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    meta = {
        "artifact_id": artifact_id,
        "filename": path.name,
        "mimetype": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        "encoding": None,
    }
    storage.set_study_system_attr(
        study_id, f"{DASHBOARD_TRIAL_ARTIFACTS}{trial_id}:{artifact_id}", json.dumps(meta)
    )


def trial_artifacts(storage: optuna.storages.BaseStorage, study_name: str, number: int) -> list:
    """The artifact metadata `attach_artifact` linked to trial `number`.

    The dashboard marks a deleted artifact by setting its key to null: those are left out.
    """
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    prefix = f"{DASHBOARD_TRIAL_ARTIFACTS}{trial_id}:"
    attrs = storage.get_study_system_attrs(study_id)
    metas = [json.loads(value) for key, value in attrs.items() if key.startswith(prefix)]
    return [meta for meta in metas if meta]
