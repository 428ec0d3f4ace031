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

from search.cli import positive_int

QUICK = {"seeds": 1, "limit_train": 2000, "max_epochs": 2}
FULL = {"seeds": 3, "limit_train": None, "max_epochs": 20}
HEADERS = ("seed", "best epoch b", "restore: V2 acc", "refit: V2 acc", "refit - restore", "s")


def one_seed(params: dict, split, judge, seed: int, max_epochs: int, patience: int) -> dict:
    """Both arms for one seed; V2 (`judge`) is scored once per model, after training."""
    import numpy as np

    from search.data import Split
    from search.evaluation.candidates import Candidate
    from search.evaluation.harness import train_and_evaluate
    from search.study.config import SearchSpace
    from search.study.objective import build_model
    from search.study.space import params_from_stored

    network = params_from_stored(params, SearchSpace())
    start = time.perf_counter()

    def candidate(data: Split, epochs: int, stop: int | None) -> Candidate:
        return Candidate(
            kind="trial",
            config_key="bench",
            label="bench",
            params=params,
            build=lambda: build_model(network, data, epochs),
            batch_size=network.batch_size,
            max_epochs=epochs,
            patience=stop,
        )

    _, restored = train_and_evaluate(candidate(split, max_epochs, patience), seed, split, judge)
    best = restored["best_epoch"]
    whole = Split(
        np.concatenate([split.x_train, split.x_val]),
        np.concatenate([split.y_train, split.y_val]),
        split.x_val,  # logged only: nothing watches it when the run has no patience
        split.y_val,
        source=split.source,
    )
    _, refit = train_and_evaluate(candidate(whole, best, None), seed, whole, judge)
    return {
        "seed": seed,
        "best_epoch": best,
        "restore": restored["test_accuracy"],  # the harness's "test" here is V2, a holdout
        "refit": refit["test_accuracy"],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    made = common.parser(
        "bench_refit.py",
        __doc__.splitlines()[0],
        quick="a 2,000-image slice, one seed, at most 2 epochs",
    )
    common.add_data_flags(
        made, limit="all", quick=QUICK["limit_train"], absent="search.run's own lookup"
    )
    made.add_argument("--seeds", type=positive_int, default=None, help="seeds (default 3)")
    made.add_argument("--max-epochs", type=positive_int, default=None, help="default 20")
    made.add_argument("--patience", type=positive_int, default=4, help="default 4 (the preset)")
    made.add_argument("--params", default=None, help="a JSON object of space parameters")
    args = made.parse_args()
    common.fill_defaults(args, QUICK, FULL)

    import numpy as np

    from search.data import Split
    from search.study.config import WARM_START

    params = json.loads(args.params) if args.params else dict(WARM_START)
    service = common.load_fashion(args.data_dir, args.limit_train)
    n_v1 = round(len(service.x_train) * 0.1)
    order = np.random.default_rng(0).permutation(len(service.x_train))
    v1, a = order[:n_v1], order[n_v1:]
    inner = Split(
        service.x_train[a], service.y_train[a], service.x_train[v1], service.y_train[v1], "A/V1"
    )
    judge = (service.x_val, service.y_val)
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
        f"Configuration {json.dumps(params)}; A = {len(a)} images, V1 = {len(v1)}, judge V2 = "
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
