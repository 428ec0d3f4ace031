"""Learning-curve PNGs linked to the best trials, and `publish`: the study's story in the dashboard.

`publish` runs at the end of `search.run`. It links a learning-curve PNG (validation accuracy
per epoch) to each of the best few complete trials, then writes the study note (`note.py`).
Both steps are idempotent: a curve already linked to its trial is not linked again, and an
unchanged note is not rewritten.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from optuna.trial import FrozenTrial  # noqa: E402

from models.task import CLASSIFICATION, Task  # noqa: E402
from search.evaluation.selection import select  # noqa: E402
from search.study.values import epoch_figures, study_task  # noqa: E402
from search.viewer.note import N_CURVES, write_study_note  # noqa: E402
from storage.artifacts import attach_artifact, trial_artifacts  # noqa: E402

CURVE_NAME = "learning-curve-trial-{number}.png"


def publish(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    artifact_dir: str | Path,
    report: dict[str, Any] | None = None,
) -> list[str]:
    """Link learning curves to the best trials and write the study note; new artifact ids."""
    folder = Path(artifact_dir)
    folder.mkdir(parents=True, exist_ok=True)  # FileSystemArtifactStore writes into it as is
    store = optuna.artifacts.FileSystemArtifactStore(folder)
    attached = attach_learning_curves(study, storage, store)
    write_study_note(study, storage, report)
    return attached


def attach_learning_curves(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    store: optuna.artifacts.FileSystemArtifactStore,
    n_best: int = N_CURVES,
) -> list[str]:
    """A curve PNG for each of the n_best complete trials lacking one; the new artifact ids.

    Each PNG is drawn in a private scratch folder and copied into the store: two runs of
    same-named studies (in two databases) sharing one artifact folder never draw over each
    other's file, and no stray copy is left beside the store.
    """
    attached = []
    for trial in select(study, n_best):
        filename = CURVE_NAME.format(number=trial.number)
        linked = trial_artifacts(storage, study.study_name, trial.number)
        if not epoch_figures(trial) or any(m.get("filename") == filename for m in linked):
            continue
        with tempfile.TemporaryDirectory(prefix="curve_") as scratch:
            path = plot_trial_curve(trial, Path(scratch) / filename, task=study_task(study))
            attached.append(attach_artifact(store, storage, study.study_name, path, trial))
    return attached


def plot_trial_curve(trial: FrozenTrial, path: Path, *, task: Task = CLASSIFICATION) -> Path:
    """The validation figure (accuracy; RMSE for regression, lower is better) per 1-based epoch.

    From `search.study.values.epoch_figures` (intermediate values, or a Pareto trial's curve).
    """
    by_epoch = epoch_figures(trial)
    epochs, values = list(by_epoch), list(by_epoch.values())
    fig, axis = plt.subplots(figsize=(6, 4))
    figure = task.label
    axis.plot(epochs, values, marker=".", label=f"validation {figure}")
    best_index = task.best_index(values)
    if best_index is not None:
        best_epoch, best = epochs[best_index], values[best_index]
        axis.scatter([best_epoch], [best], color="tab:red", zorder=3, label=f"best {best:.4f}")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    axis.set_xlabel("epoch")
    axis.set_ylabel(f"validation {figure}")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right" if task.mode == "max" else "upper right")
    axis.set_title(f"Trial {trial.number}: validation {figure} per epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
