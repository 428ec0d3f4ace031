"""The Pareto section of a report: the validation front, its retrained points, the answer to
"how small can a network be without losing accuracy", and the documented baselines beaten.

Every choice here is made on validation figures (the retrain's mean over seeds); test figures
are only reported beside them.
"""

from __future__ import annotations

from typing import Any

import optuna

from search.evaluation.selection import near_best, validation_rank
from search.study.values import front, is_pareto, study_task


def pareto_section(study: optuna.Study, report: dict[str, Any]) -> dict[str, Any] | None:
    """The section's data for report.json; None for a one-objective study."""
    if not is_pareto(study):
        return None
    task = study_task(study)
    points = [
        {"trial": t.number, "n_params": int(t.values[1]), "val": t.values[0]} for t in front(study)
    ]
    key = f"{task.monitor}_mean"
    retrained = [e for e in report["retrained"] if e.get(key) is not None]
    answer = None
    if retrained:
        best = min(retrained, key=lambda e: validation_rank(e, task))
        near = [e for e in retrained if near_best(task, e[key], best[key])]
        smallest = min(near, key=lambda e: (e["n_params"], validation_rank(e, task)))
        answer = {"most_accurate": _point(best, task), "smallest_near_best": _point(smallest, task)}
    return {
        "label": task.label,
        "near": "half a point" if task.direction == "maximize" else "1%",
        "front": points,
        "answer": answer,
        "against_baselines": _against_baselines(report, retrained, task),
    }


def _point(entry: dict[str, Any], task) -> dict[str, Any]:
    return {
        "label": entry["label"],
        "n_params": entry["n_params"],
        "val": entry[f"{task.monitor}_mean"],
        "test_mean": entry.get(f"test_{task.metric}_mean"),
        "test_std": entry.get(f"test_{task.metric}_std"),
    }


def _against_baselines(report: dict[str, Any], retrained: list, task) -> list[dict[str, Any]]:
    """For each documented dense or shallow baseline with a size and a test figure: our
    retrained front point of at most its size that is best on validation, and its test figure
    beside the documented one (the reference CNN is not a size peer)."""
    rows = []
    for baseline in report["baselines"]:
        documented = documented_accuracy(baseline)
        if documented is None or not baseline["n_params"] or baseline["kind"] == "reference":
            continue
        fits = [e for e in retrained if e["n_params"] <= baseline["n_params"]]
        ours = min(fits, key=lambda e: validation_rank(e, task)) if fits else None
        test = None if ours is None else ours.get("test_accuracy_mean")
        rows.append(
            {
                "id": baseline["id"],
                "n_params": baseline["n_params"],
                "documented": documented,
                "ours": None if ours is None else _point(ours, task),
                "beats": None if test is None else test > documented,
            }
        )
    return rows


def documented_accuracy(baseline: dict[str, Any]) -> float | None:
    """A report baseline's documented test accuracy (the upper end of a documented range)."""
    accuracy = baseline["documented"].get("test_accuracy")
    return accuracy[1] if isinstance(accuracy, list) else accuracy


def pareto_markdown(section: dict[str, Any], percent: bool = True) -> list[str]:
    """The report.md lines of the section."""

    def fig(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{100 * value:.2f}%" if percent else f"{value:.4f}"

    lines = [
        f"## Pareto front: {section['label']} against parameters",
        "",
        f"The search's validation front (no trial beats one of these on both {section['label']} "
        "and size), "
        "smallest first; retrained points are in the table above and in `pareto_front.png`.",
        "",
        "| trial | parameters | validation (search) |",
        "| --- | --- | --- |",
        *[f"| {p['trial']} | {p['n_params']:,} | {fig(p['val'])} |" for p in section["front"]],
        "",
    ]
    answer = section["answer"]
    if answer:
        small, best = answer["smallest_near_best"], answer["most_accurate"]
        lines += [
            f"**Smallest network within {section['near']} (validation) of the most accurate: "
            f"{small['label']}, {small['n_params']:,} parameters**, validation {fig(small['val'])}"
            f", test {fig(small['test_mean'])}; the most accurate ({best['label']}) has "
            f"{best['n_params']:,} parameters, validation {fig(best['val'])}, test "
            f"{fig(best['test_mean'])}. Both chosen on validation, over the retrained points.",
            "",
        ]
    rows = section["against_baselines"]
    if rows:
        lines += [
            "Against the documented baselines: our retrained front point of at most the same "
            "size, best on validation, with its test accuracy (mean over seeds).",
            "",
            "| baseline | parameters | documented test | ours (parameters) | our test | beats |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in rows:
            ours = row["ours"]
            mine = "none this small" if ours is None else f"{ours['label']} ({ours['n_params']:,})"
            test = "-" if ours is None else fig(ours["test_mean"])
            beats = {True: "yes", False: "no", None: "-"}[row["beats"]]
            lines.append(
                f"| {row['id']} | {row['n_params']:,} | {fig(row['documented'])} | {mine} | "
                f"{test} | {beats} |"
            )
        lines.append("")
    return lines
