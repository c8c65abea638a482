"""The label-free XAI paper's ECG5000 LSTM reconstruction autoencoder (its Table 6).

Architecture (the paper's Table 6 and its public code, a recurrent autoencoder after
curiousily's ECG5000 tutorial): encoder LSTM(1 -> 2 d_H), LSTM(2 d_H -> d_H), the latent
being the second LSTM's hidden state at the last time step; decoder: the latent copied at
every time step into LSTM(d_H -> d_H), LSTM(d_H -> 2 d_H) and a Linear(2 d_H -> 1) per time
step. Loss: L1 between the series and its reconstruction, the mean over time steps.

Inputs are channel-first series ``[B, 1, T]`` (what the dataset provides); the LSTMs run on
``[B, T, 1]`` (transposed inside).

**cuDNN and eval mode.** cuDNN's RNN backward refuses to run unless the module is in
training mode ("cudnn RNN backward can only be called in training mode"), while the
explanation methods differentiate the encoder in eval mode (Captum attributions,
per-example loss gradients). Every LSTM of this model therefore runs with cuDNN switched off
whenever it is in eval mode on a CUDA tensor: PyTorch then takes its native LSTM kernels,
which differentiate in any mode, twice included (Hessian-vector products for Influence
Functions). Training (train mode) keeps cuDNN. The switch flips the process-wide
``torch.backends.cudnn.enabled`` flag for the duration of the LSTM call and restores it, so
it is not safe against another thread using cuDNN at the same moment. Nothing changes on CPU.

Recommended recipe (the paper's Appendix C.1 and its code): Adam, lr 1e-3, weight decay
1e-5, batch 50, 150 epochs, patience 10, trained on the normal heartbeats only (20 % of them
held out for early stopping) for feature importance; d_H = 64.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from lfxbench.models.base import ZooModel
from lfxbench.recipe import Recipe
from lfxbench.registry import register_model

__all__ = ["EcgLstmAutoencoder", "LstmDecoder", "LstmEncoder", "cudnn_off_in_eval"]


@contextmanager
def cudnn_off_in_eval(module: nn.Module, inputs: torch.Tensor) -> Iterator[None]:
    """cuDNN off while ``module`` is in eval mode on CUDA (its RNN backward needs train mode)."""
    if module.training or not inputs.is_cuda:
        yield
        return
    previous = torch.backends.cudnn.enabled
    # set_flags touches only the flags it is given (flags() would reset the others too).
    torch.backends.cudnn.set_flags(False)
    try:
        yield
    finally:
        torch.backends.cudnn.set_flags(previous)


class LstmEncoder(nn.Module):
    """``[B, C, T]`` -> ``[B, d_H]``: LSTM(C -> 2 d_H), LSTM(2 d_H -> d_H), last hidden state."""

    def __init__(self, latent_dim: int = 64, n_features: int = 1):
        super().__init__()
        self.latent_dim, self.hidden_dim = latent_dim, 2 * latent_dim
        self.rnn1 = nn.LSTM(n_features, self.hidden_dim, batch_first=True)
        self.rnn2 = nn.LSTM(self.hidden_dim, latent_dim, batch_first=True)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() != 3:
            raise ValueError(f"expected a batch of series [B, C, T], got {list(inputs.shape)}")
        series = inputs.transpose(1, 2)  # [B, T, C]
        with cudnn_off_in_eval(self, inputs):
            hidden, _ = self.rnn1(series)
            _, (last_hidden, _) = self.rnn2(hidden)
        return last_hidden[-1]  # [B, d_H]: the second LSTM's state after the last time step


class LstmDecoder(nn.Module):
    """``[B, d_H]`` -> ``[B, C, T]``: latent repeated T times, LSTM(d_H), LSTM(2 d_H), Linear."""

    def __init__(self, latent_dim: int = 64, sequence_length: int = 140, n_features: int = 1):
        super().__init__()
        self.sequence_length = sequence_length
        self.rnn1 = nn.LSTM(latent_dim, latent_dim, batch_first=True)
        self.rnn2 = nn.LSTM(latent_dim, 2 * latent_dim, batch_first=True)
        self.output_layer = nn.Linear(2 * latent_dim, n_features)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        repeated = latent.unsqueeze(1).expand(-1, self.sequence_length, -1)  # [B, T, d_H]
        with cudnn_off_in_eval(self, latent):
            hidden, _ = self.rnn1(repeated)
            hidden, _ = self.rnn2(hidden)
        return self.output_layer(hidden).transpose(1, 2)  # [B, C, T]


@register_model("ecg_lstm_autoencoder")
class EcgLstmAutoencoder(ZooModel):
    """ECG5000 LSTM autoencoder (paper Table 6): LSTMs 1->2d_H->d_H, last hidden state, L1 loss."""

    objectives = ("reconstruction",)
    stackable = False  # torch has no vmap rule for its LSTM kernel

    def __init__(
        self,
        latent_dim: Annotated[int, Field(ge=1)] = 64,
        sequence_length: Annotated[int, Field(ge=1)] = 140,
    ):
        super().__init__()
        self.sequence_length = sequence_length
        self.encoder = LstmEncoder(latent_dim)
        self.decoder = LstmDecoder(latent_dim, sequence_length)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(inputs))

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
        if inputs.shape[-1] != self.sequence_length:
            raise ValueError(
                f"series of length {inputs.shape[-1]}, but the decoder rebuilds "
                f"{self.sequence_length} time steps (the sequence_length parameter)"
            )
        reconstruction = self(inputs)
        return (reconstruction.float() - inputs.float()).abs().flatten(1).mean(dim=1)
