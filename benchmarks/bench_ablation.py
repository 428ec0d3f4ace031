"""Does each knob of the search space pay on validation? One knob off at a time, paired by seed.

Space version 2 added batch normalisation, weight decay, input standardisation, a cosine
learning-rate schedule, label smoothing, wider layers and more epochs, so that wide networks
generalise (issue 11, item 3). This script measures what each one is worth to the network that
carries them all, the service's first trial (search.study.config WARM_START, or --params): every
arm is that network with one knob turned off, trained like a search trial (at most
--max-epochs, early stopping on validation accuracy, best epoch restored) with the same seeds.

The judge is a split no arm has seen and never the test set: the service's training split is
cut once more (seeded, 10%) into A (trained on) and V1 (early stopping watches it), and the
service's validation split V2 scores every model once. A knob's gain is the full network's V2
accuracy minus its arm's, per seed; positive means the knob pays.

    python benchmarks/bench_ablation.py --quick        # 2,000 images, 2 epochs, one seed
    python benchmarks/bench_ablation.py                # full training split, 20 epochs, 3 seeds
    python benchmarks/bench_ablation.py --seeds 2 --arms "no batch norm" "constant lr"

--keep-predictions DIR saves every model's V1 and V2 probabilities; benchmarks/bench_ensemble.py
reads them to compare ways of choosing ensemble members.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import common

FULL_NETWORK = "all knobs"
# Each arm: what it changes in the full network's parameters (None: its epoch cap is halved).
# "Off" is the space's neutral end: no decay is the space's lowest decay (1e-6 times the rate).
ARMS: dict[str, dict | None] = {
    FULL_NETWORK: {},
    "no batch norm": {"batch_norm": False},
    "no weight decay": {"weight_decay": 1e-6},
    "raw pixels": {"standardize": False},
    "constant lr": {"lr_schedule": "constant"},
    "no label smoothing": {"label_smoothing": 0.0},
    "256 units": {"n_units_l0": 256, "n_units_l1": 256},
    "half the epochs": None,
}
HEADERS = ("arm", "seed", "best epoch", "V2 accuracy", "gain of the knob", "s")


def arm_setup(arm: str, params: dict, max_epochs: int) -> tuple[dict, int]:
    """The parameters and epoch cap of one arm."""
    change = ARMS[arm]
    if change is None:
        return params, max(1, max_epochs // 2)
    missing = set(change) - set(params)
    if missing:
        raise SystemExit(f"bench_ablation.py: arm {arm!r} needs {sorted(missing)} in --params")
    return {**params, **change}, max_epochs


def train_arm(arm: str, params: dict, split, judge, seed: int, args) -> dict:
    """Train one arm with one seed; V2 (`judge`) is scored once, after training."""
    from search.evaluation.harness import train_and_evaluate

    arm_params, epochs = arm_setup(arm, params, args.max_epochs)
    start = time.perf_counter()
    model, figures = train_and_evaluate(
        common.candidate(arm_params, split, epochs, args.patience), seed, split, judge
    )
    if args.keep_predictions:
        keep_predictions(args.keep_predictions, model, arm, seed, split, judge)
    return {
        "arm": arm,
        "seed": seed,
        "best_epoch": figures["best_epoch"],
        "v2": figures["test_accuracy"],  # the harness's "test" here is V2, a holdout
        "seconds": time.perf_counter() - start,
    }


def keep_predictions(folder: Path, model, arm: str, seed: int, split, judge) -> None:
    """The model's class probabilities on V1 and V2 with their labels, for bench_ensemble.py."""
    import numpy as np

    from search.study.config import EVAL_BATCH

    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / f"{arm.replace(' ', '-')}-seed{seed}.npz",
        arm=arm,
        seed=seed,
        v1=model.predict(split.x_val, batch_size=EVAL_BATCH, verbose=0),
        v2=model.predict(judge[0], batch_size=EVAL_BATCH, verbose=0),
        y_v1=split.y_val,
        y_v2=judge[1],
    )


def row(result: dict, full: dict | None) -> list[str]:
    gain = "" if full is None else f"{(full['v2'] - result['v2']) * 100:+.2f} pt"
    return [
        result["arm"],
        str(result["seed"]),
        str(result["best_epoch"]),
        f"{result['v2'] * 100:.2f}%",
        gain,
        f"{result['seconds']:.0f}",
    ]


