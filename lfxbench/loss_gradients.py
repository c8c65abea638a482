"""Gradients and Hessian-vector products of a zoo model's own loss w.r.t. its encoder.

What loss-based example importance (TracIn, Influence Functions) differentiates: the
per-example loss ``model.loss(inputs, labels, recipe)`` (unsupervised for autoencoders) as
a function of the parameters ``model.encoder_parameters()`` alone. Every other parameter
(the decoder, a head) and every buffer (BatchNorm statistics) is held fixed at its current
value, and the model runs in eval mode, so that one example's loss does not depend on the
others of its batch. Everything is batched with ``torch.func``: per-example gradients are
one ``vmap(grad(...))`` per chunk, and a Hessian is applied to a whole block of vectors
by one double backward batched over the vectors (``is_grads_batched``).

Gradients are flat: ``[N, P]`` with ``P`` the number of encoder parameters, in the order of
``model.named_parameters()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe

__all__ = [
    "EncoderLoss",
    "encoder_hvp",
    "fixed_randomness",
    "per_example_gradients",
]


class _LossModule(nn.Module):
    """``model.loss`` as a ``forward``, so that ``functional_call`` can swap the parameters."""

    def __init__(self, model: ZooModel, recipe: Recipe):
        super().__init__()
        self.model = model
        self.recipe = recipe

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model.loss(inputs, labels, self.recipe)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (BatchNorm on running statistics, no dropout); each module's flag restored."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def _autograd_on(*tensors: torch.Tensor) -> Iterator[list[torch.Tensor]]:
    """Gradients on even under a caller's ``no_grad``/``inference_mode``; no inference tensors."""
    with torch.inference_mode(False), torch.enable_grad():
        yield [tensor.clone() if tensor.is_inference() else tensor for tensor in tensors]


@contextmanager
def fixed_randomness(seed: int, device: torch.device | str) -> Iterator[None]:
    """Run a block with the CPU and ``device`` RNGs seeded by ``seed``, then restore them.

    LiSSA applies the Hessian of one sampled minibatch to several blocks of vectors: with a
    stochastic loss (denoising, inpainting) the noise must then be the same for every block,
    so that the estimate does not depend on how the vectors were split.
    """
    device = torch.device(device)
    accelerator = device.type if device.type != "cpu" else "cuda"
    with torch.random.fork_rng(
        devices=[device] if device.type != "cpu" else [], device_type=accelerator
    ):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


