"""bench_search's record of repeats: a full run over several invocations, each repeat whole.

The arms are stand-ins here (no training): what is tested is which repeats run, what is
recorded, and when the table goes to RESULTS.md. The real arms run in test_benchmarks.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from search.study.config import WARM_START

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch, tmp_path):
    """bench_search with stand-in arms; `bench.ran` lists (repeat, arm) as they run and
    `bench.recorded` the bodies appended to RESULTS.md."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_search

    import search.data

    bench_search.ran, bench_search.recorded = [], []

    def run_arm(arm, repeat, position, args, workdir):
        bench_search.ran.append((repeat, arm))
        network = bench_search.Network(
            seconds=10.0, params=dict(WARM_START), epochs=2, value=0.80 + repeat / 100
        )
        return bench_search.Run(
            arm=arm,
            repeat=repeat,
            position=position,
            budget=args.budget,
            startup=1.0,
            cpu_seconds=5.0,
            load=1.0,
            stopped="interrupted",
            networks=[network],
        )

    def retrain(runs, args):
        for run in runs:
            run.test_accuracies, run.retrain_seconds = [0.85], 3.0
        return 3.0 * len(runs)

    monkeypatch.setattr(bench_search, "run_arm", run_arm)
    monkeypatch.setattr(bench_search, "retrain", retrain)
    monkeypatch.setattr(bench_search, "service_split", lambda args: None)
    monkeypatch.setattr(search.data, "load_test", lambda *a: (np.zeros((4, 28, 28)), np.zeros(4)))
    monkeypatch.setattr(
        bench_search.common,
        "append_results",
        lambda title, body: bench_search.recorded.append(body) or tmp_path / "RESULTS.md",
    )
    return bench_search


def _args(path: Path, tmp_path: Path, budget: str = "5") -> list[str]:
    return [
        "--budget", budget, "--repeats", "2", "--methods", "service", "tpe-nopruning",
        "--seeds", "1", "--max-epochs", "2", "--repeats-file", str(path), "--new-repeats", "1",
        "--plot", str(tmp_path / "search.png"),
    ]  # fmt: skip


def test_repeats_are_recorded_one_invocation_at_a_time_and_reported_once_all_are_in(
    bench, tmp_path, capsys
):
    path = tmp_path / "repeats.jsonl"
    assert bench.main(_args(path, tmp_path)) == 0
    assert bench.ran == [(0, "service"), (0, "tpe-nopruning")], "one new repeat, whole"
    assert len(path.read_text().splitlines()) == 1
    assert "PARTIAL: repeats [1] not yet run" in capsys.readouterr().out
    assert bench.recorded == [], "a partial table is printed, not recorded"

    assert bench.main(_args(path, tmp_path)) == 0
    assert bench.ran[2:] == [(1, "tpe-nopruning"), (1, "service")], "repeat 1, rotated"
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["repeat"] for e in entries] == [0, 1]
    assert all(e["revision"] and e["machine"] for e in entries), "where each repeat ran"
    (body,) = bench.recorded
    assert "PARTIAL" not in body
    assert "- repeat 0: finished" in body and "- repeat 1: finished" in body
    runs_table = body[body.index("Per run:") :]
    assert runs_table.count("| service") == 2, "the recorded repeat's runs are in the table"


def test_a_repeats_file_made_with_other_settings_is_refused(bench, tmp_path, capsys):
    path = tmp_path / "repeats.jsonl"
    assert bench.main(_args(path, tmp_path)) == 0
    capsys.readouterr()
    assert bench.main(_args(path, tmp_path, budget="6")) == 2
    err = capsys.readouterr().err
    assert "other settings (budget=5.0)" in err and len(err.strip().splitlines()) == 1, err
    assert len(bench.ran) == 2, "nothing ran"


def test_repeats_recorded_before_the_seed_stride_are_not_pooled(bench, tmp_path, capsys):
    # Repeats seeded r + 1 drew shifted copies of each other's trials; their lines lack the key.
    path = tmp_path / "repeats.jsonl"
    assert bench.main(_args(path, tmp_path)) == 0
    entry = json.loads(path.read_text())
    del entry["settings"]["seed_stride"]
    path.write_text(json.dumps(entry) + "\n")
    capsys.readouterr()
    assert bench.main(_args(path, tmp_path)) == 2
    assert "seed_stride=None" in capsys.readouterr().err


def test_the_repeats_seeds_are_far_enough_apart_for_streams_that_count_up(bench):
    seeds = [bench.seed_of(r) for r in range(5)]
    assert 0 not in seeds, "KerasTuner reads 0 as no seed"
    assert min(b - a for a, b in zip(seeds[:-1], seeds[1:], strict=True)) > 100_000


def test_runs_that_chose_the_same_configuration_share_its_retrains(bench):
    def run(arm, repeat, params):
        network = bench.Network(seconds=1.0, params=params, epochs=1, value=0.9)
        return bench.Run(arm, repeat, 0, 5.0, 1.0, 1.0, 1.0, "interrupted", networks=[network])

    other = dict(WARM_START, batch_size=64)
    warm = [run("service", 0, dict(WARM_START)), run("tpe-nopruning", 0, dict(WARM_START))]
    runs = [*warm, run("kerastuner-bayes", 0, other), run("service", 1, dict(WARM_START))]
    jobs = bench.retrain_jobs(runs, seeds=2)
    assert len(jobs) == 6, "warm start x 2 seeds in repeat 0, the other choice, repeat 1"
    shared = [runs_ for runs_ in jobs.values() if len(runs_) > 1]
    assert shared == [warm, warm], "each seed of the shared choice serves both runs"
    assert [seed for _, seed in jobs] == [bench.seed_of(0), bench.seed_of(0) + 1] * 2 + [
        bench.seed_of(1),
        bench.seed_of(1) + 1,
    ]


def test_every_repeat_of_an_invocation_records_the_revision_it_started_at(
    bench, tmp_path, monkeypatch
):
    # The repeats file may live in the checkout: once a repeat is appended, the tree differs.
    import search.study.metadata

    monkeypatch.setattr(search.study.metadata, "git_revision", lambda: "abc+dirty")
    monkeypatch.setattr(bench.common, "REVISION_AT_START", "abc")
    path = tmp_path / "repeats.jsonl"
    args = _args(path, tmp_path)
    del args[args.index("--new-repeats") : args.index("--new-repeats") + 2]  # both repeats now
    assert bench.main(args) == 0
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["revision"] for e in entries] == ["abc", "abc"]
    (body,) = bench.recorded
    assert "WARNING" not in body, body
