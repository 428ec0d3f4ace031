"""The frozen description of one network: layer sizes, dropout and the training knobs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

ACTIVATIONS = ("relu", "elu", "leaky_relu", "gelu", "swish", "linear", "sigmoid", "tanh")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "cosine")  # cosine: decays to 0 over the epochs allowed


@dataclass(frozen=True)
class ModelParams:
    """One dense network: `units[i]` neurons and `dropouts[i]` dropout rate in hidden layer i."""

    units: tuple[int, ...]
    dropouts: tuple[float, ...]
    activation: str = "relu"
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 128
    # The knobs that make wide networks generalise; the defaults are the plain network.
    batch_norm: bool = False  # Dense -> BatchNormalization -> activation
    weight_decay: float = 0.0  # decoupled (AdamW-style), applied by every Keras optimizer
    standardize: bool = False  # inputs standardised per feature on the training split
    lr_schedule: str = "constant"
    label_smoothing: float = 0.0

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
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be zero or positive, got {self.weight_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; use one of {LR_SCHEDULES}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")

    @property
    def n_layers(self) -> int:
        return len(self.units)

    def describe(self) -> str:
        """A short human line, e.g. '2x[512-128] relu adam lr=1.2e-03 batch=128'."""
        sizes = "-".join(str(u) for u in self.units)
        drops = "/".join(f"{d:.2f}" for d in self.dropouts)
        extras = [
            "bn" if self.batch_norm else "",
            f"wd={self.weight_decay:.0e}" if self.weight_decay else "",
            "std" if self.standardize else "",
            self.lr_schedule if self.lr_schedule != "constant" else "",
            f"ls={self.label_smoothing:.2f}" if self.label_smoothing else "",
        ]
        return (
            f"{self.n_layers}x[{sizes}] drop {drops} {self.activation} {self.optimizer} "
            f"lr={self.learning_rate:.1e} batch={self.batch_size}"
            + "".join(f" {extra}" for extra in extras if extra)
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["units"] = list(self.units)
        data["dropouts"] = list(self.dropouts)
        return data
