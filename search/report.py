"""`python -m search.report --study NAME`: retrained results beside the documented baselines.

Everything comes from the study's database (Optuna's tables and the project's
`search_retrain_runs`), so the report can be rebuilt at any time. Writes report.md, report.json
and PNG plots to reports/NAME/ and prints the table.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from search.cli import Parser
from search.errors import UsageError
from storage.urls import mask_secrets, mask_url

PROG = "search.report"
METRICS = ("test_accuracy", "test_loss", "precision", "recall")
EDGE_SHARE = 0.02  # a best value within 2% of a range end "sits on the edge"


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single run)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(runs: list) -> dict[str, Any]:
    """Mean and standard deviation of every test figure over the seeds of one configuration."""
    summary: dict[str, Any] = {"n_runs": len(runs)}
    for metric in (*METRICS, "epochs_run", "seconds"):
        mean, std = _mean_std([getattr(run, metric) for run in runs])
        summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean, std
    summary["n_params"] = runs[0].n_params
    summary["max_epochs"] = runs[0].max_epochs
    return summary


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
    """Best-trial parameters at the end of their numeric range: the space may be too narrow."""
    from optuna.distributions import FloatDistribution, IntDistribution

    try:
        best = study.best_trial
    except ValueError:
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
        if share <= EDGE_SHARE or share >= 1 - EDGE_SHARE:
            edge = "lower" if share <= EDGE_SHARE else "upper"
            warnings.append(
                f"warning: best trial {best.number}'s {name} = {value:.4g} sits on the {edge} "
                f"edge of its range [{dist.low:g}, {dist.high:g}]; the optimum may lie outside"
            )
    return warnings


def build_report(study_name: str, storage_url: str) -> dict[str, Any]:
    """The report as a JSON-ready dict, from the database alone."""
    import optuna

    from search.baselines import best_documented, for_dataset
    from storage.results import ResultStore

    try:
        study = optuna.load_study(study_name=study_name, storage=storage_url)
    except KeyError:
        raise UsageError(
            f"no study named {study_name!r} in {mask_url(storage_url)}; run "
            f"`python -m search.run --study ...` first or check --study/--storage"
        ) from None
    dataset = study.user_attrs.get("config", {}).get("dataset") or study_name.split("-")[0]
    store = ResultStore(storage_url)
    try:
        groups = _group(store.runs(study_name))
    finally:
        store.close()

    best_doc = best_documented(dataset)
    best_doc_acc = best_doc.best_documented_accuracy()
    baselines = []
    for baseline in for_dataset(dataset):
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
            search_value = study.trials[trial_number].value
        retrained.append(
            {
                "label": runs[0].label,
                "config_key": key,
                "trial_number": trial_number,
                "params": runs[0].params,
                "search_val_accuracy": search_value,
                **summary,
                "margin_to_best_documented": None
                if best_doc_acc is None
                else summary["test_accuracy_mean"] - best_doc_acc,
                "runs": [_run_json(run) for run in runs],
            }
        )
    retrained.sort(key=lambda entry: -entry["test_accuracy_mean"])
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return {
        "study": study_name,
        "dataset": dataset,
        "storage": mask_url(storage_url),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "n_trials": len(study.trials),
        "n_complete": len(complete),
        "best_search_value": max((t.value for t in complete), default=None),
        "best_documented": {"id": best_doc.id, "test_accuracy": best_doc_acc},
        "baselines": baselines,
        "retrained": retrained,
        "warnings": edge_warnings(study),
        "_study": study,  # for the plots; dropped before writing JSON
        "_groups": groups,  # the stored runs, for the learning curves; dropped likewise
    }


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _pct(value: Any) -> str:
    if value is None:
        return "not stated"
    if isinstance(value, (list, tuple)):
        return f"{value[0] * 100:.1f}-{value[1] * 100:.1f}%"
    return f"{value * 100:.2f}%"


def _pm(mean: float, std: float, *, percent: bool = True) -> str:
    if percent:
        return f"{mean * 100:.2f} ± {std * 100:.2f}%"
    return f"{mean:.4f} ± {std:.4f}"


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    header = [
        "configuration",
        "source",
        "params",
        "test acc",
        "test loss",
        "precision",
        "recall",
        "epochs",
        "margin",
    ]
    rows = [header]
    for entry in report["baselines"]:
        doc = entry["documented"]
        loss = doc.get("test_loss")
        rows.append(
            [
                entry["id"],
                f"documented: {entry['source']}",
                f"{entry['n_params']:,}" if entry["n_params"] else "not stated",
                _pct(doc.get("test_accuracy")),
                "not stated" if loss is None else f"{loss:.4f}",
                _pct(doc.get("precision")),
                _pct(doc.get("recall")),
                str(entry["documented_epochs"] or "not stated"),
                "",
            ]
        )
        for rep in entry["reproduced"]:
            rows.append(
                [
                    f"  {entry['id']}",
                    f"reproduced here, {rep['n_runs']} seeds",
                    f"{rep['n_params']:,}",
                    _pm(rep["test_accuracy_mean"], rep["test_accuracy_std"]),
                    _pm(rep["test_loss_mean"], rep["test_loss_std"], percent=False),
                    _pm(rep["precision_mean"], rep["precision_std"]),
                    _pm(rep["recall_mean"], rep["recall_std"]),
                    f"{rep['epochs_run_mean']:.1f} of {rep['epochs_allowed']} allowed",
                    "",
                ]
            )
    best = report["best_documented"]
    for entry in report["retrained"]:
        margin = entry["margin_to_best_documented"]
        rows.append(
            [
                entry["label"],
                f"this search, {entry['n_runs']} seeds",
                f"{entry['n_params']:,}",
                _pm(entry["test_accuracy_mean"], entry["test_accuracy_std"]),
                _pm(entry["test_loss_mean"], entry["test_loss_std"], percent=False),
                _pm(entry["precision_mean"], entry["precision_std"]),
                _pm(entry["recall_mean"], entry["recall_std"]),
                f"{entry['epochs_run_mean']:.1f} of {entry['max_epochs']}",
                "" if margin is None else f"{margin * 100:+.2f} pt vs {best['id']}",
            ]
        )
    return rows


def format_table(rows: list[list[str]], *, source_width: int = 44) -> str:
    """A plain-text table for the terminal; long citations are cut (report.md has them whole)."""
    rows = [
        [_cut(cell, source_width) if i == 1 else cell for i, cell in enumerate(row)] for row in rows
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    lines += ["| " + " | ".join(cell.strip() for cell in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def write_report(
    study_name: str,
    storage_url: str,
    out_dir: str | Path | None = None,
    *,
    print_table: bool = False,
) -> Path:
    """Build the report from the database and write report.md, report.json and the plots."""
    from search.plots import plot_accuracy_vs_params, plot_learning_curves, plot_search_history

    report = build_report(study_name, storage_url)
    study = report.pop("_study")
    groups = report.pop("_groups")
    out = Path(out_dir) if out_dir else Path("reports") / study_name
    out.mkdir(parents=True, exist_ok=True)
    plots = [
        plot_search_history(study, out / "search_history.png"),
        plot_accuracy_vs_params(report, out / "accuracy_vs_params.png"),
    ]
    if report["retrained"]:
        best = report["retrained"][0]
        best_run = max(groups[("trial", best["config_key"])], key=lambda r: r.test_accuracy)
        plots.append(
            plot_learning_curves(
                best_run.history,
                f"{best['label']} seed {best_run.seed}",
                out / "learning_curves.png",
            )
        )
    report["plots"] = [str(path.name) for path in plots if path is not None]
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = table_rows(report)
    (out / "report.md").write_text(_markdown(report, rows))
    if print_table:
        print(format_table(rows))
        for warning in report["warnings"]:
            print(warning)
        print(f"report: {out / 'report.md'} (and report.json, {len(report['plots'])} plots)")
    return out


def _markdown(report: dict[str, Any], rows: list[list[str]]) -> str:
    parts = [
        f"# Report: study `{report['study']}` ({report['dataset']})",
        "",
        f"Generated {report['generated_at']} from {report['storage']}: {report['n_trials']} "
        f"trials, {report['n_complete']} complete. Test figures are on the official test set, "
        "evaluated once per run; our configurations are the search's best, retrained with "
        "several seeds (mean ± sample standard deviation).",
        "",
        markdown_table(rows),
        "",
    ]
    if report["warnings"]:
        parts += ["## Warnings", "", *[f"- {w}" for w in report["warnings"]], ""]
    assumptions = [
        (b["id"], a) for b in report["baselines"] if b["reproduced"] for a in b["assumptions"]
    ]
    if assumptions:
        parts += ["## Reproduction assumptions", ""]
        parts += [f"- {baseline_id}: {text}" for baseline_id, text in assumptions] + [""]
    parts += ["## Plots", ""] + [f"![{name}]({name})" for name in report["plots"]] + [""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    from search.config import default_storage

    parser = Parser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, metavar="NAME", help="study name")
    parser.add_storage_flag()
    parser.add_argument("--out", metavar="DIR", help="output folder; default reports/NAME/")
    args = parser.parse_args(argv)
    storage = args.storage or default_storage()
    try:
        from storage.urls import check_url

        url = check_url(storage)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            raise UsageError(f"no database file {url.database!r}; check --storage")
        write_report(args.study, storage, args.out, print_table=True)
    except UsageError as exc:
        print(f"{PROG}: error: {mask_secrets(str(exc), storage)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
