"""`python -m mrnet figure --out FILE [--kind ...]`: the README figures.

- phantoms: top, a real knee slice beside phantom slices; bottom, a phantom slice with its lesion mask outlined,
  then its CAM overlays.
- deletion: the mean deletion curves that `evaluate --record` wrote into the weights' config, one panel per task.
- randomization: one held-out phantom's top slice, one row per CAM method, the trained model's map and then the
  maps as the layers are re-initialised from the head down (the cascade of the randomization check).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mrnet.core.analysis import analyze
from mrnet.core.config import DEFAULT_METHOD, TASK_TITLES
from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.core.explain import METHODS
from mrnet.core.pointing import task_mask
from mrnet.core.render import Renderer
from mrnet.phantom import generate_exam
from mrnet.sets.samples import BY_KEY, sample_file
from mrnet.toolchain.faithfulness import cascade


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
                  labelled(render.overlay(task, plane, lesion_slice, DEFAULT_METHOD),
                           f"{DEFAULT_METHOD} CAM, slice {lesion_slice}"),
                  labelled(render.overlay(task, plane, lesion_slice, "classic"), f"classic CAM, slice {lesion_slice}"),
                  labelled(render.overlay(task, plane, top, DEFAULT_METHOD), f"{DEFAULT_METHOD} CAM, top slice {top}")]
    return write_png(out, np.vstack([np.hstack(top_row), np.hstack(bottom_row)]))


def write_png(out, rgb: np.ndarray) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), rgb[:, :, ::-1])
    return out


def deletion_figure(weights, out: Path) -> Path:
    """The recorded evaluation's mean deletion curves (matplotlib, a dev requirement: imported here only)."""
    curves = ((weights.config.provenance.get("evaluation") or {}).get("deletion_curves") or {})
    counts = (weights.config.provenance.get("evaluation") or {}).get("deletion_auc") or {}
    if not any(curves.values()):
        raise MRNetError("These weights carry no deletion curves: run `python -m mrnet evaluate --data DIR --record` "
                         "first.")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks = [t for t, c in curves.items() if c]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.4), sharey=True, squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for name, curve in curves[task].items():
            x = np.linspace(0, 1, len(curve))
            auc = counts.get(task, {}).get(name)
            ax.plot(x, curve, label=f"{name} ({auc:.3f})" if auc is not None else name,
                    linestyle="--" if name == "random" else "-", linewidth=2 if name == DEFAULT_METHOD else 1.3)
        ax.set_title(f"{TASK_TITLES.get(task, task)} ({counts.get(task, {}).get('n', '?')} true positives)", fontsize=10)
        ax.set_xlabel("fraction of the decisive plane's slices removed")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="order (deletion AUC)", title_fontsize=8)
    axes[0][0].set_ylabel("mean probability")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def randomization_figure(weights, out: Path, task: str = "acl", seed: int | None = None) -> Path:
    """Rows: CAM methods; columns: the trained model, then each step of the cascade (faithfulness.CASCADE)."""
    exam = Exam(volumes=generate_exam(seed or BY_KEY["phantom-acl"].seed).volumes)
    trained = analyze(exam, weights)
    result = trained.tasks[task]
    plane = result.decisive_plane
    top = result.planes[plane].top_slice
    columns = [("trained", trained)] + [(f"random to {layer}", analyze(exam, randomized))
                                        for layer, randomized in cascade(weights)]
    rows = [np.hstack([labelled(cv2.resize(Renderer(a).overlay(task, plane, top, method), (192, 192),
                                           interpolation=cv2.INTER_AREA), f"{method}: {name}")
                       for name, a in columns]) for method in METHODS]
    return write_png(out, np.vstack(rows))
