"""The report's table as plain text for the terminal and as markdown for report.md."""

from __future__ import annotations

from typing import Any


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


def _val(entry: dict[str, Any]) -> str:
    """Mean validation accuracy over the seeds, the figure configurations are ranked by."""
    mean = entry.get("val_accuracy_mean")
    if mean is None or mean != mean:  # NaN: no run recorded a validation figure
        return "-"
    return _pm(mean, entry["val_accuracy_std"])


def _seed_figures(summary: dict[str, Any]) -> list[str]:
    """Validation and test cells of a configuration run with several seeds (mean ± sd)."""
    return [
        _val(summary),
        _pm(summary["test_accuracy_mean"], summary["test_accuracy_std"]),
        _pm(summary["test_loss_mean"], summary["test_loss_std"], percent=False),
        _pm(summary["precision_mean"], summary["precision_std"]),
        _pm(summary["recall_mean"], summary["recall_std"]),
    ]


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    header = [
        "configuration",
        "source",
        "params",
        "val acc",
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
                    f"reproduced here, {rep['n_runs']} seeds",
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
                f"this search, {entry['n_runs']} seeds",
                f"{entry['n_params']:,}",
                *_seed_figures(entry),
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
                _pct(entry["val_accuracy"]),
                _pct(entry["test_accuracy"]),
                f"{entry['test_loss']:.4f}",
                _pct(entry["precision"]),
                _pct(entry["recall"]),
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


def markdown_report(report: dict[str, Any], rows: list[list[str]]) -> str:
    parts = [
        f"# Report: study `{report['study']}` ({report['dataset']})",
        "",
        f"Generated {report['generated_at']} from {report['storage']}: {report['n_trials']} "
        f"trials, {report['n_complete']} complete. Test figures are on the official test set, "
        "evaluated once per run, after every choice; our configurations are the search's best, "
        "retrained with several seeds (mean ± sample standard deviation) and listed best first "
        "by validation accuracy: the test set chooses nothing.",
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
