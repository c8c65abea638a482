"""Tiny zoo models the training tests share (a module of its own, as suite_runs.py)."""

from __future__ import annotations

import torch

from lfxbench.models.base import ZooModel


class TinyAutoencoder(ZooModel):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(6, 2)
        self.decoder = torch.nn.Linear(2, 6)

    def loss(self, inputs, labels, recipe):
        return ((self.decoder(self.encoder(inputs)) - inputs) ** 2).mean(dim=1)
