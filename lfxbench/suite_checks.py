"""The checks of a suite that its schema cannot state: registered names and their
parameters, unique ids and configurations, names safe to use as file names, and metrics
that need what a dataset lacks. Each returns (or appends) ``(field path, message)``.
"""

from __future__ import annotations

import re
import typing
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from lfxbench.errors import UnknownNameError
from lfxbench.params import validate_params
from lfxbench.registry import DATASETS, METRICS, MODELS, Registry
from lfxbench.storage import stable_hash

if TYPE_CHECKING:
    from lfxbench.suite import Entry, Suite


def allowed_fields(root: type[BaseModel], location: tuple[Any, ...]) -> list[str] | None:
    """The fields of the schema object (from ``root``) that holds the field at ``location``."""
    model: type[BaseModel] = root
    for part in location[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return [name for name in model.model_fields if name not in ("source", "overrides")]


def check_entry(
    problems: list[tuple[str, str]],
    field: str,
    entry: Entry,
    registry: Registry[Any],
    skip: tuple[str, ...],
) -> Entry:
    try:
        target = registry.get(entry.name)
    except UnknownNameError as error:
        problems.append((f"{field}.name", str(error)))
        return entry
    params, param_problems = validate_params(target, entry.params, skip=skip)
    problems.extend((f"{field}.params.{name}", message) for name, message in param_problems)
    if param_problems:
        return entry
    return entry.model_copy(update={"params": params})


def check_unique_ids(problems: list[tuple[str, str]], field: str, entries: list[Entry]) -> None:
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.id in seen:
            problems.append(
                (f"{field}[{index}].id", f"duplicate id {entry.id!r}; give each a distinct `id:`")
            )
        seen.add(entry.id)


def check_distinct_configs(
    problems: list[tuple[str, str]], field: str, entries: list[Entry]
) -> None:
    """Two entries that differ only by id would share their cell keys (and results)."""
    first_of: dict[str, int] = {}
    for index, entry in enumerate(entries):
        config = stable_hash(entry.config())
        if config in first_of:
            problems.append(
                (
                    f"{field}[{index}]",
                    f"computes the same as {field}[{first_of[config]}] "
                    f"({entries[first_of[config]].id!r}): change its params or remove it",
                )
            )
        first_of.setdefault(config, index)


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
SAFE_NAME_RULE = (
    "letters, digits and _ . + - only, starting with a letter or digit, at most 100 "
    "characters (it names files and folders of the run)"
)


def unsafe_names(suite: Suite) -> list[tuple[str, str]]:
    """Every name the run uses as a file or folder name: the suite's, each entry's id and
    each trend parameter. A ``/`` or ``..`` would write outside the run directory."""
    named: list[tuple[str, str]] = [("name", suite.name)]
    for field in ("datasets", "models", "methods", "metrics"):
        for index, entry in enumerate(getattr(suite, field)):
            # An id defaults to the registered name: say which one to set.
            where = "id" if entry.id != entry.name else "name"
            named.append((f"{field}[{index}].{where}", entry.id))
    named += [(f"trends[{index}]", name) for index, name in enumerate(suite.trends)]
    return [
        (
            field,
            f"{value!r} cannot be used: {SAFE_NAME_RULE}"
            + ("; give the entry an `id:`" if field.endswith(".name") else ""),
        )
        for field, value in named
        if not SAFE_NAME.fullmatch(value)
    ]


def masks_missing(suite: Suite) -> list[tuple[str, str]]:
    """Metrics that need ground-truth object masks, scoring a model whose dataset has none:
    found now rather than after the model has trained."""
    with_masks = sorted(
        entry.name for entry in DATASETS if getattr(entry.target, "provides_object_masks", False)
    )
    problems = []
    for index, metric in enumerate(suite.metrics):
        if not getattr(METRICS.get(metric.name), "needs_object_masks", False):
            continue
        for model in suite.models:
            dataset = suite.dataset(model.dataset)
            if metric.scores(model) and not getattr(
                DATASETS.get(dataset.name), "provides_object_masks", False
            ):
                problems.append(
                    (
                        f"metrics[{index}]",
                        f"{metric.name!r} needs ground-truth object masks, and dataset "
                        f"{dataset.name!r} (model {model.id!r}) has none; datasets with masks: "
                        f"{', '.join(with_masks) or '(none)'}. Restrict the metric with "
                        "`models: [ids of models on such a dataset]`",
                    )
                )
    return problems


def retraining_impossible(suite: Suite) -> list[tuple[str, str]]:
    """Metrics that retrain the model (ROAR) on a model without a training objective."""
    problems = []
    for index, metric in enumerate(suite.metrics):
        if not getattr(METRICS.get(metric.name), "retrains_models", False):
            continue
        for model in suite.models:
            if metric.scores(model) and not MODELS.get(model.name).has_loss:
                problems.append(
                    (
                        f"metrics[{index}]",
                        f"{metric.name!r} retrains its models, and {model.id!r} "
                        f"({model.name}) has no training objective; restrict the metric with "
                        "`models: [ids of trainable models]`",
                    )
                )
    return problems


def corpus_not_training_set(suite: Suite) -> list[tuple[str, str]]:
    """Metrics that retrain without some corpus examples (``lds``, ``retrain_without_top``)
    where the corpus is not the whole training set, or where the loss they read is not one
    of a single example: removing a corpus example is then not removing a training one."""
    problems = []
    for index, metric in enumerate(suite.metrics):
        if not getattr(METRICS.get(metric.name), "needs_whole_training_set", False):
            continue
        for model_index, model in enumerate(suite.models):
            if not metric.scores(model):
                continue
            zoo = MODELS.get(model.name)
            protocol = suite.examples_of(model)
            if protocol.n_corpus is not None:
                where = f"models[{model_index}].examples" if model.examples else "examples"
                problems.append(
                    (
                        f"{where}.n_corpus",
                        f"{metric.name!r} (metrics[{index}]) retrains model {model.id!r} "
                        "without some corpus examples, which says what those training "
                        "examples did only when the corpus is the whole training set: set "
                        f"n_corpus: null (not {protocol.n_corpus}), and for a smaller corpus "
                        "make the training set itself smaller (the dataset's n_train)",
                    )
                )
            objective = model.recipe.objective or zoo.objectives[0]
            uses_loss = metric.params.get("output", "loss") == "loss"
            if uses_loss and objective in zoo.batch_dependent_objectives:
                problems.append(
                    (
                        f"metrics[{index}]",
                        f"{metric.name!r} reads the per-example loss, and objective "
                        f"{objective!r} of {model.id!r} compares the examples of "
                        "a batch (no loss of one example); restrict the metric with `models:`",
                    )
                )
    return problems
