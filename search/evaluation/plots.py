"""PNG plots of the report: learning curves, search history, accuracy against size, and a
Pareto study's front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402

from models.task import TASKS  # noqa: E402
from search.evaluation.front import documented_accuracy  # noqa: E402


def plot_learning_curves(
    history: dict[str, list[float]], title: str, path: Path, *, metric: str = "accuracy"
) -> Path | None:
    """Loss and val_loss; the task's figure (accuracy, or RMSE) and its validation; by epoch."""
    if not history.get("loss"):
        return None
    epochs = range(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, name in ((left, "loss"), (right, metric)):
        axis.plot(epochs, history.get(name, []), label=name, marker=".")
        axis.plot(epochs, history.get(f"val_{name}", []), label=f"val_{name}", marker=".")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(f"Learning curves of the best retrained model: {title}")
    return _save(fig, path)


def plot_search_history(study: Any, path: Path) -> Path | None:
    """Best validation figure so far (accuracy, or RMSE), against trial number and wall time."""
    from optuna.trial import TrialState

    from search.study.values import figure, study_task

    maximize = study_task(study).direction == "maximize"
    sign = 1.0 if maximize else -1.0  # the running best is a max of sign * value

    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    if not trials:
        return None
    trials.sort(key=lambda t: t.datetime_complete)
    origin = min(t.datetime_start for t in trials if t.datetime_start)
    numbers, minutes, best_so_far, best = [], [], [], float("-inf")
    for trial in trials:
        if trial.state == TrialState.COMPLETE and figure(trial) is not None:
            best = max(best, sign * figure(trial))
        if best > float("-inf"):
            numbers.append(trial.number)
            minutes.append((trial.datetime_complete - origin).total_seconds() / 60)
            best_so_far.append(sign * best)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.step(numbers, best_so_far, where="post")
    left.set_xlabel("trial number")
    right.step(minutes, best_so_far, where="post")
    right.set_xlabel("wall time since the first trial started (minutes)")
    for axis in (left, right):
        axis.set_ylabel(f"best validation {'accuracy' if maximize else 'RMSE'} so far")
        axis.grid(alpha=0.3)
    fig.suptitle(f"Search history of study {study.study_name!r}")
    return _save(fig, path)


def plot_accuracy_vs_params(report: dict[str, Any], path: Path) -> Path:
    """The headline figure (test accuracy; RMSE for regression; validation without a test file)
    against parameter count (log scale), every documented baseline marked."""
    figure = report.get("headline", {}).get("key", "test_accuracy")
    label = report.get("headline", {}).get("label", "test accuracy")
    fig, axis = plt.subplots(figsize=(9, 5.5))
    _mark_documented(axis, report, "tab:gray")
    for entry in report["baselines"]:
        for rep in entry["reproduced"]:
            axis.errorbar(
                rep["n_params"],
                rep["test_accuracy_mean"],
                yerr=rep["test_accuracy_std"],
                fmt="^",
                color="tab:orange",
            )
    for entry in report["retrained"]:
        if entry.get(f"{figure}_mean") is None:
            continue
        axis.errorbar(
            entry["n_params"],
            entry[f"{figure}_mean"],
            yerr=entry[f"{figure}_std"],
            fmt="o",
            color="tab:blue",
        )
        axis.annotate(
            entry["label"],
            (entry["n_params"], entry[f"{figure}_mean"]),
            fontsize=7,
            xytext=(3, -9),
            textcoords="offset points",
        )
    for entry in report.get("ensembles", []):
        if entry.get(figure) is None:
            continue
        axis.scatter(entry["n_params"], entry[figure], marker="*", s=120, color="tab:red")
        axis.annotate(
            entry["label"],
            (entry["n_params"], entry[figure]),
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
    axis.set_ylabel(label)
    axis.grid(alpha=0.3, which="both")
    axis.legend(
        loc="lower right" if report.get("headline", {}).get("maximize", True) else "upper right"
    )
    name = report["study"]
    name += f" ({report['dataset']})" if report["dataset"] != name else ""
    axis.set_title(f"{label[0].upper()}{label[1:]} against size: study {name}")
    return _save(fig, path)


def plot_front(study: Any, report: dict[str, Any], path: Path) -> Path:
    """A Pareto study on one page: every complete trial and the validation front (search
    figures), the retrained front points (headline figure, mean ± sd over seeds) and the
    documented baselines, against parameters on a log scale."""
    from optuna.trial import TrialState

    fig, axis = plt.subplots(figsize=(9, 5.5))
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    axis.scatter(
        [t.values[1] for t in complete],
        [t.values[0] for t in complete],
        s=10,
        color="tab:gray",
        alpha=0.4,
        label="trial (validation, search)",
    )
    points = report["pareto"]["front"]
    axis.step(
        [p["n_params"] for p in points],
        [p["val"] for p in points],
        where="post",
        marker="o",
        color="tab:green",
        label="validation front (search)",
    )
    key, label = report["headline"]["key"], report["headline"]["label"]
    for entry in report["retrained"]:
        if entry.get(f"{key}_mean") is not None:
            axis.errorbar(
                entry["n_params"],
                entry[f"{key}_mean"],
                yerr=entry[f"{key}_std"],
                fmt="o",
                color="tab:blue",
            )
    axis.errorbar([], [], fmt="o", color="tab:blue", label=f"retrained point ({label})")
    _mark_documented(axis, report, "tab:red")
    axis.scatter([], [], marker="s", color="tab:red", label="documented baseline (test)")
    axis.set_xscale("log")
    axis.set_xlabel("trainable parameters (log scale)")
    axis.set_ylabel(TASKS[report["task"]].label)
    axis.grid(alpha=0.3, which="both")
    axis.legend(loc="lower right" if report["headline"].get("maximize", True) else "upper right")
    axis.set_title(f"Pareto front of study {report['study']!r}")
    return _save(fig, path)


def _mark_documented(axis: Any, report: dict[str, Any], color: str) -> None:
    """Every documented baseline with a size and a test accuracy, as a labelled square."""
    for entry in report["baselines"]:
        accuracy = documented_accuracy(entry)
        if accuracy is not None and entry["n_params"]:
            axis.scatter(entry["n_params"], accuracy, marker="s", color=color)
            axis.annotate(
                entry["id"],
                (entry["n_params"], accuracy),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
