"""The network builders: layer order, initializers, parameter counts."""

import keras

from models import build_dense, build_shallow
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
