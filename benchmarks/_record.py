"""What every benchmark shares: the machine and package description, a Markdown table, and the
dated section appended to benchmarks/RESULTS.md.

Imported by the scripts as a sibling module (`python benchmarks/bench_X.py` puts this folder
first on sys.path); it imports nothing heavy, so spawned worker processes start quickly.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
# Other work on a shared machine shifts timings: the load when the script started is recorded.
LOAD_AT_START = os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def command_line() -> str:
    """The command exactly as typed, interpreter included."""
    return shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))


def package_versions() -> dict[str, str]:
    from search.study.metadata import package_versions as versions  # the study's own record

    return versions()


def git_revision() -> str:
    from search.study.metadata import git_revision as revision  # commit, "+dirty" if files differ

    return revision()


def environment_lines() -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in package_versions().items())
    return [
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, 1-minute load average "
        f"{LOAD_AT_START if LOAD_AT_START is None else round(LOAD_AT_START, 2)} at start",
        f"- versions: {versions}",
        f"- git revision: {git_revision()}",
        f"- command: `{command_line()}`",
    ]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table padded to line up in a terminal too."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def append_results(title: str, body: str, *, path: Path = RESULTS) -> Path:
    """Append a dated section (machine, versions, command, then `body`) to RESULTS.md."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not path.exists():
        path.write_text(
            "# Benchmark results\n\nAppended by the scripts in this folder, newest last; "
            "each section says when, where and with what it was measured.\n"
        )
    section = [f"\n## {title}, {now}\n", *environment_lines(), "", body.rstrip(), ""]
    with open(path, "a") as handle:
        handle.write("\n".join(section))
    return path
