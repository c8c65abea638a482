"""Runs a suite: trains (or loads) each model once, explains once per method, scores.

Data path: cells -> model cache -> attribution cache -> metric -> one JSON per finished
cell -> tidy results -> leaderboard and figures. Finished cells are never recomputed;
an interrupted run resumes from them and from the caches. A cell is filed under its key
and the fingerprint of its data; a cell or cache file that does not validate is warned
about and recomputed. Pairwise metrics (agreement across models or methods) run after
the cells, on the cached attributions.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from tqdm.auto import tqdm

from lfxbench.batching import in_batches
from lfxbench.datasets.base import DatasetSplits, balanced_subset
from lfxbench.environment import (
    device_name,
    resolve_device,
    seed_everything,
    seeded,
    versions,
)
from lfxbench.errors import LfxbenchError
from lfxbench.methods.base import TrainingCorpus
from lfxbench.metrics.base import EvaluationContext, MetricResult
from lfxbench.models.base import ZooModel
from lfxbench.registry import DATASETS, METHODS, METRICS, MODELS
from lfxbench.run.ensemble import train_side_by_side
from lfxbench.run.training import TrainingLog, train_model
from lfxbench.storage import (
    Cache,
    atomic_write_json,
    attribution_problem,
    make_folder,
    read_cell,
    state_dict_problem,
    trained_model_problem,
)
from lfxbench.suite import Cell, PairCell, Suite, stable_hash
from lfxbench.timing import (
    calibration_seconds,
    import_lazy_torch_modules,
    steady_allocator,
    stopwatch,
)

TRAINED_MODELS_KEPT = 4  # in memory at once; the rest reload from the cache


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
class Explained:
    """One model x method x seed: the explanations and the examples they explain."""

    trained: TrainedModel
    attributions: torch.Tensor
    seconds: float
    inputs: torch.Tensor
    labels: torch.Tensor
    corpus_labels: torch.Tensor | None
    peak_memory_mb: float = float("nan")  # on CUDA: the device memory the method needed
    # The calibration workload timed just before and just after the attribution: the
    # machine's speed around it (NaN for attributions cached before they were recorded).
    calibration_seconds: float = float("nan")
    calibration_after_seconds: float = float("nan")


class Runner:
    def __init__(
        self,
        suite: Suite,
        run_dir: Path,
        cache_dir: Path | None = None,
        data_dir: Path | None = None,
        device: str | None = None,
        progress: bool = True,
        executor: Literal["local", "ray"] = "local",
    ):
        self.suite = suite
        self.run_dir = Path(run_dir)
        self.cache = Cache(cache_dir or default_cache_dir())
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.device = resolve_device(device or suite.device)
        self.progress = progress
        self._datasets: dict[str, DatasetSplits] = {}
        self._trained: OrderedDict[tuple[str, int], TrainedModel] = OrderedDict()
        self.executor = executor
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

    def model_cache_key(self, cell: Cell) -> str:
        data = self.dataset(cell.model.dataset)
        return stable_hash({"model": cell.model_key, "data": data.fingerprint()})

    def new_model(self, cell: Cell) -> ZooModel:
        seed_everything(cell.seed)  # the seed fixes the initial weights too
        return MODELS.get(cell.model.name)(**cell.model.params)

    def trained_model(self, cell: Cell) -> TrainedModel:
        memo_key = (cell.model.id, cell.seed)
        if memo_key in self._trained:
            self._trained.move_to_end(memo_key)
            return self._trained[memo_key]
        data = self.dataset(cell.model.dataset)
        key = self.model_cache_key(cell)
        model = self.new_model(cell)
        cached = self.cache.load("models", key, lambda found: trained_model_problem(found, model))
        if cached is not None:
            model.load_state_dict(cached["state_dict"])
            model.to(self.device).eval()
            trained = TrainedModel(model, key, cached["seconds"], cached["log"])
        else:
            with stopwatch(self.device) as elapsed:
                log = train_model(
                    model,
                    data.train_inputs,
                    data.train_labels,
                    cell.model.recipe,
                    seed=cell.seed,
                    device=self.device,
                )
            trained = self.save_trained(cell, model, log, elapsed.seconds)
        self._trained[memo_key] = trained
        if len(self._trained) > TRAINED_MODELS_KEPT:
            self._trained.popitem(last=False)
        return trained

    def save_trained(
        self, cell: Cell, model: ZooModel, log: TrainingLog, seconds: float
    ) -> TrainedModel:
        key, record = self.model_cache_key(cell), dataclasses.asdict(log)
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

    def train_seeds_side_by_side(self, cells: list[Cell]) -> None:
        """Train the untrained seeds of each model entry together (``train_side_by_side``);
        each member's time is the stack's time over its size."""
        untrained: dict[str, dict[int, Cell]] = {}
        for cell in cells:
            if not self.cache.path("models", self.model_cache_key(cell)).is_file():
                untrained.setdefault(cell.model.id, {}).setdefault(cell.seed, cell)
        for members in untrained.values():
            if len(members) < 2:
                continue
            first = next(iter(members.values()))
            data = self.dataset(first.model.dataset)
            models = [self.new_model(cell) for cell in members.values()]
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
                self.save_trained(cell, model, log, elapsed.seconds / len(models))

    def explained_examples(
        self, cell: Cell
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Test inputs and labels a method explains, and (example methods) corpus indices."""
        data = self.dataset(cell.model.dataset)
        if cell.method_kind != "example":
            return data.test_inputs, data.test_labels, None
        protocol = self.suite.examples_of(cell.model)
        chosen = {}
        for field, labels, n in (
            ("n_test", data.test_labels, protocol.n_test),
            ("n_corpus", data.train_labels, protocol.n_corpus),
        ):
            try:
                chosen[field] = balanced_subset(labels, n, protocol.subset_seed)
            except ValueError as error:
                index = [model.id for model in self.suite.models].index(cell.model.id)
                where = f"models[{index}].examples" if cell.model.examples else "examples"
                raise LfxbenchError(
                    f"{self.suite.source}: {where}.{field}: {error} (model {cell.model.id!r}, "
                    f"dataset {cell.model.dataset!r})"
                ) from error
        test, corpus = chosen["n_test"], chosen["n_corpus"]
        return data.test_inputs[test], data.test_labels[test], corpus

    def explain(self, cell: Cell) -> Explained:
        trained = self.trained_model(cell)
        data = self.dataset(cell.model.dataset)
        inputs, labels, corpus = self.explained_examples(cell)
        inputs, labels = inputs.to(self.device), labels.to(self.device)
        corpus_labels = None if corpus is None else data.train_labels[corpus].to(self.device)
        # The model's key holds the data's fingerprint: other data, other attributions.
        key = stable_hash({"attribution": cell.attribution_key, "model": trained.cache_key})
        n_corpus = None if corpus is None else len(corpus)
        cached = self.cache.load(
            "attributions",
            key,
            lambda found: attribution_problem(found, cell.method_kind, inputs.shape, n_corpus),
        )
        if cached is not None:
            return Explained(
                trained,
                cached["values"].to(self.device),
                cached["seconds"],
                inputs,
                labels,
                corpus_labels,
                cached.get("peak_memory_mb", float("nan")),
                cached.get("calibration_seconds", float("nan")),
                cached.get("calibration_after_seconds", float("nan")),
            )
        model = trained.model.eval()
        # The speed of a shared machine drifts within a run (on 2 CPU cores a RELAX call
        # went from 0.17 s to 0.35 s and back while this workload went from 4.9 to 6.6 ms):
        # timed next to the attribution, it normalises more of the drift than once per run.
        # Before seeding: building its network draws from the global generator.
        calibration = calibration_seconds(self.device, repeats=3)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            held = torch.cuda.memory_allocated(self.device)  # models, data: not the method's
        seed_everything(cell.attribution_seed)
        with stopwatch(self.device) as elapsed:
            if cell.method_kind != "example":  # feature or per-unit: same signature
                values = self._feature_explainer(cell, model.encoder)(inputs, labels)
            else:
                method = METHODS.get(cell.method.name)(**cell.method.params)
                method.fit(
                    TrainingCorpus(
                        model=model,
                        recipe=cell.model.recipe,
                        inputs=data.train_inputs[corpus].to(self.device),
                        labels=data.train_labels[corpus].to(self.device),
                        train_inputs=data.train_inputs.to(self.device),
                        train_labels=data.train_labels.to(self.device),
                        checkpoints=[tuple(c) for c in trained.log.get("checkpoints", [])],
                        batch_size=self.suite.batch_size,
                        device=self.device,
                    )
                )
                values = in_batches(
                    lambda batch: method.attribute(inputs[batch], labels[batch]),
                    len(inputs),
                    self.suite.batch_size,
                ).detach()
        peak = (
            (torch.cuda.max_memory_allocated(self.device) - held) / 2**20
            if self.device.type == "cuda"
            else float("nan")
        )
        # After the peak is read (the workload allocates on the device) and on a forked
        # generator, so the draws that follow are those of a run without it.
        with torch.random.fork_rng(devices=[]):
            calibration_after = calibration_seconds(self.device, repeats=3)
        self.cache.save(
            "attributions",
            key,
            {
                "values": values.cpu(),
                "seconds": elapsed.seconds,
                "peak_memory_mb": peak,
                "calibration_seconds": calibration,
                "calibration_after_seconds": calibration_after,
            },
        )
        return Explained(
            trained,
            values,
            elapsed.seconds,
            inputs,
            labels,
            corpus_labels,
            peak,
            calibration,
            calibration_after,
        )

    def evaluate(self, cell: Cell, explained: Explained) -> dict[str, Any]:
        data = self.dataset(cell.model.dataset)
        metric = METRICS.get(cell.metric.name)(**cell.metric.params)
        context = EvaluationContext(
            encoder=explained.trained.model.encoder.eval(),
            inputs=explained.inputs,
            labels=explained.labels,
            attributions=explained.attributions,
            baseline=cell.model.baseline,
            train_mean=data.train_inputs.mean(dim=0, keepdim=True).to(self.device),
            batch_size=self.suite.batch_size,
            device=self.device,
            seed=cell.seed,
            method_kind=cell.method_kind,
            corpus_labels=explained.corpus_labels,
            train_inputs=data.train_inputs,
            train_labels=data.train_labels,
            model=explained.trained.model,
            recipe=cell.model.recipe,
            explain=lambda inputs, labels=None: self.explain_inputs(
                cell, explained.trained, inputs, labels=labels
            ),
            retrain=lambda inputs, tag: self.retrain(cell, explained.trained, inputs, tag),
            explain_with=lambda encoder, inputs, labels=None: self.explain_inputs(
                cell, explained.trained, inputs, encoder, labels
            ),
            masks=self.explained_masks(cell),
        )
        seed_everything(cell.seed)
        with stopwatch(self.device) as elapsed:
            result = metric(context)
        n_examples = len(explained.inputs)
        return self.record(cell, result, metric.direction, elapsed.seconds) | {
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

    def explain_inputs(
        self,
        cell: Cell,
        trained: TrainedModel,
        inputs: torch.Tensor,
        encoder: torch.nn.Module | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The cell's feature method on any inputs (e.g. the training set, for ROAR), by
        default of the trained encoder; ``labels`` (of ``inputs``) reach methods that need
        them (COCOA's same-class corpus)."""
        encoder = trained.model.encoder.eval() if encoder is None else encoder
        # Seeded as in `explain` (the same draws: COCOA's corpus, RELAX's masks, as the
        # explanation being judged), and the metric's own draws go on afterwards.
        # With gradients even when the calling metric runs without them.
        with seeded(cell.attribution_seed), torch.enable_grad():
            return self._feature_explainer(cell, encoder)(inputs, labels)

    def _feature_explainer(
        self, cell: Cell, encoder: torch.nn.Module
    ) -> Callable[..., torch.Tensor]:
        """The cell's feature or unit method on ``encoder``, prepared on the training set:
        ``explain_all(inputs, labels=None)`` -> attributions against the model entry's
        baseline, ``batch_size`` at a time. The labels go to methods that need them only."""
        data = self.dataset(cell.model.dataset)
        method = METHODS.get(cell.method.name)(encoder, **cell.method.params)
        method.prepare(data.train_inputs, data.train_labels)
        baseline = cell.model.baseline
        reference = baseline.reference(data.train_inputs, data.train_labels).to(self.device)

        def explain_all(inputs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            inputs = inputs.to(self.device)
            if labels is not None:
                if len(labels) != len(inputs):
                    raise ValueError(f"{len(labels)} labels for {len(inputs)} explained inputs")
                labels = labels.to(self.device)

            def attribute(batch: slice) -> torch.Tensor:
                baselines = baseline(inputs[batch], reference)
                if not method.needs_labels:
                    return method.attribute(inputs[batch], baselines)
                return method.attribute(
                    inputs[batch], baselines, None if labels is None else labels[batch]
                )

            return in_batches(attribute, len(inputs), self.suite.batch_size).detach()

        return explain_all

    def retrain(
        self, cell: Cell, trained: TrainedModel, train_inputs: torch.Tensor, tag: str
    ) -> ZooModel:
        """A fresh model of the cell's zoo entry trained with its recipe on other training
        inputs (same labels), cached under the cell's method and metric and ``tag``."""
        data = self.dataset(cell.model.dataset)
        key = stable_hash({"retrained": trained.cache_key, "cell": cell.key, "tag": tag})
        # The metric's own draws go on afterwards; training needs gradients even when the
        # calling metric runs without them.
        with seeded(cell.seed), torch.enable_grad():
            model = self.new_model(cell)
            cached = self.cache.load(
                "models", key, lambda found: state_dict_problem(found.get("state_dict"), model)
            )
            if cached is not None:
                model.load_state_dict(cached["state_dict"])
                return model.to(self.device).eval()
            train_model(
                model,
                train_inputs,
                data.train_labels,
                cell.model.recipe,
                seed=cell.seed,
                device=self.device,
            )
        self.cache.save(
            "models", key, {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}
        )
        return model.eval()

    def evaluate_pair(self, pair: PairCell) -> dict[str, Any]:
        metric = METRICS.get(pair.first.metric.name)(**pair.first.metric.params)
        first, second = self.explain(pair.first), self.explain(pair.second)
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
        """The name of a finished cell's file: the suite's key of the cell and the
        fingerprint of the data it ran on (another ``--data-dir``, another key)."""
        members = (cell.first, cell.second) if isinstance(cell, PairCell) else (cell,)
        data = [self.dataset(member.model.dataset).fingerprint() for member in members]
        return stable_hash({"cell": cell.key, "data": data})

    @property
    def cells_dir(self) -> Path:
        return self.run_dir / "cells"

    def cell_path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.json"

    def read_finished(self, key: str) -> dict[str, Any] | None:
        return read_cell(self.cell_path(key), key)

    def run(self) -> list[dict[str, Any]]:
        """Compute every unfinished cell; return the records of all cells of the suite."""
        previous = torch.are_deterministic_algorithms_enabled()
        if self.suite.deterministic and self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(self.suite.deterministic, warn_only=True)
        try:
            return self._run()
        finally:
            torch.use_deterministic_algorithms(previous)

    def _run(self) -> list[dict[str, Any]]:
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
                self.train_seeds_side_by_side(needed)
            if self.executor == "ray":
                from lfxbench.run.executors import run_on_ray

                run_on_ray(self, groups, pending_pairs)
            else:
                self._run_locally(groups, pending_pairs)
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

    def _run_locally(self, groups: list[list[Cell]], pairs: list[PairCell]) -> None:
        total = sum(map(len, groups)) + len(pairs)
        with tqdm(total=total, desc=self.suite.name, unit="cell", disable=not self.progress) as bar:
            for group in groups:
                bar.set_postfix_str(
                    f"{group[0].model.id} seed {group[0].seed}: {group[0].method.id}"
                )
                self.run_group(group)
                bar.update(len(group))
            for pair in pairs:
                bar.set_postfix_str(
                    f"{pair.first.metric.id}: {pair.first.model.id}/"
                    f"{pair.first.method.id} vs {pair.second.model.id}/"
                    f"{pair.second.method.id}"
                )
                self.run_pair(pair)
                bar.update()

    def run_group(self, group: list[Cell]) -> None:
        """One explanation and every metric of it; each finished cell written at once."""
        explained = self.explain(group[0])
        for cell in group:
            atomic_write_json(self.cell_path(self.cell_key(cell)), self.evaluate(cell, explained))

    def run_pair(self, pair: PairCell) -> None:
        atomic_write_json(self.cell_path(self.cell_key(pair)), self.evaluate_pair(pair))


IDENTITY = ("suite", "model", "dataset", "method", "metric", "model_b", "method_b", "seed")


def records_to_tables(records: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """Tidy ``results`` (one row per measurement), ``curves`` and per-example ``samples``."""
    results, curves, samples = [], [], []
    for record in records:
        # Cells written by an older lfxbench may lack the newer fields: default them.
        record = {"model_b": "", "method_b": "", "samples": {}, **record}
        identity = {key: record[key] for key in IDENTITY}
        row = {
            k: v
            for k, v in record.items()
            if k not in ("curve", "curve_axes", "samples", "details")
        }
        row.update({f"detail_{name}": value for name, value in record["details"].items()})
        results.append(row)
        x_axis, y_axis = record["curve_axes"]
        for x, y in record["curve"]:
            curves.append(identity | {"x": x, "y": y, "x_label": x_axis, "y_label": y_axis})
        for group, values in record["samples"].items():
            samples.extend(identity | {"group": group, "value": value} for value in values)
    return {
        "results": pd.DataFrame(results),
        "curves": pd.DataFrame(curves),
        "samples": pd.DataFrame(samples),
    }
