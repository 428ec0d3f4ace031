"""`python -m search.report --study NAME`: retrained results beside the documented baselines.

Writes report.md, report.json and PNG plots to reports/NAME/ and prints the table; the work is
done by `search.evaluation.report`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from search.cli import Parser
from search.errors import USER_ERRORS, UsageError
from search.evaluation.report import write_report
from search.study.config import default_storage
from storage.urls import check_url, is_proxy_url, mask_secrets

PROG = "search.report"


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, metavar="NAME", help="study name")
    parser.add_storage_flag()
    parser.add_argument("--out", metavar="DIR", help="output folder; default reports/NAME/")
    args = parser.parse_args(argv)
    storage = args.storage or default_storage()
    try:
        if is_proxy_url(storage):
            raise UsageError(
                "the report is built from the retrained runs in the database's own tables, "
                "which the storage proxy does not serve; give --storage the database URL"
            )
        url = check_url(storage)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            raise UsageError(f"no database file {url.database!r}; check --storage")
        write_report(args.study, storage, args.out, print_table=True)
    except USER_ERRORS as exc:
        print(f"{PROG}: error: {mask_secrets(str(exc), storage)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
