"""What a study records so its results can be reproduced: package versions and git revision."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "optuna",
    "optuna-integration",
    "numpy",
    "sqlalchemy",
    "psycopg",
    "pymysql",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision() -> str:
    """The checkout's commit, with '+dirty' when files differ from it; 'unknown' outside git."""
    root = Path(__file__).resolve().parents[2]  # the checkout: search/study/metadata.py
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}+dirty" if dirty else rev
