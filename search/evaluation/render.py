"""The report's table as plain text for the terminal and as markdown for report.md."""

from __future__ import annotations

from typing import Any

from search.evaluation.front import pareto_markdown


def _pct(value: Any) -> str:
    if value is None:
        return "not stated"
    if isinstance(value, (list, tuple)):
        return f"{value[0] * 100:.1f}-{value[1] * 100:.1f}%"
    return f"{value * 100:.2f}%"


def _pm(mean: float | None, std: float | None, *, percent: bool = True) -> str:
    """'mean ± sd', or the mean alone when `std` is None (one seed has no spread)."""
    if mean is None or mean != mean:  # None or NaN: no run has this figure
        return "-"
    if std is None:
        return f"{mean * 100:.2f}%" if percent else f"{mean:.4f}"
    if percent:
        return f"{mean * 100:.2f} ± {std * 100:.2f}%"
    return f"{mean:.4f} ± {std:.4f}"


# (header, figure, as a percentage) of each task's columns; validation first, the figure
# configurations are ranked by.
COLUMNS = {
    "classification": (
        ("val acc", "val_accuracy", True),
        ("test acc", "test_accuracy", True),
        ("test loss", "test_loss", False),
        ("precision", "precision", True),
        ("recall", "recall", True),
    ),
    "regression": (
        ("val RMSE", "val_rmse", False),
        ("test RMSE", "test_rmse", False),
        ("test MAE", "test_mae", False),
        ("test MSE", "test_loss", False),
    ),
}


def _columns(report: dict[str, Any]) -> tuple[tuple[str, str, bool], ...]:
    return COLUMNS[report.get("task", "classification")]


def counted(n: int, noun: str) -> str:
    """'1 seed', '3 seeds': a count with its noun in the singular or the plural."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def seed_figure(summary: dict[str, Any], key: str, *, percent: bool = True) -> str:
    """One figure of a configuration run with several seeds: mean ± sd, or the figure alone
    for a single seed, whose "sd" of 0 would claim a spread nobody measured."""
    single = summary.get("n_runs") == 1
    return _pm(
        summary.get(f"{key}_mean"),
        None if single else summary.get(f"{key}_std"),
        percent=percent,
    )


def _seed_figures(summary: dict[str, Any], columns=COLUMNS["classification"]) -> list[str]:
    """Validation and test cells of a configuration run with several seeds."""
    return [seed_figure(summary, key, percent=percent) for _, key, percent in columns]


def _single_figures(entry: dict[str, Any], columns) -> list[str]:
    """The cells of one model's (or one ensemble's) figures."""
    cells = []
    for _, key, percent in columns:
        value = entry.get(key)
        cells.append("-" if value is None else _pct(value) if percent else f"{value:.4f}")
    return cells


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    columns = _columns(report)
    header = ["configuration", "source", "params", *(name for name, _, _ in columns)]
    header += ["epochs", "margin"]
    rows = [header]
    for entry in report["baselines"]:
        doc = entry["documented"]
        loss = doc.get("test_loss")
        rows.append(
            [
                entry["id"],
                f"documented: {entry['source']}",
                f"{entry['n_params']:,}" if entry["n_params"] else "not stated",
                "",
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
                    f"reproduced here, {counted(rep['n_runs'], 'seed')}",
                    f"{rep['n_params']:,}",
                    *_seed_figures(rep),
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
                f"this search, {counted(entry['n_runs'], 'seed')}",
                f"{entry['n_params']:,}",
                *_seed_figures(entry, columns),
                f"{entry['epochs_run_mean']:.1f} of {entry['max_epochs']}",
                "" if margin is None else f"{margin * 100:+.2f} pt vs {best['id']}",
            ]
        )
    for entry in report.get("ensembles", []):
        margin = entry["margin_to_best_documented"]
        rows.append(
            [
                entry["label"],
                "this search: ensemble, members chosen on validation",
                f"{entry['n_params']:,}",
                *_single_figures(entry, columns),
                "",
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


def _how_read(report: dict[str, Any]) -> str:
    """How to read the table: what the test figures are, or that there are none."""
    figure = "validation RMSE" if report.get("task") == "regression" else "validation accuracy"
    ranked = (
        "our configurations are the search's best, retrained with several seeds (mean ± sample "
        f"standard deviation) and listed best first by {figure}"
    )
    if not report.get("has_test", True):
        return (
            "**No held-out test set**: the study file names no test file, so every figure here "
            f"is a validation figure, the same data that chose the configurations; {ranked}. "
            "Add `[data] test` for an unbiased estimate."
        )
    return (
        "Test figures are on the held-out test set, evaluated once per run, after every "
        f"choice; {ranked}: the test set chooses nothing."
    )


def markdown_report(report: dict[str, Any], rows: list[list[str]]) -> str:
    parts = [
        f"# Report: study `{report['study']}` ({report['dataset']})",
        "",
        f"Generated {report['generated_at']} from {report['storage']}: {report['n_trials']} "
        f"trials, {report['n_complete']} complete. {_how_read(report)}",
        "",
        markdown_table(rows),
        "",
    ]
    if report.get("pareto"):
        parts += pareto_markdown(report["pareto"], report.get("headline", {}).get("percent", True))
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
