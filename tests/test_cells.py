"""Every key a run stores under (cells.py): unique per configuration, and holding the data."""

from __future__ import annotations

import itertools

from lfxbench.suite import validate_suite

SUITE = {
    "name": "keys",
    "datasets": [{"name": "mnist_5k", "params": {"n_train": 100, "n_test": 10}}],
    "models": [
        {"id": "ae", "name": "mnist_autoencoder", "dataset": "mnist_5k", "recipe": {"epochs": 1}},
        {
            "id": "wide",
            "name": "mnist_autoencoder",
            "dataset": "mnist_5k",
            "params": {"latent_dim": 8},
        },
    ],
    "methods": ["saliency", "random"],
    "metrics": ["latent_shift", {"name": "pearson_agreement", "params": {"across": "models"}}],
    "seeds": [0, 1],
}


def stored_keys(suite, data: str) -> dict[str, str]:
    """Every stored key of every cell and pair of ``suite`` on data ``data``, by what it is."""
    keys = {}
    for cell in suite.cells():
        name = f"{cell.model.id}/{cell.method.id}/{cell.metric.id}/{cell.seed}"
        keys[f"model {name}"] = cell.model_cache_key(data)
        keys[f"attribution {name}"] = cell.attribution_cache_key(data)
        keys[f"retrained {name}"] = cell.retrained_model_key(data, "roar-10")
        keys[f"finished {name}"] = cell.finished_key(data)
    for pair in suite.pair_cells():
        name = f"{pair.first.model.id} vs {pair.second.model.id}/{pair.first.seed}"
        keys[f"pair {name}"] = pair.finished_key(data, data)
        keys[f"pair, other second data {name}"] = pair.finished_key(data, data + "'")
    return keys


def test_changing_the_data_changes_every_key_that_depends_on_it():
    suite = validate_suite(SUITE)
    assert suite.cells() and suite.pair_cells()
    on_one, on_other = stored_keys(suite, "fingerprint-a"), stored_keys(suite, "fingerprint-b")
    assert on_one.keys() == on_other.keys()
    assert not set(on_one.values()) & set(on_other.values())


def test_stored_keys_are_distinct_across_cells_and_kinds():
    keys = stored_keys(validate_suite(SUITE), "fingerprint-a")
    by_kind = itertools.groupby(sorted(keys), key=lambda name: name.split(" ")[0])
    for kind, names in by_kind:
        values = [keys[name] for name in names]
        shared = {"model": 4, "attribution": 8}.get(kind, len(values))  # per model/explanation
        assert len(set(values)) == shared, kind
    cell = validate_suite(SUITE).cells()[0]
    assert cell.model_cache_key("d") != cell.attribution_cache_key("d") != cell.finished_key("d")
    assert cell.retrained_model_key("d", "a") != cell.retrained_model_key("d", "b")
