"""Which GPU each local worker process trains on, decided without importing TensorFlow.

The supervising process never loads TensorFlow, so the GPUs are found from
CUDA_VISIBLE_DEVICES or, when it is unset, from `nvidia-smi`. Each worker gets one device,
round-robin, through the environment it sets before its first TensorFlow import: it then sees
only that GPU and takes its memory as it needs it (TF_FORCE_GPU_ALLOW_GROWTH), so several
workers can share a GPU. The retrain stage, in the run's own process, takes memory the same
way. Without a GPU nothing is set and the workers run on the CPU as before.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping

PROBE_TIMEOUT = 5.0  # seconds nvidia-smi may take before the machine counts as having no GPU


def nvidia_smi() -> str | None:
    """The GPU indices nvidia-smi lists, one per line; None without the tool or if it fails."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # not installed, not runnable, timed out
        return None
    return result.stdout if result.returncode == 0 else None


def visible_gpus(
    environ: Mapping[str, str] = os.environ,
    probe: Callable[[], str | None] = nvidia_smi,
) -> list[str]:
    """The GPU ids this machine offers the run, as strings (indices or UUIDs such as GPU-...).

    CUDA_VISIBLE_DEVICES, when set, decides: its comma-separated entries up to the first
    negative one (CUDA ignores the devices after an invalid id; "" and "-1" mean no GPU).
    Otherwise the probe (nvidia-smi) is asked; its failure means no GPU.
    """
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        gpus = []
        for entry in (part.strip() for part in listed.split(",")):
            if entry.startswith("-"):
                break
            if entry:
                gpus.append(entry)
        return gpus
    output = probe()
    if output is None:
        return []
    return [line.strip() for line in output.splitlines() if line.strip()]


def assign(gpus: list[str], n_workers: int) -> list[str | None]:
    """The device of each worker: round-robin over the GPUs, or None for all without one."""
    if not gpus:
        return [None] * n_workers
    return [gpus[index % len(gpus)] for index in range(n_workers)]


def worker_environment(device: str | None) -> dict[str, str]:
    """What a worker process puts in os.environ before it imports TensorFlow."""
    if device is None:
        return {}  # a CPU machine: the environment as the user left it
    return {"CUDA_VISIBLE_DEVICES": device, "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def retrain_environment(gpus: list[str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What the retrain stage (in the run's own process) puts in os.environ before it imports
    TensorFlow: GPU memory taken as needed, as in the workers, unless the user chose already."""
    if not gpus or "TF_FORCE_GPU_ALLOW_GROWTH" in environ:
        return {}
    return {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def describe(assignment: list[str | None]) -> str | None:
    """One line for the run's output naming each worker's GPU; None without GPUs."""
    if all(device is None for device in assignment):
        return None
    pairs = ", ".join(f"worker {index} -> {device}" for index, device in enumerate(assignment))
    return f"GPUs: {pairs}"
