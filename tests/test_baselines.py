"""The documented baselines: the loader of baselines.toml, its checks, the lookups, the networks.

The figures live only in search/evaluation/baselines.toml. These tests check that the loader
returns that file faithfully and refuses malformed entries, that the lookups behave, and that the
built networks match the entries; they do not keep a second typed copy of the figures.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import keras
import pytest

from search.errors import UsageError
from search.evaluation import baseline_file, baselines
from search.evaluation.baseline_file import loads
from search.evaluation.baselines import (
    BASELINES,
    FIGURES,
    NOT_STATED,
    Baseline,
    best_documented,
    for_dataset,
    get,
    reproduction_set,
    select_for_reproduction,
)

REPO = Path(__file__).resolve().parents[1]

# What a key left out of a [[baseline]] table stands for (the convention in the file's header).
LEFT_OUT = {
    "activation": None,
    "reproduce_activation": NOT_STATED,
    "optimizer": NOT_STATED,
    "epochs": None,
    "patience": None,
    "documented_epochs": None,
    "n_params": None,
    "assumptions": (),
    "note": "",
}


def _file_tables() -> list[dict]:
    """The packaged file's [[baseline]] tables, parsed by tomllib alone (not by the loader)."""
    text = resources.files("search.evaluation").joinpath("baselines.toml").read_text("utf-8")
    return tomllib.loads(text)["baseline"]


def _figure_as_loaded(value: object) -> object:
    # A TOML array [low, high] is a range: the loader returns a tuple of floats.
    return tuple(float(v) for v in value) if isinstance(value, list) else float(value)


# --- the loader on the packaged file ---------------------------------------------------------


def test_loader_returns_every_entry_of_the_file_in_file_order():
    assert [b.id for b in BASELINES] == [table["id"] for table in _file_tables()]
    assert all(isinstance(b, Baseline) for b in BASELINES)


def test_loader_keeps_every_value_of_the_file():
    for table, b in zip(_file_tables(), BASELINES, strict=True):
        for key, value in table.items():
            loaded = getattr(b, key)
            if key == "documented":
                expected = dict.fromkeys(FIGURES)
                expected.update({k: _figure_as_loaded(v) for k, v in value.items()})
                assert loaded == expected, b.id
            elif isinstance(value, list):
                assert loaded == tuple(value), (b.id, key)
            else:
                assert loaded == value, (b.id, key)
        for key, meaning in LEFT_OUT.items():
            if key not in table:
                assert getattr(b, key) == meaning, f"{b.id}: left-out {key} means not stated"
        if "documented" not in table:
            assert set(b.documented.values()) == {None}, b.id


def test_loaded_values_have_the_declared_types():
    for b in BASELINES:
        assert type(b.units) is tuple and all(type(u) is int for u in b.units), b.id
        assert type(b.dropouts) is tuple and all(type(d) is float for d in b.dropouts), b.id
        assert type(b.assumptions) is tuple and all(type(a) is str for a in b.assumptions), b.id
        assert list(b.documented) == list(FIGURES), b.id
        for figure in b.documented.values():
            if isinstance(figure, tuple):
                assert len(figure) == 2 and all(type(f) is float for f in figure), b.id
            else:
                assert figure is None or type(figure) is float, b.id
        for name in ("batch_size", "epochs", "patience", "documented_epochs", "n_params"):
            value = getattr(b, name)
            assert value is None or type(value) is int, (b.id, name)


def test_every_field_of_baseline_is_a_key_of_the_file_format():
    # A new Baseline field the loader does not know would otherwise fail only at construction.
    fields = {f.name for f in dataclasses.fields(Baseline)}
    assert set(baseline_file._CONVERTERS) == fields
    assert {*baseline_file._REQUIRED_KEYS, *baseline_file._LEFT_OUT} == fields
    assert set(LEFT_OUT) | {"documented"} == set(baseline_file._LEFT_OUT)


def test_the_file_ships_as_package_data():
    # Without this, an installed (non-editable) package could not import the module at all.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    assert "baselines.toml" in package_data["search.evaluation"]


# --- the loader's checks, on TOML text ------------------------------------------------------

