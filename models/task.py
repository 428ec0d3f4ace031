"""What a network predicts, and the figure a study scores it by.

Classification: softmax over the classes, cross-entropy, scored by validation accuracy
(maximised). Regression: one linear output rescaled to the target's training mean and standard
deviation, mean squared error, scored by validation RMSE (minimised); MAE is reported too.
The rest of the service asks a Task rather than testing for "accuracy".
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the Keras metric the search scores ("accuracy", "rmse")
    direction: str  # "maximize" or "minimize", as Optuna spells it
    label: str  # how reports name the figure

    @property
    def monitor(self) -> str:
        """The validation figure: Keras' log name, what pruning and early stopping watch."""
        return f"val_{self.metric}"

    @property
    def mode(self) -> str:
        """Keras' callback mode for `monitor`."""
        return "max" if self.direction == "maximize" else "min"

    def best_index(self, values: list[float]) -> int | None:
        """The first epoch with the best finite figure; None when there is none."""
        finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
        if not finite:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(finite, key=lambda pair: (pair[0], -pair[1]))[1]

    def better(self, a: float, b: float) -> float:
        """The better of two figures; a non-finite one loses."""
        if not math.isfinite(a):
            return b
        if not math.isfinite(b):
            return a
        return max(a, b) if self.direction == "maximize" else min(a, b)

    def shifted(self, value: float, gain: float) -> float:
        """`value` improved by `gain` (up for accuracy, down for RMSE)."""
        return value + gain if self.direction == "maximize" else value - gain

    def sort_key(self, value: float | None) -> float:
        """Ascending order puts the best first; a missing figure goes last."""
        if value is None or not math.isfinite(value):
            return math.inf
        return -value if self.direction == "maximize" else value


CLASSIFICATION = Task("classification", "accuracy", "maximize", "accuracy")
REGRESSION = Task("regression", "rmse", "minimize", "RMSE")
TASKS = {task.name: task for task in (CLASSIFICATION, REGRESSION)}


def of_direction(direction: str) -> Task:
    """The task of a study optimised in Optuna's `direction` ("MAXIMIZE" or "maximize"): a
    classification study maximises accuracy, a regression study minimises RMSE."""
    return CLASSIFICATION if direction.lower() == "maximize" else REGRESSION
