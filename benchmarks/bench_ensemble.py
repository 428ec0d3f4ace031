"""Which ensemble members pay: the service's greedy choice on validation, or every model?

The retrain stage averages the models of its top configurations (`--retrain-top`, each with
`--seeds` seeds), members chosen by greedy forward selection on the validation split
(search/evaluation/ensemble.py `choose_members`). With 6,000 validation images, a greedy step
that looks better may be noise. This script compares, on a split that chose nothing:
- the best single model on V1 (what the report's first row is);
- the service's rule: greedy forward selection on V1;
- every model of the pool averaged (no choice at all).
Pools: the models of the k configurations with the best mean V1 accuracy, for k = 1, 2, 3, 4
(`--retrain-top` k with as many seeds as were trained).

It reads the class probabilities that `bench_ablation.py --keep-predictions DIR` saved (models
trained on A, early stopping on V1, V2 held back), so it trains nothing itself; the
configurations are the ablation's arms, variants of one strong network, as a search's top
configurations often are. Never the test set.

    python benchmarks/bench_ablation.py --keep-predictions /tmp/preds     # trains the models
    python benchmarks/bench_ensemble.py --predictions /tmp/preds
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import common
import numpy as np

from search.evaluation.ensemble import choose_members, val_score

HEADERS = (
    "configs k",
    "models",
    "best single on V1: V2",
    "greedy on V1: members",
    "greedy: V2",
    "all models: V2",
    "all - greedy",
)
MAX_CONFIGS = 4


def load(folder: Path) -> dict[str, list[dict]]:
    """The saved models of each arm (configuration), each with its V1/V2 probabilities."""
    arms: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.npz")):
        with np.load(path) as saved:
            model = {key: saved[key] for key in saved.files}
        arms.setdefault(str(model["arm"]), []).append(model)
    if not arms:
        raise SystemExit(f"bench_ensemble.py: no .npz predictions in {folder}")
    return arms


def accuracy(models: list[dict], split: str) -> float:
    """V1 or V2 accuracy of the averaged probabilities of `models`."""
    return val_score(np.mean([m[split] for m in models], axis=0), models[0][f"y_{split}"])


def pool_row(pool: list[dict], k: int) -> tuple[list[str], float]:
    """The three rules on one pool; returns the table row and all-minus-greedy in points."""
    best_single = max(pool, key=lambda m: accuracy([m], "v1"))
    members = choose_members([m["v1"] for m in pool], pool[0]["y_v1"])
    greedy = accuracy([pool[i] for i in members], "v2")
    everyone = accuracy(pool, "v2")
    difference = (everyone - greedy) * 100
    return [
        str(k),
        str(len(pool)),
        f"{accuracy([best_single], 'v2') * 100:.2f}%",
        str(len(members)),
        f"{greedy * 100:.2f}%",
        f"{everyone * 100:.2f}%",
        f"{difference:+.2f} pt",
    ], difference


def main() -> None:
    made = common.parser(
        "bench_ensemble.py",
        __doc__.splitlines()[0],
        quick="the rules on whatever --predictions holds (it trains nothing)",
    )
    made.add_argument("--predictions", type=Path, required=True, metavar="DIR")
    args: argparse.Namespace = made.parse_args()
    arms = load(args.predictions)
    ranked = sorted(arms, key=lambda a: -statistics.fmean(accuracy([m], "v1") for m in arms[a]))
    rows, differences = [], []
    for k in range(1, min(MAX_CONFIGS, len(ranked)) + 1):
        pool = [m for arm in ranked[:k] for m in arms[arm]]
        if len(pool) < 2:
            continue
        row, difference = pool_row(pool, k)
        rows.append(row)
        differences.append(difference)
    order = ", ".join(
        f"{a} ({statistics.fmean(accuracy([m], 'v1') for m in arms[a]) * 100:.2f}%)" for a in ranked
    )
    body = [
        f"Predictions from {args.predictions} ({sum(map(len, arms.values()))} models, "
        f"{len(arms)} configurations); configurations by mean V1 accuracy: {order}.",
        "",
        common.markdown_table(HEADERS, rows),
    ]
    if differences:
        body += [
            "",
            f"- every model averaged minus the greedy choice, on V2, mean over the pools: "
            f"{statistics.fmean(differences):+.2f} pt ("
            f"{sum(d > 0 for d in differences)} of {len(differences)} pools above zero)",
        ]
    common.report("bench_ensemble", "\n".join(body), args)


if __name__ == "__main__":
    main()
