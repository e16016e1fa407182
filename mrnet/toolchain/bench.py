"""`python -m mrnet bench`: our analysis and PNG export against a faithful re-implementation of the
blog code's path (github.com/ahmedbesbes/mrnet, part 3 of the series), on one 3-plane exam.

Blog path, per task and plane: an fp32 contiguous 2-logit MRNet (classifer = Linear(256, 2)) fed raw
0-255 slices, last conv features caught by a forward hook, a per-slice numpy CAM
(w . f, minus min, over max, uint8) + cv2.resize + JET, blended heatmap*0.3 + image*0.5 and each
overlay written with cv2.imwrite at default settings.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torchvision.models import alexnet

from mrnet.core.analysis import analyze
from mrnet.core.compute import Compute, bf16_supported, compute_for
from mrnet.core.config import PLANES
from mrnet.core.exam import Exam
from mrnet.core.export import export
from mrnet.core.render import Renderer

GFLOP_PER_SLICE = 1.74  # AlexNet features at 256x256


class BlogMRNet(nn.Module):
    """The blog's model.py, without the ImageNet download."""
    def __init__(self):
        super().__init__()
        self.pretrained_model = alexnet(weights=None)
        self.pooling_layer = nn.AdaptiveAvgPool2d(1)
        self.classifer = nn.Linear(256, 2)

    def forward(self, x):
        x = torch.squeeze(x, dim=0)
        features = self.pretrained_model.features(x)
        pooled = self.pooling_layer(features).view(features.size(0), -1)
        return self.classifer(torch.max(pooled, 0, keepdim=True)[0])


def blog_return_cam(feature_conv, weight_softmax, class_idx):
    size_upsample = (256, 256)
    bz, nc, h, w = feature_conv.shape
    slice_cams = []
    for s in range(bz):
        for idx in class_idx:
            cam = weight_softmax[idx].dot(feature_conv[s].reshape((nc, h * w)))
            cam = cam.reshape(h, w)
            cam = cam - np.min(cam)
            cam_img = cam / np.max(cam)
            cam_img = np.uint8(255 * cam_img)
            slice_cams.append(cv2.resize(cam_img, size_upsample))
    return slice_cams


def blog_path(exam: Exam, tasks: list[str], out: Path) -> dict:
    """Returns seconds spent in total and in PNG writing."""
    written, t_png = 0, 0.0
    start = time.perf_counter()
    for task in tasks:
        for plane, volume in exam.volumes.items():
            model = BlogMRNet().eval()
            grabbed = []
            hook = model.pretrained_model.features.register_forward_hook(lambda m, i, o: grabbed.append(o))
            x = torch.FloatTensor(np.stack((volume,) * 3, axis=1)).unsqueeze(0)
            with torch.no_grad():
                logit = model(x)
            hook.remove()
            _ = torch.sigmoid(logit[0, 1]).item()
            features = grabbed[0].numpy()
            weight_softmax = model.classifer.weight.detach().numpy()
            cams = blog_return_cam(features, weight_softmax, [1])
            folder = out / task / plane
            folder.mkdir(parents=True, exist_ok=True)
            for i, cam in enumerate(cams):
                img = cv2.cvtColor(volume[i], cv2.COLOR_GRAY2BGR)
                heatmap = cv2.applyColorMap(cv2.resize(cam, (256, 256)), cv2.COLORMAP_JET)
                result = heatmap * 0.3 + img * 0.5
                t0 = time.perf_counter()
                cv2.imwrite(str(folder / f"{i:03d}.png"), result)
                t_png += time.perf_counter() - t0
                written += 1
    return {"seconds": time.perf_counter() - start, "png_seconds": t_png, "pngs": written}


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench_exam(slices: int) -> Exam:
    """A phantom exam when the generator is there (realistic images), else smooth noise."""
    try:
        from mrnet.phantom import generate_exam
        volumes = generate_exam(seed=12345, slices=slices).volumes
    except ImportError:
        rng = np.random.default_rng(0)
        volumes = {p: np.stack([cv2.GaussianBlur(s, (0, 0), 2) for s in
                                rng.integers(0, 256, (slices, 256, 256), dtype=np.uint8)]) for p in PLANES}
    return Exam(volumes=volumes)


