"""GPU assignment of local workers (search/study/devices.py), tested without a GPU.

No nvidia-smi and no TensorFlow: the probe is injected, the spawned processes are stand-ins.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import types

import pytest

from search.study import devices, supervisor
from search.study.config import StudyConfig
from search.study.devices import (
    assign,
    describe,
    retrain_environment,
    visible_gpus,
    worker_environment,
)


def _no_probe() -> str | None:
    raise AssertionError("CUDA_VISIBLE_DEVICES is set: nvidia-smi must not be asked")


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ("0,1,3", ["0", "1", "3"]),
        ("2", ["2"]),
        ("", []),
        ("-1", []),
        (" 0 , 1 ", ["0", "1"]),
        ("0,,1,", ["0", "1"]),
        ("1,-1,2", ["1"]),  # CUDA ignores every device after an invalid id
        (
            "GPU-8f3c2a4e-1b2d-4c5e-9f00-aa11bb22cc33,GPU-0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6",
            [
                "GPU-8f3c2a4e-1b2d-4c5e-9f00-aa11bb22cc33",
                "GPU-0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6",
            ],
        ),
    ],
)
def test_visible_gpus_reads_cuda_visible_devices(listed, expected):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": listed}, probe=_no_probe) == expected


def test_visible_gpus_parses_the_probe_output_when_unset():
    assert visible_gpus({}, probe=lambda: "0\n1\n\n2\n") == ["0", "1", "2"]


def test_visible_gpus_is_empty_when_the_probe_fails():
    assert visible_gpus({}, probe=lambda: None) == []
    assert visible_gpus({}, probe=lambda: "") == []


@pytest.mark.parametrize(
    "failure",
    [
        FileNotFoundError("nvidia-smi"),
        PermissionError("nvidia-smi"),
        subprocess.TimeoutExpired(["nvidia-smi"], devices.PROBE_TIMEOUT),
    ],
)
def test_nvidia_smi_returns_none_when_it_cannot_run(monkeypatch, failure):
    def run(*args, **kwargs):
        raise failure

    monkeypatch.setattr(devices.subprocess, "run", run)
    assert devices.nvidia_smi() is None


def test_nvidia_smi_returns_none_on_a_nonzero_exit(monkeypatch):
    # nvidia-smi installed but no driver loaded: it exits 9 with a message.
    failed = subprocess.CompletedProcess(["nvidia-smi"], 9, stdout="NVIDIA-SMI has failed\n")
    monkeypatch.setattr(devices.subprocess, "run", lambda *a, **k: failed)
    assert devices.nvidia_smi() is None


def test_nvidia_smi_asks_for_indices_with_a_timeout(monkeypatch):
    seen = {}

    def run(command, **kwargs):
        seen.update(command=command, **kwargs)
        return subprocess.CompletedProcess(command, 0, stdout="0\n1\n")

    monkeypatch.setattr(devices.subprocess, "run", run)
    assert devices.nvidia_smi() == "0\n1\n"
    assert seen["command"] == ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"]
    assert 0 < seen["timeout"] <= 10


def test_assign_round_robins_when_workers_outnumber_gpus():
    assert assign(["0", "1"], 5) == ["0", "1", "0", "1", "0"]
    assert assign(["0", "1", "2"], 2) == ["0", "1"]


def test_assign_gives_none_to_every_worker_without_a_gpu():
    assert assign([], 3) == [None, None, None]


def test_worker_environment_pins_the_device_with_memory_growth():
    assert worker_environment("GPU-abc") == {
        "CUDA_VISIBLE_DEVICES": "GPU-abc",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }


def test_worker_environment_is_empty_without_a_gpu():
    assert worker_environment(None) == {}


def test_retrain_environment_grows_gpu_memory_unless_the_user_chose():
    assert retrain_environment(["0", "1"], environ={}) == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert retrain_environment(["0"], environ={"TF_FORCE_GPU_ALLOW_GROWTH": "false"}) == {}
    assert retrain_environment([], environ={}) == {}


def test_describe_names_each_workers_gpu_or_nothing():
    assert describe(["0", "1", "0"]) == "GPUs: worker 0 -> 0, worker 1 -> 1, worker 2 -> 0"
    assert describe([None, None]) is None


class _Process:
    """Stands in for a spawned worker: records its start arguments and exits 0 at once."""

    started: list[_Process] = []

    def __init__(self, target, args, name):
        self.target, self.args, self.name = target, args, name
        self.exitcode = None
        self.pid = None
        self.sentinel = None

    def start(self) -> None:
        read, write = os.pipe()
        os.close(write)  # the read end is ready at once: the process has "ended"
        self.sentinel = read
        self.pid = 10_000 + len(self.started)
        self.exitcode = 0
        self.started.append(self)


def _run_fake_workers(monkeypatch, gpus: list[str], workers: int) -> list[_Process]:
    _Process.started = []
    context = types.SimpleNamespace(Process=_Process, Queue=queue.Queue)
    fake_multiprocessing = types.SimpleNamespace(
        get_context=lambda method: context, connection=supervisor.multiprocessing.connection
    )
    monkeypatch.setattr(supervisor, "multiprocessing", fake_multiprocessing)
    monkeypatch.setattr(supervisor, "visible_gpus", lambda: gpus)
    config = StudyConfig(preset="fashion", dataset="fashion", study_name="t", workers=workers)
    try:
        assert supervisor.run_workers(config, None, None, (0.0, 0)) == 0
    finally:
        for process in _Process.started:
            os.close(process.sentinel)
    return _Process.started


def test_run_workers_hands_each_spawned_worker_its_gpu(monkeypatch, capsys):
    started = _run_fake_workers(monkeypatch, ["0", "1"], workers=3)
    assert [p.target for p in started] == [supervisor._worker_main] * 3
    assert [p.args[1] for p in started] == [0, 1, 2]
    assert [p.args[3] for p in started] == ["0", "1", "0"]
    assert "GPUs: worker 0 -> 0, worker 1 -> 1, worker 2 -> 0" in capsys.readouterr().out


def test_run_workers_without_a_gpu_passes_none_and_prints_no_gpu_line(monkeypatch, capsys):
    started = _run_fake_workers(monkeypatch, [], workers=2)
    assert [p.args[3] for p in started] == [None, None]
    assert "GPU" not in capsys.readouterr().out


class _Stop(Exception):
    pass


def test_worker_main_sets_its_device_before_importing_tensorflow(monkeypatch):
    # The loop module is the worker's first TensorFlow import: a stand-in records the
    # environment at the moment it is imported, and stops the worker there.
    for name in ("CUDA_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    seen = {}

    def at_import(name: str):
        seen.update({k: os.environ.get(k) for k in worker_environment("1")})
        raise _Stop

    loop = types.ModuleType("search.study.loop")
    loop.__getattr__ = at_import
    monkeypatch.setitem(sys.modules, "search.study.loop", loop)
    config = StudyConfig(preset="fashion", dataset="fashion", study_name="t", workers=2)
    with pytest.raises(_Stop):
        supervisor._worker_main(config, 1, (0.0, 0), "1")
    assert seen == {"CUDA_VISIBLE_DEVICES": "1", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
