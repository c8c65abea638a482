"""Models retrained on subsets of the training set (the counterfactual ground truth of
example importance), trained side by side and cached as their outputs on the explained
test examples. Every key comes from ``cells.py``.

Two kinds, both answering "what does the model do on this test example without these
training examples?":

* random subsets drawn from a ``SubsetSpec`` (LDS, the random reference of
  ``retrain_without_top``): they do not depend on the method, so they are keyed without it
  (``Cell.subset_models_key``), trained by the first cell that asks and read from the cache
  by every other method of the model and seed;
* subsets a metric chooses from the method's scores (``retrain_without_top``): keyed by
  the cell, as ROAR's retrained models (``Cell.retrained_subsets_key``).

Each subset model is a fresh model of the zoo entry, initialised with the cell's seed (the
full model's initial weights) and trained with the model's recipe on its subset, as
``train_model`` would train it on that subset alone (its own validation split and early
stopping drawn from the subset), so the models differ by their data and nothing else. The
subsets of one call have equal sizes, which lets them train as one stacked model
(``ensemble.train_side_by_side`` with per-member example indices), at most
``MEMBERS_PER_STACK`` at a time; a model that cannot be stacked (``ZooModel.stackable``)
trains its subsets one after another.
"""

from __future__ import annotations

import torch

from lfxbench.batching import encode, in_batches
from lfxbench.cells import Cell
from lfxbench.environment import seeded
from lfxbench.errors import LfxbenchError
from lfxbench.execution import progress
from lfxbench.execution.ensemble import train_side_by_side
from lfxbench.execution.explainers import Explained
from lfxbench.execution.trained_models import TrainedModels
from lfxbench.execution.training import train_model
from lfxbench.models.base import ZooModel
from lfxbench.registry import MODELS
from lfxbench.subsets import SubsetOutputs, SubsetSpec, draw_subsets, subset_outputs_problem
from lfxbench.timing import stopwatch

# Members of one stacked model: their activations are members x as large; part of the key,
# because a stochastic objective's noise is drawn per stack.
MEMBERS_PER_STACK = 32
CACHE_KIND = "subsets"


