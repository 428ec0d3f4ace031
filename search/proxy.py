"""`python -m search.proxy --storage URL`: one study database served to many workers through
Optuna's gRPC storage proxy.

Workers (and `search.status`, `search.dashboard`) then take `--storage grpc://HOST:PORT`: the
proxy alone holds database connections, so the database's connection limit no longer bounds the
number of workers. It also runs the heartbeat rule Optuna's proxy client lacks: a trial whose
worker stopped beating is failed and its configuration queued again (`storage.proxy_server`).
The channel is neither encrypted nor authenticated: it binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
import warnings
from collections.abc import Sequence

import optuna

from search.cli import Parser, positive_int, seconds, tcp_port
from search.errors import USER_ERRORS, UsageError, stop_on_sigterm
from search.study.config import DEFAULT_HEARTBEAT, default_storage
from storage.proxy_server import DEFAULT_THREADS, REAP_SECONDS, failure_bound, open_backend, serve
from storage.urls import (
    PROXY_DEFAULT_PORT,
    check_url,
    is_loopback,
    is_proxy_url,
    mask_secrets,
    mask_url,
)

PROG = "search.proxy"
DEFAULT_HOST = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"python -m {PROG}",
        description="Serve a study database to many workers through Optuna's gRPC storage "
        "proxy; workers then use --storage grpc://HOST:PORT.",
    )
    flag = parser.add_argument
    flag(
        "--storage",
        metavar="URL",
        help="SQLAlchemy URL of the study database; default: env SEARCH_STORAGE, else "
        "sqlite:///studies.db",
    )
    flag(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on; default {DEFAULT_HOST} (any other: the channel is not "
        "encrypted)",
    )
    flag("--port", type=tcp_port, default=PROXY_DEFAULT_PORT, help=f"default {PROXY_DEFAULT_PORT}")
    flag(
        "--heartbeat",
        type=seconds,
        default=DEFAULT_HEARTBEAT,
        metavar="SECONDS",
        help="the workers' --heartbeat: a running trial silent for 2 x SECONDS + 10 s is failed "
        f"and retried; default {DEFAULT_HEARTBEAT}",
    )
    flag(
        "--threads",
        type=positive_int,
        default=DEFAULT_THREADS,
        help=f"threads answering the workers (each holds a database connection); "
        f"default {DEFAULT_THREADS}",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = args.storage or default_storage()
    # Heartbeats and the proxy are "experimental" in Optuna's terms: nothing to act on.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        if is_proxy_url(url):
            raise UsageError("--storage of the proxy must name a database, not another proxy")
        check_url(url)
        _check_free(args.host, args.port)
        storage = open_backend(url, args.heartbeat, args.threads)
    except USER_ERRORS as exc:
        print(f"{PROG}: error: {mask_secrets(str(exc), url)}", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(
            f"warning: the proxy neither encrypts nor authenticates; anyone who can reach "
            f"{args.host}:{args.port} can read and change every study in this database. Keep it "
            "on a private network",
            file=sys.stderr,
        )
    # The reaper's lines (a trial failed and retried) are what an operator wants to see.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"proxy for {mask_url(url)} on {args.host}:{args.port}; workers: --storage "
        f"grpc://{args.host}:{args.port} --heartbeat {args.heartbeat}. A silent trial is failed "
        f"and retried within {failure_bound(args.heartbeat):.0f} s of its last heartbeat "
        f"(checked every {REAP_SECONDS:g} s). Ctrl-C or SIGTERM stops",
        flush=True,
    )
    # `kill`, systemd and a shell's background job (which ignores SIGINT) stop it as Ctrl-C does.
    stop_on_sigterm()
    with contextlib.suppress(KeyboardInterrupt):
        serve(storage, host=args.host, port=args.port, threads=args.threads)
    return 0


def _check_free(host: str, port: int) -> None:
    """UsageError when host:port cannot be bound (taken, or not this machine's address).

    gRPC would only log its failure to bind; this names it before anything else starts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
                "or --host"
            ) from None


if __name__ == "__main__":
    sys.exit(main())
