"""The report of a study: retrained results beside the documented baselines.

Everything comes from the study's database (Optuna's tables and the project's
`search_retrain_runs`), so the report can be rebuilt at any time. `build_report` gathers it;
`write_report` writes report.md, report.json and the PNG plots to reports/NAME/.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

from models.task import CLASSIFICATION, TASKS, Task
from search.errors import UsageError
from search.evaluation.baseline import DATASETS
from search.evaluation.baselines import best_documented, for_dataset
from search.evaluation.front import pareto_section
from search.evaluation.plots import (
    plot_accuracy_vs_params,
    plot_front,
    plot_learning_curves,
    plot_search_history,
)
from search.evaluation.render import format_table, markdown_report, table_rows
from search.evaluation.selection import validation_rank
from search.study.values import best_trial, figure
from storage.results import ResultStore, RunRecord
from storage.urls import mask_url

METRICS = ("test_accuracy", "test_loss", "precision", "recall", "test_rmse", "test_mae")
EDGE_SHARE = 0.02  # a best value within 2% of a range end "sits on the edge"


@dataclass
class Report:
    """A built report: `data` is what report.json holds; the rest feeds the plots."""

    data: dict[str, Any]
    study: optuna.Study
    runs: dict[tuple[str, str], list[RunRecord]]  # stored runs by (kind, config key)


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for a single run); None without a figure (a
    study without a test file, or a figure of the other task)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(runs: list) -> dict[str, Any]:
    """Mean and standard deviation of every figure over the seeds of one configuration."""
    summary: dict[str, Any] = {"n_runs": len(runs)}
    for metric in (*METRICS, "epochs_run", "seconds"):
        mean, std = _mean_std([getattr(run, metric) for run in runs])
        summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean, std
    for name in ("val_accuracy", "val_rmse"):
        mean, std = _mean_std([getattr(run, name) for run in runs])
        summary[f"{name}_mean"], summary[f"{name}_std"] = mean, std
    summary["n_params"] = runs[0].n_params
    summary["max_epochs"] = runs[0].max_epochs
    return summary


def best_validation_run(runs: list[RunRecord], task: Task = CLASSIFICATION) -> RunRecord:
    """The seed whose curve is drawn: best validation figure (never the test figure)."""
    return min(runs, key=lambda run: (task.sort_key(getattr(run, task.monitor)), run.seed))


def headline(task: Task, has_test: bool) -> dict[str, Any]:
    """The figure the report leads with: test accuracy or RMSE, or without a test file the
    validation figure, labelled as such."""
    part = "test" if has_test else "val"
    return {
        "key": f"{part}_{task.metric}",
        "label": f"{'test' if has_test else 'validation'} {task.label}",
        "percent": task.metric == "accuracy",
        "maximize": task.direction == "maximize",
    }


def _group(runs: list) -> dict[tuple[str, str], list]:
    groups: dict[tuple[str, str], list] = {}
    for run in runs:
        groups.setdefault((run.kind, run.config_key), []).append(run)
    return groups


def _run_json(run) -> dict[str, Any]:
    return {
        "seed": run.seed,
        **{metric: getattr(run, metric) for metric in METRICS},
        "n_params": run.n_params,
        "epochs_run": run.epochs_run,
        "max_epochs": run.max_epochs,
        "best_epoch": run.best_epoch,
        "seconds": run.seconds,
        "model_path": run.model_path,
        "artifact_id": run.artifact_id,
    }


def edge_warnings(study) -> list[str]:
    """Best-trial parameters at the end of their numeric range: the space may be too narrow.

    A float range starting at 0 (dropout, label smoothing) starts at the knob switched off:
    nothing lies below it, so a best value there is a choice, not a too-narrow range.
    """
    best = best_trial(study)
    if best is None:
        return []
    warnings = []
    for name, value in best.params.items():
        dist = best.distributions[name]
        if not isinstance(dist, (IntDistribution, FloatDistribution)) or dist.low == dist.high:
            continue
        if dist.log:
            share = (math.log(value) - math.log(dist.low)) / (
                math.log(dist.high) - math.log(dist.low)
            )
        else:
            share = (value - dist.low) / (dist.high - dist.low)
        off_at_zero = isinstance(dist, FloatDistribution) and dist.low == 0
        if (share <= EDGE_SHARE and not off_at_zero) or share >= 1 - EDGE_SHARE:
            edge = "lower" if share <= EDGE_SHARE else "upper"
            warnings.append(
                f"warning: best trial {best.number}'s {name} = {value:.4g} sits on the {edge} "
                f"edge of its range [{dist.low:g}, {dist.high:g}]; the optimum may lie outside"
            )
    return warnings


def build_report(study_name: str, storage_url: str) -> Report:
    """The report from the database alone."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_url)
    except KeyError:
        raise UsageError(
            f"no study named {study_name!r} in {mask_url(storage_url)}; run "
            f"`python -m search.run --study ...` first or check --study/--storage"
        ) from None
    recorded = study.user_attrs.get("config", {})
    dataset = recorded.get("dataset") or study_name.split("-")[0]
    task = TASKS[recorded.get("task", "classification")]
    store = ResultStore(storage_url)
    try:
        groups = _group(store.runs(study_name))
    finally:
        store.close()

    # Documented baselines exist for the built-in datasets only, not for a user's own data.
    documented = for_dataset(dataset) if dataset in DATASETS else ()
    best_doc = best_documented(dataset) if documented else None
    best_doc_acc = best_doc.best_documented_accuracy() if best_doc else None
    baselines = []
    for baseline in documented:
        reproduced = [
            {
                "epochs_allowed": runs[0].max_epochs,
                **summarize(runs),
                "runs": [_run_json(run) for run in runs],
            }
            for (kind, _), runs in groups.items()
            if kind == "baseline" and runs[0].label == baseline.id
        ]
        baselines.append(
            {
                "id": baseline.id,
                "source": baseline.source,
                "kind": baseline.kind,
                "n_params": baseline.param_count(),
                "documented": {k: _jsonable(v) for k, v in baseline.documented.items()},
                "documented_epochs": baseline.documented_epochs,
                "assumptions": list(baseline.assumptions),
                "reproduced": reproduced,
            }
        )
    retrained = []
    for (kind, key), runs in groups.items():
        if kind != "trial":
            continue
        summary = summarize(runs)
        trial_number = runs[0].trial_number
        search_value = None
        if trial_number is not None and trial_number < len(study.trials):
            search_value = figure(study.trials[trial_number])
        retrained.append(
            {
                "label": runs[0].label,
                "config_key": key,
                "trial_number": trial_number,
                "params": runs[0].params,
                "search_val_accuracy": search_value,
                **summary,
                "margin_to_best_documented": None
                if best_doc_acc is None or summary["test_accuracy_mean"] is None
                else summary["test_accuracy_mean"] - best_doc_acc,
                "runs": [_run_json(run) for run in runs],
            }
        )
    # Ranked on validation only (the test set chooses nothing): the retrain's mean validation
    # accuracy over seeds, then the search's own value.
    retrained.sort(key=lambda entry: validation_rank(entry, task))
    ensembles = [
        {
            "label": runs[0].label,
            "config_key": key,
            "members": runs[0].params.get("members", []),
            "val_accuracy": runs[0].val_accuracy,
            "val_rmse": runs[0].val_rmse,
            **{metric: getattr(runs[0], metric) for metric in METRICS},
            "n_params": runs[0].n_params,
            "margin_to_best_documented": None
            if best_doc_acc is None or runs[0].test_accuracy is None
            else runs[0].test_accuracy - best_doc_acc,
        }
        for (kind, key), runs in groups.items()
        if kind == "ensemble"
    ]
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    stored = [run for group in groups.values() for run in group]
    has_test = not stored or any(
        run.test_accuracy is not None or run.test_rmse is not None for run in stored
    )
    data = {
        "study": study_name,
        "dataset": dataset,
        "task": task.name,
        "has_test": has_test,
        "headline": headline(task, has_test),
        "storage": mask_url(storage_url),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "n_trials": len(study.trials),
        "n_complete": len(complete),
        "best_search_value": min((figure(t) for t in complete), key=task.sort_key, default=None),
        "best_documented": None
        if best_doc is None
        else {"id": best_doc.id, "test_accuracy": best_doc_acc},
        "baselines": baselines,
        "retrained": retrained,
        "ensembles": ensembles,
        "warnings": edge_warnings(study),
    }
    data["pareto"] = pareto_section(study, data)
    return Report(data=data, study=study, runs=groups)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def write_report(
    study_name: str,
    storage_url: str,
    out_dir: str | Path | None = None,
    *,
    print_table: bool = False,
) -> Path:
    """Build the report from the database and write report.md, report.json and the plots."""
    built = build_report(study_name, storage_url)
    report, study, groups = built.data, built.study, built.runs
    out = Path(out_dir) if out_dir else Path("reports") / study_name
    out.mkdir(parents=True, exist_ok=True)
    plots = [
        plot_search_history(study, out / "search_history.png"),
        plot_accuracy_vs_params(report, out / "accuracy_vs_params.png"),
    ]
    if report["pareto"]:
        plots.append(plot_front(study, report, out / "pareto_front.png"))
    if report["retrained"]:
        best = report["retrained"][0]
        best_run = best_validation_run(groups[("trial", best["config_key"])], TASKS[report["task"]])
        plots.append(
            plot_learning_curves(
                best_run.history,
                f"{best['label']} seed {best_run.seed}",
                out / "learning_curves.png",
                metric=TASKS[report["task"]].metric,
            )
        )
    report["plots"] = [str(path.name) for path in plots if path is not None]
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = table_rows(report)
    (out / "report.md").write_text(markdown_report(report, rows))
    if print_table:
        print(format_table(rows))
        for warning in report["warnings"]:
            print(warning)
        print(f"report: {out / 'report.md'} (and report.json, {len(report['plots'])} plots)")
    return out
