"""What the benchmark scripts share, so that each one holds only what it measures:

- flags: `parser` (--quick, --no-record), `add_data_flags` (--data-dir, default env
  SEARCH_DATA_DIR, and --limit-train), `add_plot_flag` (--plot), `fill_defaults` (the values of
  flags left unset, for --quick or a full run);
- data: Fashion-MNIST through the service's own loader (`load_fashion`, `has_fashion`), or
  `synthetic_split` where a script says it stands in; `search_run`, the service's command line;
- `fresh_database`: a new, empty SQLite file or server database, dropped afterwards;
- statistics: `mean_interval`, a mean with its Student-t confidence interval (SciPy);
- tables and plots: `markdown_table`, `text_table`, `axes` and `save_plot`;
- the record: `report` prints a result and appends it to RESULTS.md as a dated section (machine,
  load, versions, git revision, command).

Imported by the scripts as a sibling module (`python benchmarks/bench_X.py` puts this folder
first on sys.path); heavy packages are imported only by the functions that use them, so spawned
worker processes start quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from search.cli import positive_int
from search.study.metadata import git_revision

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
# Other work on a shared machine shifts timings: the load when the script started is recorded.
LOAD_AT_START = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
# The revision is read at start too: by the end the script has written its own plot into the
# checkout, which would make a clean revision read "+dirty".
REVISION_AT_START = git_revision()

# --- flags ---------------------------------------------------------------------------------------


def parser(script: str, description: str, *, quick: str, png: str = "") -> argparse.ArgumentParser:
    """The parser of `benchmarks/<script>` with --quick (`quick` says what it runs) and
    --no-record; the script adds its own flags."""
    made = argparse.ArgumentParser(prog=f"python benchmarks/{script}", description=description)
    made.add_argument("--quick", action="store_true", help=f"a run of under 2 minutes: {quick}")
    also = f" nor write {png}" if png else ""
    made.add_argument(
        "--no-record",
        action="store_true",
        help=f"print only; do not append to benchmarks/RESULTS.md{also}",
    )
    return made


def training_images(text: str) -> int:
    """--limit-train: at least 20 images, since 10% of them go to validation."""
    value = positive_int(text)
    if value < 20:
        raise argparse.ArgumentTypeError("must be at least 20 images (10% go to validation)")
    return value


def add_data_flags(made: argparse.ArgumentParser, *, limit: str, quick: int, absent: str) -> None:
    """--data-dir (default env SEARCH_DATA_DIR; `absent`: what happens without the files) and
    --limit-train (`limit`: the default of a full run; `quick`: that of --quick)."""
    made.add_argument(
        "--data-dir",
        metavar="DIR",
        default=os.environ.get("SEARCH_DATA_DIR") or None,
        help=f"folder with the Fashion-MNIST IDX files (default env SEARCH_DATA_DIR); {absent}",
    )
    made.add_argument(
        "--limit-train",
        metavar="N",
        type=training_images,
        default=None,
        help=f"use only N training-file images, 10%% of them for validation (default {limit}; "
        f"with --quick {quick})",
    )


def add_plot_flag(made: argparse.ArgumentParser, png: str, what: str) -> None:
    made.add_argument(
        "--plot",
        metavar="PNG",
        type=Path,
        default=None,
        help=f"PNG of {what} (default benchmarks/{png}; with --no-record no plot unless this "
        "is given)",
    )


def plot_path(args: argparse.Namespace, png: str) -> Path | None:
    return args.plot or (None if args.no_record else HERE / png)


def fill_defaults(args: argparse.Namespace, quick: dict, full: dict) -> None:
    """Flags left unset (None) take their value for --quick or for a full run."""
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)


# --- data ----------------------------------------------------------------------------------------


def has_fashion(folder: str | None) -> bool:
    """Whether `folder` (a --data-dir, perhaps None) holds the Fashion-MNIST training images."""
    from search.data.idx import FILES, find_file

    return bool(folder) and find_file(Path(folder).expanduser(), FILES["train"][0]) is not None


def load_fashion(data_dir: str | None, limit_train: int | None):
    """The service's seeded split of Fashion-MNIST (search.data.load_split) from `data_dir`, or
    from the service's own lookup when it is None. When that lookup finds nothing, synthetic
    images stand in, said so; a folder that was given must hold the files."""
    from search.data import load_split
    from search.errors import DataError

    try:
        return load_split("fashion", data_dir, limit_train=limit_train)
    except DataError as exc:
        if data_dir:
            raise SystemExit(f"{Path(sys.argv[0]).name}: {exc}") from None
        print(f"WARNING: no Fashion-MNIST found ({exc}); using SYNTHETIC images", flush=True)
    return synthetic_split(limit_train or 60_000)


def synthetic_split(n: int, seed: int = 0):
    """n images whose class is a bright horizontal band (as tests/conftest.py), split 90/10."""
    import numpy as np

    from search.data import Split, to_float

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 * label + 4 : 2 * label + 7, :] = 230
    n_val = max(1, round(n * 0.1))
    x = to_float(images)
    return Split(x[n_val:], labels[n_val:], x[:n_val], labels[:n_val], source="synthetic")


def search_run(storage_url: str, *flags: str) -> list[str]:
    """`python -m search.run` on the fashion preset without the retrain stage, plus `flags`."""
    command = [sys.executable, "-m", "search.run", "--study", "fashion", "--storage", storage_url]
    return [*command, "--no-retrain", *flags]


# --- databases -----------------------------------------------------------------------------------


class Unreachable(Exception):
    """The database server did not answer."""


@contextlib.contextmanager
def fresh_database(admin_url: str | None = None) -> Iterator[str]:
    """The URL of a new, empty database, removed afterwards: a temporary SQLite file, or with
    `admin_url` (an existing database of a server) a database created on that server."""
    if admin_url is None:
        with tempfile.TemporaryDirectory(prefix="bench_") as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    import sqlalchemy as sa

    from storage.rdb import first_line

    admin = sa.make_url(admin_url)
    engine = sa.create_engine(
        admin,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 5},
    )
    name = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        shown = admin.render_as_string(hide_password=True)
        raise Unreachable(
            f"{admin.get_backend_name()} server at {shown} unreachable: "
            f"{first_line(exc, admin_url)}"
        ) from None
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if admin.get_backend_name() == "postgresql" else ""
        with engine.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE {name}{force}"))
        engine.dispose()


# --- training, judged on a held-back split -------------------------------------------------------


TRAINING_QUICK = {"seeds": 1, "limit_train": 2000, "max_epochs": 2}
TRAINING_FULL = {"seeds": 3, "limit_train": None, "max_epochs": 20}


def training_parser(script: str, description: str, *, png: str = "") -> argparse.ArgumentParser:
    """The parser of a script that trains configurations with several seeds (bench_refit,
    bench_ablation): --quick, --no-record, the data flags, --seeds, --max-epochs, --patience and
    --params; read it back with `training_args`."""
    quick = "a 2,000-image slice, one seed, at most 2 epochs"
    made = parser(script, description, quick=quick, png=png)
    add_data_flags(
        made, limit="all", quick=TRAINING_QUICK["limit_train"], absent="search.run's own lookup"
    )
    made.add_argument("--seeds", type=positive_int, default=None, help="seeds (default 3)")
    made.add_argument("--max-epochs", type=positive_int, default=None, help="default 20")
    made.add_argument("--patience", type=positive_int, default=4, help="default 4 (the preset)")
    made.add_argument(
        "--params",
        default=None,
        help="a JSON object of search-space parameters (default: the warm start, "
        "search.study.config WARM_START)",
    )
    return made


def training_args(made: argparse.ArgumentParser) -> tuple[argparse.Namespace, dict]:
    """The parsed flags (defaults filled for --quick or a full run) and the configuration."""
    import json

    from search.study.config import WARM_START

    args = made.parse_args()
    fill_defaults(args, TRAINING_QUICK, TRAINING_FULL)
    if args.params is None:
        return args, dict(WARM_START)
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        made.error(f"--params is not JSON ({exc}); give an object such as '{{\"n_layers\": 2}}'")
    if not isinstance(params, dict):
        made.error("--params must be a JSON object of search-space parameters")
    return args, params


def holdout_split(service, seed: int = 0):
    """Cut the service's training split once more (seeded, 10%) into A (trained on) and V1
    (early stopping watches it); the service's validation split V2 is held back as the judge,
    which no arm has seen. Returns (the A/V1 Split, (x_V2, y_V2)). Never the test set."""
    import numpy as np

    from search.data import Split

    n_v1 = round(len(service.x_train) * 0.1)
    order = np.random.default_rng(seed).permutation(len(service.x_train))
    v1, a = order[:n_v1], order[n_v1:]
    inner = Split(
        service.x_train[a], service.y_train[a], service.x_train[v1], service.y_train[v1], "A/V1"
    )
    return inner, (service.x_val, service.y_val)


def candidate(params: dict, data, epochs: int, patience: int | None):
    """The retrain harness's Candidate for a dict of search-space parameters trained on `data`
    for at most `epochs` (the cosine schedule spans them); `patience` None trains them all."""
    from search.evaluation.candidates import Candidate
    from search.study.config import SearchSpace
    from search.study.objective import build_model
    from search.study.space import params_from_stored

    network = params_from_stored(params, SearchSpace())
    return Candidate(
        kind="trial",
        config_key="bench",
        label="bench",
        params=params,
        build=lambda: build_model(network, data, epochs),
        batch_size=network.batch_size,
        max_epochs=epochs,
        patience=patience,
    )


# --- statistics ----------------------------------------------------------------------------------


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float | None]:
    """The mean of `values` and the half-width of its Student-t confidence interval (None for
    fewer than two values: one value has no spread to go by)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    from scipy.stats import t

    spread = statistics.stdev(values) / math.sqrt(len(values))
    return mean, float(t.ppf((1 + confidence) / 2, len(values) - 1)) * spread


