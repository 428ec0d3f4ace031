"""Refit on the whole training file for the chosen epochs, or restore the best validation epoch?

The retrain stage trains on the search's training split and keeps the weights of its best
validation epoch (EarlyStopping, restore_best_weights). The alternative refits a fresh network
on training + validation data for that many epochs, with no validation left to stop on. Which
is better has to be measured on data neither arm has seen, and never on the test set: the
service's training split is cut once more (seeded, 10%) into A and V1, and its validation split
V2 is held back as the judge.
- restore: train on A, early stopping on V1 (the retrain's monitor and patience), best epoch b
  restored; accuracy on V2;
- refit: a fresh network (same seed) on A + V1 for exactly b epochs (the cosine schedule spans
  b epochs), last weights; accuracy on V2.
Per seed, paired. The configuration is the service's first trial (search.study.config
WARM_START, the practitioner's strong network a default search starts from and often keeps), or
--params (a JSON object of search-space parameters, e.g. a study's best trial).
"""

from __future__ import annotations

import json
import statistics
import time

import common

HEADERS = ("seed", "best epoch b", "restore: V2 acc", "refit: V2 acc", "refit - restore", "s")


def one_seed(params: dict, split, judge, seed: int, max_epochs: int, patience: int) -> dict:
    """Both arms for one seed; V2 (`judge`) is scored once per model, after training."""
    import numpy as np

    from search.data import Split
    from search.evaluation.harness import train_and_evaluate

    start = time.perf_counter()
    restoring = common.candidate(params, split, max_epochs, patience)
    _, restored = train_and_evaluate(restoring, seed, split, judge)
    best = restored["best_epoch"]
    whole = Split(
        np.concatenate([split.x_train, split.x_val]),
        np.concatenate([split.y_train, split.y_val]),
        split.x_val,  # logged only: nothing watches it when the run has no patience
        split.y_val,
        source=split.source,
    )
    _, refit = train_and_evaluate(common.candidate(params, whole, best, None), seed, whole, judge)
    return {
        "seed": seed,
        "best_epoch": best,
        "restore": restored["test_accuracy"],  # the harness's "test" here is V2, a holdout
        "refit": refit["test_accuracy"],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    made = common.training_parser("bench_refit.py", __doc__.splitlines()[0])
    args, params = common.training_args(made)
    service = common.load_fashion(args.data_dir, args.limit_train)
    inner, judge = common.holdout_split(service)
    results, rows = [], []
    for seed in range(args.seeds):
        results.append(one_seed(params, inner, judge, seed, args.max_epochs, args.patience))
        r = results[-1]
        rows.append(
            [
                str(seed),
                str(r["best_epoch"]),
                f"{r['restore'] * 100:.2f}%",
                f"{r['refit'] * 100:.2f}%",
                f"{(r['refit'] - r['restore']) * 100:+.2f} pt",
                f"{r['seconds']:.0f}",
            ]
        )
        print(common.text_table(HEADERS, [rows[-1]], left=1), flush=True)
    diffs = [r["refit"] - r["restore"] for r in results]
    mean = statistics.fmean(diffs)
    spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    body = [
        f"Configuration {json.dumps(params)}; A = {len(inner.x_train)} images, V1 = "
        f"{len(inner.x_val)}, judge V2 = "
        f"the service's {len(service.x_val)} validation images; max epochs {args.max_epochs}, "
        f"patience {args.patience}, {args.seeds} seeds.",
        "",
        common.markdown_table(HEADERS, rows),
        "",
        f"- refit minus restore on V2, mean over seeds: {mean * 100:+.2f} pt (sd {spread * 100:.2f}"
        f"); restore {statistics.fmean(r['restore'] for r in results) * 100:.2f}%, refit "
        f"{statistics.fmean(r['refit'] for r in results) * 100:.2f}%",
    ]
    common.report("bench_refit", "\n".join(body), args)


if __name__ == "__main__":
    main()