class SubsetModels:
    """The subset models of a run, on the trained models, cache and device of ``models``."""

    def __init__(self, models: TrainedModels):
        self.models, self.cache, self.device = models, models.cache, models.device
        self.suite = models.suite
        # Training time spent on subsets every method shares: the runner charges it to no
        # method's metric time (it would fall on whichever method came first).
        self.shared_seconds = 0.0

    def shared(self, cell: Cell, explained: Explained, spec: SubsetSpec) -> SubsetOutputs:
        """Models on the random subsets ``spec`` draws, shared by every method."""
        n_train = self._whole_training_set(cell, explained)
        keep = draw_subsets(n_train, spec, cell.seed)
        key = cell.subset_models_key(
            self.models.data_of(cell), spec.config() | {"stack": MEMBERS_PER_STACK}
        )
        outputs = self._outputs(cell, explained, keep, key, f"{spec.n_subsets} random subsets")
        self.shared_seconds += outputs.seconds
        return outputs

    def retrain(
        self, cell: Cell, explained: Explained, keep: torch.Tensor, tag: str
    ) -> SubsetOutputs:
        """Models on the subsets ``keep`` (bool ``[K, n_train]``) a metric chose for this
        cell, cached under its ``tag`` (and checked against ``keep`` when read back)."""
        n_train = self._whole_training_set(cell, explained)
        if keep.dim() != 2 or keep.shape[1] != n_train or keep.dtype != torch.bool:
            raise ValueError(f"keep: a bool mask [K, {n_train}], got {tuple(keep.shape)}")
        key = cell.retrained_subsets_key(self.models.data_of(cell), tag)
        return self._outputs(cell, explained, keep.cpu(), key, tag)

    def _whole_training_set(self, cell: Cell, explained: Explained) -> int:
        n_train = len(self.models.dataset(cell.model.dataset).train_labels)
        corpus = explained.corpus_labels
        if corpus is None or len(corpus) != n_train:  # validation refuses such suites
            raise LfxbenchError(
                f"{cell.metric.id}: retraining without corpus examples needs the corpus to be "
                f"the whole training set of model {cell.model.id!r} (examples.n_corpus: null)"
            )
        return n_train

    def _outputs(
        self, cell: Cell, explained: Explained, keep: torch.Tensor, key: str, named: str
    ) -> SubsetOutputs:
        n_test = len(explained.inputs)
        cached = self.cache.load(
            CACHE_KIND, key, lambda found: subset_outputs_problem(found, keep, n_test)
        )
        if cached is not None:
            return SubsetOutputs(
                keep=cached["keep"],
                loss=cached["loss"].to(self.device),
                latent_cosine=cached["latent_cosine"].to(self.device),
                reference_loss=cached["reference_loss"].to(self.device),
                seconds=0.0,
            )
        sizes = keep.sum(dim=1).unique()
        if len(sizes) != 1:
            raise ValueError(f"subsets of one call must have one size, got {sizes.tolist()}")
        rows = torch.stack([row.nonzero().squeeze(1) for row in keep])
        losses, cosines = [], []
        reference = explained.trained.model.eval()
        reference_loss = self.test_loss(cell, reference, explained)
        reference_latent = self.latents(reference, explained)
        progress.stage(
            f"retraining {cell.model.id} seed {cell.seed} on {named}", len(keep), "models"
        )
        with stopwatch(self.device) as elapsed:
            for start in range(0, len(keep), MEMBERS_PER_STACK):
                chunk = rows[start : start + MEMBERS_PER_STACK]
                # Every member starts from the full model's initial weights, so that the
                # models differ by their training examples only. Training needs gradients
                # even where the calling metric runs without them.
                with seeded(cell.seed), torch.enable_grad():
                    members = [self.models.new_model(cell) for _ in chunk]
                    self._train(cell, members, chunk)
                for model in members:
                    losses.append(self.test_loss(cell, model, explained))
                    latent = self.latents(model, explained)
                    cosines.append(torch.cosine_similarity(latent, reference_latent, dim=1))
                    progress.step()
        outputs = SubsetOutputs(
            keep=keep,
            loss=torch.stack(losses),
            latent_cosine=torch.stack(cosines),
            reference_loss=reference_loss,
            seconds=elapsed.seconds,
        )
        self.cache.save(CACHE_KIND, key, outputs.payload())
        return outputs

    def _train(self, cell: Cell, members: list[ZooModel], rows: torch.Tensor) -> None:
        """``members[m]`` trained on the training examples ``rows[m]``: stacked where the
        architecture allows, else one by one (the same models, up to float noise)."""
        data, recipe = self.models.dataset(cell.model.dataset), cell.model.recipe
        if MODELS.get(cell.model.name).stackable:
            seeds = [cell.seed] * len(members)
            inputs, labels = data.train_inputs, data.train_labels
            train_side_by_side(members, inputs, labels, recipe, seeds, self.device, rows)
            return
        for model, row in zip(members, rows, strict=True):
            inputs, labels = data.train_inputs[row], data.train_labels[row]
            train_model(model, inputs, labels, recipe, seed=cell.seed, device=self.device)

    @torch.no_grad()
    def test_loss(self, cell: Cell, model: ZooModel, explained: Explained) -> torch.Tensor:
        """``model``'s per-example loss on the explained examples; a stochastic objective's
        noise is drawn the same for every model (common random numbers: the outputs of two
        models then differ by the models, not by the noise)."""
        model.eval()
        inputs, labels, recipe = explained.inputs, explained.labels, cell.model.recipe
        with seeded(cell.seed):
            return in_batches(
                lambda batch: model.loss(inputs[batch], labels[batch], recipe),
                len(inputs),
                self.suite.batch_size,
            ).detach()

    @torch.no_grad()
    def latents(self, model: ZooModel, explained: Explained) -> torch.Tensor:
        return encode(model.encoder.eval(), explained.inputs, self.suite.batch_size)
