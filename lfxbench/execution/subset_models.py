"""Models retrained on subsets of the training set (the counterfactual ground truth of
example importance), trained side by side and cached as their outputs on the explained
test examples. Every key comes from ``cells.py``.

Two kinds, both answering "what does the model do on this test example without these
training examples?":

* random subsets drawn from a ``SubsetSpec`` (LDS, the random reference of
  ``retrain_without_top``): they do not depend on the method, so they are keyed without it
  (``Cell.subset_models_key``) and trained once for every method of the model and seed;
* subsets a metric chooses from the method's scores (``ChosenSubsets``, as
  ``retrain_without_top``'s): keyed by the cell, as ROAR's retrained models
  (``Cell.retrained_subsets_key``).

Each subset model is a fresh model of the zoo entry, initialised with the cell's seed (the
full model's initial weights) and trained with the model's recipe on its subset exactly as
``train_model`` would train it on that subset alone (its own validation split and early
stopping drawn from the subset, the seed's random stream), so the models differ by their
data and nothing else. Models on subsets of one size train as one stacked model
(``ensemble.train_side_by_side`` with per-member example indices), at most
``MEMBERS_PER_STACK`` at a time, whatever cell asked for them: ``train_ahead`` gathers the
subsets every method of a model and seed will ask for and trains them in one pass before
their cells run. A model that cannot be stacked (``ZooModel.stackable``) trains its
subsets one after another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
from lfxbench.subsets import (
    SubsetOutputs,
    SubsetSpec,
    WantedSubsets,
    draw_subsets,
    subset_outputs_problem,
)
from lfxbench.timing import stopwatch

# Members of one stacked model at most (their activations are members x as large).
MEMBERS_PER_STACK = 32
CACHE_KIND = "subsets"


def stacks(n_models: int) -> list[slice]:
    """``n_models`` subset models in stacks of even sizes, none above ``MEMBERS_PER_STACK``."""
    size = math.ceil(n_models / math.ceil(n_models / MEMBERS_PER_STACK))
    return [slice(start, start + size) for start in range(0, n_models, size)]


@dataclass
class RetrainingTime:
    """The subset models one cell's metric read, by who pays for them: ``shared``, the
    training time of random subsets every method shares (charged to none); ``own``, that of
    the subsets chosen for the cell (its metric time); ``in_call``, training done while the
    metric ran (already inside its measured time)."""

    shared: float = 0.0
    own: float = 0.0
    in_call: float = 0.0


@dataclass
class _Wanted:
    """One ask for subset models, resolved: the cell and its explanation, the subsets, the
    cache key and how the progress display names them."""

    cell: Cell
    explained: Explained
    keep: torch.Tensor
    key: str
    shared: bool
    named: str


class SubsetModels:
    """The subset models of a run, on the trained models, cache and device of ``models``."""

    def __init__(self, models: TrainedModels):
        self.models, self.cache, self.device = models, models.cache, models.device
        self.suite = models.suite

    def outputs(
        self, cell: Cell, explained: Explained, wanted: WantedSubsets, time: RetrainingTime
    ) -> SubsetOutputs:
        """The outputs of the models on ``wanted``, cached or trained now; their training
        time is added to ``time``."""
        resolved = self._resolve(cell, explained, wanted)
        outputs = self._cached(resolved)
        if outputs is None:
            (outputs,) = self._train([resolved])
            time.in_call += outputs.seconds
        if resolved.shared:
            time.shared += outputs.seconds
        else:
            time.own += outputs.seconds
        return outputs

    def train_ahead(self, wanted: list[tuple[Cell, Explained, WantedSubsets]]) -> None:
        """Train every model asked for in ``wanted`` (the cells of one model and seed) that
        the cache lacks, those of one subset size stacked together, so that the cells then
        read them from the cache. Random subsets several cells want train once."""
        todo: dict[str, _Wanted] = {}
        for cell, explained, subsets in wanted:
            resolved = self._resolve(cell, explained, subsets)
            if resolved.key not in todo and self._cached(resolved) is None:
                todo[resolved.key] = resolved
        by_size: dict[tuple[str, int, int], list[_Wanted]] = {}
        for resolved in todo.values():
            size = int(resolved.keep[0].sum())
            by_size.setdefault((resolved.cell.model.id, resolved.cell.seed, size), []).append(
                resolved
            )
        for group in by_size.values():
            self._train(group)

    def _resolve(self, cell: Cell, explained: Explained, wanted: WantedSubsets) -> _Wanted:
        n_train = len(self.models.dataset(cell.model.dataset).train_labels)
        corpus = explained.corpus_labels
        if corpus is None or len(corpus) != n_train:  # validation refuses such suites
            raise LfxbenchError(
                f"{cell.metric.id}: retraining without corpus examples needs the corpus to be "
                f"the whole training set of model {cell.model.id!r} (examples.n_corpus: null)"
            )
        data = self.models.data_of(cell)
        if isinstance(wanted, SubsetSpec):
            keep = draw_subsets(n_train, wanted, cell.seed)
            key = cell.subset_models_key(data, wanted.config())
            return _Wanted(cell, explained, keep, key, True, f"{wanted.n_subsets} random subsets")
        keep = wanted.keep
        if keep.dim() != 2 or keep.shape[1] != n_train or keep.dtype != torch.bool:
            raise ValueError(f"keep: a bool mask [K, {n_train}], got {tuple(keep.shape)}")
        if len(keep.sum(dim=1).unique()) != 1:
            raise ValueError(f"subsets of one ask must have one size, got {keep.sum(dim=1)}")
        key = cell.retrained_subsets_key(data, wanted.tag)
        return _Wanted(cell, explained, keep.cpu(), key, False, f"{wanted.tag} ({cell.method.id})")

    def _cached(self, wanted: _Wanted) -> SubsetOutputs | None:
        n_test = len(wanted.explained.inputs)
        cached = self.cache.load(
            CACHE_KIND, wanted.key, lambda found: subset_outputs_problem(found, wanted.keep, n_test)
        )
        if cached is None:
            return None
        return SubsetOutputs(
            keep=cached["keep"],
            loss=cached["loss"].to(self.device),
            latent_cosine=cached["latent_cosine"].to(self.device),
            reference_loss=cached["reference_loss"].to(self.device),
            seconds=float(cached["seconds"]),
        )

    def _train(self, group: list[_Wanted]) -> list[SubsetOutputs]:
        """The models of every ask of ``group`` (one model, seed and subset size), trained
        in stacks of up to ``MEMBERS_PER_STACK`` across asks and cached per ask; each
        model's training time is its stack's over the stack's size."""
        cell = group[0].cell
        owners = [index for index, wanted in enumerate(group) for _ in wanted.keep]
        # Each row's kept positions, in order (equal counts: `nonzero` is row-major).
        rows = torch.cat([w.keep.nonzero()[:, 1].view(len(w.keep), -1) for w in group])
        losses: list[list[torch.Tensor]] = [[] for _ in group]
        cosines: list[list[torch.Tensor]] = [[] for _ in group]
        seconds = [0.0] * len(group)
        references = [self._reference(wanted) for wanted in group]
        named = group[0].named if len(group) == 1 else f"{len(group)} sets of subsets"
        progress.stage(
            f"retraining {cell.model.id} seed {cell.seed} on {named}", len(rows), "models"
        )
        for stack in stacks(len(rows)):
            chunk, start = rows[stack], stack.start
            # Every member starts from the full model's initial weights, so that the models
            # differ by their training examples only. Training needs gradients even where
            # the calling metric runs without them.
            with stopwatch(self.device) as elapsed, seeded(cell.seed), torch.enable_grad():
                members = [self.models.new_model(cell) for _ in chunk]
                self._train_members(cell, members, chunk)
            for offset, model in enumerate(members):
                owner = owners[start + offset]
                wanted, reference_latent = group[owner], references[owner][1]
                losses[owner].append(self.test_loss(wanted.cell, model, wanted.explained))
                latent = self.latents(model, wanted.explained)
                cosines[owner].append(torch.cosine_similarity(latent, reference_latent, dim=1))
                seconds[owner] += elapsed.seconds / len(chunk)
                progress.step()
        outputs = []
        for index, wanted in enumerate(group):
            result = SubsetOutputs(
                keep=wanted.keep,
                loss=torch.stack(losses[index]),
                latent_cosine=torch.stack(cosines[index]),
                reference_loss=references[index][0],
                seconds=seconds[index],
            )
            self.cache.save(CACHE_KIND, wanted.key, result.payload())
            outputs.append(result)
        return outputs

    def _reference(self, wanted: _Wanted) -> tuple[torch.Tensor, torch.Tensor]:
        """The full model's loss and latents on the ask's explained examples."""
        reference = wanted.explained.trained.model.eval()
        loss = self.test_loss(wanted.cell, reference, wanted.explained)
        return loss, self.latents(reference, wanted.explained)

    def _train_members(self, cell: Cell, members: list[ZooModel], rows: torch.Tensor) -> None:
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
