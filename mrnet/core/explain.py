"""Class Activation Maps as a registry: each method is one small function from the forward pass's tensors
(feature maps, pooled features, the task's head weights) to one map per slice, with its display scaling
beside it (the shape of torchcam and pytorch-grad-cam). Nothing here needs gradients.

- exact slice attribution: each channel's max over slices is reached at one slice; that slice gets the
  channel's whole share w_c * f[s, c]. The slice contributions then add up, with the bias, to the logit
  exactly - so they say which slices decide the prediction. Shown on one scale for the whole exam.
- Shapley slice attribution: the same, except that each channel's max is shared among the slices by their
  Shapley values in the max game (`shapley_shares`), so a slice's map keeps every channel it nearly ties for.
  The contributions still add up, with the bias, to the logit.
- classic CAM (the blog code): map_s = w_task . f_s, min-max normalised per slice.

Adding a method is one `register(...)` here: the app, the CLI and evaluate list the methods from METHODS.
Overlays: the JET colormap (or viridis, config.PALETTES) blended over the grey slice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch

from mrnet.core.config import DEFAULT_OPACITY, DEFAULT_PALETTE, PALETTES
from mrnet.core.errors import MRNetError


def exact_attribution(features: torch.Tensor, pooled: torch.Tensor, weight: torch.Tensor):
    """-> (maps (..., S, h, w), contributions (..., S)) with contributions.sum(-1) + bias == logit.
    weight: one task's head row (C,), or every task's (T, C) at once (a leading task axis).

    pooled[s, c] = mean of features[s, c]; c*(s) = channels whose max over slices is at slice s;
    M_s = sum over c in c*(s) of w_c f[s, c]; m_s = mean(M_s)."""
    winners = pooled.argmax(dim=0)                                   # (C,) slice that wins each channel
    owns = torch.nn.functional.one_hot(winners, pooled.shape[0]).T.to(features.dtype)  # (S, C)
    maps = torch.einsum("sc,...c,schw->...shw", owns, weight, features)
    return maps, maps.mean(dim=(-2, -1))


def shapley_shares(pooled: torch.Tensor) -> torch.Tensor:
    """pooled (S, C) -> (S, C): each slice's Shapley value in each channel's max over slices, the game
    v(slices) = max of their pooled values, v(none) = 0 (the features are ReLU outputs). With a channel's values
    sorted v_1 >= ... >= v_S (v_{S+1} = 0), the k-th gets sum_{j >= k} (v_j - v_{j+1}) / j (the airport game of
    Littlechild & Owen, 1973): near-equal slices share the channel, one clear maximum keeps most of it, ties
    split evenly, and the shares of a channel add up to its max."""
    values, order = pooled.sort(dim=0, descending=True)
    steps = values - torch.cat([values[1:], torch.zeros_like(values[:1])])
    rank = torch.arange(1, len(values) + 1, dtype=pooled.dtype, device=pooled.device)[:, None]
    sorted_shares = (steps / rank).flip(0).cumsum(0).flip(0)
    return torch.empty_like(sorted_shares).scatter_(0, order, sorted_shares)


def shapley_attribution(features: torch.Tensor, pooled: torch.Tensor, weight: torch.Tensor):
    """-> (maps, contributions) as `exact_attribution`, the slice contributions again adding up with the bias
    to the logit, but each channel's max is shared among the slices by Shapley value instead of going whole to
    the one slice that reaches it. A slice's map keeps every channel it holds a share of, each scaled by that
    share over the slice's own pooled value, so the map's mean is the slice's contribution."""
    shares = shapley_shares(pooled)
    kept = torch.where(pooled != 0, shares / torch.where(pooled != 0, pooled, 1), torch.zeros_like(shares))
    maps = torch.einsum("sc,...c,schw->...shw", kept, weight, features)
    return maps, maps.mean(dim=(-2, -1))


