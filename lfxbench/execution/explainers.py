"""Explanations of a run: each model x method x seed explained once (or loaded from the
cache) on the examples its kind of method explains, timed between two calibrations; and the
cell's method applied to any inputs or encoder, for metrics that need more explanations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from lfxbench.batching import in_batches
from lfxbench.cells import Cell
from lfxbench.datasets.base import balanced_subset
from lfxbench.environment import seed_everything, seeded
from lfxbench.errors import LfxbenchError
from lfxbench.execution import progress
from lfxbench.execution.trained_models import TrainedModel, TrainedModels
from lfxbench.methods.base import TrainingCorpus
from lfxbench.registry import METHODS
from lfxbench.storage import attribution_problem
from lfxbench.timing import calibration_seconds, stopwatch


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


class Explainers:
    """The explanations of a run, of the models ``models`` trains or loads (and on their
    suite, cache, device and data)."""

    def __init__(self, models: TrainedModels):
        self.models = models
        self.suite, self.cache, self.device = models.suite, models.cache, models.device
        self.dataset = models.dataset

    def examples(self, cell: Cell) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
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
        trained = self.models.get(cell)
        data = self.dataset(cell.model.dataset)
        inputs, labels, corpus = self.examples(cell)
        inputs, labels = inputs.to(self.device), labels.to(self.device)
        corpus_labels = None if corpus is None else data.train_labels[corpus].to(self.device)
        key = cell.attribution_cache_key(data.fingerprint())
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
        # The speed of a shared machine drifts within a run: timed next to the attribution,
        # the workload normalises more of the drift than once per run. Before seeding:
        # building its network draws from the global generator.
        calibration = calibration_seconds(self.device, repeats=3)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            held = torch.cuda.memory_allocated(self.device)  # models, data: not the method's
        seed_everything(cell.attribution_seed)
        named = f"{cell.method.id}: {cell.model.id} seed {cell.seed}"
        batches = math.ceil(len(inputs) / self.suite.batch_size)
        with stopwatch(self.device) as elapsed:
            if cell.method_kind != "example":  # feature or per-unit: same signature
                progress.stage(f"explaining, {named}", batches, "batches")
                values = self.feature_explainer(cell, model.encoder)(inputs, labels)
            else:
                progress.stage(f"fitting {named}")
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
                progress.stage(f"scoring the corpus, {named}", batches, "batches")

                def scores(batch: slice) -> torch.Tensor:
                    values = method.attribute(inputs[batch], labels[batch])
                    progress.step()
                    return values

                values = in_batches(scores, len(inputs), self.suite.batch_size).detach()
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
            return self.feature_explainer(cell, encoder)(inputs, labels)

    def feature_explainer(
        self, cell: Cell, encoder: torch.nn.Module
    ) -> Callable[..., torch.Tensor]:
        """The cell's feature or unit method on ``encoder``, prepared on the training set:
        ``explain_all(inputs, labels=None)`` -> attributions against the model entry's
        baseline, ``batch_size`` at a time. The labels go to methods that need them only."""
        data = self.dataset(cell.model.dataset)
        method = METHODS.get(cell.method.name)(encoder, **cell.method.params)
        method.prepare(data.train_inputs, data.train_labels)
        baseline_fn = cell.model.baseline.bind(data.train_inputs, data.train_labels)

        def explain_all(inputs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            inputs = inputs.to(self.device)
            if labels is not None:
                if len(labels) != len(inputs):
                    raise ValueError(f"{len(labels)} labels for {len(inputs)} explained inputs")
                labels = labels.to(self.device)

            def attribute(batch: slice) -> torch.Tensor:
                baselines = baseline_fn(inputs[batch])
                if not method.needs_labels:
                    values = method.attribute(inputs[batch], baselines)
                else:
                    values = method.attribute(
                        inputs[batch], baselines, None if labels is None else labels[batch]
                    )
                progress.step()
                return values

            return in_batches(attribute, len(inputs), self.suite.batch_size).detach()

        return explain_all
