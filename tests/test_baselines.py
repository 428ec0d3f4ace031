"""The documented baselines: ids, figures transcribed from baselines.md, and the built networks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import keras
import pytest

from search.errors import UsageError
from search.evaluation import baselines
from search.evaluation.baselines import (
    NOT_STATED,
    Baseline,
    best_documented,
    for_dataset,
    get,
    select_for_reproduction,
)

# Hard-coded from baselines.md, in its order: the registry must neither drop nor invent an entry.
FASHION_IDS = [
    "FM-ALEXNET",
    "FM-SHALLOW-392-relu-d0.5",
    "FM-SHALLOW-392-none-d0.5",
    "FM-SHALLOW-392-none-d0.8",
    "FM-SHALLOW-392-relu-d0.8",
    "FM-SHALLOW-2x78-d0.5",
    "FM-SHALLOW-2x392-d0.5",
    "FM-MLP128",
]
MNIST_IDS = [
    "MN-SIGMOID-1x32",
    "MN-SIGMOID-2x32",
    "MN-SIGMOID-3x32",
    "MN-SIGMOID-4x32",
    "MN-SIGMOID-3x32-e40",
    "MN-SIGMOID-1x64",
    "MN-SIGMOID-1x128",
    "MN-SIGMOID-1x256",
    "MN-SIGMOID-1x512",
    "MN-SIGMOID-1x2048",
    "MN-SIGMOID-1x512-long",
    "MN-SIGMOID-5x32-b16",
]
MNIST_IDS_ALL = [*MNIST_IDS, "MN-MLP512"]


def _figures(baseline_id: str) -> dict:
    return get(baseline_id).documented


def test_for_dataset_lists_every_documented_id_in_order():
    assert [b.id for b in for_dataset("fashion")] == FASHION_IDS
    assert [b.id for b in for_dataset("mnist")] == MNIST_IDS_ALL
    assert len(baselines.BASELINES) == len(FASHION_IDS) + len(MNIST_IDS_ALL), "no stray entries"


def test_for_dataset_unknown_dataset_raises_value_error():
    with pytest.raises(ValueError, match="cifar"):
        for_dataset("cifar")


def test_get_unknown_id_raises_key_error_with_close_matches():
    with pytest.raises(KeyError, match="did you mean FM-MLP128"):
        get("FM-MLP-128")
    with pytest.raises(KeyError, match="known ids"):
        get("nothing-like-it")


def test_fm_shallow_figures_match_the_table():
    assert _figures("FM-SHALLOW-392-none-d0.8") == {
        "test_accuracy": 0.8636,
        "test_loss": 0.38,
        "precision": 0.8877,
        "recall": 0.8455,
    }
    assert get("FM-SHALLOW-392-none-d0.8").documented_epochs == 377
    assert _figures("FM-SHALLOW-392-relu-d0.8") == {
        "test_accuracy": 0.8445,
        "test_loss": 0.44,
        "precision": 0.8755,
        "recall": 0.8152,
    }
    assert get("FM-SHALLOW-392-relu-d0.8").documented_epochs == 68
    assert _figures("FM-SHALLOW-392-relu-d0.5")["test_accuracy"] == 0.862, "86.20%"
    assert _figures("FM-SHALLOW-392-relu-d0.5")["test_loss"] == 0.39
    assert _figures("FM-SHALLOW-392-none-d0.5")["test_accuracy"] == 0.8469
    assert _figures("FM-SHALLOW-2x78-d0.5") == {
        "test_accuracy": 0.8671,
        "test_loss": 0.3691,  # a loss stays as printed, not divided by 100
        "precision": 0.89,  # "89%"
        "recall": 0.8472,
    }
    assert _figures("FM-SHALLOW-2x392-d0.5") == {
        "test_accuracy": 0.8666,
        "test_loss": 0.3721,
        "precision": 0.8887,
        "recall": 0.8491,
    }


def test_fm_shallow_rows_share_the_documented_setup():
    for baseline_id in FASHION_IDS[1:7]:
        b = get(baseline_id)
        assert b.kind == "shallow" and b.optimizer == "adam-shallow", baseline_id
        assert (b.batch_size, b.epochs, b.patience) == (128, 3000, 50), baseline_id
    assert get("FM-SHALLOW-2x78-d0.5").units == (78, 78)
    assert get("FM-SHALLOW-2x392-d0.5").dropouts == (0.5, 0.5)
    assert get("FM-SHALLOW-392-none-d0.8").activation == "linear", "'none' means linear"


def test_fm_shallow_two_layer_rows_have_no_stated_activation():
    for baseline_id in ("FM-SHALLOW-2x78-d0.5", "FM-SHALLOW-2x392-d0.5"):
        b = get(baseline_id)
        assert b.activation is None, "the table says 'not stated'"
        assert b.reproduce_activation == "relu"
        assert b.documented_epochs is None


def test_not_stated_figures_are_none():
    assert _figures("FM-SHALLOW-392-none-d0.5")["test_loss"] is None
    assert _figures("FM-SHALLOW-392-relu-d0.5")["precision"] is None
    assert get("FM-SHALLOW-392-relu-d0.5").documented_epochs is None
    assert all(v is None for v in _figures("FM-MLP128").values()), "FM-MLP128 states no figure"
    assert _figures("FM-ALEXNET") == {
        "test_accuracy": 0.8643,
        "test_loss": None,
        "precision": None,
        "recall": None,
    }
    for baseline_id in MNIST_IDS_ALL:
        assert _figures(baseline_id)["test_loss"] is None, baseline_id


def test_mn_sigmoid_figures_and_setup_match_the_table():
    expected = {
        "MN-SIGMOID-1x32": ((32,), 5, (0.87, 0.888)),
        "MN-SIGMOID-2x32": ((32, 32), 5, 0.767),
        "MN-SIGMOID-3x32": ((32,) * 3, 5, 0.438),
        "MN-SIGMOID-4x32": ((32,) * 4, 5, 0.114),
        "MN-SIGMOID-3x32-e40": ((32,) * 3, 40, 0.886),
        "MN-SIGMOID-1x64": ((64,), 5, 0.904),
        "MN-SIGMOID-1x128": ((128,), 5, 0.916),
        "MN-SIGMOID-1x256": ((256,), 5, 0.926),
        "MN-SIGMOID-1x512": ((512,), 5, 0.934),
        "MN-SIGMOID-1x2048": ((2048,), 5, 0.950),
        "MN-SIGMOID-1x512-long": ((512,), None, 0.947),
        "MN-SIGMOID-5x32-b16": ((32,) * 5, 50, 0.827),
    }
    assert list(expected) == MNIST_IDS
    for baseline_id, (units, epochs, accuracy) in expected.items():
        b = get(baseline_id)
        assert (b.units, b.epochs, b.documented["test_accuracy"]) == (units, epochs, accuracy)
        assert b.activation == "sigmoid" and b.optimizer == "sgd", baseline_id
        assert set(b.dropouts) == {0.0}, f"{baseline_id}: the source uses no dropout"
        assert b.batch_size == (16 if baseline_id.endswith("-b16") else 128), baseline_id
    assert get("MN-SIGMOID-1x32").n_params == 25_450


def test_mn_mlp512_matches_the_keras_example():
    b = get("MN-MLP512")
    assert (b.units, b.dropouts, b.activation, b.optimizer) == (
        (512, 512),
        (0.2, 0.2),
        "relu",
        "rmsprop",
    )
    assert (b.batch_size, b.epochs, b.patience) == (128, 20, None)
    assert b.documented["test_accuracy"] == 0.984
    assert "Keras" in b.note, "the figure is the Keras example's, not the walk-through's"
    assert b.n_params == 669_706


def test_fm_mlp128_and_alexnet_match_the_doc():
    mlp = get("FM-MLP128")
    assert (mlp.kind, mlp.units, mlp.activation, mlp.optimizer) == ("dense", (128,), "relu", "adam")
    assert (mlp.epochs, mlp.batch_size, mlp.patience) == (10, 32, None)
    assert any("batch size" in a for a in mlp.assumptions), "32 is Keras' default, not documented"
    assert any("0.2" in a for a in mlp.assumptions), "the documented validation split differs"
    alexnet = get("FM-ALEXNET")
    assert alexnet.kind == "reference" and alexnet.n_params == 61_000_000
    assert alexnet.optimizer == NOT_STATED and alexnet.units == ()


def test_baseline_reproducible_excludes_reference_and_unknown_epochs():
    assert not get("FM-ALEXNET").reproducible, "a reference figure has no network"
    assert not get("MN-SIGMOID-1x512-long").reproducible, "its epoch count is not stated"
    assert get("MN-SIGMOID-5x32-b16").reproducible


def test_reproduction_set_holds_the_trainable_entries():
    assert [b.id for b in baselines.reproduction_set("fashion")] == FASHION_IDS[1:]
    mnist = [i for i in MNIST_IDS_ALL if i != "MN-SIGMOID-1x512-long"]
    assert [b.id for b in baselines.reproduction_set("mnist")] == mnist


def test_select_for_reproduction_defaults_to_the_reproduction_set():
    assert select_for_reproduction("mnist") == baselines.reproduction_set("mnist")
    assert select_for_reproduction("fashion", ()) == baselines.reproduction_set("fashion")


def test_select_for_reproduction_keeps_the_doc_order_of_chosen_ids():
    chosen = select_for_reproduction("mnist", ["MN-MLP512", "MN-SIGMOID-1x32", "MN-MLP512"])
    assert [b.id for b in chosen] == ["MN-SIGMOID-1x32", "MN-MLP512"], "doc order, no repeats"


@pytest.mark.parametrize(
    ("baseline_id", "message"),
    [
        ("MN-NOPE", "no documented baseline"),
        ("FM-MLP128", "fashion baseline, not mnist"),
        ("MN-SIGMOID-1x512-long", "epochs not stated"),
    ],
)
def test_select_for_reproduction_rejects_ids_it_cannot_train(baseline_id, message):
    # UsageError, not KeyError: the CLI turns it into one line and exit status 2.
    with pytest.raises(UsageError, match=message):
        select_for_reproduction("mnist", [baseline_id])


def test_select_for_reproduction_rejects_a_reference_figure():
    with pytest.raises(UsageError, match="reference figure"):
        select_for_reproduction("fashion", ["FM-ALEXNET"])


def test_param_count_matches_the_documented_counts():
    assert get("MN-SIGMOID-1x32").param_count() == 25_450
    assert get("MN-MLP512").param_count() == 669_706
    assert get("FM-ALEXNET").param_count() == 61_000_000, "a reference keeps its documented count"
    n784 = dataclasses.replace(get("FM-SHALLOW-392-relu-d0.5"), units=(784,))
    assert n784.param_count() == 6_148_138, "the doc's exact count for n=784, L=1"
    assert get("FM-SHALLOW-392-relu-d0.5").param_count() == 3_074_074, "'about 3M'"
    assert get("FM-MLP128").param_count() == 101_770, "computed where the doc gives none"


def test_best_documented_accuracy_takes_the_upper_end_of_a_range():
    assert get("MN-SIGMOID-1x32").best_documented_accuracy() == 0.888
    assert get("MN-SIGMOID-2x32").best_documented_accuracy() == 0.767
    assert get("FM-MLP128").best_documented_accuracy() is None


def test_best_documented_picks_the_highest_accuracy():
    fashion = best_documented("fashion")
    assert fashion.id == "FM-SHALLOW-2x78-d0.5", "86.71% beats AlexNet's 86.43%"
    assert fashion.best_documented_accuracy() == 0.8671
    assert best_documented("mnist").id == "MN-MLP512", "0.984 beats 0.950"


def test_baseline_unstated_activation_is_an_assumption():
    for b in baselines.BASELINES:
        if b.kind != "reference" and b.activation is None:
            assert any("activation" in a for a in b.assumptions), b.id


def test_baseline_rejects_an_unstated_activation_without_assumption():
    row = get("FM-SHALLOW-2x78-d0.5")
    with pytest.raises(ValueError, match="activation not stated"):
        dataclasses.replace(row, assumptions=())


def test_baseline_is_hashable_and_frozen():
    b = get("MN-MLP512")
    assert {b: 1}[b] == 1, "entries can key a dict despite the documented-figures dict"
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.epochs = 1  # type: ignore[misc]


def test_import_does_not_load_keras():
    code = "import sys, search.evaluation.baselines; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "importing the registry must stay cheap"


# --- building ------------------------------------------------------------------------------


def test_build_mn_sigmoid_1x32_has_the_documented_parameter_count():
    model = get("MN-SIGMOID-1x32").build()
    assert model.count_params() == 25_450
    assert model.layers[1].activation.__name__ == "sigmoid"


def test_build_mn_mlp512_has_the_documented_parameter_count():
    model = get("MN-MLP512").build()
    assert model.count_params() == 669_706
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert abs(float(model.optimizer.learning_rate) - 1e-3) < 1e-9, "Keras' default"


def test_build_fm_mlp128_parameter_count_and_adam_defaults():
    model = get("FM-MLP128").build()
    assert model.count_params() == 784 * 128 + 128 + 128 * 10 + 10  # 101,770
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert abs(float(model.optimizer.learning_rate) - 1e-3) < 1e-9


def test_build_sgd_baselines_use_keras_defaults_without_momentum():
    row = get("MN-SIGMOID-2x32")
    model = row.build()
    assert model.count_params() == row.param_count()
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert abs(float(model.optimizer.learning_rate) - 0.01) < 1e-9, "Keras' default SGD"
    assert float(model.optimizer.momentum) == 0.0, "not the search's momentum 0.9"


def test_build_shallow_1x7_has_about_54k_parameters():
    # The 392-wide rows take minutes per epoch; the same row at n = 7 checks the wiring.
    small = dataclasses.replace(get("FM-SHALLOW-392-none-d0.5"), units=(7,))
    model = small.build()
    assert model.count_params() == small.param_count()
    per_pixel = 1 * 7 + 7
    assert model.count_params() == per_pixel + 28 * 28 * 7 * 10 + 10  # 54,890: "about 54K"
    assert model.layers[1].activation.__name__ == "linear", "'none' builds a linear layer"
    assert abs(float(model.optimizer.epsilon) - 1e-4) < 1e-12, "the study's Adam"
    assert abs(float(model.optimizer.learning_rate) - 1e-4) < 1e-9


def test_build_shallow_two_layer_row_uses_the_assumed_relu():
    row = get("FM-SHALLOW-2x78-d0.5")
    model = row.build()
    assert model.count_params() == row.param_count()
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "softmax"]
    assert model.count_params() == (1 * 78 + 78) + (78 * 78 + 78) + 28 * 28 * 78 * 10 + 10


def test_build_reference_raises_value_error():
    with pytest.raises(ValueError, match="reference figure"):
        get("FM-ALEXNET").build()


def test_baselines_registry_holds_only_complete_entries():
    # Guards the registry's types: only Baseline objects, each with all four figure keys.
    for b in baselines.BASELINES:
        assert isinstance(b, Baseline)
        assert set(b.documented) == set(baselines.FIGURES), b.id
