"""Suites: YAML files validated into typed objects and expanded into cells.

Every problem is reported with the file, the field path and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lfxbench.baselines import Baseline
from lfxbench.cells import Cell, PairCell, expand_cells, expand_pairs
from lfxbench.datasets.base import Resplit
from lfxbench.errors import LfxbenchError, SuiteError
from lfxbench.recipe import Recipe
from lfxbench.registry import DATASETS, METHODS, METRICS, MODELS, load_plugin
from lfxbench.report.tolerances import Tolerances
from lfxbench.storage import file_sha256
from lfxbench.suite_checks import (
    allowed_fields,
    check_distinct_configs,
    check_entry,
    check_unique_ids,
    corpus_not_training_set,
    masks_missing,
    retraining_impossible,
    unsafe_names,
)
from lfxbench.suite_yaml import check_document, field_path, read_suite_document


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(_Strict):
    """A registered thing by name, with parameters; a bare string is shorthand for the name."""

    name: str
    id: str = ""
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_id(self) -> Entry:
        if not self.id:
            object.__setattr__(self, "id", self.name)
        return self

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params}


class DatasetEntry(Entry):
    """A dataset of the catalogue; ``split`` re-draws its train and test sets."""

    split: Resplit | None = None

    def config(self) -> dict[str, Any]:
        config = super().config()
        if self.split is not None:
            config["split"] = self.split.model_dump()
        return config


class ExampleProtocol(_Strict):
    """Which examples example-importance methods see: balanced subsets (labels pick them).

    ``null`` takes every example of the split.
    """

    n_corpus: int | None = Field(None, ge=1, description="training examples scored")
    n_test: int | None = Field(None, ge=1, description="test examples explained")
    subset_seed: int = 0


class ModelEntry(Entry):
    """A model of the zoo trained on one of the suite's datasets with a recipe.

    ``examples`` replaces the suite's example protocol for this model (e.g. every test
    example of a split too small to balance).
    """

    dataset: str
    recipe: Recipe = Field(default_factory=Recipe)
    baseline: Baseline = Field(default_factory=Baseline)
    examples: ExampleProtocol | None = None
    checkpoint: Path | None = Field(
        None,
        description="weights to explain (relative to the suite): a state dict of the zoo "
        "architecture, or for `scripted_encoder` a TorchScript / torch.export archive",
    )
    train: bool = Field(True, description="false: explain the checkpoint as it is")

    def config(self) -> dict[str, Any]:
        config = {
            **super().config(),
            "dataset": self.dataset,
            "recipe": self.recipe.model_dump(),
            "baseline": self.baseline.model_dump(),
        }
        if self.checkpoint is not None:  # by content: the same file anywhere is one model
            config |= {"checkpoint": file_sha256(self.checkpoint), "train": self.train}
        return config


class MetricEntry(Entry):
    """A metric; ``models`` restricts it to some model ids (e.g. localisation to the models
    of a dataset with ground-truth masks). Not part of the cell keys."""

    models: list[str] | None = Field(None, min_length=1)

    def scores(self, model: ModelEntry) -> bool:
        return self.models is None or model.id in self.models


class Suite(_Strict):
    """A benchmark: datasets x models x methods x metrics x seeds."""

    name: str
    description: str = ""
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    seeds: list[Annotated[int, Field(ge=0, lt=2**63)]] = Field(
        default_factory=lambda: [0], min_length=1
    )
    batch_size: int = Field(
        256, ge=1, le=2**20, description="examples per attribution / metric batch"
    )
    executor: Literal["local", "ray"] = Field("local", description="where cells run")
    trends: list[str] = Field(
        default_factory=list,
        description="model parameters (e.g. beta) whose rank correlation with every metric "
        "the leaderboard reports",
    )
    train_side_by_side: bool = Field(
        False, description="train the seeds of each model together in one stacked model"
    )
    deterministic: bool = Field(
        True, description="torch's deterministic algorithms where it has them"
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="CPU threads torch may use (default: torch's choice); 1 steadies the "
        "timings on a shared machine",
    )
    plugins: list[str] = Field(default_factory=list)
    datasets: list[DatasetEntry] = Field(min_length=1)
    models: list[ModelEntry] = Field(min_length=1)
    methods: list[Entry] = Field(min_length=1)
    metrics: list[MetricEntry] = Field(min_length=1)
    examples: ExampleProtocol = Field(default_factory=ExampleProtocol)
    compare: Tolerances = Field(default_factory=Tolerances)
    source: str = Field("<suite>", exclude=True)
    # ``--set`` overrides applied to the file (a Ray worker reloads the suite with them).
    overrides: tuple[str, ...] = Field((), exclude=True)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        return seeds

    def cells(self) -> list[Cell]:
        """Every (model, method, metric, seed) the suite asks for (``cells.expand_cells``)."""
        return expand_cells(self)

    def pair_cells(self) -> list[PairCell]:
        """Every pair of explanations a pairwise metric compares (``cells.expand_pairs``)."""
        return expand_pairs(self)

    def dataset(self, dataset_id: str) -> DatasetEntry:
        return next(entry for entry in self.datasets if entry.id == dataset_id)

    def examples_of(self, model: ModelEntry) -> ExampleProtocol:
        """The example protocol of a model: its own, else the suite's."""
        return model.examples or self.examples

    def model_config_of(self, model: ModelEntry) -> dict[str, Any]:
        """The model entry's full configuration, its dataset's included."""
        return {**model.config(), "dataset": self.dataset(model.dataset).config()}


def _resolved(path: Path, base_dir: Path | None) -> Path:
    return path if path.is_absolute() or base_dir is None else (base_dir / path).resolve()