VALID = """
[[baseline]]
id = "XX-TEST"
dataset = "mnist"
source = "a test"
kind = "dense"
units = [32, 16]
dropouts = [0.0, 0.5]
activation = "sigmoid"
reproduce_activation = "sigmoid"
optimizer = "sgd"
batch_size = 128
epochs = 5
documented = { test_accuracy = [0.8, 0.9], test_loss = 1 }
"""


def test_a_minimal_entry_loads_with_left_out_keys_as_not_stated():
    (b,) = loads(VALID)
    assert b.units == (32, 16) and b.dropouts == (0.0, 0.5)
    assert b.documented == {
        "test_accuracy": (0.8, 0.9),
        "test_loss": 1.0,
        "precision": None,
        "recall": None,
    }
    assert type(b.documented["test_loss"]) is float, "a TOML integer figure becomes a float"
    assert (b.patience, b.documented_epochs, b.n_params, b.assumptions, b.note) == (
        None,
        None,
        None,
        (),
        "",
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('dataset = "mnist"', 'dataset = "cifar"', r"XX-TEST: unknown dataset 'cifar'"),
        ("dropouts = [0.0, 0.5]", "dropouts = [0.0]", r"XX-TEST: units has 2 layers but dropouts"),
        ("epochs = 5", "epochs = 5\nepoch = 5", r"XX-TEST: unknown key 'epoch'; did you mean"),
        ("test_loss", "loss", r"XX-TEST: unknown documented figure 'loss'"),
        ('source = "a test"\n', "", r"XX-TEST: missing key 'source'"),
        ("units = [32, 16]", 'units = "32"', r"XX-TEST: units must be an array"),
        ("units = [32, 16]", "units = [32, 16.5]", r"XX-TEST: units\[1\] must be an integer"),
        ("epochs = 5", "epochs = true", r"XX-TEST: epochs must be an integer"),
        ("[0.8, 0.9]", "[0.8, 0.9, 1.0]", r"XX-TEST: documented.test_accuracy as a range"),
        ("[0.8, 0.9]", "[0.9, 0.8]", r"XX-TEST: documented test_accuracy range"),
        ("[0.8, 0.9]", "86.2", r"XX-TEST: documented test_accuracy 86.2 is not a fraction"),
        (
            'activation = "sigmoid"\nreproduce',
            'activation = "sigmod"\nreproduce',
            r"XX-TEST: unknown activation 'sigmod'",
        ),
        ('optimizer = "sgd"', 'optimizer = "adam-shallow"', r"XX-TEST: 'adam-shallow' goes"),
        ("dropouts = [0.0, 0.5]", "dropouts = [0.0, 1.5]", r"XX-TEST: dropout rates must lie"),
        ('kind = "dense"', 'kind = "reference"', r"XX-TEST: a reference figure has no layers"),
        ('activation = "sigmoid"\nreproduce', "reproduce", r"XX-TEST: activation not stated"),
    ],
)
def test_malformed_entry_is_refused_naming_the_entry_and_the_problem(old, new, message):
    assert old in VALID
    with pytest.raises(ValueError, match=message):
        loads(VALID.replace(old, new, 1), source="bad.toml")


def test_an_unstated_activation_with_its_assumption_loads():
    text = VALID.replace('activation = "sigmoid"\nreproduce', "reproduce").replace(
        "epochs = 5", 'epochs = 5\nassumptions = ["activation not stated: sigmoid assumed"]'
    )
    (b,) = loads(text)
    assert b.activation is None and b.reproduce_activation == "sigmoid"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VALID + VALID, r"^bad.toml: baseline XX-TEST: the id is used twice"),
        ("title = 'x'\n" + VALID, r"^bad.toml: unknown top-level key 'title'"),
        (VALID.replace("[[baseline]]", "[baseline]"), r"write each one as a \[\[baseline\]\]"),
        ("", r"^bad.toml: no entries"),
        (VALID + "epochs 5\n", r"^bad.toml: not valid TOML"),
        (VALID.replace('id = "XX-TEST"\n', ""), r"^bad.toml: baseline #1: missing key 'id'"),
    ],
)
def test_malformed_file_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        loads(text, source="bad.toml")


def test_a_parsed_document_goes_through_the_same_checks():
    (table,) = tomllib.loads(VALID)["baseline"]
    assert baseline_file.from_document({"baseline": [table]}) == loads(VALID)
    with pytest.raises(ValueError, match="XX-TEST: unknown key 'seed'"):
        baseline_file.from_document({"baseline": [{**table, "seed": 1}]})


