"""The frozen description of one network: layer sizes, dropout and the training knobs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

ACTIVATIONS = ("relu", "elu", "leaky_relu", "linear", "sigmoid", "tanh")
OPTIMIZERS = ("adam", "rmsprop", "sgd")


@dataclass(frozen=True)
class ModelParams:
    """One dense network: `units[i]` neurons and `dropouts[i]` dropout rate in hidden layer i."""

    units: tuple[int, ...]
    dropouts: tuple[float, ...]
    activation: str = "relu"
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 128

    def __post_init__(self) -> None:
        # Accept lists (from JSON) but store tuples so the object stays hashable.
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        object.__setattr__(self, "dropouts", tuple(float(d) for d in self.dropouts))
        if not self.units:
            raise ValueError("a network needs at least one hidden layer (units is empty)")
        if len(self.units) != len(self.dropouts):
            raise ValueError(
                f"units has {len(self.units)} layers but dropouts has {len(self.dropouts)}; "
                "give one dropout rate per hidden layer"
            )
        if any(u < 1 for u in self.units):
            raise ValueError(f"every layer needs at least 1 unit, got {self.units}")
        if any(not 0.0 <= d < 1.0 for d in self.dropouts):
            raise ValueError(f"dropout rates must lie in [0, 1), got {self.dropouts}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; use one of {ACTIVATIONS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; use one of {OPTIMIZERS}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")

    @property
    def n_layers(self) -> int:
        return len(self.units)

    def describe(self) -> str:
        """A short human line, e.g. '2x[512-128] relu adam lr=1.2e-03 batch=128'."""
        sizes = "-".join(str(u) for u in self.units)
        drops = "/".join(f"{d:.2f}" for d in self.dropouts)
        return (
            f"{self.n_layers}x[{sizes}] drop {drops} {self.activation} {self.optimizer} "
            f"lr={self.learning_rate:.1e} batch={self.batch_size}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["units"] = list(self.units)
        data["dropouts"] = list(self.dropouts)
        return data