def summary(arms: list[str], results: list[dict]) -> tuple[list[str], list[tuple[str, list]]]:
    """One line per ablated knob (mean gain, sd, per-seed gains, verdict) and the gains."""
    full = {r["seed"]: r["v2"] for r in results if r["arm"] == FULL_NETWORK}
    lines, gains = [], []
    for arm in arms[1:]:
        per_seed = [(full[r["seed"]] - r["v2"]) * 100 for r in results if r["arm"] == arm]
        mean = statistics.fmean(per_seed)
        if len(per_seed) < 2:
            verdict = "one seed: no verdict"
        elif all(g > 0 for g in per_seed):
            verdict = "pays on every seed"
        elif all(g < 0 for g in per_seed):
            verdict = "costs on every seed"
        else:
            verdict = "mixed or no difference"
        spread = f"sd {statistics.stdev(per_seed):.2f}; " if len(per_seed) > 1 else ""
        seeds = ", ".join(f"{g:+.2f}" for g in per_seed)
        lines.append(f"- {arm}: gain {mean:+.2f} pt ({spread}seeds {seeds}): {verdict}")
        gains.append((arm, per_seed))
    return lines, gains


def draw(gains: list[tuple[str, list]], path, title: str) -> None:
    """Each knob's gain per seed (dots) and mean (bar); right of zero, the knob pays."""
    fig, ax = common.axes((7.0, 0.45 * len(gains) + 1.6))
    names = [name for name, _ in gains]
    ax.barh(names, [statistics.fmean(g) for _, g in gains], color="#9ecae1", label="mean gain")
    for y, (_, per_seed) in enumerate(gains):
        ax.scatter(per_seed, [y] * len(per_seed), color="#08519c", s=14, zorder=3)
    ax.scatter([], [], color="#08519c", s=14, label="one seed")
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()
    common.save_plot(
        fig,
        ax,
        path,
        xlabel="validation accuracy lost without the knob (points)",
        ylabel="",
        title=title,
        legend="lower right",
    )


def main() -> None:
    made = common.training_parser("bench_ablation.py", __doc__.splitlines()[0], png="ablation.png")
    made.add_argument(
        "--arms",
        nargs="+",
        choices=list(ARMS)[1:],
        default=None,
        help="only these knobs (default: all); the full network always runs",
    )
    made.add_argument(
        "--keep-predictions",
        metavar="DIR",
        type=Path,
        default=None,
        help="save every model's V1 and V2 class probabilities there (for bench_ensemble.py)",
    )
    common.add_plot_flag(made, "ablation.png", "each knob's gain")
    args, params = common.training_args(made)
    arms = [FULL_NETWORK, *(args.arms or list(ARMS)[1:])]
    for arm in arms:
        arm_setup(arm, params, args.max_epochs)  # a --params that lacks a knob fails now
    service = common.load_fashion(args.data_dir, args.limit_train)
    inner, judge = common.holdout_split(service)
    print(
        f"{len(arms)} arms x {args.seeds} seeds on {len(inner.x_train)} images, at most "
        f"{args.max_epochs} epochs each",
        flush=True,
    )
    results, rows = [], []
    for seed in range(args.seeds):  # seed-major: a stopped run still has whole pairs
        full = None
        for arm in arms:
            results.append(train_arm(arm, params, inner, judge, seed, args))
            full = full or results[-1]
            rows.append(row(results[-1], None if arm == FULL_NETWORK else full))
            cells = zip(HEADERS, rows[-1], strict=True)
            print("  ".join(f"{h}: {c}" for h, c in cells if c), flush=True)
    lines, gains = summary(arms, results)
    conditions = (
        f"Full network {json.dumps(params)}; A = {len(inner.x_train)} images, V1 = "
        f"{len(inner.x_val)}, judge V2 = the service's {len(service.x_val)} validation images; "
        f"at most {args.max_epochs} epochs (half for 'half the epochs'), patience "
        f"{args.patience} on V1 accuracy, {args.seeds} seeds."
    )
    body = [conditions, "", common.markdown_table(HEADERS, rows), "", *lines]
    png = common.plot_path(args, "ablation.png")
    if png is not None and gains:
        title = f"one knob off at a time, seeds: {args.seeds}, {len(inner.x_train)} images"
        draw(gains, png, title)
        body.append(f"- plot: {png.name}")
    common.report("bench_ablation", "\n".join(body), args)


if __name__ == "__main__":
    main()