class EncoderLoss:
    """A zoo model's per-example loss as a pure function of its encoder parameters.

    The parameters are read from ``model`` when an instance is built (``load_state_dict``
    into the same model afterwards is seen too: the tensors are shared, not copied).
    """

    def __init__(self, model: ZooModel, recipe: Recipe):
        self.model = model
        self._module = _LossModule(model, recipe)
        encoder_ids = {id(parameter) for parameter in model.encoder_parameters()}
        named = dict(model.named_parameters())
        # Prefixed with "model.": the names of the parameters inside the _LossModule wrapper.
        self.names = [name for name, parameter in named.items() if id(parameter) in encoder_ids]
        if not self.names:
            raise ValueError(f"{type(model).__name__} has no encoder parameters to differentiate")
        self._fixed = {
            f"model.{name}": parameter.detach()
            for name, parameter in named.items()
            if id(parameter) not in encoder_ids
        }
        self._fixed.update({f"model.{name}": buffer for name, buffer in model.named_buffers()})
        self._shapes = [named[name].shape for name in self.names]
        self._sizes = [named[name].numel() for name in self.names]
        self.n_parameters = sum(self._sizes)

    def parameters(self) -> dict[str, torch.Tensor]:
        """The current encoder parameters, detached, keyed by their name in the model."""
        named = dict(self.model.named_parameters())
        return {name: named[name].detach() for name in self.names}

    def flatten(self, tree: dict[str, torch.Tensor], batch_dims: int = 0) -> torch.Tensor:
        """``{name: [*batch, *shape]}`` -> ``[*batch, P]``."""
        return torch.cat(
            [tree[name].reshape(*tree[name].shape[:batch_dims], -1) for name in self.names],
            dim=batch_dims,
        )

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``[P]`` -> ``{name: shape}``."""
        pieces = flat.split(self._sizes)
        return {
            name: piece.reshape(shape)
            for name, piece, shape in zip(self.names, pieces, self._shapes, strict=True)
        }

    def __call__(
        self, parameters: dict[str, torch.Tensor], inputs: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Per-example loss ``[B]`` with the encoder parameters replaced by ``parameters``."""
        swapped = {f"model.{name}": value for name, value in parameters.items()}
        return functional_call(self._module, (swapped, self._fixed), (inputs, labels))

    def _example_loss(
        self, parameters: dict[str, torch.Tensor], inputs: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        return self(parameters, inputs.unsqueeze(0), labels.unsqueeze(0)).squeeze(0)

    def per_example_gradients(
        self, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
    ) -> torch.Tensor:
        """``[N, P]``: the gradient of every example's own loss, ``batch_size`` at a time.

        ``randomness="different"``: a stochastic loss draws fresh noise for every example.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        gradient = vmap(grad(self._example_loss), in_dims=(None, 0, 0), randomness="different")
        with (
            _eval_mode(self.model),
            _autograd_on(inputs, labels) as (inputs, labels),
            warnings.catch_warnings(),
        ):
            # torch has no vmap rule for the CPU LSTM kernel and says so on every call; the
            # fallback is correct (tested), only slower.
            warnings.filterwarnings("ignore", message="There is a performance drop")
            parameters = self.parameters()
            # Each chunk's gradients are copied once, straight into their rows and columns:
            # no [chunk, P] concatenation per chunk, then no second one of all chunks.
            flat = next(iter(parameters.values())).new_empty(len(inputs), self.n_parameters)
            for start in range(0, len(inputs), batch_size):
                stop = start + batch_size
                tree = gradient(parameters, inputs[start:stop], labels[start:stop])
                columns = flat[start:stop].split(self._sizes, dim=1)
                for name, column in zip(self.names, columns, strict=True):
                    column.copy_(tree[name].reshape(len(column), -1))
        return flat

    def hvp_bytes_per_pair(self, inputs: torch.Tensor, labels: torch.Tensor) -> int:
        """Estimated memory of one (vector, example) pair in :meth:`hvp`.

        The second backward, batched over the vectors, holds per vector and example about
        what the forward saved for that example (its activations' gradients and the
        gradient-of-gradient temporaries replace one another as it proceeds). Counted with
        ``saved_tensors_hooks`` on one and two examples: their difference leaves out the
        parameters, which are saved once per batch, not per example.
        """

        def saved_bytes(n: int) -> int:
            total = 0

            def pack(tensor: torch.Tensor) -> torch.Tensor:
                nonlocal total
                total += tensor.numel() * tensor.element_size()
                return tensor

            with (
                _eval_mode(self.model),
                _autograd_on(inputs[:n], labels[:n]) as (x, y),
                torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
            ):
                parameters = {
                    name: value.clone().requires_grad_()
                    for name, value in self.parameters().items()
                }
                self(parameters, x, y)
            return total

        one = saved_bytes(1)
        per_example = saved_bytes(2) - one if len(inputs) >= 2 else one
        return max(per_example, 1)

    def hessian_operator(
        self, inputs: torch.Tensor, labels: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``vectors [K, P] -> [K, P]``: the Hessian of the *mean* loss over ``inputs``.

        The forward and the first backward (``create_graph``) run once, here; every call
        then runs only the second backward, batched over its ``K`` vectors
        (``is_grads_batched``, a ``vmap`` inside autograd), and keeps the graph for the next
        one. So every call sees the same Hessian (the same noise draw of a stochastic loss),
        and a solver that applies it many times (Lanczos) pays for the forward once. The
        graph holds what the forward saved, about :meth:`hvp_bytes_per_pair` per example,
        for as long as the operator is referenced.
        """
        with _eval_mode(self.model), _autograd_on(inputs, labels) as (inputs, labels):
            parameters = {
                name: value.clone().requires_grad_() for name, value in self.parameters().items()
            }
            leaves = list(parameters.values())
            loss = self(parameters, inputs, labels).mean()
            gradients = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
            flat = torch.cat(
                [
                    leaf.new_zeros(leaf.numel()) if g is None else g.reshape(-1)
                    for leaf, g in zip(leaves, gradients, strict=True)
                ]
            )

        def hessian_times(vectors: torch.Tensor) -> torch.Tensor:
            if vectors.ndim != 2 or vectors.shape[1] != self.n_parameters:
                raise ValueError(
                    f"vectors must be [K, {self.n_parameters}], got {list(vectors.shape)}"
                )
            if not flat.requires_grad:  # the loss is (at most) linear in the parameters
                return torch.zeros_like(vectors)
            # One vector (a Lanczos step) goes without the batching vmap, a little faster.
            single = len(vectors) == 1
            with _autograd_on(vectors) as (vectors,):
                products = torch.autograd.grad(
                    flat,
                    leaves,
                    grad_outputs=vectors[0].to(flat.dtype) if single else vectors.to(flat.dtype),
                    is_grads_batched=not single,
                    retain_graph=True,
                    allow_unused=True,
                    materialize_grads=True,
                )
            if single:
                return self.flatten(dict(zip(self.names, products, strict=True)))[None]
            return self.flatten(dict(zip(self.names, products, strict=True)), batch_dims=1)

        return hessian_times

    def hvp(
        self, inputs: torch.Tensor, labels: torch.Tensor, vectors: torch.Tensor
    ) -> torch.Tensor:
        """``[K, P]``: the Hessian of the *mean* loss over ``inputs`` applied to each vector
        (:meth:`hessian_operator`, used once)."""
        return self.hessian_operator(inputs, labels)(vectors)


def per_example_gradients(
    model: ZooModel,
    recipe: Recipe,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 256,
) -> torch.Tensor:
    """``[N, P]`` gradients of each example's ``model.loss`` w.r.t. the encoder parameters."""
    return EncoderLoss(model, recipe).per_example_gradients(inputs, labels, batch_size)


def encoder_hvp(
    model: ZooModel,
    recipe: Recipe,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    vectors: torch.Tensor,
) -> torch.Tensor:
    """``[K, P]``: the encoder Hessian of the mean ``model.loss`` over ``inputs``, times vectors."""
    return EncoderLoss(model, recipe).hvp(inputs, labels, vectors)
