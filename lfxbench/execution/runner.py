"""Runs a suite: trains (or loads) each model once, explains once per method, scores.

Data path: cells -> model cache -> attribution cache -> metric -> one JSON per finished
cell -> tidy results -> leaderboard and figures. Finished cells are never recomputed;
an interrupted run resumes from them and from the caches. A cell is filed under its key
and the fingerprint of its data; a cell or cache file that does not validate is warned
about and recomputed. Pairwise metrics (agreement across models or methods) run after
the cells, on the cached attributions.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lfxbench.cells import Cell, PairCell
from lfxbench.datasets.base import DatasetSplits
from lfxbench.environment import device_name, resolve_device, seed_everything, versions
from lfxbench.errors import LfxbenchError
from lfxbench.execution import progress
from lfxbench.execution.explainers import Explained, Explainers
from lfxbench.execution.subset_models import RetrainingTime, SubsetModels
from lfxbench.execution.trained_models import TrainedModels
from lfxbench.metrics.base import EvaluationContext, MetricResult
from lfxbench.registry import DATASETS, METRICS
from lfxbench.storage import Cache, atomic_write_json, make_folder, read_cell
from lfxbench.suite import Suite
from lfxbench.timing import (
    calibration_seconds,
    import_lazy_torch_modules,
    steady_allocator,
    stopwatch,
)

# Where pending cells run (``executors.run_locally``, ``executors.run_on_ray``).
Executor = Callable[["Runner", list[list[Cell]], list[PairCell]], None]


def default_data_dir() -> Path:
    return Path(os.environ.get("LFXBENCH_DATA", "data"))


def default_cache_dir() -> Path:
    return Path(os.environ.get("LFXBENCH_CACHE", Path("runs") / "cache"))


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
        self.models = TrainedModels(suite, self.cache, self.device, self.dataset)
        self.explainers = Explainers(self.models)
        self.subsets = SubsetModels(self.models)
        self._environment: dict[str, Any] | None = None
        self._steady_allocator = steady_allocator()
        import_lazy_torch_modules()
        if suite.threads is not None:
            torch.set_num_threads(suite.threads)

    @property
    def environment(self) -> dict[str, Any]:
        """Device, versions and a calibration time measured once for the process (a cell's
        record carries the one timed just before its attribution instead), so
        `lfxbench compare` can tell a slower method from a slower or busier machine."""
        if self._environment is None:
            self._environment = {
                "device": str(self.device),
                "device_name": device_name(self.device),
                **{f"{name}_version": version for name, version in versions().items()},
                "calibration_seconds": calibration_seconds(self.device),
                "steady_allocator": self._steady_allocator,
                "torch_threads": torch.get_num_threads(),
            }
        return self._environment

    # -- stages ---------------------------------------------------------------------

    def dataset(self, dataset_id: str) -> DatasetSplits:
        if dataset_id not in self._datasets:
            entry = self.suite.dataset(dataset_id)
            loader = DATASETS.get(entry.name)
            kwargs = dict(entry.params)
            if "data_dir" in inspect.signature(loader).parameters:
                kwargs["data_dir"] = self.data_dir
            try:
                data = loader(**kwargs)
                if entry.split is not None:
                    data = entry.split.apply(data)
                self._datasets[dataset_id] = data
            except ValueError as error:
                raise LfxbenchError(f"dataset {dataset_id!r}: {error}") from error
        return self._datasets[dataset_id]

    def evaluate(self, cell: Cell, explained: Explained) -> dict[str, Any]:
        data = self.dataset(cell.model.dataset)
        metric = METRICS.get(cell.metric.name)(**cell.metric.params)
        context = EvaluationContext(
            encoder=explained.trained.model.encoder.eval(),
            inputs=explained.inputs,
            labels=explained.labels,
            attributions=explained.attributions,
            baseline=cell.model.baseline,
            batch_size=self.suite.batch_size,
            device=self.device,
            seed=cell.seed,
            method_kind=cell.method_kind,
            corpus_labels=explained.corpus_labels,
            train_inputs=data.train_inputs,
            train_labels=data.train_labels,
            model=explained.trained.model,
            recipe=cell.model.recipe,
            explain=lambda inputs, labels=None: self.explainers.explain_inputs(
                cell, explained.trained, inputs, labels=labels
            ),
            retrain=lambda inputs, tag: self.models.retrain(cell, inputs, tag),
            explain_with=lambda encoder, inputs, labels=None: self.explainers.explain_inputs(
                cell, explained.trained, inputs, encoder, labels
            ),
            masks=self.explained_masks(cell),
            subset_outputs=lambda wanted: self.subsets.outputs(cell, explained, wanted, retrained),
        )
        retrained = RetrainingTime()
        seed_everything(cell.seed)
        with stopwatch(self.device) as elapsed:
            result = metric(context)
        # The cell pays for the models retrained for it, wherever and whenever they were
        # trained; retraining that every method shares is charged to none of them.
        seconds = elapsed.seconds - retrained.in_call + retrained.own
        n_examples = len(explained.inputs)
        return self.record(cell, result, metric.direction, seconds) | {
            "shared_retraining_seconds": retrained.shared,
            "n_examples": n_examples,
            "training_seconds": explained.trained.seconds,
            "training_epochs": explained.trained.log["epochs_run"],
            "attribution_seconds": explained.seconds,
            "attribution_seconds_per_example": explained.seconds / n_examples,
            "attribution_peak_memory_mb": explained.peak_memory_mb,
            **self._calibration_of(explained),
        }

    def _calibration_of(self, explained: Explained) -> dict[str, float]:
        after = {"calibration_after_seconds": explained.calibration_after_seconds}
        if math.isnan(explained.calibration_seconds):
            return after  # the run's own calibration (from the environment) stands
        return {"calibration_seconds": explained.calibration_seconds} | after

    def explained_masks(self, cell: Cell) -> torch.Tensor | None:
        """Ground-truth masks of the explained test inputs, where the dataset has them."""
        masks = self.dataset(cell.model.dataset).test_masks
        if masks is None or cell.method_kind == "example":
            return None
        return masks.to(self.device)

    def evaluate_pair(self, pair: PairCell) -> dict[str, Any]:
        metric = METRICS.get(pair.first.metric.name)(**pair.first.metric.params)
        first, second = self.explainers.explain(pair.first), self.explainers.explain(pair.second)
        with stopwatch(self.device) as elapsed:
            result = metric(first.attributions, second.attributions)
        return self.record(pair.first, result, metric.direction, elapsed.seconds) | {
            "model_b": pair.second.model.id,
            "method_b": pair.second.method.id,
            "n_examples": len(first.inputs),
            "cell_key": self.cell_key(pair),
        }

    def record(self, cell: Cell, result: MetricResult, direction: str, seconds: float) -> dict:
        return {
            "suite": self.suite.name,
            "model": cell.model.id,
            "model_name": cell.model.name,
            "model_params": json.dumps(cell.model.params, sort_keys=True, default=str),
            "objective": cell.model.recipe.objective,
            "dataset": cell.model.dataset,
            "method": cell.method.id,
            "method_name": cell.method.name,
            "method_kind": cell.method_kind,
            "metric": cell.metric.id,
            "metric_name": cell.metric.name,
            "model_b": "",
            "method_b": "",
            "seed": cell.seed,
            "value": result.value,
            "direction": direction,
            "metric_seconds": seconds,
            "cell_key": self.cell_key(cell),
            **self.environment,
            "curve": [list(point) for point in result.curve],
            "curve_axes": list(result.curve_axes),
            "samples": result.samples,
            "details": result.details,
        }

    # -- the run ----------------------------------------------------------------------

    def cell_key(self, cell: Cell | PairCell) -> str:
        """The name of a finished cell's file (``finished_key``: holds its data)."""
        if isinstance(cell, PairCell):
            return cell.finished_key(
                self.models.data_of(cell.first), self.models.data_of(cell.second)
            )
        return cell.finished_key(self.models.data_of(cell))

    @property
    def cells_dir(self) -> Path:
        return self.run_dir / "cells"

    def cell_path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.json"

    def read_finished(self, key: str) -> dict[str, Any] | None:
        return read_cell(self.cell_path(key), key)

    def run(self, execute: Executor) -> list[dict[str, Any]]:
        """Compute every unfinished cell with ``execute`` (``executors.run_locally`` or
        ``run_on_ray``); return the records of all cells of the suite."""
        previous = torch.are_deterministic_algorithms_enabled()
        if self.suite.deterministic and self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(self.suite.deterministic, warn_only=True)
        try:
            return self._run(execute)
        finally:
            torch.use_deterministic_algorithms(previous)

    def _run(self, execute: Executor) -> list[dict[str, Any]]:
        cells, pairs = self.suite.cells(), self.suite.pair_cells()
        cell_keys = [self.cell_key(cell) for cell in cells]
        pair_keys = [self.cell_key(pair) for pair in pairs]
        # An unusable cell file (warned about) counts as unfinished and is recomputed.
        finished = {key: self.read_finished(key) for key in [*cell_keys, *pair_keys]}
        pending = [c for c, key in zip(cells, cell_keys, strict=True) if finished[key] is None]
        pending_pairs = [
            p for p, key in zip(pairs, pair_keys, strict=True) if finished[key] is None
        ]
        # Cells come model -> seed -> method -> metric: each explanation is computed once
        # and scored by every metric of its group before the next one is made.
        groups = [list(g) for _, g in itertools.groupby(pending, key=lambda c: c.attribution_key)]
        if groups or pending_pairs:
            make_folder(self.cells_dir)  # fails now, not after the training: `--out` a file
            if self.suite.train_side_by_side:
                needed = [g[0] for g in groups] + [
                    c for p in pending_pairs for c in (p.first, p.second)
                ]
                self.models.train_side_by_side(needed)
            execute(self, groups, pending_pairs)
        return [record or self._computed_record(key) for key, record in finished.items()]

    def _computed_record(self, key: str) -> dict[str, Any]:
        record = self.read_finished(key)
        if record is None:
            raise LfxbenchError(
                f"{self.cell_path(key)}: the cell just computed is missing or unusable; was "
                "the run directory changed by something else during the run? Rerun to "
                "recompute it."
            )
        return record

    def retraining_batches(self, groups: list[list[Cell]]) -> list[list[Cell]]:
        """The pending cells whose metric retrains without training examples, one list per
        model and seed (``retrain_ahead``'s unit of work)."""
        batches: dict[tuple[str, int], list[Cell]] = {}
        for cell in itertools.chain.from_iterable(groups):
            if METRICS.get(cell.metric.name).needs_whole_training_set:
                batches.setdefault((cell.model.id, cell.seed), []).append(cell)
        return list(batches.values())

    def retrain_ahead(self, cells: list[Cell]) -> None:
        """Train the subset models ``cells`` (one model and seed) will ask for, those of
        every method side by side, before the cells run and read them from the cache."""
        wanted, explanations = [], {}
        for cell in cells:  # a method's explanation once, whatever number of metrics it has
            if cell.attribution_key not in explanations:
                explanations[cell.attribution_key] = self.explainers.explain(cell)
            explained = explanations[cell.attribution_key]
            metric = METRICS.get(cell.metric.name)(**cell.metric.params)
            asks = metric.subsets_to_retrain(explained.attributions)
            wanted += [(cell, explained, subsets) for subsets in asks]
        self.subsets.train_ahead(wanted)

    def run_group(self, group: list[Cell]) -> None:
        """One explanation and every metric of it; each finished cell written at once."""
        explained = self.explainers.explain(group[0])
        for cell in group:
            named = f"{cell.model.id} seed {cell.seed} {cell.method.id}"
            progress.stage(f"{cell.metric.id}: {named}")
            record = self.evaluate(cell, explained)
            atomic_write_json(self.cell_path(self.cell_key(cell)), record)
            progress.finished(1, f"{named} {cell.metric.id} = {record['value']:.4g}")

    def run_pair(self, pair: PairCell) -> None:
        first, second = pair.first, pair.second
        named = (
            f"{first.metric.id}: {first.model.id}/{first.method.id} vs "
            f"{second.model.id}/{second.method.id} seed {first.seed}"
        )
        progress.stage(named)
        record = self.evaluate_pair(pair)
        atomic_write_json(self.cell_path(self.cell_key(pair)), record)
        progress.finished(1, f"{named} = {record['value']:.4g}")