@torch.inference_mode()
def model_only(exam: Exam, weights, compute: Compute) -> None:
    """The model's own work on the exam (features and head of every plane), synchronised: the floor."""
    norm = weights.config.normalization
    for plane, volume in exam.volumes.items():
        x = compute.slices(volume, norm)
        for _, model in weights.for_plane(plane):
            with compute.autocast():
                maps = model.forward_features(x)
            model.forward_head(maps)[1].cpu()


def run_bench(weights, slices: int = 32, repeats: int = 3, compute: Compute | None = None) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    compute = compute or compute_for()
    weights.to(compute.device)
    exam = bench_exam(slices)
    n_slices = sum(len(v) for v in exam.volumes.values())
    tasks = list(weights.config.tasks)
    tmp = Path(tempfile.mkdtemp(prefix="mrnet-bench-"))
    try:
        def analysis():
            renderer = Renderer(analyze(exam, weights, compute))
            for task, result in renderer.analysis.tasks.items():
                for plane in result.planes:
                    renderer.cam_volume(task, plane, "exact")
            return renderer

        analysis()  # warm-up: oneDNN picks its kernels on the first call
        t_analysis, rendered = timed(analysis, repeats)
        t_export, n_png = timed(lambda: export(rendered, tmp / "ours", progress=False), repeats)
        t_forward, _ = timed(lambda: analyze(exam, weights, compute), repeats)
        t_model, _ = timed(lambda: model_only(exam, weights, compute), max(repeats, 10))
        # what a slider step costs the app: one slice's overlay from the kept analysis (no model run)
        plane, task = exam.planes[0], tasks[0]
        steps = [(i % len(exam.volumes[plane])) for i in range(100)]
        t_step, _ = timed(lambda: [rendered.overlay(task, plane, i, "exact", 0.4) for i in steps], 1)
        fresh = Renderer(analyze(exam, weights, compute))
        t_switch, _ = timed(lambda: fresh.cam_volume(task, plane, "classic"), 1)
        weights.to("cpu")  # the blog path below runs on the CPU, as the blog code did
        blog = blog_path(exam, tasks, tmp / "blog")
        ours_total = t_analysis + t_export
        return {
            "exam": f"3 planes x {slices} slices ({n_slices} slices), {len(tasks)} tasks",
            "device": compute.device.type, "precision": rendered.analysis.precision,
            "bf16_supported": bf16_supported(), "threads": torch.get_num_threads(),
            "ours": {"analysis_s": round(t_analysis, 3), "export_s": round(t_export, 3), "pngs": n_png,
                     "total_s": round(ours_total, 3),
                     "model_only_ms": round(1000 * t_model, 2),
                     "analysis_without_display_cams_ms": round(1000 * t_forward, 2),
                     "slider_step_ms": round(1000 * t_step / len(steps), 2),
                     "first_view_of_a_task_method_ms": round(1000 * t_switch, 2),
                     "gflops_per_s": round(n_slices * GFLOP_PER_SLICE / t_forward, 1)},
            "blog": {"total_s": round(blog["seconds"], 3), "png_s": round(blog["png_seconds"], 3), "pngs": blog["pngs"],
                     "gflops_per_s": round(len(tasks) * n_slices * GFLOP_PER_SLICE / (blog["seconds"] - blog["png_seconds"]), 1)},
            "speedup": {"total": round(blog["seconds"] / ours_total, 1),
                        "export_vs_blog_total": round(blog["seconds"] / t_export, 1),
                        "png_writing": round(blog["png_seconds"] / t_export, 1)},
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
