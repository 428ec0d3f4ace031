"""The report's table: a figure over several seeds reads 'mean ± sd', one seed's reads alone."""

from __future__ import annotations

from search.evaluation.render import table_rows


def _figures(n_runs: int, accuracy: float, spread: float) -> dict:
    figures = {"n_runs": n_runs, "n_params": 1000, "epochs_run_mean": 5.0}
    for key in ("val_accuracy", "test_accuracy", "precision", "recall"):
        figures[f"{key}_mean"], figures[f"{key}_std"] = accuracy, spread
    figures["test_loss_mean"], figures["test_loss_std"] = 0.4, spread
    return figures


def test_one_seed_shows_its_figure_without_a_spread_and_several_seeds_show_mean_and_sd():
    one_seed = {**_figures(1, 0.8354, 0.0), "epochs_allowed": 5}
    three = {**_figures(3, 0.9018, 0.0015), "label": "trial 7", "max_epochs": 20}
    three["margin_to_best_documented"] = 0.0347
    report = {
        "baselines": [
            {
                "id": "FM-X",
                "source": "a blog",
                "n_params": 1000,
                "documented": {"test_accuracy": 0.862},
                "documented_epochs": None,
                "reproduced": [one_seed],
            }
        ],
        "best_documented": {"id": "FM-X"},
        "retrained": [three],
    }
    rows = table_rows(report)
    reproduced = next(row for row in rows if row[0] == "  FM-X")
    assert reproduced[1] == "reproduced here, 1 seed"
    assert reproduced[4] == "83.54%" and reproduced[5] == "0.4000", "one seed: no '± 0.00'"
    ours = next(row for row in rows if row[0] == "trial 7")
    assert ours[1] == "this search, 3 seeds"
    assert ours[4] == "90.18 ± 0.15%" and ours[5] == "0.4000 ± 0.0015"
