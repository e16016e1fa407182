"""`python -m mrnet convert SRC... --out DIR`: existing MRNet checkpoints -> our weights folder.

- The blog code's checkpoints (github.com/ahmedbesbes/mrnet): whole pickled models saved with
  torch.save(model); class `MRNet` in a module named `model`, attributes `pretrained_model`
  (a torchvision AlexNet, of which `.features` is used), `pooling_layer`, `classifer` (sic) =
  Linear(256, 2); the tear probability is sigmoid(logit[1]), so row 1 of `classifer` becomes our
  one-logit head. They fed raw 0-255 slices: normalisation mean 0, std 1.
  They are read with torch's weights-only unpickler, which admits only the torch / torchvision /
  collections classes such a file needs plus `model.MRNet` (mapped to an empty stand-in): any
  other global is refused, so no code in the file can run.
- Stanford-style state dicts (`torch.load(weights_only=True)`): `model.features.N.*` ->
  `features.N.*`, `classifier.*` (Linear(256, 1)) -> `classifier.*`; AlexNet's own unused FC layers
  (`model.classifier.*`) are dropped. Normalisation (x - 58.09) / 49.73.
Several files (one per task and plane) combine into one folder; fusion coefficients can be given
with --fusion, else the documented fallback (mean of the plane logits) applies.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision.models.alexnet import AlexNet

from mrnet.core.config import PLANES, TASKS, ModelEntry, Normalization, WeightsConfig
from mrnet.core.errors import MRNetError
from mrnet.core.model import MRNet
from mrnet.core.weights import load_state_strict, save_weights
from mrnet.toolchain.card import write_card

BLOG_NAME = re.compile(r"model_(?P<prefix>.*)_(?P<task>abnormal|acl|meniscus)_(?P<plane>axial|coronal|sagittal)"
                       r"_val_auc_[\d.]+_train_auc_[\d.]+_epoch_\d+\.pth$")
NORMALISATION = {"blog": Normalization(mean=0.0, std=1.0), "stanford": Normalization(mean=58.09, std=49.73)}


class BlogMRNetStandIn(nn.Module):
    """Receives the attributes of the blog's `model.MRNet` while unpickling; has no code of its own."""


BlogMRNetStandIn.__module__, BlogMRNetStandIn.__name__, BlogMRNetStandIn.__qualname__ = "model", "MRNet", "MRNet"

BLOG_GLOBALS = [BlogMRNetStandIn, AlexNet, nn.Sequential, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d,
                nn.Dropout, nn.Linear, OrderedDict, set]


def first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def task_and_plane(path: Path, task: str | None, plane: str | None) -> tuple[str, str]:
    m = BLOG_NAME.search(path.name)
    tokens = re.split(r"[^a-z]+", path.name.lower())
    task = task or (m and m["task"]) or next((t for t in TASKS if t in tokens), None)
    plane = plane or (m and m["plane"]) or next((p for p in PLANES if p in tokens), None)
    if not task or not plane:
        raise MRNetError(f"Cannot tell the task and plane of {path.name}: pass --task and --plane.")
    return task, plane


def load_blog(path: Path) -> MRNet:
    try:
        with torch.serialization.safe_globals(BLOG_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler refused a global, or the file is damaged
        raise MRNetError(f"{path.name} was refused: it is not a blog-code MRNet checkpoint this tool can read "
                         f"safely ({first_line(exc)}).") from None
    if not isinstance(obj, BlogMRNetStandIn) or not hasattr(obj, "pretrained_model") or not hasattr(obj, "classifer"):
        raise MRNetError(f"{path.name} is not a blog-code MRNet (model.MRNet with pretrained_model and classifer).")
    head = obj.classifer
    if not isinstance(head, nn.Linear) or head.in_features != 256 or head.out_features not in (1, 2):
        raise MRNetError(f"{path.name}: classifer must be Linear(256, 2) (or 1).")
    row = head.out_features - 1  # tear logit: logit[1] of a 2-logit head
    state = {f"features.{k}": v for k, v in obj.pretrained_model.features.state_dict().items()}
    state["classifier.weight"] = head.weight.detach()[row:row + 1].clone()
    state["classifier.bias"] = head.bias.detach()[row:row + 1].clone()
    model = MRNet(1)
    load_state_strict(model, state, path.name)
    return model.eval()


def load_stanford(path: Path) -> MRNet:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MRNetError(f"{path.name} is not a state dict readable with weights_only=True ({first_line(exc)}).") from None
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise MRNetError(f"{path.name} does not hold a state dict.")
    state = {}
    for key, value in raw.items():
        key = key.removeprefix("module.")
        if key.startswith("model.features."):
            state[key.removeprefix("model.")] = value
        elif key.startswith("classifier."):
            state[key] = value
        elif not key.startswith("model.classifier."):
            state[key] = value  # unknown keys are kept so that the strict check names them
    model = MRNet(1)
    load_state_strict(model, state, path.name)
    return model.eval()


def detect_format(path: Path) -> str:
    """Blog checkpoints pickle a whole model (a `model` module global); Stanford ones are plain state dicts."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as zf:
            pkl = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
            data = zf.read(pkl) if pkl else b""
    except (zipfile.BadZipFile, OSError):
        raise MRNetError(f"{path.name} is not a torch checkpoint (torch.save zip format).") from None
    return "blog" if b"model\nMRNet" in data or b"\x8c\x05model\x94\x8c\x05MRNet" in data else "stanford"


def run_convert(sources: list[Path], out: Path, task=None, plane=None, fmt="auto", fusion=None) -> WeightsConfig:
    if len(sources) > 1 and (task or plane):
        raise MRNetError("--task and --plane apply to a single file; with several files they come from the names.")
    models, formats, seen = [], set(), set()
    for src in map(Path, sources):
        if not src.is_file():
            raise MRNetError(f"{src} does not exist.")
        kind = detect_format(src) if fmt == "auto" else fmt
        t, p = task_and_plane(src, task, plane)
        if (t, p) in seen:
            raise MRNetError(f"Two files give the {t} model of the {p} plane.")
        seen.add((t, p))
        formats.add(kind)
        model = load_blog(src) if kind == "blog" else load_stanford(src)
        models.append((ModelEntry(file=f"{p}_{t}.safetensors", plane=p, tasks=[t]), model))
    if len(formats) > 1:
        raise MRNetError("Blog and Stanford checkpoints normalise slices differently; convert them into separate folders.")
    kind = formats.pop()
    tasks = [t for t in TASKS if any(e.tasks == [t] for e, _ in models)]
    config = WeightsConfig(tasks=tasks, planes=sorted({e.plane for e, _ in models}), models=[],
                           normalization=NORMALISATION[kind], fusion=fusion or {}, provenance={
                               "trained_on": f"unknown: converted from {kind}-style checkpoints "
                                             f"({', '.join(s.name for s in map(Path, sources))})",
                               "training_command": "unknown (converted with python -m mrnet convert)",
                               "intended_use": "Research only. Not for diagnosis.", "license": "unknown"})
    config = save_weights(out, config, models, dtype=torch.float32)  # keep the original precision
    write_card(out, config)
    return config
