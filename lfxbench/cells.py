"""Cells: what a suite expands into, which cells apply, and every key a run stores under.

A cell is one model x method x metric x seed of a suite (a pair cell: two explanations a
pairwise metric compares). Its configuration keys come from the suite alone; what is
stored (trained models, explanations, finished cells, retrained models) is keyed by them
and by the fingerprint of the data, so nothing computed on other data is ever reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lfxbench.registry import METHODS, METRICS, MODELS
from lfxbench.storage import stable_hash

if TYPE_CHECKING:
    from lfxbench.suite import Entry, ModelEntry, Suite


@dataclass(frozen=True)
class Cell:
    suite: Suite
    model: ModelEntry
    method: Entry
    metric: Entry
    seed: int

    @property
    def model_key(self) -> str:
        payload = {"model": self.suite.model_config_of(self.model), "seed": self.seed}
        if self.suite.train_side_by_side:  # equal to sequential training up to float noise
            payload["side_by_side"] = True
        return stable_hash(payload)

    @property
    def method_kind(self) -> str:
        return kind_of(self.method)

    @property
    def attribution_seed(self) -> int:
        """Seeded per model, not only per seed: two encoders' `random` references (and
        sampling methods) must not share their draws, or they would agree perfectly."""
        return int(self.model_key[:8], 16)

    @property
    def attribution_key(self) -> str:
        payload = {
            "model": self.model_key,
            "method": self.method.config(),
            "batch_size": self.suite.batch_size,
        }
        if self.suite.threads is not None:  # the cached seconds were timed with them
            payload["threads"] = self.suite.threads
        if self.method_kind == "example":
            payload["examples"] = self.suite.examples_of(self.model).model_dump()
        return stable_hash(payload)

    @property
    def key(self) -> str:
        return stable_hash({"attribution": self.attribution_key, "metric": self.metric.config()})

    # The keys of what is stored, each holding the fingerprint of the model's data
    # (`DatasetSplits.fingerprint`): the same suite on other data shares none of them.

    def model_cache_key(self, data: str) -> str:
        """The trained model (``models/<key>.pt``)."""
        return stable_hash({"model": self.model_key, "data": data})

    def attribution_cache_key(self, data: str) -> str:
        """The explanations of this model x method x seed (``attributions/<key>.pt``)."""
        return stable_hash(
            {"attribution": self.attribution_key, "model": self.model_cache_key(data)}
        )

    def retrained_model_key(self, data: str, tag: str) -> str:
        """A model a metric retrains for this cell (ROAR), under the metric's ``tag``."""
        return stable_hash({"retrained": self.model_cache_key(data), "cell": self.key, "tag": tag})

    def subset_models_key(self, data: str, spec: dict) -> str:
        """The outputs of models retrained on subsets of the training set drawn as ``spec``
        says (``subsets/<key>.pt``), on the examples the example protocol explains. Without
        the method and the metric: every method of this model and seed shares them."""
        examples = self.suite.examples_of(self.model).model_dump()
        return stable_hash(
            {"subsets": self.model_cache_key(data), "examples": examples, "spec": spec}
        )

    def retrained_subsets_key(self, data: str, tag: str) -> str:
        """The outputs of models a metric retrains for this cell on subsets it chose from
        the method's scores (``retrain_without_top``), under the metric's ``tag``."""
        return stable_hash(
            {"retrained_subsets": self.model_cache_key(data), "cell": self.key, "tag": tag}
        )

    def finished_key(self, data: str) -> str:
        """The finished cell's record (``cells/<key>.json`` of the run directory)."""
        return stable_hash({"cell": self.key, "data": [data]})


@dataclass(frozen=True)
class PairCell:
    """Two explanations (same metric and seed) that a pairwise metric compares."""

    first: Cell
    second: Cell

    @property
    def key(self) -> str:
        attributions = [self.first.attribution_key, self.second.attribution_key]
        return stable_hash({"pair": attributions, "metric": self.first.metric.config()})

    def finished_key(self, first_data: str, second_data: str) -> str:
        """The finished pair's record: both models' data."""
        return stable_hash({"cell": self.key, "data": [first_data, second_data]})


def compatible(model: ModelEntry, method: Entry) -> bool:
    """False where a loss-based method meets an objective whose per-example loss depends on
    the rest of the batch (contrastive), or a model without one (a scripted encoder), and
    where a method needs training checkpoints of a model that is loaded (``train: false``):
    such cells are left out of the suite."""
    if getattr(METHODS.get(method.name), "needs_training_checkpoints", False) and not model.train:
        return False
    needs_loss = getattr(METHODS.get(method.name), "needs_per_example_loss", False)
    zoo = MODELS.get(model.name)
    return not (
        needs_loss
        and (model.recipe.objective in zoo.batch_dependent_objectives or not zoo.has_loss)
    )


def kind_of(method: Entry) -> str:
    return METHODS.get(method.name).explains


def scope_of(metric: Entry) -> str:
    """``cell``, or what a pairwise metric compares across: ``models`` or ``methods``."""
    if METRICS.get(metric.name).scope != "pair":
        return "cell"
    return metric.params.get("across", "models")


def applies(metric: Entry, method: Entry) -> bool:
    return METRICS.get(metric.name).explains in ("any", kind_of(method))


def expand_cells(suite: Suite) -> list[Cell]:
    """Every (model, method, metric, seed) the suite asks for, method kinds matched."""
    cells = []
    for model in suite.models:
        for seed in suite.seeds:
            for method in suite.methods:
                if not compatible(model, method):
                    continue
                for metric in suite.metrics:
                    if (
                        scope_of(metric) == "cell"
                        and applies(metric, method)
                        and metric.scores(model)
                    ):
                        cells.append(Cell(suite, model, method, metric, seed))
    return cells


def expand_pairs(suite: Suite) -> list[PairCell]:
    """Every pair of explanations a pairwise metric compares, each unordered pair once."""
    pairs = []
    for metric in suite.metrics:
        scope = scope_of(metric)
        for seed in suite.seeds:
            if scope == "models":
                for method in (m for m in suite.methods if applies(metric, m)):
                    models = [m for m in suite.models if compatible(m, method) and metric.scores(m)]
                    for i, first in enumerate(models):
                        for second in models[i + 1 :]:
                            if first.dataset == second.dataset:
                                pairs.append(
                                    PairCell(
                                        Cell(suite, first, method, metric, seed),
                                        Cell(suite, second, method, metric, seed),
                                    )
                                )
            elif scope == "methods":
                methods = [m for m in suite.methods if applies(metric, m)]
                for model in (m for m in suite.models if metric.scores(m)):
                    usable = [m for m in methods if compatible(model, m)]
                    for i, first in enumerate(usable):
                        for second in usable[i + 1 :]:
                            if kind_of(first) == kind_of(second):
                                pairs.append(
                                    PairCell(
                                        Cell(suite, model, first, metric, seed),
                                        Cell(suite, model, second, metric, seed),
                                    )
                                )
    return pairs