# --- lookups -----------------------------------------------------------------------------------


def test_for_dataset_splits_the_file_by_dataset_in_file_order():
    for dataset in baselines.DATASETS:
        assert for_dataset(dataset) == tuple(b for b in BASELINES if b.dataset == dataset)
        assert for_dataset(dataset), f"no {dataset} entry"
    assert sum(len(for_dataset(d)) for d in baselines.DATASETS) == len(BASELINES)


def test_for_dataset_unknown_dataset_raises_value_error():
    with pytest.raises(ValueError, match="cifar"):
        for_dataset("cifar")


def test_get_returns_each_entry_and_hints_close_matches():
    assert all(get(b.id) is b for b in BASELINES)
    with pytest.raises(KeyError, match="did you mean FM-MLP128"):
        get("FM-MLP-128")
    with pytest.raises(KeyError, match="known ids"):
        get("nothing-like-it")


def test_reproducible_needs_a_network_and_a_stated_epoch_count():
    (b,) = loads(VALID)
    assert b.reproducible
    assert not dataclasses.replace(b, epochs=None).reproducible
    reference = dataclasses.replace(b, kind="reference", units=(), dropouts=())
    assert not reference.reproducible


def test_reproduction_set_holds_the_reproducible_entries_in_order():
    for dataset in baselines.DATASETS:
        expected = tuple(b for b in for_dataset(dataset) if b.reproducible)
        assert expected and reproduction_set(dataset) == expected


def test_select_for_reproduction_defaults_to_the_reproduction_set():
    assert select_for_reproduction("mnist") == reproduction_set("mnist")
    assert select_for_reproduction("fashion", ()) == reproduction_set("fashion")


def test_select_for_reproduction_keeps_the_file_order_of_chosen_ids():
    first, *_, last = reproduction_set("mnist")
    chosen = select_for_reproduction("mnist", [last.id, first.id, last.id])
    assert chosen == (first, last), "file order, no repeats"


def _unreproducible(kind_is_reference: bool) -> Baseline:
    return next(
        b for b in BASELINES if not b.reproducible and (b.kind == "reference") == kind_is_reference
    )


def test_select_for_reproduction_rejects_ids_it_cannot_train():
    # UsageError, not KeyError: the CLI turns it into one line and exit status 2.
    with pytest.raises(UsageError, match="no documented baseline 'MN-NOPE'"):
        select_for_reproduction("mnist", ["MN-NOPE"])
    fashion = reproduction_set("fashion")[0]
    with pytest.raises(UsageError, match=f"{fashion.id} is a fashion baseline, not mnist"):
        select_for_reproduction("mnist", [fashion.id])
    reference = _unreproducible(kind_is_reference=True)
    with pytest.raises(UsageError, match="reference figure"):
        select_for_reproduction(reference.dataset, [reference.id])
    no_epochs = _unreproducible(kind_is_reference=False)
    with pytest.raises(UsageError, match="epochs not stated"):
        select_for_reproduction(no_epochs.dataset, [no_epochs.id])


RANKING = """
[[baseline]]
id = "R-POINT"
dataset = "fashion"
source = "s"
kind = "reference"
units = []
dropouts = []
batch_size = 32
documented = { test_accuracy = 0.9 }

[[baseline]]
id = "R-RANGE"
dataset = "fashion"
source = "s"
kind = "reference"
units = []
dropouts = []
batch_size = 32
documented = { test_accuracy = [0.85, 0.95] }

[[baseline]]
id = "R-NONE"
dataset = "fashion"
source = "s"
kind = "reference"
units = []
dropouts = []
batch_size = 32

[[baseline]]
id = "R-OTHER"
dataset = "mnist"
source = "s"
kind = "reference"
units = []
dropouts = []
batch_size = 32
"""


@pytest.fixture
def ranking(monkeypatch):
    entries = loads(RANKING)
    monkeypatch.setattr(baselines, "BASELINES", entries)
    monkeypatch.setattr(baselines, "_BY_ID", {b.id: b for b in entries})
    return {b.id: b for b in entries}


