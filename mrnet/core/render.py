"""What a viewer draws from an Analysis: CAM volumes at display resolution and overlays, cached per
(task, plane, method). The cache lives here, with presentation, not in the analysis result."""
from __future__ import annotations

import numpy as np

from mrnet.core.analysis import Analysis
from mrnet.core.config import DEFAULT_METHOD, DEFAULT_OPACITY, DEFAULT_PALETTE
from mrnet.core.explain import overlay, upsample


class Renderer:
    def __init__(self, analysis: Analysis, cache: bool = True):
        """`cache=False`: each volume is drawn when asked and forgotten (one pass over an exam, as the zip makes)."""
        self.analysis, self.cache = analysis, cache
        self._cams: dict[tuple[str, str, str], np.ndarray] = {}

    def cam_volume(self, task: str, plane: str, method: str = DEFAULT_METHOD) -> np.ndarray:
        """uint8 (S, 256, 256): the method's display scaling, upsampled bilinearly; cached unless told not to."""
        key = (task, plane, method)
        if key in self._cams:
            return self._cams[key]
        volume = upsample(self.analysis.tasks[task].display_maps(plane, method))
        if self.cache:
            self._cams[key] = volume
        return volume

    def overlay(self, task: str, plane: str, index: int, method: str = DEFAULT_METHOD, opacity: float = DEFAULT_OPACITY,
                palette: str = DEFAULT_PALETTE) -> np.ndarray:
        return overlay(self.analysis.exam.volumes[plane][index], self.cam_volume(task, plane, method)[index], opacity,
                       palette)

    def overlay_volume(self, task: str, plane: str, method: str = DEFAULT_METHOD, opacity: float = DEFAULT_OPACITY,
                       palette: str = DEFAULT_PALETTE) -> np.ndarray:
        """RGB uint8 (S, 256, 256, 3): every slice's overlay in one batched call."""
        return overlay(self.analysis.exam.volumes[plane], self.cam_volume(task, plane, method), opacity, palette)
