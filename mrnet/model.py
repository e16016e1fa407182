"""MRNet: AlexNet features on every slice, global average pooling, max over slices, a linear head.

One model per plane; one logit per task (a single-task model is the same class with one task).
`forward_features` returns the last conv features too, so every explanation is computed from the
same forward pass that gives the logits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchvision.models import alexnet

FEATURE_CHANNELS = 256


@dataclass
class Forward:
    features: torch.Tensor  # (S, 256, h, w) float32: last conv block of AlexNet (after its max-pool)
    pooled: torch.Tensor    # (S, 256): global average pool per slice
    logits: torch.Tensor    # (n_tasks,): head applied to the max over slices of `pooled`


class MRNet(nn.Module):
    def __init__(self, n_tasks: int = 1):
        super().__init__()
        self.features = alexnet(weights=None).features  # never downloads ImageNet weights
        self.classifier = nn.Linear(FEATURE_CHANNELS, n_tasks)

    def init_from_scratch(self) -> "MRNet":
        """He initialisation for training without ImageNet weights: torchvision's default init shrinks
        the activations ~80x through the five convs, and the head then learns only its bias."""
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (S, 3, H, W) normalised slices of one exam and plane -> (n_tasks,) logits."""
        pooled = self.features(x).mean(dim=(2, 3))
        return self.classifier(pooled.max(dim=0).values)

    def forward_features(self, x: torch.Tensor, bf16: bool = False) -> Forward:
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            features = self.features(x)
        features = features.float()
        pooled = features.mean(dim=(2, 3))
        logits = self.classifier(pooled.max(dim=0).values)
        return Forward(features=features, pooled=pooled, logits=logits)


def to_input(volume: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 (S, H, W) -> float (S, 3, H, W), normalised; the grey slice is repeated on 3 channels."""
    x = (torch.from_numpy(np.ascontiguousarray(volume)).float() - mean) / std
    return x.unsqueeze(1).expand(-1, 3, -1, -1)


def bf16_supported() -> bool:
    """True where oneDNN has native bf16 kernels (AVX-512 BF16 / AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # older torch without the op
        return False
