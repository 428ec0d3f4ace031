"""The search space: parameter names, ranges and the FixedTrial round trip."""

import dataclasses

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from models.params import ModelParams
from search.study.config import SearchSpace
from search.study.seeds import trial_seed
from search.study.space import params_from_stored, sample_params, to_trial_params
from search.study.strategy import make_sampler
from search.study.studyfile import PRESETS

SPACE = SearchSpace()


def test_sample_params_uses_the_contract_names():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        params = sample_params(trial, SPACE)
        per_layer = {f"{p}_l{i}" for i in range(params.n_layers) for p in ("n_units", "dropout")}
        expected = {"n_layers", "activation", "learning_rate", "optimizer", "batch_size"}
        expected |= {"batch_norm", "weight_decay", "standardize", "lr_schedule", "label_smoothing"}
        assert set(trial.params) == expected | per_layer, "exactly the documented names"
        study.tell(trial, 0.0)


def test_sample_params_distributions_are_the_documented_version_2_space():
    trial = optuna.create_study().ask()
    sample_params(trial, SPACE)
    d = trial.distributions
    assert d["n_layers"] == IntDistribution(1, 3)
    assert d["n_units_l0"] == IntDistribution(32, 2048, log=True), "units on a log scale"
    assert d["dropout_l0"] == FloatDistribution(0.0, 0.6)
    assert d["learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert d["activation"] == CategoricalDistribution(
        ("relu", "gelu", "swish", "elu", "leaky_relu", "tanh")
    )
    assert d["optimizer"] == CategoricalDistribution(("adam", "rmsprop", "sgd"))
    assert d["batch_size"] == CategoricalDistribution((64, 128, 256, 512))
    assert d["batch_norm"] == CategoricalDistribution((False, True))
    assert d["weight_decay"] == FloatDistribution(1e-6, 1e-1, log=True)
    assert d["standardize"] == CategoricalDistribution((False, True))
    assert d["lr_schedule"] == CategoricalDistribution(("constant", "cosine"))
    assert d["label_smoothing"] == FloatDistribution(0.0, 0.2)


def test_params_from_stored_round_trips():
    params = ModelParams(
        units=(512, 64),
        dropouts=(0.2, 0.5),
        activation="tanh",
        learning_rate=3e-3,
        optimizer="sgd",
        batch_size=64,
        batch_norm=True,
        weight_decay=1e-4,
        standardize=True,
        lr_schedule="cosine",
        label_smoothing=0.1,
    )
    assert params_from_stored(to_trial_params(params), SPACE) == params


def test_params_from_stored_warns_on_values_outside_the_space():
    # A stored trial may lie outside today's ranges (a wider unit count) and must still rebuild.
    stored = to_trial_params(ModelParams(units=(4096,), dropouts=(0.1,), weight_decay=1e-4))
    with pytest.warns(UserWarning, match="out of the range"):
        assert params_from_stored(stored, SPACE).units == (4096,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"units": (), "dropouts": ()},
        {"units": (8, 8), "dropouts": (0.1,)},
        {"units": (0,), "dropouts": (0.1,)},
        {"units": (8,), "dropouts": (1.0,)},
        {"units": (8,), "dropouts": (0.1,), "activation": "softplus"},
        {"units": (8,), "dropouts": (0.1,), "weight_decay": -1e-4},
        {"units": (8,), "dropouts": (0.1,), "lr_schedule": "step"},
        {"units": (8,), "dropouts": (0.1,), "label_smoothing": 1.0},
        {"units": (8,), "dropouts": (0.1,), "optimizer": "adagrad"},
        {"units": (8,), "dropouts": (0.1,), "learning_rate": -1.0},
    ],
)
def test_model_params_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        ModelParams(**kwargs)


def _draws(study: optuna.Study, n: int) -> list[dict]:
    draws = []
    for _ in range(n):
        trial = study.ask()
        sample_params(trial, SPACE)
        draws.append(trial.params)
        study.tell(trial, 0.5)
    return draws


def test_workers_sharing_a_study_never_draw_the_same_start_up_configurations():
    # Two machines start on an idle study with the same --seed: each has its own sampler.
    config = PRESETS["fashion"]
    study = optuna.create_study(direction="maximize")
    first = optuna.load_study(
        study_name=study.study_name, storage=study._storage, sampler=make_sampler(config)
    )
    second = optuna.load_study(
        study_name=study.study_name, storage=study._storage, sampler=make_sampler(config)
    )
    drawn = []
    for _ in range(4):  # alternating, as two workers would
        drawn += _draws(first, 1) + _draws(second, 1)
    keys = [tuple(sorted(d.items())) for d in drawn]
    assert len(set(keys)) == len(keys), "no two trials got the same configuration"


def test_a_single_worker_with_a_seed_is_reproducible():
    config = PRESETS["fashion"]
    runs = [
        _draws(optuna.create_study(direction="maximize", sampler=make_sampler(config)), 12)
        for _ in range(2)
    ]
    assert runs[0] == runs[1], "same seed, same draws, TPE included (10 start-up + 2)"


def test_studies_with_consecutive_seeds_are_not_shifted_copies_of_each_other():
    # With `seed + trial number`, the study seeded 2 drew exactly what the study seeded 1 drew
    # one trial later: "independent" repeats shared their configurations.
    one, two = (
        _draws(
            optuna.create_study(
                direction="maximize",
                sampler=make_sampler(dataclasses.replace(PRESETS["fashion"], seed=seed)),
            ),
            6,
        )
        for seed in (1, 2)
    )
    keys = {tuple(sorted(d.items())) for d in one}
    assert not keys & {tuple(sorted(d.items())) for d in two}, "no configuration in both"


def test_trial_seeds_differ_across_trials_and_studies_and_repeat_exactly():
    seeds = {(s, n): trial_seed(s, n) for s in range(4) for n in range(50)}
    assert len(set(seeds.values())) == len(seeds), "one seed per (study seed, trial)"
    assert trial_seed(1, 7) == seeds[(1, 7)]
    assert all(0 <= value < 2**31 for value in seeds.values())
