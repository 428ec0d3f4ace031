"""Test-set figures of a trained model, from one prediction pass: accuracy, loss, macro precision
and recall for classification; loss (MSE), RMSE and MAE for regression."""

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
    """One prediction pass over the test set; loss as Keras computes it (probabilities clipped).
    A float target is a regression's."""
    predicted = model.predict(x, batch_size=EVAL_BATCH, verbose=0)
    if np.issubdtype(y.dtype, np.floating):
        return regression_figures(predicted, y)
    return figures(predicted, y)


def regression_figures(predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Test figures of predicted targets (one model's, or an ensemble's average)."""
    error = np.reshape(predicted, -1).astype(np.float64) - y.astype(np.float64)
    mse = float(np.mean(error**2))
    return {
        "test_loss": mse,
        "test_rmse": float(np.sqrt(mse)),
        "test_mae": float(np.mean(np.abs(error))),
    }


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


def run_line(record) -> str:  # a storage.results.RunRecord
    """The figures of one run for the log: test figures, or validation ones without a test set."""
    if record.test_rmse is not None:
        return f"test RMSE {record.test_rmse:.4g}, MAE {record.test_mae:.4g}"
    if record.test_accuracy is not None:
        return f"test accuracy {record.test_accuracy:.4f}, loss {record.test_loss:.4f}"
    if record.val_rmse is not None:
        return f"no test set; validation RMSE {record.val_rmse:.4g}"
    return f"no test set; validation accuracy {record.val_accuracy or float('nan'):.4f}"
