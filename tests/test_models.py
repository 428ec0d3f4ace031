"""The network builders: layer order, initializers, parameter counts."""

import keras
import numpy as np
import pytest

from models import build_dense, build_shallow, trainable_params
from models.dense import learning_rate_of
from models.params import ModelParams


def test_build_dense_is_flatten_first_with_dropout_after_each_dense():
    model = build_dense(ModelParams(units=(32, 16), dropouts=(0.1, 0.3), activation="elu"))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        0.1,
        0.3,
    ]
    output = model.layers[-1]
    assert output.units == 10 and output.activation.__name__ == "softmax"


def test_build_dense_uses_glorot_uniform_and_zero_biases():
    model = build_dense(ModelParams(units=(16,), dropouts=(0.0,)))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            assert isinstance(layer.kernel_initializer, keras.initializers.GlorotUniform)
            assert isinstance(layer.bias_initializer, keras.initializers.Zeros)


def test_build_dense_parameter_count_matches_the_formula():
    model = build_dense(ModelParams(units=(128,), dropouts=(0.2,)))
    assert model.count_params() == 784 * 128 + 128 + 128 * 10 + 10  # 101,770


def test_trainable_params_leave_out_statistics_that_are_not_learned():
    """Batch normalisation's moving mean and variance (2 x 32) are weights but not parameters;
    its scale and shift (2 x 32) are. Standardisation's statistics are constants, in neither."""
    params = ModelParams(units=(32,), dropouts=(0.0,), batch_norm=True, standardize=True)
    stats = (np.zeros(784, np.float32), np.ones(784, np.float32))
    model = build_dense(params, feature_stats=stats)
    dense = 784 * 32 + 32 + 32 * 10 + 10  # 25,450, as MN-SIGMOID-1x32
    assert trainable_params(model) == dense + 2 * 32
    assert model.count_params() == dense + 2 * 32 + 2 * 32


def test_build_dense_applies_optimizer_and_learning_rate():
    model = build_dense(
        ModelParams(units=(8,), dropouts=(0.0,), optimizer="sgd", learning_rate=0.005)
    )
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert abs(float(model.optimizer.learning_rate) - 0.005) < 1e-9
    assert abs(float(model.optimizer.momentum) - 0.9) < 1e-9


def test_build_shallow_784_units_has_the_documented_parameter_count():
    model = build_shallow((784,), (0.5,), "relu")
    assert model.count_params() == 6_148_138, "baselines.md: n=784, L=1 has 6,148,138"


def test_build_shallow_acts_per_pixel_before_flattening():
    model = build_shallow((7,), (0.5,))
    assert model.layers[1].output.shape == (None, 28, 28, 7)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert abs(float(model.optimizer.epsilon) - 1e-4) < 1e-12


def _knobbed(**overrides) -> ModelParams:
    return ModelParams(units=(16,), dropouts=(0.1,), **overrides)


def test_build_dense_batch_norm_sits_between_dense_and_activation():
    model = build_dense(_knobbed(batch_norm=True, activation="gelu"))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]
    assert model.layers[1].activation.__name__ == "linear", "the activation comes after the norm"


def test_build_dense_standardize_carries_the_training_statistics():
    mean, variance = np.full(784, 0.25), np.full(784, 0.04)
    model = build_dense(_knobbed(standardize=True), feature_stats=(mean, variance))
    assert type(model.layers[1]).__name__ == "Normalization"
    out = model.layers[1](np.full((1, 784), 0.45, dtype="float32"))
    assert np.allclose(np.asarray(out), 1.0, atol=1e-3), "(0.45 - 0.25) / sqrt(0.04) = 1"
    with pytest.raises(ValueError, match="feature_stats"):
        build_dense(_knobbed(standardize=True))


def test_cosine_schedule_decays_to_zero_over_the_given_steps():
    schedule = learning_rate_of(_knobbed(lr_schedule="cosine", learning_rate=1e-2), 100)
    assert float(schedule(0)) == pytest.approx(1e-2)
    assert float(schedule(50)) == pytest.approx(5e-3, rel=1e-4), "half way: half the rate"
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert learning_rate_of(_knobbed(learning_rate=1e-2), None) == 1e-2, "constant stays"
    with pytest.raises(ValueError, match="decay_steps"):
        build_dense(_knobbed(lr_schedule="cosine"))


def test_build_dense_weight_decay_is_decoupled_in_the_optimizer():
    model = build_dense(_knobbed(weight_decay=1e-3, optimizer="sgd"))
    assert model.optimizer.weight_decay == pytest.approx(1e-3)
    assert model.optimizer.momentum == pytest.approx(0.9)


def test_label_smoothing_loss_matches_keras_on_one_hot_labels_and_reloads(tmp_path):
    model = build_dense(_knobbed(label_smoothing=0.1))
    y = np.array([3, 7])
    probabilities = np.full((2, 10), 0.05, dtype="float32")
    probabilities[0, 3] = probabilities[1, 7] = 0.55
    ours = float(model.loss(y, probabilities))
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(
        np.eye(10)[y], probabilities
    )
    assert ours == pytest.approx(float(reference), rel=1e-5)
    path = tmp_path / "m.keras"
    model.save(path)
    assert keras.models.load_model(path).loss.label_smoothing == pytest.approx(0.1)
