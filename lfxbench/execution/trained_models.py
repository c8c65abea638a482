"""The trained models of a run: each model x seed trained once (alone or with its other
seeds side by side) or loaded from the cache, a few kept in memory; and the models a metric
retrains (ROAR), cached beside them. Every key comes from ``cells.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from lfxbench.cells import Cell
from lfxbench.datasets.base import DatasetSplits
from lfxbench.environment import seed_everything, seeded
from lfxbench.errors import LfxbenchError
from lfxbench.execution import progress
from lfxbench.execution.ensemble import train_side_by_side
from lfxbench.execution.training import TrainingLog, train_model
from lfxbench.models.base import ZooModel
from lfxbench.registry import MODELS
from lfxbench.storage import Cache, state_dict_problem, trained_model_problem
from lfxbench.suite import Suite
from lfxbench.timing import stopwatch

logger = logging.getLogger(__name__)
TRAINED_MODELS_KEPT = 4  # in memory at once; the rest reload from the cache


@dataclasses.dataclass
class TrainedModel:
    model: ZooModel
    cache_key: str
    seconds: float
    log: dict[str, Any]


class TrainedModels:
    def __init__(
        self,
        suite: Suite,
        cache: Cache,
        device: torch.device,
        dataset: Callable[[str], DatasetSplits],
    ):
        self.suite, self.cache, self.device, self.dataset = suite, cache, device, dataset
        self._kept: OrderedDict[tuple[str, int], TrainedModel] = OrderedDict()

    def data_of(self, cell: Cell) -> str:
        """The fingerprint of the cell's data, which every stored key holds."""
        return self.dataset(cell.model.dataset).fingerprint()

    def new_model(self, cell: Cell) -> ZooModel:
        seed_everything(cell.seed)  # the seed fixes the initial weights too
        return MODELS.get(cell.model.name)(**cell.model.params)

    def _cached_weights(self, key: str, model: ZooModel, full: bool) -> dict[str, Any] | None:
        """The cache entry of ``key`` loaded into ``model``, or None (absent or unusable);
        ``full``: a trained model's entry (log and seconds besides the weights)."""
        check = (
            (lambda found: trained_model_problem(found, model))
            if full
            else (lambda found: state_dict_problem(found.get("state_dict"), model))
        )
        cached = self.cache.load("models", key, check)
        if cached is not None:
            model.load_state_dict(cached["state_dict"])
            model.to(self.device).eval()
        return cached

    def get(self, cell: Cell) -> TrainedModel:
        """The cell's trained model: kept, cached, or trained now (and cached)."""
        memo_key = (cell.model.id, cell.seed)
        if memo_key in self._kept:
            self._kept.move_to_end(memo_key)
            return self._kept[memo_key]
        key = cell.model_cache_key(self.data_of(cell))
        if not cell.model.train:
            trained = TrainedModel(self._checkpoint(cell), key, 0.0, {"epochs_run": 0})
        else:
            trained = self._cached_or_trained(cell, key)
        self._kept[memo_key] = trained
        if len(self._kept) > TRAINED_MODELS_KEPT:
            self._kept.popitem(last=False)
        return trained

    def _cached_or_trained(self, cell: Cell, key: str) -> TrainedModel:
        """The cell's model from the cache under ``key``, else trained now and cached."""
        model = self.new_model(cell)
        cached = self._cached_weights(key, model, full=True)
        if cached is not None:
            return TrainedModel(model, key, cached["seconds"], cached["log"])
        progress.stage(
            f"training {cell.model.id} seed {cell.seed}", cell.model.recipe.epochs, "epochs"
        )
        with stopwatch(self.device) as elapsed:
            log = self._train(cell, model, self.dataset(cell.model.dataset).train_inputs)
        return self._save(cell, model, log, elapsed.seconds)

    def _train(self, cell: Cell, model: ZooModel, train_inputs: torch.Tensor) -> TrainingLog:
        """``model`` trained with the cell's recipe on ``train_inputs`` (the data's labels)."""
        labels = self.dataset(cell.model.dataset).train_labels
        return train_model(
            model, train_inputs, labels, cell.model.recipe, seed=cell.seed, device=self.device
        )

    def _checkpoint(self, cell: Cell) -> ZooModel:
        """The model entry's ``checkpoint``, loaded instead of training (``train: false``)."""
        path, zoo = cell.model.checkpoint, MODELS.get(cell.model.name)
        if path is None:  # validated: only where the zoo entry allows random weights
            logger.info(
                "model %s: random initial weights of seed %d, not trained (train: false)",
                cell.model.id,
                cell.seed,
            )
            return self.new_model(cell).to(self.device).eval()
        if hasattr(zoo, "from_archive"):
            model = zoo.from_archive(path)
        else:
            model = self.new_model(cell)
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # not a torch file, or one that holds code
                raise LfxbenchError(
                    f"{path}: not a state dict torch.load can read with weights_only=True "
                    f"({type(error).__name__}: {str(error).splitlines()[0]})"
                ) from error
            if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
                payload = payload["state_dict"]  # a checkpoint that wraps its state dict
            if isinstance(payload, dict):
                payload = model.state_dict_from_checkpoint(payload)
            problem = state_dict_problem(payload, model)
            if problem is not None:
                raise LfxbenchError(f"{path}: {problem} (model {cell.model.id!r})")
            model.load_state_dict(payload)
        logger.info("model %s: loaded from %s, not trained (train: false)", cell.model.id, path)
        return model.to(self.device).eval()

    def _save(self, cell: Cell, model: ZooModel, log: TrainingLog, seconds: float) -> TrainedModel:
        key, record = cell.model_cache_key(self.data_of(cell)), dataclasses.asdict(log)
        self.cache.save(
            "models",
            key,
            {
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "log": record,
                "seconds": seconds,
                "config": self.suite.model_config_of(cell.model),
                "seed": cell.seed,
            },
        )
        return TrainedModel(model, key, seconds, record)

    def train_side_by_side(self, cells: list[Cell]) -> None:
        """Train the untrained seeds of each model entry together (``train_side_by_side``);
        each member's time is the stack's time over its size."""
        untrained: dict[str, dict[int, Cell]] = {}
        for cell in cells:
            if not cell.model.train:  # loaded from its checkpoint, never trained
                continue
            if not self.cache.path("models", cell.model_cache_key(self.data_of(cell))).is_file():
                untrained.setdefault(cell.model.id, {}).setdefault(cell.seed, cell)
        for members in untrained.values():
            first = next(iter(members.values()))
            if len(members) < 2 or not MODELS.get(first.model.name).stackable:
                continue  # trained one by one when first asked for
            data = self.dataset(first.model.dataset)
            models = [self.new_model(cell) for cell in members.values()]
            progress.stage(
                f"training {first.model.id} seeds {', '.join(map(str, members))} side by side",
                first.model.recipe.epochs,
                "epochs",
            )
            with stopwatch(self.device) as elapsed:
                logs = train_side_by_side(
                    models,
                    data.train_inputs,
                    data.train_labels,
                    first.model.recipe,
                    list(members),
                    self.device,
                )
            for cell, model, log in zip(members.values(), models, logs, strict=True):
                self._save(cell, model, log, elapsed.seconds / len(models))

    def retrain(self, cell: Cell, train_inputs: torch.Tensor, tag: str) -> ZooModel:
        """A fresh model of the cell's zoo entry trained with its recipe on other training
        inputs (same labels), cached under the cell's method and metric and ``tag``."""
        key = cell.retrained_model_key(self.data_of(cell), tag)
        # The metric's own draws go on afterwards; training needs gradients even when the
        # calling metric runs without them.
        with seeded(cell.seed), torch.enable_grad():
            model = self.new_model(cell)
            if self._cached_weights(key, model, full=False) is not None:
                return model
            progress.stage(
                f"retraining {cell.model.id} seed {cell.seed} ({tag})",
                cell.model.recipe.epochs,
                "epochs",
            )
            self._train(cell, model, train_inputs)
        self.cache.save(
            "models", key, {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}
        )
        return model.eval()
