from __future__ import annotations

import copy

import pytest
import yaml

from lfxbench.baselines import Baseline
from lfxbench.errors import SuiteError
from lfxbench.suite import validate_suite

VALID = {
    "name": "unit",
    "datasets": [{"name": "mnist_5k", "params": {"n_train": 100, "n_test": 10}}],
    "models": [
        {"id": "ae", "name": "mnist_autoencoder", "dataset": "mnist_5k", "recipe": {"epochs": 1}}
    ],
    "methods": ["saliency", {"name": "integrated_gradients", "params": {"n_steps": 4}}],
    "metrics": [{"name": "latent_shift", "params": {"baseline": "blur"}}],
    "seeds": [0, 1, 2],
}


def problems_of(raw) -> dict[str, str]:
    with pytest.raises(SuiteError) as error:
        validate_suite(raw, source="unit.yaml")
    assert all(line.startswith("unit.yaml: ") for line in str(error.value).splitlines())
    return dict(error.value.problems)


def edited(**changes):
    raw = copy.deepcopy(VALID)
    raw.update(changes)
    return raw


def test_valid_suite_is_typed_and_expands_into_cells():
    suite = validate_suite(VALID)
    assert suite.device == "auto" and suite.methods[0].id == "saliency"
    assert suite.methods[1].params == {
        "n_steps": 4,
        "method": "gausslegendre",
        "internal_batch_size": None,
    }
    assert isinstance(suite.metrics[0].params["baseline"], Baseline)
    assert suite.metrics[0].params["baseline"].kind == "blur"
    cells = suite.cells()
    assert len(cells) == 1 * 2 * 1 * 3
    assert len({cell.key for cell in cells}) == len(cells)


def test_cache_keys_follow_what_changes():
    base = validate_suite(VALID).cells()[0]
    more_steps = edited(
        methods=["saliency", {"name": "integrated_gradients", "params": {"n_steps": 5}}]
    )
    # cells run model -> seed -> method -> metric: [1] is integrated_gradients, seed 0
    other_method = validate_suite(more_steps).cells()[1]
    assert other_method.model_key == base.model_key
    assert other_method.attribution_key != validate_suite(VALID).cells()[1].attribution_key
    other_metric = validate_suite(edited(metrics=["latent_shift"])).cells()[0]
    assert other_metric.attribution_key == base.attribution_key
    assert other_metric.key != base.key
    longer = validate_suite(edited(models=[{**VALID["models"][0], "recipe": {"epochs": 2}}]))
    assert longer.cells()[0].model_key != base.model_key
    # A thread count re-times the attributions (their cached seconds depend on it) but
    # trains nothing anew.
    one_thread = validate_suite(edited(threads=1)).cells()[0]
    assert one_thread.model_key == base.model_key
    assert one_thread.attribution_key != base.attribution_key


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"device": "gpu"}, "device", "pattern"),
        ({"seeds": []}, "seeds", "at least 1"),
        ({"seeds": [1, 1]}, "seeds", "distinct"),
        ({"threads": 0}, "threads", "greater than or equal to 1"),
        ({"colour": "red"}, "colour", "allowed: name, description, device"),
        ({"methods": ["salency"]}, "methods[0].name", "did you mean 'saliency'"),
        (
            {"methods": [{"name": "saliency", "params": {"absolut": True}}]},
            "methods[0].params.absolut",
            "allowed: absolute",
        ),
        (
            {"metrics": [{"name": "latent_shift", "params": {"fractions": [0.5, 1.5]}}]},
            "metrics[0].params.fractions[1]",
            "less than or equal to 1",
        ),
        (
            {"metrics": [{"name": "latent_shift", "params": {"baseline": "grey"}}]},
            "metrics[0].params.baseline.kind",
            "'black', 'blur' or 'mean'",
        ),
        (
            {"models": [{"name": "mnist_autoencoder", "dataset": "cifar"}]},
            "models[0].dataset",
            "allowed: mnist_5k",
        ),
        (
            {
                "models": [
                    {
                        "name": "mnist_autoencoder",
                        "dataset": "mnist_5k",
                        "recipe": {"objective": "colouring"},
                    }
                ]
            },
            "models[0].recipe.objective",
            "allowed: reconstruction, denoising, inpainting",
        ),
        (
            {
                "models": [
                    {"name": "mnist_autoencoder", "dataset": "mnist_5k", "recipe": {"epoch": 3}}
                ]
            },
            "models[0].recipe.epoch",
            "allowed: objective, epochs",
        ),
        ({"methods": ["saliency", "saliency"]}, "methods[1].id", "duplicate id"),
        (
            {"datasets": [{"name": "mnist_5k", "params": {"n_train": "many"}}]},
            "datasets[0].params.n_train",
            "valid integer",
        ),
    ],
)
def test_every_error_names_the_field(change, field, fragment):
    problems = problems_of(edited(**change))
    assert field in problems, problems
    assert fragment in problems[field]


