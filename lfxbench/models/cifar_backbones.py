"""Backbones for 32x32 images, adapted to CIFAR and written with ``torch.nn`` alone
(torchvision does not import beside the CPU torch of the default install).

* ResNet-18 adapted to CIFAR as in SimCLR's Appendix B.9: a 3x3 stride-1 stem convolution
  and no max-pool; basic blocks 2-2-2-2 with 64-128-256-512 channels.
* DenseNet-121 (growth 32, blocks 6-12-24-16, bottleneck 4 x growth, compression 0.5), the
  same adaptation: torchvision's 7x7 stride-2 stem and its max-pool become one 3x3 stride-1
  convolution (then BatchNorm and ReLU, as torchvision's ``norm0``/``relu0``); spatial sizes
  32 -> 16 -> 8 -> 4 through the three transitions.

Both map ``[B, 3, 32, 32]`` to ``[B, F]`` after global average pooling (F = 512 for
ResNet-18, 1024 for DenseNet-121, times ``width``), and say F in ``out_features``. Every
ReLU is its own ``nn.ReLU`` module (never in place, never reused): Captum's DeepLift hooks
non-linear modules and needs one module per use.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "CifarDenseNet121", "CifarResNet18", "DenseLayer"]


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(inputs)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(inputs))


class CifarResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs (3x3 stride-1 stem, no max-pool) -> ``[B, 512 * width]``."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        channels = [_scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=False),
        )
        stages, in_channels = [], channels[0]
        for index, out_channels in enumerate(channels):
            stride = 1 if index == 0 else 2
            stages.append(
                nn.Sequential(
                    BasicBlock(in_channels, out_channels, stride),
                    BasicBlock(out_channels, out_channels, 1),
                )
            )
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = channels[-1]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(inputs)))


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck) -BN-ReLU-3x3 conv (growth), concatenated to the input."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(in_channels, bottleneck, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bottleneck)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(bottleneck, growth, 3, 1, 1, bias=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        new = self.conv1(self.relu1(self.norm1(inputs)))
        new = self.conv2(self.relu2(self.norm2(new)))
        return torch.cat([inputs, new], dim=1)


class CifarDenseNet121(nn.Module):
    """DenseNet-121 for 32x32 inputs (3x3 stride-1 stem, no max-pool) -> ``[B, 1024 * width]``."""

    def __init__(
        self,
        width: float = 1.0,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        growth_rate: int = 32,
        bottleneck_factor: int = 4,
    ):
        super().__init__()
        growth = _scaled(growth_rate, width)
        channels = 2 * growth
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=False),
        ]
        for index, n_layers in enumerate(block_config):
            for _ in range(n_layers):
                layers.append(DenseLayer(channels, growth, bottleneck_factor * growth))
                channels += growth
            if index < len(block_config) - 1:  # transition: compression 0.5, 2x2 average pool
                layers += [
                    nn.BatchNorm2d(channels),
                    nn.ReLU(inplace=False),
                    nn.Conv2d(channels, channels // 2, 1, bias=False),
                    nn.AvgPool2d(2, 2),
                ]
                channels //= 2
        layers += [
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ]
        self.features = nn.Sequential(*layers)
        self.out_features = channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.features(inputs)