def classic_cam(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """features (S, C, h, w), weight (C,) or (T, C) -> (..., S, h, w) in [0, 1], min-max per slice (a flat
    map gives 0)."""
    cam = torch.einsum("...c,schw->...shw", weight, features)
    lo = cam.amin(dim=(-2, -1), keepdim=True)
    span = cam.amax(dim=(-2, -1), keepdim=True) - lo
    return torch.where(span > 0, (cam - lo) / span.clamp_min(1e-12), torch.zeros_like(cam))


def per_exam_scale(maps: np.ndarray, task_maps: list[np.ndarray]) -> np.ndarray:
    """Divide by the largest positive value of this task's maps over every plane, so slices and planes
    compare; negative evidence clips to 0 when shown."""
    scale = max(float(m.max()) for m in task_maps)
    return maps / (scale if scale > 0 else 1.0)


def as_is(maps: np.ndarray, task_maps: list[np.ndarray]) -> np.ndarray:
    return maps


@dataclass(frozen=True)
class CamMethod:
    name: str
    title: str
    # (features (S, C, h, w) fp32, pooled (S, C), head weights (C,) or (T, C)) -> maps ([T,] S, h, w)
    maps: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    # (this plane's maps, the same task's maps of every plane) -> values to show in [0, 1] (clipped)
    display: Callable[[np.ndarray, list[np.ndarray]], np.ndarray]
    additive: bool = False  # each slice map's mean is that slice's contribution; with the bias they add up to the logit


METHODS: dict[str, CamMethod] = {}
# The maps shown first, and the slice contributions (top slice, slice ranking) everywhere: Shapley's, because on
# held-out phantoms it localizes better than exact attribution and its ranking passes the deletion test that
# exact attribution's fails (README, "Held-out evaluation").


def method(name: str) -> CamMethod:
    if name not in METHODS:
        names = list(METHODS)
        raise MRNetError(f"Unknown CAM method {name!r}; use {', '.join(names[:-1])} or {names[-1]}.")
    return METHODS[name]


def register(name: str, title: str, display=as_is, additive: bool = False):
    def add(fn):
        METHODS[name] = CamMethod(name, title, fn, display, additive)
        return fn
    return add


@register("shapley", "Shapley slice attribution", display=per_exam_scale, additive=True)
def shapley_maps(features, pooled, weight):
    return shapley_attribution(features, pooled, weight)[0]


@register("exact", "Exact slice attribution", display=per_exam_scale, additive=True)
def exact_maps(features, pooled, weight):
    return exact_attribution(features, pooled, weight)[0]


@register("classic", "Classic CAM (blog)")
def classic_maps(features, pooled, weight):
    return classic_cam(features, weight)


LEVEL_FRACTION = 256  # levels are kept in 1/256ths of a grey level: 16 bits, what the browser's viewer receives


def display_levels(maps: np.ndarray) -> np.ndarray:
    """Display-scaled maps -> float32 grey levels 0..255 at low resolution (clipped: negative evidence is 0), rounded
    to 1/256 of a level, so that the viewer's 16-bit copy holds exactly the values the server draws from."""
    levels = np.clip(maps, 0, 1).astype(np.float32) * np.float32(255)
    return np.round(levels * LEVEL_FRACTION) / np.float32(LEVEL_FRACTION)


def upsample(maps: np.ndarray, size: int = 256) -> np.ndarray:
    """(S, h, w) float in [0, 1] -> uint8 (S, size, size), bilinear (cv2.resize, as the blog code)."""
    stacked = np.ascontiguousarray(display_levels(maps).transpose(1, 2, 0))
    chunks = [cv2.resize(stacked[:, :, i:i + 256], (size, size), interpolation=cv2.INTER_LINEAR)
              for i in range(0, stacked.shape[2], 256)]  # cv2 takes at most 512 channels per image
    out = np.concatenate([c.reshape(size, size, -1) for c in chunks], axis=2)
    return np.round(out).astype(np.uint8).transpose(2, 0, 1)


COLORMAPS = {"jet": cv2.COLORMAP_JET, "viridis": cv2.COLORMAP_VIRIDIS}
assert set(COLORMAPS) == set(PALETTES)


def palette_table(palette: str = DEFAULT_PALETTE) -> np.ndarray:
    """A palette (config.PALETTES) as OpenCV draws it: 256 RGB rows (the browser colours maps with the same table)."""
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None, :], COLORMAPS[palette])[0, :, ::-1]


def overlay(gray: np.ndarray, cam: np.ndarray, opacity: float = DEFAULT_OPACITY,
            palette: str = DEFAULT_PALETTE) -> np.ndarray:
    """gray and cam uint8 (..., H, W) -> RGB uint8 (..., H, W, 3): (1 - opacity) * slice + opacity * palette(cam)."""
    shape = gray.shape
    heat = cv2.applyColorMap(cam.reshape(-1, shape[-1]), COLORMAPS[palette])[:, :, ::-1]
    grey3 = np.repeat(gray.reshape(-1, shape[-1])[:, :, None], 3, axis=2)
    a = float(np.clip(opacity, 0.0, 1.0))
    blended = cv2.addWeighted(np.ascontiguousarray(heat), a, grey3, 1.0 - a, 0.0)
    return blended.reshape(*shape, 3)
