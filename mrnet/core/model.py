"""MRNet: AlexNet features on every slice, global average pooling, max over slices, a linear head.

One model per plane; one logit per task (a single-task model is the same class with one task).
`forward_features` gives the last conv block's maps and `forward_head` pools them and applies the head,
so every explanation is computed from the same forward pass that gives the logits. The caller chooses
the device and precision (mrnet.core.compute); the model knows nothing of either, nor of training.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

FEATURE_CHANNELS = 256
STEM = 3  # AlexNet's first block (conv, ReLU, max-pool): its activations describe the image's appearance


def alexnet_features() -> nn.Sequential:
    """AlexNet's convolutions as torchvision's `alexnet().features` has them (the same layers at the same
    indices, so its state dicts and ImageNet weights load as they are), written out: the app and `predict`
    never import torchvision, which takes longer to import than torch itself."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
    )


class MRNet(nn.Module):
    def __init__(self, n_tasks: int = 1, features: nn.Sequential | None = None):
        super().__init__()
        self.features = features if features is not None else alexnet_features()
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

    def forward_features(self, x: torch.Tensor, with_stem: bool = False):
        """x: (S, 3, H, W) normalised slices of one exam and plane -> (S, 256, h, w) maps of AlexNet's
        last conv block (after its max-pool), in the autocast dtype the caller runs under; with_stem: also
        the first block's output (S, 64, H', W'), which the out-of-distribution check summarises."""
        stem = self.forward_stem(x)
        maps = self.features[STEM:](stem)
        return (maps, stem) if with_stem else maps

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """The first block alone (conv, ReLU, max-pool): what the out-of-distribution check summarises."""
        return self.features[:STEM](x)

    def forward_head(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """maps (S, 256, h, w) -> pooled (S, 256) per-slice global average, and logits (n_tasks,): the head
        on the max over slices. Always fp32, also under autocast: the head is tiny and the logits are what
        the user reads."""
        with torch.autocast(maps.device.type, enabled=False):
            pooled = maps.float().mean(dim=(2, 3))
            return pooled, self.classifier(pooled.max(dim=0).values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (S, 3, H, W) normalised slices of one exam and plane -> (n_tasks,) logits."""
        return self.forward_head(self.forward_features(x))[1]


def to_input(volume: np.ndarray, mean: float, std: float, device=None) -> torch.Tensor:
    """uint8 (S, H, W) -> float (S, 3, H, W), normalised; the grey slice is repeated on 3 channels.
    With a device, the uint8 slices travel there first (a quarter of the bytes of floats) and are
    normalised there."""
    x = torch.from_numpy(np.ascontiguousarray(volume))
    if device is not None:
        x = x.to(device, non_blocking=True)
    x = (x.float() - mean) / std
    return x.unsqueeze(1).expand(-1, 3, -1, -1)
