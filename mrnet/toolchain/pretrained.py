"""Where a model's convolutions start from (`train --init`): He initialisation, ImageNet, or a local file.

ImageNet is torchvision's `AlexNet_Weights.IMAGENET1K_V1`, downloaded once on the user's machine into the
torch hub cache (`$TORCH_HOME/hub/checkpoints/`, checked against the hash in its name) - as MRNet started
(Bien et al., PLOS Medicine 2018). Files are read without unpickling arbitrary objects: safetensors, or a
torch file through `weights_only=True`.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from mrnet.core.errors import MRNetError
from mrnet.core.model import MRNet


def imagenet_state() -> dict[str, torch.Tensor]:
    from torchvision.models import AlexNet_Weights
    url = AlexNet_Weights.IMAGENET1K_V1.url
    try:
        return torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, weights_only=True)
    except (OSError, RuntimeError) as exc:
        name = url.rsplit("/", 1)[-1]
        raise MRNetError(f"torchvision's ImageNet AlexNet weights could not be read ({exc.__class__.__name__}): "
                         f"connect to the internet once, or put {name} into "
                         f"{Path(torch.hub.get_dir()) / 'checkpoints'}, or pass --init PATH.") from None


def file_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MRNetError(f"--init {path}: no such file (use imagenet, scratch or a weights file).")
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise MRNetError(f"--init {path.name} cannot be read as plain tensors ({exc.__class__.__name__}).") from None


def initial_model(init: str, n_tasks: int) -> MRNet:
    """`scratch`: He initialisation; `imagenet`: torchvision's ImageNet AlexNet convs; PATH: the `features.*`
    tensors of an AlexNet or MRNet state dict. The head always starts from scratch (its tasks are ours)."""
    from torchvision.models import alexnet
    # built from torchvision's AlexNet (its classifier dropped), so that a seed draws the same initial weights,
    # and a recorded training command gives the same weights, as before the runtime stopped importing torchvision
    model = MRNet(n_tasks, features=alexnet(weights=None).features).init_from_scratch()
    if init == "scratch":
        return model
    state = imagenet_state() if init == "imagenet" else file_state(Path(init).expanduser())
    if not isinstance(state, dict):
        raise MRNetError(f"--init {init}: the file holds no state dict.")
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    try:
        model.features.load_state_dict(features, strict=True)
    except RuntimeError as exc:
        missing = sorted(set(model.features.state_dict()) - set(features))
        raise MRNetError(f"--init {init}: not AlexNet's convolutions (missing {', '.join(missing[:4]) or 'nothing'}; "
                         f"{str(exc).splitlines()[0][:120]}).") from None
    return model