# --- tables and plots ----------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table padded to line up in a terminal too."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 3) -> str:
    """A plain table, columns two spaces apart; the first `left` columns flush left, the rest
    (figures) flush right."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        lines.append("  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in pairs))
    return "\n".join(lines)


def axes(size: tuple[float, float]):
    """A figure and its axes, drawn to files only (matplotlib's Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def save_plot(fig, ax, path: Path, *, xlabel: str, ylabel: str, title: str, legend: str = "best"):
    """Labels, grid and legend (at `legend`), then the PNG at `path`."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc=legend)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the record ----------------------------------------------------------------------------------


def environment_lines() -> list[str]:
    """Machine and its load at start, package versions, git revision and the exact command."""
    from search.study.metadata import package_versions

    versions = ", ".join(f"{name} {version}" for name, version in package_versions().items())
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    return [
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, 1-minute load average "
        f"{LOAD_AT_START if LOAD_AT_START is None else round(LOAD_AT_START, 2)} at start",
        f"- versions: {versions}",
        f"- git revision: {REVISION_AT_START}",
        f"- command: `{command}`",
    ]


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


def report(title: str, body: str, args: argparse.Namespace) -> None:
    """Print `body`; unless --no-record, append it to RESULTS.md under `title`."""
    print()
    print(body)
    if not args.no_record:
        print(f"\nappended to {append_results(title, body)}")
