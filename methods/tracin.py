"""Label-free TracIn (Pruthi et al., 2020): gradient agreement summed over checkpoints."""

from __future__ import annotations

import copy
from typing import Annotated

import torch
from pydantic import Field

from lfxbench.loss_gradients import EncoderLoss
from lfxbench.methods.base import ExampleMethod, TrainingCorpus
from lfxbench.registry import register_method


@register_method("tracin")
class TracIn(ExampleMethod):
    """Sum over checkpoints of lr × <∇L(train), ∇L(test)>, gradients of the encoder's params.

    TracInCP: ``score(test, train) = Σ_r lr_r <∇θ_r L(x_train), ∇θ_r L(x_test)>`` with ``L``
    the model's own per-example loss (reconstruction, denoising … : no labels) and ``θ_r``
    the *encoder's* parameters at the checkpoint ``r`` of ``corpus.checkpoints`` (the whole
    model's state is loaded; only the encoder is differentiated). A training example that
    pushed the encoder the way the test example's loss wants scores high.

    With no checkpoints the final weights stand in for a single one, with the recipe's
    learning rate (TracIn at the end of training: a gradient dot product).

    ``batch_size``: examples per vectorised gradient chunk (``None``: the corpus's).
    """

    # Its checkpoints are those training kept: nothing to sum for a model loaded as it is.
    needs_training_checkpoints = True

    needs_per_example_loss = True

    def __init__(self, batch_size: Annotated[int, Field(ge=1)] | None = None):
        self.batch_size = batch_size
        self._losses: list[EncoderLoss] = []
        self._learning_rates: list[float] = []
        self._corpus_gradients: list[torch.Tensor] = []
        self._chunk = 256

    def fit(self, corpus: TrainingCorpus) -> None:
        self._chunk = self.batch_size or corpus.batch_size
        self._losses, self._learning_rates, self._corpus_gradients = [], [], []
        if corpus.checkpoints:
            checkpoints = [(lr, state) for _, lr, state in corpus.checkpoints]
        else:
            checkpoints = [(corpus.recipe.lr, None)]
        for lr, state in checkpoints:
            model = corpus.model
            if state is not None:
                model = copy.deepcopy(corpus.model)
                model.load_state_dict(state)
            loss = EncoderLoss(model, corpus.recipe)
            gradients = loss.per_example_gradients(corpus.inputs, corpus.labels, self._chunk)
            self._losses.append(loss)
            self._learning_rates.append(lr)
            self._corpus_gradients.append(gradients)

    def attribute(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not self._losses:
            raise RuntimeError("TracIn.attribute called before fit")
        scores = None
        for loss, lr, corpus_gradients in zip(
            self._losses, self._learning_rates, self._corpus_gradients, strict=True
        ):
            test_gradients = loss.per_example_gradients(inputs, labels, self._chunk)
            # lr scales the [test, corpus] product: fewer numbers than either gradient matrix.
            product = (test_gradients @ corpus_gradients.T).mul_(lr)
            scores = product if scores is None else scores.add_(product)
        return scores
