"""`python -m mrnet figure --out FILE`: the README figure. Top: a real knee slice beside phantom slices.
Bottom: a phantom slice with its lesion mask outlined, then its exact and classic CAM overlays."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..analysis import analyze
from ..exam import Exam
from ..render import Renderer
from .dataset import task_mask
from .phantom import generate_exam
from .samples import BY_KEY, sample_file


def labelled(rgb: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(rgb.copy())
    cv2.rectangle(out, (0, 0), (256, 18), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def grey(v: np.ndarray) -> np.ndarray:
    return np.repeat(v[:, :, None], 3, axis=2)


def make_figure(weights, out: Path, task: str = "acl", seed: int | None = None) -> Path:
    real = np.load(sample_file(BY_KEY["real-knee"]), allow_pickle=False)["sagittal"]
    seed = seed or BY_KEY["phantom-acl"].seed
    ph = generate_exam(seed)
    other = generate_exam(BY_KEY["phantom-normal"].seed)
    plane = "sagittal"
    analysis = analyze(Exam(volumes=ph.volumes), weights)
    render = Renderer(analysis)
    top = analysis.tasks[task].planes[plane].top_slice
    lesion = task_mask(ph.masks[plane], task)
    lesion_slice = int(np.argmax(lesion.sum(axis=(1, 2))))
    outlined = grey(ph.volumes[plane][lesion_slice])
    contours, _ = cv2.findContours(lesion[lesion_slice].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(outlined, contours, -1, (255, 40, 40), 1)
    top_row = [labelled(grey(real[len(real) // 2]), "real knee (pyMSKT), sagittal"),
               labelled(grey(ph.volumes[plane][lesion_slice]), f"phantom {seed}, sagittal"),
               labelled(grey(other.volumes["coronal"][len(other.volumes["coronal"]) // 2]), "phantom, coronal T1"),
               labelled(grey(other.volumes["axial"][len(other.volumes["axial"]) // 2]), "phantom, axial PD FS")]
    bottom_row = [labelled(outlined, f"ACL-tear mask, slice {lesion_slice}"),
                  labelled(render.overlay(task, plane, lesion_slice, "exact"), f"exact CAM, slice {lesion_slice}"),
                  labelled(render.overlay(task, plane, lesion_slice, "classic"), f"classic CAM, slice {lesion_slice}"),
                  labelled(render.overlay(task, plane, top, "exact"), f"exact CAM, top slice {top}")]
    image = np.vstack([np.hstack(top_row), np.hstack(bottom_row)])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), image[:, :, ::-1])
    return out
