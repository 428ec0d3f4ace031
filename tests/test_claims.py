"""The retrain stage's claims: every run trained once by one machine, a crashed machine's run
taken over after its lease, a duplicate never fatal (storage.results, search.evaluation)."""

from __future__ import annotations

import multiprocessing

import optuna
import pytest

from search.evaluation.harness import run_candidates
from storage.results import ResultStore, RunRecord
from tests.conftest import tiny_candidate

RUN = ("s", "trial", "k", 0)


def test_a_claimed_run_is_refused_to_others_until_its_lease_runs_out(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'r.db'}")
    assert store.claim(*RUN, "a:1", 600) is None, "the first claim wins"
    assert store.claim(*RUN, "b:2", 600) == "a:1", "a live claim names its holder"
    assert store.claim(*RUN, "a:1", 600) is None, "the holder may claim again (resume)"
    store.renew(*RUN, "a:1", -1)  # as if a:1 crashed and its lease ran out
    assert store.claim(*RUN, "b:2", 600) is None, "an expired claim is taken over"
    assert store.claim(*RUN, "a:1", 600) == "b:2"
    store.close()


def test_adding_a_run_twice_keeps_the_first_and_does_not_raise(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'r.db'}")
    record = RunRecord(
        study_name="s",
        kind="trial",
        config_key="k",
        label="trial 0",
        seed=0,
        params={},
        test_accuracy=0.5,
        test_loss=1.0,
        precision=0.5,
        recall=0.5,
        n_params=1,
        epochs_run=1,
        max_epochs=1,
        seconds=1.0,
        history={},
    )
    assert store.add(record) is True
    assert store.add(record) is False, "a second machine's copy is refused, not fatal"
    assert len(store.runs("s")) == 1
    store.close()


def test_run_candidates_leaves_a_run_claimed_by_another_machine(tmp_path, tiny_split):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    candidate = tiny_candidate(tiny_split, max_epochs=1)
    results = ResultStore(url)
    assert results.claim("s", "baseline", "tiny", 0, "elsewhere:9", 600) is None
    lines: list[str] = []
    trained = run_candidates(
        [candidate],
        study=study,
        storage=study._storage,
        seeds=[0, 1],
        split=tiny_split,
        test=(tiny_split.x_val, tiny_split.y_val),
        results=results,
        artifact_store=optuna.artifacts.FileSystemArtifactStore(tmp_path),
        model_dir=tmp_path / "models",
        log=lines.append,
    )
    assert trained == 1 and [r.seed for r in results.runs("s")] == [1]
    assert any("seed 0: being retrained by elsewhere:9" in line for line in lines), lines
    results.close()


def _claim_all(url: str, owner: str, barrier, out) -> None:
    store = ResultStore(url)
    barrier.wait(timeout=60)
    won = [seed for seed in range(12) if store.claim("s", "trial", "k", seed, owner, 600) is None]
    out.put((owner, won))
    store.close()


@pytest.mark.slow
def test_three_machines_finishing_together_claim_every_run_once(server_url):
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(3), context.Queue()
    machines = [
        context.Process(target=_claim_all, args=(server_url, f"m{i}:1", barrier, out))
        for i in range(3)
    ]
    for machine in machines:
        machine.start()
    won = dict(out.get(timeout=120) for _ in machines)
    for machine in machines:
        machine.join(timeout=60)
    seeds = sorted(seed for claimed in won.values() for seed in claimed)
    assert seeds == list(range(12)), f"every run claimed exactly once: {won}"