def validate_suite(raw: Any, source: str = "<suite>", base_dir: Path | None = None) -> Suite:
    """Validate a parsed YAML document into a Suite, or raise SuiteError listing every problem."""
    if not isinstance(raw, dict):
        raise SuiteError(
            source,
            [
                (
                    "(top level)",
                    "a suite is a mapping with keys: "
                    + ", ".join(f for f in Suite.model_fields if f not in ("source", "overrides")),
                )
            ],
        )
    check_document(raw, source)
    # `x-...` keys hold YAML anchors shared by entries (as in docker-compose): not fields.
    raw = {key: value for key, value in raw.items() if not str(key).startswith("x-")}
    try:
        suite = Suite.model_validate({**raw, "source": source})
    except ValidationError as error:
        problems = []
        for item in error.errors():
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                allowed = allowed_fields(Suite, item["loc"])
                message = "unknown field" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
            problems.append((field_path(item["loc"]), message))
        raise SuiteError(source, problems) from None

    problems: list[tuple[str, str]] = unsafe_names(suite)
    if problems:
        raise SuiteError(source, problems)
    for index, plugin in enumerate(suite.plugins):
        try:
            load_plugin(plugin, base_dir)
        except LfxbenchError as error:
            problems.append((f"plugins[{index}]", str(error)))
    if problems:
        raise SuiteError(source, problems)

    datasets = [
        check_entry(problems, f"datasets[{i}]", entry, DATASETS, ("data_dir",))
        for i, entry in enumerate(suite.datasets)
    ]
    methods = [
        check_entry(problems, f"methods[{i}]", entry, METHODS, ("encoder",))
        for i, entry in enumerate(suite.methods)
    ]
    metrics = [
        check_entry(problems, f"metrics[{i}]", entry, METRICS, ())
        for i, entry in enumerate(suite.metrics)
    ]
    model_ids = [entry.id for entry in suite.models]
    for index, entry in enumerate(suite.metrics):
        for unknown in sorted(set(entry.models or ()) - set(model_ids)):
            problems.append(
                (
                    f"metrics[{index}].models",
                    f"{unknown!r} is not a model id of this suite; allowed: {', '.join(model_ids)}",
                )
            )
    models = []
    dataset_ids = [entry.id for entry in suite.datasets]
    for index, entry in enumerate(suite.models):
        field = f"models[{index}]"
        if entry.checkpoint is not None:
            entry = entry.model_copy(update={"checkpoint": _resolved(entry.checkpoint, base_dir)})
            if not entry.checkpoint.is_file():
                problems.append((f"{field}.checkpoint", f"{str(entry.checkpoint)!r} is not a file"))
        checked = check_entry(problems, field, entry, MODELS, ())
        if entry.dataset not in dataset_ids:
            problems.append(
                (
                    f"{field}.dataset",
                    f"{entry.dataset!r} is not a dataset id of this "
                    f"suite; allowed: {', '.join(dataset_ids)}",
                )
            )
        if entry.name in MODELS:
            zoo = MODELS.get(entry.name)
            if entry.train and not zoo.has_loss:
                problems.append(
                    (
                        f"{field}.train",
                        f"{entry.name!r} has no training objective: set `train: false`",
                    )
                )
            elif not entry.train and entry.checkpoint is None and not zoo.random_weights_allowed:
                problems.append((field, "train: false needs a `checkpoint:` to load"))
            objectives = zoo.objectives
            if entry.recipe.objective is None:
                recipe = entry.recipe.model_copy(update={"objective": objectives[0]})
                checked = checked.model_copy(update={"recipe": recipe})
            elif entry.recipe.objective not in objectives:
                problems.append(
                    (
                        f"{field}.recipe.objective",
                        f"{entry.recipe.objective!r} is not an objective of "
                        f"{entry.name!r}; allowed: {', '.join(objectives)}",
                    )
                )
        models.append(checked)
    for field, entries in (
        ("datasets", suite.datasets),
        ("models", suite.models),
        ("methods", suite.methods),
        ("metrics", suite.metrics),
    ):
        check_unique_ids(problems, field, entries)
    if not problems:
        for field, entries in (("models", models), ("methods", methods), ("metrics", metrics)):
            check_distinct_configs(problems, field, entries)
        problems.extend(masks_missing(suite) + retraining_impossible(suite))
        problems.extend(corpus_not_training_set(suite))
        method_kinds = {METHODS.get(entry.name).explains for entry in methods}
        for index, entry in enumerate(metrics):
            kind = METRICS.get(entry.name).explains
            if kind != "any" and kind not in method_kinds:
                problems.append(
                    (
                        f"metrics[{index}]",
                        f"{entry.name!r} judges {kind} "
                        f"explanations but the suite lists no {kind} method",
                    )
                )
    if problems:
        raise SuiteError(source, problems)
    return suite.model_copy(
        update={"datasets": datasets, "methods": methods, "metrics": metrics, "models": models}
    )


def load_suite(path: str | Path, overrides: tuple[str, ...] = ()) -> Suite:
    """A suite file with ``overrides`` (``--set dotted.path=value``) applied, validated."""
    path = Path(path)
    raw = read_suite_document(path, overrides)
    try:
        suite = validate_suite(raw, source=str(path), base_dir=path.parent)
    except SuiteError as error:  # the problem may be the override's: say which were set
        with_overrides = str(path) + "".join(f" --set {item}" for item in overrides)
        raise SuiteError(with_overrides, error.problems) from None
    return suite.model_copy(update={"overrides": tuple(overrides)})
