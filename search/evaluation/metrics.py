"""Test-set figures of a trained model, from one prediction pass."""

from __future__ import annotations

import keras
import numpy as np

from search.study.config import EVAL_BATCH


def macro_precision_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple:
    """Unweighted means over classes; a class never predicted counts as precision 0."""
    precisions, recalls = [], []
    for c in range(n_classes):
        true_pos = np.sum((y_pred == c) & (y_true == c))
        predicted, actual = np.sum(y_pred == c), np.sum(y_true == c)
        precisions.append(true_pos / predicted if predicted else 0.0)
        recalls.append(true_pos / actual if actual else 0.0)
    return float(np.mean(precisions)), float(np.mean(recalls))


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """One prediction pass over the test set; loss as Keras computes it (probabilities clipped)."""
    return figures(model.predict(x, batch_size=EVAL_BATCH, verbose=0), y)


def figures(probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Test figures of class probabilities (one model's, or an ensemble's average)."""
    predicted = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(y)), y], 1e-7, 1.0)
    precision, recall = macro_precision_recall(y, predicted, probabilities.shape[1])
    return {
        "test_accuracy": float(np.mean(predicted == y)),
        "test_loss": float(-np.mean(np.log(picked))),
        "precision": precision,
        "recall": recall,
    }
