"""Progress output: a line per finished trial, a live bar with an ETA, and the final summary.

The per-trial lines go to stdout (they are the run's log); the bar goes to stderr and only
appears in a terminal, so logs of unattended runs stay clean. With several local workers the
parent process owns the bar and the terminal (`SharedBar`): each worker's Progress sends it
its epochs and trial lines through a queue, so one bar shows every worker's running trial and
no worker's line is written through another's bar.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Protocol, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from search.study.config import SearchSpace
from search.study.space import params_from_stored
from search.study.values import best_trial, is_pareto


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def trial_bar(target: int, finished: int, *, drawn: bool = True) -> tqdm:
    """The bar of finished trials: on stderr, in a terminal only (never, if not `drawn`)."""
    return tqdm(
        total=target,
        initial=finished,
        unit="trial",
        file=sys.stderr,
        disable=None if drawn else True,
        dynamic_ncols=True,
        leave=False,
    )


def say(text: str, file: TextIO | None = None) -> None:
    """A line on stdout (or `file`), flushed, above the live bar if this process draws one."""
    file = file or sys.stdout
    tqdm.write(text, file=file)
    file.flush()


class Events(Protocol):
    """Where a worker's Progress sends its events: a multiprocessing queue, in practice."""

    def put(self, item: Any) -> None: ...

    def get(self) -> Any: ...


class Progress:
    """Optuna callback (after each trial) and epoch hook (inside a trial) in one object."""

    def __init__(
        self,
        *,
        target: int,
        finished: int,
        max_epochs: int,
        timeout: float | None,
        space: SearchSpace,
        prefix: str = "",
        run_start: tuple[float, int] | None = None,
        monitor: str = "val_accuracy",
        events: Events | None = None,
    ) -> None:
        """`run_start`: (time.time(), finished trials) when the run began, for a worker process
        that takes over from another: elapsed time and ETA then cover the whole run. `monitor`:
        the validation figure shown (val_accuracy, or val_rmse for regression). `events`: the
        queue of the parent's SharedBar, which then shows this worker's epochs and prints its
        trial lines (and this object draws no bar of its own)."""
        self.events = events
        self.monitor = monitor
        self.name = monitor.replace("accuracy", "acc")
        self.started, self.start_finished = run_start or (time.time(), finished)
        self.target, self.finished = target, finished
        self.max_epochs, self.timeout, self.space = max_epochs, timeout, space
        self.prefix = prefix
        self.bar = trial_bar(target, finished, drawn=events is None)

    def on_epoch(self, trial_number: int, epoch: int, logs: dict[str, float]) -> None:
        figure = logs.get(self.monitor, float("nan"))
        status = f"trial {trial_number} epoch {epoch}/{self.max_epochs} {self.name} {figure:.4f}"
        if self.events is not None:
            self.events.put(("epoch", self.prefix.strip(), status))
        else:
            self.bar.set_postfix_str(status)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        counted = trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        if counted:
            self.finished += 1
            self.bar.update(1)
        line = self.trial_line(study, trial)
        if self.events is not None:
            self.events.put(("trial", self.prefix.strip(), line, counted))
            return
        say(line)

    def eta_seconds(self) -> float | None:
        """Seconds until the target, from this run's pace; capped by what the timeout leaves."""
        done = self.finished - self.start_finished
        elapsed = time.time() - self.started
        eta = None
        if done > 0:
            eta = elapsed / done * max(self.target - self.finished, 0)
        if self.timeout is not None:
            left = max(self.timeout - elapsed, 0.0)
            eta = left if eta is None else min(eta, left)
        return eta

    def trial_line(self, study: optuna.Study, trial: FrozenTrial) -> str:
        attrs = trial.user_attrs
        epochs = f"{attrs.get('epochs_run', 0)}/{self.max_epochs} ep"
        if trial.state == TrialState.PRUNED:
            outcome = f"PRUNED   at epoch {attrs.get('pruned_at_epoch', '?')}"
            last = trial.intermediate_values.get(max(trial.intermediate_values, default=-1))
            if last is None and attrs.get("curve"):  # a Pareto trial stores its curve instead
                last = attrs["curve"][-1]
            figure = f"{self.name} {last:.4f}" if last is not None else f"{self.name} -"
        elif trial.state == TrialState.COMPLETE:
            outcome = f"COMPLETE {attrs.get('stop_reason', '')}"
            figure = f"{self.name} {trial.values[0]:.4f}"
        else:
            outcome, figure = trial.state.name, f"{self.name} -"
        try:
            network = params_from_stored(trial.params, self.space).describe()
        except (ValueError, KeyError):
            network = "(no parameters)"
        top = best_trial(study)
        best = "best -" if top is None else f"best {top.values[0]:.4f} (#{top.number})"
        if top is not None and is_pareto(study):
            best += f", front of {len(study.best_trials)}"
        eta = self.eta_seconds()
        elapsed = _duration(time.time() - self.started)
        return (
            f"{self.prefix}[{self.finished}/{self.target} {elapsed} "
            f"eta {_duration(eta) if eta is not None else '?'}] trial {trial.number:>3} "
            f"{outcome:<27} {figure}  {epochs} {attrs.get('train_seconds', 0):.1f}s  "
            f"{attrs.get('n_params', 0):,} params  {network} | {best}"
        )

    def close(self) -> None:
        self.bar.close()


class SharedBar:
    """The live bar of a run with several local workers, in the parent process.

    Reads the workers' events (`Progress(events=...)`) on a thread: an epoch updates that
    worker's part of the bar ("[w0] trial 3 epoch 5/20 val_acc 0.8812 | [w1] ..."), a finished
    trial advances the bar and its line is written above it, on stdout. Like a worker's own
    bar, it goes to stderr and only appears in a terminal; the lines always appear.
    """

    def __init__(self, events: Events, *, target: int, finished: int) -> None:
        self.events = events
        self.status: dict[str, str] = {}
        self.bar = trial_bar(target, finished)
        self.thread = threading.Thread(target=self._read, name="shared-bar", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while (event := self.events.get()) is not None:
            kind, worker, *rest = event
            if kind == "epoch":
                self.status[worker] = rest[0]
                self.bar.set_postfix_str(" | ".join(f"{w} {s}" for w, s in self.status.items()))
            elif kind == "trial":
                line, counted = rest
                self.status.pop(worker, None)
                if counted:
                    self.bar.update(1)
                say(line)

    def close(self) -> None:
        """Write the lines still queued, then remove the bar."""
        self.events.put(None)
        self.thread.join(timeout=10)
        self.bar.close()
