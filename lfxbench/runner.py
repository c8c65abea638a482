"""Runs a suite: trains (or loads) each model once, attributes once per method, scores.

Data path: cells -> model cache -> attribution cache -> metric -> one JSON per finished
cell -> tidy results -> leaderboard and figures. Finished cells are never recomputed;
an interrupted run resumes from them and from the caches.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from lfxbench.datasets.splits import DatasetSplits
from lfxbench.environment import device_name, resolve_device, seed_everything, versions
from lfxbench.errors import LfxbenchError
from lfxbench.evaluation import EvaluationContext
from lfxbench.models.base import ZooModel
from lfxbench.registry import DATASETS, METHODS, METRICS, MODELS
from lfxbench.storage import Cache, atomic_write_json
from lfxbench.suite import Cell, Suite, stable_hash
from lfxbench.timing import stopwatch
from lfxbench.training import train_model


def default_data_dir() -> Path:
    return Path(os.environ.get("LFXBENCH_DATA", "data"))


def default_cache_dir() -> Path:
    return Path(os.environ.get("LFXBENCH_CACHE", Path("runs") / "cache"))


@dataclasses.dataclass
class TrainedModel:
    model: ZooModel
    cache_key: str
    seconds: float
    log: dict[str, Any]


@dataclasses.dataclass
class Attributions:
    values: torch.Tensor
    seconds: float


class Runner:
    def __init__(
        self,
        suite: Suite,
        run_dir: Path,
        cache_dir: Path | None = None,
        data_dir: Path | None = None,
        device: str | None = None,
        progress: bool = True,
    ):
        self.suite = suite
        self.run_dir = Path(run_dir)
        self.cache = Cache(cache_dir or default_cache_dir())
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.device = resolve_device(device or suite.device)
        self.progress = progress
        self._datasets: dict[str, DatasetSplits] = {}
        self.environment = {
            "device": str(self.device),
            "device_name": device_name(self.device),
            **{f"{name}_version": version for name, version in versions().items()},
        }

    # -- stages ---------------------------------------------------------------------

    def dataset(self, dataset_id: str) -> DatasetSplits:
        if dataset_id not in self._datasets:
            entry = self.suite.dataset(dataset_id)
            loader = DATASETS.get(entry.name)
            kwargs = dict(entry.params)
            if "data_dir" in inspect.signature(loader).parameters:
                kwargs["data_dir"] = self.data_dir
            try:
                self._datasets[dataset_id] = loader(**kwargs)
            except ValueError as error:
                raise LfxbenchError(f"dataset {dataset_id!r}: {error}") from error
        return self._datasets[dataset_id]

    def trained_model(self, cell: Cell, data: DatasetSplits) -> TrainedModel:
        key = stable_hash({"model": cell.model_key, "data": data.fingerprint()})
        seed_everything(cell.seed)  # the seed fixes the initial weights too
        model = MODELS.get(cell.model.name)(**cell.model.params)
        cached = self.cache.load("models", key)
        if cached is not None:
            model.load_state_dict(cached["state_dict"])
            model.to(self.device).eval()
            return TrainedModel(model, key, cached["seconds"], cached["log"])
        with stopwatch(self.device) as elapsed:
            log = train_model(
                model,
                data.train_inputs,
                data.train_labels,
                cell.model.recipe,
                seed=cell.seed,
                device=self.device,
            )
        self.cache.save(
            "models",
            key,
            {
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "log": dataclasses.asdict(log),
                "seconds": elapsed.seconds,
                "config": self.suite.model_config_of(cell.model),
                "seed": cell.seed,
            },
        )
        return TrainedModel(model, key, elapsed.seconds, dataclasses.asdict(log))

    def attributions(self, cell: Cell, trained: TrainedModel, data: DatasetSplits) -> Attributions:
        key = stable_hash({"attribution": cell.attribution_key, "model": trained.cache_key})
        cached = self.cache.load("attributions", key)
        if cached is not None:
            return Attributions(cached["values"].to(self.device), cached["seconds"])
        encoder = trained.model.encoder.eval()
        method = METHODS.get(cell.method.name)(encoder, **cell.method.params)
        inputs = data.test_inputs.to(self.device)
        train_mean = data.train_inputs.mean(dim=0, keepdim=True).to(self.device)
        seed_everything(cell.seed)
        batches = []
        with stopwatch(self.device) as elapsed:
            for start in range(0, len(inputs), self.suite.batch_size):
                batch = inputs[start : start + self.suite.batch_size]
                batches.append(method.attribute(batch, cell.model.baseline(batch, train_mean)))
            values = torch.cat(batches)
        self.cache.save("attributions", key, {"values": values.cpu(), "seconds": elapsed.seconds})
        return Attributions(values, elapsed.seconds)

    def evaluate(
        self, cell: Cell, trained: TrainedModel, attributions: Attributions, data: DatasetSplits
    ) -> dict[str, Any]:
        metric = METRICS.get(cell.metric.name)(**cell.metric.params)
        context = EvaluationContext(
            encoder=trained.model.encoder.eval(),
            inputs=data.test_inputs.to(self.device),
            labels=data.test_labels.to(self.device),
            attributions=attributions.values,
            baseline=cell.model.baseline,
            train_mean=data.train_inputs.mean(dim=0, keepdim=True).to(self.device),
            batch_size=self.suite.batch_size,
            device=self.device,
            seed=cell.seed,
        )
        seed_everything(cell.seed)
        with stopwatch(self.device) as elapsed:
            result = metric(context)
        n_examples = len(data.test_inputs)
        return {
            "suite": self.suite.name,
            "model": cell.model.id,
            "model_name": cell.model.name,
            "dataset": cell.model.dataset,
            "method": cell.method.id,
            "method_name": cell.method.name,
            "metric": cell.metric.id,
            "metric_name": cell.metric.name,
            "seed": cell.seed,
            "value": result.value,
            "direction": metric.direction,
            "n_examples": n_examples,
            "training_seconds": trained.seconds,
            "training_epochs": trained.log["epochs_run"],
            "attribution_seconds": attributions.seconds,
            "attribution_seconds_per_example": attributions.seconds / n_examples,
            "metric_seconds": elapsed.seconds,
            "cell_key": cell.key,
            **self.environment,
            "curve": [list(point) for point in result.curve],
            "curve_axes": list(result.curve_axes),
            "details": result.details,
        }

    # -- the run ----------------------------------------------------------------------

    def cell_path(self, cell: Cell) -> Path:
        return self.run_dir / "cells" / f"{cell.key}.json"

    def run(self) -> list[dict[str, Any]]:
        """Compute every unfinished cell; return the records of all cells of the suite."""
        cells = self.suite.cells()
        pending = [cell for cell in cells if not self.cell_path(cell).is_file()]
        with tqdm(
            total=len(pending), desc=self.suite.name, unit="cell", disable=not self.progress
        ) as bar:
            by_model = itertools.groupby(pending, key=lambda c: (c.model.id, c.seed))
            for _, model_cells in by_model:
                model_cells = list(model_cells)
                first = model_cells[0]
                data = self.dataset(first.model.dataset)
                bar.set_postfix_str(f"training {first.model.id} seed {first.seed}")
                trained = self.trained_model(first, data)
                for _, method_cells in itertools.groupby(model_cells, key=lambda c: c.method.id):
                    method_cells = list(method_cells)
                    bar.set_postfix_str(f"{first.model.id}: {method_cells[0].method.id}")
                    attributions = self.attributions(method_cells[0], trained, data)
                    for cell in method_cells:
                        record = self.evaluate(cell, trained, attributions, data)
                        atomic_write_json(self.cell_path(cell), record)
                        bar.update()
        return [json.loads(self.cell_path(cell).read_text()) for cell in cells]


def records_to_tables(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split cell records into the tidy results table and the tidy curve table."""
    results, curves = [], []
    for record in records:
        row = {k: v for k, v in record.items() if k not in ("curve", "curve_axes", "details")}
        row.update({f"detail_{name}": value for name, value in record["details"].items()})
        results.append(row)
        x_axis, y_axis = record["curve_axes"]
        for x, y in record["curve"]:
            curves.append(
                {
                    key: record[key]
                    for key in ("suite", "model", "dataset", "method", "metric", "seed")
                }
                | {"x": x, "y": y, "x_label": x_axis, "y_label": y_axis}
            )
    return pd.DataFrame(results), pd.DataFrame(curves)
