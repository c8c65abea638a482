"""Label-free feature importance (Crabbé & van der Schaar, 2022).

Any attribution method that is linear in the explained function explains an encoder
``f`` at ``x`` through the scalar auxiliary function ``g_x(x~) = <f(x), f(x~)>``.
Captum computes the attribution; this module supplies ``g_x`` in batched form and makes
the one Captum call of every label-free wrapper (``LabelFreeCaptumMethod``).
"""

from __future__ import annotations

import inspect
import warnings
from enum import Enum
from typing import Any, ClassVar

import numpy as np
import torch
from captum.attr import Attribution
from torch import nn

from lfxbench.methods.base import FeatureMethod


class OwnLatents(Enum):
    """Stands for the reference latents ``h = f(x)`` where Captum's own forward pass already
    computes them, so they cost no encoder pass of their own: the auxiliary takes them,
    detached, from the latents of the rows it is evaluated on.

    ``ROWS``: every row is an explained example itself (Saliency evaluates ``g_x`` at
    ``x~ = x``). ``FIRST_HALF``: the rows are the explained examples followed by their
    baselines (DeepLift runs the model once on ``cat([inputs, baselines])``), and every
    row takes the latent of its example in the first half.
    """

    ROWS = "rows"
    FIRST_HALF = "first_half"


class LabelFreeAuxiliary(nn.Module):
    """``g(x~, h) = <h, f(x~)>`` with ``h = f(x)`` precomputed for every explained example.

    ``h`` travels as an additional forward argument rather than as module state: Captum
    expands additional arguments exactly as it expands the inputs (step-major for
    Integrated Gradients, sample-interleaved for the noise tunnel behind Gradient SHAP,
    concatenated with baselines for DeepLift), so every expanded row meets its own
    reference latent whatever the method's layout. An ``OwnLatents`` in its place takes
    ``h`` from this forward pass instead (a constant either way: no gradient flows to it).
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    @torch.no_grad()
    def reference_latents(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encoder(inputs).flatten(1)

    def forward(
        self, inputs: torch.Tensor, reference_latents: torch.Tensor | OwnLatents
    ) -> torch.Tensor:
        latents = self.encoder(inputs).flatten(1)
        if isinstance(reference_latents, OwnLatents):
            reference_latents = own_reference_latents(latents.detach(), reference_latents)
        return (latents * reference_latents).sum(dim=1)


def own_reference_latents(latents: torch.Tensor, layout: OwnLatents) -> torch.Tensor:
    """The reference latent of every row, read off the (detached) latents of the rows."""
    if layout is OwnLatents.ROWS:
        return latents
    if len(latents) % 2:
        raise ValueError(f"{len(latents)} rows cannot be explained examples and their baselines")
    examples = latents[: len(latents) // 2]
    return torch.cat([examples, examples])


def call_captum(
    captum: Attribution,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    own_leaves: bool = False,
    **kwargs: Any,
) -> torch.Tensor:
    """One call of ``captum.attribute`` on the whole batch, the inputs handed over as the
    Captum class needs them: detached where it differentiates leaves of its own
    (``own_leaves``: its interpolated or noisy points, so a graph back to the inputs would
    be wasted work), otherwise as a differentiable leaf (Captum warns when it must make
    them one itself). ``baselines`` go only to a Captum method whose ``attribute`` takes
    them; ``kwargs`` (``additional_forward_args``, ``target``, the method's own options)
    go as they are."""
    inputs = inputs.detach() if own_leaves else inputs.detach().requires_grad_()
    if "baselines" in inspect.signature(captum.attribute).parameters:
        kwargs["baselines"] = baselines
    with warnings.catch_warnings():
        # DeepLift announces, on every call, that it hooks the ReLUs: expected, not news.
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
        return captum.attribute(inputs, **kwargs)


class LabelFreeCaptumMethod(FeatureMethod):
    """A Captum attribution method applied to the label-free auxiliary function.

    A subclass names its Captum class (``captum_method``) and returns its own Captum
    options from ``captum_kwargs``; the one Captum call, with the baselines and ``f(x)`` as
    an additional forward argument, is this class's.
    """

    captum_method: ClassVar[type[Attribution]]
    # Where the method's Captum call itself encodes the explained inputs (see OwnLatents),
    # ``h`` is read off that pass; otherwise (None) one no-grad pass computes it.
    own_latents: ClassVar[OwnLatents | None] = None
    # True where Captum differentiates points of its own (Integrated Gradients' path,
    # Gradient SHAP's samples): the inputs then go detached (see ``call_captum``).
    own_leaves: ClassVar[bool] = False
    # True where Captum draws from numpy's global generator (Gradient SHAP's interpolation
    # points and baseline rows): it is seeded from torch's before every call, so that
    # torch.manual_seed alone makes a run repeatable.
    draws_from_numpy: ClassVar[bool] = False

    def __init__(self, encoder: nn.Module):
        super().__init__(encoder)
        self.explain_function(LabelFreeAuxiliary(encoder))

    def explain_function(self, auxiliary: nn.Module) -> None:
        """Point the Captum method at another scalar auxiliary: a module with
        ``reference_latents(inputs)`` (one row per explained example, expanded by Captum with
        the inputs) and ``forward(inputs, reference_latents) -> [len(inputs)]`` (COCOA)."""
        self.auxiliary = auxiliary
        self.captum = self.captum_method(auxiliary)

    def captum_kwargs(self) -> dict[str, Any]:
        """The method's own keyword arguments of ``self.captum.attribute`` (its number of
        steps, ...); the inputs, baselines and additional forward arguments are not among
        them."""
        return {}

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        if self.own_latents is not None and isinstance(self.auxiliary, LabelFreeAuxiliary):
            reference_latents: torch.Tensor | OwnLatents = self.own_latents
        else:
            reference_latents = self.auxiliary.reference_latents(inputs)
        return self.captum_attribute(inputs, baselines, (reference_latents,)).detach()

    def captum_attribute(
        self,
        inputs: torch.Tensor,
        baselines: torch.Tensor,
        additional_forward_args: tuple[Any, ...],
    ) -> torch.Tensor:
        """One call of ``self.captum.attribute`` for the whole batch, with the method's
        ``captum_kwargs``. (A subclass may still override it to call Captum its own way.)"""
        if self.draws_from_numpy:
            np.random.seed(int(torch.randint(2**31 - 1, (1,)).item()))
        return call_captum(
            self.captum,
            inputs,
            baselines,
            own_leaves=self.own_leaves,
            additional_forward_args=additional_forward_args,
            **self.captum_kwargs(),
        )
