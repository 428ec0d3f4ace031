"""PNG plots of the report: learning curves, search history, accuracy against size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402


def plot_learning_curves(history: dict[str, list[float]], title: str, path: Path) -> Path | None:
    """Loss and val_loss; accuracy and val_accuracy; against epochs."""
    if not history.get("loss"):
        return None
    epochs = range(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in ((left, "loss"), (right, "accuracy")):
        axis.plot(epochs, history.get(metric, []), label=metric, marker=".")
        axis.plot(epochs, history.get(f"val_{metric}", []), label=f"val_{metric}", marker=".")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(f"Learning curves of the best retrained model: {title}")
    return _save(fig, path)


def plot_search_history(study: Any, path: Path) -> Path | None:
    """Best validation accuracy so far, against trial number and against wall time."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    if not trials:
        return None
    trials.sort(key=lambda t: t.datetime_complete)
    origin = min(t.datetime_start for t in trials if t.datetime_start)
    numbers, minutes, best_so_far, best = [], [], [], float("-inf")
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            best = max(best, trial.value)
        if best > float("-inf"):
            numbers.append(trial.number)
            minutes.append((trial.datetime_complete - origin).total_seconds() / 60)
            best_so_far.append(best)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.step(numbers, best_so_far, where="post")
    left.set_xlabel("trial number")
    right.step(minutes, best_so_far, where="post")
    right.set_xlabel("wall time since the first trial started (minutes)")
    for axis in (left, right):
        axis.set_ylabel("best validation accuracy so far")
        axis.grid(alpha=0.3)
    fig.suptitle(f"Search history of study {study.study_name!r}")
    return _save(fig, path)


def plot_accuracy_vs_params(report: dict[str, Any], path: Path) -> Path:
    """Test accuracy against parameter count (log scale), every documented baseline marked."""
    fig, axis = plt.subplots(figsize=(9, 5.5))
    for entry in report["baselines"]:
        accuracy = entry["documented"].get("test_accuracy")
        if isinstance(accuracy, list):
            accuracy = accuracy[1]
        if accuracy is not None and entry["n_params"]:
            axis.scatter(entry["n_params"], accuracy, marker="s", color="tab:gray")
            axis.annotate(
                entry["id"],
                (entry["n_params"], accuracy),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        for rep in entry["reproduced"]:
            axis.errorbar(
                rep["n_params"],
                rep["test_accuracy_mean"],
                yerr=rep["test_accuracy_std"],
                fmt="^",
                color="tab:orange",
            )
    for entry in report["retrained"]:
        axis.errorbar(
            entry["n_params"],
            entry["test_accuracy_mean"],
            yerr=entry["test_accuracy_std"],
            fmt="o",
            color="tab:blue",
        )
        axis.annotate(
            entry["label"],
            (entry["n_params"], entry["test_accuracy_mean"]),
            fontsize=7,
            xytext=(3, -9),
            textcoords="offset points",
        )
    for entry in report.get("ensembles", []):
        axis.scatter(entry["n_params"], entry["test_accuracy"], marker="*", s=120, color="tab:red")
        axis.annotate(
            entry["label"],
            (entry["n_params"], entry["test_accuracy"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    # Legend entries, one per marker kind.
    axis.scatter([], [], marker="s", color="tab:gray", label="documented baseline")
    axis.errorbar([], [], fmt="^", color="tab:orange", label="baseline reproduced here")
    axis.errorbar([], [], fmt="o", color="tab:blue", label="this search, retrained")
    if report.get("ensembles"):
        axis.scatter([], [], marker="*", s=120, color="tab:red", label="ensemble (this search)")
    axis.set_xscale("log")
    axis.set_xlabel("parameters (log scale)")
    axis.set_ylabel("test accuracy")
    axis.grid(alpha=0.3, which="both")
    axis.legend(loc="lower right")
    name = report["study"]
    name += f" ({report['dataset']})" if report["dataset"] != name else ""
    axis.set_title(f"Test accuracy against size: study {name}")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