def test_all_problems_reported_at_once():
    problems = problems_of(edited(methods=["salency", "deeplif"]))
    assert {"methods[0].name", "methods[1].name"} <= set(problems)


def test_training_problems_are_reported_with_the_others():
    untrained = {**VALID["models"][0], "train": False}  # and no checkpoint to load
    problems = problems_of(edited(methods=["salency"], models=[untrained]))
    assert "methods[0].name" in problems
    assert "needs a `checkpoint:`" in problems["models[0]"]


def test_top_level_must_be_a_mapping():
    assert "(top level)" in problems_of(["not", "a", "suite"])


def test_shipped_suites_validate():
    from pathlib import Path

    from lfxbench.suite import load_suite

    suites = sorted((Path(__file__).parents[1] / "suites").glob("*.yaml"))
    assert suites
    for path in suites:
        assert load_suite(path).cells()


def test_yaml_syntax_error_is_reported(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    from lfxbench.suite import load_suite

    with pytest.raises(SuiteError, match=r"broken.yaml: \(yaml\)"):
        load_suite(path)
    assert yaml  # the loader is PyYAML's safe loader


def test_pairwise_metrics_expand_into_unordered_pairs():
    raw = edited(
        models=[
            {"id": "a", "name": "mnist_autoencoder", "dataset": "mnist_5k"},
            {
                "id": "b",
                "name": "mnist_autoencoder",
                "dataset": "mnist_5k",
                "recipe": {"objective": "denoising"},
            },
            {"id": "c", "name": "mnist_classifier", "dataset": "mnist_5k"},
        ],
        methods=["saliency", "deeplift", "deep_knn"],
        metrics=[
            {"name": "pearson_agreement", "id": "models", "params": {"across": "models"}},
            {"name": "pearson_agreement", "id": "methods", "params": {"across": "methods"}},
        ],
        seeds=[0],
    )
    suite = validate_suite(raw)
    assert suite.cells() == []  # pairwise metrics only
    pairs = [
        (
            p.first.metric.id,
            p.first.model.id,
            p.second.model.id,
            p.first.method.id,
            p.second.method.id,
        )
        for p in suite.pair_cells()
    ]
    across_models = [p for p in pairs if p[0] == "models"]
    # 3 methods x 3 unordered pairs of models, never a model with itself
    assert len(across_models) == 9
    assert {(a, b) for _, a, b, _, _ in across_models} == {("a", "b"), ("a", "c"), ("b", "c")}
    across_methods = [p for p in pairs if p[0] == "methods"]
    # per model, only methods of one kind are compared: saliency vs deeplift
    assert {(m1, m2) for *_, m1, m2 in across_methods} == {("saliency", "deeplift")}
    assert len(across_methods) == 3
    assert len({p.key for p in suite.pair_cells()}) == len(pairs)


def test_a_metric_can_be_restricted_to_some_models():
    second = {**VALID["models"][0], "id": "ae2", "recipe": {"epochs": 2}}
    raw = edited(
        models=[*VALID["models"], second],
        metrics=[
            "latent_shift",
            {
                "name": "latent_shift",
                "id": "only_ae2",
                "params": {"distance": "euclidean"},
                "models": ["ae2"],
            },
        ],
    )
    cells = validate_suite(raw).cells()
    scored = {(cell.metric.id, cell.model.id) for cell in cells}
    assert scored == {("latent_shift", "ae"), ("latent_shift", "ae2"), ("only_ae2", "ae2")}
    # The restriction is not part of what a cell computes: its key does not move.
    unrestricted = edited(models=[*VALID["models"], second], metrics=["latent_shift"])
    keys = {cell.key for cell in validate_suite(unrestricted).cells()}
    assert {c.key for c in cells if c.metric.id == "latent_shift"} == keys


def test_a_metric_restricted_to_an_unknown_model_is_refused():
    problems = problems_of(edited(metrics=[{"name": "latent_shift", "models": ["ea"]}]))
    assert "'ea' is not a model id" in problems["metrics[0].models"]
    assert "allowed: ae" in problems["metrics[0].models"]


def test_entries_that_differ_only_by_id_are_refused():
    # They would share cell keys, so one entry's results would be reported twice.
    raw = edited(methods=["saliency", {"name": "saliency", "id": "again", "params": {}}])
    problems = problems_of(raw)
    assert "computes the same as methods[0] ('saliency')" in problems["methods[1]"]
    explicit_default = {"name": "saliency", "id": "abs", "params": {"absolute": True}}
    assert "methods[1]" in problems_of(edited(methods=["saliency", explicit_default]))
