"""Several processes on one SQLite study: every queued trial is claimed exactly once.

Python's sqlite3 driver begins a transaction only at the first write, so Optuna's read-then-
claim of a WAITING trial is not atomic across processes; without storage.rdb.serialize_sqlite
this test saw the same queued trial claimed twice and workers fail with "database is locked".
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import optuna

from tests.conftest import ROOT

N_PROCESSES, N_EACH = 6, 10
CLAIM = """
import json, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
from storage.rdb import open_storage
storage = open_storage(sys.argv[1], heartbeat_interval=5)
study = optuna.load_study(study_name="s", storage=storage)
claimed = []
for _ in range(int(sys.argv[2])):
    trial = study.ask()
    fixed = storage.get_trial_system_attrs(trial._trial_id).get("fixed_params") or {}
    claimed.append(fixed.get("x"))
    study.tell(trial, 0.0)
print(json.dumps(claimed))
"""


def test_sqlite_queued_trials_are_claimed_once_by_concurrent_workers(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    for i in range(N_PROCESSES * N_EACH):
        study.enqueue_trial({"x": i})
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, url, str(N_EACH)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(N_PROCESSES)
    ]
    claimed = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, f"a worker failed: {err.strip().splitlines()[-1:]}"
        claimed += json.loads(out)
    counts = collections.Counter(claimed)
    twice = sorted(x for x, n in counts.items() if n > 1)
    assert not twice, f"queued trials claimed more than once: {twice}"
    assert sorted(counts) == list(range(N_PROCESSES * N_EACH)), "every queued trial claimed"
