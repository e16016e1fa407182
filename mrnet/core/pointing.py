"""The pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016): does a
CAM's maximum fall on the lesion, within a tolerance? Used by `evaluate` over a labelled set, and by the app
to say whether a reviewer's flag agrees with it on the slice they judged.

    hit = mask_dilated_by(tolerance)[argmax(upsample(cam))]
"""
from __future__ import annotations

import cv2
import numpy as np

from mrnet.core.config import DILATE_PX, TASK_BITS


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


def mark_zone(shape: tuple[int, int], x: int, y: int, w: int = 0, h: int = 0) -> np.ndarray:
    """A reviewer's mark on a slice of `shape` (rows, columns) as a boolean zone: the pixel (x, y) for a point
    (w = h = 0), else the box from (x, y) to (x + w, y + h) inclusive, clipped to the slice."""
    zone = np.zeros(shape, bool)
    zone[max(0, y):max(0, y + h + 1), max(0, x):max(0, x + w + 1)] = True
    return zone


def mark_hit(cam: np.ndarray, mark: np.ndarray, dilate_px: int = DILATE_PX) -> int:
    """The pointing game against a reviewer's mark (mark_zone) instead of a lesion mask: 1 if the map's maximum
    is inside the mark or within `dilate_px` of it, else 0. Works on any set, masks or not."""
    return int(pointing_hit(cam, hit_zone(mark, dilate_px)))


def mark_on_lesion(mask_slice: np.ndarray, task: str, mark: np.ndarray, dilate_px: int = DILATE_PX) -> int:
    """The reviewer's own accuracy on a set with masks: 1 if the mark touches the task's lesion on that slice
    (within `dilate_px`, the map's tolerance), else 0."""
    return int((hit_zone(task_mask(mask_slice, task), dilate_px) & mark).any())
