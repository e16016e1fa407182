"""The pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016): does a
CAM's maximum fall on the lesion, within a tolerance? Used by `evaluate` over a labelled set, and by the app
to say whether a reviewer's flag agrees with it on the slice they judged.

    hit = mask_dilated_by(tolerance)[argmax(upsample(cam))]
"""
from __future__ import annotations

import cv2
import numpy as np

from mrnet.core.config import TASK_BITS

DILATE_PX = 15      # the tolerance of Zhang et al.


def task_mask(mask: np.ndarray, task: str) -> np.ndarray:
    """A lesion-mask volume of bit fields (config.TASK_BITS) -> where the task's lesion is."""
    return (mask & TASK_BITS[task]) != 0


def hit_zone(mask: np.ndarray, dilate_px: int = DILATE_PX) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def pointing_hit(cam: np.ndarray, zone: np.ndarray) -> bool:
    """cam: one slice's CAM as computed (h, w floats, before the 8-bit display scaling, whose ties
    would make argmax pick the top-left pixel of a plateau); upsampled bilinearly to the zone's size.
    A slice without the lesion has an empty zone: the CAM cannot be on it."""
    cam = cv2.resize(np.asarray(cam, np.float32), zone.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return bool(zone[np.unravel_index(int(np.argmax(cam)), cam.shape)])


def cell_centre_in_zone(grid: tuple[int, int], zone: np.ndarray) -> bool:
    """Could any CAM on this grid hit? (An upsampled map peaks at a cell centre.)"""
    rows = [min(zone.shape[0] - 1, int(round((i + 0.5) * zone.shape[0] / grid[0] - 0.5))) for i in range(grid[0])]
    cols = [min(zone.shape[1] - 1, int(round((j + 0.5) * zone.shape[1] / grid[1] - 0.5))) for j in range(grid[1])]
    return bool(zone[np.ix_(rows, cols)].any())


def judged_hit(analysis, masks: dict[str, np.ndarray], task: str, plane: str, index: int, method: str) -> int | None:
    """For a reviewer's flag: 1 if the method's map of that slice hits the task's lesion (DILATE_PX), 0 if not
    (also where the slice does not show the lesion), None where the set has no lesion mask for the plane."""
    mask = masks.get(plane)
    result = analysis.tasks[task].planes.get(plane) if task in analysis.tasks else None
    if mask is None or result is None or not 0 <= index < len(mask) or method not in result.maps:
        return None
    return int(pointing_hit(result.maps[method][index], hit_zone(task_mask(mask[index], task))))