def test_best_documented_accuracy_takes_the_upper_end_of_a_range(ranking):
    assert ranking["R-RANGE"].best_documented_accuracy() == 0.95
    assert ranking["R-POINT"].best_documented_accuracy() == 0.9
    assert ranking["R-NONE"].best_documented_accuracy() is None


def test_best_documented_picks_the_highest_accuracy_by_a_range_upper_end(ranking):
    assert best_documented("fashion").id == "R-RANGE", "0.95 (upper end) beats 0.9"
    with pytest.raises(ValueError, match="no documented test accuracy"):
        best_documented("mnist")


def test_best_documented_on_the_file_is_the_maximum():
    for dataset in baselines.DATASETS:
        stated = [b.best_documented_accuracy() for b in for_dataset(dataset)]
        best = max(a for a in stated if a is not None)
        assert best_documented(dataset).best_documented_accuracy() == best


def test_baseline_is_hashable_and_frozen():
    b = BASELINES[0]
    assert {b: 1}[b] == 1, "entries can key a dict despite the documented-figures dict"
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.epochs = 1  # type: ignore[misc]


def test_import_does_not_load_keras():
    code = "import sys, search.evaluation.baselines; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "importing the registry must stay cheap"


# --- parameter counts and the built networks -------------------------------------------------

REPRODUCIBLE = [b for b in BASELINES if b.reproducible]

# The sources' "Keras defaults" (and the shallow study's Adam), as the built model must have them.
OPTIMIZER_SETTINGS = {
    "adam-shallow": (keras.optimizers.Adam, {"learning_rate": 1e-4, "epsilon": 1e-4}),
    "adam": (keras.optimizers.Adam, {"learning_rate": 1e-3}),
    "rmsprop": (keras.optimizers.RMSprop, {"learning_rate": 1e-3}),
    "sgd": (keras.optimizers.SGD, {"learning_rate": 0.01, "momentum": 0.0}),
}


def test_reproducible_entries_cover_both_network_kinds():
    assert {b.kind for b in REPRODUCIBLE} == {"shallow", "dense"}


@pytest.fixture
def fresh_keras_session():
    yield
    keras.backend.clear_session()


@pytest.mark.usefixtures("fresh_keras_session")
@pytest.mark.parametrize("b", REPRODUCIBLE, ids=[b.id for b in REPRODUCIBLE])
def test_build_matches_the_entry(b):
    model = b.build()
    assert model.count_params() == b.param_count(), "param_count's arithmetic is the model's"
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    activations = [layer.activation.__name__ for layer in dense]
    assert activations == [b.reproduce_activation] * len(b.units) + ["softmax"]
    assert [layer.units for layer in dense[:-1]] == list(b.units)
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == pytest.approx(list(b.dropouts))
    optimizer_class, settings = OPTIMIZER_SETTINGS[b.optimizer]
    assert type(model.optimizer) is optimizer_class
    for name, value in settings.items():
        assert float(getattr(model.optimizer, name)) == pytest.approx(value, rel=1e-6), name
    assert model.loss == "sparse_categorical_crossentropy"


def test_param_count_of_a_reference_is_its_documented_count():
    for b in BASELINES:
        if b.kind == "reference":
            assert b.param_count() == b.n_params, b.id


def test_param_count_spot_check_against_the_source_document():
    # baselines.md: the shallow layer with n = 784, L = 1 has "6,148,138 exactly".
    shallow = next(b for b in BASELINES if b.kind == "shallow" and len(b.units) == 1)
    assert dataclasses.replace(shallow, units=(784,)).param_count() == 6_148_138


def test_build_shallow_linear_layer_and_the_study_adam(fresh_keras_session):
    # The 392-wide rows are built above; a 7-wide one checks "linear" becomes Keras' linear.
    row = next(b for b in REPRODUCIBLE if b.kind == "shallow" and b.activation == "linear")
    model = dataclasses.replace(row, units=(7,)).build()
    assert model.layers[1].activation.__name__ == "linear", "'none' builds a linear layer"
    assert abs(float(model.optimizer.epsilon) - 1e-4) < 1e-12, "the study's Adam"
    assert abs(float(model.optimizer.learning_rate) - 1e-4) < 1e-9


def test_build_reference_raises_value_error():
    reference = _unreproducible(kind_is_reference=True)
    with pytest.raises(ValueError, match="reference figure"):
        reference.build()
