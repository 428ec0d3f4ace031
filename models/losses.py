"""Cross-entropy with label smoothing for integer labels.

Keras' SparseCategoricalCrossentropy has no `label_smoothing`; CategoricalCrossentropy has it
but wants one-hot labels. This loss one-hot encodes inside, so data stays as class ids
everywhere. It is registered, so a saved model reloads with it (`import models` first), and
`keras.models.load_model(path, compile=False)` needs nothing at all to predict.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="models")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of softmax outputs against smoothed one-hot integer labels."""

    def __init__(
        self, label_smoothing: float = 0.0, n_classes: int = 10, name: str = "smoothed_xent"
    ) -> None:
        super().__init__(name=name)
        self.label_smoothing = float(label_smoothing)
        self.n_classes = int(n_classes)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ids = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(ids, self.n_classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "label_smoothing": self.label_smoothing,
            "n_classes": self.n_classes,
            "name": self.name,
        }
